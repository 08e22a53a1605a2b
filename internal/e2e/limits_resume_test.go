package e2e

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/internal/netsim"
)

// stallConn stops delivering what it reads once stalled: a client that
// stops reading.
type stallConn struct {
	net.Conn
	once    sync.Once
	stalled chan struct{}
}

func (s *stallConn) stall() { s.once.Do(func() { close(s.stalled) }) }

func (s *stallConn) Read(b []byte) (int, error) {
	select {
	case <-s.stalled:
		select {} // never again (the test's cleanup closes the network)
	default:
	}
	return s.Conn.Read(b)
}

// A client that resumes its session and then stops reading must not keep
// the server's resend, and with it one of the unauthenticated
// connection slots, forever: the login grace time bounds the resumption
// like an authentication, and then the connection is dropped without
// DISCONNECT (the session stays, detached, for the next attempt).
func TestLimitResumeStalledResendFreesSlot(t *testing.T) {
	const grace = time.Second
	release := make(chan struct{})
	r := newRig(t, time.Hour, func(cfg *rsftp.ServerConfig) {
		cfg.LoginGraceTime = grace
		cfg.MaxUnauthConns = 1
		cfg.Exec = func(ctx context.Context, s *rsftp.ServerSession) int {
			<-release
			// Written while the client is away: retained, resent
			// on resumption (more than the transport buffers and the
			// link hold).
			io.CopyN(s.Channel, loadPattern(1), 4<<20)
			return 0
		}
	}, netsim.WithLatency(time.Millisecond), netsim.WithBufferSize(64<<10))

	var mu sync.Mutex
	var last *stallConn
	c := r.dial(func(cfg *rsftp.ClientConfig) {
		cfg.Resume.AliveInterval = time.Hour // this test cuts by hand
		cfg.Resume.Redial = func(ctx context.Context) (net.Conn, error) {
			nc, err := r.net.Dial(ctx, r.addr)
			if err != nil {
				return nil, err
			}
			sc := &stallConn{Conn: nc, stalled: make(chan struct{})}
			mu.Lock()
			last = sc
			mu.Unlock()
			return sc, nil
		}
		events := cfg.Resume.Events
		cfg.Resume.Events = func(e rsftp.Event) {
			events(e)
			if e.Kind == rsftp.EventResumed {
				// The ACCEPT was read; from here the client reads
				// nothing more.
				mu.Lock()
				last.stall()
				mu.Unlock()
			}
		}
	})
	sess, err := c.NewSession(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Exec(context.Background(), "gen"); err != nil {
		t.Fatal(err)
	}
	// The link goes; while the client cannot come back, the server's
	// handler writes 4 MiB into the detached session.
	r.net.SetPathDown(true)
	r.net.CutAll(netsim.Reset)
	deadline := time.Now().Add(10 * time.Second)
	for r.srv.ResumeStats().Detached != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the server did not detach the session")
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	for r.srv.ResumeStats().RetainedBytes < 4<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("the server retains %d bytes", r.srv.ResumeStats().RetainedBytes)
		}
		time.Sleep(5 * time.Millisecond)
	}
	r.net.SetPathDown(false)
	r.waitResumed(1, 10*time.Second)

	// The server's resend now waits on a client that reads nothing. A
	// new client needs the only unauthenticated slot: it must get it
	// once the grace time of the resumption is over.
	start := time.Now()
	var other *rsftp.Client
	for other == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		nc, err := r.net.Dial(ctx, r.addr)
		if err == nil {
			other, err = rsftp.NewClient(ctx, nc, r.addr, r.clientConfig(nil))
		}
		cancel()
		if other != nil {
			break
		}
		if time.Since(start) > grace+10*time.Second {
			t.Fatalf("no new client admitted %v after the stalled resumption: %v", time.Since(start).Round(time.Millisecond), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	other.Close()
	// The stalled session was only detached, not ended.
	if st := r.srv.ResumeStats(); st.Sessions < 1 {
		t.Fatalf("the stalled client's session is gone: %+v", st)
	}
}

// A plain connection whose client has gone silent (here: it stopped
// reading and sending after logging in) is closed after
// ClientAliveCountMax unanswered keepalives; an idle client that answers
// them stays.
func TestLimitClientAlive(t *testing.T) {
	const interval = 200 * time.Millisecond
	r := newLimitRig(t, 0, func(cfg *rsftp.ServerConfig) {
		cfg.ClientAliveInterval = interval
		cfg.ClientAliveCountMax = 2
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	silent := &stallConn{Conn: nc, stalled: make(chan struct{})}
	t.Cleanup(func() { nc.Close() })
	if _, err := rsftp.NewClient(ctx, silent, r.addr, r.clientConfig("alice")); err != nil {
		t.Fatal(err)
	}
	silent.stall()
	idle, err := r.dial(t)
	if err != nil {
		t.Fatal(err)
	}

	gone := func(addr string) bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, l := range r.logs {
			if strings.Contains(l, addr) && strings.Contains(l, "did not answer") {
				return true
			}
		}
		return false
	}
	start := time.Now()
	for !gone(nc.LocalAddr().String()) {
		if time.Since(start) > 10*time.Second {
			t.Fatal("the silent client's connection was not closed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The server closed it, not earlier than the probes allow.
	if d := time.Since(start); d < 2*interval {
		t.Errorf("closed %v after the client went silent, before 2 probes could go unanswered", d)
	}
	// The idle client answered every probe and is still served.
	time.Sleep(4 * interval)
	if gone(idle.Transport().LocalAddr().String()) {
		t.Fatal("the idle client that answers keepalives was closed")
	}
	if _, err := sessionOutput(idle, "still here"); err != nil {
		t.Fatalf("idle client: %v", err)
	}
}

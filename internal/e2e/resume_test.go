package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/channel"
	"github.com/rsftp/rsftp/internal/netsim"
	"github.com/rsftp/rsftp/kex"
	"github.com/rsftp/rsftp/resume"
	"github.com/rsftp/rsftp/sftp"
)

// rig is a resumable server and client over the network simulator.
type rig struct {
	t       testing.TB
	net     *netsim.Network
	srv     *rsftp.Server
	root    string
	addr    string
	hostKey kex.Signer
	userKey kex.Signer

	mu           sync.Mutex
	clientEvents []rsftp.Event
	serverEvents []rsftp.Event
}

func signer(t testing.TB) kex.Signer {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := kex.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// testServerConfig is a server with hostKey that lets in userKey under
// any user name, runs echoHandler for exec, serves SFTP with sc, and
// allows forwarding.
func testServerConfig(hostKey, userKey kex.Signer, sc *sftp.ServerConfig) *rsftp.ServerConfig {
	userPub := userKey.PublicKey().Marshal()
	return &rsftp.ServerConfig{
		HostKeys: []kex.Signer{hostKey},
		Auth: auth.ServerConfig{PublicKeyCallback: func(user string, key kex.PublicKey) (*auth.Permissions, error) {
			if bytes.Equal(key.Marshal(), userPub) {
				return &auth.Permissions{}, nil
			}
			return nil, errors.New("not authorized")
		}},
		Exec: echoHandler,
		Subsystems: map[string]rsftp.Handler{"sftp": func(ctx context.Context, s *rsftp.ServerSession) int {
			if err := sftp.Serve(ctx, s.Channel, sc); err != nil {
				return 1
			}
			return 0
		}},
		AllowTCPForwarding: func(string, string, int) bool { return true },
	}
}

// echoHandler copies stdin to stdout: an exec stream that stays open.
func echoHandler(ctx context.Context, s *rsftp.ServerSession) int {
	io.Copy(s.Channel, s.Channel)
	return 0
}

func newRig(t testing.TB, hold time.Duration, mod func(*rsftp.ServerConfig), opts ...netsim.Option) *rig {
	t.Helper()
	r := &rig{t: t, net: netsim.New(opts...), root: t.TempDir(), addr: "198.18.0.1:22",
		hostKey: signer(t), userKey: signer(t)}
	t.Cleanup(func() { r.net.Close() })
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, e := range r.clientEvents {
			t.Logf("client %s %s attempt %d err %v", e.Time.Format("15:04:05.000"), e.Kind, e.Attempt, e.Err)
		}
		for _, e := range r.serverEvents {
			t.Logf("server %s %s err %v", e.Time.Format("15:04:05.000"), e.Kind, e.Err)
		}
	})
	cfg := testServerConfig(r.hostKey, r.userKey, &sftp.ServerConfig{Root: r.root})
	cfg.Logf = func(string, ...any) {}
	cfg.Resume = &rsftp.ResumeServerConfig{Hold: hold, IdleTimeout: time.Second, Events: func(e rsftp.Event) {
		r.mu.Lock()
		r.serverEvents = append(r.serverEvents, e)
		r.mu.Unlock()
	}}
	if mod != nil {
		mod(cfg)
	}
	srv, err := rsftp.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.srv = srv
	l, err := r.net.Listen(r.addr)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return r
}

func (r *rig) clientConfig(mod func(*rsftp.ClientConfig)) *rsftp.ClientConfig {
	hk := r.hostKey.PublicKey().Marshal()
	cfg := &rsftp.ClientConfig{
		User: "alice",
		Auth: []auth.Method{auth.PublicKeySigners(r.userKey)},
		HostKeyCallback: func(host string, port int, k kex.PublicKey) error {
			if !bytes.Equal(k.Marshal(), hk) {
				return errors.New("host key mismatch")
			}
			return nil
		},
		Resume: &rsftp.ResumeConfig{
			Redial:         func(ctx context.Context) (net.Conn, error) { return r.net.Dial(ctx, r.addr) },
			AliveInterval:  100 * time.Millisecond,
			AliveCountMax:  3,
			MinBackoff:     20 * time.Millisecond,
			MaxBackoff:     500 * time.Millisecond,
			AttemptTimeout: 3 * time.Second,
			NoNetworkWatch: true,
			Events: func(e rsftp.Event) {
				r.mu.Lock()
				r.clientEvents = append(r.clientEvents, e)
				r.mu.Unlock()
			},
		},
	}
	if mod != nil {
		mod(cfg)
	}
	return cfg
}

func (r *rig) dial(mod func(*rsftp.ClientConfig)) *rsftp.Client {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := r.net.Dial(ctx, r.addr)
	if err != nil {
		r.t.Fatal(err)
	}
	c, err := rsftp.NewClient(ctx, nc, r.addr, r.clientConfig(mod))
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { c.Close() })
	return c
}

// count counts the events of a kind; the caller holds r.mu.
func (r *rig) count(events []rsftp.Event, kind rsftp.EventKind) int {
	n := 0
	for _, e := range events {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

func (r *rig) clientCount(kind rsftp.EventKind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.count(r.clientEvents, kind)
}

// waitResumed waits until the client has resumed n times.
func (r *rig) waitResumed(n int, within time.Duration) {
	r.t.Helper()
	deadline := time.Now().Add(within)
	for r.clientCount(rsftp.EventResumed) < n {
		if time.Now().After(deadline) {
			r.mu.Lock()
			defer r.mu.Unlock()
			for _, e := range r.clientEvents {
				r.t.Logf("client event %s attempt %d err %v", e.Kind, e.Attempt, e.Err)
			}
			r.t.Fatalf("no %d-th resume within %v", n, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (r *rig) sftp(c *rsftp.Client) *sftp.Client {
	r.t.Helper()
	sc, _ := openSFTP(r.t, c)
	return sc
}

// resumeStatus is c's Client.ResumeStatus; the test fails if c's session
// is not resumable (whose zero status would read as Attached).
func resumeStatus(t testing.TB, c *rsftp.Client) rsftp.ResumeStatus {
	t.Helper()
	st, ok := c.ResumeStatus()
	if !ok {
		t.Fatal("the session is not resumable")
	}
	return st
}

// openSFTP starts the sftp subsystem on a new session of c and an SFTP
// client on it, closed when the test ends; it returns the session too.
func openSFTP(t testing.TB, c *rsftp.Client, opts ...sftp.ClientOption) (*sftp.Client, *channel.Session) {
	t.Helper()
	ctx := context.Background()
	sess, err := c.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Subsystem(ctx, "sftp"); err != nil {
		t.Fatal(err)
	}
	sc, err := sftp.NewClient(ctx, sess.Channel(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	return sc, sess
}

func randomFile(t testing.TB, path string, size int64) [32]byte {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, size); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

// progressWriter hashes what it is given and calls at(n) as bytes pass.
type progressWriter struct {
	h  io.Writer
	n  atomic.Int64
	at func(n int64)
}

func (w *progressWriter) Write(p []byte) (int, error) {
	w.h.Write(p)
	n := w.n.Add(int64(len(p)))
	if w.at != nil {
		w.at(n)
	}
	return len(p), nil
}

// cutter cuts every live link once the transfer passes each mark, but
// only once the session resumed from the previous cut (so that each cut
// breaks a live connection).
type cutter struct {
	net   *netsim.Network
	r     *rig
	marks []int64
	modes []netsim.CutMode
	base  int // resumptions before this cutter
	mu    sync.Mutex
	next  int
}

func (c *cutter) at(n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.next < len(c.marks) && n >= c.marks[c.next] && c.r.clientCount(rsftp.EventResumed) >= c.base+c.next {
		c.net.CutAll(c.modes[c.next%len(c.modes)])
		c.next++
	}
}

func (c *cutter) done() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.next
}

// TestResumeSFTPAcrossCuts moves files both ways through SFTP while the
// link is cut, by RST or silently, several times: every byte arrives once
// (equal SHA-256), and the client reports each resumption.
func TestResumeSFTPAcrossCuts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		modes []netsim.CutMode
	}{
		{"reset", []netsim.CutMode{netsim.Reset}},
		{"blackhole", []netsim.CutMode{netsim.Blackhole}},
		{"mixed", []netsim.CutMode{netsim.Reset, netsim.Blackhole}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const size = 12 << 20
			r := newRig(t, time.Minute, nil, netsim.WithLatency(2*time.Millisecond))
			want := randomFile(t, filepath.Join(r.root, "big"), size)
			c := r.dial(nil)
			if !c.Resumable() {
				t.Fatal("session not resumable")
			}
			sc := r.sftp(c)

			// Download with three cuts.
			cut := &cutter{net: r.net, r: r, marks: []int64{size / 4, size / 2, 3 * size / 4}, modes: tc.modes}
			h := sha256.New()
			pw := &progressWriter{h: h, at: cut.at}
			f, err := sc.Open("big")
			if err != nil {
				t.Fatal(err)
			}
			if n, err := f.WriteTo(pw); err != nil || n != size {
				t.Fatalf("download: %d bytes, %v", n, err)
			}
			f.Close()
			if got := [32]byte(h.Sum(nil)); got != want {
				t.Fatal("download: SHA-256 differs")
			}
			r.waitResumed(cut.done(), 10*time.Second)

			// Upload with three cuts, marked by what the client read.
			cut2 := &cutter{net: r.net, r: r, base: cut.done(), marks: []int64{size / 4, size / 2, 3 * size / 4}, modes: tc.modes}
			src, err := os.Open(filepath.Join(r.root, "big"))
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			up, err := sc.Create("up")
			if err != nil {
				t.Fatal(err)
			}
			if n, err := up.ReadFrom(&progressReader{r: src, at: cut2.at}); err != nil || n != size {
				t.Fatalf("upload: %d bytes, %v", n, err)
			}
			if err := up.Close(); err != nil {
				t.Fatal(err)
			}
			if got := fileHash(t, filepath.Join(r.root, "up")); got != want {
				t.Fatal("upload: SHA-256 differs")
			}
			r.waitResumed(cut.done()+cut2.done(), 10*time.Second)
			st := resumeStatus(t, c).Stats
			t.Logf("%d cuts; attaches %d, resent %d messages (%d bytes), %d ACKs", cut.done()+cut2.done(),
				st.Attaches, st.ResentMessages, st.ResentBytes, st.AcksSent)
			if st.Attaches != 1+cut.done()+cut2.done() {
				t.Errorf("attaches = %d, want %d", st.Attaches, 1+cut.done()+cut2.done())
			}
		})
	}
}

type progressReader struct {
	r  io.Reader
	n  int64
	at func(int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	p.at(p.n)
	return n, err
}

func fileHash(t *testing.T, path string) [32]byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

// TestResumeEveryChannelType keeps an exec stream, a direct-tcpip
// forward and an SFTP session open across cuts and checks each still
// works, in order, afterwards.
func TestResumeEveryChannelType(t *testing.T) {
	r := newRig(t, time.Minute, nil, netsim.WithLatency(time.Millisecond))
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	c := r.dial(nil)
	ctx := context.Background()
	stream, err := execEcho(c)
	if err != nil {
		t.Fatal(err)
	}
	ep := echo.Addr().(*net.TCPAddr)
	fwd, err := c.DialTCP(ctx, "127.0.0.1", ep.Port)
	if err != nil {
		t.Fatal(err)
	}
	sc := r.sftp(c)
	if err := os.WriteFile(filepath.Join(r.root, "small"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	roundTrip := func(rw io.ReadWriter, msg string) {
		t.Helper()
		if _, err := io.WriteString(rw, msg); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(rw, buf); err != nil {
			t.Fatal(err)
		}
		if string(buf) != msg {
			t.Fatalf("got %q, want %q", buf, msg)
		}
	}
	roundTrip(stream, "before any cut")
	roundTrip(fwd, "before any cut")
	for i, mode := range []netsim.CutMode{netsim.Reset, netsim.Blackhole, netsim.Reset} {
		// Write before the cut so that some of it is in flight.
		msg := fmt.Sprintf("message %d before the cut;", i)
		io.WriteString(stream, msg)
		io.WriteString(fwd, msg)
		r.net.CutAll(mode)
		t.Logf("cut %d (%v)", i, mode)
		rest := fmt.Sprintf("message %d after the cut", i)
		roundTripAfter := func(rw io.ReadWriter) {
			t.Helper()
			buf := make([]byte, len(msg))
			if _, err := io.ReadFull(rw, buf); err != nil || string(buf) != msg {
				t.Fatalf("in flight at the cut: %q %v", buf, err)
			}
			roundTrip(rw, rest)
		}
		roundTripAfter(stream)
		roundTripAfter(fwd)
		st, err := sc.Stat("small")
		if err != nil || st.Size != 5 {
			t.Fatalf("sftp after cut %d: %v %v", i, st, err)
		}
		r.waitResumed(i+1, 10*time.Second)
	}
	// A global request is answered after the cuts too.
	if _, _, err := c.Mux().SendRequest(ctx, "keepalive@openssh.com", true, nil); err != nil {
		t.Fatal(err)
	}
}

// TestResumeLongOutage: the path is down for longer than 10 s (dials
// fail and the old link is silent); the transfer carries on after it.
func TestResumeLongOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 11 s")
	}
	const size = 4 << 20
	r := newRig(t, time.Minute, nil, netsim.WithLatency(time.Millisecond), netsim.WithBandwidth(8<<20))
	want := randomFile(t, filepath.Join(r.root, "big"), size)
	c := r.dial(nil)
	sc := r.sftp(c)
	var once sync.Once
	h := sha256.New()
	pw := &progressWriter{h: h, at: func(n int64) {
		if n >= size/3 {
			once.Do(func() {
				r.net.SetPathDown(true)
				r.net.CutAll(netsim.Blackhole)
				time.AfterFunc(11*time.Second, func() { r.net.SetPathDown(false) })
			})
		}
	}}
	f, err := sc.Open("big")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if n, err := f.WriteTo(pw); err != nil || n != size {
		t.Fatalf("download: %d bytes, %v", n, err)
	}
	if [32]byte(h.Sum(nil)) != want {
		t.Fatal("SHA-256 differs")
	}
	if time.Since(start) < 11*time.Second {
		t.Fatal("the transfer finished during the outage")
	}
	if n := r.clientCount(rsftp.EventResumeFailed); n < 3 {
		t.Errorf("%d failed attempts during an 11 s outage; expected retries", n)
	}
}

// TestResumeStatus: Client.ResumeStatus is a copy of the session's state
// that names the session as the server's events do, follows it through a
// resumption and a Close, and reports ok == false for a session that is
// not resumable.
func TestResumeStatus(t *testing.T) {
	r := newRig(t, time.Minute, nil, netsim.WithLatency(time.Millisecond))
	c := r.dial(nil)
	st := resumeStatus(t, c)
	if st.State != resume.Attached || st.Hold != time.Minute || st.Stats.Attaches != 1 || st.Err != nil {
		t.Fatalf("new session: state %v, hold %v, %d attaches, err %v", st.State, st.Hold, st.Stats.Attaches, st.Err)
	}
	if len(st.Handle) != resume.HandleLen || st.Session != hex.EncodeToString(st.Handle[:8]) {
		t.Fatalf("handle %x, session %q", st.Handle, st.Session)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		var named string
		for _, e := range r.serverEvents {
			if e.Kind == rsftp.EventConnected {
				named = e.Session
			}
		}
		r.mu.Unlock()
		if named != "" {
			if named != st.Session {
				t.Fatalf("the server's events name the session %q, the client's status %q", named, st.Session)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no connected event on the server")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The status is a copy: changing it changes nothing.
	clear(st.Handle)
	if again := resumeStatus(t, c); again.Session != st.Session || bytes.Equal(again.Handle, st.Handle) {
		t.Fatalf("the status shares its handle with the session: %x", again.Handle)
	}

	if out, err := sessionOutput(c, "before"); err != nil || out != "before" {
		t.Fatalf("echo: %q, %v", out, err)
	}
	r.net.CutAll(netsim.Reset)
	r.waitResumed(1, 10*time.Second)
	if out, err := sessionOutput(c, "after"); err != nil || out != "after" {
		t.Fatalf("echo after resuming: %q, %v", out, err)
	}
	st = resumeStatus(t, c)
	if st.State != resume.Attached || st.Stats.Attaches != 2 || st.Stats.Sent == 0 || st.Stats.Received == 0 {
		t.Fatalf("after a resumption: state %v, %d attaches, sent %d, received %d", st.State, st.Stats.Attaches, st.Stats.Sent, st.Stats.Received)
	}

	c.Close()
	st = resumeStatus(t, c)
	if st.State != resume.Closed || !errors.Is(st.Err, resume.ErrSessionClosed) {
		t.Fatalf("after Close: state %v, err %v", st.State, st.Err)
	}

	plain := r.dial(func(cfg *rsftp.ClientConfig) { cfg.Resume = nil })
	if plain.Resumable() {
		t.Fatal("a client without ResumeConfig is resumable")
	}
	if st, ok := plain.ResumeStatus(); ok {
		t.Fatalf("ResumeStatus of a plain session: %+v, ok", st)
	}
}

// TestResumeHoldExpires: an outage longer than the server's hold time
// ends the session on both sides with a clear error.
func TestResumeHoldExpires(t *testing.T) {
	r := newRig(t, time.Second, nil, netsim.WithLatency(time.Millisecond))
	c := r.dial(nil)
	if got := resumeStatus(t, c).Hold; got != time.Second {
		t.Fatalf("announced hold %v, want 1s", got)
	}
	r.net.SetPathDown(true)
	r.net.CutAll(netsim.Blackhole)
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		if !errors.Is(err, rsftp.ErrHoldExpired) {
			t.Fatalf("session ended with %v, want ErrHoldExpired", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("session still alive long after the hold time")
	}
	// The server discarded it: a late resume finds nothing.
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		n := r.count(r.serverEvents, rsftp.EventClosed)
		r.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("server did not discard the expired session")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestResumeCutDuringRekeyAndHandshake rekeys every 256 KiB and cuts the
// new connections during their key exchange or resume exchange.
func TestResumeCutDuringRekeyAndHandshake(t *testing.T) {
	const size = 8 << 20
	r := newRig(t, time.Minute, func(cfg *rsftp.ServerConfig) {
		cfg.Transport.RekeyBytes = 256 << 10
	}, netsim.WithLatency(time.Millisecond))
	want := randomFile(t, filepath.Join(r.root, "big"), size)
	var attempts atomic.Int32
	c := r.dial(func(cfg *rsftp.ClientConfig) {
		cfg.Transport.RekeyBytes = 256 << 10
		cfg.Resume.Redial = func(ctx context.Context) (net.Conn, error) {
			nc, err := r.net.Dial(ctx, r.addr)
			if err != nil {
				return nil, err
			}
			// Every other attempt dies early: in the version
			// exchange, the kex or the resume exchange.
			if a := attempts.Add(1); a%2 == 1 {
				link := netsim.LinkOf(nc)
				time.AfterFunc(time.Duration(a%7)*time.Millisecond, func() { link.Cut(netsim.Reset) })
			}
			return nc, nil
		}
	})
	sc := r.sftp(c)
	cut := &cutter{net: r.net, r: r, marks: []int64{size / 5, 2 * size / 5, 3 * size / 5, 4 * size / 5}, modes: []netsim.CutMode{netsim.Reset}}
	h := sha256.New()
	f, err := sc.Open("big")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f.WriteTo(&progressWriter{h: h, at: cut.at}); err != nil || n != size {
		t.Fatalf("download: %d bytes, %v", n, err)
	}
	if [32]byte(h.Sum(nil)) != want {
		t.Fatal("SHA-256 differs")
	}
	if k := c.Transport().KexCount(); k < 2 {
		t.Logf("current connection did %d key exchanges", k)
	}
	t.Logf("attempts %d, resumed %d, failed %d", attempts.Load(), r.clientCount(rsftp.EventResumed), r.clientCount(rsftp.EventResumeFailed))
}

// TestResumeCutWithFullBuffers stops reading until the windows and
// socket buffers are full, then cuts.
func TestResumeCutWithFullBuffers(t *testing.T) {
	const size = 16 << 20
	r := newRig(t, time.Minute, nil, netsim.WithLatency(time.Millisecond))
	want := randomFile(t, filepath.Join(r.root, "big"), size)
	c := r.dial(nil)
	sc := r.sftp(c)
	gate := make(chan struct{})
	var once sync.Once
	h := sha256.New()
	pw := &progressWriter{h: h, at: func(n int64) {
		if n >= size/4 {
			once.Do(func() { <-gate })
		}
	}}
	go func() {
		time.Sleep(500 * time.Millisecond) // windows fill up meanwhile
		r.net.CutAll(netsim.Reset)
		time.Sleep(50 * time.Millisecond)
		r.net.CutAll(netsim.Blackhole)
		close(gate)
	}()
	f, err := sc.Open("big")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f.WriteTo(pw); err != nil || n != size {
		t.Fatalf("download: %d bytes, %v", n, err)
	}
	if [32]byte(h.Sum(nil)) != want {
		t.Fatal("SHA-256 differs")
	}
}

// TestResumeManyCutsInARow cuts every link 20 times in quick succession
// while an exec stream echoes numbered lines: all come back once, in
// order.
func TestResumeManyCutsInARow(t *testing.T) {
	r := newRig(t, time.Minute, nil, netsim.WithLatency(time.Millisecond))
	c := r.dial(nil)
	stream, err := execEcho(c)
	if err != nil {
		t.Fatal(err)
	}
	const lines = 2000
	var want bytes.Buffer
	for i := range lines {
		fmt.Fprintf(&want, "line %d\n", i)
	}
	go func() {
		w := stream
		defer w.Close()
		for i := range lines {
			fmt.Fprintf(w, "line %d\n", i)
			if i%100 == 50 {
				r.net.CutAll([]netsim.CutMode{netsim.Reset, netsim.Blackhole}[i/100%2])
			}
		}
	}()
	got, err := io.ReadAll(stream)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("echo differs: %d bytes, want %d", len(got), want.Len())
	}
}

// TestResumeFallsBackToPlainSSH: either side without the extension gives
// a working, non-resumable connection.
func TestResumeFallsBackToPlainSSH(t *testing.T) {
	t.Run("server without", func(t *testing.T) {
		r := newRig(t, time.Minute, func(cfg *rsftp.ServerConfig) { cfg.Resume = nil })
		c := r.dial(nil)
		if c.Resumable() {
			t.Fatal("resumable without server support")
		}
		out, err := sessionOutput(c, "x")
		if err != nil || out != "x" {
			t.Fatal(out, err)
		}
	})
	t.Run("client without", func(t *testing.T) {
		r := newRig(t, time.Minute, nil)
		c := r.dial(func(cfg *rsftp.ClientConfig) { cfg.Resume = nil })
		if c.Resumable() {
			t.Fatal("resumable without client support")
		}
		out, err := sessionOutput(c, "y")
		if err != nil || out != "y" {
			t.Fatal(out, err)
		}
	})
	t.Run("server full", func(t *testing.T) {
		r := newRig(t, time.Minute, func(cfg *rsftp.ServerConfig) { cfg.Resume.MaxSessions = 1 })
		c1 := r.dial(nil)
		c2 := r.dial(nil)
		if !c1.Resumable() || c2.Resumable() {
			t.Fatalf("resumable: first %v, second %v; want true, false", c1.Resumable(), c2.Resumable())
		}
		out, err := sessionOutput(c2, "z")
		if err != nil || out != "z" {
			t.Fatal(out, err)
		}
	})
}

// echoStream is the stdin and stdout of an exec session.
type echoStream struct {
	io.Reader
	io.WriteCloser
}

// execEcho starts the echo handler.
func execEcho(c *rsftp.Client) (*echoStream, error) {
	ctx := context.Background()
	sess, err := c.NewSession(ctx)
	if err != nil {
		return nil, err
	}
	es := &echoStream{Reader: sess.Stdout(), WriteCloser: sess.Stdin()}
	if err := sess.Exec(ctx, "echo"); err != nil {
		return nil, err
	}
	return es, nil
}

// sessionOutput runs the echo handler with input in.
func sessionOutput(c *rsftp.Client, in string) (string, error) {
	es, err := execEcho(c)
	if err != nil {
		return "", err
	}
	io.WriteString(es, in)
	es.Close()
	b, err := io.ReadAll(es)
	return string(b), err
}

// TestResumeCloseEndsSession: Client.Close is an explicit end; the
// server discards the session at once instead of holding it.
func TestResumeCloseEndsSession(t *testing.T) {
	r := newRig(t, time.Hour, nil)
	c := r.dial(nil)
	if _, err := sessionOutput(c, "a"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		closed, lost := r.count(r.serverEvents, rsftp.EventClosed), r.count(r.serverEvents, rsftp.EventLinkLost)
		r.mu.Unlock()
		if lost != 0 {
			t.Fatal("server saw a lost link instead of a close")
		}
		if closed == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("server still holds the closed session")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

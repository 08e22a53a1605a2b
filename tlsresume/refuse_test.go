package tlsresume

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rsftp/rsftp/resume"
)

// echoServer accepts sessions on ln and echoes each.
func echoServer(ln *Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			io.Copy(c, c)
		}()
	}
}

// rawLink is a connection of our own to ln in the resumable mode, on
// which a test writes records of its choice.
func rawLink(t *testing.T, ln *Listener) *link {
	t.Helper()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	conf := clientTLS(t)
	conf.ServerName = "127.0.0.1"
	conf.NextProtos = []string{Marker}
	bc := &batchConn{Conn: raw}
	tc := tls.Client(bc, conf)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	l, err := newLink(tc, bc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Abort() })
	return l
}

// answer sends record req on l and returns the server's answer.
func answer(t *testing.T, l *link, req []byte) []byte {
	t.Helper()
	if err := l.WritePacket(req); err != nil {
		t.Fatal(err)
	}
	l.raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	p, err := l.ReadPacket()
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	return bytes.Clone(p)
}

func wantFailure(t *testing.T, p []byte, reason uint32) {
	t.Helper()
	f, err := resume.ParseFailure(p)
	if err != nil {
		t.Fatalf("answer %x is not a FAILURE: %v", p, err)
	}
	if f.Reason != reason {
		t.Fatalf("FAILURE reason %d (%s), want %d", f.Reason, f.Description, reason)
	}
}

func request(rk, binding, handle []byte, received uint64) []byte {
	return (&resume.Request{Handle: handle, Received: received, MAC: resume.RequestMAC(rk, binding, handle, received)}).Marshal()
}

// checkUntouched: the session still runs on its first connection, both
// sides, and carries data.
func checkUntouched(t *testing.T, c *Conn, ln *Listener) {
	t.Helper()
	msg := []byte("still here")
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo after a refused request: %q %v", got, err)
	}
	if st := c.Status(); st.State != resume.Attached || st.Stats.Attaches != 1 {
		t.Fatalf("client session %v after %d attaches", st.State, st.Stats.Attaches)
	}
	ln.mu.Lock()
	defer ln.mu.Unlock()
	for _, sc := range ln.live {
		if st := sc.Status(); st.State != resume.Attached || st.Stats.Attaches != 1 {
			t.Fatalf("server session %v after %d attaches", st.State, st.Stats.Attaches)
		}
	}
}

// TestRefusedRequests: a resume request replayed onto another
// connection, one with a wrong MAC, and one for a closed session are
// refused, and the session they name is untouched; the same request
// made for the connection it is sent on is accepted (so the refusals are
// the MAC's and the registry's doing).
func TestRefusedRequests(t *testing.T) {
	ln := loopback(t, nil, nil)
	go echoServer(ln)
	// The accepted request at the end takes the session from c's
	// connection: c must not reconnect and take it back before the test
	// has read the answer (1 run in 40 did).
	var noRedial atomic.Bool
	cfg := &Config{NoNetworkWatch: true, DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		if noRedial.Load() {
			return nil, errors.New("test: no reconnection")
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	c, err := Dial(testCtx(t), "tcp", ln.Addr().String(), clientTLS(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rk, err := resumeKey(&c.cur.state)
	if err != nil {
		t.Fatal(err)
	}
	handle := c.sess.Handle()
	checkUntouched(t, c, ln)
	received := c.Status().Stats.Received

	// Replay: made for connection a, sent on b.
	a, b := rawLink(t, ln), rawLink(t, ln)
	forA := request(rk, a.SessionID(), handle, received)
	wantFailure(t, answer(t, b, forA), resume.ReasonAuthFailed)
	checkUntouched(t, c, ln)

	// A wrong MAC: one bit of it flipped, and a MAC under another key.
	d := rawLink(t, ln)
	bad := request(rk, d.SessionID(), handle, received)
	bad[len(bad)-1] ^= 1
	wantFailure(t, answer(t, d, bad), resume.ReasonAuthFailed)
	e := rawLink(t, ln)
	other := bytes.Repeat([]byte{7}, KeyLen)
	wantFailure(t, answer(t, e, request(other, e.SessionID(), handle, received)), resume.ReasonAuthFailed)
	checkUntouched(t, c, ln)

	// The request made for a, on a: accepted.
	noRedial.Store(true)
	p := answer(t, a, forA)
	acc, err := resume.ParseAccept(p)
	if err != nil {
		t.Fatalf("the valid request was answered %x: %v", p, err)
	}
	if !resume.VerifyAccept(rk, a.SessionID(), handle, acc, received) {
		t.Fatal("ACCEPT does not authenticate")
	}
	if acc.HoldSeconds != uint32(resume.DefaultHold/time.Second) {
		t.Fatalf("hold %d s announced", acc.HoldSeconds)
	}
}

// TestResumeClosedSession: once the client closed its session, a request
// that authenticates is refused as for an unknown session.
func TestResumeClosedSession(t *testing.T) {
	ln := loopback(t, nil, nil)
	go echoServer(ln)
	c, err := Dial(testCtx(t), "tcp", ln.Addr().String(), clientTLS(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	rk, _ := resumeKey(&c.cur.state)
	handle := c.sess.Handle()
	c.Write([]byte("x"))
	io.ReadFull(c, make([]byte, 1))
	received := c.Status().Stats.Received
	c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for ln.Registry().Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the server still holds the closed session")
		}
		time.Sleep(5 * time.Millisecond)
	}
	l := rawLink(t, ln)
	wantFailure(t, answer(t, l, request(rk, l.SessionID(), handle, received)), resume.ReasonSessionUnknown)
	if ln.Registry().Len() != 0 {
		t.Fatal("a refused request made a session")
	}
}

// TestProtocolErrorEndsSession: a malformed record on an attached
// session's connection ends the session; the peer is told with CLOSE
// reason 2 and the application's Read returns the error.
func TestProtocolErrorEndsSession(t *testing.T) {
	ln := loopback(t, nil, nil)
	l := rawLink(t, ln)
	if err := l.WritePacket((&Hello{}).Marshal()); err != nil {
		t.Fatal(err)
	}
	l.raw.SetReadDeadline(time.Now().Add(10 * time.Second))
	p, err := l.ReadPacket()
	if err != nil || p[0] != RecEnable {
		t.Fatalf("answer to HELLO: %x %v", p, err)
	}
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	readErr := make(chan error, 1)
	go func() {
		_, err := sc.Read(make([]byte, 10))
		readErr <- err
	}()
	if err := l.WritePacket([]byte{RecPing, 0}); err != nil {
		t.Fatal(err)
	}
	_, err = l.ReadPacket()
	var ce *ClosedError
	if !errors.As(err, &ce) || ce.Reason != ReasonProtocolError {
		t.Fatalf("after a PING with a body the server said %v, want CLOSE reason 2", err)
	}
	var pe *ProtocolError
	if err := <-readErr; !errors.As(err, &pe) {
		t.Fatalf("the server's Read returned %v", err)
	}
	if st := sc.(*Conn).Status(); st.State != resume.Closed {
		t.Fatalf("server session %v", st.State)
	}
}

// TestListenerCloseEndsDetached: once the listener is closed, a session
// whose connection is lost ends at once (nothing could resume it), and
// its retained data is released; an attached one goes on meanwhile.
func TestListenerCloseEndsDetached(t *testing.T) {
	ln := loopback(t, nil, nil)
	go echoServer(ln)
	c, err := Dial(testCtx(t), "tcp", ln.Addr().String(), clientTLS(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	checkUntouched(t, c, ln)
	ln.Close()
	checkUntouched(t, c, ln) // still attached and working
	c.mu.Lock()
	l := c.cur
	c.mu.Unlock()
	l.Abort() // the link is lost
	deadline := time.Now().Add(10 * time.Second)
	for ln.Registry().Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the closed listener still holds %d sessions", ln.Registry().Len())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReconnectNeedsSameServerKey: a reconnection's server must show the
// first connection's key, even with a certificate the client trusts for
// the name: the client sends no REQUEST to it, and resumes once the
// original key is back.
func TestReconnectNeedsSameServerKey(t *testing.T) {
	p := getPKI(t)
	orig, other := p.cert, p.leaf(t)
	var cur atomic.Pointer[tls.Certificate]
	cur.Store(&orig)
	conf := &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cur.Load(), nil }}
	ln, err := Listen("tcp", "127.0.0.1:0", conf, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go echoServer(ln)
	var mu sync.Mutex
	var failures []error
	resumed := make(chan struct{}, 1)
	cfg := fastCfg()
	cfg.Events = func(e resume.Event) {
		switch e.Kind {
		case resume.EventResumeFailed:
			mu.Lock()
			failures = append(failures, e.Err)
			mu.Unlock()
		case resume.EventResumed:
			resumed <- struct{}{}
		}
	}
	c, err := Dial(testCtx(t), "tcp", ln.Addr().String(), clientTLS(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	checkUntouched(t, c, ln)
	cur.Store(&other)
	c.Reconnect()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(failures)
		mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no failed attempt against the other key")
		}
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	for _, err := range failures {
		if !strings.Contains(err.Error(), "server's key changed") {
			t.Fatalf("attempt failed with %v, want the key check", err)
		}
	}
	mu.Unlock()
	select {
	case <-resumed:
		t.Fatal("resumed against another key")
	default:
	}
	cur.Store(&orig)
	select {
	case <-resumed:
	case <-time.After(10 * time.Second):
		t.Fatal("no resumption once the original key is back")
	}
	msg := []byte("back")
	c.Write(msg)
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo after resuming: %q %v", got, err)
	}
}

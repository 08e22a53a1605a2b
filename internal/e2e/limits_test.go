package e2e

// One test per server limit of the hardening issue, each driving a real
// peer against a real server on 127.0.0.1 with a small limit: a raw TCP
// peer where it must misbehave (stay silent, send a byte at a time, stop
// in the middle of a packet), the package's own client elsewhere.
//
// Timing assertions are deliberately loose (the machines running these
// are shared and noisy): a drop "at the grace time" means not much
// before it and within a few seconds after it.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/channel"
	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/kex"
	"github.com/rsftp/rsftp/resume"
	"github.com/rsftp/rsftp/sftp"
	"github.com/rsftp/rsftp/transport"
)

// limitRig is a server on a real loopback listener.
type limitRig struct {
	addr    string
	root    string
	hostKey kex.Signer
	userKey kex.Signer
	srv     *rsftp.Server

	mu     sync.Mutex
	logs   []string
	events []rsftp.Event
}

// newLimitRig starts a server with an exec echo handler, an sftp
// subsystem (whose MaxHandles is sftpHandles) and forwarding allowed;
// mod sets the limits under test.
func newLimitRig(t *testing.T, sftpHandles int, mod func(*rsftp.ServerConfig)) *limitRig {
	t.Helper()
	r := &limitRig{root: t.TempDir(), hostKey: signer(t), userKey: signer(t)}
	cfg := testServerConfig(r.hostKey, r.userKey, &sftp.ServerConfig{Root: r.root, MaxHandles: sftpHandles})
	cfg.Logf = func(format string, args ...any) {
		r.mu.Lock()
		r.logs = append(r.logs, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
		r.mu.Unlock()
	}
	if mod != nil {
		mod(cfg)
	}
	if cfg.Resume != nil {
		cfg.Resume.Events = func(e rsftp.Event) {
			r.mu.Lock()
			r.events = append(r.events, e)
			r.mu.Unlock()
		}
	}
	srv, err := rsftp.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.srv = srv
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = l.Addr().String()
	// Cleanups run last first: the server is closed (no more log lines)
	// before the log is printed.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, s := range r.logs {
			t.Logf("server: %s", s)
		}
		for _, e := range r.events {
			t.Logf("server event: %s session %s err %v", e.Kind, e.Session, e.Err)
		}
	})
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return r
}

func (r *limitRig) clientConfig(user string) *rsftp.ClientConfig {
	hk := r.hostKey.PublicKey().Marshal()
	return &rsftp.ClientConfig{
		User: user,
		Auth: []auth.Method{auth.PublicKeySigners(r.userKey)},
		HostKeyCallback: func(host string, port int, k kex.PublicKey) error {
			if !bytes.Equal(k.Marshal(), hk) {
				return errors.New("host key mismatch")
			}
			return nil
		},
	}
}

// dial logs in with the package's client.
func (r *limitRig) dial(t *testing.T) (*rsftp.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := rsftp.Dial(ctx, "tcp", r.addr, r.clientConfig("alice"))
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// dialEventually logs in, retrying for a few seconds: a limit's slot is
// released by the server's goroutine a moment after the peer sees the
// connection that held it end.
func (r *limitRig) dialEventually(t *testing.T, what string) *rsftp.Client {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := r.dial(t)
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no login within 5s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rawDial opens a plain TCP connection to the server.
func (r *limitRig) rawDial(t *testing.T) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", r.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// rawServed opens a raw connection that holds an unauthenticated slot:
// one the server sends its version on (left unread in the returned
// reader). It retries for a few seconds, as a slot is released a moment
// after the connection that held it ended or authenticated.
func (r *limitRig) rawServed(t *testing.T, what string) (net.Conn, *bufio.Reader) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		nc := r.rawDial(t)
		br := bufio.NewReader(nc)
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		b, err := br.Peek(len("SSH-2.0-"))
		nc.SetReadDeadline(time.Time{})
		if err == nil {
			if string(b) != "SSH-2.0-" {
				t.Fatalf("%s: the server sent %q", what, b)
			}
			return nc, br
		}
		nc.Close()
		if time.Now().After(deadline) {
			t.Fatalf("%s: not served within 5s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// assertDroppedAtOnce checks that a fresh raw connection is closed by the
// server without a byte: no unauthenticated slot was free.
func (r *limitRig) assertDroppedAtOnce(t *testing.T, what string) {
	t.Helper()
	nc := r.rawDial(t)
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := io.Copy(io.Discard, nc)
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		t.Fatalf("%s: the server kept the connection open (%d bytes sent) instead of dropping it", what, n)
	case n > 0:
		t.Fatalf("%s: the server served the connection (%d bytes) instead of dropping it", what, n)
	}
}

// watchClose reads a connection until it fails and reports when.
func watchClose(rd io.Reader) <-chan time.Time {
	closed := make(chan time.Time, 1)
	go func() {
		io.Copy(io.Discard, rd)
		closed <- time.Now()
	}()
	return closed
}

// TestLimitUnauthConns: past MaxUnauthConns connections that have not
// authenticated, a new one is closed at once; one that ends frees its
// slot, and so does one that authenticates.
func TestLimitUnauthConns(t *testing.T) {
	const limit = 2
	r := newLimitRig(t, 0, func(cfg *rsftp.ServerConfig) {
		cfg.MaxUnauthConns = limit
		cfg.LoginGraceTime = time.Minute // the silent peers must not time out
	})
	var held []net.Conn
	for i := range limit {
		nc, _ := r.rawServed(t, fmt.Sprintf("silent connection %d of %d (within the limit)", i+1, limit))
		held = append(held, nc)
	}
	r.assertDroppedAtOnce(t, fmt.Sprintf("connection %d with %d silent ones open", limit+1, limit))

	held[0].Close()
	c := r.dialEventually(t, "after a silent connection closed")
	// c has authenticated: it holds no slot, so with one silent
	// connection left there is room for one more.
	r.rawServed(t, "with one silent connection and an authenticated one (which must hold no slot)")
	r.assertDroppedAtOnce(t, "with the limit reached again")
	if _, err := sessionOutput(c, "still served"); err != nil {
		t.Fatalf("the authenticated client: %v", err)
	}
}

// served reports whether the server serves a fresh raw connection (sends
// its version line) or drops it at once; a served one is left open.
func (r *limitRig) served(t *testing.T) bool {
	t.Helper()
	nc := r.rawDial(t)
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, len("SSH-2.0-"))
	_, err := io.ReadFull(nc, b)
	nc.SetReadDeadline(time.Time{})
	var ne net.Error
	switch {
	case err == nil && string(b) == "SSH-2.0-":
		return true
	case errors.As(err, &ne) && ne.Timeout():
		t.Fatalf("the server neither served nor dropped a connection within 5s")
	case err == nil:
		t.Fatalf("the server sent %q", b)
	}
	return false
}

// TestLimitPerSourceStartups: PerSourceMaxStartups keeps one source
// from taking every unauthenticated slot (issue 14 item 6: idle TCP
// connections, renewed within the grace time, locked every user out,
// resuming ones included). A source that opens as many silent
// connections as MaxStartups allows is served only its per-source
// share; a client at another address (127.0.0.2, also loopback on
// Linux) still logs in, and its session, cut, still resumes from there.
func TestLimitPerSourceStartups(t *testing.T) {
	const full, perSource = 4, 2
	other := net.IPv4(127, 0, 0, 2)
	if l, err := net.Listen("tcp", "127.0.0.2:0"); err != nil {
		t.Skipf("127.0.0.2 is not usable here: %v", err)
	} else {
		l.Close()
	}
	r := newLimitRig(t, 0, func(cfg *rsftp.ServerConfig) {
		cfg.MaxStartups = rsftp.MaxStartups{Start: full, Rate: 100, Full: full}
		cfg.PerSourceMaxStartups = perSource
		cfg.LoginGraceTime = time.Minute // the silent peers must not time out
		cfg.Resume = &rsftp.ResumeServerConfig{Hold: time.Minute}
	})
	n := 0
	for range full + 2 {
		if r.served(t) {
			n++
		}
	}
	if n != perSource {
		t.Fatalf("127.0.0.1 opened %d silent connections and %d were served, want its per-source share %d", full+2, n, perSource)
	}

	dial := func(ctx context.Context) (net.Conn, error) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: other}}
		return d.DialContext(ctx, "tcp", r.addr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	cfg := r.clientConfig("alice")
	cfg.Resume = &rsftp.ResumeConfig{Redial: dial, NoNetworkWatch: true,
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	c, err := rsftp.NewClient(ctx, nc, r.addr, cfg)
	if err != nil {
		nc.Close()
		t.Fatalf("a client at 127.0.0.2 while 127.0.0.1 holds its share: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if !c.Resumable() {
		t.Fatal("the session is not resumable")
	}
	session := resumeStatus(t, c).Session
	if out, err := sessionOutput(c, "before"); err != nil || out != "before" {
		t.Fatalf("before the cut: %q, %v", out, err)
	}
	r.cut(t, nc, session, "the client's connection")
	if err := r.waitServerEvent(t, rsftp.EventResumed, session, "the resumption from 127.0.0.2"); err != nil {
		t.Fatalf("resumed with an error: %v", err)
	}
	if out, err := sessionOutput(c, "after"); err != nil || out != "after" {
		t.Fatalf("after the resumption: %q, %v", out, err)
	}
	// 127.0.0.1's silent connections still hold its share.
	r.assertDroppedAtOnce(t, "127.0.0.1 at its per-source share")
}

// TestLimitLoginGraceSlowloris: LoginGraceTime covers everything before
// authentication succeeds. A peer that sends its version line a byte at a
// time, one that stops in the middle of a packet after the key exchange
// (with and without offering resumption, which changes who reads that
// packet), and one that dribbles its first request after the key
// exchange are each disconnected at the grace time (not before, and not
// seconds after), and the unauthenticated slot each held (MaxUnauthConns
// is 1) is free again for a real client.
func TestLimitLoginGraceSlowloris(t *testing.T) {
	// Long enough for a key exchange under the race detector on a busy
	// machine; the subtests run in parallel, each with its own server.
	const grace = 2 * time.Second
	// kexDone runs the version exchange and key exchange as a client of
	// r over nc (the package's transport), offering resumption if
	// resume, and leaves authentication undone.
	kexDone := func(t *testing.T, r *limitRig, nc net.Conn, resume bool) *transport.Conn {
		t.Helper()
		hostKey := r.hostKey.PublicKey().Marshal()
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		var exts []transport.Extension
		if resume {
			exts = resumeExtensions
		}
		conn, err := transport.NewClientConn(ctx, nc, &transport.Config{Extensions: exts, HostKeyCallback: func(k kex.PublicKey) error {
			if !bytes.Equal(k.Marshal(), hostKey) {
				return errors.New("host key mismatch")
			}
			return nil
		}})
		if err != nil {
			t.Fatalf("key exchange: %v", err)
		}
		if got := conn.Negotiated(resumeExtensions[0].Client); got != resume {
			t.Fatalf("resumption negotiated %v, want %v", got, resume)
		}
		return conn
	}
	for _, tc := range []struct {
		name string
		// slow misbehaves on nc until stop is closed and returns what
		// to read nc through (br if it used it).
		slow func(t *testing.T, r *limitRig, nc net.Conn, br *bufio.Reader, stop <-chan struct{}) io.Reader
	}{
		{"version line a byte at a time", func(t *testing.T, r *limitRig, nc net.Conn, br *bufio.Reader, stop <-chan struct{}) io.Reader {
			// 200 bytes of a valid line, one each 40 ms (8 s, longer than
			// the test waits), then silence: never a complete line, never
			// too long a one.
			if _, err := br.ReadString('\n'); err != nil {
				t.Fatal(err)
			}
			go func() {
				line := "SSH-2.0-" + strings.Repeat("x", 192)
				tick := time.NewTicker(40 * time.Millisecond)
				defer tick.Stop()
				for i := 0; i < len(line); i++ {
					select {
					case <-stop:
						return
					case <-tick.C:
					}
					if _, err := nc.Write([]byte{line[i]}); err != nil {
						return
					}
				}
			}()
			return br
		}},
		{"stalled mid-packet after kex", func(t *testing.T, r *limitRig, nc net.Conn, br *bufio.Reader, stop <-chan struct{}) io.Reader {
			kexDone(t, r, &preread{Conn: nc, r: br}, false)
			// Two bytes of a packet's four-byte length, then nothing.
			if _, err := nc.Write([]byte{0, 0}); err != nil {
				t.Fatal(err)
			}
			return nc
		}},
		{"stalled mid-packet after kex offering resumption", func(t *testing.T, r *limitRig, nc net.Conn, br *bufio.Reader, stop <-chan struct{}) io.Reader {
			// The server reads the first message itself (a
			// RESUME_REQUEST or the start of a login) before handing the
			// connection to authentication.
			kexDone(t, r, &preread{Conn: nc, r: br}, true)
			if _, err := nc.Write([]byte{0, 0}); err != nil {
				t.Fatal(err)
			}
			return nc
		}},
		{"auth dribbled after kex", func(t *testing.T, r *limitRig, nc net.Conn, br *bufio.Reader, stop <-chan struct{}) io.Reader {
			cc := &captureConn{Conn: &preread{Conn: nc, r: br}}
			conn := kexDone(t, r, cc, false)
			// The SERVICE_REQUEST for ssh-userauth that authentication
			// starts with, sealed by the transport, sent a byte each 150
			// ms: it would be complete after some 7 s, later than the
			// test waits for the drop.
			cc.capture(true)
			if err := conn.WritePacket(append([]byte{5, 0, 0, 0, 12}, "ssh-userauth"...)); err != nil {
				t.Fatal(err)
			}
			pkt := cc.capture(false)
			if len(pkt) < 40 {
				t.Fatalf("sealed SERVICE_REQUEST is %d bytes", len(pkt))
			}
			go func() {
				tick := time.NewTicker(150 * time.Millisecond)
				defer tick.Stop()
				for _, b := range pkt {
					select {
					case <-stop:
						return
					case <-tick.C:
					}
					if _, err := nc.Write([]byte{b}); err != nil {
						return
					}
				}
			}()
			return nc
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := newLimitRig(t, 0, func(cfg *rsftp.ServerConfig) {
				cfg.MaxUnauthConns = 1
				cfg.LoginGraceTime = grace
				cfg.Resume = &rsftp.ResumeServerConfig{Hold: time.Minute}
			})
			// The server's clock starts after the dial: measured from
			// before it, the drop cannot come before the grace time.
			start := time.Now()
			nc, br := r.rawServed(t, "the slow peer")
			stop := make(chan struct{})
			defer close(stop)
			closed := watchClose(tc.slow(t, r, nc, br, stop))
			// While it is slow it holds the only unauthenticated slot.
			r.assertDroppedAtOnce(t, "a second connection while the slow one holds the slot")
			select {
			case at := <-closed:
				took := at.Sub(start)
				t.Logf("slow peer disconnected after %v (grace %v)", took.Round(time.Millisecond), grace)
				if took < grace*8/10 {
					t.Fatalf("slow peer disconnected after %v, before the grace time %v", took, grace)
				}
			case <-time.After(grace + 4*time.Second):
				t.Fatalf("slow peer still connected %v after it connected (grace %v)", time.Since(start).Round(time.Millisecond), grace)
			}
			// Its slot is free: a real client logs in.
			c := r.dialEventually(t, "after the slow peer was dropped")
			c.Close()
		})
	}
}

// preread is a net.Conn whose first bytes wait in r.
type preread struct {
	net.Conn
	r io.Reader
}

func (p *preread) Read(b []byte) (int, error) { return p.r.Read(b) }

// captureConn, while capturing, keeps what is written instead of sending
// it.
type captureConn struct {
	net.Conn
	mu  sync.Mutex
	on  bool
	buf []byte
}

// capture turns capturing on or off and returns what was captured.
func (c *captureConn) capture(on bool) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.buf
	c.on, c.buf = on, nil
	return b
}

func (c *captureConn) Write(b []byte) (int, error) {
	c.mu.Lock()
	if c.on {
		c.buf = append(c.buf, b...)
		c.mu.Unlock()
		return len(b), nil
	}
	c.mu.Unlock()
	return c.Conn.Write(b)
}

// openErr checks that err is a channel open refused for lack of
// resources with a message containing text.
func openErr(t *testing.T, what string, err error, text string) {
	t.Helper()
	var oe *channel.OpenError
	if !errors.As(err, &oe) || oe.Reason != channel.ResourceShortage || !strings.Contains(oe.Message, text) {
		t.Fatalf("%s: got %v, want a resource-shortage refusal saying %q", what, err, text)
	}
}

// forwardTarget is a loopback echo server for direct-tcpip channels.
func forwardTarget(t *testing.T) int {
	return serveLoopbackTCP(t, func(c net.Conn) { io.Copy(c, c) })
}

// serveLoopbackTCP listens on a loopback port until the test ends and
// runs handle on each connection it accepts, closing it afterwards.
func serveLoopbackTCP(t *testing.T, handle func(net.Conn)) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// openEventually opens a session, retrying for a few seconds while the
// server finishes closing the one that made room.
func openEventually(t *testing.T, c *rsftp.Client, what string) *channel.Session {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s, err := c.NewSession(context.Background())
		if err == nil {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLimitChannelsPerConn: MaxChannelsPerConn bounds the channels of
// every type on one connection (with MaxSessionsPerConn well above it):
// past it a session and a direct-tcpip channel are both refused with
// resource-shortage, and closing a channel makes room again.
func TestLimitChannelsPerConn(t *testing.T) {
	const limit = 3
	r := newLimitRig(t, 0, func(cfg *rsftp.ServerConfig) {
		cfg.MaxChannelsPerConn = limit
		cfg.MaxSessionsPerConn = 100
	})
	port := forwardTarget(t)
	c, err := r.dial(t)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var sessions []*channel.Session
	for i := range limit - 1 {
		s, err := c.NewSession(ctx)
		if err != nil {
			t.Fatalf("session %d of %d channels: %v", i+1, limit, err)
		}
		sessions = append(sessions, s)
	}
	fwd, err := c.DialTCP(ctx, "127.0.0.1", port)
	if err != nil {
		t.Fatalf("direct-tcpip channel %d of %d: %v", limit, limit, err)
	}
	_, err = c.NewSession(ctx)
	openErr(t, "a session past the channel limit", err, "too many channels")
	_, err = c.DialTCP(ctx, "127.0.0.1", port)
	openErr(t, "a direct-tcpip channel past the channel limit", err, "too many channels")

	fwd.Close()
	openEventually(t, c, "a session after a channel closed")
	_, err = c.NewSession(ctx)
	openErr(t, "a session past the channel limit again", err, "too many channels")
	// The connection itself is unharmed.
	sessions[0].Close()
	s := openEventually(t, c, "a session after another channel closed")
	if err := s.Exec(ctx, "echo"); err != nil {
		t.Fatal(err)
	}
}

// TestLimitSessionsPerConn: MaxSessionsPerConn bounds session channels
// on one connection: past it a session is refused with
// resource-shortage while other channels still open, and closing a
// session makes room again.
func TestLimitSessionsPerConn(t *testing.T) {
	const limit = 2
	r := newLimitRig(t, 0, func(cfg *rsftp.ServerConfig) { cfg.MaxSessionsPerConn = limit })
	port := forwardTarget(t)
	c, err := r.dial(t)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var sessions []*channel.Session
	for i := range limit {
		s, err := c.NewSession(ctx)
		if err != nil {
			t.Fatalf("session %d of %d: %v", i+1, limit, err)
		}
		sessions = append(sessions, s)
	}
	_, err = c.NewSession(ctx)
	openErr(t, "a session past the session limit", err, "too many sessions")
	fwd, err := c.DialTCP(ctx, "127.0.0.1", port)
	if err != nil {
		t.Fatalf("a direct-tcpip channel, which the session limit does not count: %v", err)
	}
	fwd.Close()

	sessions[0].Close()
	s := openEventually(t, c, "a session after one closed")
	_, err = c.NewSession(ctx)
	openErr(t, "a session past the session limit again", err, "too many sessions")
	if err := s.Exec(ctx, "echo"); err != nil {
		t.Fatal(err)
	}
}

// sftpPeer speaks raw SFTP (draft 3) over a session channel: unlike
// sftp.Client, which keeps to the max-open-handles the server announces,
// it sends whatever it is told to.
type sftpPeer struct {
	t  *testing.T
	rw io.ReadWriter
	id uint32
}

// send writes one packet.
func (p *sftpPeer) send(msg []byte) {
	p.t.Helper()
	if _, err := p.rw.Write(append(wire.AppendUint32(nil, uint32(len(msg))), msg...)); err != nil {
		p.t.Fatal(err)
	}
}

// recv reads one packet.
func (p *sftpPeer) recv() *wire.Reader {
	p.t.Helper()
	var hdr [4]byte
	if _, err := io.ReadFull(p.rw, hdr[:]); err != nil {
		p.t.Fatal(err)
	}
	msg := make([]byte, wire.NewReader(hdr[:]).Uint32())
	if _, err := io.ReadFull(p.rw, msg); err != nil {
		p.t.Fatal(err)
	}
	return wire.NewReader(msg)
}

// init sends INIT for version 3 and reads VERSION.
func (p *sftpPeer) init() {
	p.t.Helper()
	p.send(wire.AppendUint32([]byte{1}, 3))
	r := p.recv()
	if typ, v := r.Byte(), r.Uint32(); typ != 2 || v != 3 {
		p.t.Fatalf("INIT answered with type %d version %d", typ, v)
	}
}

// call sends a request of type typ with body and returns the reply's
// type and the rest of the reply after its id.
func (p *sftpPeer) call(typ byte, body []byte) (byte, *wire.Reader) {
	p.t.Helper()
	p.id++
	p.send(append(wire.AppendUint32([]byte{typ}, p.id), body...))
	r := p.recv()
	rtyp := r.Byte()
	if id := r.Uint32(); r.Err() != nil || id != p.id {
		p.t.Fatalf("reply to request %d has id %d (%v)", p.id, id, r.Err())
	}
	return rtyp, r
}

const (
	sftpOpen, sftpClose, sftpOpendir = 3, 4, 11
	sftpStatus, sftpHandle           = 101, 102
)

// open sends OPEN (read) or OPENDIR for path and returns the handle, or
// the message of the STATUS that refused it.
func (p *sftpPeer) open(typ byte, path string) (handle, refusal string) {
	p.t.Helper()
	body := wire.AppendString(nil, path)
	if typ == sftpOpen {
		body = wire.AppendUint32(wire.AppendUint32(body, sftp.FlagRead), 0) // pflags, no attributes
	}
	rtyp, r := p.call(typ, body)
	switch rtyp {
	case sftpHandle:
		return r.String(), ""
	case sftpStatus:
		r.Uint32() // code
		return "", r.String()
	}
	p.t.Fatalf("reply type %d to an open", rtyp)
	return "", ""
}

// TestLimitSFTPHandles: the SFTP server's MaxHandles, through a real
// login and the sftp subsystem. The server announces it (sftp.Client
// sees it in limits@openssh.com), and a peer that ignores it is refused:
// past it an OPEN and an OPENDIR fail with "too many open handles" while
// the session goes on, and closing a handle makes room again.
func TestLimitSFTPHandles(t *testing.T) {
	const limit = 3
	r := newLimitRig(t, limit, nil)
	for i := range limit + 1 {
		if err := os.WriteFile(filepath.Join(r.root, fmt.Sprintf("f%d", i)), []byte("data"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, err := r.dial(t)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	subsystem := func() *channel.Channel {
		t.Helper()
		sess, err := c.NewSession(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := sess.Subsystem(ctx, "sftp"); err != nil {
			t.Fatal(err)
		}
		return sess.Channel()
	}

	sc, err := sftp.NewClient(ctx, subsystem())
	if err != nil {
		t.Fatal(err)
	}
	if got := sc.Limits().ServerMaxOpenHandles; got != limit {
		t.Fatalf("the server announced max-open-handles %d, want %d", got, limit)
	}
	sc.Close()

	p := &sftpPeer{t: t, rw: subsystem()}
	p.init()
	var handles []string
	for i := range limit {
		h, refusal := p.open(sftpOpen, fmt.Sprintf("/f%d", i))
		if refusal != "" {
			t.Fatalf("handle %d of %d refused: %s", i+1, limit, refusal)
		}
		handles = append(handles, h)
	}
	tooMany := func(what string, h, refusal string) {
		t.Helper()
		if refusal != "too many open handles" {
			t.Fatalf("%s past the handle limit: got handle %q, refusal %q; want too many open handles", what, h, refusal)
		}
	}
	h, refusal := p.open(sftpOpen, fmt.Sprintf("/f%d", limit))
	tooMany("OPEN", h, refusal)
	h, refusal = p.open(sftpOpendir, "/")
	tooMany("OPENDIR", h, refusal)

	if typ, r := p.call(sftpClose, wire.AppendString(nil, handles[0])); typ != sftpStatus || r.Uint32() != 0 {
		t.Fatalf("CLOSE answered with type %d", typ)
	}
	if h, refusal := p.open(sftpOpendir, "/"); refusal != "" {
		t.Fatalf("OPENDIR after a handle closed: %s", refusal)
	} else {
		handles[0] = h
	}
	h, refusal = p.open(sftpOpen, "/f0")
	tooMany("OPEN again", h, refusal)
}

// resumableClient logs in as user with resumption over a TCP connection
// the test can cut; the client's reconnection attempts all fail, so a cut
// leaves the session detached on the server.
func (r *limitRig) resumableClient(t *testing.T, user string) (*rsftp.Client, net.Conn, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := net.DialTimeout("tcp", r.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	cfg := r.clientConfig(user)
	cfg.Resume = &rsftp.ResumeConfig{
		Redial:         func(context.Context) (net.Conn, error) { return nil, errors.New("test: no reconnection") },
		NoNetworkWatch: true,
		MinBackoff:     50 * time.Millisecond,
		MaxBackoff:     200 * time.Millisecond,
	}
	c, err := rsftp.NewClient(ctx, nc, r.addr, cfg)
	if err != nil {
		nc.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if !c.Resumable() {
		t.Fatalf("%s's session is not resumable", user)
	}
	return c, nc, resumeStatus(t, c).Session
}

// serverEvent reports whether the server emitted kind for session, and
// its error.
func (r *limitRig) serverEvent(kind rsftp.EventKind, session string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if e.Kind == kind && e.Session == session {
			return true, e.Err
		}
	}
	return false, nil
}

// waitServerEvent waits for the server's event kind about session.
func (r *limitRig) waitServerEvent(t *testing.T, kind rsftp.EventKind, session, what string) error {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if ok, err := r.serverEvent(kind, session); ok {
			return err
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %s event for session %s within 5s", what, kind, session)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cut drops a resumable client's connection and waits until the server
// has detached its session.
func (r *limitRig) cut(t *testing.T, nc net.Conn, session, what string) {
	t.Helper()
	nc.Close()
	r.waitServerEvent(t, rsftp.EventLinkLost, session, what)
}

// assertKept checks that the server has not ended any of the sessions.
func (r *limitRig) assertKept(t *testing.T, what string, sessions ...string) {
	t.Helper()
	time.Sleep(300 * time.Millisecond) // a discard is asynchronous
	for _, s := range sessions {
		if ok, err := r.serverEvent(rsftp.EventClosed, s); ok {
			t.Fatalf("%s: session %s was discarded: %v", what, s, err)
		}
	}
}

// identityByUser makes cfg's public key callback name each login's
// identity by its user name, as a server with one account per user does
// (the test servers let one key in under any name).
func identityByUser(cfg *rsftp.ServerConfig) {
	cb := cfg.Auth.PublicKeyCallback
	cfg.Auth.PublicKeyCallback = func(user string, key kex.PublicKey) (*auth.Permissions, error) {
		p, err := cb(user, key)
		if p != nil {
			p.Identity = "user:" + user
		}
		return p, err
	}
}

// TestLimitResumeDetachedPerUser: MaxDetachedPerUser keys on the
// authenticated identity (auth.Permissions.Identity). Where the server
// names identities by user (here its callback does), alice's older
// detached session goes past the cap and bob's stays; by default the
// identity is the key's fingerprint, so one key logging in under many
// names (mallory0, mallory1) is one owner.
func TestLimitResumeDetachedPerUser(t *testing.T) {
	t.Run("by user", func(t *testing.T) {
		r := newLimitRig(t, 0, func(cfg *rsftp.ServerConfig) {
			cfg.Resume = &rsftp.ResumeServerConfig{Hold: time.Minute, MaxDetachedPerUser: 1}
			identityByUser(cfg)
		})
		_, ncA, a := r.resumableClient(t, "alice")
		_, ncB, b := r.resumableClient(t, "alice")
		_, ncC, c := r.resumableClient(t, "bob")
		r.cut(t, ncA, a, "alice's first session")
		r.cut(t, ncC, c, "bob's session")
		r.assertKept(t, "one detached session each for alice and bob", a, c)
		r.cut(t, ncB, b, "alice's second session")
		err := r.waitServerEvent(t, rsftp.EventClosed, a, "alice's older detached session past the per-user cap")
		if err == nil || !strings.Contains(err.Error(), "detached sessions of this user") {
			t.Fatalf("alice's older session ended with %v, want the per-user cap", err)
		}
		r.assertKept(t, "alice's newer and bob's detached sessions", b, c)
	})
	t.Run("one key, many names", func(t *testing.T) {
		r := newLimitRig(t, 0, func(cfg *rsftp.ServerConfig) {
			cfg.Resume = &rsftp.ResumeServerConfig{Hold: time.Minute, MaxDetachedPerUser: 1}
		})
		_, nc0, m0 := r.resumableClient(t, "mallory0")
		_, nc1, m1 := r.resumableClient(t, "mallory1")
		r.cut(t, nc0, m0, "mallory0's session")
		r.cut(t, nc1, m1, "mallory1's session")
		err := r.waitServerEvent(t, rsftp.EventClosed, m0, "the older session of the same key under another name")
		if err == nil || !strings.Contains(err.Error(), "detached sessions of this user") {
			t.Fatalf("mallory0's session ended with %v, want the per-owner cap", err)
		}
		r.assertKept(t, "mallory1's detached session", m1)
	})
}

// TestLimitResumeRetainedBytes: ResumeServerConfig.MaxRetainedBytes holds
// at all times, not only when sessions detach: an echo of 4 times the
// budget through an attached session completes (the server's writer waits
// for ACKs instead of retaining more), and what the server retains never
// passes the budget by more than resume.ControlAllowance.
func TestLimitResumeRetainedBytes(t *testing.T) {
	const (
		limit  = 64 << 10
		echoed = 4 * limit
	)
	r := newLimitRig(t, 0, func(cfg *rsftp.ServerConfig) {
		cfg.Resume = &rsftp.ResumeServerConfig{Hold: time.Minute, MaxRetainedBytes: limit}
	})
	c, _, _ := r.resumableClient(t, "alice")
	ctx := context.Background()
	s, err := c.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out, in := s.Stdout(), s.Stdin()
	if err := s.Exec(ctx, "echo"); err != nil {
		t.Fatal(err)
	}
	var peak atomic.Int64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if u := r.srv.RetentionBudget().Used(); u > peak.Load() {
				peak.Store(u)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	go in.Write(bytes.Repeat([]byte{'r'}, echoed))
	if _, err := io.ReadFull(out, make([]byte, echoed)); err != nil {
		t.Fatal(err)
	}
	close(stop)
	<-sampled
	if p := peak.Load(); p > limit+resume.ControlAllowance {
		t.Fatalf("the server retained %d bytes at the peak; budget %d", p, limit)
	}
	t.Logf("peak retained %d bytes against a budget of %d", peak.Load(), limit)
}

// TestLimitConfigNegative: a negative limit is a configuration error, not
// a server that panics (a negative MaxUnauthConns did) or refuses
// everything; so is a MaxStartups or PerSourceNetBlockSize out of range,
// and MaxStartups set together with the MaxUnauthConns it replaces.
func TestLimitConfigNegative(t *testing.T) {
	for name, mod := range map[string]func(*rsftp.ServerConfig){
		"LoginGraceTime":     func(c *rsftp.ServerConfig) { c.LoginGraceTime = -time.Second },
		"MaxUnauthConns":     func(c *rsftp.ServerConfig) { c.MaxUnauthConns = -1 },
		"MaxSessionsPerConn": func(c *rsftp.ServerConfig) { c.MaxSessionsPerConn = -1 },
		"MaxChannelsPerConn": func(c *rsftp.ServerConfig) { c.MaxChannelsPerConn = -1 },
	} {
		cfg := &rsftp.ServerConfig{
			HostKeys: []kex.Signer{signer(t)},
			Auth: auth.ServerConfig{PublicKeyCallback: func(string, kex.PublicKey) (*auth.Permissions, error) {
				return nil, errors.New("no")
			}},
		}
		mod(cfg)
		if _, err := rsftp.NewServer(cfg); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("negative %s: NewServer returned %v", name, err)
		}
	}
	// Out of range or contradictory startup limits.
	for name, mod := range map[string]func(*rsftp.ServerConfig){
		"MaxStartups 10:0:100":     func(c *rsftp.ServerConfig) { c.MaxStartups = rsftp.MaxStartups{Start: 10, Rate: 0, Full: 100} },
		"MaxStartups 10:30:5":      func(c *rsftp.ServerConfig) { c.MaxStartups = rsftp.MaxStartups{Start: 10, Rate: 30, Full: 5} },
		"MaxStartups 0:30:100":     func(c *rsftp.ServerConfig) { c.MaxStartups = rsftp.MaxStartups{Start: 0, Rate: 30, Full: 100} },
		"PerSourceMaxStartups":     func(c *rsftp.ServerConfig) { c.PerSourceMaxStartups = -1 },
		"PerSourceNetBlockSize 33": func(c *rsftp.ServerConfig) { c.PerSourceNetBlockSize = rsftp.NetBlockSize{IPv4: 33, IPv6: 128} },
		"MaxUnauthConns": func(c *rsftp.ServerConfig) {
			c.MaxUnauthConns, c.MaxStartups = 5, rsftp.DefaultMaxStartups
		},
	} {
		cfg := &rsftp.ServerConfig{
			HostKeys: []kex.Signer{signer(t)},
			Auth: auth.ServerConfig{PublicKeyCallback: func(string, kex.PublicKey) (*auth.Permissions, error) {
				return nil, errors.New("no")
			}},
		}
		mod(cfg)
		if _, err := rsftp.NewServer(cfg); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: NewServer returned %v", name, err)
		}
	}
}

// TestLimitVersionLine: the bytes a peer may send before its version line
// are bounded. Our server takes the client's version as the first line
// (RFC 4253 section 4.2 lets only a server send other lines first), of
// at most 255 bytes; our client skips at most 1024 lines of a server's,
// each as bounded. A peer past a bound is dropped at once, long before
// the grace time.
func TestLimitVersionLine(t *testing.T) {
	r := newLimitRig(t, 0, func(cfg *rsftp.ServerConfig) { cfg.LoginGraceTime = time.Minute })
	for _, tc := range []struct{ name, send string }{
		{"server: another line first", "hello\r\nSSH-2.0-late\r\n"},
		{"server: line too long", "SSH-2.0-" + strings.Repeat("x", 300)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, br := r.rawServed(t, "the client")
			if _, err := io.WriteString(nc, tc.send); err != nil {
				t.Fatal(err)
			}
			select {
			case <-watchClose(br):
			case <-time.After(5 * time.Second):
				t.Fatal("still connected 5s later")
			}
		})
	}

	// A fake server: lines lines of chatter, then a version line, then
	// silence.
	fakeServer := func(t *testing.T, lines int) error {
		t.Helper()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			defer nc.Close()
			w := bufio.NewWriter(nc)
			for i := range lines {
				fmt.Fprintf(w, "chatter line %d of a server that talks a lot\r\n", i)
			}
			w.WriteString("SSH-2.0-fake\r\n")
			w.Flush()
			io.Copy(io.Discard, nc)
		}()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err = rsftp.Dial(ctx, "tcp", l.Addr().String(), r.clientConfig("alice"))
		if err == nil {
			t.Fatal("logged in to a fake server")
		}
		return err
	}
	t.Run("client: 1024 lines before the version", func(t *testing.T) {
		// Accepted: the client goes on to wait for the fake server's
		// KEXINIT, which never comes.
		if err := fakeServer(t, 1024); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want the dial to time out waiting for the key exchange", err)
		}
	})
	t.Run("client: 1025 lines before the version", func(t *testing.T) {
		if err := fakeServer(t, 1025); err == nil || !strings.Contains(err.Error(), "more than 1024 lines") {
			t.Fatalf("got %v, want the preamble refused", err)
		}
	})
}

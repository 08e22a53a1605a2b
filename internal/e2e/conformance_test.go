package e2e

// The conformance tests of the resumption extension: a scripted peer,
// written from docs/PROTOCOL.resume.md's rules rather than from the resume
// package's state machine, drives our server (TestConformanceServer*) and
// our client (TestConformanceClient*) with messages in the orders the
// document allows and in orders it forbids, and checks what a peer can
// observe: the answer, the DISCONNECT reason or its absence, and whether
// the session survives. The peer uses only the exported message types and
// MACs of the resume package and a transport.Conn.

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/internal/connmsg"
	"github.com/rsftp/rsftp/internal/netsim"
	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/kex"
	"github.com/rsftp/rsftp/resume"
	"github.com/rsftp/rsftp/transport"
)

// peer is the scripted end of one connection: a goroutine reads every
// message (the transport answers pings and handles IGNORE, DEBUG and
// EXT_INFO inside) and queues it, counted messages and ACKs alike.
type peer struct {
	t    *testing.T
	c    *transport.Conn
	in   chan []byte
	rerr error // why reading stopped; set before in is closed
}

func newPeer(t *testing.T, c *transport.Conn) *peer {
	pe := &peer{t: t, c: c, in: make(chan []byte, 1024)}
	go func() {
		for {
			p, err := c.ReadPacket()
			if err != nil {
				pe.rerr = err
				close(pe.in)
				return
			}
			pe.in <- bytes.Clone(p)
		}
	}()
	t.Cleanup(func() { c.Abort() })
	return pe
}

// next returns the next message, or nil once the connection ended.
func (pe *peer) next() []byte {
	pe.t.Helper()
	select {
	case p := <-pe.in:
		return p
	case <-time.After(10 * time.Second):
		pe.t.Fatal("peer: no message within 10 s")
		return nil
	}
}

// nextNot returns the next message that is not an ACK (nil at the end).
func (pe *peer) nextNot(skip byte) []byte {
	pe.t.Helper()
	for {
		p := pe.next()
		if p == nil || p[0] != skip {
			return p
		}
	}
}

// expect returns the next message, which must be msg (ACKs skipped unless
// msg is ACK).
func (pe *peer) expect(msg byte) []byte {
	pe.t.Helper()
	var p []byte
	if msg == resume.MsgAck {
		p = pe.next()
	} else {
		p = pe.nextNot(resume.MsgAck)
	}
	if p == nil {
		pe.t.Fatalf("peer: connection ended (%v) where message %d was expected", pe.rerr, msg)
	}
	if p[0] != msg {
		pe.t.Fatalf("peer: got message %d, want %d", p[0], msg)
	}
	return p
}

// ended waits until the connection ends, skipping what still arrives,
// and returns the DISCONNECT reason the other side sent, if any.
func (pe *peer) ended() (reason uint32, disconnected bool) {
	pe.t.Helper()
	for pe.next() != nil {
	}
	var de *transport.DisconnectError
	if errors.As(pe.rerr, &de) && de.FromPeer {
		return de.Reason, true
	}
	return 0, false
}

// endsWith checks that the other side ended the connection with
// DISCONNECT of the given reason.
func (pe *peer) endsWith(reason uint32, what string) {
	pe.t.Helper()
	got, ok := pe.ended()
	if !ok || got != reason {
		pe.t.Fatalf("%s: connection ended with DISCONNECT %v reason %d (%v); want reason %d", what, ok, got, pe.rerr, reason)
	}
}

// endsSilently checks that the other side closed without DISCONNECT.
func (pe *peer) endsSilently(what string) {
	pe.t.Helper()
	if got, ok := pe.ended(); ok {
		pe.t.Fatalf("%s: connection ended with DISCONNECT reason %d; want a close without DISCONNECT", what, got)
	}
}

var (
	ignoreMsg = []byte{wire.MsgIgnore, 0, 0, 0, 3, 'p', 'a', 'd'}
	debugMsg  = wire.AppendString(wire.AppendString(wire.AppendBool([]byte{wire.MsgDebug}, false), "before the resume message"), "")
)

// extInfoMsg is an EXT_INFO (RFC 8308) naming an extension nobody knows,
// and ping@openssh.com (a second EXT_INFO replaces the first).
func extInfoMsg() []byte {
	b := wire.AppendUint32([]byte{wire.MsgExtInfo}, 2)
	b = wire.AppendString(b, "conformance-test@rsftp.org")
	b = wire.AppendString(b, "0")
	b = wire.AppendString(b, "ping@openssh.com")
	return wire.AppendString(b, "0")
}

// rawConn opens a connection to the rig's server and runs the key
// exchange offering the extension.
func (r *rig) rawConn(t *testing.T) *transport.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := r.net.Dial(ctx, r.addr)
	if err != nil {
		t.Fatal(err)
	}
	hk := r.hostKey.PublicKey().Marshal()
	c, err := transport.NewClientConn(ctx, nc, &transport.Config{Extensions: resumeExtensions, HostKeyCallback: func(k kex.PublicKey) error {
		if !bytes.Equal(k.Marshal(), hk) {
			return errors.New("host key mismatch")
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Negotiated(resume.ClientKexName) {
		t.Fatal("the server does not offer the extension")
	}
	return c
}

// resumeExtensions offers the resume extension as the module root does
// (client.go).
var resumeExtensions = []transport.Extension{{
	Client: resume.ClientKexName, Server: resume.ServerKexName,
	FirstMsg: resume.MsgEnable, LastMsg: resume.MsgAck,
	QuietFailures: true,
}}

// rawKey is the session's resume key of a scripted side's connection.
func rawKey(t testing.TB, c *transport.Conn) []byte {
	t.Helper()
	rk, err := resume.Key(c)
	if err != nil {
		t.Fatal(err)
	}
	return rk
}

// rawSession is a session the scripted client opened on the rig's server.
type rawSession struct {
	rk     []byte
	handle []byte
	first  *peer
}

// rawLogin authenticates a scripted client with the rig's user key and
// reads RESUME_ENABLE.
func (r *rig) rawLogin(t *testing.T) *rawSession {
	t.Helper()
	c := r.rawConn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := auth.Authenticate(ctx, c, &auth.ClientConfig{User: "alice", Methods: []auth.Method{auth.PublicKeySigners(r.userKey)}}); err != nil {
		t.Fatal(err)
	}
	c.SetAuthenticated()
	pe := newPeer(t, c)
	en, err := resume.ParseEnable(pe.expect(resume.MsgEnable))
	if err != nil {
		t.Fatal(err)
	}
	if en.HoldSeconds == 0 {
		t.Fatal("the server keeps no session (hold 0)")
	}
	return &rawSession{rk: rawKey(t, c), handle: en.Handle, first: pe}
}

func request(c *transport.Conn, rk, handle []byte, received uint64) []byte {
	return (&resume.Request{Handle: handle, Received: received, MAC: resume.RequestMAC(rk, c.SessionID(), handle, received)}).Marshal()
}

// accepted checks that RESUME_ACCEPT arrived on pe, authenticates, and
// says the server received want.
func (s *rawSession) accepted(t *testing.T, pe *peer, received, want uint64) {
	t.Helper()
	acc, err := resume.ParseAccept(pe.expect(resume.MsgAccept))
	if err != nil {
		t.Fatal(err)
	}
	if !resume.VerifyAccept(s.rk, pe.c.SessionID(), s.handle, acc, received) {
		t.Fatal("RESUME_ACCEPT does not authenticate")
	}
	if acc.Received != want {
		t.Fatalf("RESUME_ACCEPT says the server received %d counted messages; want %d", acc.Received, want)
	}
}

// refused checks that RESUME_FAILURE with reason arrived on pe and that
// the server then closed the connection without DISCONNECT.
func refused(t *testing.T, pe *peer, reason uint32, what string, or ...uint32) {
	t.Helper()
	f, err := resume.ParseFailure(pe.expect(resume.MsgFailure))
	if err != nil {
		t.Fatal(err)
	}
	if f.Reason != reason && !slices.Contains(or, f.Reason) {
		t.Fatalf("%s: RESUME_FAILURE reason %d (%s); want %d", what, f.Reason, f.Description, reason)
	}
	pe.endsSilently(what + ", after RESUME_FAILURE")
}

// alive checks that the server still runs the session on pe: a global
// request with want-reply is answered.
func alive(t *testing.T, pe *peer, what string) {
	t.Helper()
	req := (&connmsg.GlobalRequest{Name: "keepalive@openssh.com", WantReply: true}).Marshal()
	if err := pe.c.WritePacket(req); err != nil {
		t.Fatal(err)
	}
	if p := pe.nextNot(resume.MsgAck); p == nil || (p[0] != wire.MsgRequestFailure && p[0] != wire.MsgRequestSuccess) {
		t.Fatalf("%s: the session does not answer (%v, %v)", what, p, pe.rerr)
	}
}

// TestConformanceServerTransportMessagesBeforeRequest: EXT_INFO, IGNORE
// and DEBUG may precede RESUME_REQUEST; the request is then accepted.
func TestConformanceServerTransportMessagesBeforeRequest(t *testing.T) {
	r := newRig(t, time.Minute, nil)
	s := r.rawLogin(t)
	c := r.rawConn(t)
	for _, p := range [][]byte{extInfoMsg(), ignoreMsg, debugMsg, request(c, s.rk, s.handle, 0)} {
		if err := c.WritePacket(p); err != nil {
			t.Fatal(err)
		}
	}
	pe := newPeer(t, c)
	s.accepted(t, pe, 0, 0)
	s.first.endsSilently("the connection the session left")
	alive(t, pe, "after the resumption")
}

// TestConformanceServerMessageInWrongState: a resume message the state
// does not allow, or an ACK beyond what was sent, is a protocol error:
// DISCONNECT PROTOCOL_ERROR, and the session ends.
func TestConformanceServerMessageInWrongState(t *testing.T) {
	r := newRig(t, time.Minute, nil)
	handle := make([]byte, resume.HandleLen)
	rand.Read(handle)
	mac := make([]byte, resume.MACLen)
	// As the first message of a new connection, anything of this layer
	// but RESUME_REQUEST.
	for _, p := range [][]byte{
		(&resume.Enable{Handle: handle, HoldSeconds: 60}).Marshal(),
		(&resume.Accept{MAC: mac}).Marshal(),
		(&resume.Failure{Reason: resume.ReasonBusy}).Marshal(),
		(&resume.Ack{}).Marshal(),
	} {
		c := r.rawConn(t)
		c.WritePacket(p)
		newPeer(t, c).endsWith(wire.DisconnectProtocolError, fmt.Sprintf("message %d first", p[0]))
	}
	// On an attached connection: a RESUME_REQUEST, a RESUME_ENABLE, an
	// ACK beyond what the server sent.
	for _, msg := range []func(s *rawSession) []byte{
		func(s *rawSession) []byte { return request(s.first.c, s.rk, s.handle, 0) },
		func(s *rawSession) []byte { return (&resume.Enable{Handle: s.handle, HoldSeconds: 60}).Marshal() },
		func(s *rawSession) []byte { return (&resume.Ack{Received: 1}).Marshal() },
	} {
		s := r.rawLogin(t)
		p := msg(s)
		s.first.c.WritePacket(p)
		s.first.endsWith(wire.DisconnectProtocolError, fmt.Sprintf("attached, message %d", p[0]))
		// The session is over: a resumption finds none.
		c := r.rawConn(t)
		c.WritePacket(request(c, s.rk, s.handle, 0))
		refused(t, newPeer(t, c), resume.ReasonSessionUnknown, "resuming the ended session", resume.ReasonSessionClosed)
	}
}

// TestConformanceServerDisconnectNotAttached: a DISCONNECT on a
// connection the session is not attached to ends nothing: as the first
// message of a new connection, or on the connection the session just
// left for a newer one.
func TestConformanceServerDisconnectNotAttached(t *testing.T) {
	r := newRig(t, time.Minute, nil)
	s := r.rawLogin(t)
	c := r.rawConn(t)
	c.Disconnect(wire.DisconnectByApplication, "a connection of no session")

	c = r.rawConn(t)
	c.WritePacket(request(c, s.rk, s.handle, 0))
	pe := newPeer(t, c)
	s.accepted(t, pe, 0, 0)
	// The old connection lingers a moment on the server; a DISCONNECT on
	// it now comes from a connection the session has left.
	s.first.c.Disconnect(wire.DisconnectByApplication, "the old connection")
	time.Sleep(300 * time.Millisecond)
	if n := r.srv.ResumeStats().Sessions; n != 1 {
		t.Fatalf("%d sessions kept after a DISCONNECT on the connection the session left; want 1", n)
	}
	alive(t, pe, "after a DISCONNECT on the old connection")
}

// TestConformanceServerPipelinedChannelOpen: a client that sends
// CHANNEL_OPEN behind its USERAUTH_REQUEST, before USERAUTH_SUCCESS and
// RESUME_ENABLE arrived, counts it as its message 0; the server counts it
// as received (counting starts right after USERAUTH_SUCCESS, by position
// in the stream), so its first ACK and its RESUME_ACCEPT say 1.
func TestConformanceServerPipelinedChannelOpen(t *testing.T) {
	r := newRig(t, time.Minute, func(cfg *rsftp.ServerConfig) { cfg.Auth.NoneAllowed = true })
	c := r.rawConn(t)
	open := (&connmsg.ChannelOpen{Type: "session", Sender: 0, Window: 1 << 20, MaxPacket: 32 << 10}).Marshal()
	for _, p := range [][]byte{
		wire.AppendString([]byte{wire.MsgServiceRequest}, "ssh-userauth"),
		wire.AppendString(wire.AppendString(wire.AppendString([]byte{wire.MsgUserauthRequest}, "alice"), "ssh-connection"), "none"),
		open, // counted: our message 0
	} {
		if err := c.WritePacket(p); err != nil {
			t.Fatal(err)
		}
	}
	pe := newPeer(t, c)
	pe.expect(wire.MsgServiceAccept)
	pe.expect(wire.MsgUserauthSuccess)
	c.SetAuthenticated()
	en, err := resume.ParseEnable(pe.expect(resume.MsgEnable))
	if err != nil {
		t.Fatal(err)
	}
	s := &rawSession{rk: rawKey(t, c), handle: en.Handle, first: pe}
	var received uint64 // counted messages from the server
	var ack *resume.Ack
	for ack == nil {
		p := pe.next()
		switch {
		case p == nil:
			t.Fatalf("connection ended: %v", pe.rerr)
		case p[0] == resume.MsgAck:
			if ack, err = resume.ParseAck(p); err != nil {
				t.Fatal(err)
			}
		case resume.Counted(p[0]):
			received++
			if p[0] != wire.MsgChannelOpenConfirm {
				t.Fatalf("message %d in answer to CHANNEL_OPEN", p[0])
			}
		}
	}
	if ack.Received != 1 {
		t.Fatalf("the server's first ACK says %d; the pipelined CHANNEL_OPEN makes 1", ack.Received)
	}
	for received == 0 {
		if p := pe.expect(wire.MsgChannelOpenConfirm); resume.Counted(p[0]) {
			received++
		}
	}
	c.WritePacket((&resume.Ack{Received: received}).Marshal())
	c2 := r.rawConn(t)
	c2.WritePacket(request(c2, s.rk, s.handle, received))
	s.accepted(t, newPeer(t, c2), received, 1)
}

// TestConformanceServerRefusals: each check of section 5 answers its
// RESUME_FAILURE code and closes the connection without DISCONNECT, and
// none of them changes the session: unknown handle, bad MAC, count out
// of range, and BUSY while another resumption is being decided.
func TestConformanceServerRefusals(t *testing.T) {
	entered, release := make(chan struct{}, 1), make(chan struct{})
	r := newRig(t, time.Minute, func(cfg *rsftp.ServerConfig) {
		inner := cfg.Auth.PublicKeyCallback
		cfg.Auth.PublicKeyCallback = func(user string, key kex.PublicKey) (*auth.Permissions, error) {
			p, err := inner(user, key)
			if p != nil {
				// Holds a resumption between its checks and the move
				// of the session: the time BUSY is said.
				p.Recheck = func(net.Addr) error {
					entered <- struct{}{}
					<-release
					return nil
				}
			}
			return p, err
		}
	})
	s := r.rawLogin(t)
	try := func(p func(c *transport.Conn) []byte) *peer {
		c := r.rawConn(t)
		c.WritePacket(p(c))
		return newPeer(t, c)
	}
	other := make([]byte, resume.HandleLen)
	rand.Read(other)
	refused(t, try(func(c *transport.Conn) []byte { return request(c, s.rk, other, 0) }),
		resume.ReasonSessionUnknown, "unknown handle")
	wrongKey := bytes.Clone(s.rk)
	wrongKey[0] ^= 1
	refused(t, try(func(c *transport.Conn) []byte { return request(c, wrongKey, s.handle, 0) }),
		resume.ReasonAuthFailed, "bad MAC")
	refused(t, try(func(c *transport.Conn) []byte { return request(c, s.rk, s.handle, 1) }),
		resume.ReasonCountOutOfRange, "count beyond what the server sent")

	first := try(func(c *transport.Conn) []byte { return request(c, s.rk, s.handle, 0) })
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the valid request never reached the owner's re-check")
	}
	refused(t, try(func(c *transport.Conn) []byte { return request(c, s.rk, s.handle, 0) }),
		resume.ReasonBusy, "a second resumption while one is decided")
	close(release)
	s.accepted(t, first, 0, 0)
	alive(t, first, "after the refusals")
}

// scriptServer is a scripted server on the network simulator: it runs
// the key exchange of each connection and hands it to the test.
type scriptServer struct {
	t       *testing.T
	net     *netsim.Network
	addr    string
	hostKey kex.Signer
	userKey kex.Signer
	conns   chan *transport.Conn

	mu     sync.Mutex
	events []rsftp.Event
}

func newScriptServer(t *testing.T) *scriptServer {
	ss := &scriptServer{t: t, net: netsim.New(), addr: "198.18.0.2:22", hostKey: signer(t), userKey: signer(t),
		conns: make(chan *transport.Conn, 16)}
	t.Cleanup(func() { ss.net.Close() })
	l, err := ss.net.Listen(ss.addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				c, err := transport.NewServerConn(ctx, nc, &transport.Config{HostKeys: []kex.Signer{ss.hostKey}, Extensions: resumeExtensions})
				if err == nil {
					ss.conns <- c
				}
			}()
		}
	}()
	return ss
}

// next is the next connection to the scripted server.
func (ss *scriptServer) next() *transport.Conn {
	ss.t.Helper()
	select {
	case c := <-ss.conns:
		return c
	case <-time.After(10 * time.Second):
		ss.t.Fatal("no connection to the scripted server within 10 s")
		return nil
	}
}

// login authenticates our client on c (any public key).
func (ss *scriptServer) login(c *transport.Conn) {
	ss.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, _, err := auth.Serve(ctx, c, &auth.ServerConfig{PublicKeyCallback: func(string, kex.PublicKey) (*auth.Permissions, error) {
		return &auth.Permissions{}, nil
	}}); err != nil {
		ss.t.Fatal(err)
	}
	c.SetAuthenticated()
}

func (ss *scriptServer) count(kind rsftp.EventKind) int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	n := 0
	for _, e := range ss.events {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

func (ss *scriptServer) waitEvent(kind rsftp.EventKind, n int) {
	ss.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for ss.count(kind) < n {
		if time.Now().After(deadline) {
			ss.t.Fatalf("the client did not report %s %d times", kind, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// dial starts our client against the scripted server; its result
// arrives on the channel once the script has answered the login.
func (ss *scriptServer) dial() <-chan any {
	done := make(chan any, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		nc, err := ss.net.Dial(ctx, ss.addr)
		if err != nil {
			done <- err
			return
		}
		c, err := rsftp.NewClient(ctx, nc, ss.addr, &rsftp.ClientConfig{
			User:            "alice",
			Auth:            []auth.Method{auth.PublicKeySigners(ss.userKey)},
			HostKeyCallback: func(string, int, kex.PublicKey) error { return nil },
			Resume: &rsftp.ResumeConfig{
				Redial:         func(ctx context.Context) (net.Conn, error) { return ss.net.Dial(ctx, ss.addr) },
				AliveInterval:  100 * time.Millisecond,
				MinBackoff:     10 * time.Millisecond,
				MaxBackoff:     50 * time.Millisecond,
				AttemptTimeout: 3 * time.Second,
				NoNetworkWatch: true,
				Events: func(e rsftp.Event) {
					ss.mu.Lock()
					ss.events = append(ss.events, e)
					ss.mu.Unlock()
				},
			},
		})
		if err != nil {
			done <- err
			return
		}
		ss.t.Cleanup(func() { c.Close() })
		done <- c
	}()
	return done
}

// start logs our client in on the scripted server and enables a session.
func (ss *scriptServer) start() (*rsftp.Client, *rawSession) {
	ss.t.Helper()
	done := ss.dial()
	c := ss.next()
	ss.login(c)
	handle := make([]byte, resume.HandleLen)
	rand.Read(handle)
	c.WritePacket((&resume.Enable{Handle: handle, HoldSeconds: 60}).Marshal())
	res := <-done
	client, ok := res.(*rsftp.Client)
	if !ok {
		ss.t.Fatalf("client: %v", res)
	}
	if !client.Resumable() {
		ss.t.Fatal("the client's session is not resumable")
	}
	return client, &rawSession{rk: rawKey(ss.t, c), handle: handle, first: newPeer(ss.t, c)}
}

// requested reads the client's RESUME_REQUEST on pe and checks it.
func (s *rawSession) requested(t *testing.T, pe *peer) *resume.Request {
	t.Helper()
	req, err := resume.ParseRequest(pe.expect(resume.MsgRequest))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(req.Handle, s.handle) || !hmac.Equal(req.MAC, resume.RequestMAC(s.rk, pe.c.SessionID(), s.handle, req.Received)) {
		t.Fatal("the client's RESUME_REQUEST does not authenticate")
	}
	return req
}

// TestConformanceClientTransportMessagesBeforeAccept: EXT_INFO, IGNORE
// and DEBUG may precede RESUME_ACCEPT; the client resumes.
func TestConformanceClientTransportMessagesBeforeAccept(t *testing.T) {
	ss := newScriptServer(t)
	client, s := ss.start()
	s.first.c.Abort()
	c := ss.next() // its EXT_INFO went out after NEWKEYS
	pe := newPeer(t, c)
	req := s.requested(t, pe)
	c.SetAuthenticated()
	for _, p := range [][]byte{extInfoMsg(), ignoreMsg, debugMsg,
		(&resume.Accept{Received: 0, HoldSeconds: 60, MAC: resume.AcceptMAC(s.rk, c.SessionID(), s.handle, 0, req.Received)}).Marshal()} {
		c.WritePacket(p)
	}
	ss.waitEvent(rsftp.EventResumed, 1)
	if st := resumeStatus(t, client).State; st != resume.Attached {
		t.Fatalf("client session %v after RESUME_ACCEPT", st)
	}
}

// TestConformanceClientDisconnectAndFailureNotAttached: a DISCONNECT on
// a connection the session is not attached to (in answer to
// RESUME_REQUEST), and RESUME_FAILURE BUSY, only fail that attempt: the
// client retries, and resumes.
func TestConformanceClientDisconnectAndFailureNotAttached(t *testing.T) {
	ss := newScriptServer(t)
	client, s := ss.start()
	s.first.c.Abort()

	c := ss.next()
	pe := newPeer(t, c)
	s.requested(t, pe)
	c.Disconnect(wire.DisconnectByApplication, "not the attached connection")

	c = ss.next()
	pe = newPeer(t, c)
	s.requested(t, pe)
	c.WritePacket((&resume.Failure{Reason: resume.ReasonBusy, Description: "busy"}).Marshal())
	c.Abort()

	c = ss.next()
	pe = newPeer(t, c)
	req := s.requested(t, pe)
	c.SetAuthenticated()
	c.WritePacket((&resume.Accept{Received: 0, HoldSeconds: 60, MAC: resume.AcceptMAC(s.rk, c.SessionID(), s.handle, 0, req.Received)}).Marshal())
	ss.waitEvent(rsftp.EventResumed, 1)
	if n, rs := ss.count(rsftp.EventClosed), resumeStatus(t, client); n != 0 || rs.State != resume.Attached {
		t.Fatalf("client session %v (%v) after a DISCONNECT and a BUSY on connections it was not attached to",
			rs.State, rs.Err)
	}
}

// TestConformanceClientMessageInWrongState: a message other than
// RESUME_ENABLE after USERAUTH_SUCCESS, a resume message on an attached
// connection, and an ACK beyond what the client sent are protocol errors:
// the client ends with DISCONNECT PROTOCOL_ERROR.
func TestConformanceClientMessageInWrongState(t *testing.T) {
	t.Run("instead of RESUME_ENABLE", func(t *testing.T) {
		ss := newScriptServer(t)
		done := ss.dial()
		c := ss.next()
		ss.login(c)
		c.WritePacket((&resume.Ack{}).Marshal())
		if res := <-done; res == nil {
			t.Fatal("no result")
		} else if _, ok := res.(*rsftp.Client); ok {
			t.Fatal("the client accepted an ACK in place of RESUME_ENABLE")
		}
		newPeer(t, c).endsWith(wire.DisconnectProtocolError, "ACK in place of RESUME_ENABLE")
	})
	for name, msg := range map[string]func(s *rawSession) []byte{
		"RESUME_ENABLE while attached": func(s *rawSession) []byte { return (&resume.Enable{Handle: s.handle, HoldSeconds: 60}).Marshal() },
		"RESUME_ACCEPT while attached": func(s *rawSession) []byte { return (&resume.Accept{MAC: make([]byte, resume.MACLen)}).Marshal() },
		"ACK beyond what was sent":     func(s *rawSession) []byte { return (&resume.Ack{Received: 1}).Marshal() },
	} {
		t.Run(name, func(t *testing.T) {
			ss := newScriptServer(t)
			client, s := ss.start()
			s.first.c.WritePacket(msg(s))
			s.first.endsWith(wire.DisconnectProtocolError, name)
			ss.waitEvent(rsftp.EventClosed, 1)
			if st := resumeStatus(t, client).State; st != resume.Closed {
				t.Fatalf("client session %v after a protocol error", st)
			}
		})
	}
}

// TestResumeKeepaliveWithoutPing: against a server that does not
// advertise ping@openssh.com, an idle client probes with
// keepalive@openssh.com instead of taking the silence for a dead link:
// it stays on its first connection.
func TestResumeKeepaliveWithoutPing(t *testing.T) {
	r := newRig(t, time.Minute, func(cfg *rsftp.ServerConfig) { cfg.Transport.NoPingExtension = true })
	c := r.dial(nil)
	if _, ok := c.Transport().ExtInfo("ping@openssh.com"); ok {
		t.Fatal("the server advertises ping@openssh.com")
	}
	// 20 alive intervals of 100 ms, with nothing to send.
	time.Sleep(2 * time.Second)
	if n, rs := r.clientCount(rsftp.EventLinkLost), resumeStatus(t, c); n != 0 || rs.Stats.Attaches != 1 {
		t.Fatalf("an idle client lost its link %d times (%d connections) against a server without ping", n, rs.Stats.Attaches)
	}
}

// TestConformanceServerResumeMessageOnPlainSession: over its session
// limit the server announces hold time 0 and the connection is plain SSH
// (section 4.2); the extension was negotiated, so a resume message on it
// is a protocol error (section 8.4), not something to ignore.
func TestConformanceServerResumeMessageOnPlainSession(t *testing.T) {
	r := newRig(t, time.Minute, func(cfg *rsftp.ServerConfig) { cfg.Resume.MaxSessions = 1 })
	r.rawLogin(t) // takes the one resumable place
	c := r.rawConn(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := auth.Authenticate(ctx, c, &auth.ClientConfig{User: "alice", Methods: []auth.Method{auth.PublicKeySigners(r.userKey)}}); err != nil {
		t.Fatal(err)
	}
	c.SetAuthenticated()
	pe := newPeer(t, c)
	en, err := resume.ParseEnable(pe.expect(resume.MsgEnable))
	if err != nil || en.HoldSeconds != 0 {
		t.Fatalf("RESUME_ENABLE %+v, %v; want hold 0", en, err)
	}
	c.WritePacket((&resume.Ack{Received: 0}).Marshal())
	pe.endsWith(2, "an ACK on a session announced with hold 0")
}

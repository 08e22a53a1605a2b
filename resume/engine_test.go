package resume_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"runtime"
	"testing"

	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/kex"
	"github.com/rsftp/rsftp/resume"
	"github.com/rsftp/rsftp/transport"
)

// The resumption extension as the module root describes it to the
// transport (client.go's resumeExtension).
var resumeExt = transport.Extension{
	Client: resume.ClientKexName, Server: resume.ServerKexName,
	FirstMsg: resume.MsgEnable, LastMsg: resume.MsgAck,
	QuietFailures: true,
}

// transport.Conn is what a session runs on.
var _ resume.Transport = (*transport.Conn)(nil)

// link is one connection between a client and a server engine, driven
// by the test alone: the bytes each engine outputs go to the other when
// a reader finds nothing to read (pump), and the messages each engine
// passes up wait in its inbox. Nothing runs on its own.
type link struct {
	t        *testing.T
	cli, srv *engineTransport
	dropped  bool // the wire is cut: output is discarded
}

// engineTransport is a resume.Transport over one end of a link.
type engineTransport struct {
	l      *link
	e      *transport.Engine
	inbox  [][]byte
	closed bool
}

func (et *engineTransport) peer() *engineTransport {
	if et == et.l.cli {
		return et.l.srv
	}
	return et.l.cli
}

var errWouldBlock = errors.New("test: nothing to read: the peer sent nothing")

func (et *engineTransport) ReadPacket() ([]byte, error) {
	if et.closed {
		return nil, errors.New("test: closed")
	}
	if len(et.inbox) == 0 {
		et.l.pump()
	}
	if len(et.inbox) == 0 {
		return nil, errWouldBlock
	}
	p := et.inbox[0]
	et.inbox = et.inbox[1:]
	return p, nil
}

func (et *engineTransport) WritePacket(p []byte) error {
	if et.closed {
		return errors.New("test: closed")
	}
	return et.e.Write(p)
}

func (et *engineTransport) WritePacketBackground(p []byte) error { return et.WritePacket(p) }
func (et *engineTransport) SealFrame(frame []byte) error {
	return et.WritePacket(frame[wire.FrameHeadroom:])
}
func (et *engineTransport) RetainPacket() interface{ Release() } { return nil }

// Abort and Disconnect only close: the test cuts the link itself.
func (et *engineTransport) Abort() error                    { return et.Close() }
func (et *engineTransport) Disconnect(uint32, string) error { return et.Close() }
func (et *engineTransport) Close() error                    { et.closed = true; return nil }
func (et *engineTransport) SessionID() []byte               { return et.e.SessionID() }

// pump moves bytes between the engines until neither has anything to
// send, queueing the messages each passes up.
func (l *link) pump() {
	l.t.Helper()
	move := func(from, to *engineTransport) bool {
		out := from.e.Output()
		if len(out) == 0 {
			return false
		}
		if !l.dropped {
			to.e.Input(out)
		}
		from.e.Consume(len(out))
		for {
			p, err := to.e.Next()
			if err != nil {
				l.t.Fatalf("Next: %v", err)
			}
			if p == nil {
				return true
			}
			to.inbox = append(to.inbox, bytes.Clone(p))
		}
	}
	for i := 0; move(l.cli, l.srv) || move(l.srv, l.cli); i++ {
		if i > 1e5 {
			l.t.Fatal("the engines never settle")
		}
	}
}

// connect runs a key exchange with the resumption extension between two
// new engines, the client checking the server's host key.
func connect(t *testing.T, hk kex.Signer) *link {
	t.Helper()
	want := hk.PublicKey().Marshal()
	ccfg := &transport.Config{Extensions: []transport.Extension{resumeExt}, HostKeyCallback: func(k kex.PublicKey) error {
		if !bytes.Equal(k.Marshal(), want) {
			return errors.New("not the server's host key")
		}
		return nil
	}}
	scfg := &transport.Config{Extensions: []transport.Extension{resumeExt}, HostKeys: []kex.Signer{hk}}
	ce, err := transport.NewClientEngine(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	se, err := transport.NewServerEngine(scfg)
	if err != nil {
		t.Fatal(err)
	}
	l := &link{t: t}
	l.cli = &engineTransport{l: l, e: ce}
	l.srv = &engineTransport{l: l, e: se}
	l.pump()
	if !ce.HandshakeComplete() || !se.HandshakeComplete() {
		t.Fatal("the key exchange did not complete")
	}
	if !ce.Negotiated(resume.ClientKexName) || !se.Negotiated(resume.ServerKexName) {
		t.Fatal("the resumption extension was not negotiated")
	}
	return l
}

func data(tag byte, n int) []byte {
	p := []byte{wire.MsgChannelData, 0, 0, 0, 0, 0, 0, 0, byte(n)}
	return append(p, bytes.Repeat([]byte{tag}, n)...)
}

// TestEngineKexAndResumptionNoGoroutines runs a whole resumable session
// between engines, with no goroutine and no socket: the first key
// exchange, RESUME_ENABLE, messages both ways, a cut that loses messages
// in both directions, a second key exchange, RESUME_REQUEST and
// RESUME_ACCEPT step by step (Session.BeginResume, Registry.Answer), the
// resend of exactly what each side lacks, and a replay of the request on
// a third connection, which the server refuses (its MAC binds the second
// connection's exchange hash).
func TestEngineKexAndResumptionNoGoroutines(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	hk, err := kex.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	goroutines := runtime.NumGoroutine()
	reg := &resume.Registry{}

	// The first connection, and the session made resumable on it (after
	// user authentication, which resume does not see).
	l1 := connect(t, hk)
	rk1, err := resume.Key(l1.cli.e)
	if err != nil {
		t.Fatal(err)
	}
	rkS, err := resume.Key(l1.srv.e)
	if err != nil || !bytes.Equal(rk1, rkS) {
		t.Fatalf("resume keys differ (%v)", err)
	}
	srvS, err := reg.EnableOwned(l1.srv, rkS, resume.Owner{ID: "test", Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	enable, err := l1.cli.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	cliS, err := resume.EnableClient(l1.cli, rk1, enable)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(cliS.Handle(), srvS.Handle()) || cliS.Hold() != resume.DefaultHold {
		t.Fatalf("handles %x %x, hold %v", cliS.Handle(), srvS.Handle(), cliS.Hold())
	}

	// Messages both ways, delivered.
	for i := range 4 {
		if err := cliS.WritePacket(data('c', 10+i)); err != nil {
			t.Fatal(err)
		}
		if err := srvS.WritePacket(data('s', 20+i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 4 {
		p, err := srvS.ReadPacket()
		if err != nil || !bytes.Equal(p, data('c', 10+i)) {
			t.Fatalf("server read %d: %x, %v", i, p, err)
		}
		p, err = cliS.ReadPacket()
		if err != nil || !bytes.Equal(p, data('s', 20+i)) {
			t.Fatalf("client read %d: %x, %v", i, p, err)
		}
	}

	// The wire is cut: what each writes now is lost with the connection.
	l1.dropped = true
	for i := range 3 {
		if err := cliS.WritePacket(data('C', 30+i)); err != nil {
			t.Fatal(err)
		}
		if err := srvS.WritePacket(data('S', 40+i)); err != nil {
			t.Fatal(err)
		}
	}
	l1.pump()
	cliS.Detach(errors.New("test: link lost"))
	if cliS.State() != resume.Detached {
		t.Fatalf("client state %v after the cut", cliS.State())
	}
	before := cliS.Stats()

	// The second connection: a fresh key exchange, then the resumption.
	l2 := connect(t, hk)
	if bytes.Equal(l2.cli.SessionID(), l1.cli.SessionID()) {
		t.Fatal("the second connection has the first's exchange hash")
	}
	r, err := cliS.BeginResume(l2.cli)
	if err != nil {
		t.Fatal(err)
	}
	req := bytes.Clone(r.Request())
	if err := l2.cli.WritePacket(req); err != nil {
		t.Fatal(err)
	}
	first, err := l2.srv.ReadPacket()
	if err != nil || first[0] != resume.MsgRequest {
		t.Fatalf("server's first message %x, %v", first, err)
	}
	got, srvResend, err := reg.Answer(l2.srv, first)
	if err != nil {
		t.Fatal(err)
	}
	if got != srvS {
		t.Fatal("the server resumed another session")
	}
	if err := srvResend(); err != nil {
		t.Fatal(err)
	}
	answer, err := l2.cli.ReadPacket()
	if err != nil || answer[0] != resume.MsgAccept {
		t.Fatalf("client's answer %x, %v", answer, err)
	}
	cliResend, err := r.Answer(answer)
	if err != nil {
		t.Fatal(err)
	}
	if err := cliResend(); err != nil {
		t.Fatal(err)
	}

	// What was lost arrives once, in order, then new messages.
	if err := cliS.WritePacket(data('n', 50)); err != nil {
		t.Fatal(err)
	}
	if err := srvS.WritePacket(data('N', 60)); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		want := data('C', 30+i)
		if i == 3 {
			want = data('n', 50)
		}
		p, err := srvS.ReadPacket()
		if err != nil || !bytes.Equal(p, want) {
			t.Fatalf("server read %d after resuming: %x, %v", i, p, err)
		}
		want = data('S', 40+i)
		if i == 3 {
			want = data('N', 60)
		}
		p, err = cliS.ReadPacket()
		if err != nil || !bytes.Equal(p, want) {
			t.Fatalf("client read %d after resuming: %x, %v", i, p, err)
		}
	}
	if _, err := l2.cli.ReadPacket(); err != errWouldBlock {
		t.Fatalf("a message too many for the client: %v", err)
	}
	if _, err := l2.srv.ReadPacket(); err != errWouldBlock {
		t.Fatalf("a message too many for the server: %v", err)
	}
	after := cliS.Stats()
	if after.Attaches != 2 || after.ResentMessages-before.ResentMessages < 3 || cliS.State() != resume.Attached || srvS.State() != resume.Attached {
		t.Fatalf("client stats %+v, states %v %v", after, cliS.State(), srvS.State())
	}
	if st := srvS.Stats(); st.Received != 8 || st.Sent != 8 {
		t.Fatalf("server counted %d received and %d sent, want 8 and 8", st.Received, st.Sent)
	}

	// The request of the second connection, replayed on a third, is
	// refused: its MAC covers the second's exchange hash.
	l3 := connect(t, hk)
	if _, _, err := reg.Answer(l3.srv, req); err == nil {
		t.Fatal("a replayed request was accepted")
	} else if f := (*resume.Failure)(nil); !errors.As(err, &f) || f.Reason != resume.ReasonAuthFailed {
		t.Fatalf("replay refused with %v, want AUTH_FAILED", err)
	}
	fail, err := l3.cli.ReadPacket()
	if err != nil || fail[0] != resume.MsgFailure {
		t.Fatalf("the replaying client heard %x, %v", fail, err)
	}
	if srvS.State() != resume.Attached || reg.Len() != 1 {
		t.Fatalf("the replay disturbed the session: %v, %d sessions", srvS.State(), reg.Len())
	}

	if n := runtime.NumGoroutine(); n > goroutines {
		t.Errorf("%d goroutines, %d before: something ran on its own", n, goroutines)
	}
	cliS.Close()
	srvS.Close()
}

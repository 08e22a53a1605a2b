package resume

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var errCut = errors.New("connection cut")

// fakeConn is one end of an in-memory connection with an exchange hash,
// which a test can cut (both ends fail, as with a reset). Close is a
// DISCONNECT: the other end's reader then fails with an error that ends
// its session; Abort and Cut only lose the link.
type fakeConn struct {
	in   <-chan []byte
	out  chan<- []byte
	h    []byte
	cut  chan struct{}
	once *sync.Once
	disc *atomic.Bool // set by Close before the cut
}

func fakePair() (*fakeConn, *fakeConn) {
	// Roomy queues: like the transport, which never blocks a reader that
	// writes an ACK, the fake must not deadlock two readers on full
	// queues.
	a2b, b2a := make(chan []byte, 1<<15), make(chan []byte, 1<<15)
	h := make([]byte, 32)
	rand.Read(h)
	cut, once, disc := make(chan struct{}), new(sync.Once), new(atomic.Bool)
	return &fakeConn{in: b2a, out: a2b, h: h, cut: cut, once: once, disc: disc},
		&fakeConn{in: a2b, out: b2a, h: h, cut: cut, once: once, disc: disc}
}

func (f *fakeConn) ReadPacket() ([]byte, error) {
	// What was sent before the cut is still delivered (as TCP delivers
	// data before a FIN).
	select {
	case p := <-f.in:
		return p, nil
	default:
	}
	select {
	case p := <-f.in:
		return p, nil
	case <-f.cut:
		if f.disc.Load() {
			return nil, fakeDisconnect{}
		}
		return nil, errCut
	}
}

func (f *fakeConn) WritePacket(p []byte) error {
	select {
	case f.out <- bytes.Clone(p):
		return nil
	case <-f.cut:
		return errCut
	}
}

// The rest of Transport's writes go through WritePacket, which copies.
func (f *fakeConn) WritePacketBackground(p []byte) error { return f.WritePacket(p) }
func (f *fakeConn) SealFrame(frame []byte) error         { return f.WritePacket(message(frame)) }

func (f *fakeConn) RetainPacket() interface{ Release() } { return nil }

func (f *fakeConn) Close() error {
	f.once.Do(func() { f.disc.Store(true); close(f.cut) })
	return nil
}

// Disconnect is Close: the peer's reader ends its session.
func (f *fakeConn) Disconnect(uint32, string) error { return f.Close() }
func (f *fakeConn) Abort() error                    { f.Cut(); return nil }
func (f *fakeConn) Cut()                            { f.once.Do(func() { close(f.cut) }) }
func (f *fakeConn) SessionID() []byte               { return f.h }

// pair sets up a client and a server session on a first connection.
func pair(t *testing.T, reg *Registry) (*Session, *Session, *fakeConn) {
	return pairWith(t, reg, "", nil)
}

// pairWith is pair for a named user's session, with the client's end of
// the connection wrapped by wrap if it is not nil.
func pairWith(t *testing.T, reg *Registry, user string, wrap func(*fakeConn) Transport) (*Session, *Session, *fakeConn) {
	t.Helper()
	rk := make([]byte, 32)
	rand.Read(rk)
	c, s := fakePair()
	ss, err := reg.EnableFor(s, rk, user)
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	var ct Transport = c
	if wrap != nil {
		ct = wrap(c)
	}
	cs, err := EnableClient(ct, rk, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close(); ss.Close() })
	return cs, ss, c
}

// reconnect runs one resumption over a fresh connection.
func reconnect(t *testing.T, reg *Registry, cs *Session) (*fakeConn, error) {
	c, s := fakePair()
	errc := make(chan error, 1)
	go func() {
		p, err := s.ReadPacket()
		if err == nil {
			_, err = reg.Resume(s, p)
		}
		errc <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := cs.Resume(ctx, c)
	serr := <-errc
	if err == nil {
		err = serr
	}
	return c, err
}

func dataMsg(i uint32, size int) []byte {
	p := make([]byte, 5+size)
	p[0] = 94
	binary.BigEndian.PutUint32(p[1:], i)
	for j := 5; j < len(p); j++ {
		p[j] = byte(i) + byte(j)
	}
	return p
}

// Messages both ways arrive exactly once and in order across many cuts,
// including cuts while resuming is still resending.
func TestExactlyOnceAcrossCuts(t *testing.T) {
	reg := &Registry{Hold: time.Minute}
	cs, ss, conn := pair(t, reg)
	const n = 20000
	var wg sync.WaitGroup
	check := func(name string, s *Session) {
		defer wg.Done()
		for i := uint32(0); i < n; i++ {
			p, err := s.ReadPacket()
			if err != nil {
				t.Errorf("%s: after %d messages: %v", name, i, err)
				return
			}
			if got := binary.BigEndian.Uint32(p[1:]); got != i || !bytes.Equal(p, dataMsg(i, len(p)-5)) {
				t.Errorf("%s: message %d arrived as %d (or corrupted)", name, i, got)
				return
			}
		}
	}
	// The client's sender waits at each of the first four tenths until
	// the cut there happened, so at least four cuts land mid-stream
	// however fast the machine is.
	const gated = 4
	var gates [gated + 1]chan struct{}
	for k := range gates {
		gates[k] = make(chan struct{})
	}
	send := func(s *Session) {
		defer wg.Done()
		for i := uint32(0); i < n; i++ {
			if k := int(i) / (n / 10); s == cs && int(i)%(n/10) == 0 && k >= 1 && k <= gated {
				<-gates[k]
			}
			if err := s.WritePacket(dataMsg(i, int(i%700))); err != nil {
				t.Errorf("write %d: %v", i, err)
				return
			}
		}
	}
	wg.Add(4)
	go check("server", ss)
	go check("client", cs)
	go send(cs)
	go send(ss)

	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	// Cut each time the server has received another tenth of the
	// stream, so the cuts land mid-stream whatever the machine's speed.
	cuts := 0
	deadline := time.After(20 * time.Second)
	for {
		select {
		case <-done:
			if cuts < gated {
				t.Fatalf("only %d cuts happened", cuts)
			}
			st := cs.Stats()
			if st.Attaches != cuts+1 || st.Received != n {
				t.Fatalf("client stats %+v after %d cuts", st, cuts)
			}
			t.Logf("%d cuts; client resent %d messages, server resent %d", cuts, st.ResentMessages, ss.Stats().ResentMessages)
			return
		case <-deadline:
			t.Fatal("stuck")
		case <-time.After(200 * time.Microsecond):
		}
		if cuts >= 9 || ss.Stats().Received < uint64((cuts+1)*n/10) {
			continue
		}
		conn.Cut()
		cuts++
		// The client notices by itself when it reads or writes; when
		// it does neither, its liveness check would (Detach).
		cs.Detach(errCut)
		for {
			c, err := reconnect(t, reg, cs)
			if err == nil {
				conn = c
				break
			}
			t.Logf("retrying: %v", err)
		}
		if cuts <= gated {
			close(gates[cuts])
		}
	}
}

func TestResumeRefusalsLeaveSessionIntact(t *testing.T) {
	reg := &Registry{Hold: time.Minute}
	cs, ss, conn := pair(t, reg)
	for i := range 10 {
		cs.WritePacket(dataMsg(uint32(i), 10))
	}
	for range 10 {
		if _, err := ss.ReadPacket(); err != nil {
			t.Fatal(err)
		}
	}
	// Both sides notice the loss (as their readers would).
	conn.Cut()
	cs.Detach(errCut)
	ss.Detach(errCut)
	before := cs.Stats()

	macKey := cs.rk // the key try uses when req.MAC is nil
	try := func(req *Request) error {
		c, s := fakePair()
		served := make(chan struct{})
		defer func() { <-served }()
		go func() {
			defer close(served)
			p, err := s.ReadPacket()
			if err == nil {
				reg.Resume(s, p)
			}
		}()
		if req.MAC == nil {
			req.MAC = RequestMAC(macKey, c.h, req.Handle, req.Received)
		}
		c.WritePacket(req.Marshal())
		p, err := c.ReadPacket()
		if err != nil {
			return err
		}
		if p[0] != MsgFailure {
			return errors.New("accepted")
		}
		f, _ := ParseFailure(p)
		return f
	}
	wantReason := func(err error, reason uint32) {
		t.Helper()
		var f *Failure
		if !errors.As(err, &f) || f.Reason != reason {
			t.Fatalf("got %v, want reason %d", err, reason)
		}
	}
	h := cs.Handle()
	wantReason(try(&Request{Handle: h, Received: 0, MAC: bytes.Repeat([]byte{1}, MACLen)}), ReasonAuthFailed)
	other := bytes.Clone(h)
	other[0] ^= 1
	wantReason(try(&Request{Handle: other}), ReasonSessionUnknown)
	// The server sent the client nothing: a claim of 5 is out of range.
	wantReason(try(&Request{Handle: h, Received: 5}), ReasonCountOutOfRange)
	// A request recorded on one connection and replayed on another.
	c1, s1 := fakePair()
	recorded := (&Request{Handle: h, Received: 0, MAC: RequestMAC(cs.rk, c1.h, h, 0)})
	_ = s1
	wantReason(try(&Request{Handle: h, Received: 0, MAC: recorded.MAC}), ReasonAuthFailed)

	// Another session's client (its own resume key) names our handle.
	otherKey := make([]byte, 32)
	rand.Read(otherKey)
	macKey = otherKey
	wantReason(try(&Request{Handle: h}), ReasonAuthFailed)
	macKey = cs.rk

	if st := cs.Stats(); st != before || cs.State() != Detached || ss.State() != Detached {
		t.Fatalf("refused attempts changed the sessions: %+v vs %+v", st, before)
	}
	// And the genuine client still resumes, and nothing was lost.
	if _, err := reconnect(t, reg, cs); err != nil {
		t.Fatal(err)
	}
	ss.WritePacket(dataMsg(77, 3))
	if p, err := cs.ReadPacket(); err != nil || binary.BigEndian.Uint32(p[1:]) != 77 {
		t.Fatalf("after resume: %v", err)
	}
}

type fakeDisconnect struct{}

func (fakeDisconnect) Error() string      { return "peer disconnected" }
func (fakeDisconnect) SessionEnded() bool { return true }

func TestExpiryAndClose(t *testing.T) {
	reg := &Registry{Hold: 100 * time.Millisecond}
	cs, ss, conn := pair(t, reg)
	conn.Cut()
	go ss.ReadPacket() // the server notices the loss
	select {
	case <-ss.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("detached session not discarded after the hold time")
	}
	// The registry forgets it when the session tells its observers,
	// just after Done.
	for deadline := time.Now().Add(5 * time.Second); reg.Len() != 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if !errors.Is(ss.Err(), ErrExpired) || reg.Len() != 0 {
		t.Fatalf("server session: %v, %d kept", ss.Err(), reg.Len())
	}
	det, _ := cs.Detached()
	go cs.ReadPacket()
	<-det
	_, err := reconnect(t, reg, cs)
	var f *Failure
	if !errors.As(err, &f) || f.Reason != ReasonSessionUnknown {
		t.Fatalf("resume of an expired session: %v", err)
	}

	// A DISCONNECT ends a session; it is not a lost link.
	reg2 := &Registry{Hold: time.Minute}
	cs2, _, _ := pair(t, reg2)
	c, s := fakePair()
	if resend, err := cs2.attach(c, nil, 0); err == nil {
		resend()
	}
	go func() { s.out <- nil }()
	_ = s
	cs2.closeWith(fakeDisconnect{})
	if cs2.State() != Closed || !endsSession(cs2.Err()) {
		t.Fatalf("state %v err %v", cs2.State(), cs2.Err())
	}
	if _, err := cs2.ReadPacket(); err == nil {
		t.Fatal("read on a closed session")
	}
}

func TestRetentionBlocksWriterUntilAck(t *testing.T) {
	reg := &Registry{}
	cs, ss, _ := pair(t, reg)
	cs.mu.Lock()
	cs.send.Limit = 64 << 10
	cs.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		for i := range 200 {
			if err := cs.WritePacket(dataMsg(uint32(i), 1000)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	// Without the server reading (and so acknowledging), the writer
	// stops at the limit.
	select {
	case err := <-done:
		t.Fatalf("writer passed the retention limit: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	if b := cs.Stats().RetainedBytes; b > 64<<10 {
		t.Fatalf("%d bytes retained over a 64 KiB limit", b)
	}
	go drainSession(ss)
	// The server acks by its policy and then after IdleAck.
	go drainSession(cs)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("writer never unblocked")
	}
}

// pairFor is pair for a named user.
func pairFor(t *testing.T, reg *Registry, user string) (*Session, *Session, *fakeConn) {
	return pairWith(t, reg, user, nil)
}

func waitClosed(t *testing.T, s *Session, what string) {
	t.Helper()
	select {
	case <-s.Done():
	case <-time.After(5 * time.Second):
		t.Fatalf("%s not discarded", what)
	}
}

// The caps on detached sessions discard the oldest first: per user, and
// on the bytes retained by all of them; and past MaxSessions a new
// session evicts the oldest detached one or is refused.
func TestRegistryCaps(t *testing.T) {
	t.Run("per user", func(t *testing.T) {
		reg := &Registry{Hold: time.Minute, MaxDetachedPerUser: 1}
		_, a, _ := pairFor(t, reg, "alice")
		_, b, _ := pairFor(t, reg, "alice")
		_, c, _ := pairFor(t, reg, "bob")
		a.Detach(errCut)
		time.Sleep(20 * time.Millisecond)
		c.Detach(errCut) // another user's: no effect on alice's
		b.Detach(errCut)
		waitClosed(t, a, "alice's older detached session")
		time.Sleep(100 * time.Millisecond)
		if b.State() != Detached || c.State() != Detached {
			t.Fatalf("states %v %v, want both detached", b.State(), c.State())
		}
	})
	t.Run("retained bytes", func(t *testing.T) {
		// Mallory's two detached sessions hold most of the budget;
		// alice's writer finds it full, and one of mallory's goes, the
		// larger, while alice's own detached session stays.
		reg := &Registry{Hold: time.Minute, MaxRetainedBytes: 200 << 10}
		_, m1, _ := pairFor(t, reg, "mallory")
		_, m2, _ := pairFor(t, reg, "mallory")
		_, a1, _ := pairFor(t, reg, "alice")
		_, a2, _ := pairFor(t, reg, "alice")
		for i, n := range []int{3, 2} {
			s := []*Session{m1, m2}[i]
			for j := range n {
				if err := s.WritePacket(dataMsg(uint32(j), 30<<10)); err != nil {
					t.Fatal(err)
				}
			}
			s.Detach(errCut)
		}
		a1.WritePacket(dataMsg(0, 100))
		a1.Detach(errCut)
		done := make(chan error, 1)
		go func() {
			for j := range 2 {
				if err := a2.WritePacket(dataMsg(uint32(j), 30<<10)); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("alice's writer still waits for room held by mallory's detached sessions")
		}
		waitClosed(t, m1, "mallory's larger detached session")
		if m2.State() != Detached || a1.State() != Detached {
			t.Fatalf("states: mallory's smaller %v, alice's %v; want both detached", m2.State(), a1.State())
		}
		if u, l := reg.RetainedBudget().Used(), int64(200<<10); u > l+ControlAllowance {
			t.Fatalf("budget used %d, limit %d", u, l)
		}
	})
	t.Run("max sessions", func(t *testing.T) {
		reg := &Registry{Hold: time.Minute, MaxSessions: 2}
		_, a, _ := pair(t, reg)
		pair(t, reg)
		a.Detach(errCut)
		time.Sleep(50 * time.Millisecond)
		pair(t, reg) // evicts a
		waitClosed(t, a, "the detached session at MaxSessions")
		c, s := fakePair()
		defer c.Close()
		if _, err := reg.Enable(s, make([]byte, 32)); err == nil {
			t.Fatal("a session past MaxSessions with none detached was enabled")
		}
	})
}

// blindConn never delivers what the server sends: the answer to a resume
// request is lost on the way, and the client's attempt times out.
type blindConn struct{ *fakeConn }

func (b blindConn) ReadPacket() ([]byte, error) {
	<-b.cut
	return nil, errCut
}

// An attempt the client gives up on after the server accepted it (the
// ACCEPT was lost, the attempt timed out) must not end the session: the
// client drops the new connection without DISCONNECT, the server sees a
// lost link and keeps the session detached, and the next attempt resumes
// it with nothing lost or repeated. (Found by the load test: the client
// closed the connection of a failed attempt with DISCONNECT, which ended
// sessions the server had already moved to it.)
func TestAbandonedAttemptAfterServerAcceptKeepsSession(t *testing.T) {
	reg := &Registry{Hold: time.Minute}
	cs, ss, conn := pair(t, reg)
	for i := range 5 {
		cs.WritePacket(dataMsg(uint32(i), 10))
	}
	for i := range 5 {
		if p, err := ss.ReadPacket(); err != nil || binary.BigEndian.Uint32(p[1:]) != uint32(i) {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	conn.Cut()
	cs.Detach(errCut)
	ss.Detach(errCut)

	c, s := fakePair()
	served := make(chan error, 1)
	go func() {
		p, err := s.ReadPacket()
		if err == nil {
			_, err = reg.Resume(s, p)
		}
		served <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := cs.Resume(ctx, blindConn{c}); err == nil {
		t.Fatal("the attempt succeeded without the server's answer")
	}
	if err := <-served; err != nil {
		t.Fatalf("server: %v (the scenario needs the server to accept)", err)
	}

	// The server's reader finds the new connection gone.
	got := make(chan uint32, 16)
	go func() {
		for {
			p, err := ss.ReadPacket()
			if err != nil {
				close(got)
				return
			}
			got <- binary.BigEndian.Uint32(p[1:])
		}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for ss.State() != Detached {
		select {
		case <-ss.Done():
			t.Fatalf("the server's session ended: %v", ss.Err())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server session %v, want detached", ss.State())
		}
		time.Sleep(time.Millisecond)
	}

	if _, err := reconnect(t, reg, cs); err != nil {
		t.Fatalf("the next attempt: %v", err)
	}
	cs.WritePacket(dataMsg(5, 10))
	if id, ok := <-got; !ok || id != 5 {
		t.Fatalf("after resuming the server read message %d (ok %v), want 5", id, ok)
	}
	ss.WritePacket(dataMsg(9, 3))
	if p, err := cs.ReadPacket(); err != nil || binary.BigEndian.Uint32(p[1:]) != 9 {
		t.Fatalf("client after resuming: %v", err)
	}
}

// deadConn fails every write.
type deadConn struct{ *fakeConn }

func (deadConn) WritePacket([]byte) error           { return errCut }
func (deadConn) WritePacketBackground([]byte) error { return errCut }
func (deadConn) SealFrame([]byte) error             { return errCut }

// hookConn calls onWrite before each write.
type hookConn struct {
	*fakeConn
	onWrite func(p []byte)
}

func (h hookConn) WritePacket(p []byte) error {
	h.onWrite(p)
	return h.fakeConn.WritePacket(p)
}

func (h hookConn) WritePacketBackground(p []byte) error { return h.WritePacket(p) }
func (h hookConn) SealFrame(frame []byte) error         { return h.WritePacket(message(frame)) }

// The registry knows a session before its RESUME_ENABLE goes out: a
// client may ask to resume the moment it learns the handle (found by the
// load test: under CPU starvation clients gave up on the first
// connection within a second, and their resumption found no session).
func TestSessionKeptBeforeEnableSent(t *testing.T) {
	reg := &Registry{Hold: time.Minute}
	_, s := fakePair()
	rk := make([]byte, 32)
	rand.Read(rk)
	var kept int = -1
	ss, err := reg.Enable(hookConn{s, func(p []byte) {
		if p[0] == MsgEnable {
			kept = reg.Len()
		}
	}}, rk)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	if kept != 1 {
		t.Fatalf("%d sessions kept when RESUME_ENABLE was sent, want 1", kept)
	}
	// A failed ENABLE leaves nothing behind.
	_, s2 := fakePair()
	if _, err := reg.Enable(deadConn{s2}, rk); err == nil {
		t.Fatal("enable on a dead connection succeeded")
	}
	if n := reg.Len(); n != 1 {
		t.Fatalf("%d sessions kept after a failed enable, want 1", n)
	}
}

// gatedAcks holds the first ACK written until gate is closed, and
// records the counts of the ACKs in the order they reach the wire.
type gatedAcks struct {
	*fakeConn
	first   atomic.Bool
	blocked chan struct{}
	gate    chan struct{}
	mu      sync.Mutex
	acks    []uint64
}

// ACKs are written in the background (Transport.WritePacketBackground).
func (g *gatedAcks) WritePacketBackground(p []byte) error { return g.WritePacket(p) }
func (g *gatedAcks) SealFrame(frame []byte) error         { return g.WritePacket(message(frame)) }

func (g *gatedAcks) WritePacket(p []byte) error {
	if p[0] == MsgAck {
		// Only the first ACK waits (sync.Once would hold the others
		// too).
		if g.first.CompareAndSwap(false, true) {
			close(g.blocked)
			<-g.gate
		}
		a, err := ParseAck(p)
		if err != nil {
			return err
		}
		g.mu.Lock()
		g.acks = append(g.acks, a.Received)
		g.mu.Unlock()
	}
	return g.fakeConn.WritePacket(p)
}

// ACKs leave in the order of their counts even when the idle timer's ACK
// is slow to be written and the reader makes a newer one meanwhile (found
// by the load test under CPU starvation: the server saw an ACK go
// backwards and, as the protocol requires, ended the session).
func TestAcksNeverGoBackwards(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the idle ACK (1 s)")
	}
	reg := &Registry{Hold: time.Minute}
	var g *gatedAcks
	cs, ss, _ := pairWith(t, reg, "", func(c *fakeConn) Transport {
		g = &gatedAcks{fakeConn: c, blocked: make(chan struct{}), gate: make(chan struct{})}
		return g
	})
	go drainSession(ss)

	// One message, then silence: the idle ACK fires and its write hangs.
	ss.WritePacket(dataMsg(0, 1))
	if _, err := cs.ReadPacket(); err != nil {
		t.Fatal(err)
	}
	<-g.blocked
	// Enough messages for the reader to owe an ACK by the count rule.
	readerDone := make(chan error, 1)
	go func() {
		for i := 1; i <= AckEveryMessages; i++ {
			if _, err := cs.ReadPacket(); err != nil {
				readerDone <- err
				return
			}
		}
		readerDone <- nil
	}()
	for i := 1; i <= AckEveryMessages; i++ {
		ss.WritePacket(dataMsg(uint32(i), 1))
	}
	// Give the reader time to reach its ACK (it must wait behind the
	// idle one, or, without the ordering, overtake it).
	time.Sleep(100 * time.Millisecond)
	close(g.gate)
	if err := <-readerDone; err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		g.mu.Lock()
		acks := slices.Clone(g.acks)
		g.mu.Unlock()
		if len(acks) >= 2 {
			if !slices.IsSorted(acks) {
				t.Fatalf("ACKs on the wire: %v, not in order", acks)
			}
			if acks[len(acks)-1] != AckEveryMessages+1 {
				t.Fatalf("ACKs %v; the last should acknowledge all %d messages", acks, AckEveryMessages+1)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ACKs on the wire: %v", acks)
		}
		time.Sleep(time.Millisecond)
	}
	if cs.State() != Attached || ss.State() != Attached {
		t.Fatalf("states %v %v", cs.State(), ss.State())
	}
}

// A hold under a second is announced as one second, not as 0 (which
// means "not resumable").
func TestHoldSecondsRoundUp(t *testing.T) {
	for _, tc := range []struct {
		hold time.Duration
		want uint32
	}{{0, 0}, {time.Millisecond, 1}, {500 * time.Millisecond, 1}, {time.Second, 1}, {1500 * time.Millisecond, 2}, {time.Hour, 3600}, {1 << 62, 1<<32 - 1}} {
		if got := holdSeconds(tc.hold); got != tc.want {
			t.Errorf("holdSeconds(%v) = %d, want %d", tc.hold, got, tc.want)
		}
	}
}

// TestDisconnectOnLeftConnectionIgnored: a DISCONNECT that arrives on a
// connection the session has left for a newer one (here within the short
// time the old connection lingers after a resumption) ends nothing, on
// either side (section 7: only the attached connection's DISCONNECT ends
// the session).
func TestDisconnectOnLeftConnectionIgnored(t *testing.T) {
	reg := &Registry{Hold: time.Minute}
	cs, ss, conn1 := pair(t, reg)
	type read struct {
		p   []byte
		err error
	}
	reader := func(s *Session) <-chan read {
		ch := make(chan read, 16)
		go func() {
			for {
				p, err := s.ReadPacket()
				ch <- read{p, err}
				if err != nil {
					return
				}
			}
		}()
		return ch
	}
	// Both readers wait on the first connection when the session moves.
	sr, cr := reader(ss), reader(cs)
	time.Sleep(20 * time.Millisecond)
	// The client gives up on the first connection (it lingers a moment
	// before it is closed), the server leaves it for the new one.
	cs.Detach(errors.New("liveness check"))
	if _, err := reconnect(t, reg, cs); err != nil {
		t.Fatal(err)
	}
	conn1.Close() // a DISCONNECT on the connection both sides left
	time.Sleep(50 * time.Millisecond)
	if ss.State() == Closed || cs.State() == Closed {
		t.Fatalf("a DISCONNECT on a connection the session had left ended it: server %v (%v), client %v (%v)",
			ss.State(), ss.Err(), cs.State(), cs.Err())
	}
	cs.WritePacket(dataMsg(1, 3))
	ss.WritePacket(dataMsg(2, 3))
	for _, r := range []<-chan read{sr, cr} {
		select {
		case got := <-r:
			if got.err != nil {
				t.Fatalf("after the old connection's DISCONNECT: %v", got.err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("nothing arrives on the resumed connection")
		}
	}
}

// TestOfferWhenFull: a registry that keeps no more sessions, and may
// evict none (the only one is attached), tells the newcomer with a
// RESUME_ENABLE of hold time 0; the session it keeps is untouched.
func TestOfferWhenFull(t *testing.T) {
	reg := &Registry{MaxSessions: 1}
	_, ss, _ := pairWith(t, reg, "a", nil)
	c, s := fakePair()
	rk := make([]byte, 32)
	got, err := reg.Offer(s, rk, Owner{ID: "b", Name: "b"})
	if got != nil || !errors.Is(err, ErrTooManySessions) {
		t.Fatalf("Offer on a full registry: %v, %v", got, err)
	}
	p, err := c.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseEnable(p)
	if err != nil || m.HoldSeconds != 0 || len(m.Handle) != HandleLen {
		t.Fatalf("the client heard %+v, %v; want a hold time of 0", m, err)
	}
	if reg.Len() != 1 || ss.State() != Attached {
		t.Fatalf("%d sessions, the kept one %v", reg.Len(), ss.State())
	}
	// With room, Offer is EnableOwned.
	reg.MaxSessions = 2
	c, s = fakePair()
	got, err = reg.Offer(s, rk, Owner{ID: "b", Name: "b"})
	if err != nil || got == nil {
		t.Fatalf("Offer with room: %v, %v", got, err)
	}
	defer got.Close()
	p, _ = c.ReadPacket()
	if m, err := ParseEnable(p); err != nil || m.HoldSeconds == 0 || !bytes.Equal(m.Handle, got.Handle()) {
		t.Fatalf("the client heard %+v, %v", m, err)
	}
}

// TestRegistryClose: Close ends attached and detached sessions, the
// attached one's connection with a close (the transport's DISCONNECT),
// and refuses new sessions.
func TestRegistryClose(t *testing.T) {
	reg := &Registry{}
	cs1, ss1, _ := pair(t, reg)
	go func() { // the client's reader, which hears the DISCONNECT
		for {
			if _, err := cs1.ReadPacket(); err != nil {
				return
			}
		}
	}()
	_, ss2, c2 := pair(t, reg)
	c2.Cut()
	ss2.Detach(errCut)
	if ss2.State() != Detached {
		t.Fatalf("second session %v, want detached", ss2.State())
	}
	reg.Close()
	for _, s := range []*Session{ss1, ss2} {
		if s.State() != Closed || !errors.Is(s.Err(), ErrRegistryClosed) {
			t.Errorf("server session %v, %v after Close", s.State(), s.Err())
		}
	}
	if reg.Len() != 0 {
		t.Errorf("%d sessions kept", reg.Len())
	}
	// The attached one's client hears the end as a DISCONNECT.
	for deadline := time.Now().Add(10 * time.Second); cs1.State() != Closed && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	var se interface{ SessionEnded() bool }
	if !errors.As(cs1.Err(), &se) {
		t.Errorf("client's session ended with %v, not a DISCONNECT", cs1.Err())
	}
	c, s := fakePair()
	if _, err := reg.EnableOwned(s, make([]byte, 32), Owner{ID: "x"}); !errors.Is(err, ErrRegistryClosed) {
		t.Errorf("EnableOwned after Close: %v", err)
	}
	c.Close()
}

// sentLog records the first byte of each message a session writes, and
// an ACK's count, in the order written.
type sentLog struct {
	*fakeConn
	mu   sync.Mutex
	sent []string
}

func (l *sentLog) WritePacket(p []byte) error {
	l.mu.Lock()
	if p[0] == MsgAck {
		a, err := ParseAck(p)
		if err != nil {
			l.mu.Unlock()
			return err
		}
		l.sent = append(l.sent, fmt.Sprintf("ack %d", a.Received))
	} else {
		l.sent = append(l.sent, fmt.Sprint(p[0]))
	}
	l.mu.Unlock()
	return l.fakeConn.WritePacket(p)
}
func (l *sentLog) WritePacketBackground(p []byte) error { return l.WritePacket(p) }
func (l *sentLog) SealFrame(frame []byte) error         { return l.WritePacket(message(frame)) }

func (l *sentLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.sent
	l.sent = nil
	return s
}

// A counted message written while DefaultEarlyAck bytes or more are
// unacknowledged carries an ACK of everything received ahead of it
// (section 5.4 allows ACKs earlier than its bounds); less than that, or
// with SetEarlyAck(0), it goes alone and the reader's rules apply.
func TestEarlyAckRidesWithWrite(t *testing.T) {
	reg := &Registry{Hold: time.Minute}
	var log *sentLog
	cs, ss, _ := pairWith(t, reg, "", func(c *fakeConn) Transport {
		log = &sentLog{fakeConn: c}
		return log
	})
	go drainSession(ss)
	recv := func(n, size int) {
		t.Helper()
		for i := range n {
			if err := ss.WritePacket(dataMsg(uint32(i), size)); err != nil {
				t.Fatal(err)
			}
			if _, err := cs.ReadPacket(); err != nil {
				t.Fatal(err)
			}
		}
	}
	send := func() {
		t.Helper()
		if err := cs.WritePacket(dataMsg(0, 10)); err != nil {
			t.Fatal(err)
		}
	}
	check := func(want ...string) {
		t.Helper()
		if got := log.take(); !slices.Equal(got, want) {
			t.Fatalf("written %q, want %q", got, want)
		}
	}

	// 30,000 bytes: below the early ACK's threshold.
	recv(1, 30000-5)
	send()
	check("94")
	// 90,000 unacknowledged (below AckEveryBytes, so the reader sent
	// nothing): the write carries the ACK.
	recv(2, 30000-5)
	check()
	send()
	check("ack 3", "94")
	// Nothing new: no ACK.
	send()
	check("94")
	// Turned off, the write goes alone.
	cs.SetEarlyAck(0)
	recv(3, 30000-5)
	send()
	check("94")
	// A WINDOW_ADJUST still carries its ACK (section 5.4's MUST).
	if err := cs.WritePacket([]byte{93, 0, 0, 0, 0, 0, 0, 1, 0}); err != nil {
		t.Fatal(err)
	}
	check("ack 6", "93")
}

// A resumption that finds the session still attached to a connection the
// server took for alive (a blackhole: no reset reached it) drops that
// connection at once, not after the linger a lost link gets: a writer
// still busy on it must not hold the resend back.
func TestSupersededConnectionDroppedAtOnce(t *testing.T) {
	reg := &Registry{Hold: time.Minute}
	cs, ss, old := pair(t, reg)
	if err := cs.WritePacket(dataMsg(1, 10)); err != nil {
		t.Fatal(err)
	}
	if _, err := ss.ReadPacket(); err != nil {
		t.Fatal(err)
	}
	cs.Detach(errors.New("test: the client moves on"))
	if _, err := reconnect(t, reg, cs); err != nil {
		t.Fatal(err)
	}
	select {
	case <-old.cut:
	default:
		t.Fatal("the superseded connection is still open after the resumption")
	}
}

// pollConn is a connection whose reads stop with ErrNoPacket while
// nothing has come, as a read bounded by its caller's poll.
type pollConn struct{ *fakeConn }

func (p pollConn) ReadPacket() ([]byte, error) {
	select {
	case m := <-p.in:
		return m, nil
	default:
		return nil, fmt.Errorf("poll: %w", ErrNoPacket)
	}
}

// TestReadPacketNow: a reader that bounds its own wait gets ErrNoPacket
// when its transport's read stops short, and the session stays attached
// and reads on from there; a detached session answers ErrNoPacket at once
// instead of waiting for the next connection, as ReadPacket would.
func TestReadPacketNow(t *testing.T) {
	reg := &Registry{Hold: time.Minute}
	cs, ss, _ := pairWith(t, reg, "", func(c *fakeConn) Transport { return pollConn{c} })
	if _, err := cs.ReadPacketNow(); !errors.Is(err, ErrNoPacket) {
		t.Fatalf("nothing sent: %v, want ErrNoPacket", err)
	}
	if cs.State() != Attached {
		t.Fatalf("a read stopped short detached the session: %v", cs.State())
	}
	if err := ss.WritePacket(dataMsg(1, 10)); err != nil {
		t.Fatal(err)
	}
	p, err := cs.ReadPacketNow()
	if err != nil || !bytes.Equal(p, dataMsg(1, 10)) {
		t.Fatalf("read %x, %v", p, err)
	}
	if st := cs.Stats(); st.Received != 1 {
		t.Fatalf("received %d", st.Received)
	}
	cs.Detach(errors.New("test: link lost"))
	done := make(chan error, 1)
	go func() {
		_, err := cs.ReadPacketNow()
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrNoPacket) {
			t.Fatalf("detached: %v, want ErrNoPacket", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadPacketNow waited for a detached session")
	}
}

// TestBeforeWait: a writer about to wait for retention room calls the
// hook first (a transport that holds messages back sends them there), and
// not while there is room.
func TestBeforeWait(t *testing.T) {
	reg := &Registry{}
	cs, ss, _ := pair(t, reg)
	var calls atomic.Int32
	cs.SetBeforeWait(func() { calls.Add(1) })
	cs.SetRetentionLimit(64 << 10)
	done := make(chan error, 1)
	go func() {
		for i := range 200 {
			if err := cs.WritePacket(dataMsg(uint32(i), 1000)); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for deadline := time.Now().Add(5 * time.Second); calls.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the writer waits without calling the hook")
		}
	}
	if n := cs.Stats().Sent; n == 0 || n >= 200 {
		t.Fatalf("hook called after %d messages", n)
	}
	go drainSession(ss)
	go drainSession(cs)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("writer never unblocked")
	}
}

// drainSession reads s until it fails, so that its ACKs are handled (a
// session reads ACKs only while someone reads it).
func drainSession(s *Session) {
	for {
		if _, err := s.ReadPacket(); err != nil {
			return
		}
	}
}

// gatedData holds writes of channel data until gate is closed, as a full
// connection would, and lets everything else through (ACKs included),
// recording the ACKs' counts.
type gatedData struct {
	*fakeConn
	blocked chan struct{}
	once    sync.Once
	gate    chan struct{}
	acks    atomic.Uint64
}

func (g *gatedData) WritePacketBackground(p []byte) error { return g.WritePacket(p) }
func (g *gatedData) SealFrame(frame []byte) error         { return g.WritePacket(message(frame)) }

func (g *gatedData) WritePacket(p []byte) error {
	switch p[0] {
	case 94: // CHANNEL_DATA
		g.once.Do(func() { close(g.blocked) })
		<-g.gate
	case MsgAck:
		a, err := ParseAck(p)
		if err != nil {
			return err
		}
		g.acks.Store(a.Received)
	}
	return g.fakeConn.WritePacket(p)
}

// A write stuck on a full connection does not keep the reader from
// acknowledging what it received: were it to hold the ACK order lock
// through its own write, two peers stuck so at once would each wait for
// the other's ACK until the liveness check cut the link (as tlsresume,
// whose writes carry no ACK, could).
func TestStuckWriteDoesNotHoldAcks(t *testing.T) {
	reg := &Registry{Hold: time.Minute}
	var g *gatedData
	cs, ss, _ := pairWith(t, reg, "", func(c *fakeConn) Transport {
		g = &gatedData{fakeConn: c, blocked: make(chan struct{}), gate: make(chan struct{})}
		return g
	})
	cs.SetEarlyAck(0) // writes carry no ACK, as tlsresume's
	go drainSession(ss)
	wrote := make(chan error, 1)
	go func() { wrote <- cs.WritePacket(dataMsg(0, 100)) }()
	<-g.blocked
	// The peer sends enough for the client's reader to owe an ACK.
	readerDone := make(chan error, 1)
	go func() {
		for i := range AckEveryMessages {
			if _, err := cs.ReadPacket(); err != nil {
				readerDone <- fmt.Errorf("message %d: %w", i, err)
				return
			}
		}
		readerDone <- nil
	}()
	for i := range AckEveryMessages {
		ss.WritePacket(dataMsg(uint32(i), 1))
	}
	// The reader makes its ACK as it reads the last message; were it to
	// wait for the stuck write, it would not return.
	deadline := time.Now().Add(5 * time.Second)
	for g.acks.Load() < AckEveryMessages {
		if time.Now().After(deadline) {
			close(g.gate)
			t.Fatalf("no ACK of the %d messages read while a write was stuck (last ACK %d)", AckEveryMessages, g.acks.Load())
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-readerDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the reader did not return")
	}
	close(g.gate)
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
}

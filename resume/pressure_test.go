package resume

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/wire"
)

// Issue 14: resumption under pressure, at the session's level.

// fillUntilBlocked writes channel data to s from a goroutine until a
// write blocks for retention room; it returns when one has blocked (the
// writes go on once room comes) and a channel that reports the writer's
// end.
func fillUntilBlocked(t *testing.T, s *Session, n int) <-chan error {
	t.Helper()
	var written atomic.Int64
	done := make(chan error, 1)
	go func() {
		for i := range n {
			if err := s.WritePacket(dataMsg(uint32(i), 1000)); err != nil {
				done <- err
				return
			}
			written.Add(1)
		}
		done <- nil
	}()
	for last := int64(-1); ; {
		time.Sleep(50 * time.Millisecond)
		w := written.Load()
		if w == last && w < int64(n) {
			return done
		}
		if w == int64(n) {
			t.Fatal("no write waited for room")
		}
		last = w
	}
}

// TestResumeWithWriterWaitingForRoom: a writer waiting for retention room
// must not keep the session from resuming (it once waited holding the
// lock that the resend takes): the resumption completes, resends, and
// the writer finishes once the peer acknowledges.
func TestResumeWithWriterWaitingForRoom(t *testing.T) {
	reg := &Registry{Hold: time.Minute}
	cs, ss, c := pair(t, reg)
	cs.SetRetentionLimit(64 << 10)
	done := fillUntilBlocked(t, cs, 300)
	c.Cut()
	cs.Detach(errCut)
	resumed := make(chan error, 1)
	go func() {
		_, err := reconnect(t, reg, cs)
		resumed <- err
	}()
	select {
	case err := <-resumed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the resumption waited for the writer that waits for room")
	}
	go drainSession(ss)
	go drainSession(cs)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the writer never finished after the resumption")
	}
}

// TestRetentionCapHoldsWhileDetached: a session's writers keep writing
// after it detaches (handlers do not know), but what it retains stays
// within its limit: channel data waits for room instead.
func TestRetentionCapHoldsWhileDetached(t *testing.T) {
	reg := &Registry{Hold: time.Minute, MaxRetainedPerSession: 128 << 10}
	_, ss, _ := pair(t, reg)
	ss.Detach(errCut)
	fillUntilBlocked(t, ss, 1000)
	if h := ss.Stats().HeldBytes; h > 128<<10 {
		t.Fatalf("a detached session holds %d bytes; its limit is %d", h, 128<<10)
	}
	if u := reg.RetainedBudget().Used(); u != int64(ss.Stats().HeldBytes) {
		t.Fatalf("budget charged %d, session holds %d", u, ss.Stats().HeldBytes)
	}
}

// TestRetentionCountsMemoryHeld: a short message written into a buffer
// made for a long one (an SFTP reply to a large READ) is retained at its
// own size, and what is held is what the limit counts.
func TestRetentionCountsMemoryHeld(t *testing.T) {
	reg := &Registry{Hold: time.Minute}
	_, ss, _ := pair(t, reg)
	ss.Detach(errCut)
	for i := range 100 {
		buf := ss.PacketBuffer(32 << 10) // room for a full packet
		buf = append(buf, dataMsg(uint32(i), 20)...)
		if err := ss.WriteFrame(buf); err != nil {
			t.Fatal(err)
		}
	}
	st := ss.Stats()
	if st.HeldBytes > 2*(st.RetainedBytes+100*(wire.FrameHeadroom+wire.FrameTailroom)) {
		t.Fatalf("100 messages of 25 bytes hold %d bytes (%d counted)", st.HeldBytes, st.RetainedBytes)
	}
	if u := reg.RetainedBudget().Used(); u != int64(st.HeldBytes) {
		t.Fatalf("budget charged %d, session holds %d", u, st.HeldBytes)
	}
	ss.Close()
	if u := reg.RetainedBudget().Used(); u != 0 {
		t.Fatalf("a closed session still charges %d bytes", u)
	}
}

// disconnectConn records the reason of a DISCONNECT.
type disconnectConn struct {
	*fakeConn
	mu     sync.Mutex
	reason uint32
}

func (d *disconnectConn) Disconnect(reason uint32, msg string) error {
	d.mu.Lock()
	d.reason = reason
	d.mu.Unlock()
	return d.fakeConn.Close()
}

// TestBadAckIsProtocolError: an ACK beyond what was sent ends the session
// with DISCONNECT reason PROTOCOL_ERROR (section 2), not BY_APPLICATION.
func TestBadAckIsProtocolError(t *testing.T) {
	reg := &Registry{Hold: time.Minute}
	c, s := fakePair()
	dc := &disconnectConn{fakeConn: s}
	rk := make([]byte, 32)
	ss, err := reg.Enable(dc, rk)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadPacket(); err != nil { // RESUME_ENABLE
		t.Fatal(err)
	}
	c.WritePacket((&Ack{Received: 5}).Marshal()) // nothing was sent
	if _, err := ss.ReadPacket(); err == nil {
		t.Fatal("an ACK of messages never sent was accepted")
	}
	dc.mu.Lock()
	defer dc.mu.Unlock()
	if dc.reason != wire.DisconnectProtocolError {
		t.Fatalf("DISCONNECT reason %d, want %d (PROTOCOL_ERROR)", dc.reason, wire.DisconnectProtocolError)
	}
}

// TestAckPrecedesWindowAdjust: a WINDOW_ADJUST leaves after an ACK of
// everything received, so that the peer learns its data arrived before it
// may send more: what it retains stays within the windows we granted.
func TestAckPrecedesWindowAdjust(t *testing.T) {
	reg := &Registry{Hold: time.Minute}
	cs, ss, c := pair(t, reg)
	// The server receives two data messages (below the ACK thresholds).
	for i := range 2 {
		if err := cs.WritePacket(dataMsg(uint32(i), 100)); err != nil {
			t.Fatal(err)
		}
	}
	for range 2 {
		if _, err := ss.ReadPacket(); err != nil {
			t.Fatal(err)
		}
	}
	adjust := []byte{wire.MsgChannelWindowAdjust, 0, 0, 0, 0, 0, 0, 0, 200}
	if err := ss.WritePacket(adjust); err != nil {
		t.Fatal(err)
	}
	// The client's transport receives the ACK first, then the adjust.
	p, err := c.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	a, err := ParseAck(p)
	if err != nil || a.Received != 2 {
		t.Fatalf("first message %x (%v), want an ACK of 2", p, err)
	}
	if p, err := c.ReadPacket(); err != nil || p[0] != wire.MsgChannelWindowAdjust {
		t.Fatalf("second message %x (%v), want the WINDOW_ADJUST", p, err)
	}
}

// TestMalformedRequestIsProtocolError: a RESUME_REQUEST that does not
// parse is answered with DISCONNECT PROTOCOL_ERROR (section 2), like any
// malformed message; the connection carries no session, so it ends none.
func TestMalformedRequestIsProtocolError(t *testing.T) {
	reg := &Registry{Hold: time.Minute}
	_, s := fakePair()
	dc := &disconnectConn{fakeConn: s}
	if _, err := reg.Resume(dc, []byte{MsgRequest, 0, 0, 0, 1, 7}); err == nil {
		t.Fatal("a malformed RESUME_REQUEST was accepted")
	}
	dc.mu.Lock()
	defer dc.mu.Unlock()
	if dc.reason != wire.DisconnectProtocolError {
		t.Fatalf("DISCONNECT reason %d, want %d (PROTOCOL_ERROR)", dc.reason, wire.DisconnectProtocolError)
	}
}

// TestResumeRechecksOwner: a resumption re-checks the credential that
// authenticated the session (issue 14 item 7): once it is no longer
// authorized (a key removed from authorized_keys, or expired), the
// resumption is refused with SESSION_CLOSED and the session ends; the
// remote address of the new connection is what the check sees.
func TestResumeRechecksOwner(t *testing.T) {
	reg := &Registry{Hold: time.Minute}
	var revoked atomic.Bool
	c, s := fakePair()
	rk := make([]byte, 32)
	ss, err := reg.EnableOwned(s, rk, Owner{ID: "SHA256:key", Recheck: func(net.Addr) error {
		if revoked.Load() {
			return errors.New("key removed from authorized_keys")
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	cs, err := EnableClient(c, rk, p)
	if err != nil {
		t.Fatal(err)
	}
	// Still authorized: resumes.
	c.Cut()
	cs.Detach(errCut)
	if _, err := reconnect(t, reg, cs); err != nil {
		t.Fatalf("resumption with the key still authorized: %v", err)
	}
	// Revoked: refused, and the session is over.
	revoked.Store(true)
	cs.Detach(errCut)
	_, err = reconnect(t, reg, cs)
	var f *Failure
	if !errors.As(err, &f) || f.Reason != ReasonSessionClosed {
		t.Fatalf("resumption after the key was removed: %v, want SESSION_CLOSED", err)
	}
	select {
	case <-ss.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the server kept the session of a revoked key")
	}
}

package resume

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestCVE_2016_0777_ResendBeyondBuffer: OpenSSH's roaming code let the
// server name the offset of what the client resent, and so read memory
// beyond its buffer. Here every count from the peer is checked against
// what is really retained before anything is sent, on both sides.
func TestCVE_2016_0777_ResendBeyondBuffer(t *testing.T) {
	// The sans-I/O half: a resend from outside [acked, sent] is refused
	// and changes nothing.
	var s Sender
	for i := range 5 {
		if _, err := s.Record(dataMsg(uint32(i), 100)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Ack(2); err != nil {
		t.Fatal(err)
	}
	for _, from := range []uint64{0, 1, 6, 1 << 40, ^uint64(0)} {
		if msgs, err := s.Resend(from); err == nil {
			t.Fatalf("Resend(%d) gave %d messages; acked 2, sent 5", from, len(msgs))
		}
	}
	if s.Acked() != 2 || s.Sent() != 5 {
		t.Fatalf("refused resends changed the sender: acked %d sent %d", s.Acked(), s.Sent())
	}

	// The server: a client claiming to have received more than the
	// server sent is refused (COUNT_OUT_OF_RANGE) with nothing resent.
	reg := &Registry{Hold: time.Minute}
	cs, ss, conn := pair(t, reg)
	for i := range 3 {
		ss.WritePacket(dataMsg(uint32(i), 10))
	}
	for range 3 {
		if _, err := cs.ReadPacket(); err != nil {
			t.Fatal(err)
		}
	}
	conn.Cut()
	cs.Detach(errCut)
	ss.Detach(errCut)
	c, srv := fakePair()
	go func() {
		p, err := srv.ReadPacket()
		if err == nil {
			reg.Resume(srv, p)
		}
	}()
	req := &Request{Handle: cs.Handle(), Received: 4} // the server sent 3
	req.MAC = RequestMAC(cs.rk, c.h, req.Handle, req.Received)
	c.WritePacket(req.Marshal())
	p, err := c.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	f, err := ParseFailure(p)
	if err != nil || f.Reason != ReasonCountOutOfRange {
		t.Fatalf("answer %v %v, want COUNT_OUT_OF_RANGE", f, err)
	}
	if _, err := c.ReadPacket(); err == nil {
		t.Fatal("the server sent something after refusing")
	}

	// The client: a server (with the right key) claiming to have
	// received more than the client sent is refused, and the client's
	// session stays as it was.
	before := cs.Stats()
	c2, srv2 := fakePair()
	go func() {
		p, err := srv2.ReadPacket()
		if err != nil {
			return
		}
		r, _ := ParseRequest(p)
		acc := &Accept{Received: 99, HoldSeconds: 60, MAC: AcceptMAC(cs.rk, srv2.h, r.Handle, 99, r.Received)}
		srv2.WritePacket(acc.Marshal())
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = cs.Resume(ctx, c2)
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("client accepted or hung on an out-of-range count: %v", err)
	}
	if cs.Stats() != before || cs.State() != Detached {
		t.Fatalf("a refused answer changed the client's session: %+v vs %+v", cs.Stats(), before)
	}
}

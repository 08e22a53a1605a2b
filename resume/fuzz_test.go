package resume

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"testing"
	"time"
)

// fuzzConn is a Transport over a fixed list of incoming packets: it
// records what is written and has a fixed exchange hash. It is separate
// from session_test.go's fakeConn on purpose, so that the fuzz targets
// do not change meaning when those helpers do.
type fuzzConn struct {
	mu     sync.Mutex
	id     []byte
	in     [][]byte // delivered in order, then endOfStream
	next   int      // index of the next packet of in
	out    [][]byte // written
	closed bool
}

func newFuzzConn(id []byte, in ...[]byte) *fuzzConn { return &fuzzConn{id: id, in: in} }

// endOfStream is what a fuzzConn reads after its last packet (and once
// closed). It is io.EOF, but ends the session the way a DISCONNECT does:
// on a plain lost link the session would detach, and ReadPacket would
// wait for a resumption that never comes.
type endOfStream struct{}

func (endOfStream) Error() string      { return "fuzzConn: end of packets" }
func (endOfStream) Unwrap() error      { return io.EOF }
func (endOfStream) SessionEnded() bool { return true }

func (c *fuzzConn) ReadPacket() ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.next >= len(c.in) {
		return nil, endOfStream{}
	}
	p := c.in[c.next]
	c.next++
	return bytes.Clone(p), nil
}

func (c *fuzzConn) WritePacket(p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.out = append(c.out, bytes.Clone(p))
	return nil
}

func (c *fuzzConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

func (c *fuzzConn) WritePacketBackground(p []byte) error { return c.WritePacket(p) }
func (c *fuzzConn) SealFrame(frame []byte) error         { return c.WritePacket(message(frame)) }
func (c *fuzzConn) RetainPacket() interface{ Release() } { return nil }

// Abort and Disconnect only close.
func (c *fuzzConn) Abort() error                    { return c.Close() }
func (c *fuzzConn) Disconnect(uint32, string) error { return c.Close() }

func (c *fuzzConn) SessionID() []byte { return c.id }

func (c *fuzzConn) written() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.out...)
}

func (c *fuzzConn) consumed() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.next
}

func (c *fuzzConn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

var (
	fuzzRK    = bytes.Repeat([]byte{0x3c}, 32) // the session's resume key
	fuzzOldID = bytes.Repeat([]byte{0x01}, 32) // the first connection's exchange hash
	fuzzNewID = bytes.Repeat([]byte{0x5a}, 32) // the new connection's
)

// fuzzData is counted data message i (CHANNEL_DATA, 94), of a length
// that depends on i.
func fuzzData(i uint64) []byte {
	p := []byte{94}
	p = binary.BigEndian.AppendUint64(p, i)
	return append(p, bytes.Repeat([]byte{byte(i)}, int(i%7))...)
}

// The session FuzzRegistryResume resumes has sent fuzzSent counted
// messages, of which the client acknowledged fuzzAcked, and received
// fuzzReceived: a client may claim any count in [fuzzAcked, fuzzSent].
const (
	fuzzSent     = 6
	fuzzAcked    = 2
	fuzzReceived = 3
)

// fuzzDetachedSession returns a registry holding one session that ran
// on a first connection (sending, receiving and being acknowledged) and
// then lost it.
func fuzzDetachedSession(t *testing.T) (*Registry, *Session) {
	t.Helper()
	reg := &Registry{Hold: time.Minute}
	in := [][]byte{fuzzData(100), (&Ack{Received: fuzzAcked}).Marshal(), fuzzData(101), fuzzData(102)}
	c := newFuzzConn(fuzzOldID, in...)
	s, err := reg.EnableFor(c, fuzzRK, "fuzz")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for i := range uint64(fuzzSent) {
		if err := s.WritePacket(fuzzData(i)); err != nil {
			t.Fatal(err)
		}
	}
	for range fuzzReceived { // the ACK is handled inside
		if _, err := s.ReadPacket(); err != nil {
			t.Fatal(err)
		}
	}
	s.Detach(errors.New("fuzz: connection lost"))
	if st := s.Stats(); st.Sent != fuzzSent || st.Acked != fuzzAcked || st.Received != fuzzReceived || s.State() != Detached {
		t.Fatalf("setup: %v session with %+v", s.State(), st)
	}
	return reg, s
}

// checkResume runs reg.Resume with payload p on a new connection and
// checks the outcome: success only for a request that authenticates for
// s with a count in range, followed by the right answer; failure leaves
// s exactly as it was and answers with one RESUME_FAILURE (nothing when p
// does not parse). It reports whether the resumption succeeded.
func checkResume(t *testing.T, reg *Registry, s *Session, p []byte) bool {
	t.Helper()
	before, beforeState := s.Stats(), s.State()
	nc := newFuzzConn(fuzzNewID)
	got, err := reg.Resume(nc, p)
	req, perr := ParseRequest(p)
	// The answer and the resend go out in the background, holding
	// writeMu until done.
	s.writeMu.Lock()
	s.writeMu.Unlock()
	out := nc.written()
	if err == nil {
		switch {
		case got != s:
			t.Fatalf("Resume returned session %p, want %p", got, s)
		case perr != nil:
			t.Fatalf("accepted a request that does not parse (%v)", perr)
		case !bytes.Equal(req.Handle, s.handle) || !VerifyRequest(fuzzRK, nc.SessionID(), req):
			t.Fatalf("accepted a request that does not authenticate: %x", p)
		case !CountInRange(req.Received, before.Acked, before.Sent):
			t.Fatalf("accepted count %d outside [%d, %d]", req.Received, before.Acked, before.Sent)
		case beforeState == Closed:
			t.Fatal("resumed a closed session")
		}
		// RESUME_ACCEPT, then what the client lacks, in order (an idle
		// ACK may follow).
		n := int(before.Sent - req.Received)
		if len(out) < 1+n {
			t.Fatalf("%d messages written on success, want at least %d", len(out), 1+n)
		}
		acc, aerr := ParseAccept(out[0])
		if aerr != nil || acc.Received != before.Received || !VerifyAccept(fuzzRK, fuzzNewID, s.handle, acc, req.Received) {
			t.Fatalf("bad RESUME_ACCEPT %x (%v)", out[0], aerr)
		}
		for i, m := range out[1 : 1+n] {
			if want := fuzzData(req.Received + uint64(i)); !bytes.Equal(m, want) {
				t.Fatalf("resent message %d is %x, want %x", i, m, want)
			}
		}
		for _, m := range out[1+n:] {
			if _, err := ParseAck(m); err != nil {
				t.Fatalf("unexpected message %x after the resend", m)
			}
		}
		st := s.Stats()
		if s.State() != Attached || st.Attaches != before.Attaches+1 || st.Sent != before.Sent ||
			st.Acked != req.Received || st.Received != before.Received || st.ResentMessages != before.ResentMessages+uint64(n) {
			t.Fatalf("after resuming from %d: %v session with %+v (before %+v)", req.Received, s.State(), st, before)
		}
		return true
	}
	if got != nil {
		t.Fatalf("Resume failed (%v) but returned a session", err)
	}
	if st, state := s.Stats(), s.State(); st != before || state != beforeState {
		t.Fatalf("refused request (%v) changed the session: %v %+v, was %v %+v", err, state, st, beforeState, before)
	}
	if !nc.isClosed() {
		t.Fatalf("refused request (%v) left the new connection open", err)
	}
	if perr != nil {
		if len(out) != 0 {
			t.Fatalf("answered %d messages to a payload that does not parse (%v)", len(out), perr)
		}
		return false
	}
	if len(out) != 1 {
		t.Fatalf("refused request (%v): %d messages written, want one RESUME_FAILURE", err, len(out))
	}
	fl, ferr := ParseFailure(out[0])
	if ferr != nil {
		t.Fatalf("refusal %x does not parse: %v", out[0], ferr)
	}
	var ef *Failure
	if !errors.As(err, &ef) || ef.Reason != fl.Reason {
		t.Fatalf("Resume returned %v but sent reason %d", err, fl.Reason)
	}
	return false
}

// FuzzRegistryResume feeds the server's Resume a RESUME_REQUEST payload
// in three forms: data as it is; a genuine request for the session
// claiming count received, with the byte at flip%len XORed with flip
// (unless flip is 0); and the latter against a closed session.
func FuzzRegistryResume(f *testing.F) {
	h := bytes.Repeat([]byte{0x11}, HandleLen)
	req := func(received uint64) []byte {
		return (&Request{Handle: h, Received: received, MAC: RequestMAC(fuzzRK, fuzzNewID, h, received)}).Marshal()
	}
	valid := req(4)
	reqLen := byte(len(valid))
	f.Add(valid, uint64(4), byte(0))                                       // valid
	f.Add(valid[:len(valid)-1], uint64(fuzzAcked), byte(0))                // truncated; lowest count
	f.Add([]byte{}, uint64(fuzzSent), byte(0))                             // empty; highest count
	f.Add(req(1), uint64(4), reqLen-1)                                     // wrong MAC (last byte)
	f.Add(req(7), uint64(fuzzAcked-1), byte(0))                            // below what was acknowledged
	f.Add(req(1<<63), uint64(fuzzSent+1), byte(0))                         // beyond what was sent
	f.Add([]byte{MsgRequest, 0xff, 0xff, 0xff, 0xff}, ^uint64(0), byte(1)) // huge lengths
	f.Add(append(valid, 0), uint64(5), byte(5))                            // trailing byte; other handle
	f.Add([]byte{MsgAck, 0, 0, 0, 0, 0, 0, 0, 1}, uint64(3), reqLen)       // not a request; type byte
	f.Add(valid, uint64(3), byte(37))                                      // count changed after MAC
	f.Fuzz(func(t *testing.T, data []byte, received uint64, flip byte) {
		reg, s := fuzzDetachedSession(t)
		checkResume(t, reg, s, data)

		mutated := func(s *Session) []byte {
			p := (&Request{Handle: s.Handle(), Received: received, MAC: RequestMAC(fuzzRK, fuzzNewID, s.Handle(), received)}).Marshal()
			if flip != 0 {
				p[int(flip)%len(p)] ^= flip
			}
			return p
		}
		reg, s = fuzzDetachedSession(t)
		ok := checkResume(t, reg, s, mutated(s))
		// Any change to a genuine request must be refused, and the
		// genuine request accepted exactly when its count is in range.
		if want := flip == 0 && CountInRange(received, fuzzAcked, fuzzSent); ok != want {
			t.Fatalf("request for count %d flipped at %d: resumed %v, want %v", received, flip, ok, want)
		}

		reg, s = fuzzDetachedSession(t)
		s.Close()
		if checkResume(t, reg, s, mutated(s)) {
			t.Fatal("resumed a closed session")
		}
	})
}

// splitPackets cuts stream into packets: each is a length byte and that
// many bytes (fewer at the end). Empty packets are dropped: the transport
// refuses them, so a session never reads one.
func splitPackets(stream []byte) [][]byte {
	var pkts [][]byte
	for len(stream) > 0 {
		n := min(int(stream[0]), len(stream)-1)
		p := stream[1 : 1+n]
		stream = stream[1+n:]
		if n > 0 {
			pkts = append(pkts, p)
		}
	}
	return pkts
}

// fuzzStream builds a FuzzSessionReadPacket input: the number of
// counted messages the session sent first, then the packets.
func fuzzStream(sent byte, pkts ...[]byte) []byte {
	b := []byte{sent}
	for _, p := range pkts {
		b = append(b, byte(len(p)))
		b = append(b, p...)
	}
	return b
}

// FuzzSessionReadPacket feeds an attached server session the packets of
// stream (after its first byte, which says how many counted messages, 0
// to 15, the session sent before) and reads until an error. A model says
// what must happen: an ACK moves the acknowledged count if it lies in
// [acked, sent] and ends the session otherwise (or when malformed); any
// other message of the resume layer ends it; everything else is
// returned, in order, and the counted ones (80..127) counted.
func FuzzSessionReadPacket(f *testing.F) {
	ack := func(n uint64) []byte { return (&Ack{Received: n}).Marshal() }
	f.Add([]byte{})
	f.Add(fuzzStream(5, fuzzData(0), ack(2), fuzzData(1), ack(5), []byte{2, 'x'}, fuzzData(2)))
	f.Add(fuzzStream(5, ack(6)))                                  // beyond what was sent
	f.Add(fuzzStream(5, ack(3), ack(1)))                          // backwards
	f.Add(fuzzStream(5, ack(^uint64(0))))                         // huge count
	f.Add(fuzzStream(5, ack(3)[:5], fuzzData(9)))                 // truncated ACK
	f.Add(fuzzStream(5, append(ack(3), 0)))                       // ACK with a trailing byte
	f.Add(fuzzStream(0, fuzzData(0), ack(0), ack(1)))             // nothing sent: only 0 acknowledges
	f.Add(fuzzStream(3, fuzzData(0), (&Request{}).Marshal()))     // a RESUME_REQUEST mid-session
	f.Add(fuzzStream(3, []byte{MsgEnable}, fuzzData(0)))          // RESUME_ENABLE
	f.Add(fuzzStream(3, []byte{79}, []byte{128}, []byte{199}))    // uncounted, just outside the range
	f.Add(fuzzStream(3, []byte{80}, []byte{127}, []byte{205}))    // counted at both ends; past the layer
	f.Add(append(fuzzStream(1, fuzzData(3)), 0xff, 94, 0, 0))     // huge length, cut short
	f.Add(fuzzStream(2, []byte{}, []byte{}, fuzzData(1), ack(1))) // empty packets are dropped
	var many [][]byte
	for range 300 { // past the ACK-every-256-messages rule
		many = append(many, []byte{94})
	}
	f.Add(fuzzStream(4, append(many, ack(4))...))
	f.Fuzz(func(t *testing.T, stream []byte) {
		var sent uint64
		if len(stream) > 0 {
			sent, stream = uint64(stream[0]%16), stream[1:]
		}
		pkts := splitPackets(stream)
		c := newFuzzConn(fuzzOldID, pkts...)
		s, err := EnableServer(c, fuzzRK, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		for i := range sent {
			if err := s.WritePacket(fuzzData(i)); err != nil {
				t.Fatal(err)
			}
		}

		// The model.
		var want [][]byte
		acked, counted, bad := uint64(0), uint64(0), -1
	model:
		for i, p := range pkts {
			switch {
			case p[0] == MsgAck:
				a, err := ParseAck(p)
				if err != nil || !CountInRange(a.Received, acked, sent) {
					bad = i
					break model
				}
				acked = a.Received
			case IsResumeMessage(p[0]):
				bad = i
				break model
			default:
				want = append(want, p)
				if Counted(p[0]) {
					counted++
				}
			}
		}

		var got [][]byte
		for {
			p, err := s.ReadPacket()
			if err != nil {
				if eos := errors.Is(err, io.EOF); eos != (bad < 0) {
					t.Fatalf("ReadPacket ended with %v; packet %d should end the session (-1: none)", err, bad)
				}
				break
			}
			got = append(got, p)
			if len(got) > len(want) {
				t.Fatalf("ReadPacket returned %d messages; the model returns %d", len(got), len(want))
			}
		}
		if len(got) != len(want) {
			t.Fatalf("ReadPacket returned %d messages; the model returns %d", len(got), len(want))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("message %d is %x, want %x", i, got[i], want[i])
			}
		}
		if s.State() != Closed {
			t.Fatalf("session %v after the read error", s.State())
		}
		if bad >= 0 && c.consumed() != bad+1 {
			t.Fatalf("read %d packets; the session should have ended at packet %d", c.consumed(), bad)
		}
		// A closed session lets go of what it retained.
		retained := 0
		st := s.Stats()
		if st.Sent != sent || st.Acked != acked || st.Received != counted || st.RetainedBytes != retained {
			t.Fatalf("stats %+v; want sent %d, acked %d, received %d, retaining %d bytes", st, sent, acked, counted, retained)
		}

		// What the session wrote: RESUME_ENABLE, its messages, then only
		// ACKs, increasing and not past what arrived, at least one per
		// 256 counted messages.
		out := c.written()
		if len(out) < 1+int(sent) {
			t.Fatalf("%d messages written, want at least %d", len(out), 1+sent)
		}
		if _, err := ParseEnable(out[0]); err != nil {
			t.Fatalf("first message written: %v", err)
		}
		last := uint64(0)
		for _, m := range out[1+sent:] {
			a, err := ParseAck(m)
			if err != nil {
				t.Fatalf("session wrote %x: not an ACK", m)
			}
			if a.Received <= last || a.Received > counted {
				t.Fatalf("session acknowledged %d after %d, having received %d", a.Received, last, counted)
			}
			last = a.Received
		}
		if acks := uint64(len(out) - 1 - int(sent)); acks < counted/AckEveryMessages || acks != st.AcksSent {
			t.Fatalf("%d ACKs written (stats say %d) for %d counted messages", acks, st.AcksSent, counted)
		}
	})
}

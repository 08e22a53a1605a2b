package resume

import (
	"errors"
	"fmt"
	"sync"
)

// Counted reports whether a message is counted, retained and resent:
// the connection protocol's messages, numbers 80 to 127.
func Counted(msg byte) bool { return msg >= 80 && msg <= 127 }

// Defaults of the acknowledgement policy and retention (section 4 of the
// specification).
const (
	AckEveryBytes    = 256 << 10
	AckEveryMessages = 256
	DefaultRetention = 64 << 20
)

// ErrRetentionFull says the peer has not acknowledged enough to send more.
var ErrRetentionFull = errors.New("resume: retention limit reached; waiting for the peer's ACK")

// Sender is one side's outgoing half of a session: the counted messages
// it sent, numbered from 0 across all connections, kept until the peer
// acknowledges them. It does no I/O and no locking.
type Sender struct {
	acked uint64   // the peer acknowledged every message numbered below
	buf   [][]byte // messages numbered acked .. acked+len(buf)-1
	bytes int      // payload bytes in buf
	// Limit bounds the retained bytes (DefaultRetention if zero).
	Limit int
}

// Sent is the number of counted messages sent so far.
func (s *Sender) Sent() uint64 { return s.acked + uint64(len(s.buf)) }

// Acked is the count the peer last acknowledged.
func (s *Sender) Acked() uint64 { return s.acked }

// Retained is the number of unacknowledged messages and their bytes.
func (s *Sender) Retained() (messages int, bytes int) { return len(s.buf), s.bytes }

func (s *Sender) limit() int {
	if s.Limit > 0 {
		return s.Limit
	}
	return DefaultRetention
}

// Full reports whether retaining one more message of n bytes would pass
// the limit (an empty buffer always takes one message).
func (s *Sender) Full(n int) bool { return len(s.buf) > 0 && s.bytes+n > s.limit() }

// Record retains a copy of a counted message being sent and returns its
// number.
func (s *Sender) Record(p []byte) (uint64, error) {
	if len(p) == 0 || !Counted(p[0]) {
		return 0, fmt.Errorf("resume: message %v is not counted", firstByte(p))
	}
	if s.Full(len(p)) {
		return 0, ErrRetentionFull
	}
	n := s.Sent()
	s.buf = append(s.buf, append(s.Buffer(len(p)), p...))
	s.bytes += len(p)
	return n, nil
}

// Retained messages of channel-data size live in pooled buffers of
// poolBufSize bytes (the largest channel data packet we send, 32 KiB, with
// its header and slack): a bulk transfer then retains without allocating
// at each message, and since sync.Pool drops what stays unused, an idle
// session holds no spare memory.
const (
	minReuse    = 4 << 10
	poolBufSize = 32<<10 + 64
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, poolBufSize); return &b }}

// RecordOwned is Record without the copy: the Sender takes ownership of p
// (from Buffer, or any slice the caller will not touch again).
func (s *Sender) RecordOwned(p []byte) (uint64, error) {
	if len(p) == 0 || !Counted(p[0]) {
		return 0, fmt.Errorf("resume: message %v is not counted", firstByte(p))
	}
	if s.Full(len(p)) {
		return 0, ErrRetentionFull
	}
	n := s.Sent()
	s.buf = append(s.buf, p)
	s.bytes += len(p)
	return n, nil
}

// Buffer returns an empty buffer of capacity at least n for a message
// that will be recorded with RecordOwned (pooled for channel-data sizes).
func (s *Sender) Buffer(n int) []byte {
	if n < minReuse || n > poolBufSize {
		return make([]byte, 0, n)
	}
	return (*bufPool.Get().(*[]byte))[:0]
}

func firstByte(p []byte) any {
	if len(p) == 0 {
		return "(empty)"
	}
	return p[0]
}

// Ack applies the peer's acknowledgement of every message numbered below
// n. It may not go backwards or past what was sent.
func (s *Sender) Ack(n uint64) error {
	if !CountInRange(n, s.acked, s.Sent()) {
		return fmt.Errorf("resume: peer acknowledged %d messages; %d were acknowledged and %d sent", n, s.acked, s.Sent())
	}
	drop := int(n - s.acked)
	for i := range drop {
		b := s.buf[i]
		s.bytes -= len(b)
		s.buf[i] = nil
		if cap(b) == poolBufSize {
			b = b[:0]
			bufPool.Put(&b)
		}
	}
	s.buf = s.buf[drop:]
	s.acked = n
	if len(s.buf) == 0 {
		s.buf = nil // let the backing array go
	}
	return nil
}

// Resend acknowledges everything below from (the count the peer says it
// received) and returns the messages from there on, in order, for
// resending (the caller must not modify them). They stay retained until
// acknowledged again. The caller must be done with them before the next
// Record, which may reuse the buffers of messages acknowledged meanwhile.
// A count outside what is retained is refused and changes nothing.
func (s *Sender) Resend(from uint64) ([][]byte, error) {
	if !CountInRange(from, s.acked, s.Sent()) {
		return nil, fmt.Errorf("resume: peer received %d messages, but %d were acknowledged and %d sent", from, s.acked, s.Sent())
	}
	if err := s.Ack(from); err != nil {
		return nil, err
	}
	return s.buf, nil
}

// Receiver is one side's incoming half: how many counted messages it has
// received and when to acknowledge them.
type Receiver struct {
	received    uint64
	ackedUpTo   uint64 // the count in our last ACK
	unackedSize int
}

// Received is the number of counted messages received.
func (r *Receiver) Received() uint64 { return r.received }

// Count records a received counted message of n bytes and reports
// whether an ACK is due now by the byte or message rule.
func (r *Receiver) Count(n int) (ackNow bool) {
	r.received++
	r.unackedSize += n
	return r.unackedSize >= AckEveryBytes || r.received-r.ackedUpTo >= AckEveryMessages
}

// Pending reports whether anything received is not yet acknowledged (the
// idle rule sends an ACK for it after a second).
func (r *Receiver) Pending() bool { return r.received != r.ackedUpTo }

// MakeAck returns the ACK to send now and resets the policy counters.
func (r *Receiver) MakeAck() *Ack {
	r.ackedUpTo = r.received
	r.unackedSize = 0
	return &Ack{Received: r.received}
}

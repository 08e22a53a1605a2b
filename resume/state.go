package resume

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/rsftp/rsftp/internal/wire"
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
	acked uint64 // the peer acknowledged every message numbered below
	// buf holds messages numbered acked .. acked+buf.len()-1, each
	// framed (see Buffer): the message is at [wire.FrameHeadroom:].
	buf   frames
	bytes int // message bytes in buf
	held  int // memory the buffers in buf occupy (their capacities)
	// dropped counts the messages discard let go unacknowledged.
	dropped uint64
	// boxes are the pool's pointers to slices, kept from Buffer's Get
	// for putBuf's Put: a pooled buffer then goes back without the
	// allocation of a new pointer (one per message acknowledged; at most
	// maxBoxes are kept).
	boxes []*[]byte
	// Limit bounds the memory retained messages occupy (DefaultRetention
	// if zero): Record refuses past it, and the Session admits channel
	// data only while it is not reached. Other messages may pass it by
	// ControlAllowance.
	Limit int
}

// ControlAllowance is how far messages other than channel data may take
// a Sender past its Limit: they answer or follow what the peer sent and
// cannot wait for room (a reader that waited could not read the ACK that
// makes room). Beyond it the peer is not acknowledging what it received.
const ControlAllowance = 1 << 20

// Sent is the number of counted messages sent so far.
func (s *Sender) Sent() uint64 { return s.acked + uint64(s.buf.len()) + s.dropped }

// Acked is the count the peer last acknowledged.
func (s *Sender) Acked() uint64 { return s.acked }

// Retained is the number of unacknowledged messages and their bytes.
func (s *Sender) Retained() (messages int, bytes int) { return s.buf.len(), s.bytes }

// Held is the memory the retained messages occupy: what the limit and
// budgets count.
func (s *Sender) Held() int { return s.held }

func (s *Sender) limit() int {
	if s.Limit > 0 {
		return s.Limit
	}
	return DefaultRetention
}

// Full reports whether retaining one more message of n bytes would pass
// the limit (an empty buffer always takes one message). n is counted at
// the size its retained copy occupies (HeldSize).
func (s *Sender) Full(n int) bool { return s.buf.len() > 0 && s.held+HeldSize(n) > s.limit() }

// Overflowing reports whether the retained messages exceed the limit by
// more than ControlAllowance.
func (s *Sender) Overflowing() bool { return s.held > s.limit()+ControlAllowance }

// HeldSize is the memory a retained message of n bytes occupies.
func HeldSize(n int) int {
	need := wire.FrameHeadroom + n + wire.FrameTailroom
	if i, ok := poolClass(need); ok {
		return poolSize(i)
	}
	return allocSize(need)
}

// allocSize is the capacity to ask for a buffer of n bytes: the memory it
// then occupies. The Go runtime gives an allocation above 32 KiB whole 8
// KiB pages (a 32 KiB data packet's frame of 32,814 bytes takes 40 KiB),
// and a smaller one the least of its size classes that holds it.
func allocSize(n int) int {
	if n > maxSmallAlloc {
		return (n + allocPage - 1) &^ (allocPage - 1)
	}
	i, _ := slices.BinarySearch(sizeClasses, n)
	return sizeClasses[i]
}

const (
	maxSmallAlloc = 32 << 10
	allocPage     = 8 << 10
)

// sizeClasses are the capacities the runtime gives byte slices of up to
// maxSmallAlloc bytes, in increasing order, found by asking it: growing an
// empty slice rounds the capacity up to the allocation's.
var sizeClasses = func() []int {
	var c []int
	for n := 1; n <= maxSmallAlloc; n = c[len(c)-1] + 1 {
		c = append(c, cap(slices.Grow([]byte(nil), n)))
	}
	return c
}()

// poolClass returns the pool (an index of pools) that buffers of need
// bytes come from, and false for sizes that are allocated instead. Class
// 0 holds poolBufSize buffers, for needs of half that and more, so that
// what a message holds is at most twice its size; classes 1 and up hold
// the page multiples above it, up to maxPooled, each buffer exactly the
// capacity an allocation of that need would have (allocSize), so that a
// pooled large frame occupies and is counted as the same memory as an
// allocated one.
func poolClass(need int) (int, bool) {
	switch {
	case need < poolBufSize/2 || need > maxPooled:
		return 0, false
	case need <= poolBufSize:
		return 0, true
	}
	return (allocSize(need) - poolBufSize) / allocPage, true
}

// poolSize is the capacity of class i's buffers.
func poolSize(i int) int { return poolBufSize + i*allocPage }

// classOf returns the pool a buffer of capacity c goes back to, and false
// for capacities no pool hands out.
func classOf(c int) (int, bool) {
	if c < poolBufSize || c > maxPooled || (c-poolBufSize)%allocPage != 0 {
		return 0, false
	}
	return (c - poolBufSize) / allocPage, true
}

// Record retains a copy of a counted message being sent and returns its
// number.
func (s *Sender) Record(p []byte) (uint64, error) {
	n, _, err := s.recordCopy(p)
	return n, err
}

// recordCopy is Record that also returns the framed copy it retained.
func (s *Sender) recordCopy(p []byte) (uint64, []byte, error) {
	return s.recordCopyIf(p, false)
}

// recordCopyIf is recordCopy; with force it retains p even past the
// limit.
func (s *Sender) recordCopyIf(p []byte, force bool) (uint64, []byte, error) {
	if err := s.admit(p, force); err != nil {
		return 0, nil, err
	}
	frame := append(s.Buffer(len(p)), p...)
	n, frame := s.retain(frame)
	return n, frame, nil
}

// admit checks that message p may be retained now (with force, only that
// it is a counted message).
func (s *Sender) admit(p []byte, force bool) error {
	if len(p) == 0 || !Counted(p[0]) {
		return fmt.Errorf("resume: message %v is not counted", firstByte(p))
	}
	if !force && s.Full(len(p)) {
		return ErrRetentionFull
	}
	return nil
}

// retain queues an admitted framed message and returns its number and
// the buffer it is kept in: a message that fills only a small part of a
// large buffer (a short reply written into room made for a long one) is
// moved to a buffer of its size, so that it does not hold the large one
// until acknowledged.
func (s *Sender) retain(frame []byte) (uint64, []byte) {
	if need := len(frame) + wire.FrameTailroom; cap(frame) > 2*need && cap(frame)-need >= minReuse {
		small := append(s.getBuf(len(frame)+wire.FrameTailroom), frame...)
		s.putBuf(frame)
		frame = small
	}
	n := s.Sent()
	s.buf.push(frame)
	s.bytes += len(message(frame))
	s.held += cap(frame)
	return n, frame
}

// putBuf returns a pooled buffer to its pool.
func (s *Sender) putBuf(b []byte) {
	i, ok := classOf(cap(b))
	if !ok {
		return
	}
	var box *[]byte
	if k := len(s.boxes); k > 0 {
		box = s.boxes[k-1]
		s.boxes[k-1] = nil
		s.boxes = s.boxes[:k-1]
	} else {
		box = new([]byte)
	}
	*box = b[:0]
	pools[i].Put(box)
}

// maxBoxes bounds Sender.boxes: a steady transfer takes one and gives one
// back per message, so the count stays near where it started.
const maxBoxes = 64

// message returns the message in a framed buffer.
func message(frame []byte) []byte { return frame[wire.FrameHeadroom:] }

// Retained messages of channel-data size live in pooled buffers: a bulk
// transfer then retains without allocating at each message, and since
// sync.Pool drops what stays unused, an idle session holds no spare
// memory. The largest channel data packet we send by default, 32 KiB,
// with its header and the frame's head and tail room, needs 32,814 bytes,
// which the runtime allocates as 40 KiB (allocSize): the first pool's
// buffers are that size, so that the limit and the budgets count the
// memory held (they counted 32,832 bytes of every 40 KiB until issue 17's
// measurements of rsftp serve's memory). Larger packets (up to the
// transport's largest payload: the helper's inner connection sends data
// packets of 255 KiB, issue 19) have a pool for each whole number of
// pages from 48 KiB to maxPooled, so that a steady stream of them reuses
// its buffers instead of allocating, zeroing and collecting one per
// packet; each is counted as before, at its allocation's size.
const (
	minReuse    = 4 << 10
	poolBufSize = 40 << 10
	maxPooled   = 256 << 10
)

// pools holds poolBufSize buffers in pools[0] and those of poolSize(i)
// bytes in pools[i].
var pools [1 + (maxPooled-poolBufSize)/allocPage]sync.Pool

func init() {
	for i := range pools {
		size := poolSize(i)
		pools[i].New = func() any { b := make([]byte, 0, size); return &b }
	}
}

// RecordOwned is Record without the copy: the Sender takes ownership of
// frame, a buffer from Buffer with the message appended to it, which the
// caller must not touch again.
func (s *Sender) RecordOwned(frame []byte) (uint64, error) {
	n, _, err := s.recordOwnedIf(frame, false)
	return n, err
}

// recordOwnedIf is RecordOwned that also returns the buffer the message
// is kept in (which may not be frame); with force it retains past the
// limit.
func (s *Sender) recordOwnedIf(frame []byte, force bool) (uint64, []byte, error) {
	if len(frame) < wire.FrameHeadroom {
		return 0, nil, errors.New("resume: RecordOwned needs a buffer from Buffer")
	}
	if err := s.admit(message(frame), force); err != nil {
		return 0, nil, err
	}
	n, kept := s.retain(frame)
	return n, kept, nil
}

// Buffer returns a buffer for a message of up to n bytes that will be
// recorded with RecordOwned (pooled for frames of 20 to 256 KiB). Its length
// is wire.FrameHeadroom: the message is appended after those bytes, and
// wire.FrameTailroom bytes of capacity are left after it, so that the
// transport can seal it where it lies.
func (s *Sender) Buffer(n int) []byte {
	return s.getBuf(wire.FrameHeadroom + n + wire.FrameTailroom)[:wire.FrameHeadroom]
}

// getBuf returns an empty buffer whose capacity, at least need, is what
// HeldSize counts: from its pool for the sizes poolClass takes.
func (s *Sender) getBuf(need int) []byte {
	i, ok := poolClass(need)
	if !ok {
		return make([]byte, 0, allocSize(need))
	}
	box := pools[i].Get().(*[]byte)
	b := (*box)[:0]
	if len(s.boxes) < maxBoxes {
		*box = nil
		s.boxes = append(s.boxes, box)
	}
	return b
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
	if drop > s.buf.len() {
		return fmt.Errorf("resume: peer acknowledged %d messages; the session no longer holds them", n)
	}
	for range drop {
		b := s.buf.pop()
		s.bytes -= len(b) - wire.FrameHeadroom
		s.held -= cap(b)
		s.putBuf(b)
	}
	s.acked = n
	return nil
}

// Resend acknowledges everything below from (the count the peer says it
// received) and returns the messages from there on, in order, for
// resending (the caller must not modify them). They stay retained until
// acknowledged again. The caller must be done with them before the next
// Record, which may reuse the buffers of messages acknowledged meanwhile.
// A count outside what is retained is refused and changes nothing.
func (s *Sender) Resend(from uint64) ([][]byte, error) {
	frames, err := s.resendFramed(from)
	if err != nil {
		return nil, err
	}
	msgs := make([][]byte, len(frames))
	for i, f := range frames {
		msgs[i] = message(f)
	}
	return msgs, nil
}

// resendFramed is Resend returning the framed buffers (the Session seals
// them in place, as it did the first time).
func (s *Sender) resendFramed(from uint64) ([][]byte, error) {
	if !CountInRange(from, s.acked, s.Sent()) {
		return nil, fmt.Errorf("resume: peer received %d messages, but %d were acknowledged and %d sent", from, s.acked, s.Sent())
	}
	if err := s.Ack(from); err != nil {
		return nil, err
	}
	return s.buf.appendTo(nil), nil
}

// frames is a queue of retained messages: a ring that doubles when full,
// so that a steady transfer retains and releases without allocating.
type frames struct {
	ring    [][]byte
	head, n int
}

func (q *frames) len() int { return q.n }

func (q *frames) push(b []byte) {
	if q.n == len(q.ring) {
		bigger := make([][]byte, max(16, 2*len(q.ring)))
		q.appendTo(bigger[:0])
		q.ring, q.head = bigger, 0
	}
	q.ring[(q.head+q.n)%len(q.ring)] = b
	q.n++
}

// pop removes and returns the oldest message; the queue must not be
// empty. An emptied queue lets a large ring go.
func (q *frames) pop() []byte {
	b := q.ring[q.head]
	q.ring[q.head] = nil
	q.head = (q.head + 1) % len(q.ring)
	q.n--
	if q.n == 0 {
		q.head = 0
		if len(q.ring) > 1024 {
			q.ring = nil
		}
	}
	return b
}

// appendTo appends the messages, oldest first, to dst.
func (q *frames) appendTo(dst [][]byte) [][]byte {
	first := min(q.n, len(q.ring)-q.head)
	dst = append(dst, q.ring[q.head:q.head+first]...)
	return append(dst, q.ring[:q.n-first]...)
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

// Unacked is the payload received and not yet acknowledged, in bytes.
func (r *Receiver) Unacked() int { return r.unackedSize }

// Pending reports whether anything received is not yet acknowledged (the
// idle rule sends an ACK for it after a second).
func (r *Receiver) Pending() bool { return r.received != r.ackedUpTo }

// MakeAck returns the ACK to send now and resets the policy counters.
func (r *Receiver) MakeAck() *Ack {
	r.ackedUpTo = r.received
	r.unackedSize = 0
	return &Ack{Received: r.received}
}

// discard forgets every retained message without returning buffers to
// the pool (a write may still be using them): the session is over.
func (s *Sender) discard() {
	s.dropped += uint64(s.buf.len())
	s.buf = frames{}
	s.bytes, s.held = 0, 0
}

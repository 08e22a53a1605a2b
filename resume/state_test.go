package resume

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/rsftp/rsftp/internal/wire"
)

func msg(i int) []byte { return []byte{94, byte(i), byte(i >> 8), 0xaa} }

func TestSenderRetainsUntilAcked(t *testing.T) {
	var s Sender
	for i := range 10 {
		n, err := s.Record(msg(i))
		if err != nil || n != uint64(i) {
			t.Fatalf("Record %d: %d %v", i, n, err)
		}
	}
	if err := s.Ack(4); err != nil {
		t.Fatal(err)
	}
	if m, b := s.Retained(); m != 6 || b != 24 || s.Acked() != 4 || s.Sent() != 10 {
		t.Fatalf("after ack 4: %d messages, %d bytes, acked %d, sent %d", m, b, s.Acked(), s.Sent())
	}
	// Out of range: backwards, or beyond what was sent; nothing changes.
	for _, n := range []uint64{3, 11, 1<<64 - 1} {
		if err := s.Ack(n); err == nil {
			t.Fatalf("Ack(%d) accepted", n)
		}
		if _, err := s.Resend(n); err == nil {
			t.Fatalf("Resend(%d) accepted", n)
		}
	}
	if s.Acked() != 4 || s.Sent() != 10 {
		t.Fatal("a refused count changed the state")
	}
	// The peer got 7: resend 7, 8, 9 exactly, and keep them.
	r, err := s.Resend(7)
	if err != nil || len(r) != 3 || !bytes.Equal(r[0], msg(7)) || !bytes.Equal(r[2], msg(9)) {
		t.Fatalf("Resend(7): %d messages, %v", len(r), err)
	}
	r2, _ := s.Resend(7)
	if len(r2) != 3 {
		t.Fatal("resending dropped what it resent")
	}
	if err := s.Ack(10); err != nil {
		t.Fatal(err)
	}
	if m, b := s.Retained(); m != 0 || b != 0 {
		t.Fatalf("all acked, %d messages and %d bytes retained", m, b)
	}
	if r, err := s.Resend(10); err != nil || len(r) != 0 {
		t.Fatalf("Resend at the end: %d, %v", len(r), err)
	}
}

func TestSenderRetentionLimitAndCopies(t *testing.T) {
	s := Sender{Limit: 10}
	p := msg(1)
	if _, err := s.Record(p); err != nil {
		t.Fatal(err)
	}
	p[1] = 0xff // the caller reuses its buffer
	if r, _ := s.Resend(0); r[0][1] != 1 {
		t.Fatal("Record kept the caller's buffer instead of a copy")
	}
	s.Record(msg(2))
	if _, err := s.Record(msg(3)); !errors.Is(err, ErrRetentionFull) {
		t.Fatalf("over the limit: %v", err)
	}
	s.Ack(1)
	if _, err := s.Record(msg(3)); err != nil {
		t.Fatalf("after an ACK: %v", err)
	}
	if _, err := s.Record([]byte{2, 0}); err == nil {
		t.Fatal("an uncounted message (IGNORE) was recorded")
	}
	if _, err := s.Record(nil); err == nil {
		t.Fatal("an empty message was recorded")
	}
}

func TestReceiverAckPolicy(t *testing.T) {
	var r Receiver
	// Small messages: an ACK every AckEveryMessages.
	acks := 0
	for range 3 * AckEveryMessages {
		if r.Count(10) {
			a := r.MakeAck()
			acks++
			if a.Received != r.Received() {
				t.Fatal("ACK does not carry the received count")
			}
		}
	}
	if acks != 3 || r.Pending() {
		t.Fatalf("%d ACKs for %d small messages, pending %v", acks, 3*AckEveryMessages, r.Pending())
	}
	// Bulk data: one ACK per AckEveryBytes, well under 0.1 % overhead
	// with ~40 wire bytes per ACK.
	var r2 Receiver
	acks = 0
	const pkt = 32 << 10
	total := 0
	for total < 1<<30 {
		total += pkt
		if r2.Count(pkt) {
			r2.MakeAck()
			acks++
		}
	}
	if overhead := float64(acks*40) / float64(total); overhead > 0.001 {
		t.Fatalf("ACK overhead %.4f%% over 1 GiB", overhead*100)
	}
	r2.Count(1)
	if !r2.Pending() {
		t.Fatal("a message after the last ACK is not pending")
	}
}

// The retained messages survive the ring's wrapping and growth: after any
// mix of sends and ACKs, Resend returns exactly the unacknowledged ones, in
// order, and Retained counts their bytes.
func TestSenderRingOrder(t *testing.T) {
	var s Sender
	var model [][]byte // unacknowledged messages, oldest first
	rng := rand.New(rand.NewPCG(1, 2))
	for step := range 5000 {
		for range rng.IntN(40) {
			m := []byte{94, byte(step), byte(step >> 8), byte(rng.IntN(256))}
			m = append(m, make([]byte, rng.IntN(5000))...)
			if _, err := s.Record(m); err != nil {
				t.Fatal(err)
			}
			model = append(model, m)
		}
		drop := rng.IntN(len(model) + 1)
		if err := s.Ack(s.Acked() + uint64(drop)); err != nil {
			t.Fatal(err)
		}
		model = model[drop:]
		if step%50 != 0 {
			continue
		}
		got, err := s.Resend(s.Acked())
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(model) {
			t.Fatalf("step %d: %d messages retained, want %d", step, len(got), len(model))
		}
		total := 0
		for i := range got {
			if !bytes.Equal(got[i], model[i]) {
				t.Fatalf("step %d: message %d differs", step, i)
			}
			total += len(model[i])
		}
		if m, b := s.Retained(); m != len(model) || b != total {
			t.Fatalf("step %d: Retained() = %d, %d; want %d, %d", step, m, b, len(model), total)
		}
	}
}

// TestHeldSizeIsMemory: what HeldSize counts for a retained message (the
// limit, the budgets) is the memory its buffer occupies, as the runtime
// allocates it. A 32 KiB data packet's frame of 32,814 bytes takes 40 KiB
// (an allocation above 32 KiB is whole 8 KiB pages); it was counted as
// 32,832 bytes.
func TestHeldSizeIsMemory(t *testing.T) {
	const k = 64
	keep := make([][]byte, k) // allocated before the count starts
	// allocated is the memory one buffer from alloc occupies, counted by
	// the runtime over k of them.
	allocated := func(alloc func() []byte) uint64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := range keep {
			keep[i] = alloc()
		}
		runtime.ReadMemStats(&after)
		clear(keep)
		return (after.TotalAlloc - before.TotalAlloc) / k
	}
	dataPacket := 1 + 4 + 4 + 32<<10 // CHANNEL_DATA with 32 KiB of data
	for _, n := range []int{1, 100, 4 << 10, 4133, 16 << 10, 20 << 10, dataPacket, 40 << 10, 100 << 10, 256 << 10} {
		var s Sender
		if b := s.Buffer(n); HeldSize(n) != cap(b) {
			t.Errorf("message of %d bytes: HeldSize %d, but Buffer's capacity is %d", n, HeldSize(n), cap(b))
		}
		need := wire.FrameHeadroom + n + wire.FrameTailroom
		var got uint64
		if pooled(need) {
			got = allocated(func() []byte { return *bufPool.New().(*[]byte) })
		} else {
			got = allocated(func() []byte { return s.Buffer(n) })
		}
		// The 64 bytes are for what else allocates meanwhile (a few bytes
		// a buffer).
		if got > uint64(HeldSize(n))+64 {
			t.Errorf("message of %d bytes: its buffer occupies %d bytes; HeldSize counts %d", n, got, HeldSize(n))
		}
	}
}

// An ACK gives pooled buffers back with the pointers Buffer took them out
// with, instead of allocating one per message acknowledged (issue 17: a
// bulk transfer's sender allocated on every ACK).
func TestAckReusesPoolPointers(t *testing.T) {
	var s Sender
	msg := make([]byte, 1+4+4+32<<10)
	msg[0] = 94
	for i := range maxBoxes + 8 {
		if _, err := s.RecordOwned(append(s.Buffer(len(msg)), msg...)); err != nil {
			t.Fatal(err)
		}
		if want := min(i+1, maxBoxes); len(s.boxes) != want {
			t.Fatalf("after %d buffers, %d pointers kept; want %d", i+1, len(s.boxes), want)
		}
	}
	if err := s.Ack(8); err != nil {
		t.Fatal(err)
	}
	if len(s.boxes) != maxBoxes-8 {
		t.Fatalf("after an ACK of 8, %d pointers kept; want %d", len(s.boxes), maxBoxes-8)
	}
}

// BenchmarkRecordAck retains 32 KiB data packets and acknowledges them 8
// at a time, as a bulk transfer does: 0 allocs/op (8 before the pool's
// pointers were kept).
func BenchmarkRecordAck(b *testing.B) {
	var s Sender
	msg := make([]byte, 1+4+4+32<<10)
	msg[0] = 94
	for range 64 {
		s.RecordOwned(append(s.Buffer(len(msg)), msg...))
	}
	b.ReportAllocs()
	for b.Loop() {
		for range 8 {
			s.RecordOwned(append(s.Buffer(len(msg)), msg...))
		}
		if err := s.Ack(s.Sent() - 64); err != nil {
			b.Fatal(err)
		}
	}
}

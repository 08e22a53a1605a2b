package transport

import (
	"bytes"
	"testing"

	"github.com/rsftp/rsftp/internal/wire"
)

// PacketBuffer's buffers have the head and tail room the frame writes
// need, for every size class and beyond the largest.
func TestPacketBufferRoom(t *testing.T) {
	var c Conn
	for _, n := range []int{0, 1, 100, 32<<10 + 16, 32<<10 + 100, 64 << 10, 128<<10 + 16, 256<<10 + 16, 1 << 20} {
		b := c.PacketBuffer(n)
		if len(b) != wire.FrameHeadroom || cap(b) < wire.FrameHeadroom+n+wire.FrameTailroom {
			t.Fatalf("PacketBuffer(%d): len %d cap %d", n, len(b), cap(b))
		}
		putFrame(b)
	}
}

// WriteFrame (the buffer handed over) and SealFrame (the frame stays the
// caller's, untouched but for its scratch room) both deliver the message.
func TestFrameWrites(t *testing.T) {
	cc, sc := newPair(t, nil)
	msg := make([]byte, 32<<10+9)
	msg[0] = wire.MsgChannelData
	for i := 1; i < len(msg); i++ {
		msg[i] = byte(i * 7)
	}
	got := make(chan []byte, 4)
	go func() {
		for {
			p, err := sc.ReadPacket()
			if err != nil {
				close(got)
				return
			}
			got <- bytes.Clone(p)
		}
	}()

	buf := append(cc.PacketBuffer(len(msg)), msg...)
	if err := cc.WriteFrame(buf); err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, wire.FrameHeadroom, wire.FrameHeadroom+len(msg)+wire.FrameTailroom)
	frame = append(frame, msg...)
	for range 2 { // a retained frame is sealed again on resending
		if err := cc.SealFrame(frame); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(frame[wire.FrameHeadroom:], msg) {
			t.Fatal("SealFrame changed the message in the frame")
		}
	}
	for i := range 3 {
		if p := <-got; !bytes.Equal(p, msg) {
			t.Fatalf("packet %d: %d bytes, not the message sent", i, len(p))
		}
	}
	if err := cc.SealFrame(make([]byte, 2)); err == nil {
		t.Fatal("SealFrame took a frame shorter than its headroom")
	}
}

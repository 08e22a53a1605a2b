package channel

import (
	"bytes"
	"testing"

	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/resume"
	"github.com/rsftp/rsftp/transport"
)

// The connections the multiplexer runs on implement PacketConn themselves.
var (
	_ PacketConn = (*transport.Conn)(nil)
	_ PacketConn = (*resume.Session)(nil)
)

// PlainConn: frames go out as messages, nothing is retained, Disconnect
// closes.
func TestPlainConn(t *testing.T) {
	a, b := pipePair()
	pc := PlainConn(a)
	if r := pc.RetainPacket(); r != nil {
		t.Fatalf("RetainPacket = %v, want nil", r)
	}
	for _, n := range []int{0, 10, 32<<10 + 16, 200 << 10} {
		buf := pc.PacketBuffer(n)
		if len(buf) != wire.FrameHeadroom || cap(buf) < wire.FrameHeadroom+n+wire.FrameTailroom {
			t.Fatalf("PacketBuffer(%d): len %d, cap %d", n, len(buf), cap(buf))
		}
		msg := pattern(n+1, n)
		if err := pc.WriteFrame(append(buf, msg...)); err != nil {
			t.Fatal(err)
		}
		if p, err := b.ReadPacket(); err != nil || !bytes.Equal(p, msg) {
			t.Fatalf("PacketBuffer(%d): the peer read %d bytes (%v), not the message", n, len(p), err)
		}
	}
	if err := pc.WriteFrame(make([]byte, 2)); err == nil {
		t.Fatal("WriteFrame took a buffer shorter than the headroom")
	}
	pc.Disconnect(wire.DisconnectProtocolError, "test")
	if _, err := a.ReadPacket(); err == nil {
		t.Fatal("Disconnect did not close the connection")
	}
}

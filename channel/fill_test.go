package channel

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/connmsg"
	"github.com/rsftp/rsftp/internal/wire"
)

// ownedPipe is a pipeConn with the frame writes of resume.Session: its
// PacketBuffer gives exactly the room promised, and WriteFrame checks
// the frame's head and tail room and keeps the buffer, so that WriteFill's
// packet layouts are checked against what such a connection takes.
type ownedPipe struct{ *pipeConn }

func (p ownedPipe) RetainPacket() interface{ Release() } { return nil }

func (p ownedPipe) PacketBuffer(n int) []byte {
	return make([]byte, wire.FrameHeadroom, wire.FrameHeadroom+n+wire.FrameTailroom)
}

func (p ownedPipe) WriteFrame(buf []byte) error {
	if len(buf) < wire.FrameHeadroom || cap(buf)-len(buf) < wire.FrameTailroom {
		return fmt.Errorf("frame of %d bytes with %d bytes of tailroom", len(buf), cap(buf)-len(buf))
	}
	return p.WritePacket(buf[wire.FrameHeadroom:])
}

func (p ownedPipe) Disconnect(uint32, string) error { return p.Close() }

// pipeKinds are the connections WriteFill is checked over: PlainConn's
// adapter, and one that keeps the frames it is given.
var pipeKinds = []struct {
	name string
	wrap func(*pipeConn) PacketConn
}{
	{"plain", func(p *pipeConn) PacketConn { return PlainConn(p) }},
	{"owned", func(p *pipeConn) PacketConn { return ownedPipe{p} }},
}

// rawPeerOver is rawPeer with the multiplexer's side of the pipe wrapped.
func rawPeerOver(t *testing.T, wrap func(*pipeConn) PacketConn) (*Mux, *pipeConn) {
	a, b := pipePair()
	m := NewMux(wrap(a), nil)
	t.Cleanup(func() { m.Close() })
	return m, b
}

func pattern(n, seed int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*31 + i>>9 + seed)
	}
	return p
}

// fillFrom returns a fill callback that copies src across the buffers it
// is given, claims k of them filled, and records the buffer sizes.
func fillFrom(src []byte, k int, sizes *[]int) func([][]byte) (int, error) {
	return func(bufs [][]byte) (int, error) {
		rest := src
		for _, b := range bufs {
			*sizes = append(*sizes, len(b))
			rest = rest[copy(b, rest):]
		}
		return k, nil
	}
}

// inBackground runs write on its own goroutine; the channel yields its
// error, or one if it wrote other than want bytes.
func inBackground(want int, write func() (int, error)) <-chan error {
	done := make(chan error, 1)
	go func() {
		n, err := write()
		if err == nil && n != want {
			err = fmt.Errorf("wrote %d of %d", n, want)
		}
		done <- err
	}()
	return done
}

// WriteFill sends exactly the prefix fill reports, in packets within the
// peer's maximum, over every kind of connection, and nothing when fill
// fails.
func TestWriteFill(t *testing.T) {
	const maxPacket = 1000
	for _, kind := range pipeKinds {
		t.Run(kind.name, func(t *testing.T) {
			m, raw := rawPeerOver(t, kind.wrap)
			c, _ := rawOpen(t, m, raw, 1<<20, maxPacket)
			for _, tc := range []struct{ n, k int }{{1, 1}, {999, 999}, {1000, 1000}, {4321, 4321}, {4321, 2500}, {4321, 13}} {
				src := pattern(tc.n, tc.k)
				var sizes []int
				sent, err := c.WriteFill(tc.n, fillFrom(src, tc.k, &sizes))
				if err != nil || sent != tc.k {
					t.Fatalf("WriteFill(%d) filling %d = %d, %v", tc.n, tc.k, sent, err)
				}
				total := 0
				for _, s := range sizes {
					if s > maxPacket || s == 0 {
						t.Fatalf("fill got a %d-byte buffer; the peer's maximum packet is %d", s, maxPacket)
					}
					total += s
				}
				if total != tc.n {
					t.Fatalf("fill got %d bytes of buffers for %d", total, tc.n)
				}
				if got := readData(t, raw, tc.k); !bytes.Equal(got, src[:tc.k]) {
					t.Fatalf("WriteFill(%d) filling %d: data differs", tc.n, tc.k)
				}
			}
			boom := errors.New("boom")
			if n, err := c.WriteFill(5000, func([][]byte) (int, error) { return 0, boom }); n != 0 || err != boom {
				t.Fatalf("failing fill: %d, %v", n, err)
			}
			if n, err := c.WriteFill(5000, func([][]byte) (int, error) { return 5001, nil }); n != 0 || err == nil {
				t.Fatalf("fill claiming too much: %d, %v", n, err)
			}
			c.Write([]byte("end"))
			if got := readData(t, raw, 3); string(got) != "end" {
				t.Fatalf("after failed fills the peer got %q", got)
			}
		})
	}
}

// A peer window smaller than a packet: the packets WriteFill laid out go
// in pieces as the window allows, data intact.
func TestWriteFillSmallWindow(t *testing.T) {
	for _, kind := range pipeKinds {
		t.Run(kind.name, func(t *testing.T) {
			m, raw := rawPeerOver(t, kind.wrap)
			c, id := rawOpen(t, m, raw, 700, 4096)
			src := pattern(10000, 3)
			var sizes []int
			done := inBackground(len(src), func() (int, error) {
				return c.WriteFill(len(src), fillFrom(src, len(src), &sizes))
			})
			var got []byte
			for len(got) < len(src) {
				d, err := connmsg.ParseData(expect(t, raw, wire.MsgChannelData))
				if err != nil {
					t.Fatal(err)
				}
				if len(d.Data) > 700 {
					t.Fatalf("%d-byte packet in a 700-byte window", len(d.Data))
				}
				got = append(got, d.Data...)
				raw.WritePacket((&connmsg.WindowAdjust{Recipient: id, Bytes: uint32(len(d.Data))}).Marshal())
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, src) {
				t.Fatal("data differs")
			}
		})
	}
}

// ReadVia hands over exactly n bytes, in order, across receive-buffer
// chunks, and leaves the rest for Read.
func TestReadVia(t *testing.T) {
	ma, mb := muxPair(t, nil, nil)
	ca, cb := openPair(t, ma, mb, "x")
	src := pattern(5*rbufChunk+1234, 9)
	go ca.Write(src)
	for _, n := range []int{1, 100, rbufChunk, rbufChunk + 7, 2*rbufChunk - 1000} {
		want := src[:n]
		src = src[n:]
		var got []byte
		k, err := cb.ReadVia(n, func(bufs [][]byte) {
			for _, b := range bufs {
				got = append(got, b...)
			}
		})
		if err != nil || k != n {
			t.Fatalf("ReadVia(%d) = %d, %v", n, k, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("ReadVia(%d): data differs", n)
		}
	}
	rest := make([]byte, len(src))
	if _, err := io.ReadFull(cb, rest); err != nil || !bytes.Equal(rest, src) {
		t.Fatalf("Read after ReadVia: %v, equal %v", err, bytes.Equal(rest, src))
	}
}

// A channel that ends before n bytes: ReadVia passes on what came and
// says the stream was cut. Close from inside the callback ends it too.
func TestReadViaEnds(t *testing.T) {
	ma, mb := muxPair(t, nil, nil)
	ca, cb := openPair(t, ma, mb, "x")
	ca.Write([]byte("0123456789"))
	ca.CloseWrite()
	var got []byte
	n, err := cb.ReadVia(20, func(bufs [][]byte) {
		for _, b := range bufs {
			got = append(got, b...)
		}
	})
	if n != 10 || !errors.Is(err, io.ErrUnexpectedEOF) || string(got) != "0123456789" {
		t.Fatalf("ReadVia past EOF = %d, %v, %q", n, err, got)
	}

	ca, cb = openPair(t, ma, mb, "x")
	ca.Write(pattern(5000, 1))
	time.Sleep(10 * time.Millisecond)
	n, err = cb.ReadVia(10000, func([][]byte) { cb.Close() })
	if n != 0 || !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadVia closed in its callback = %d, %v", n, err)
	}
}

// countedOwner counts releases of the memory it stands for.
type countedOwner struct{ released int }

func (o *countedOwner) Release() { o.released++ }

// The receive buffer, fed copied and queued-in-place data at random and
// drained by read, peek with discard, and reset, gives back exactly what
// went in, in order, and releases each queued piece once, when it is read
// or dropped, and not while a ReadVia callback may be reading it.
func TestRbufCopiedAndQueued(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var r rbuf
	var model []byte
	var owners []*countedOwner
	var ownerEnds []int // model offset (in all bytes ever written) where each owner's piece ends
	written, consumed := 0, 0
	checkReleases := func() {
		for i, o := range owners {
			want := 0
			if ownerEnds[i] <= consumed {
				want = 1
			}
			if o.released != want {
				t.Fatalf("piece %d (ends at %d, %d consumed) released %d times", i, ownerEnds[i], consumed, o.released)
			}
		}
	}
	for step := range 6000 {
		switch op := rng.IntN(10); {
		case op < 3:
			p := pattern(1+rng.IntN(3*rbufChunk/2), step)
			r.write(p)
			model = append(model, p...)
			written += len(p)
		case op < 6:
			p := pattern(1+rng.IntN(40000), step)
			o := &countedOwner{}
			r.push(p, o)
			model = append(model, p...)
			written += len(p)
			owners, ownerEnds = append(owners, o), append(ownerEnds, written)
		case op < 8:
			p := make([]byte, rng.IntN(100000))
			n := r.read(p)
			if want := min(len(p), len(model)); n != want || !bytes.Equal(p[:n], model[:n]) {
				t.Fatalf("step %d: read %d bytes, want %d (equal %v)", step, n, want, bytes.Equal(p[:n], model[:min(n, len(model))]))
			}
			model = model[n:]
			consumed += n
		default:
			k := rng.IntN(100000)
			var got []byte
			for _, b := range r.peek(k, nil) {
				got = append(got, b...)
			}
			if want := min(k, len(model)); !bytes.Equal(got, model[:want]) {
				t.Fatalf("step %d: peek(%d) gave %d bytes, want %d", step, k, len(got), want)
			}
			r.discard(len(got))
			model = model[len(got):]
			consumed += len(got)
		}
		if r.len() != len(model) {
			t.Fatalf("step %d: len %d, want %d", step, r.len(), len(model))
		}
		if step%16 == 0 {
			checkReleases()
		}
	}
	checkReleases()
	// Reset while pinned leaves the memory alone; unpinned, it releases.
	o := &countedOwner{}
	r.push(pattern(9000, 1), o)
	r.pinned = true
	r.reset()
	if o.released != 0 {
		t.Fatal("reset released a piece a ReadVia callback may be reading")
	}
	o = &countedOwner{}
	r.push(pattern(9000, 1), o)
	r.reset()
	if o.released != 1 || r.len() != 0 {
		t.Fatalf("reset: released %d times, %d bytes left", o.released, r.len())
	}
}

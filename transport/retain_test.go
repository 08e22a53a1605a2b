package transport

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// Payloads retained from an inbound decoder stay as they were while
// thousands more packets of every size pass through it in reads of every
// size; the decoder moves to fresh slabs rather than overwrite them, and
// each slab comes back once every payload in it is released.
func TestInboundRetain(t *testing.T) {
	key := make([]byte, 64)
	for i := range key {
		key[i] = byte(i)
	}
	send, err := newChaChaCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	recv, _ := newChaChaCipher(key)
	out := outbound{direction: direction{cipher: send}}
	in := newInbound()
	in.cipher = recv
	rng := rand.New(rand.NewPCG(1, 2))

	type kept struct {
		p    []byte
		want []byte
		sl   *slab
	}
	var held []kept
	slabs := map[*slab]bool{in.slab: true}
	var stream []byte
	var sent [][]byte
	for i := range 800 {
		var n int
		switch rng.IntN(4) {
		case 0:
			n = 1 + rng.IntN(100)
		case 1:
			n = 32 << 10
		case 2:
			n = maxPayload - rng.IntN(10)
		default:
			n = 1 + rng.IntN(40000)
		}
		p := make([]byte, n)
		for j := range p {
			p[j] = byte(i + j*7)
		}
		sent = append(sent, p)
		stream = out.seal(stream, p)
	}
	got := 0
	for len(stream) > 0 || got < len(sent) {
		p, err := in.next()
		if err == errNeedMore {
			sp := in.space()
			k := copy(sp, stream[:min(len(stream), 1+rng.IntN(len(sp)))])
			in.commit(k)
			stream = stream[k:]
			slabs[in.slab] = true
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(p, sent[got]) {
			t.Fatalf("packet %d differs", got)
		}
		got++
		if rng.IntN(3) == 0 {
			sl := in.retain()
			held = append(held, kept{p: p, want: sent[got-1], sl: sl})
		}
		// Release some of what is held, oldest first, as a reader would.
		for len(held) > 0 && rng.IntN(4) == 0 {
			if !bytes.Equal(held[0].p, held[0].want) {
				t.Fatalf("a retained payload changed before its release")
			}
			held[0].sl.Release()
			held = held[1:]
		}
	}
	for _, h := range held {
		if !bytes.Equal(h.p, h.want) {
			t.Fatalf("a retained payload changed")
		}
		h.sl.Release()
	}
	if len(slabs) < 3 {
		t.Fatalf("only %d slabs used: the test did not make the decoder move on", len(slabs))
	}
	for sl := range slabs {
		want := int32(0)
		if sl == in.slab {
			want = 1
		}
		if r := sl.refs.Load(); r != want {
			t.Fatalf("a slab has %d holders after every release, want %d", r, want)
		}
	}
	t.Logf("%d packets, %d slabs", got, len(slabs))
}

// Retained payloads hold at most maxHeldSlabs slabs left behind: past
// that, retain refuses (the channel layer then copies), and it accepts
// again once they are released.
func TestInboundRetainBounded(t *testing.T) {
	in := newInbound()
	out := outbound{direction: direction{cipher: newNoneCipher()}}
	payload := make([]byte, 32<<10)
	var held []*slab
	refused := 0
	for i := 0; refused == 0 && i < 100*maxHeldSlabs; i++ {
		wire := out.seal(nil, payload)
		for len(wire) > 0 {
			sp := in.space()
			k := copy(sp, wire)
			in.commit(k)
			wire = wire[k:]
		}
		if _, err := in.next(); err != nil {
			t.Fatal(err)
		}
		if sl := in.retain(); sl != nil {
			held = append(held, sl)
		} else {
			refused++
		}
	}
	if refused == 0 || in.held.Load() != maxHeldSlabs {
		t.Fatalf("%d payloads retained, %d slabs held (bound %d), %d refusals", len(held), in.held.Load(), maxHeldSlabs, refused)
	}
	for _, sl := range held {
		sl.Release()
	}
	if n := in.held.Load(); n != 0 {
		t.Fatalf("%d slabs still counted as held after every release", n)
	}
	if sl := in.retain(); sl == nil {
		t.Fatal("retain still refuses after every release")
	} else {
		sl.Release()
	}
	var c Conn
	c.in = in
	c.in.held.Store(maxHeldSlabs)
	if r := c.RetainPacket(); r != nil {
		t.Fatalf("RetainPacket over the bound = %#v, want a nil interface", r)
	}
}

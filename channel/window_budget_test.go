package channel

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/connmsg"
	"github.com/rsftp/rsftp/internal/wire"
)

// countingBudget is a Budget that records what it is charged: used must
// come back to 0 once every channel is gone.
type countingBudget struct {
	limit    int64 // 0: none
	used     atomic.Int64
	charges  atomic.Int64 // calls that charged
	releases atomic.Int64
	negative atomic.Bool // released more than charged
}

func (b *countingBudget) TryCharge(n int64) bool {
	for {
		u := b.used.Load()
		if b.limit > 0 && u+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			b.charges.Add(1)
			return true
		}
	}
}

func (b *countingBudget) Charge(n int64) {
	b.used.Add(n)
	b.charges.Add(1)
}

func (b *countingBudget) Release(n int64) {
	if b.used.Add(-n) < 0 {
		b.negative.Store(true)
	}
	b.releases.Add(1)
}

// waitUntil polls cond for up to 5 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func (b *countingBudget) waitZero(t *testing.T, what string) {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%s: budget back to 0 (used %d)", what, b.used.Load()), func() bool { return b.used.Load() == 0 })
	if b.negative.Load() {
		t.Fatalf("%s: released more than charged", what)
	}
}

// rawOpenTyped is rawOpen with a chosen peer channel number.
func rawOpenAs(t *testing.T, h <-chan *NewChannel, raw *pipeConn, sender uint32) (*Channel, *connmsg.OpenConfirm) {
	t.Helper()
	raw.WritePacket((&connmsg.ChannelOpen{Type: "x", Sender: sender, Window: 1 << 20, MaxPacket: 32 << 10}).Marshal())
	c, err := (<-h).Accept()
	if err != nil {
		t.Fatal(err)
	}
	conf, err := connmsg.ParseOpenConfirm(expect(t, raw, wire.MsgChannelOpenConfirm))
	if err != nil || conf.Recipient != sender {
		t.Fatalf("confirm %+v %v", conf, err)
	}
	return c, conf
}

// rawConfirmOpen opens a channel from m, the raw peer confirming it as
// channel sender; it returns the channel and the window m offered.
func rawConfirmOpen(t *testing.T, m *Mux, raw *pipeConn, sender uint32) (*Channel, uint32) {
	t.Helper()
	type res struct {
		c   *Channel
		err error
	}
	done := make(chan res, 1)
	go func() {
		c, err := m.OpenChannel(ctxT(t), "y", nil)
		done <- res{c, err}
	}()
	open, err := connmsg.ParseChannelOpen(expect(t, raw, wire.MsgChannelOpen))
	if err != nil {
		t.Fatal(err)
	}
	raw.WritePacket((&connmsg.OpenConfirm{Recipient: open.Sender, Sender: sender, Window: 1 << 20, MaxPacket: 32 << 10}).Marshal())
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	return r.c, open.Window
}

// TestWindowTotalBounded: the windows of a connection's channels, opened
// by the peer and by us, add up to at most MaxWindowTotal plus one
// MaxPacket for each channel granted past it; the one that meets the cap
// gets what is left.
func TestWindowTotalBounded(t *testing.T) {
	const (
		window = 1 << 20
		pkt    = 32 << 10
		total  = 3<<20 + 512<<10
	)
	m, raw := rawPeer(t, &Config{WindowSize: window, MaxPacket: pkt, MaxWindowTotal: total})
	h := m.HandleChannelOpen("x")
	var got []uint32
	var sum uint64
	for i := range 8 {
		var w uint32
		if i%2 == 0 {
			_, conf := rawOpenAs(t, h, raw, uint32(100+i))
			w = conf.Window
		} else {
			_, w = rawConfirmOpen(t, m, raw, uint32(100+i))
		}
		got = append(got, w)
		sum += uint64(w)
	}
	want := []uint32{window, window, window, 512 << 10, pkt, pkt, pkt, pkt}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("windows granted %v, want %v", got, want)
	}
	if sum > total+4*pkt || m.WindowTotal() != sum {
		t.Fatalf("windows add up to %d (mux counts %d), cap %d + 4 floors", sum, m.WindowTotal(), total)
	}
	t.Logf("8 channels of 1 MiB under a %d-byte cap: %v, %d in all", total, got, sum)
}

// TestWindowBudgetChargedAndReleased: every window is charged to the
// Budget, in both directions, and all of it comes back when channels
// close (either side first) and when the connection ends, once.
func TestWindowBudgetChargedAndReleased(t *testing.T) {
	b := &countingBudget{}
	m, raw := rawPeer(t, &Config{WindowSize: 256 << 10, MaxPacket: 32 << 10, Budget: b})
	h := m.HandleChannelOpen("x")
	var chans []*Channel
	var ids []uint32
	for i := range 6 {
		var c *Channel
		if i%2 == 0 {
			c, _ = rawOpenAs(t, h, raw, uint32(200+i))
		} else {
			c, _ = rawConfirmOpen(t, m, raw, uint32(200+i))
		}
		chans = append(chans, c)
		local, _ := c.IDs()
		ids = append(ids, local)
	}
	if u := b.used.Load(); u != 6*256<<10 || uint64(u) != m.WindowTotal() {
		t.Fatalf("charged %d (mux total %d), want %d", u, m.WindowTotal(), 6*256<<10)
	}
	// We close channel 0: released when the peer's CLOSE comes back.
	chans[0].Close()
	expect(t, raw, wire.MsgChannelClose)
	if b.used.Load() != 6*256<<10 {
		t.Fatal("window released before the peer's CLOSE")
	}
	raw.WritePacket((&connmsg.Close{Recipient: ids[0]}).Marshal())
	waitUntil(t, "release after our close", func() bool { return b.used.Load() == 5*256<<10 })
	// The peer closes channel 1: we answer and release.
	raw.WritePacket((&connmsg.Close{Recipient: ids[1]}).Marshal())
	expect(t, raw, wire.MsgChannelClose)
	waitUntil(t, "release after the peer's close", func() bool { return b.used.Load() == 4*256<<10 })
	// Half closed (ours sent, no answer): released when the mux ends.
	chans[2].Close()
	expect(t, raw, wire.MsgChannelClose)
	// A grown window is charged, and released with the rest.
	if err := chans[3].GrowWindow(1 << 20); err != nil {
		t.Fatal(err)
	}
	if u := b.used.Load(); u != 3*256<<10+1<<20 {
		t.Fatalf("after growing one window to 1 MiB: charged %d", u)
	}
	raw.Close()
	m.Wait()
	b.waitZero(t, "after the connection ended")
	if m.WindowTotal() != 0 {
		t.Fatalf("mux still counts %d bytes of window", m.WindowTotal())
	}
	// Close after the end releases nothing more.
	for _, c := range chans {
		c.Close()
	}
	if u := b.used.Load(); u != 0 || b.negative.Load() {
		t.Fatalf("closing after the end: used %d", u)
	}
	t.Logf("%d charges, %d releases", b.charges.Load(), b.releases.Load())
}

// TestWindowBudgetLimitsGrants: a Budget with little room left halves the
// window of new channels down to one MaxPacket, which is charged anyway.
func TestWindowBudgetLimitsGrants(t *testing.T) {
	const pkt = 32 << 10
	b := &countingBudget{limit: 2<<20 + 256<<10}
	m, raw := rawPeer(t, &Config{WindowSize: 1 << 20, MaxPacket: pkt, Budget: b})
	h := m.HandleChannelOpen("x")
	var got []uint32
	for i := range 5 {
		_, conf := rawOpenAs(t, h, raw, uint32(i))
		got = append(got, conf.Window)
	}
	want := []uint32{1 << 20, 1 << 20, 256 << 10, pkt, pkt}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("windows granted %v, want %v", got, want)
	}
	if u := b.used.Load(); u != b.limit+2*pkt {
		t.Fatalf("charged %d, want the limit %d + 2 floors", u, b.limit)
	}
	raw.Close()
	m.Wait()
	b.waitZero(t, "after the connection ended")
}

// TestGrowWindowWithinLimits: GrowWindow grows only as far as
// MaxWindowTotal and the Budget admit, tells the peer exactly that much,
// and grows again once room is freed.
func TestGrowWindowWithinLimits(t *testing.T) {
	const window, pkt = 64 << 10, 32 << 10
	t.Run("MaxWindowTotal", func(t *testing.T) {
		m, raw := rawPeer(t, &Config{WindowSize: window, MaxPacket: pkt, MaxWindowTotal: 1 << 20})
		h := m.HandleChannelOpen("x")
		c, _ := rawOpenAs(t, h, raw, 1)
		other, _ := rawOpenAs(t, h, raw, 2)
		if err := c.GrowWindow(4 << 20); err != nil {
			t.Fatal(err)
		}
		adj, err := connmsg.ParseWindowAdjust(expect(t, raw, wire.MsgChannelWindowAdjust))
		if err != nil || adj.Recipient != 1 || adj.Bytes != 1<<20-2*window {
			t.Fatalf("adjust %+v %v, want %d bytes", adj, err, 1<<20-2*window)
		}
		if rx, _ := c.Windows(); rx != 1<<20-window {
			t.Fatalf("window %d after growing, want %d", rx, 1<<20-window)
		}
		// Full: growing again does nothing, sends nothing.
		c.GrowWindow(4 << 20)
		select {
		case p := <-raw.in:
			t.Fatalf("sent %s with no room to grow", connmsg.Name(p[0]))
		default:
		}
		// The other channel goes: its window can be granted to this one.
		local, _ := other.IDs()
		raw.WritePacket((&connmsg.Close{Recipient: local}).Marshal())
		expect(t, raw, wire.MsgChannelClose)
		waitUntil(t, "other window released", func() bool { return m.WindowTotal() == 1<<20-window })
		c.GrowWindow(4 << 20)
		adj, err = connmsg.ParseWindowAdjust(expect(t, raw, wire.MsgChannelWindowAdjust))
		if err != nil || adj.Bytes != window {
			t.Fatalf("adjust %+v %v, want %d bytes", adj, err, window)
		}
		if m.WindowTotal() != 1<<20 {
			t.Fatalf("mux total %d, want %d", m.WindowTotal(), 1<<20)
		}
	})
	t.Run("Budget", func(t *testing.T) {
		b := &countingBudget{limit: 1<<20 + 100<<10}
		m, raw := rawPeer(t, &Config{WindowSize: window, MaxPacket: pkt, Budget: b})
		h := m.HandleChannelOpen("x")
		c, _ := rawOpenAs(t, h, raw, 1)
		// 8 MiB asked, the budget has 1 MiB + 36 KiB left: halving
		// from 8 MiB, 1 MiB fits.
		c.GrowWindow(8<<20 + window)
		adj, err := connmsg.ParseWindowAdjust(expect(t, raw, wire.MsgChannelWindowAdjust))
		if err != nil || adj.Bytes != 1<<20 {
			t.Fatalf("adjust %+v %v, want 1 MiB", adj, err)
		}
		if u := b.used.Load(); u != window+1<<20 || uint64(u) != m.WindowTotal() {
			t.Fatalf("charged %d, mux total %d", u, m.WindowTotal())
		}
		raw.Close()
		m.Wait()
		b.waitZero(t, "after the connection ended")
		// A failed channel does not grow, nor charge.
		c.GrowWindow(16 << 20)
		if b.used.Load() != 0 {
			t.Fatalf("GrowWindow after the end charged %d", b.used.Load())
		}
	})
}

// TestSmallWindowEndToEnd: channels squeezed to small windows (a cap
// reached, a budget spent) still carry a stream both ways intact, and
// the peer, sending within what we granted, breaks no rule.
func TestSmallWindowEndToEnd(t *testing.T) {
	b := &countingBudget{limit: 1}
	cfg := &Config{WindowSize: 1 << 20, MaxPacket: 8 << 10, MaxWindowTotal: 40 << 10, Budget: b}
	ma, mb := muxPair(t, cfg, cfg)
	var pairs [][2]*Channel
	for range 3 {
		ca, cb := openPair(t, ma, mb, "x")
		pairs = append(pairs, [2]*Channel{ca, cb})
	}
	for i, p := range pairs {
		for _, c := range p {
			if rx, _ := c.Windows(); rx != 8<<10 {
				t.Fatalf("channel %d: window %d, want the 8 KiB floor", i, rx)
			}
		}
	}
	const size = 1<<20 + 123
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for i, p := range pairs {
		for dir := range 2 {
			w, r := p[dir], p[1-dir]
			src := pattern(size, i*2+dir)
			want := sha256.Sum256(src)
			wg.Add(2)
			go func() {
				defer wg.Done()
				if _, err := w.Write(src); err != nil {
					errs <- err
				}
				w.CloseWrite()
			}()
			go func() {
				defer wg.Done()
				got, err := io.ReadAll(r)
				if err != nil {
					errs <- err
				} else if sha256.Sum256(got) != want || len(got) != size {
					errs <- fmt.Errorf("stream %d/%d: %d bytes, corrupted or short", i, dir, len(got))
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, p := range pairs {
		p[0].Close()
	}
	b.waitZero(t, "after both sides closed every channel")
	if ma.WindowTotal() != 0 || mb.WindowTotal() != 0 {
		t.Fatalf("mux totals %d, %d after every channel closed", ma.WindowTotal(), mb.WindowTotal())
	}
}

// TestWindowBudgetConcurrent opens, grows and closes channels from both
// sides at once while the connection is closed under them (run with
// -race): the Budget returns to 0 and never goes below.
func TestWindowBudgetConcurrent(t *testing.T) {
	for round := range 20 {
		b := &countingBudget{limit: 4 << 20}
		cfg := &Config{WindowSize: 512 << 10, MaxPacket: 16 << 10, MaxWindowTotal: 2 << 20, Budget: b}
		a, c := pipePair()
		ma, mb := NewMux(PlainConn(a), cfg), NewMux(PlainConn(c), cfg)
		var wg sync.WaitGroup
		for _, pair := range [][2]*Mux{{ma, mb}, {mb, ma}} {
			from, to := pair[0], pair[1]
			h := to.HandleChannelOpen("z")
			wg.Add(2)
			go func() {
				defer wg.Done()
				for nc := range h {
					ch, err := nc.Accept()
					if err != nil {
						continue
					}
					go func() {
						ch.GrowWindow(1 << 20)
						io.Copy(io.Discard, ch)
						ch.Close()
					}()
				}
			}()
			go func() {
				defer wg.Done()
				for i := range 30 {
					ch, err := from.OpenChannel(ctxT(t), "z", nil)
					if err != nil {
						return
					}
					go func() {
						ch.GrowWindow(uint32(i) << 16)
						ch.Write(bytes.Repeat([]byte{byte(i)}, 40<<10))
						ch.Close()
					}()
				}
			}()
		}
		time.Sleep(time.Duration(round%5) * time.Millisecond)
		a.Close()
		ma.Wait()
		mb.Wait()
		wg.Wait()
		b.waitZero(t, fmt.Sprintf("round %d", round))
		waitUntil(t, "mux totals back to 0", func() bool { return ma.WindowTotal() == 0 && mb.WindowTotal() == 0 })
	}
}

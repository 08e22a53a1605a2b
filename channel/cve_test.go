package channel

// Regression tests named after the CVEs whose attack classes they cover.
// One end is a Mux, the other hand-written packets over the in-memory
// pipe of mux_test.go (rawPeer, rawOpen, expect) or a second Mux
// (muxPair). Older tests of the same defences:
// TestProtocolViolationsEndTheConnection, TestWritesRespectPeerWindowAndPacket,
// TestOpenCancelledThenConfirmed.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/rsftp/rsftp/internal/connmsg"
	"github.com/rsftp/rsftp/internal/wire"
)

// alive reports whether m still handles packets: the raw peer sends a
// global request, which m (with no GlobalRequests listener) refuses,
// unless the connection has ended. m handles packets in order, so when
// the answer comes everything sent before it has been handled.
func alive(t *testing.T, raw *pipeConn) bool {
	t.Helper()
	if raw.WritePacket((&connmsg.GlobalRequest{Name: "probe@rsftp.test", WantReply: true}).Marshal()) != nil {
		return false
	}
	for {
		b, err := raw.ReadPacket()
		if err != nil {
			return false
		}
		if b[0] == wire.MsgRequestFailure {
			return true
		}
	}
}

// mustDie checks that the connection ended with a protocol error, and
// reports whether it ended.
func mustDie(t *testing.T, m *Mux, raw *pipeConn, what string) bool {
	t.Helper()
	if alive(t, raw) {
		t.Errorf("connection survived %s", what)
		return false
	}
	select {
	case <-m.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("mux did not end after %s", what)
	}
	var pe *ProtocolError
	if err := m.Wait(); !errors.As(err, &pe) {
		t.Errorf("after %s: Wait = %v, want a *ProtocolError", what, err)
	}
	return true
}

// numChans is the size of m's channel table.
func numChans(m *Mux) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.chans)
}

// settleGoroutines waits for the goroutine count to come back to base.
func settleGoroutines(t *testing.T, base int) {
	t.Helper()
	n := 0
	for range 500 {
		if n = runtime.NumGoroutine(); n <= base {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	t.Errorf("%d goroutines, %d before:\n%s", n, base, buf)
}

// CVE-2026-39830: replies nobody asked for (REQUEST_SUCCESS/FAILURE with
// no global request pending, CHANNEL_SUCCESS/FAILURE with no channel
// request pending) must end the connection with a protocol error, never
// panic, and never be kept to answer a request made later.
func TestCVE_2026_39830_UnsolicitedReplies(t *testing.T) {
	cfg := &Config{WindowSize: 1 << 16, MaxPacket: 1 << 14}

	// laterGlobal checks that a global request made after the attack
	// fails instead of taking a stale reply. The peer would answer it
	// with FAILURE if it ever saw it.
	laterGlobal := func(t *testing.T, m *Mux, raw *pipeConn) {
		go func() {
			for {
				b, err := raw.ReadPacket()
				if err != nil {
					return
				}
				if b[0] == wire.MsgGlobalRequest {
					raw.WritePacket([]byte{wire.MsgRequestFailure})
				}
			}
		}()
		ok, payload, err := m.SendRequest(ctxT(t), "later@rsftp.test", true, nil)
		if ok || err == nil {
			t.Errorf("global request after the attack: ok %v payload %q err %v; want an error", ok, payload, err)
		}
	}
	laterChannel := func(t *testing.T, c *Channel, id uint32, raw *pipeConn) {
		go func() {
			for {
				b, err := raw.ReadPacket()
				if err != nil {
					return
				}
				if b[0] == wire.MsgChannelRequest {
					raw.WritePacket((&connmsg.ChannelFailure{Recipient: id}).Marshal())
				}
			}
		}()
		ok, err := c.SendRequest(ctxT(t), "later@rsftp.test", true, nil)
		if ok || err == nil {
			t.Errorf("channel request after the attack: ok %v err %v; want an error", ok, err)
		}
	}

	for _, reply := range [][]byte{(&connmsg.RequestSuccess{Payload: []byte("stale")}).Marshal(), {wire.MsgRequestFailure}} {
		name := connmsg.Name(reply[0])
		t.Run("global-"+name+"-none-pending", func(t *testing.T) {
			m, raw := rawPeer(t, cfg)
			raw.WritePacket(reply)
			mustDie(t, m, raw, "an unsolicited "+name)
			laterGlobal(t, m, raw)
		})
	}

	t.Run("global-reply-to-want-reply-false", func(t *testing.T) {
		m, raw := rawPeer(t, cfg)
		if _, _, err := m.SendRequest(ctxT(t), "no-reply@rsftp.test", false, nil); err != nil {
			t.Fatal(err)
		}
		expect(t, raw, wire.MsgGlobalRequest)
		raw.WritePacket((&connmsg.RequestSuccess{}).Marshal())
		mustDie(t, m, raw, "a reply to a want-reply=false request")
		laterGlobal(t, m, raw)
	})

	t.Run("global-second-reply", func(t *testing.T) {
		m, raw := rawPeer(t, cfg)
		res := make(chan bool, 1)
		go func() {
			ok, _, _ := m.SendRequest(ctxT(t), "once@rsftp.test", true, nil)
			res <- ok
		}()
		expect(t, raw, wire.MsgGlobalRequest)
		raw.WritePacket([]byte{wire.MsgRequestFailure})
		raw.WritePacket((&connmsg.RequestSuccess{}).Marshal())
		if <-res {
			t.Error("the request took the second, unsolicited SUCCESS")
		}
		mustDie(t, m, raw, "a second reply to one request")
		laterGlobal(t, m, raw)
	})

	for _, mk := range []func(uint32) []byte{
		func(id uint32) []byte { return (&connmsg.ChannelSuccess{Recipient: id}).Marshal() },
		func(id uint32) []byte { return (&connmsg.ChannelFailure{Recipient: id}).Marshal() },
	} {
		name := connmsg.Name(mk(0)[0])
		t.Run("channel-"+name+"-none-pending", func(t *testing.T) {
			m, raw := rawPeer(t, cfg)
			c, id := rawOpen(t, m, raw, 1<<20, 1<<15)
			raw.WritePacket(mk(id))
			mustDie(t, m, raw, "an unsolicited "+name)
			laterChannel(t, c, id, raw)
		})
	}

	t.Run("channel-reply-to-want-reply-false", func(t *testing.T) {
		m, raw := rawPeer(t, cfg)
		c, id := rawOpen(t, m, raw, 1<<20, 1<<15)
		if _, err := c.SendRequest(ctxT(t), "env", false, nil); err != nil {
			t.Fatal(err)
		}
		expect(t, raw, wire.MsgChannelRequest)
		raw.WritePacket((&connmsg.ChannelSuccess{Recipient: id}).Marshal())
		mustDie(t, m, raw, "a reply to a want-reply=false channel request")
		laterChannel(t, c, id, raw)
	})

	t.Run("channel-reply-to-the-wrong-channel", func(t *testing.T) {
		// A request is pending on channel 1; SUCCESS arrives for
		// channel 2, which asked nothing. It must not answer channel 1.
		m, raw := rawPeer(t, cfg)
		c1, _ := rawOpen(t, m, raw, 1<<20, 1<<15)
		_, id2 := rawOpen(t, m, raw, 1<<20, 1<<15)
		type result struct {
			ok  bool
			err error
		}
		res := make(chan result, 1)
		go func() {
			ok, err := c1.SendRequest(ctxT(t), "exec", true, wire.AppendString(nil, "true"))
			res <- result{ok, err}
		}()
		expect(t, raw, wire.MsgChannelRequest)
		raw.WritePacket((&connmsg.ChannelSuccess{Recipient: id2}).Marshal())
		mustDie(t, m, raw, "a reply for a channel with no request pending")
		if r := <-res; r.ok || r.err == nil {
			t.Errorf("channel 1's request got ok %v err %v from channel 2's reply", r.ok, r.err)
		}
	})

	t.Run("channel-second-reply", func(t *testing.T) {
		m, raw := rawPeer(t, cfg)
		c, id := rawOpen(t, m, raw, 1<<20, 1<<15)
		res := make(chan bool, 1)
		go func() {
			ok, _ := c.SendRequest(ctxT(t), "exec", true, wire.AppendString(nil, "true"))
			res <- ok
		}()
		expect(t, raw, wire.MsgChannelRequest)
		raw.WritePacket((&connmsg.ChannelFailure{Recipient: id}).Marshal())
		raw.WritePacket((&connmsg.ChannelSuccess{Recipient: id}).Marshal())
		if <-res {
			t.Error("the request took the second, unsolicited SUCCESS")
		}
		mustDie(t, m, raw, "a second reply to one channel request")
		laterChannel(t, c, id, raw)
	})
}

// CVE-2026-39827: channels that are refused, by our handler or by the
// peer, must not stay in the channel table or keep goroutines: a peer
// that opens (or makes us open) channels only to have them refused
// would otherwise exhaust MaxChannels and memory.
func TestCVE_2026_39827_RejectedChannelsNotLeaked(t *testing.T) {
	const limit = 8
	const n = 5 * limit
	small := &Config{MaxChannels: limit}

	// stillOpens checks that both tables are empty again: limit
	// channels can be open at once (one leaked entry would make the last
	// open fail).
	stillOpens := func(t *testing.T, a, b *Mux) {
		t.Helper()
		var cs []*Channel
		for range limit {
			ca, cb := openPair(t, a, b, "ok")
			cs = append(cs, ca, cb)
		}
		for _, c := range cs {
			c.Close()
		}
	}

	t.Run("our-handler-rejects", func(t *testing.T) {
		ma, mb := muxPair(t, small, small)
		h := mb.HandleChannelOpen("x")
		go func() {
			for nc := range h {
				nc.Reject(Prohibited, "no")
			}
		}()
		base := runtime.NumGoroutine()
		for i := range n {
			_, err := ma.OpenChannel(ctxT(t), "x", nil)
			var oe *OpenError
			if !errors.As(err, &oe) || oe.Reason != Prohibited {
				t.Fatalf("open %d: %v, want a Prohibited refusal", i, err)
			}
		}
		// Concurrent opens, more than the limit at a time.
		var wg sync.WaitGroup
		for range 3 * limit {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ma.OpenChannel(ctxT(t), "x", nil)
			}()
		}
		wg.Wait()
		if a, b := numChans(ma), numChans(mb); a != 0 || b != 0 {
			t.Errorf("after %d refused opens: %d and %d channels in the tables", n, a, b)
		}
		settleGoroutines(t, base)
		stillOpens(t, ma, mb)
	})

	t.Run("unknown-type", func(t *testing.T) {
		ma, mb := muxPair(t, small, small)
		base := runtime.NumGoroutine()
		for i := range n {
			_, err := ma.OpenChannel(ctxT(t), "nobody-handles-this", nil)
			var oe *OpenError
			if !errors.As(err, &oe) || oe.Reason != UnknownChannelType {
				t.Fatalf("open %d: %v", i, err)
			}
		}
		if a, b := numChans(ma), numChans(mb); a != 0 || b != 0 {
			t.Errorf("%d and %d channels left in the tables", a, b)
		}
		settleGoroutines(t, base)
		stillOpens(t, ma, mb)
	})

	t.Run("handler-queue-full", func(t *testing.T) {
		// A handler that does not answer yet: opens past its queue are
		// refused with ResourceShortage; then the queued ones are
		// rejected.
		ma, mb := muxPair(t, nil, nil)
		h := mb.HandleChannelOpen("slow")
		base := runtime.NumGoroutine()
		errs := make(chan error, maxQueuedOpens+limit)
		var wg sync.WaitGroup
		for range maxQueuedOpens + limit {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := ma.OpenChannel(ctxT(t), "slow", nil)
				errs <- err
			}()
		}
		for range limit {
			var oe *OpenError
			if err := <-errs; !errors.As(err, &oe) || oe.Reason != ResourceShortage {
				t.Fatalf("open past the queue: %v, want ResourceShortage", err)
			}
		}
		for range maxQueuedOpens {
			(<-h).Reject(ConnectFailed, "later")
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			var oe *OpenError
			if !errors.As(err, &oe) || oe.Reason != ConnectFailed {
				t.Errorf("queued open: %v, want ConnectFailed", err)
			}
		}
		if a, b := numChans(ma), numChans(mb); a != 0 || b != 0 {
			t.Errorf("%d and %d channels left in the tables", a, b)
		}
		settleGoroutines(t, base)
	})

	t.Run("peer-rejects", func(t *testing.T) {
		m, raw := rawPeer(t, small)
		base := runtime.NumGoroutine()
		go func() {
			for {
				b, err := raw.ReadPacket()
				if err != nil {
					return
				}
				if b[0] == wire.MsgChannelOpen {
					o, _ := connmsg.ParseChannelOpen(b)
					raw.WritePacket((&connmsg.OpenFailure{Recipient: o.Sender, Reason: ResourceShortage, Message: "no"}).Marshal())
				}
			}
		}()
		for i := range n {
			_, err := m.OpenChannel(ctxT(t), "x", nil)
			var oe *OpenError
			if !errors.As(err, &oe) || oe.Reason != ResourceShortage {
				t.Fatalf("open %d: %v", i, err)
			}
		}
		if k := numChans(m); k != 0 {
			t.Errorf("%d channels left in the table after %d refusals", k, n)
		}
		raw.Close()
		<-m.Done()
		settleGoroutines(t, base-1) // the mux's reader has ended too
	})

	t.Run("abandoned-then-rejected-or-confirmed", func(t *testing.T) {
		// The opener gives up before the answer: a refusal that comes
		// later frees the slot, and so does a confirmation (we close
		// the channel at once and the peer closes it too).
		m, raw := rawPeer(t, small)
		base := runtime.NumGoroutine()
		for i := range n {
			ctx, cancel := context.WithCancel(context.Background())
			errc := make(chan error, 1)
			go func() {
				_, err := m.OpenChannel(ctx, "x", nil)
				errc <- err
			}()
			o, err := connmsg.ParseChannelOpen(expect(t, raw, wire.MsgChannelOpen))
			if err != nil {
				t.Fatal(err)
			}
			cancel()
			if err := <-errc; !errors.Is(err, context.Canceled) {
				t.Fatalf("open %d: %v", i, err)
			}
			if i%2 == 0 {
				raw.WritePacket((&connmsg.OpenFailure{Recipient: o.Sender, Reason: ConnectFailed}).Marshal())
			} else {
				raw.WritePacket((&connmsg.OpenConfirm{Recipient: o.Sender, Sender: 1000 + uint32(i), Window: 1 << 16, MaxPacket: 1 << 14}).Marshal())
				cl, err := connmsg.ParseClose(expect(t, raw, wire.MsgChannelClose))
				if err != nil || cl.Recipient != 1000+uint32(i) {
					t.Fatalf("abandoned channel not closed: %+v %v", cl, err)
				}
				raw.WritePacket((&connmsg.Close{Recipient: o.Sender}).Marshal())
			}
			if !alive(t, raw) {
				t.Fatalf("open %d: connection ended: %v", i, m.Wait())
			}
			if k := numChans(m); k != 0 {
				t.Fatalf("after abandoned open %d was answered: %d channels in the table", i, k)
			}
		}
		settleGoroutines(t, base)
	})

	t.Run("session-and-direct-tcpip-refused", func(t *testing.T) {
		ma, mb := muxPair(t, nil, nil)
		sessions := mb.HandleChannelOpen("session")
		tcpip := mb.HandleChannelOpen("direct-tcpip")
		go func() {
			for nc := range sessions {
				nc.Reject(Prohibited, "no shell")
			}
		}()
		go func() {
			for nc := range tcpip {
				host, port, err := nc.DirectTCPIP()
				if err != nil {
					nc.Reject(ConnectFailed, err.Error())
					continue
				}
				ServeDirectTCPIP(context.Background(), nc, host, port)
			}
		}()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := l.Addr().(*net.TCPAddr).Port
		l.Close()
		base := runtime.NumGoroutine()
		for range 20 {
			if _, err := ma.NewSession(ctxT(t)); err == nil {
				t.Fatal("refused session opened")
			}
			if _, err := ma.DialTCP(ctxT(t), "127.0.0.1", dead); err == nil {
				t.Fatal("direct-tcpip to a closed port opened")
			}
		}
		if a, b := numChans(ma), numChans(mb); a != 0 || b != 0 {
			t.Errorf("%d and %d channels left in the tables", a, b)
		}
		settleGoroutines(t, base)
	})
}

// russh CVE-2025-54804: a WINDOW_ADJUST that takes the send window past
// 2^32-1 wrapped around; and a peer may not send more than the window it
// was given. Both are protocol errors: the window keeps its value and the
// excess data is never delivered.
func TestCVE_2025_54804_WindowOverflow(t *testing.T) {
	const max32 = 1<<32 - 1
	t.Run("adjust-up-to-the-limit-then-over", func(t *testing.T) {
		m, raw := rawPeer(t, nil)
		c, id := rawOpen(t, m, raw, 1000, 1<<15)
		raw.WritePacket((&connmsg.WindowAdjust{Recipient: id, Bytes: max32 - 1000}).Marshal())
		if !alive(t, raw) {
			t.Fatalf("an adjust to exactly 2^32-1 ended the connection: %v", m.Wait())
		}
		if _, send := c.Windows(); send != max32 {
			t.Fatalf("send window %d, want %d", send, uint32(max32))
		}
		raw.WritePacket((&connmsg.WindowAdjust{Recipient: id, Bytes: 1}).Marshal())
		if !mustDie(t, m, raw, "an adjust past 2^32-1") {
			return
		}
		if _, send := c.Windows(); send != max32 {
			t.Errorf("send window %d after the refused adjust, want %d (no wraparound)", send, uint32(max32))
		}
	})
	for _, tc := range []struct{ window, adjust uint32 }{
		{1, max32},
		{1 << 31, 1 << 31},
		{max32, 1},
		{max32, max32},
		{12345, max32 - 12344},
	} {
		t.Run(fmt.Sprintf("window-%d-adjust-%d", tc.window, tc.adjust), func(t *testing.T) {
			m, raw := rawPeer(t, nil)
			c, id := rawOpen(t, m, raw, tc.window, 1<<15)
			raw.WritePacket((&connmsg.WindowAdjust{Recipient: id, Bytes: tc.adjust}).Marshal())
			if !mustDie(t, m, raw, "an overflowing adjust") {
				return
			}
			if _, send := c.Windows(); send != tc.window {
				t.Errorf("send window %d, want it unchanged at %d", send, tc.window)
			}
			if _, err := c.Write([]byte("x")); err == nil {
				t.Error("write succeeded on a connection that broke the protocol")
			}
		})
	}

	// Data beyond the receive window we gave. Nothing is read until the
	// end, so we never extend the window.
	type pkt struct {
		ext  bool
		fill byte
		n    int
	}
	for _, tc := range []struct {
		name   string
		window uint32
		pkts   []pkt // the last one goes past the window
	}{
		{"one-byte-over", 2048, []pkt{{false, 'a', 1024}, {false, 'b', 1024}, {false, 'X', 1}}},
		{"packet-over-the-rest", 4096, []pkt{{false, 'a', 3000}, {false, 'X', 2000}}},
		{"stderr-over", 4096, []pkt{{true, 'e', 3000}, {true, 'X', 1097}}},
		{"stderr-after-stdout-filled-it", 2048, []pkt{{false, 'a', 1024}, {true, 'e', 1024}, {true, 'X', 1}}},
	} {
		t.Run("data-"+tc.name, func(t *testing.T) {
			m, raw := rawPeer(t, &Config{WindowSize: tc.window, MaxPacket: min(tc.window, 4096)})
			c, id := rawOpen(t, m, raw, 1<<20, 1<<15)
			var wantOut, wantErr []byte
			for i, p := range tc.pkts {
				data := bytes.Repeat([]byte{p.fill}, p.n)
				raw.WritePacket((&connmsg.Data{Recipient: id, Extended: p.ext, Code: connmsg.ExtendedDataStderr, Data: data}).Marshal())
				if i == len(tc.pkts)-1 {
					break
				}
				if !alive(t, raw) {
					t.Fatalf("data within the window ended the connection: %v", m.Wait())
				}
				if p.ext {
					wantErr = append(wantErr, data...)
				} else {
					wantOut = append(wantOut, data...)
				}
			}
			if !mustDie(t, m, raw, "data beyond the window") {
				return
			}
			out, _ := io.ReadAll(c)
			errOut, _ := io.ReadAll(c.Stderr())
			if !bytes.Equal(out, wantOut) || !bytes.Equal(errOut, wantErr) {
				t.Errorf("delivered %d+%d bytes (stdout has X: %v, stderr has X: %v), want %d+%d and none of the excess",
					len(out), len(errOut), bytes.IndexByte(out, 'X') >= 0, bytes.IndexByte(errOut, 'X') >= 0, len(wantOut), len(wantErr))
			}
		})
	}
}

// CVE-2026-39834: a Channel.Write of more than 4 GiB must go out in
// packets no bigger than the peer's maximum packet, each carrying exactly
// its 32-bit length, with no length truncated to 32 bits on the way
// (which would send a few bytes, or none, and report the rest as sent).
// The peer's 32-bit window and maximum packet must not overflow an int
// either (2^32-1 is negative as a 32-bit int).
func TestCVE_2026_39834_HugeWriteSplit(t *testing.T) {
	t.Run("peer-window-and-packet-2^32-1", func(t *testing.T) {
		m, raw := rawPeer(t, nil)
		c, _ := rawOpen(t, m, raw, 1<<32-1, 1<<32-1)
		src := make([]byte, 3*maxSendPacket+77)
		for i := range src {
			src[i] = byte(i * 7)
		}
		done := inBackground(len(src), func() (int, error) { return c.Write(src) })
		var got []byte
		for len(got) < len(src) {
			d, err := connmsg.ParseData(expect(t, raw, wire.MsgChannelData))
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Data) == 0 || len(d.Data) > maxSendPacket {
				t.Fatalf("data packet of %d bytes (cap %d)", len(d.Data), maxSendPacket)
			}
			got = append(got, d.Data...)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, src) {
			t.Fatal("data differs")
		}
		if _, send := c.Windows(); send != 1<<32-1-uint32(len(src)) {
			t.Errorf("send window %d after %d bytes", send, len(src))
		}
	})

	t.Run("write-over-4GiB", func(t *testing.T) {
		if strconv.IntSize < 64 {
			t.Skip("a slice cannot be longer than 4 GiB here")
		}
		// The peer grants a window of three and a bit packets, so Write
		// sends that much and then blocks until we close the channel: it
		// only ever touches the first window bytes of its argument. That
		// lets a 1 MiB buffer stand for a slice of more than 4 GiB (its
		// header claims the length), so the split is checked on real
		// lengths above 2^32 without allocating them.
		const maxPacket = 32 << 10
		const window = 3*maxPacket + 1000
		buf := make([]byte, 1<<20)
		for i := range buf {
			buf[i] = byte(i*13 + i>>8)
		}
		for _, extra := range []uint64{0, 1, maxPacket - 1, 1 << 32} {
			length := uint64(1)<<32 + extra
			t.Run(strconv.FormatUint(length, 10), func(t *testing.T) {
				m, raw := rawPeer(t, nil)
				c, _ := rawOpen(t, m, raw, window, maxPacket)
				p := buf
				type sliceHeader struct {
					data     unsafe.Pointer
					len, cap int
				}
				h := (*sliceHeader)(unsafe.Pointer(&p))
				h.len, h.cap = int(length), int(length)
				type result struct {
					n   int
					err error
				}
				done := make(chan result, 1)
				go func() {
					n, err := c.Write(p)
					done <- result{n, err}
				}()
				var got []byte
				for len(got) < window {
					d, err := connmsg.ParseData(expect(t, raw, wire.MsgChannelData))
					if err != nil {
						t.Fatal(err)
					}
					if want := min(maxPacket, window-len(got)); len(d.Data) != want {
						t.Fatalf("packet %d of a %d-byte write carries %d bytes, want %d", len(got)/maxPacket, length, len(d.Data), want)
					}
					got = append(got, d.Data...)
				}
				if !bytes.Equal(got, buf[:window]) {
					t.Fatal("data differs")
				}
				select {
				case r := <-done:
					t.Fatalf("Write returned %d, %v with the window used up", r.n, r.err)
				default:
				}
				c.Close()
				r := <-done
				if r.n != window || !errors.Is(r.err, ErrClosed) {
					t.Errorf("Write = %d, %v; want %d, ErrClosed", r.n, r.err, window)
				}
			})
		}
	})
}

package tlsresume

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/resume"
)

// tcpLinkPair is a link over loopback TCP with small socket buffers, and
// the plain TLS server on its other end, which reads only when the test
// does.
func tcpLinkPair(t *testing.T) (*link, *tls.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type accepted struct {
		tc  *tls.Conn
		err error
	}
	acc := make(chan accepted, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			acc <- accepted{nil, err}
			return
		}
		raw.(*net.TCPConn).SetReadBuffer(4 << 10)
		tc := tls.Server(raw, serverTLS(t, Marker))
		acc <- accepted{tc, tc.Handshake()}
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	raw.(*net.TCPConn).SetWriteBuffer(4 << 10)
	conf := clientTLS(t, Marker)
	conf.ServerName = "127.0.0.1"
	bc := &batchConn{Conn: raw}
	tc := tls.Client(bc, conf)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	a := <-acc
	if a.err != nil {
		t.Fatal(a.err)
	}
	l, err := newLink(tc, bc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.Abort()
		a.tc.Close()
	})
	return l, a.tc
}

// TestAckNeverWaits: the reading goroutine writes its ACKs itself
// (link.WritePacketBackground), and must never wait for a connection the
// peer does not read (both ends would wait for each other). ACKs are
// written until the socket holds them back, and more after; every call
// returns, and once the peer reads, it finds the ACKs in order, none
// going backwards, the last one the newest.
func TestAckNeverWaits(t *testing.T) {
	l, peer := tcpLinkPair(t)
	const extra = 100
	last := make(chan uint64, 1)
	go func() {
		n, full := uint64(0), -1
		for full < extra {
			n++
			if err := l.WritePacketBackground((&resume.Ack{Received: n}).Marshal()); err != nil {
				t.Error(err)
				break
			}
			l.bc.mu.Lock()
			if full < 0 && len(l.bc.buf) > 0 {
				full = 0 // the socket held some back: now more on top
			}
			l.bc.mu.Unlock()
			if full >= 0 {
				full++
			}
			if n > 1<<20 {
				t.Error("a million ACKs went out to a peer that does not read")
				break
			}
		}
		last <- n
	}()
	var n uint64
	select {
	case n = <-last:
	case <-time.After(30 * time.Second):
		t.Fatal("WritePacketBackground waited for a peer that does not read")
	}
	peer.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, MaxRecord)
	var got uint64
	for got < n {
		p, err := ReadRecord(peer, buf)
		if err != nil {
			t.Fatalf("after ACK %d of %d: %v", got, n, err)
		}
		a, err := resume.ParseAck(p)
		if err != nil {
			t.Fatalf("after ACK %d: %v", got, err)
		}
		if a.Received <= got {
			t.Fatalf("ACK %d after ACK %d", a.Received, got)
		}
		got = a.Received
	}
}

// TestAckJoinsHeldFrames: an ACK written while a Write holds frames in
// the batch goes with them, after them, when the Write flushes.
func TestAckJoinsHeldFrames(t *testing.T) {
	l, peer := tcpLinkPair(t)
	var h holder
	l.holder.Store(&h)
	f := make([]byte, wire.FrameHeadroom, wire.FrameHeadroom+5+wire.FrameTailroom)
	f = append(f, RecData)
	f = append(f, "held"...)
	h.mu.Lock()
	h.frame = &f[0]
	h.mu.Unlock()
	if err := l.SealFrame(f); err != nil {
		t.Fatal(err)
	}
	if !l.bc.held() {
		t.Fatal("the frame was not held")
	}
	if err := l.WritePacketBackground((&resume.Ack{Received: 7}).Marshal()); err != nil {
		t.Fatal(err)
	}
	if err := l.flushHeld(); err != nil {
		t.Fatal(err)
	}
	peer.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, MaxRecord)
	p, err := ReadRecord(peer, buf)
	if err != nil || p[0] != RecData || string(p[1:]) != "held" {
		t.Fatalf("first record %q, %v; want the held DATA", p, err)
	}
	p, err = ReadRecord(peer, buf)
	if err != nil {
		t.Fatal(err)
	}
	if a, err := resume.ParseAck(p); err != nil || a.Received != 7 {
		t.Fatalf("second record %x (%v): want ACK 7", p, err)
	}
}

// TestBulkBothWaysLoopback: over loopback TCP, both ends write and read
// at once with a retention limit of 1 MiB, so that each writer's progress
// rests on the ACKs the other end's reading writes while its own writer
// may hold the link (link.WritePacketBackground: at once, into a Write's
// batch, or through the writer goroutine). Every byte arrives once and in
// order, with no reconnection.
func TestBulkBothWaysLoopback(t *testing.T) {
	const size = 24 << 20
	cfg := fastCfg()
	cfg.RetentionLimit = 1 << 20
	ln := loopback(t, nil, cfg)
	type result struct {
		c   *Conn
		err error
	}
	srv := make(chan result, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			srv <- result{nil, err}
			return
		}
		c := nc.(*Conn)
		werr := make(chan error, 1)
		go func() { werr <- writeStream(c, 12, size) }()
		rerr := readStream(c, 11, size, false, nil)
		srv <- result{c, errors.Join(rerr, <-werr)}
	}()
	c, err := Dial(testCtx(t), "tcp", ln.Addr().String(), clientTLS(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	werr := make(chan error, 1)
	go func() { werr <- writeStream(c, 11, size) }()
	stuck := time.AfterFunc(60*time.Second, func() { panic(fmt.Sprintf("stuck: client %+v", c.Status())) })
	defer stuck.Stop()
	if err := readStream(c, 12, size, false, nil); err != nil {
		t.Fatalf("client read: %v", err)
	}
	if err := <-werr; err != nil {
		t.Fatalf("client write: %v", err)
	}
	r := <-srv
	if r.err != nil {
		t.Fatalf("server: %v", r.err)
	}
	defer r.c.Close()
	for _, e := range []struct {
		side string
		c    *Conn
	}{{"client", c}, {"server", r.c}} {
		if a := e.c.Status().Stats.Attaches; a != 1 {
			t.Errorf("%s: %d attaches", e.side, a)
		}
	}
}

// TestBatchLeavesAtBatchFrames: the frames a Write holds leave together
// once batchFrames of them are in the batch, in order, and the batch's
// buffer goes back to its pool then: an idle link keeps none.
func TestBatchLeavesAtBatchFrames(t *testing.T) {
	l, peer := tcpLinkPair(t)
	var h holder
	l.holder.Store(&h)
	for i := range batchFrames {
		f := make([]byte, wire.FrameHeadroom, wire.FrameHeadroom+5+wire.FrameTailroom)
		f = append(f, RecData, 'f', byte('0'+i))
		h.mu.Lock()
		h.frame = &f[0]
		h.mu.Unlock()
		if err := l.SealFrame(f); err != nil {
			t.Fatal(err)
		}
		l.bc.mu.Lock()
		held, box := l.bc.batching, l.bc.box
		l.bc.mu.Unlock()
		if last := i == batchFrames-1; held == last || (box == nil) != last {
			t.Fatalf("after frame %d of %d: batch under way %v, buffer taken %v", i+1, batchFrames, held, box != nil)
		}
	}
	h.mu.Lock()
	if h.link == nil {
		t.Error("the holder does not name the link that held its frames")
	}
	h.mu.Unlock()
	peer.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, MaxRecord)
	for i := range batchFrames {
		p, err := ReadRecord(peer, buf)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if want := string([]byte{RecData, 'f', byte('0' + i)}); string(p) != want {
			t.Fatalf("record %d is %q; want %q", i, p, want)
		}
	}
}

// countingConn is a caller's connection type that embeds a *net.TCPConn
// (and with it SyscallConn) and counts what goes through its own Write.
type countingConn struct {
	*net.TCPConn
	mu     sync.Mutex
	writes int
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return c.TCPConn.Write(p)
}

// TestAckThroughCallersWrite: an ACK written at once goes through the
// connection's own Write when the connection is a type of the caller's
// (a DialContext's wrapper), not to the socket's descriptor underneath,
// which would bypass what that Write does.
func TestAckThroughCallersWrite(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	cc := &countingConn{TCPConn: raw.(*net.TCPConn)}
	bc := &batchConn{Conn: cc}
	done, err := bc.flushNow()
	if err != nil || !done {
		t.Fatalf("flushNow of nothing: %v, %v", done, err)
	}
	bc.batch()
	if _, err := bc.Write([]byte("ack")); err != nil {
		t.Fatal(err)
	}
	if done, err := bc.flushNow(); err != nil || done {
		t.Fatalf("flushNow through a wrapper: done %v, %v; want it left for a write that goes through the wrapper", done, err)
	}
	if err := bc.flush(); err != nil {
		t.Fatal(err)
	}
	cc.mu.Lock()
	n := cc.writes
	cc.mu.Unlock()
	if n != 1 {
		t.Fatalf("the wrapper's Write ran %d times; want 1", n)
	}
	peer.SetReadDeadline(time.Now().Add(30 * time.Second))
	got := make([]byte, 3)
	if _, err := io.ReadFull(peer, got); err != nil || string(got) != "ack" {
		t.Fatalf("the peer read %q, %v", got, err)
	}
}

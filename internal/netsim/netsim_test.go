package netsim

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

const srvAddr = "198.18.0.1:22"

// pair returns a network with options opts and the two ends of a
// connection over it.
func pair(t *testing.T, opts ...Option) (*Network, *Conn, *Conn) {
	t.Helper()
	n := New(opts...)
	t.Cleanup(func() { n.Close() })
	ln, err := n.Listen(srvAddr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := n.Dial(ctx, srvAddr)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	return n, c.(*Conn), s.(*Conn)
}

// within runs f in a goroutine and fails the test if it does not return
// within d.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s: did not finish within %v", what, d)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() && errors.Is(err, os.ErrDeadlineExceeded)
}

func TestEchoRTT(t *testing.T) {
	_, c, s := pair(t, WithLatency(10*time.Millisecond))
	go io.Copy(s, s)
	buf := make([]byte, 4)
	for i := range 3 {
		start := time.Now()
		if _, err := c.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatal(err)
		}
		rtt := time.Since(start)
		if string(buf) != "ping" {
			t.Fatalf("echo got %q", buf)
		}
		if rtt < 20*time.Millisecond || rtt >= 200*time.Millisecond {
			t.Errorf("round %d: rtt %v, want in [20ms, 200ms)", i, rtt)
		}
	}
}

func TestDialTakesRoundTrip(t *testing.T) {
	n := New(WithLatency(15 * time.Millisecond))
	defer n.Close()
	if _, err := n.Listen(srvAddr); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c, err := n.Dial(context.Background(), srvAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("dial took %v, want >= 30ms", d)
	}
}

func TestBandwidth(t *testing.T) {
	_, c, s := pair(t, WithBandwidth(10_000_000))
	const size = 2_000_000
	start := time.Now()
	go func() {
		c.Write(make([]byte, size))
		c.Close()
	}()
	got, err := io.Copy(io.Discard, s)
	if err != nil {
		t.Fatal(err)
	}
	el := time.Since(start)
	if got != size {
		t.Fatalf("got %d bytes, want %d", got, size)
	}
	if el < 150*time.Millisecond || el > 10*time.Second {
		t.Errorf("2 MB at 10 MB/s took %v, want >= 150ms", el)
	}
	if st := LinkOf(c).Stats(); st.SentToServer != size || st.DeliveredToServer != size {
		t.Errorf("stats %+v", st)
	}
}

func TestReset(t *testing.T) {
	_, c, s := pair(t, WithLatency(5*time.Millisecond))
	readErr := make(chan error, 1)
	go func() {
		_, err := s.Read(make([]byte, 10))
		readErr <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.Write([]byte("in flight, never delivered"))
	LinkOf(c).Cut(Reset)
	select {
	case err := <-readErr:
		if !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("blocked server read: %v, want ECONNRESET", err)
		}
		var oe *net.OpError
		if !errors.As(err, &oe) {
			t.Errorf("error %T is not a *net.OpError", err)
		}
	case <-time.After(time.Second):
		t.Fatal("blocked read not woken by reset")
	}
	for _, conn := range []*Conn{c, s} {
		if _, err := conn.Write([]byte("x")); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("write after reset: %v", err)
		}
		if _, err := conn.Read(make([]byte, 1)); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("read after reset: %v", err)
		}
	}
	if !LinkOf(s).IsCut() {
		t.Error("IsCut() = false after reset")
	}
	if err := c.Close(); err != nil {
		t.Errorf("close after reset: %v", err)
	}
}

func TestBlackhole(t *testing.T) {
	const bufSize = 64 << 10
	_, c, s := pair(t, WithLatency(2*time.Millisecond), WithBufferSize(bufSize))

	// Data that arrived before the cut stays readable.
	c.Write([]byte("before"))
	time.Sleep(20 * time.Millisecond)
	LinkOf(c).Cut(Blackhole)
	c.Write([]byte("after"))
	buf := make([]byte, 100)
	n, err := s.Read(buf)
	if err != nil || string(buf[:n]) != "before" {
		t.Fatalf("read = %q, %v; want \"before\"", buf[:n], err)
	}

	// Reads time out in both directions.
	for _, conn := range []*Conn{c, s} {
		conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		start := time.Now()
		_, err := conn.Read(buf)
		if !isTimeout(err) {
			t.Fatalf("read on blackholed link: %v, want timeout", err)
		}
		if d := time.Since(start); d < 90*time.Millisecond {
			t.Errorf("read timed out after %v", d)
		}
	}

	// Writes succeed until the in-flight limit, then block.
	var mu sync.Mutex
	total := 0
	done := make(chan error, 1)
	go func() {
		chunk := make([]byte, 4096)
		for range 10 * bufSize / len(chunk) {
			n, err := c.Write(chunk)
			mu.Lock()
			total += n
			mu.Unlock()
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		t.Fatalf("writer finished (err %v) although the link is blackholed", err)
	case <-time.After(300 * time.Millisecond):
	}
	mu.Lock()
	if total > bufSize {
		t.Errorf("wrote %d bytes, more than the %d byte buffer", total, bufSize)
	}
	if total < bufSize/2 {
		t.Errorf("wrote only %d bytes before blocking", total)
	}
	mu.Unlock()
	// Closing the conn unblocks the writer.
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("blocked write after close: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("blocked writer not woken by Close")
	}
	// The FIN is lost too: the server still sees nothing.
	s.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := s.Read(buf); !isTimeout(err) {
		t.Errorf("server read after client close on blackholed link: %v", err)
	}
}

func TestBlackholeWriteDeadline(t *testing.T) {
	_, c, _ := pair(t, WithBufferSize(16<<10))
	LinkOf(c).Cut(Blackhole)
	c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
	var err error
	var n int
	within(t, 5*time.Second, "write with deadline", func() {
		n, err = c.Write(make([]byte, 1<<20))
	})
	if !isTimeout(err) {
		t.Fatalf("write: %v, want timeout", err)
	}
	if n > 16<<10 {
		t.Errorf("wrote %d bytes into a 16 KiB buffer", n)
	}
}

func TestHeal(t *testing.T) {
	_, c, s := pair(t, WithLatency(5*time.Millisecond))
	l := LinkOf(c)
	l.Cut(Blackhole)
	c.Write([]byte("stuck"))
	s.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	buf := make([]byte, 10)
	if _, err := s.Read(buf); !isTimeout(err) {
		t.Fatalf("read while blackholed: %v", err)
	}
	l.Heal()
	if l.IsCut() {
		t.Error("IsCut() after Heal")
	}
	s.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := s.Read(buf)
	if err != nil || string(buf[:n]) != "stuck" {
		t.Fatalf("read after heal = %q, %v", buf[:n], err)
	}
}

func TestCloseWrite(t *testing.T) {
	_, c, s := pair(t, WithLatency(3*time.Millisecond))
	c.Write([]byte("hello "))
	c.Write([]byte("world"))
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte("x")); !errors.Is(err, syscall.EPIPE) {
		t.Errorf("write after CloseWrite: %v, want EPIPE", err)
	}
	got, err := io.ReadAll(s)
	if err != nil || string(got) != "hello world" {
		t.Fatalf("server read %q, %v", got, err)
	}
	if n, err := s.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Errorf("read after EOF: %d, %v", n, err)
	}
	// The other direction still works.
	s.Write([]byte("reply"))
	s.Close()
	got, err = io.ReadAll(c)
	if err != nil || string(got) != "reply" {
		t.Fatalf("client read %q, %v", got, err)
	}
}

func TestCloseDeliversEOF(t *testing.T) {
	_, c, s := pair(t, WithLatency(3*time.Millisecond))
	c.Write([]byte("last words"))
	c.Close()
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
		t.Errorf("read on closed conn: %v", err)
	}
	if err := c.Close(); err == nil {
		t.Error("second Close succeeded")
	}
	got, err := io.ReadAll(s)
	if err != nil || string(got) != "last words" {
		t.Fatalf("read %q, %v", got, err)
	}
	// Writing to a closed peer eventually fails.
	var werr error
	within(t, 5*time.Second, "write to closed peer", func() {
		for werr == nil {
			_, werr = s.Write([]byte("anyone?"))
			time.Sleep(time.Millisecond)
		}
	})
	if !errors.Is(werr, syscall.EPIPE) {
		t.Errorf("write to closed peer: %v, want EPIPE", werr)
	}
}

func TestDialRefused(t *testing.T) {
	n := New()
	defer n.Close()
	_, err := n.Dial(context.Background(), "198.18.0.9:22")
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial unknown: %v, want ECONNREFUSED", err)
	}
	ln, _ := n.Listen(srvAddr)
	ln.Close()
	if _, err := n.Dial(context.Background(), srvAddr); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial closed listener: %v, want ECONNREFUSED", err)
	}
	if _, err := n.Dial(context.Background(), "no port"); err == nil {
		t.Fatal("dial of a malformed address succeeded")
	}
}

func TestPathDown(t *testing.T) {
	n, c, s := pair(t, WithLatency(time.Millisecond))
	n.SetPathDown(true)

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	start := time.Now()
	_, err := n.Dial(ctx, srvAddr)
	cancel()
	if !errors.Is(err, ErrUnreachable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial while down: %v, want ErrUnreachable and DeadlineExceeded", err)
	}
	if d := time.Since(start); d < 90*time.Millisecond {
		t.Errorf("dial failed after %v, before its context expired", d)
	}

	// Existing connections are unaffected.
	go io.Copy(s, s)
	c.Write([]byte("ok"))
	buf := make([]byte, 2)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("existing conn while path down: %v", err)
	}

	n.SetPathDown(false)
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c2, err := n.Dial(ctx, srvAddr)
	if err != nil {
		t.Fatalf("dial after path up: %v", err)
	}
	c2.Close()

	// A dial waiting for the path succeeds when it comes back.
	n.SetPathDown(true)
	go func() {
		time.Sleep(50 * time.Millisecond)
		n.SetPathDown(false)
	}()
	c3, err := n.Dial(ctx, srvAddr)
	if err != nil {
		t.Fatalf("dial across path recovery: %v", err)
	}
	c3.Close()
}

func TestPathDownFailFast(t *testing.T) {
	n := New(WithFailFast())
	defer n.Close()
	n.Listen(srvAddr)
	n.SetPathDown(true)
	start := time.Now()
	_, err := n.Dial(context.Background(), srvAddr)
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("dial: %v, want ErrUnreachable", err)
	}
	var oe *net.OpError
	if !errors.As(err, &oe) || oe.Op != "dial" {
		t.Errorf("error %#v is not a dial *net.OpError", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("fail-fast dial took %v", d)
	}
}

func TestLargeStreamSHA256(t *testing.T) {
	const size = 64 << 20
	_, c, s := pair(t, WithLatency(time.Millisecond))
	want := sha256.New()
	sendErr := make(chan error, 1)
	go func() {
		src := io.LimitReader(rand.NewChaCha8([32]byte{1, 2, 3}), size)
		_, err := io.Copy(c, io.TeeReader(src, want))
		if err == nil {
			err = c.CloseWrite()
		}
		sendErr <- err
	}()
	got := sha256.New()
	n, err := io.Copy(got, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-sendErr; err != nil {
		t.Fatal(err)
	}
	if n != size {
		t.Fatalf("received %d bytes, want %d", n, size)
	}
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatal("SHA-256 mismatch")
	}
	if st := LinkOf(s).Stats(); st.DeliveredToServer != size {
		t.Errorf("stats %+v", st)
	}
}

func TestDeadlines(t *testing.T) {
	_, c, s := pair(t, WithBufferSize(8<<10))
	buf := make([]byte, 10)

	// A deadline in the past fails at once.
	c.SetReadDeadline(time.Now().Add(-time.Second))
	if _, err := c.Read(buf); !isTimeout(err) {
		t.Fatalf("read with past deadline: %v", err)
	}

	// A deadline set while a Read is blocked wakes it.
	c.SetReadDeadline(time.Time{})
	errc := make(chan error, 1)
	go func() {
		_, err := c.Read(buf)
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.SetDeadline(time.Now())
	select {
	case err := <-errc:
		if !isTimeout(err) {
			t.Fatalf("blocked read: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("SetDeadline did not wake a blocked Read")
	}

	// Clearing the deadline makes the conn usable again.
	c.SetDeadline(time.Time{})
	s.Write([]byte("data"))
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "data" {
		t.Fatalf("read after clearing deadline: %q, %v", buf[:n], err)
	}

	// A Write blocked on a full buffer times out.
	c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	var err error
	within(t, 5*time.Second, "blocked write", func() {
		_, err = c.Write(make([]byte, 64<<10))
	})
	if !isTimeout(err) {
		t.Fatalf("write on full buffer: %v", err)
	}
	// After the reader drains, writes proceed.
	c.SetWriteDeadline(time.Time{})
	go io.Copy(io.Discard, s)
	within(t, 5*time.Second, "write after drain", func() {
		_, err = c.Write(make([]byte, 64<<10))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCutAllAndLinks(t *testing.T) {
	n := New()
	defer n.Close()
	ln, _ := n.Listen(srvAddr)
	var conns []net.Conn
	for range 3 {
		c, err := n.Dial(context.Background(), srvAddr)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := ln.Accept()
		conns = append(conns, c, s)
	}
	if got := len(n.Links()); got != 3 {
		t.Fatalf("Links() has %d links, want 3", got)
	}
	if LinkOf(conns[0]) != n.Links()[0] || LinkOf(conns[1]) != LinkOf(conns[0]) {
		t.Error("LinkOf does not match Links()")
	}
	n.CutAll(Reset)
	for _, c := range conns {
		if _, err := c.Write([]byte("x")); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("write after CutAll: %v", err)
		}
		c.Close()
	}
	if got := len(n.Links()); got != 0 {
		t.Errorf("Links() has %d links after closing all, want 0", got)
	}
	if LinkOf(nil) != nil {
		t.Error("LinkOf(nil) != nil")
	}
}

func TestNetworkClose(t *testing.T) {
	n, c, s := pair(t)
	ln, err := n.Listen("198.18.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	acceptErr := make(chan error, 1)
	go func() {
		_, err := ln.Accept()
		acceptErr <- err
	}()
	readErr := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 1))
		readErr <- err
	}()
	time.Sleep(10 * time.Millisecond)
	n.Close()
	for _, ch := range []chan error{acceptErr, readErr} {
		select {
		case err := <-ch:
			if !errors.Is(err, net.ErrClosed) {
				t.Errorf("after network close: %v", err)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("blocked call not woken by Network.Close")
		}
	}
	if _, err := s.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write after network close: %v", err)
	}
	if _, err := n.Dial(context.Background(), srvAddr); err == nil {
		t.Error("dial on closed network succeeded")
	}
	if _, err := n.Listen("198.18.0.3:1"); err == nil {
		t.Error("listen on closed network succeeded")
	}
}

func TestListenAndAddrs(t *testing.T) {
	n := New()
	defer n.Close()
	ln, err := n.Listen(srvAddr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Listen(srvAddr); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("duplicate listen: %v, want EADDRINUSE", err)
	}
	if _, err := n.Listen("missing-port"); err == nil {
		t.Error("listen without port succeeded")
	}
	if ta, ok := ln.Addr().(*net.TCPAddr); !ok || ta.String() != srvAddr {
		t.Errorf("listener addr %#v", ln.Addr())
	}
	named, err := n.Listen("server.example:2222")
	if err != nil {
		t.Fatal(err)
	}
	if named.Addr().String() != "server.example:2222" || named.Addr().Network() != "tcp" {
		t.Errorf("named addr %v", named.Addr())
	}

	c, err := n.DialFrom(context.Background(), "10.1.2.3:5000", srvAddr)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := ln.Accept()
	if c.LocalAddr().String() != "10.1.2.3:5000" || s.RemoteAddr().String() != "10.1.2.3:5000" {
		t.Errorf("addrs: client local %v, server remote %v", c.LocalAddr(), s.RemoteAddr())
	}
	if c.RemoteAddr().String() != srvAddr || s.LocalAddr().String() != srvAddr {
		t.Errorf("addrs: client remote %v, server local %v", c.RemoteAddr(), s.LocalAddr())
	}
	c2, _ := n.Dial(context.Background(), srvAddr)
	if c2.LocalAddr().String() == c.LocalAddr().String() {
		t.Error("two dials share a local address")
	}
}

func TestLinkConfig(t *testing.T) {
	n, c, s := pair(t)
	l := LinkOf(c)
	if got := l.Config(); got != (LinkConfig{}) {
		t.Errorf("default config %+v", got)
	}
	l.SetLatency(30 * time.Millisecond)
	l.SetBandwidth(1 << 30)
	start := time.Now()
	c.Write([]byte("slow"))
	if _, err := io.ReadFull(s, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("one-way delay %v after SetLatency(30ms)", d)
	}
	n.SetDefaults(LinkConfig{Latency: 7 * time.Millisecond})
	if got := n.Defaults().Latency; got != 7*time.Millisecond {
		t.Errorf("Defaults().Latency = %v", got)
	}
	if l.Config().Latency != 30*time.Millisecond {
		t.Error("SetDefaults changed an existing link")
	}
	if l.Client() != c || l.Server() != s || c.Link() != l {
		t.Error("link ends do not match")
	}
}

// TestConcurrentTraffic exercises both directions at once, for the race
// detector.
func TestConcurrentTraffic(t *testing.T) {
	_, c, s := pair(t, WithLatency(time.Millisecond), WithBufferSize(32<<10))
	const size = 2 << 20
	var wg sync.WaitGroup
	for _, conn := range []*Conn{c, s} {
		wg.Add(2)
		go func() {
			defer wg.Done()
			data := bytes.Repeat([]byte{0xa5}, 1000)
			for sent := 0; sent < size; sent += len(data) {
				if _, err := conn.Write(data[:min(len(data), size-sent)]); err != nil {
					t.Error(err)
					return
				}
			}
			conn.CloseWrite()
		}()
		go func() {
			defer wg.Done()
			n, err := io.Copy(io.Discard, conn)
			if err != nil || n != size {
				t.Errorf("received %d, %v", n, err)
			}
		}()
	}
	within(t, 60*time.Second, "bidirectional transfer", wg.Wait)
}

func ExampleLink_Cut() {
	n := New(WithLatency(time.Millisecond))
	defer n.Close()
	ln, _ := n.Listen("198.18.0.1:22")
	go func() {
		c, _ := ln.Accept()
		io.Copy(io.Discard, c)
	}()
	c, _ := n.Dial(context.Background(), "198.18.0.1:22")

	// Half of the transfer is sent, then the link dies.
	c.Write(make([]byte, 1<<20))
	LinkOf(c).Cut(Reset)
	_, err := c.Write(make([]byte, 1<<20))
	fmt.Println(errors.Is(err, syscall.ECONNRESET))

	// The path is still up: the client can dial again and resume.
	c2, err := n.Dial(context.Background(), "198.18.0.1:22")
	fmt.Println(err == nil)
	c2.Close()
	// Output:
	// true
	// true
}

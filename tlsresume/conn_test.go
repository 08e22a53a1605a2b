package tlsresume

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/netsim"
	"github.com/rsftp/rsftp/resume"
)

// pattern is byte i of a test stream: a sequence whose every offset
// differs from its neighbours', so that a lost, repeated or reordered
// record shows.
func pattern(seed, i uint64) byte {
	x := (i + seed*0x9e3779b97f4a7c15) * 0xbf58476d1ce4e5b9
	return byte(x>>56) ^ byte(i>>15)
}

func fill(b []byte, seed, off uint64) {
	for i := range b {
		b[i] = pattern(seed, off+uint64(i))
	}
}

// writeStream writes n bytes of stream seed in pieces of odd sizes.
func writeStream(w io.Writer, seed uint64, n int) error {
	buf := make([]byte, 50000)
	off := 0
	for off < n {
		k := min(n-off, 1+(off*31)%len(buf))
		fill(buf[:k], seed, uint64(off))
		if _, err := w.Write(buf[:k]); err != nil {
			return fmt.Errorf("writing at %d: %w", off, err)
		}
		off += k
	}
	return nil
}

// readStream reads n bytes of stream seed and checks them; with eof it
// then reads to EOF, which must come at once. progress, if set, is told
// the count as it grows.
func readStream(r io.Reader, seed uint64, n int, eof bool, progress func(int)) error {
	buf := make([]byte, 40000)
	want := make([]byte, len(buf))
	off := 0
	for {
		if off == n && !eof {
			return nil
		}
		k, err := r.Read(buf)
		if k > 0 {
			if off+k > n {
				return fmt.Errorf("stream longer than %d bytes (read %d)", n, off+k)
			}
			fill(want[:k], seed, uint64(off))
			if !bytes.Equal(buf[:k], want[:k]) {
				i := 0
				for buf[i] == want[i] {
					i++
				}
				return fmt.Errorf("stream differs at byte %d", off+i)
			}
			off += k
			if progress != nil {
				progress(off)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading at %d: %w", off, err)
		}
	}
	if off != n {
		return fmt.Errorf("stream of %d bytes, want %d", off, n)
	}
	return nil
}

func loopback(t testing.TB, serverProtos []string, cfg *Config) *Listener {
	t.Helper()
	ln, err := Listen("tcp", "127.0.0.1:0", serverTLS(t, serverProtos...), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func TestEchoAndALPN(t *testing.T) {
	for _, tc := range []struct {
		name           string
		server, client []string
		want           string
	}{
		{"none", nil, nil, ""},
		{"same", []string{"x"}, []string{"x"}, "x"},
		{"server order", []string{"b", "a"}, []string{"a", "b"}, "b"},
		{"client none", []string{"x"}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ln := loopback(t, tc.server, nil)
			go func() {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				io.Copy(c, c)
			}()
			c, err := Dial(testCtx(t), "tcp", ln.Addr().String(), clientTLS(t, tc.client...), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if !c.Resumable() {
				t.Fatal("not resumable against our listener")
			}
			st := c.ConnectionState()
			if st.NegotiatedProtocol != tc.want || st.Version != tls.VersionTLS13 {
				t.Fatalf("protocol %q version %x, want %q and TLS 1.3", st.NegotiatedProtocol, st.Version, tc.want)
			}
			msg := []byte("hello over a resumable connection")
			if _, err := c.Write(msg); err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(msg))
			if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("echo %q, %v", got, err)
			}
		})
	}
}

// TestClientTLS12Plain: a client limited to TLS 1.2 offers the
// application's protocols only and gets plain TLS.
func TestClientTLS12Plain(t *testing.T) {
	ln := loopback(t, []string{"x"}, nil)
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
			io.Copy(c, c)
		}
	}()
	conf := clientTLS(t, "x")
	conf.MaxVersion = tls.VersionTLS12
	c, err := Dial(testCtx(t), "tcp", ln.Addr().String(), conf, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Resumable() || c.ConnectionState().NegotiatedProtocol != "x" {
		t.Fatalf("resumable %v, protocol %q", c.Resumable(), c.ConnectionState().NegotiatedProtocol)
	}
	if _, ok := (<-accepted).(*tls.Conn); !ok {
		t.Fatal("the listener did not hand over a *tls.Conn")
	}
}

// TestStockClientGetsPlainTLS: crypto/tls's own client against the
// listener: Accept returns a *tls.Conn with the application's protocol.
func TestStockClientGetsPlainTLS(t *testing.T) {
	ln := loopback(t, []string{"h2", "x"}, nil)
	got := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			got <- c
			io.Copy(c, c)
			c.Close()
		}
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), clientTLS(t, "x"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := c.ConnectionState().NegotiatedProtocol; p != "x" {
		t.Fatalf("stock client negotiated %q", p)
	}
	sc := <-got
	if tc, ok := sc.(*tls.Conn); !ok || tc.ConnectionState().NegotiatedProtocol != "x" {
		t.Fatalf("Accept returned %T", sc)
	}
	c.Write([]byte("ping"))
	b := make([]byte, 4)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "ping" {
		t.Fatalf("echo %q %v", b, err)
	}
}

// TestAgainstPlainServer: our client against crypto/tls's server works as
// plain TLS.
func TestAgainstPlainServer(t *testing.T) {
	for _, protos := range [][]string{nil, {"x"}} {
		inner, err := tls.Listen("tcp", "127.0.0.1:0", serverTLS(t, protos...))
		if err != nil {
			t.Fatal(err)
		}
		defer inner.Close()
		go func() {
			c, err := inner.Accept()
			if err == nil {
				io.Copy(c, c)
				c.Close()
			}
		}()
		c, err := Dial(testCtx(t), "tcp", inner.Addr().String(), clientTLS(t, protos...), nil)
		if err != nil {
			t.Fatalf("protocols %q: %v", protos, err)
		}
		if c.Resumable() {
			t.Fatal("resumable against a plain server")
		}
		want := ""
		if protos != nil {
			want = "x"
		}
		if p := c.ConnectionState().NegotiatedProtocol; p != want {
			t.Fatalf("protocol %q, want %q", p, want)
		}
		c.Write([]byte("abc"))
		b := make([]byte, 3)
		if _, err := io.ReadFull(c, b); err != nil || string(b) != "abc" {
			t.Fatalf("echo %q %v", b, err)
		}
		c.Close()
	}
}

// simNet is a simulated network with our listener on it.
type simNet struct {
	n    *netsim.Network
	ln   *Listener
	addr string
}

func newSimNet(t testing.TB, cfg *Config, opts ...netsim.Option) *simNet {
	n := netsim.New(opts...)
	t.Cleanup(func() { n.Close() })
	inner, err := n.Listen("198.18.0.1:443")
	if err != nil {
		t.Fatal(err)
	}
	ln := NewListener(inner, serverTLS(t, "bulk"), cfg)
	t.Cleanup(func() { ln.Close() })
	return &simNet{n: n, ln: ln, addr: inner.Addr().String()}
}

func (s *simNet) clientCfg() *Config {
	cfg := fastCfg()
	cfg.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) { return s.n.Dial(ctx, addr) }
	return cfg
}

// cutter cuts every link of the network when the progress passes each
// mark, alternating resets and blackholes.
type cutter struct {
	n     *netsim.Network
	marks []int
	mu    sync.Mutex
	cuts  int
}

func (c *cutter) progress(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cuts < len(c.marks) && n >= c.marks[c.cuts] {
		mode := netsim.Reset
		if c.cuts%2 == 1 {
			mode = netsim.Blackhole
		}
		c.cuts++
		c.n.CutAll(mode)
	}
}

// TestBulkAcrossCuts sends a stream each way at once through the
// simulator while its links are reset and blackholed: each side reads
// the other's stream intact, exactly once, then EOF.
func TestBulkAcrossCuts(t *testing.T) {
	const size = 12 << 20
	var resumed atomic.Int32
	scfg := &Config{Events: func(e resume.Event) {
		if e.Kind == resume.EventResumed {
			resumed.Add(1)
		}
	}}
	s := newSimNet(t, scfg, netsim.WithLatency(2*time.Millisecond), netsim.WithBandwidth(12<<20))
	cut := &cutter{n: s.n, marks: []int{size / 6, 2 * size / 6, 3 * size / 6, 4 * size / 6}}
	srvErr := make(chan error, 1)
	go func() {
		c, err := s.ln.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		defer c.Close()
		if _, ok := c.(*Conn); !ok {
			srvErr <- fmt.Errorf("accepted %T", c)
			return
		}
		werr := make(chan error, 1)
		go func() { werr <- writeStream(c, 2, size) }()
		rerr := readStream(c, 1, size, false, nil)
		srvErr <- errors.Join(rerr, <-werr)
	}()
	c, err := Dial(testCtx(t), "tcp", s.addr, clientTLS(t, "bulk"), s.clientCfg())
	if err != nil {
		t.Fatal(err)
	}
	if !c.Resumable() || c.ConnectionState().NegotiatedProtocol != "bulk" {
		t.Fatalf("resumable %v protocol %q", c.Resumable(), c.ConnectionState().NegotiatedProtocol)
	}
	werr := make(chan error, 1)
	go func() {
		err := writeStream(c, 1, size)
		werr <- err
	}()
	stuck := time.AfterFunc(40*time.Second, func() {
		var srv []resume.Stats
		s.ln.mu.Lock()
		for _, sc := range s.ln.live {
			srv = append(srv, sc.Status().Stats)
		}
		s.ln.mu.Unlock()
		panic(fmt.Sprintf("stuck: client %+v cuts %d; server %+v", c.Status(), cut.cuts, srv))
	})
	defer stuck.Stop()
	// The server closes once it has read ours and written its own; our
	// read then ends with EOF.
	if err := readStream(c, 2, size, true, cut.progress); err != nil {
		t.Fatalf("client read: %v (status %+v)", err, c.Status())
	}
	if err := <-werr; err != nil {
		t.Fatal(err)
	}
	if err := <-srvErr; err != nil {
		t.Fatalf("server: %v", err)
	}
	c.Close()
	st := c.Status()
	// A cut that lands during a reconnection costs an attempt, not an
	// attach: at least half of them made one.
	if cut.cuts != len(cut.marks) || st.Stats.Attaches < 1+len(cut.marks)/2 {
		t.Fatalf("%d cuts, %d attaches", cut.cuts, st.Stats.Attaches)
	}
	if resumed.Load() < int32(st.Stats.Attaches-1) {
		t.Fatalf("server saw %d resumptions", resumed.Load())
	}
	t.Logf("attaches %d, resent %d bytes", st.Stats.Attaches, st.Stats.ResentBytes)
}

// TestStalledReaderKeepsLink: an application that does not read for a
// while (longer than the peer's liveness check) costs no reconnection:
// its Conn keeps the link alive with PONGs and pauses its own check;
// then everything arrives, once. First the server's application stalls,
// then the client's.
func TestStalledReaderKeepsLink(t *testing.T) {
	const size = 8 << 20
	const stall = 1500 * time.Millisecond
	ln := loopback(t, nil, nil)
	srvErr := make(chan error, 1)
	var srv *Conn
	accepted, readDone := make(chan struct{}), make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srvErr <- err
			close(accepted)
			return
		}
		srv = c.(*Conn)
		close(accepted)
		time.Sleep(stall) // not reading while the client writes
		if err := readStream(c, 6, size, false, nil); err != nil {
			srvErr <- err
			return
		}
		close(readDone)
		srvErr <- writeStream(c, 7, size) // while the client does not read
	}()
	cfg := fastCfg()
	c, err := Dial(testCtx(t), "tcp", ln.Addr().String(), clientTLS(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := writeStream(c, 6, size); err != nil {
		t.Fatal(err)
	}
	select {
	case <-readDone:
	case err := <-srvErr:
		t.Fatalf("server: %v", err)
	}
	time.Sleep(stall) // the server writes; we do not read yet
	if err := readStream(c, 7, size, false, nil); err != nil {
		t.Fatal(err)
	}
	if err := <-srvErr; err != nil {
		t.Fatalf("server: %v", err)
	}
	<-accepted
	if a, b := c.Status().Stats.Attaches, srv.Status().Stats.Attaches; a != 1 || b != 1 {
		t.Fatalf("attaches: client %d, server %d; the stalls cost reconnections", a, b)
	}
}

// TestWriteDeadlineRetentionFull: a write that waits for retention room
// (the peer acknowledges nothing: its application does not read) ends at
// its deadline, having written part; once the deadline is cleared the
// rest follows and the peer reads the whole stream once.
func TestWriteDeadlineRetentionFull(t *testing.T) {
	const size = 16 << 20
	ln := loopback(t, nil, nil)
	srvErr := make(chan error, 1)
	release := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		defer c.Close()
		<-release
		srvErr <- readStream(c, 8, size, false, nil)
	}()
	cfg := fastCfg()
	cfg.RetentionLimit = 1 << 20
	c, err := Dial(testCtx(t), "tcp", ln.Addr().String(), clientTLS(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, size)
	fill(buf, 8, 0)
	c.SetWriteDeadline(time.Now().Add(300 * time.Millisecond))
	start := time.Now()
	n, err := c.Write(buf)
	if !errors.Is(err, os.ErrDeadlineExceeded) || n == 0 || n >= size {
		t.Fatalf("Write returned %d, %v after %v; want part written and the deadline", n, err, time.Since(start))
	}
	c.SetWriteDeadline(time.Time{})
	close(release)
	if _, err := c.Write(buf[n:]); err != nil {
		t.Fatal(err)
	}
	if err := <-srvErr; err != nil {
		t.Fatalf("server: %v", err)
	}
	// Not by a reconnection (a held PING goes unanswered too).
	if a := c.Status().Stats.Attaches; a != 1 {
		t.Fatalf("%d attaches", a)
	}
}

// TestHeldFramesSentBeforeWait: a Write's records may wait in the link's
// batch for the next ones (link.SealFrame), but not while the writer
// waits for retention room: with room for one record, each record must
// reach the peer, whose ACK makes room for the next, or the Write never
// ends (or ends by a reconnection, once the liveness check finds PINGs
// unanswered).
func TestHeldFramesSentBeforeWait(t *testing.T) {
	const size = 3 * MaxData
	ln := loopback(t, nil, nil)
	srvErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		defer c.Close()
		srvErr <- readStream(c, 9, size, false, nil)
	}()
	cfg := fastCfg()
	cfg.RetentionLimit = 64 << 10 // one full record
	c, err := Dial(testCtx(t), "tcp", ln.Addr().String(), clientTLS(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, size)
	fill(buf, 9, 0)
	done := make(chan error, 1)
	go func() {
		_, err := c.Write(buf)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("Write stuck: %+v", c.Status())
	}
	if err := <-srvErr; err != nil {
		t.Fatalf("server: %v", err)
	}
	// Not by a reconnection (a held PING goes unanswered too).
	if a := c.Status().Stats.Attaches; a != 1 {
		t.Fatalf("%d attaches", a)
	}
}

// TestReadDeadlineEndsOwnRead: a Read waiting in its own read of the
// connection (no deadline set when it began) returns when another
// goroutine sets a deadline in the past, as net/http's server does to
// its background read after each request, and when the Conn is closed;
// the session goes on, and a later Read gets what comes.
func TestReadDeadlineEndsOwnRead(t *testing.T) {
	ln := loopback(t, nil, nil)
	srvC := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(srvC)
			return
		}
		srvC <- c
	}()
	c, err := Dial(testCtx(t), "tcp", ln.Addr().String(), clientTLS(t), fastCfg())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv := <-srvC
	if srv == nil {
		t.Fatal("no server connection")
	}
	defer srv.Close()
	var slowest time.Duration
	for i := range 20 {
		// A record read first: the reader goroutine then leaves the
		// connection to Read for a while, and the Read below reads for
		// itself.
		if _, err := srv.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			_, err := c.Read(make([]byte, 64<<10))
			done <- err
		}()
		time.Sleep(time.Duration(i%2) * time.Millisecond)
		start := time.Now()
		c.SetReadDeadline(time.Unix(1, 0))
		if err := <-done; !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("Read: %v, want the deadline", err)
		}
		slowest = max(slowest, time.Since(start))
		c.SetReadDeadline(time.Time{})
	}
	t.Logf("the slowest Read returned %v after its deadline was set", slowest)
	if _, err := srv.Write([]byte("after")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := io.ReadFull(c, buf[:5])
	if err != nil || string(buf[:n]) != "after" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	if a := c.Status().Stats.Attaches; a != 1 {
		t.Fatalf("%d attaches: a deadline cost the link", a)
	}
}

package channel

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/rsftp/rsftp/kex"
	"github.com/rsftp/rsftp/transport"
)

// transportPair connects two transport.Conns over loopback TCP.
func transportPair(tb testing.TB, mod func(c, s *transport.Config)) (*transport.Conn, *transport.Conn) {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer l.Close()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	hk, err := kex.NewSigner(priv)
	if err != nil {
		tb.Fatal(err)
	}
	ccfg := &transport.Config{HostKeyCallback: func(kex.PublicKey) error { return nil }}
	scfg := &transport.Config{HostKeys: []kex.Signer{hk}}
	if mod != nil {
		mod(ccfg, scfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var sc *transport.Conn
	var serr error
	done := make(chan struct{})
	go func() {
		defer close(done)
		nc, err := l.Accept()
		if err != nil {
			serr = err
			return
		}
		sc, serr = transport.NewServerConn(ctx, nc, scfg)
	}()
	nc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		tb.Fatal(err)
	}
	cc, cerr := transport.NewClientConn(ctx, nc, ccfg)
	<-done
	if cerr != nil || serr != nil {
		tb.Fatalf("handshake: %v / %v", cerr, serr)
	}
	tb.Cleanup(func() { cc.Close(); sc.Close() })
	return cc, sc
}

// Channel streams in both directions survive many rekeys started by both
// sides (rekeying blocks data writers; the mux must not deadlock).
func TestBidirectionalStreamAcrossRekeys(t *testing.T) {
	cc, sc := transportPair(t, func(c, s *transport.Config) {
		c.RekeyBytes = 512 << 10
		s.RekeyBytes = 700 << 10
	})
	cfg := &Config{WindowSize: 1 << 20, MaxPacket: 32 << 10}
	ma, mb := NewMux(cc, cfg), NewMux(sc, cfg)
	ca, cb := openPair(t, ma, mb, "x")
	const size = 24 << 20
	src := make([]byte, size)
	rand.Read(src)
	want := sha256.Sum256(src)
	var wg sync.WaitGroup
	for _, pair := range [][2]*Channel{{ca, cb}, {cb, ca}} {
		w, r := pair[0], pair[1]
		wg.Add(2)
		go func() {
			defer wg.Done()
			if _, err := w.Write(src); err != nil {
				t.Error(err)
			}
			w.CloseWrite()
		}()
		go func() {
			defer wg.Done()
			h := sha256.New()
			n, err := io.Copy(h, r)
			if err != nil || n != size || [32]byte(h.Sum(nil)) != want {
				t.Errorf("received %d bytes, err %v", n, err)
			}
		}()
	}
	wg.Wait()
	if n := cc.KexCount(); n < 20 {
		t.Errorf("only %d key exchanges", n)
	}
}

// BenchmarkChannelThroughput streams over a transport on loopback with
// different window and packet sizes (the defaults were chosen with it).
func BenchmarkChannelThroughput(b *testing.B) {
	for _, tc := range []struct {
		name           string
		window, packet uint32
	}{
		{"openssh-2M-32K", 2 << 20, 32 << 10},
		{"2M-128K", 2 << 20, 128 << 10},
		{"8M-32K", 8 << 20, 32 << 10},
		{"8M-128K", 8 << 20, 128 << 10},
		{"16M-32K", 16 << 20, 32 << 10},
		{"16M-128K", 16 << 20, 128 << 10},
		{"16M-256K", 16 << 20, 255 << 10},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cc, sc := transportPair(b, nil)
			cfg := &Config{WindowSize: tc.window, MaxPacket: tc.packet}
			ma, mb := NewMux(cc, cfg), NewMux(sc, cfg)
			h := mb.HandleChannelOpen("x")
			acc := make(chan *Channel, 1)
			go func() {
				c, _ := (<-h).Accept()
				acc <- c
			}()
			ca, err := ma.OpenChannel(context.Background(), "x", nil)
			if err != nil {
				b.Fatal(err)
			}
			cb := <-acc
			buf := make([]byte, 1<<20)
			done := make(chan int64)
			go func() {
				n, _ := io.Copy(io.Discard, cb)
				done <- n
			}()
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			for range b.N {
				if _, err := ca.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			ca.CloseWrite()
			<-done
		})
	}
}

// delayPair is an in-memory packet pipe that delivers each packet one-way
// seconds after it was sent: a long fat link with no loss.
func delayPair(oneWay time.Duration) (*pipeConn, *pipeConn) {
	a, b := pipePair()
	delay := func(in <-chan []byte) <-chan []byte {
		out := make(chan []byte, 1<<16)
		type stamped struct {
			p  []byte
			at time.Time
		}
		q := make(chan stamped, 1<<16)
		go func() {
			for p := range in {
				q <- stamped{p, time.Now().Add(oneWay)}
			}
		}()
		go func() {
			for s := range q {
				time.Sleep(time.Until(s.at))
				out <- s.p
			}
		}()
		return out
	}
	a2b, b2a := make(chan []byte, 1<<16), make(chan []byte, 1<<16)
	a.out, b.out = a2b, b2a
	a.in, b.in = delay(b2a), delay(a2b)
	return a, b
}

// BenchmarkChannelWindowOverRTT shows what the window size does on a link
// with 40 ms round trips (the packet pipe delivers without limit
// otherwise): throughput is at most window / RTT.
func BenchmarkChannelWindowOverRTT(b *testing.B) {
	for _, w := range []uint32{2 << 20, 8 << 20, 16 << 20, 64 << 20} {
		b.Run(fmt.Sprintf("window-%dM", w>>20), func(b *testing.B) {
			pa, pb := delayPair(20 * time.Millisecond)
			cfg := &Config{WindowSize: w, MaxPacket: 32 << 10}
			ma, mb := NewMux(PlainConn(pa), cfg), NewMux(PlainConn(pb), cfg)
			defer ma.Close()
			h := mb.HandleChannelOpen("x")
			acc := make(chan *Channel, 1)
			go func() {
				c, _ := (<-h).Accept()
				acc <- c
			}()
			ca, err := ma.OpenChannel(context.Background(), "x", nil)
			if err != nil {
				b.Fatal(err)
			}
			cb := <-acc
			done := make(chan int64)
			go func() {
				n, _ := io.Copy(io.Discard, cb)
				done <- n
			}()
			buf := make([]byte, 1<<20)
			b.SetBytes(int64(len(buf)))
			b.ResetTimer()
			for range b.N {
				if _, err := ca.Write(buf); err != nil {
					b.Fatal(err)
				}
			}
			ca.CloseWrite()
			<-done
		})
	}
}

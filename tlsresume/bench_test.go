package tlsresume

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/netsim"
	"github.com/rsftp/rsftp/resume"
)

const benchChunk = 256 << 10

// benchPair is a server that writes n bytes per request and a client that
// reads them, over loopback TCP.
func benchThroughput(b *testing.B, resumable bool) {
	const perOp = 64 << 20
	var ln net.Listener
	var err error
	if resumable {
		ln, err = Listen("tcp", "127.0.0.1:0", serverTLS(b), nil)
	} else {
		ln, err = tls.Listen("tcp", "127.0.0.1:0", serverTLS(b))
	}
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, benchChunk)
		one := make([]byte, 1)
		for {
			if _, err := io.ReadFull(c, one); err != nil {
				return
			}
			for sent := 0; sent < perOp; sent += len(buf) {
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		}
	}()
	var c net.Conn
	if resumable {
		rc, err := Dial(context.Background(), "tcp", ln.Addr().String(), clientTLS(b), nil)
		if err != nil {
			b.Fatal(err)
		}
		if !rc.Resumable() {
			b.Fatal("not resumable")
		}
		c = rc
	} else {
		c, err = tls.Dial("tcp", ln.Addr().String(), clientTLS(b))
		if err != nil {
			b.Fatal(err)
		}
	}
	defer c.Close()
	buf := make([]byte, benchChunk)
	b.SetBytes(perOp)
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write([]byte{1}); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 0)); err != nil {
			b.Fatal(err)
		}
		for got := 0; got < perOp; {
			n, err := c.Read(buf[:min(len(buf), perOp-got)])
			if err != nil {
				b.Fatal(err)
			}
			got += n
		}
	}
}

// BenchmarkThroughput: 64 MiB from server to client over loopback, plain
// crypto/tls against the resumable mode (scripts/bench-tlsresume.sh runs
// them side by side).
func BenchmarkThroughput(b *testing.B) {
	b.Run("plain", func(b *testing.B) { benchThroughput(b, false) })
	b.Run("resumable", func(b *testing.B) { benchThroughput(b, true) })
}

// BenchmarkReconnect measures, at a 10 ms round trip through the
// simulator, the time from the path's return to the first byte the
// client reads after a blackhole: the client noticed the silence during
// the outage and its dial waits for the path, so what is measured is TCP's
// handshake, TLS's, the resume exchange and the resent data. Reported as
// ms/op and as round trips.
func BenchmarkReconnect(b *testing.B) {
	const rtt = 10 * time.Millisecond
	s := newSimNet(b, nil, netsim.WithLatency(rtt/2))
	go func() {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 1024)
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	cfg := s.clientCfg()
	cfg.AttemptTimeout = time.Minute
	c, err := Dial(context.Background(), "tcp", s.addr, clientTLS(b), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var last atomic.Int64 // when the last read returned (UnixNano)
	go func() {
		buf := make([]byte, 64<<10)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
			last.Store(time.Now().UnixNano())
		}
	}()
	var total time.Duration
	var each []time.Duration
	for range b.N {
		s.n.SetPathDown(true)
		s.n.CutAll(netsim.Blackhole)
		for c.Status().State != resume.Detached {
			time.Sleep(time.Millisecond)
		}
		time.Sleep(50 * time.Millisecond) // the redial waits for the path
		back := time.Now()
		s.n.SetPathDown(false)
		for last.Load() < back.UnixNano() {
			time.Sleep(100 * time.Microsecond)
		}
		d := time.Unix(0, last.Load()).Sub(back)
		total += d
		each = append(each, d)
	}
	b.StopTimer()
	slices.Sort(each)
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/reconnect")
	b.ReportMetric(float64(each[len(each)/2])/float64(rtt), "rtts-median")
	b.ReportMetric(0, "ns/op")
}

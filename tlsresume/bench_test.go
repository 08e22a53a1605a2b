package tlsresume

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/netsim"
	"github.com/rsftp/rsftp/resume"
)

const (
	benchChunk = 256 << 10
	benchPerOp = 64 << 20
)

// Two-process mode (scripts/bench-tlsresume.sh, so that each end can be
// given a core of its own): TestBenchServer serves when
// TLSRESUME_BENCH_SERVE names the mode ("plain" or "resumable") and
// TLSRESUME_BENCH_DIR a directory, where it writes its address and its
// CA certificate; BenchmarkThroughput then connects to the server whose
// directory TLSRESUME_BENCH_DIR names, for the mode it serves, instead of
// starting one in its own process.
const (
	benchServeEnv = "TLSRESUME_BENCH_SERVE"
	benchDirEnv   = "TLSRESUME_BENCH_DIR"
)

// benchServe writes benchPerOp bytes for each byte it reads from c, until
// c ends.
func benchServe(c net.Conn) {
	defer c.Close()
	buf := make([]byte, benchChunk)
	one := make([]byte, 1)
	for {
		if _, err := io.ReadFull(c, one); err != nil {
			return
		}
		for sent := 0; sent < benchPerOp; sent += len(buf) {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	}
}

func benchListen(t testing.TB, resumable bool, tlsConf *tls.Config) net.Listener {
	var ln net.Listener
	var err error
	if resumable {
		ln, err = Listen("tcp", "127.0.0.1:0", tlsConf, &Config{Hold: 10 * time.Second})
	} else {
		ln, err = tls.Listen("tcp", "127.0.0.1:0", tlsConf)
	}
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// TestBenchServer is the server process of the two-process mode: it
// serves each connection it accepts until SIGTERM or SIGINT, then
// returns (so that the resource usage of the whole process can be read
// as it exits). Skipped unless TLSRESUME_BENCH_SERVE is set.
func TestBenchServer(t *testing.T) {
	mode := os.Getenv(benchServeEnv)
	if mode == "" {
		t.Skip(benchServeEnv + " not set (scripts/bench-tlsresume.sh sets it)")
	}
	if mode != "plain" && mode != "resumable" {
		t.Fatalf("%s=%q: plain or resumable", benchServeEnv, mode)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(stop)
	dir := os.Getenv(benchDirEnv)
	ln := benchListen(t, mode == "resumable", serverTLS(t))
	defer ln.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: getPKI(t).caDER})
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), ca, 0o600); err != nil {
		t.Fatal(err)
	}
	// The address last: the client waits for it.
	tmp := filepath.Join(dir, "addr.tmp")
	if err := os.WriteFile(tmp, []byte(mode+" "+ln.Addr().String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "addr")); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go benchServe(c)
		}
	}()
	<-stop
}

// benchServer returns the address of the two-process mode's server and a
// client configuration trusting it, if TLSRESUME_BENCH_DIR is set; it
// waits for the server to start.
func benchServer(b *testing.B, mode string) (addr string, conf *tls.Config, ok bool) {
	dir := os.Getenv(benchDirEnv)
	if dir == "" || os.Getenv(benchServeEnv) != "" {
		return "", nil, false
	}
	var got []byte
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var err error
		if got, err = os.ReadFile(filepath.Join(dir, "addr")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("no server in %s: %v", dir, err)
		}
	}
	m, addr, _ := strings.Cut(string(got), " ")
	if m != mode {
		b.Skipf("the server in %s serves %s", dir, m)
	}
	ca, err := os.ReadFile(filepath.Join(dir, "ca.pem"))
	if err != nil {
		b.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		b.Fatalf("no certificate in %s/ca.pem", dir)
	}
	return addr, &tls.Config{RootCAs: pool}, true
}

// benchThroughput: a server writes benchPerOp bytes for each byte the
// client writes, over loopback TCP; the client reads them.
func benchThroughput(b *testing.B, resumable bool) {
	mode := map[bool]string{false: "plain", true: "resumable"}[resumable]
	addr, conf, external := benchServer(b, mode)
	if !external {
		ln := benchListen(b, resumable, serverTLS(b))
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			benchServe(c)
		}()
		addr, conf = ln.Addr().String(), clientTLS(b)
	}
	var c net.Conn
	if resumable {
		rc, err := Dial(context.Background(), "tcp", addr, conf, &Config{NoNetworkWatch: true})
		if err != nil {
			b.Fatal(err)
		}
		if !rc.Resumable() {
			b.Fatal("not resumable")
		}
		// Closed before the process ends: the server's session ends
		// then, not after its hold time. (The wait for the server's
		// ACK of our EOF, up to resume.IdleAck, is not timed.)
		defer func() {
			b.StopTimer()
			rc.Close()
			<-rc.Done()
		}()
		c = rc
	} else {
		tc, err := tls.Dial("tcp", addr, conf)
		if err != nil {
			b.Fatal(err)
		}
		defer tc.Close()
		c = tc
	}
	buf := make([]byte, benchChunk)
	b.SetBytes(benchPerOp)
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write([]byte{1}); err != nil {
			b.Fatal(err)
		}
		for got := 0; got < benchPerOp; {
			n, err := c.Read(buf[:min(len(buf), benchPerOp-got)])
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

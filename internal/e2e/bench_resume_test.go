package e2e

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/internal/netsim"
	"github.com/rsftp/rsftp/sftp"
)

// BenchmarkResumeReconnect measures a reconnection at 10 ms RTT (5 ms
// each way in the simulator): the link is reset while an exec stream is
// open, a message is written at once, and the clock runs until its echo
// is back. It reports the median of:
//
//	handshake-ms  from the start of the attempt (the link is up at once
//	              after a reset) to the resumed session: TCP connect,
//	              version exchange, key exchange, resume exchange; the
//	              server's first resent or new byte is in the same flight
//	              as its RESUME_ACCEPT
//	cut-to-echo-ms  from the cut to the echo of the message: the above
//	              plus noticing the reset and one more round trip
//
//	go test -run '^$' -bench ResumeReconnect -benchtime 20x ./internal/e2e
func BenchmarkResumeReconnect(b *testing.B) {
	r := newRig(b, time.Hour, nil, netsim.WithLatency(5*time.Millisecond))
	c := r.dial(nil)
	es, err := execEcho(c)
	if err != nil {
		b.Fatal(err)
	}
	msg := []byte("ping after the cut")
	buf := make([]byte, len(msg))
	var handshakes, echoes []float64
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		r.net.CutAll(netsim.Reset)
		if _, err := es.Write(msg); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(es, buf); err != nil {
			b.Fatal(err)
		}
		echoes = append(echoes, float64(time.Since(start).Microseconds())/1000)
		r.waitResumed(i+1, 10*time.Second)
		r.mu.Lock()
		for j := len(r.clientEvents) - 1; j >= 0; j-- {
			if e := r.clientEvents[j]; e.Kind == rsftp.EventResumed {
				handshakes = append(handshakes, float64(e.Handshake.Microseconds())/1000)
				break
			}
		}
		r.mu.Unlock()
	}
	b.StopTimer()
	b.ReportMetric(median(handshakes), "handshake-ms")
	b.ReportMetric(median(echoes), "cut-to-echo-ms")
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkResumeOverhead downloads a file through SFTP on loopback TCP
// with resumption on and off (one process, both ends), alternating the
// two runs so that a noisy machine affects both alike, and reports the
// median rate of each, their ratio, and the share of the bytes spent on
// ACKs (each ACK is one packet of 48 bytes on the wire with
// chacha20-poly1305: 4 length, 1 padding length, 9 payload, 18 padding, 16
// tag). RSFTP_BENCH_MIB sets the file size (default 1024):
//
//	go test -run '^$' -bench ResumeOverhead -benchtime 5x ./internal/e2e
func BenchmarkResumeOverhead(b *testing.B) {
	size := int64(1 << 30)
	if v := os.Getenv("RSFTP_BENCH_MIB"); v != "" {
		n, _ := strconv.Atoi(v)
		size = int64(n) << 20
	}
	const ackWire = 48
	type side struct {
		r     *rig
		c     *rsftp.Client
		rates []float64
	}
	setup := func(on bool) *side {
		r := newRig(b, time.Hour, func(cfg *rsftp.ServerConfig) {
			if !on {
				cfg.Resume = nil
			}
		})
		randomFile(b, filepath.Join(r.root, "big"), size)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		go r.srv.Serve(l)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := rsftp.Dial(ctx, "tcp", l.Addr().String(), r.clientConfig(func(cfg *rsftp.ClientConfig) {
			cfg.Resume.Redial = nil
		}))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		if c.Resumable() != on {
			b.Fatalf("resumable = %v", c.Resumable())
		}
		return &side{r: r, c: c}
	}
	off, on := setup(false), setup(true)
	offSC, onSC := off.r.sftp(off.c), on.r.sftp(on.c)
	get := func(s *side, sc interface {
		Open(string) (*sftp.File, error)
	}) {
		start := time.Now()
		f, err := sc.Open("big")
		if err != nil {
			b.Fatal(err)
		}
		if n, err := f.WriteTo(io.Discard); err != nil || n != size {
			b.Fatal(n, err)
		}
		f.Close()
		s.rates = append(s.rates, float64(size)/time.Since(start).Seconds()/1e6)
	}
	b.SetBytes(2 * size)
	b.ResetTimer()
	for i := range b.N {
		if i%2 == 0 {
			get(off, offSC)
			get(on, onSC)
		} else {
			get(on, onSC)
			get(off, offSC)
		}
	}
	b.StopTimer()
	st := resumeStatus(b, on.c).Stats
	b.ReportMetric(median(off.rates), "off-MB/s")
	b.ReportMetric(median(on.rates), "on-MB/s")
	b.ReportMetric(median(on.rates)/median(off.rates), "on/off")
	b.ReportMetric(float64(st.AcksSent*ackWire)/float64(int64(b.N)*size)*100, "ack-%")
}

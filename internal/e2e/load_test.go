package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/internal/netsim"
)

// The load test: many resumable clients at once, each moving a few MiB
// (half download, half upload) over loopback TCP (or, with
// RSFTP_LOAD_NET=sim or a pace RSFTP_LOAD_BW, the network simulator)
// while its link is cut (reset or blackholed) at random points of its
// transfer.
// Every byte must arrive exactly once and in order, the server's
// retained bytes and the process's heap must stay bounded, and the
// resume latencies are reported. The figures come from BenchmarkLoad.

// loadPattern is the byte stream of client id: a ChaCha8 stream that
// both ends generate, so that a lost, repeated or reordered byte shows as
// a mismatch at its offset.
func loadPattern(id int) *rand.ChaCha8 {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(id)+1)
	copy(seed[8:], "rsftp load test")
	return rand.NewChaCha8(seed)
}

// loadHandler serves "gen ID SIZE" (writes the pattern) and "sink ID
// SIZE" (reads and checks it; exit status 0 only if every byte matched
// and nothing more came).
func loadHandler(ctx context.Context, s *rsftp.ServerSession) int {
	f := strings.Fields(s.Command)
	if len(f) != 3 {
		fmt.Fprintf(s.Channel.Stderr(), "bad command %q\n", s.Command)
		return 2
	}
	id, err1 := strconv.Atoi(f[1])
	size, err2 := strconv.ParseInt(f[2], 10, 64)
	if err1 != nil || err2 != nil {
		fmt.Fprintf(s.Channel.Stderr(), "bad command %q\n", s.Command)
		return 2
	}
	switch f[0] {
	case "gen":
		if _, err := io.CopyN(s.Channel, loadPattern(id), size); err != nil {
			return 1
		}
		return 0
	case "sink":
		n, err := checkPattern(s.Channel, id, size)
		if err != nil {
			fmt.Fprintf(s.Channel.Stderr(), "after %d bytes: %v\n", n, err)
			return 1
		}
		return 0
	}
	return 2
}

// checkPattern reads r to its end and checks that it is exactly the
// first size bytes of id's pattern.
func checkPattern(r io.Reader, id int, size int64) (int64, error) {
	want := loadPattern(id)
	buf := make([]byte, 32<<10)
	exp := make([]byte, 32<<10)
	var n int64
	for {
		k, err := r.Read(buf)
		if k > 0 {
			if n+int64(k) > size {
				return n, fmt.Errorf("%d bytes more than the %d sent", n+int64(k)-size, size)
			}
			want.Read(exp[:k])
			for i := range k {
				if buf[i] != exp[i] {
					return n, fmt.Errorf("byte %d differs (lost, repeated or reordered data)", n+int64(i))
				}
			}
			n += int64(k)
		}
		if err == io.EOF {
			if n != size {
				return n, fmt.Errorf("stream ended at %d of %d bytes", n, size)
			}
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// loadWindow is the channel window of both ends: what a sender may be
// ahead of its reader. Small, so that a cut at a point of the reader's
// progress finds data still to come over the link (with the default 16
// MiB window a whole transfer would be buffered before the cut). Both
// ends keep it as granted (channel.Config.NoAutoGrow): a window grown
// past the transfer's size would let a download arrive whole before the
// cut, which then needs no resumption.
const loadWindow = 256 << 10

type loadConfig struct {
	clients int
	size    int64
	latency time.Duration // one way
	// bandwidth per link and direction, bytes/s (0: as fast as the CPU
	// goes, which saturates it and makes every latency a scheduling
	// delay; a paced run measures the protocol)
	bandwidth int64
	// tcp runs the clients over loopback TCP (cut by an RST or by a
	// client that stops reading and writing) instead of the simulator.
	tcp bool
}

type loadResult struct {
	elapsed           time.Duration
	cuts, resumes     int
	failedAttempts    int
	failures          map[string]int  // failed attempts by error
	handshake         []time.Duration // attempt start to resumed
	offline           []time.Duration // link lost (as the client noticed) to resumed
	outage            []time.Duration // cut to resumed (detection included)
	peakHeap          uint64          // live heap, whole process (clients too)
	peakRetained      int64           // server: bytes retained by all sessions
	peakDetachedBytes int64           // server: bytes retained by detached sessions
	peakDetached      int
}

// loadClient is one client's state.
type loadClient struct {
	id      int
	upload  bool
	cutAt   []int64 // progress offsets at which its link is cut, ascending
	modes   []netsim.CutMode
	cutTime []time.Time
	handle  string
	link    atomic.Pointer[netsim.Link] // over the simulator
	tcp     atomic.Pointer[cutConn]     // over loopback TCP
	mu      sync.Mutex
	events  []rsftp.Event
	cutDone int
}

// progress cuts the current link when the transfer passes the next cut
// point.
func (lc *loadClient) progress(n int64) {
	for lc.cutDone < len(lc.cutAt) && n >= lc.cutAt[lc.cutDone] {
		if l := lc.link.Load(); l != nil {
			l.Cut(lc.modes[lc.cutDone])
		}
		if cc := lc.tcp.Load(); cc != nil {
			cc.cut(lc.modes[lc.cutDone])
		}
		lc.cutTime = append(lc.cutTime, time.Now())
		lc.cutDone++
	}
}

// cutConn is the client's end of a loopback TCP connection that the test
// can cut: Reset closes it with SO_LINGER 0 (the server gets an RST);
// Blackhole makes it deliver and send nothing more, as if the client's
// network had vanished: the server's writes fill the socket buffers and
// block, and both sides hear nothing until their liveness checks give up
// (or, on the client, a deadline passes, as on a real dead link).
type cutConn struct {
	*net.TCPConn
	frozen    atomic.Bool
	closed    chan struct{}
	closeOnce sync.Once
	rdl, wdl  atomic.Int64 // deadlines, Unix nanoseconds (0: none)
}

func newCutConn(nc net.Conn) *cutConn {
	return &cutConn{TCPConn: nc.(*net.TCPConn), closed: make(chan struct{})}
}

func (c *cutConn) cut(mode netsim.CutMode) {
	if mode == netsim.Reset {
		c.TCPConn.SetLinger(0)
		c.Close()
		return
	}
	c.frozen.Store(true)
}

// dead blocks as a dead link does: until the connection is closed or the
// deadline in dl passes.
func (c *cutConn) dead(dl *atomic.Int64) error {
	for {
		if d := dl.Load(); d != 0 && time.Now().UnixNano() >= d {
			return os.ErrDeadlineExceeded
		}
		select {
		case <-c.closed:
			return net.ErrClosed
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (c *cutConn) Read(b []byte) (int, error) {
	if c.frozen.Load() {
		return 0, c.dead(&c.rdl)
	}
	n, err := c.TCPConn.Read(b)
	if c.frozen.Load() {
		return 0, c.dead(&c.rdl) // what arrived is lost with the link
	}
	return n, err
}

func (c *cutConn) Write(b []byte) (int, error) {
	if c.frozen.Load() {
		return 0, c.dead(&c.wdl)
	}
	return c.TCPConn.Write(b)
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func (c *cutConn) SetDeadline(t time.Time) error {
	c.rdl.Store(unixNano(t))
	c.wdl.Store(unixNano(t))
	return c.TCPConn.SetDeadline(t)
}

func (c *cutConn) SetReadDeadline(t time.Time) error {
	c.rdl.Store(unixNano(t))
	return c.TCPConn.SetReadDeadline(t)
}

func (c *cutConn) SetWriteDeadline(t time.Time) error {
	c.wdl.Store(unixNano(t))
	return c.TCPConn.SetWriteDeadline(t)
}

func (c *cutConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.TCPConn.Close()
}

type progressReader2 struct {
	r  io.Reader
	n  int64
	lc *loadClient
}

func (p *progressReader2) Read(b []byte) (int, error) {
	k, err := p.r.Read(b)
	p.n += int64(k)
	p.lc.progress(p.n)
	return k, err
}

func runLoad(t testing.TB, lc loadConfig) loadResult {
	t.Helper()
	// The server's events per session, to explain a failed client.
	var closedMu sync.Mutex
	history := map[string][]string{}
	r := newRig(t, 5*time.Minute, func(cfg *rsftp.ServerConfig) {
		cfg.Exec = loadHandler
		cfg.MaxUnauthConns = lc.clients + 16
		cfg.Resume.MaxDetachedPerUser = 4
		identityByUser(cfg) // user0 ... user499 share one key
		cfg.Resume.MaxRetainedBytes = 256 << 20
		cfg.Resume.IdleTimeout = 30 * time.Second
		cfg.Resume.Events = func(e rsftp.Event) {
			closedMu.Lock()
			history[e.Session] = append(history[e.Session], fmt.Sprintf("%s %s %v", e.Time.Format("15:04:05.000"), e.Kind, e.Err))
			closedMu.Unlock()
		}
		cfg.Channel.WindowSize = loadWindow
		cfg.Channel.NoAutoGrow = true
	}, netsim.WithLatency(lc.latency), netsim.WithBandwidth(lc.bandwidth))

	rng := rand.New(rand.NewPCG(1, 2))
	clients := make([]*loadClient, lc.clients)
	for i := range clients {
		c := &loadClient{id: i, upload: i%2 == 1}
		for range 1 + rng.IntN(3) {
			c.cutAt = append(c.cutAt, rng.Int64N(max(lc.size-2*loadWindow, 1)))
			mode := []netsim.CutMode{netsim.Reset, netsim.Blackhole}[rng.IntN(2)]
			switch os.Getenv("RSFTP_LOAD_CUT") {
			case "reset":
				mode = netsim.Reset
			case "blackhole":
				mode = netsim.Blackhole
			}
			c.modes = append(c.modes, mode)
		}
		slices.Sort(c.cutAt)
		clients[i] = c
	}

	// Samplers: the server's retained bytes and the process's live heap.
	var res loadResult
	var smu sync.Mutex
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			st := r.srv.ResumeStats()
			metrics.Read(s)
			smu.Lock()
			res.peakRetained = max(res.peakRetained, st.RetainedBytes)
			res.peakDetachedBytes = max(res.peakDetachedBytes, st.DetachedRetainedBytes)
			res.peakDetached = max(res.peakDetached, st.Detached)
			if s[0].Value.Kind() == metrics.KindUint64 {
				res.peakHeap = max(res.peakHeap, s[0].Value.Uint64())
			}
			smu.Unlock()
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()

	var tcpAddr string
	if lc.tcp {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go r.srv.Serve(l)
		tcpAddr = l.Addr().String()
	}

	start := time.Now()
	errs := make(chan error, lc.clients)
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := runLoadClient(r, tcpAddr, c, lc.size); err != nil {
				closedMu.Lock()
				h := history[c.handle]
				closedMu.Unlock()
				c.mu.Lock()
				var ce []string
				for _, e := range c.events {
					ce = append(ce, fmt.Sprintf("%s %s %d %v", e.Time.Format("15:04:05.000"), e.Kind, e.Attempt, e.Err))
				}
				c.mu.Unlock()
				errs <- fmt.Errorf("client %d (upload %v, cut at %v bytes): %w\n  server events: %s\n  client events: %s",
					c.id, c.upload, c.cutAt[:c.cutDone], err, strings.Join(h, "\n    "), strings.Join(ce, "\n    "))
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	close(stop)
	<-sampled
	close(errs)
	n := 0
	for err := range errs {
		if n < 10 {
			t.Error(err)
		}
		n++
	}
	if n > 0 {
		t.Fatalf("%d of %d clients failed", n, lc.clients)
	}
	for _, c := range clients {
		resumed := 0
		c.mu.Lock()
		events := slices.Clone(c.events)
		c.mu.Unlock()
		for _, e := range events {
			switch e.Kind {
			case rsftp.EventResumed:
				resumed++
				res.handshake = append(res.handshake, e.Handshake)
				res.offline = append(res.offline, e.Offline)
			case rsftp.EventResumeFailed:
				res.failedAttempts++
				if e.Err != nil {
					msg := e.Err.Error()
					if i := strings.Index(msg, "198."); i >= 0 {
						msg = msg[:i] // addresses differ
					}
					if res.failures == nil {
						res.failures = map[string]int{}
					}
					res.failures[msg]++
				}
			}
		}
		// The outage of a cut: until the first resumption after it.
		for _, tc := range c.cutTime {
			for _, e := range events {
				if e.Kind == rsftp.EventResumed && e.Time.After(tc) {
					res.outage = append(res.outage, e.Time.Sub(tc))
					break
				}
			}
		}
		res.cuts += c.cutDone
		res.resumes += resumed
		// Each cut hits a live link mid-transfer (the client waits for
		// its exit status afterwards), so each needs a resumption; two
		// cuts close together may share one.
		if c.cutDone > 0 && resumed == 0 {
			t.Errorf("client %d: link cut %d times, never resumed", c.id, c.cutDone)
		}
	}
	slices.Sort(res.handshake)
	slices.Sort(res.offline)
	slices.Sort(res.outage)
	return res
}

func runLoadClient(r *rig, tcpAddr string, c *loadClient, size int64) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dial := func(ctx context.Context) (net.Conn, error) {
		if tcpAddr != "" {
			var d net.Dialer
			nc, err := d.DialContext(ctx, "tcp", tcpAddr)
			if err != nil {
				return nil, err
			}
			cc := newCutConn(nc)
			c.tcp.Store(cc)
			return cc, nil
		}
		nc, err := r.net.Dial(ctx, r.addr)
		if err == nil {
			c.link.Store(netsim.LinkOf(nc))
		}
		return nc, err
	}
	cfg := r.clientConfig(func(cfg *rsftp.ClientConfig) {
		cfg.User = fmt.Sprintf("user%d", c.id)
		cfg.Channel.WindowSize = loadWindow
		cfg.Channel.NoAutoGrow = true
		cfg.Resume.Redial = dial
		// Generous: 2 cores run hundreds of clients, and a client
		// starved of CPU must not take itself for a dead link.
		cfg.Resume.AliveInterval = 250 * time.Millisecond
		cfg.Resume.AliveCountMax = 4
		cfg.Resume.AttemptTimeout = 10 * time.Second
		cfg.Resume.MaxBackoff = time.Second
		cfg.Resume.Events = func(e rsftp.Event) {
			c.mu.Lock()
			c.events = append(c.events, e)
			c.mu.Unlock()
		}
	})
	var nc net.Conn
	var err error
	// The server admits a bounded number of unauthenticated connections;
	// with hundreds dialing at once a few are turned away. Retry those.
	var cl *rsftp.Client
	for attempt := 0; ; attempt++ {
		if nc, err = dial(ctx); err != nil {
			return err
		}
		cl, err = rsftp.NewClient(ctx, nc, r.addr, cfg)
		if err == nil {
			break
		}
		if attempt == 5 {
			return fmt.Errorf("connecting: %w", err)
		}
		time.Sleep(time.Duration(attempt+1) * 50 * time.Millisecond)
	}
	defer cl.Close()
	if rs, ok := cl.ResumeStatus(); ok {
		c.handle = rs.Session
	}
	sess, err := cl.NewSession(ctx)
	if err != nil {
		return fmt.Errorf("session: %w", err)
	}
	var stderr strings.Builder
	stderrDone := make(chan struct{})
	go func() {
		io.Copy(&stderr, sess.Stderr())
		close(stderrDone)
	}()
	if c.upload {
		stdin := sess.Stdin()
		if err := sess.Exec(ctx, fmt.Sprintf("sink %d %d", c.id, size)); err != nil {
			return fmt.Errorf("exec: %w", err)
		}
		pr := &progressReader2{r: io.LimitReader(loadPattern(c.id), size), lc: c}
		if _, err := io.Copy(stdin, pr); err != nil {
			return fmt.Errorf("upload: %w", err)
		}
		if err := stdin.Close(); err != nil {
			return fmt.Errorf("upload: closing stdin: %w", err)
		}
		go io.Copy(io.Discard, sess.Stdout())
	} else {
		stdout := sess.Stdout()
		if err := sess.Exec(ctx, fmt.Sprintf("gen %d %d", c.id, size)); err != nil {
			return fmt.Errorf("exec: %w", err)
		}
		if n, err := checkPattern(&progressReader2{r: stdout, lc: c}, c.id, size); err != nil {
			return fmt.Errorf("download, after %d bytes: %w", n, err)
		}
	}
	err = sess.Wait()
	<-stderrDone
	if err != nil {
		return fmt.Errorf("exit: %w (server said %q)", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

func loadFromEnv(t testing.TB) loadConfig {
	lc := loadConfig{clients: 500, size: 4 << 20, latency: time.Millisecond, tcp: os.Getenv("RSFTP_LOAD_NET") != "sim"}
	if testing.Short() {
		lc.clients, lc.size = 50, 1<<20
	}
	if v, err := strconv.Atoi(os.Getenv("RSFTP_LOAD_CLIENTS")); err == nil && v > 0 {
		lc.clients = v
	}
	if v, err := strconv.ParseInt(os.Getenv("RSFTP_LOAD_BW"), 10, 64); err == nil && v > 0 {
		lc.bandwidth = v
		lc.tcp = false // pacing needs the simulator
	}
	if v, err := strconv.Atoi(os.Getenv("RSFTP_LOAD_KIB")); err == nil && v > 0 {
		lc.size = int64(v) << 10
	}
	return lc
}

// loadHeapBound is what the whole process (server and all clients) may
// hold at its peak: a base plus 3 MiB per client pair, for the
// transport's write buffers (up to 1 MiB a side on a slow link), the
// channel windows, the in-flight data of its simulated link and what
// each side keeps for resending. 500 sessions that retained their whole
// 4 MiB transfers would exceed it (measured: 446 MiB for 500 pairs of 4
// MiB on an idle machine, 733 MiB with a load average of 10).
func loadHeapBound(lc loadConfig) uint64 {
	return 64<<20 + uint64(lc.clients)*3<<20
}

// TestLoadManyClientsWithCuts is the bounded load test; see
// BenchmarkLoad for the figures (RSFTP_LOAD_CLIENTS, RSFTP_LOAD_KIB
// change the scale).
func TestLoadManyClientsWithCuts(t *testing.T) {
	lc := loadFromEnv(t)
	runtime.GC()
	res := runLoad(t, lc)
	medium := "loopback TCP"
	if !lc.tcp {
		medium = "the network simulator"
	}
	t.Logf("%d clients x %d KiB over %s in %v: %d cuts, %d resumptions, %d failed attempts; resume handshake p50 %v p99 %v; offline p50 %v p99 %v; cut to resumed p50 %v p99 %v; peak live heap %d MiB (bound %d), server retained peak %d KiB (%d KiB by up to %d detached sessions)",
		lc.clients, lc.size>>10, medium, res.elapsed.Round(time.Millisecond), res.cuts, res.resumes, res.failedAttempts,
		percentile(res.handshake, 0.5).Round(time.Millisecond), percentile(res.handshake, 0.99).Round(time.Millisecond),
		percentile(res.offline, 0.5).Round(time.Millisecond), percentile(res.offline, 0.99).Round(time.Millisecond),
		percentile(res.outage, 0.5).Round(time.Millisecond), percentile(res.outage, 0.99).Round(time.Millisecond),
		res.peakHeap>>20, loadHeapBound(lc)>>20, res.peakRetained>>10, res.peakDetachedBytes>>10, res.peakDetached)
	for msg, n := range res.failures {
		t.Logf("failed attempts: %d x %s", n, msg)
	}
	if res.cuts == 0 || res.resumes == 0 {
		t.Fatalf("%d cuts, %d resumptions: the test did not test resumption", res.cuts, res.resumes)
	}
	if bound := loadHeapBound(lc); res.peakHeap > bound {
		t.Errorf("peak live heap %d MiB, more than %d MiB", res.peakHeap>>20, bound>>20)
	}
	if res.peakDetachedBytes > 256<<20 {
		t.Errorf("detached sessions retained %d MiB, more than the configured 256 MiB", res.peakDetachedBytes>>20)
	}
}

// BenchmarkLoad reports the load test's figures: p50/p99 resume
// handshake and offline time, peak heap and retained bytes. Run with
// -benchtime=1x.
func BenchmarkLoad(b *testing.B) {
	lc := loadFromEnv(b)
	for b.Loop() {
		res := runLoad(b, lc)
		b.ReportMetric(float64(percentile(res.handshake, 0.5).Microseconds())/1000, "resume-p50-ms")
		b.ReportMetric(float64(percentile(res.handshake, 0.99).Microseconds())/1000, "resume-p99-ms")
		b.ReportMetric(float64(percentile(res.offline, 0.5).Microseconds())/1000, "offline-p50-ms")
		b.ReportMetric(float64(percentile(res.offline, 0.99).Microseconds())/1000, "offline-p99-ms")
		b.ReportMetric(float64(percentile(res.outage, 0.5).Microseconds())/1000, "outage-p50-ms")
		b.ReportMetric(float64(percentile(res.outage, 0.99).Microseconds())/1000, "outage-p99-ms")
		b.ReportMetric(float64(res.peakHeap>>20), "peak-heap-MiB")
		b.ReportMetric(float64(res.peakRetained>>20), "peak-retained-MiB")
		b.ReportMetric(float64(res.cuts), "cuts")
		b.ReportMetric(float64(lc.clients)*float64(lc.size)/res.elapsed.Seconds()/1e6, "MB/s")
	}
}

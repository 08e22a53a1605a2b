//go:build unix

package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/internal/netsim"
	"github.com/rsftp/rsftp/sftp"
)

// What idle detached sessions cost the server (issue 14 item 5): N
// resumable sessions, each with the sftp subsystem open and one request
// served, lose their links at once (a reset); the clients are closed
// without ending their sessions, so the server holds N detached sessions
// for their hold time (an hour). Over an idle period the test measures
// the process's CPU time (user + system, getrusage; the clients are
// gone, so it is the server's), and after a collection the heap in use
// (runtime.MemStats.HeapInuse) and the goroutines, each less a baseline
// taken before the first session, per session. The retained bytes are
// the sessions' unacknowledged data (the goal is on the heap beyond
// them).

// idleResult is what runIdle measured.
type idleResult struct {
	n                   int
	period              time.Duration
	cpu                 time.Duration // user + system during period
	baseCPU             time.Duration // the same over baseWait, before any session
	baseWait            time.Duration
	heapInuse, baseHeap uint64 // after GC
	heapAlloc, baseLive uint64
	stack, baseStack    uint64 // goroutine stacks in use (not in the heap)
	goroutines, baseG   int
	retained            int64 // ResumeStats().DetachedRetainedBytes
	setup, detach       time.Duration
}

func (r idleResult) cpuPercent() float64 {
	return float64(r.cpu) / float64(r.period) * 100
}

func (r idleResult) basePercent() float64 {
	if r.baseWait == 0 {
		return 0
	}
	return float64(r.baseCPU) / float64(r.baseWait) * 100
}

func (r idleResult) heapPerSession() float64 {
	return (float64(r.heapInuse) - float64(r.baseHeap)) / float64(r.n)
}

func (r idleResult) livePerSession() float64 {
	return (float64(r.heapAlloc) - float64(r.baseLive)) / float64(r.n)
}

func (r idleResult) stackPerSession() float64 {
	return (float64(r.stack) - float64(r.baseStack)) / float64(r.n)
}

func (r idleResult) goroutinesPerSession() float64 {
	return float64(r.goroutines-r.baseG) / float64(r.n)
}

func (r idleResult) String() string {
	return fmt.Sprintf("%d idle detached sessions over %v: CPU %.3f%% of a core (%v; idle process before the sessions %.3f%%), heap in use %.0f B/session (live %.0f), %.2f goroutines/session (stacks %.0f B/session), retained (unacknowledged) %.0f B/session; setup %v, detach %v",
		r.n, r.period, r.cpuPercent(), r.cpu.Round(time.Microsecond), r.basePercent(),
		r.heapPerSession(), r.livePerSession(), r.goroutinesPerSession(), r.stackPerSession(),
		float64(r.retained)/float64(r.n), r.setup.Round(time.Millisecond), r.detach.Round(time.Millisecond))
}

// processCPU is the user and system time of the process so far.
func processCPU(t testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// idleHeap collects until nothing more goes (sync.Pool keeps what it
// holds for one more cycle) and returns the heap in use and live, and
// the goroutine stacks in use.
func idleHeap() (inuse, alloc, stack uint64) {
	var ms runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse, ms.HeapAlloc, ms.StackInuse
}

func idleEnv(t testing.TB, name string, def int) int {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("%s=%q: want a positive number", name, v)
		}
		return n
	}
	return def
}

var errAbandoned = errors.New("client abandoned by the test")

func runIdle(t testing.TB, n int, period, baseWait time.Duration) idleResult {
	t.Helper()
	r := newRig(t, time.Hour, func(cfg *rsftp.ServerConfig) {
		cfg.MaxUnauthConns = 256
		cfg.Resume.MaxSessions = n + 16
		cfg.Resume.MaxDetachedPerUser = n + 16
		// The sessions are idle while the others are made: no detach by
		// the idle timeout, no pings.
		cfg.Resume.IdleTimeout = time.Hour
		cfg.Resume.Events = nil // the rig's log would grow with n
	})
	res := idleResult{n: n, period: period, baseWait: baseWait}
	res.baseHeap, res.baseLive, res.baseStack = idleHeap()
	res.baseG = runtime.NumGoroutine()
	if baseWait > 0 {
		c0 := processCPU(t)
		time.Sleep(baseWait)
		res.baseCPU = processCPU(t) - c0
	}

	// The clients: a session each with sftp open and a request served.
	type idleClient struct {
		c  *rsftp.Client
		sc *sftp.Client
	}
	clients := make([]idleClient, n)
	ccfg := func(cfg *rsftp.ClientConfig) {
		cfg.Resume.Events = nil
		cfg.Resume.AliveInterval = time.Hour
		// After the cut a client tries to reconnect until it is closed;
		// it never reaches the server.
		cfg.Resume.Redial = func(ctx context.Context) (net.Conn, error) { return nil, errAbandoned }
		cfg.Resume.MinBackoff = time.Hour
		cfg.Resume.MaxBackoff = time.Hour
	}
	start := time.Now()
	errs := make(chan error, n)
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(n, 4*runtime.GOMAXPROCS(0)) {
		wg.Go(func() {
			for i := range work {
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				c, sc, err := openIdleClient(ctx, r, r.clientConfig(ccfg))
				cancel()
				if err != nil {
					errs <- fmt.Errorf("client %d: %w", i, err)
					continue
				}
				clients[i] = idleClient{c, sc}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	res.setup = time.Since(start)
	if st := r.srv.ResumeStats(); st.Sessions != n {
		t.Fatalf("server keeps %d resumable sessions of %d", st.Sessions, n)
	}

	// Every link reset at once; the server detaches them all.
	start = time.Now()
	r.net.CutAll(netsim.Reset)
	deadline := time.Now().Add(2 * time.Minute)
	for r.srv.ResumeStats().Detached < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d sessions detached after 2 minutes", r.srv.ResumeStats().Detached, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	res.detach = time.Since(start)

	// The clients go, without a word to the server (their links are
	// down); what remains in the process is the server's.
	for i := range clients {
		clients[i].sc.Close()
		clients[i].c.Close()
	}
	clients = nil
	// Let the clients' goroutines end: the count stops changing.
	prev := -1
	for g := runtime.NumGoroutine(); g != prev; g = runtime.NumGoroutine() {
		prev = g
		time.Sleep(200 * time.Millisecond)
	}
	runtime.GC()

	stopCPU := startIdleCPUProfile(t)
	c0 := processCPU(t)
	time.Sleep(period)
	res.cpu = processCPU(t) - c0
	stopCPU()

	st := r.srv.ResumeStats()
	if st.Detached != n || st.Sessions != n {
		t.Fatalf("after the idle period the server keeps %d sessions, %d detached; want %d", st.Sessions, st.Detached, n)
	}
	res.retained = st.DetachedRetainedBytes
	res.heapInuse, res.heapAlloc, res.stack = idleHeap()
	res.goroutines = runtime.NumGoroutine()
	if dir := os.Getenv("RSFTP_IDLE_PROFILE_DIR"); dir != "" {
		for _, name := range []string{"heap", "goroutine"} {
			f, err := os.Create(filepath.Join(dir, "idle-"+name+".pprof"))
			if err != nil {
				t.Fatal(err)
			}
			pprof.Lookup(name).WriteTo(f, 0)
			f.Close()
		}
	}
	return res
}

// startIdleCPUProfile profiles the idle period into
// RSFTP_IDLE_PROFILE_DIR, if set.
func startIdleCPUProfile(t testing.TB) (stop func()) {
	dir := os.Getenv("RSFTP_IDLE_PROFILE_DIR")
	if dir == "" {
		return func() {}
	}
	f, err := os.Create(filepath.Join(dir, "idle-cpu.pprof"))
	if err != nil {
		t.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// openIdleClient logs in, opens the sftp subsystem and serves one
// request (a stat of the root).
func openIdleClient(ctx context.Context, r *rig, cfg *rsftp.ClientConfig) (*rsftp.Client, *sftp.Client, error) {
	nc, err := r.net.Dial(ctx, r.addr)
	if err != nil {
		return nil, nil, err
	}
	c, err := rsftp.NewClient(ctx, nc, r.addr, cfg)
	if err != nil {
		return nil, nil, err
	}
	if !c.Resumable() {
		c.Close()
		return nil, nil, errors.New("session not resumable")
	}
	sess, err := c.NewSession(ctx)
	if err == nil {
		err = sess.Subsystem(ctx, "sftp")
	}
	var sc *sftp.Client
	if err == nil {
		sc, err = sftp.NewClient(ctx, sess.Channel())
	}
	if err == nil {
		_, err = sc.Stat(".")
	}
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return c, sc, nil
}

// TestIdleDetachedSessions is the quick form of BenchmarkIdleDetached
// (64 sessions, 1 s; RSFTP_IDLE_SESSIONS, RSFTP_IDLE_SECONDS): every
// session detaches and stays held while idle. The figures are logged,
// not asserted.
func TestIdleDetachedSessions(t *testing.T) {
	n := idleEnv(t, "RSFTP_IDLE_SESSIONS", 64)
	period := time.Duration(idleEnv(t, "RSFTP_IDLE_SECONDS", 1)) * time.Second
	res := runIdle(t, n, period, 0)
	t.Log(res)
}

// BenchmarkIdleDetached reports what idle detached sessions cost the
// server: CPU in percent of a core, heap in use and goroutines per
// session (beyond a baseline before the sessions), and the retained
// bytes per session. RSFTP_IDLE_SESSIONS (default 4096) and
// RSFTP_IDLE_SECONDS (default 10) set the number and the idle period;
// RSFTP_IDLE_PROFILE_DIR writes there a CPU profile of the idle period
// and heap and goroutine profiles of the idle state.
//
//	go test -run '^$' -bench IdleDetached -benchtime 1x ./internal/e2e
func BenchmarkIdleDetached(b *testing.B) {
	n := idleEnv(b, "RSFTP_IDLE_SESSIONS", 4096)
	period := time.Duration(idleEnv(b, "RSFTP_IDLE_SECONDS", 10)) * time.Second
	for range b.N {
		res := runIdle(b, n, period, 2*time.Second)
		b.ReportMetric(res.cpuPercent(), "cpu-%-of-core")
		b.ReportMetric(res.heapPerSession(), "heap-bytes/session")
		b.ReportMetric(res.goroutinesPerSession(), "goroutines/session")
		b.ReportMetric(res.stackPerSession(), "stack-bytes/session")
		b.ReportMetric(float64(res.retained)/float64(n), "retained-bytes/session")
		fmt.Println(res)
	}
}

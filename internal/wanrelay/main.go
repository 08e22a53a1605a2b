// Command wanrelay puts a long, fat link between two programs on one
// machine: a TCP relay on loopback that delays each direction by a
// one-way latency and paces it at a rate, for scripts/bench-wan.sh (the
// kernel here has no netem). It also serves and fetches files over plain
// TCP, the ceiling a copy through the same relay can reach.
//
//	wanrelay relay -listen 127.0.0.1:0 -to 127.0.0.1:22 -delay 50ms -rate 100MB [-cut-after BYTES] [-log FILE]
//	wanrelay serve -listen 127.0.0.1:0 -dir DIR
//	wanrelay get -addr ADDR NAME LOCAL
//	wanrelay put -addr ADDR LOCAL NAME
//
// relay and serve print the address they listen on as the first line of
// their output.
//
// Each direction of a relayed connection is a link that serializes what
// it is given at -rate (a bottleneck with a queue) and delivers it -delay
// later; the relay stops reading from a side while -queue bytes are on
// their way, so a sender that outruns the link meets TCP's own flow
// control, as behind a real bottleneck. Every TCP hop is loopback: what
// bounds a transfer is the application's window over the round trip.
//
// TCP's own handshake costs a round trip on a real link and nothing on
// loopback, so the relay charges it (unless -no-handshake): a
// connection's first bytes from the client reach the server one and a
// half round trips after the connect (SYN, SYN-ACK, then the data beside
// the ACK), and the relay dials the server then, when a real server's
// accept would return.
//
// With -cut-after, the relay resets each connection (TCP RST both ways;
// what is on its way is lost) once it has carried that many bytes, both
// directions together: a link lost in the middle of a transfer, which a
// resumable session survives on its next connection (which carries the
// rest, and is cut again only if that is as much). On Unix, SIGUSR1
// resets every connection at once.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "relay":
		err = runRelay(os.Args[2:])
	case "serve":
		err = runServe(os.Args[2:])
	case "get":
		err = runGet(os.Args[2:])
	case "put":
		err = runPut(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "wanrelay:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: wanrelay relay -listen ADDR -to ADDR [-delay D] [-rate R] [-delay-back D] [-rate-back R] [-queue BYTES] [-no-handshake] [-cut-after BYTES] [-log FILE]
       wanrelay serve -listen ADDR -dir DIR
       wanrelay get -addr ADDR NAME LOCAL
       wanrelay put -addr ADDR LOCAL NAME
`)
	os.Exit(2)
}

// parseRate reads a rate in bytes per second: 100MB (10^6), 12.5MiB
// (2^20), 800Mbit, or a plain number; 0 is unlimited.
func parseRate(s string) (float64, error) {
	units := []struct {
		suffix string
		mult   float64
	}{
		{"Gbit", 1e9 / 8}, {"Mbit", 1e6 / 8}, {"kbit", 1e3 / 8},
		{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
		{"GB", 1e9}, {"MB", 1e6}, {"kB", 1e3}, {"KB", 1e3}, {"B", 1},
	}
	mult := 1.0
	for _, u := range units {
		if strings.HasSuffix(s, u.suffix) {
			s, mult = strings.TrimSuffix(s, u.suffix), u.mult
			break
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("bad rate %q (e.g. 100MB, 12.5MiB, 800Mbit, 0 for unlimited)", s)
	}
	return v * mult, nil
}

// link is one direction's path: a bottleneck that serializes bytes at
// rate (bytes per second; 0 is unlimited), then a one-way delay.
type link struct {
	rate  float64
	delay time.Duration
	free  time.Time // when the bottleneck has sent what it was given
}

// admit puts n bytes handed over at now on the link and returns when
// they arrive at the other end: after what is ahead of them, their own
// serialization, and the delay.
func (l *link) admit(now time.Time, n int) time.Time {
	start := now
	if l.free.After(start) {
		start = l.free
	}
	if l.rate > 0 {
		start = start.Add(time.Duration(float64(n) / l.rate * float64(time.Second)))
	}
	l.free = start
	return start.Add(l.delay)
}

type chunk struct {
	b  []byte
	at time.Time // delivery time
}

// pipe holds one direction's bytes between the read from one side and
// their delivery time.
type pipe struct {
	carried *atomic.Int64 // bytes the connection carried, both ways
	cut     func()        // resets the connection (nil: never)
	cutAt   int64

	mu    sync.Mutex
	cond  *sync.Cond
	link  link
	q     []chunk
	held  int // bytes in q
	limit int // held is kept below this (one read beyond it at most)
	eof   bool
	dead  bool // the other side failed: drop everything
}

func newPipe(l link, limit int) *pipe {
	p := &pipe{link: l, limit: limit}
	p.cond = sync.NewCond(&p.mu)
	return p
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// fill reads src into the pipe until EOF or an error.
func (p *pipe) fill(src net.Conn) {
	for {
		bp := bufPool.Get().(*[]byte)
		n, err := src.Read(*bp)
		if n > 0 && p.cut != nil && p.carried.Add(int64(n)) > p.cutAt {
			p.cut()
			return
		}
		if n > 0 {
			p.mu.Lock()
			for p.held+n > p.limit && p.held > 0 && !p.dead {
				p.cond.Wait()
			}
			if p.dead {
				p.mu.Unlock()
				return
			}
			at := p.link.admit(time.Now(), n)
			p.q = append(p.q, chunk{(*bp)[:n], at})
			p.held += n
			p.cond.Broadcast()
			p.mu.Unlock()
		} else {
			bufPool.Put(bp)
		}
		if err != nil {
			p.mu.Lock()
			p.eof = true
			p.cond.Broadcast()
			p.mu.Unlock()
			return
		}
	}
}

// drain writes the pipe's bytes to dst at their delivery times; at the
// end of the input it half-closes dst. It returns false if dst failed.
func (p *pipe) drain(dst net.Conn, tr *tracer, dir string) bool {
	var batch net.Buffers
	var bufs [][]byte
	for {
		p.mu.Lock()
		for len(p.q) == 0 && !p.eof && !p.dead {
			p.cond.Wait()
		}
		if p.dead {
			p.mu.Unlock()
			return false
		}
		if len(p.q) == 0 { // eof, all delivered
			p.mu.Unlock()
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
			}
			return true
		}
		first := p.q[0].at
		p.mu.Unlock()
		if d := time.Until(first); d > 0 {
			time.Sleep(d)
		}
		// Everything due by now goes in one write.
		now := time.Now()
		p.mu.Lock()
		batch, bufs = batch[:0], bufs[:0]
		n, k := 0, 0
		for k < len(p.q) && !p.q[k].at.After(now) && n < 1<<20 {
			batch = append(batch, p.q[k].b)
			bufs = append(bufs, p.q[k].b)
			n += len(p.q[k].b)
			k++
		}
		p.mu.Unlock()
		tr.note(dir, n)
		_, err := batch.WriteTo(dst)
		p.mu.Lock()
		p.q = p.q[k:]
		p.held -= n
		p.cond.Broadcast()
		p.mu.Unlock()
		for _, b := range bufs {
			b = b[:cap(b)]
			bufPool.Put(&b)
		}
		if err != nil {
			return false
		}
	}
}

func (p *pipe) kill() {
	p.mu.Lock()
	p.dead = true
	p.cond.Broadcast()
	p.mu.Unlock()
}

// tracer logs each delivery (time since the connection was accepted,
// direction, bytes) when -log is given.
type tracer struct {
	mu sync.Mutex
	w  io.Writer
	id int64
	t0 time.Time
}

func (t *tracer) note(dir string, n int) {
	if t == nil || t.w == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.w, "conn %d %9.3f ms %s %d\n", t.id, float64(time.Since(t.t0).Microseconds())/1000, dir, n)
}

type relayConfig struct {
	target      string
	up, down    link // client to server, server to client
	queue       int
	noHandshake bool
	cutAfter    int64
	log         io.Writer
	logMu       sync.Mutex
	conns       atomic.Int64
	liveMu      sync.Mutex
	live        map[int64]func() // each connection's reset
}

func runRelay(args []string) error {
	fs := flag.NewFlagSet("relay", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	target := fs.String("to", "", "address to relay to")
	delay := fs.Duration("delay", 50*time.Millisecond, "one-way delay, client to server (and back, unless -delay-back)")
	delayBack := fs.Duration("delay-back", -1, "one-way delay, server to client")
	rate := fs.String("rate", "100MB", "rate of each direction, bytes per second (100MB, 12.5MiB, 800Mbit; 0 unlimited)")
	rateBack := fs.String("rate-back", "", "rate server to client, if not -rate")
	queue := fs.Int("queue", 0, "bytes a direction holds on their way (default: the link's bandwidth-delay product over the whole round trip, twice, and at least 8 MiB)")
	noHandshake := fs.Bool("no-handshake", false, "do not charge TCP's handshake round trip")
	logFile := fs.String("log", "", "append each delivery (conn, ms since accept, direction, bytes) to this file")
	cutAfter := fs.Int64("cut-after", 0, "reset each connection once it carried this many bytes, both ways (0: never)")
	fs.Parse(args)
	if *target == "" {
		return errors.New("relay: -to is required")
	}
	up, err := parseRate(*rate)
	if err != nil {
		return err
	}
	down := up
	if *rateBack != "" {
		if down, err = parseRate(*rateBack); err != nil {
			return err
		}
	}
	if *delayBack < 0 {
		*delayBack = *delay
	}
	cfg := &relayConfig{target: *target, up: link{rate: up, delay: *delay}, down: link{rate: down, delay: *delayBack},
		queue: *queue, noHandshake: *noHandshake, cutAfter: *cutAfter}
	if cfg.queue == 0 {
		rtt := (*delay + *delayBack).Seconds()
		cfg.queue = max(8<<20, int(2*max(up, down)*rtt))
	}
	if *logFile != "" {
		f, err := os.OpenFile(*logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		cfg.log = f
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr())
	notifyCut(cfg.cutAll)
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go cfg.relay(c.(*net.TCPConn))
	}
}

// cutAll resets every connection (SIGUSR1).
func (cfg *relayConfig) cutAll() {
	cfg.liveMu.Lock()
	cuts := make([]func(), 0, len(cfg.live))
	for _, f := range cfg.live {
		cuts = append(cuts, f)
	}
	cfg.liveMu.Unlock()
	for _, f := range cuts {
		f()
	}
}

func (cfg *relayConfig) relay(client *net.TCPConn) {
	t0 := time.Now()
	id := cfg.conns.Add(1)
	var tr *tracer
	if cfg.log != nil {
		tr = &tracer{w: syncWriter{&cfg.logMu, cfg.log}, id: id, t0: t0}
	}
	up, down := newPipe(cfg.up, cfg.queue), newPipe(cfg.down, cfg.queue)
	var server net.Conn
	var cutOnce sync.Once
	var serverMu sync.Mutex
	// fail resets both sides: what is on its way is lost.
	fail := func() {
		cutOnce.Do(func() {
			up.kill()
			down.kill()
			client.SetLinger(0)
			client.Close()
			serverMu.Lock()
			if server != nil {
				server.(*net.TCPConn).SetLinger(0)
				server.Close()
			}
			serverMu.Unlock()
		})
	}
	cfg.liveMu.Lock()
	if cfg.live == nil {
		cfg.live = map[int64]func(){}
	}
	cfg.live[id] = fail
	cfg.liveMu.Unlock()
	defer func() {
		cfg.liveMu.Lock()
		delete(cfg.live, id)
		cfg.liveMu.Unlock()
	}()
	if cfg.cutAfter > 0 {
		carried := new(atomic.Int64)
		for _, p := range []*pipe{up, down} {
			p.carried, p.cut, p.cutAt = carried, fail, cfg.cutAfter
		}
	}
	dial := t0
	if !cfg.noHandshake {
		// SYN up, SYN-ACK down: the client may send from then on. The
		// server's accept returns when the ACK arrives, beside the
		// client's first bytes.
		up.link.free = t0.Add(cfg.up.delay + cfg.down.delay)
		dial = t0.Add(2*cfg.up.delay + cfg.down.delay)
	}
	go up.fill(client)
	time.Sleep(time.Until(dial))
	sc, err := net.Dial("tcp", cfg.target)
	if err != nil {
		fmt.Fprintln(os.Stderr, "wanrelay:", err)
		fail()
		return
	}
	serverMu.Lock()
	server = sc
	serverMu.Unlock()
	go down.fill(server)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if !up.drain(server, tr, "c>s") {
			fail()
		}
	}()
	go func() {
		defer wg.Done()
		if !down.drain(client, tr, "s>c") {
			fail()
		}
	}()
	wg.Wait()
	client.Close()
	server.Close()
}

type syncWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (s syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// The plain copy: a request line ("get NAME" or "put NAME"), then the
// file's bytes; a put is answered "ok" once the file is written.

func runServe(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	dir := fs.String("dir", ".", "directory of the files")
	fs.Parse(args)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Println(ln.Addr())
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			if err := serveOne(c.(*net.TCPConn), *dir); err != nil {
				fmt.Fprintln(os.Stderr, "wanrelay serve:", err)
			}
		}()
	}
}

func serveOne(c *net.TCPConn, dir string) error {
	br := bufio.NewReader(c)
	line, err := br.ReadString('\n')
	if err != nil {
		return err
	}
	op, name, ok := strings.Cut(strings.TrimSpace(line), " ")
	if !ok || name == "" || strings.Contains(name, "..") {
		return fmt.Errorf("bad request %q", line)
	}
	path := filepath.Join(dir, name)
	switch op {
	case "get":
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(c, f)
		return err
	case "put":
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, br); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
		_, err = io.WriteString(c, "ok\n")
		return err
	}
	return fmt.Errorf("bad request %q", line)
}

func clientFlags(name string, args []string) (string, []string) {
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	addr := fs.String("addr", "", "the server (or a relay to it)")
	fs.Parse(args)
	if *addr == "" || fs.NArg() != 2 {
		usage()
	}
	return *addr, fs.Args()
}

func runGet(args []string) error {
	addr, a := clientFlags("get", args)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := fmt.Fprintf(c, "get %s\n", a[0]); err != nil {
		return err
	}
	f, err := os.Create(a[1])
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, c); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func runPut(args []string) error {
	addr, a := clientFlags("put", args)
	f, err := os.Open(a[0])
	if err != nil {
		return err
	}
	defer f.Close()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := fmt.Fprintf(c, "put %s\n", a[1]); err != nil {
		return err
	}
	if _, err := io.Copy(c, f); err != nil {
		return err
	}
	c.(*net.TCPConn).CloseWrite()
	reply, err := io.ReadAll(c)
	if err != nil {
		return err
	}
	if string(reply) != "ok\n" {
		return fmt.Errorf("the server did not confirm the file (%q)", reply)
	}
	return nil
}

package main

// rsftp demo: an embedded resumable server, an in-process link with
// latency whose connection is cut several times during an SFTP download,
// a SHA-256 check of what landed, a summary of the outages and an SVG of
// the transfer's progress with the outages marked.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/internal/netsim"
	"github.com/rsftp/rsftp/internal/svgplot"
	"github.com/rsftp/rsftp/kex"
	"github.com/rsftp/rsftp/resume"
	"github.com/rsftp/rsftp/sftp"
	"github.com/rsftp/rsftp/transport"
)

const (
	demoAddr     = "198.18.0.1:22" // the embedded server on the simulated network
	demoFile     = "payload.bin"
	demoSample   = 20 * time.Millisecond // progress sampling for the figure
	demoAckBytes = 40                    // an ACK on the wire with an AEAD cipher (docs/PROTOCOL.resume.md 4)
)

// demoOptions are the flags of rsftp demo.
type demoOptions struct {
	size      int64
	latency   time.Duration // one way
	bandwidth int64         // bytes per second, 0 = unlimited
	cuts      int
	outage    time.Duration
	svg       string
	cipher    string
	quiet     bool
	timeout   time.Duration
	tls       bool // a download over resumable TLS (tlsresume) instead of SFTP
}

func runDemo(args []string) error {
	return demo(args, os.Stdout, os.Stderr)
}

// parseDemoFlags parses rsftp demo's options. With -h it prints the usage
// to help and returns flag.ErrHelp; other errors are one line, and
// nothing is printed.
func parseDemoFlags(args []string, help io.Writer) (*demoOptions, error) {
	o := &demoOptions{}
	size, bw := byteSize(64<<20), byteSize(40e6)
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Var(&size, "size", "size of the file to download (suffixes KiB, MiB, GiB, kB, MB, GB)")
	fs.DurationVar(&o.latency, "latency", 5*time.Millisecond, "one-way latency of the simulated link (the RTT is twice this)")
	fs.Var(&bw, "bandwidth", "bandwidth of the simulated link per direction, bytes per second (0 = unlimited)")
	fs.IntVar(&o.cuts, "cuts", 3, "how many times to cut the link during the transfer (alternately blackhole and reset)")
	fs.DurationVar(&o.outage, "outage", 1500*time.Millisecond, "how long the network stays unreachable after each cut")
	fs.StringVar(&o.svg, "svg", "rsftp-demo.svg", `write the progress figure to this file ("" = none)`)
	fs.StringVar(&o.cipher, "c", "", "cipher (default: our preference, chacha20-poly1305@openssh.com)")
	fs.BoolVar(&o.quiet, "q", false, "quiet: no live progress on stderr")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Minute, "give up after this long")
	fs.BoolVar(&o.tls, "tls", false, "download over resumable TLS 1.3 (docs/PROTOCOL.tlsresume.md) instead of SFTP over SSH")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(help, "usage: rsftp demo [-q] [-size bytes] [-latency d] [-bandwidth bytes/s] [-cuts n] [-outage d] [-svg file] [-c cipher] [-timeout d]")
			fmt.Fprint(help, "\nDownloads a file over a simulated link that is cut several times, and\nshows the session resuming after each cut.\n\n")
			fs.SetOutput(help)
			fs.PrintDefaults()
			return nil, err
		}
		return nil, flagError(err, fs, "-")
	}
	o.size, o.bandwidth = int64(size), int64(bw)
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.size <= 0:
		return nil, errors.New("-size must be positive")
	case o.latency < 0 || o.outage < 0:
		return nil, errors.New("-latency and -outage must not be negative")
	case o.cuts < 0:
		return nil, errors.New("-cuts must not be negative")
	case o.timeout <= 0:
		return nil, errors.New("-timeout must be positive")
	}
	if o.cipher != "" && !contains(transport.SupportedCiphers(), o.cipher) {
		return nil, fmt.Errorf("unknown cipher %q (supported: %s)", o.cipher, strings.Join(transport.SupportedCiphers(), ", "))
	}
	return o, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// demo runs rsftp demo, writing the summary to stdout and the live
// progress to stderr.
func demo(args []string, stdout, stderr io.Writer) (err error) {
	o, err := parseDemoFlags(args, stdout)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return &exitError{code: 2, err: err}
	}

	timed, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(timed, os.Interrupt, syscall.SIGTERM)
	defer stop()
	// However far it got, a demo that ran out of time or was
	// interrupted says that, not what it was doing then.
	defer func() {
		switch {
		case err == nil:
		case errors.Is(timed.Err(), context.DeadlineExceeded):
			err = fmt.Errorf("gave up after %v (-timeout) before the download finished; a longer -timeout lets a slower link finish", o.timeout)
		case ctx.Err() != nil:
			// SIGINT or SIGTERM: status 130, as the other commands.
			err = &exitError{code: 130, err: errors.New("interrupted; the demo's temporary files are removed")}
		}
	}()

	base, err := os.MkdirTemp("", "rsftp-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(base)
	root, local := filepath.Join(base, "server"), filepath.Join(base, "client")
	for _, d := range []string{root, local} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return err
		}
	}
	want, err := writeRandomFile(filepath.Join(root, demoFile), o.size)
	if err != nil {
		return fmt.Errorf("creating the server's file: %w", err)
	}

	network := netsim.New(netsim.WithLatency(o.latency), netsim.WithBandwidth(o.bandwidth), netsim.WithFailFast())
	defer network.Close()
	rec := &demoRecorder{net: network, opts: o}
	defer rec.stopTimers()
	if o.tls {
		return demoTLS(ctx, o, network, rec, root, local, want, stdout, stderr)
	}

	hostKey, err := newKey()
	if err != nil {
		return err
	}
	userKey, err := newKey()
	if err != nil {
		return err
	}
	userPub := userKey.PublicKey().Marshal()
	srv, err := rsftp.NewServer(&rsftp.ServerConfig{
		HostKeys: []kex.Signer{hostKey},
		Auth: auth.ServerConfig{PublicKeyCallback: func(user string, k kex.PublicKey) (*auth.Permissions, error) {
			if bytes.Equal(k.Marshal(), userPub) {
				return &auth.Permissions{}, nil
			}
			return nil, errors.New("unknown key")
		}},
		Subsystems: map[string]rsftp.Handler{"sftp": rsftp.SFTPHandler(&sftp.ServerConfig{Root: root})},
		Resume:     &rsftp.ResumeServerConfig{Hold: time.Hour, IdleTimeout: 10 * time.Second, Events: rec.serverEvent},
	})
	if err != nil {
		return err
	}
	l, err := network.Listen(demoAddr)
	if err != nil {
		return err
	}
	go srv.Serve(l)
	defer srv.Close()

	dial := func(ctx context.Context) (net.Conn, error) {
		nc, err := network.Dial(ctx, demoAddr)
		if err == nil {
			rec.addLink(netsim.LinkOf(nc))
		}
		return nc, err
	}
	hostPub := hostKey.PublicKey().Marshal()
	cfg := &rsftp.ClientConfig{
		User: "demo",
		Auth: []auth.Method{auth.PublicKeySigners(userKey)},
		HostKeyCallback: func(host string, port int, k kex.PublicKey) error {
			if !bytes.Equal(k.Marshal(), hostPub) {
				return fmt.Errorf("host key for %s:%d is %s, expected %s", host, port,
					kex.FingerprintSHA256(k), kex.FingerprintSHA256(hostKey.PublicKey()))
			}
			return nil
		},
		Resume: &rsftp.ResumeConfig{
			Redial:         dial,
			AliveInterval:  250 * time.Millisecond,
			AliveCountMax:  3,
			MinBackoff:     50 * time.Millisecond,
			MaxBackoff:     500 * time.Millisecond,
			AttemptTimeout: 5 * time.Second,
			NoNetworkWatch: true,
			Events:         rec.clientEvent,
		},
	}
	if o.cipher != "" {
		cfg.Transport.Ciphers = []string{o.cipher}
	}

	connectStart := time.Now()
	dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
	nc, err := dial(dctx)
	if err != nil {
		dcancel()
		return fmt.Errorf("connect: %w", err)
	}
	c, err := rsftp.NewClient(dctx, nc, demoAddr, cfg)
	dcancel()
	if err != nil {
		nc.Close()
		return err
	}
	defer c.Close()
	connectTime := time.Since(connectStart)
	stopClosing := context.AfterFunc(ctx, func() { c.Close() })
	defer stopClosing()
	rst, ok := c.ResumeStatus()
	if !ok {
		return errors.New("the embedded server did not make the session resumable")
	}
	a := c.Transport().Algorithms()
	hold := rst.Hold

	sc, err := c.SFTP(ctx)
	if err != nil {
		return fmt.Errorf("sftp: %w", err)
	}
	defer sc.Close()
	return rec.transfer(ctx, local, want, stdout, stderr, demoTransfer{
		proto: "SFTP",
		session: fmt.Sprintf("%s, %s, %s; connected in %d ms; resumable, the server holds it for %v",
			a.CipherSC, a.Kex, a.HostKey, connectTime.Milliseconds(), hold),
		copy: func(w io.Writer) (int64, error) {
			f, err := sc.Open(demoFile)
			if err != nil {
				return 0, err
			}
			n, err := f.WriteTo(w)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			return n, err
		},
		stats: func() resume.Stats { st, _ := c.ResumeStatus(); return st.Stats },
	})
}

// demoTransfer is what differs between the SSH and the TLS demo once
// connected.
type demoTransfer struct {
	proto   string // "SFTP", "TLS": what the download runs over
	session string // the session line: algorithms, connect time, hold
	// copy downloads the file into w.
	copy func(w io.Writer) (int64, error)
	// done, if set, is checked once the copy ended well (the TLS
	// demo's server).
	done  func() error
	stats func() resume.Stats
}

// transfer is the demo once connected, for either kind: the header, the
// download sampled for the figure and watched for the cuts, the check of
// what arrived, and the report.
func (rec *demoRecorder) transfer(ctx context.Context, local string, want [32]byte, stdout, stderr io.Writer, t demoTransfer) error {
	o := rec.opts
	kinds := make([]string, o.cuts)
	for i := range kinds {
		kinds[i] = cutMode(i).name()
	}
	bw := "unlimited bandwidth"
	if o.bandwidth > 0 {
		bw = fmt.Sprintf("%s/s", decimalBytes(o.bandwidth))
	}
	fmt.Fprintf(stdout, "rsftp demo: %s download of %s from an embedded server over a simulated link\n", t.proto, binaryBytes(o.size))
	fmt.Fprintf(stdout, "link:       %v one way (%v RTT), %s", o.latency, 2*o.latency, bw)
	if o.cuts > 0 {
		fmt.Fprintf(stdout, "; cut %s (%s), the network unreachable for %v after each cut",
			times(o.cuts), strings.Join(kinds, ", "), o.outage)
	}
	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "session:    %s\n", t.session)

	localPath := filepath.Join(local, demoFile)
	out, err := os.Create(localPath)
	if err != nil {
		return err
	}
	defer out.Close()
	ui := newDemoUI(stderr, o.quiet, o.size)
	cw := &countingWriter{w: out, after: rec.maybeCut}
	rec.begin(time.Now())
	sampler := startSampler(rec, cw, ui)
	ui.printf(rec.start, "downloading %s (%s) over %s", demoFile, binaryBytes(o.size), t.proto)

	n, err := t.copy(cw)
	end := time.Now()
	if err == nil {
		err = out.Close()
	}
	if err == nil && n != o.size {
		err = fmt.Errorf("got %d bytes, expected %d", n, o.size)
	}
	if err == nil && t.done != nil {
		err = t.done()
	}
	if err == nil {
		// A cut near the end may still be resuming: let it finish so
		// that the report is complete.
		err = rec.waitSettled(ctx)
	}
	points := sampler.stop(end, cw.n.Load())
	lines, _ := rec.live(time.Now(), true)
	ui.finish(lines)
	if err != nil {
		if ctx.Err() != nil {
			return err // said by the deferred function
		}
		if cerr := rec.closedErr(); cerr != nil {
			return fmt.Errorf("transfer: %w (session ended: %v)", err, cerr)
		}
		return fmt.Errorf("transfer: %w", err)
	}
	elapsed := end.Sub(rec.start)

	got, err := hashFile(localPath)
	if err != nil {
		return fmt.Errorf("reading back the download: %w", err)
	}

	// Summary.
	fmt.Fprintf(stdout, "transfer:   %s in %.2f s, %.1f MB/s on average\n",
		binaryBytes(n), elapsed.Seconds(), float64(n)/elapsed.Seconds()/1e6)
	if got == want {
		fmt.Fprintf(stdout, "verified:   SHA-256 %x matches\n", got)
	} else {
		fmt.Fprintf(stdout, "verified:   FAILED: SHA-256 of the download %x, of the server's file %x\n", got, want)
	}
	rec.printSummary(stdout, t.stats(), n)

	var svgErr error
	if o.svg != "" {
		chart := &svgplot.Chart{
			Title:   rec.chartTitle(t.proto),
			Points:  points,
			Outages: rec.chartOutages(),
			Resumes: rec.chartResumes(),
		}
		if svgErr = writeChart(o.svg, chart); svgErr == nil {
			fmt.Fprintf(stdout, "figure:     %s (bytes received over time, outages shaded, resumptions marked)\n", o.svg)
		}
	}
	if got != want {
		return fmt.Errorf("SHA-256 mismatch: downloaded %x, the server's file is %x", got, want)
	}
	if svgErr != nil {
		return fmt.Errorf("writing the figure: %w", svgErr)
	}
	return nil
}

// cutMode is the kind of the i-th cut: blackhole, reset, blackhole, ...
type cutMode int

func (i cutMode) mode() netsim.CutMode {
	if i%2 == 0 {
		return netsim.Blackhole
	}
	return netsim.Reset
}

func (i cutMode) name() string {
	if i.mode() == netsim.Blackhole {
		return "blackhole"
	}
	return "reset"
}

// demoOutage is one loss of the link: a planned cut, or an unplanned loss
// (kind "unplanned").
type demoOutage struct {
	n         int
	kind      string
	at        int64 // bytes received when it happened
	cutAt     time.Time
	pathUpAt  time.Time
	lostAt    time.Time // the client declared the link lost
	lostErr   error
	hold      time.Duration
	attempts  int // attempts so far, or the successful one
	failed    int
	resumedAt time.Time
	handshake time.Duration
	detached  time.Duration  // from lostAt to resumedAt
	resentC   uint64         // bytes the client sent again
	resentS   uint64         // bytes the server sent again
	srvResume int            // resumptions the server reported
	links     []*netsim.Link // the connections the cut broke

	// What the live display has said.
	shownCut, shownLost, shownResumed bool
}

// demoRecorder collects the session's events and drives the cuts.
type demoRecorder struct {
	net  *netsim.Network
	opts *demoOptions

	mu       sync.Mutex
	start    time.Time
	outages  []*demoOutage
	cur      *demoOutage
	nextCut  int
	links    []*netsim.Link
	timers   []*time.Timer
	closed   bool
	closeErr error
}

func (r *demoRecorder) begin(t time.Time) {
	r.mu.Lock()
	r.start = t
	r.mu.Unlock()
}

func (r *demoRecorder) addLink(l *netsim.Link) {
	if l == nil {
		return
	}
	r.mu.Lock()
	r.links = append(r.links, l)
	r.mu.Unlock()
}

func (r *demoRecorder) stopTimers() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range r.timers {
		t.Stop()
	}
}

// maybeCut is called as bytes arrive: once the transfer passes the next
// mark (k/(cuts+1) of the size) and the previous outage is over, it cuts
// every connection and takes the network down for the outage time.
func (r *demoRecorder) maybeCut(n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.opts
	if r.nextCut >= o.cuts || n < o.size/int64(o.cuts+1)*int64(r.nextCut+1) {
		return
	}
	if c := r.cur; c != nil && (c.resumedAt.IsZero() || c.srvResume == 0 && time.Since(c.resumedAt) < time.Second) {
		// The previous outage is not over (on both sides: the server's
		// report of what it resent may lag the client's a little).
		return
	}
	i := cutMode(r.nextCut)
	r.nextCut++
	out := &demoOutage{n: r.nextCut, kind: i.name(), at: n, cutAt: time.Now()}
	r.outages = append(r.outages, out)
	r.cur = out
	out.links = r.net.Links()
	r.net.SetPathDown(true)
	r.net.CutAll(i.mode())
	r.timers = append(r.timers, time.AfterFunc(o.outage, func() {
		r.net.SetPathDown(false)
		r.mu.Lock()
		out.pathUpAt = time.Now()
		r.mu.Unlock()
	}))
}

// clientEvent receives the client's session events; it must not block.
func (r *demoRecorder) clientEvent(e rsftp.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	switch e.Kind {
	case rsftp.EventLinkLost:
		if r.cur == nil || !r.cur.lostAt.IsZero() {
			// Not caused by a cut of ours.
			r.cur = &demoOutage{n: len(r.outages) + 1, kind: "unplanned", cutAt: e.Time}
			r.outages = append(r.outages, r.cur)
		}
		r.cur.lostAt, r.cur.lostErr, r.cur.hold = e.Time, e.Err, e.Hold
	case rsftp.EventReconnecting:
		if r.cur != nil {
			r.cur.attempts = e.Attempt
		}
	case rsftp.EventResumeFailed:
		if r.cur != nil {
			r.cur.failed++
		}
	case rsftp.EventResumed:
		if r.cur != nil {
			r.cur.resumedAt, r.cur.attempts = e.Time, e.Attempt
			r.cur.handshake, r.cur.detached, r.cur.resentC = e.Handshake, e.Offline, e.Retransmitted
		}
	case rsftp.EventClosed:
		r.closed, r.closeErr = true, e.Err
	}
}

// serverEvent receives the server's events: its resumptions say how much
// it sent again.
func (r *demoRecorder) serverEvent(e rsftp.Event) {
	if e.Kind != rsftp.EventResumed {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.outages) - 1; i >= 0; i-- {
		if o := r.outages[i]; !o.cutAt.After(e.Time) {
			o.resentS += e.Retransmitted
			o.srvResume++
			return
		}
	}
}

func (r *demoRecorder) closedErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.closed {
		return nil
	}
	if r.closeErr == nil {
		return errors.New("closed")
	}
	return r.closeErr
}

// waitSettled waits until the last outage has resumed on both sides.
func (r *demoRecorder) waitSettled(ctx context.Context) error {
	var resumedAt time.Time
	for {
		r.mu.Lock()
		o, closed := r.cur, r.closed
		done := o == nil || (!o.resumedAt.IsZero() && o.srvResume > 0)
		if o != nil && !o.resumedAt.IsZero() {
			resumedAt = o.resumedAt
		}
		r.mu.Unlock()
		// The server's event may lag the client's a little.
		if done || (!resumedAt.IsZero() && time.Since(resumedAt) > time.Second) {
			return nil
		}
		if closed {
			return fmt.Errorf("the session ended while detached: %v", r.closedErr())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// live returns the permanent lines the display has not shown yet and the
// current status ("" while attached). With final it shows what it has.
func (r *demoRecorder) live(now time.Time, final bool) (lines []demoLine, status string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, o := range r.outages {
		if !o.shownCut && o.kind != "unplanned" {
			o.shownCut = true
			what := "the link goes silent (a dead Wi-Fi: no RST)"
			if o.kind == "reset" {
				what = "the connection is reset"
			}
			lines = append(lines, demoLine{o.cutAt, fmt.Sprintf("cut %d (%s) at %s: %s, the network is unreachable for %v",
				o.n, o.kind, binaryBytes(o.at), what, r.opts.outage)})
		}
		if !o.shownLost && !o.lostAt.IsZero() {
			o.shownLost = true
			lines = append(lines, demoLine{o.lostAt, fmt.Sprintf("link lost (%s), noticed after %d ms: %v",
				o.kind, o.lostAt.Sub(o.cutAt).Milliseconds(), o.lostErr)})
		}
		if !o.shownResumed && !o.resumedAt.IsZero() && (o.srvResume > 0 || final || now.Sub(o.resumedAt) > 300*time.Millisecond) {
			o.shownResumed = true
			lines = append(lines, demoLine{o.resumedAt, fmt.Sprintf("resumed after %.2f s (handshake %d ms, attempt %d, %s resent)",
				o.resumedAt.Sub(o.cutAt).Seconds(), o.handshake.Milliseconds(), o.attempts, binaryBytes(int64(o.resentS+o.resentC)))})
		}
	}
	if o := r.cur; o != nil && o.resumedAt.IsZero() {
		switch {
		case o.lostAt.IsZero():
			status = fmt.Sprintf("cut %d (%s): no data, waiting for the liveness check (%.1f s)", o.n, o.kind, now.Sub(o.cutAt).Seconds())
		case o.attempts == 0:
			status = fmt.Sprintf("link lost (%s), reconnecting", o.kind)
		default:
			left := max(o.lostAt.Add(o.hold).Sub(now), 0).Round(time.Second)
			status = fmt.Sprintf("link lost (%s), reconnecting (attempt %d), server holds the session for %v", o.kind, o.attempts, left)
		}
	}
	return lines, status
}

func (r *demoRecorder) printSummary(w io.Writer, st resume.Stats, transferred int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.outages) == 0 {
		fmt.Fprintln(w, "outages:    none")
	} else {
		fmt.Fprintln(w, "outages:")
		fmt.Fprintf(w, "  %2s  %-9s  %7s  %9s  %8s  %8s  %9s  %8s  %11s  %9s  %9s\n",
			"#", "kind", "cut at", "received", "noticed", "detached", "handshake", "attempts", "cut→resumed", "in flight", "resent")
		for _, o := range r.outages {
			res := func(d time.Duration) string {
				if o.resumedAt.IsZero() {
					return "-"
				}
				return fmt.Sprintf("%d ms", d.Milliseconds())
			}
			inFlight := "-"
			if o.links != nil {
				inFlight = binaryBytes(lostInFlight(o.links))
			}
			fmt.Fprintf(w, "  %2d  %-9s  %5.2f s  %9s  %5d ms  %8s  %9s  %8d  %11s  %9s  %9s\n",
				o.n, o.kind, o.cutAt.Sub(r.start).Seconds(), binaryBytes(o.at), o.lostAt.Sub(o.cutAt).Milliseconds(),
				res(o.detached), res(o.handshake), o.attempts, res(o.resumedAt.Sub(o.cutAt)), inFlight,
				binaryBytes(int64(o.resentS+o.resentC)))
		}
		notes := []string{
			"noticed: from the cut until the client declares the link lost (at once on a reset, after",
			"  4 silent keepalive intervals of 250 ms on a blackhole); detached: from then until resumed",
			"handshake: TCP connect, key exchange and resume exchange of the attempt that succeeded",
			"in flight: bytes written to the broken connection that the other end never read (whole",
			"  packets: framing, MACs and keepalives included)",
			"resent: the messages both sides sent again from their retention buffers after resuming:",
			"  those lost in flight plus what the server queued while detached (its SFTP reads run",
			"  ahead within the channel window); each reached the other side once",
		}
		if r.opts.tls {
			notes = []string{
				"noticed: from the cut until the client declares the link lost (at once on a reset, after",
				"  its silent keepalive intervals on a blackhole); detached: from then until resumed",
				"handshake: TCP connect, TLS 1.3 handshake and resume request of the attempt that succeeded",
				"in flight: bytes written to the broken connection that the other end never read (whole",
				"  TLS records: headers, tags and keepalives included)",
				"resent: the records both sides sent again from their retention buffers after resuming:",
				"  those lost in flight plus what the server wrote while detached (within its retention",
				"  limit); each reached the other side once",
			}
		}
		for _, l := range notes {
			fmt.Fprintln(w, "            "+l)
		}
	}
	var resumes, failed int
	var stalled time.Duration
	var resentS, resentC uint64
	var lost int64
	for _, o := range r.outages {
		lost += lostInFlight(o.links)
		failed += o.failed
		resentS += o.resentS
		resentC += o.resentC
		if !o.resumedAt.IsZero() {
			resumes++
			stalled += o.resumedAt.Sub(o.cutAt)
		}
	}
	if r.nextCut < r.opts.cuts {
		fmt.Fprintf(w, "note:       only %d of %d cuts happened before the transfer ended\n", r.nextCut, r.opts.cuts)
	}
	fmt.Fprintf(w, "reconnects: %d (after %d failed attempts while the network was unreachable); %.2f s without a link in all\n",
		resumes, failed, stalled.Seconds())
	var down, up int64
	for _, l := range r.links {
		s := l.Stats()
		down += s.DeliveredToClient
		up += s.DeliveredToServer
	}
	fmt.Fprintf(w, "resent:     %s by the server, %s by the client: messages the other side had not received\n",
		binaryBytes(int64(resentS)), binaryBytes(int64(resentC)))
	fmt.Fprintf(w, "            when its link broke, sent once more (the client received %s in all for a %s file)\n",
		binaryBytes(down), binaryBytes(transferred))
	unit, overhead := "packets", "SSH and SFTP framing"
	if r.opts.tls {
		unit, overhead = "records", "TLS records and resume framing"
	}
	fmt.Fprintf(w, "lost:       %s of %s swallowed by the broken connections (framing, MACs and\n", binaryBytes(lost), unit)
	fmt.Fprintln(w, "            keepalives included: keepalives are not resent)")
	ackBytes := int64(st.AcksSent) * demoAckBytes
	fmt.Fprintf(w, "ACKs:       the client sent %d, ~%s on the wire: %.3f %% of the bytes transferred\n",
		st.AcksSent, binaryBytes(ackBytes), 100*float64(ackBytes)/float64(max(transferred, 1)))
	fmt.Fprintf(w, "wire:       %s reached the client (%+.2f %% over the file: %s), %s the server, over %d TCP connections\n",
		binaryBytes(down), 100*float64(down-transferred)/float64(max(transferred, 1)), overhead, binaryBytes(up), len(r.links))
}

func (r *demoRecorder) chartTitle(proto string) string {
	o := r.opts
	bw := "unlimited"
	if o.bandwidth > 0 {
		bw = decimalBytes(o.bandwidth) + "/s"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return fmt.Sprintf("rsftp: %s download of %s across %d link cuts (%v RTT, %s)", proto, binaryBytes(o.size), r.nextCut, 2*o.latency, bw)
}

func (r *demoRecorder) chartOutages() []svgplot.Outage {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []svgplot.Outage
	for _, o := range r.outages {
		so := svgplot.Outage{Start: o.cutAt.Sub(r.start), Label: fmt.Sprintf("cut %d (%s)", o.n, o.kind)}
		if o.kind == "unplanned" {
			so.Label = "link lost"
		}
		if !o.resumedAt.IsZero() {
			so.End = max(o.resumedAt.Sub(r.start), so.Start+time.Nanosecond)
		}
		out = append(out, so)
	}
	return out
}

func (r *demoRecorder) chartResumes() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []time.Duration
	for _, o := range r.outages {
		if !o.resumedAt.IsZero() {
			out = append(out, o.resumedAt.Sub(r.start))
		}
	}
	return out
}

// lostInFlight is what the links accepted but never delivered, both ways.
func lostInFlight(links []*netsim.Link) int64 {
	var n int64
	for _, l := range links {
		s := l.Stats()
		n += s.SentToClient - s.DeliveredToClient + s.SentToServer - s.DeliveredToServer
	}
	return n
}

// countingWriter counts the bytes written through it and reports the
// total after each write.
type countingWriter struct {
	w     io.Writer
	n     atomic.Int64
	after func(int64)
}

func (c *countingWriter) Write(p []byte) (int, error) {
	k, err := c.w.Write(p)
	n := c.n.Add(int64(k))
	if c.after != nil {
		c.after(n)
	}
	return k, err
}

// sampler records the transfer's progress every demoSample and drives
// the live display.
type sampler struct {
	quit   chan struct{}
	done   chan struct{}
	start  time.Time
	points []svgplot.Point
}

func startSampler(rec *demoRecorder, cw *countingWriter, ui *demoUI) *sampler {
	start := rec.start
	s := &sampler{quit: make(chan struct{}), done: make(chan struct{}), start: start, points: []svgplot.Point{{T: 0, Bytes: 0}}}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(demoSample)
		defer tick.Stop()
		for {
			select {
			case <-s.quit:
				return
			case now := <-tick.C:
				s.points = append(s.points, svgplot.Point{T: now.Sub(start), Bytes: cw.n.Load()})
				lines, status := rec.live(now, false)
				ui.show(lines, status, s.points, start, now)
			}
		}
	}()
	return s
}

// stop ends the sampling with a last point at end and returns the points.
func (s *sampler) stop(end time.Time, n int64) []svgplot.Point {
	close(s.quit)
	<-s.done
	t := end.Sub(s.start)
	pts := s.points
	for len(pts) > 1 && pts[len(pts)-1].T > t {
		pts = pts[:len(pts)-1]
	}
	return append(pts, svgplot.Point{T: t, Bytes: n})
}

// demoLine is a permanent line of the live display.
type demoLine struct {
	t    time.Time
	text string
}

// demoUI is the live display on stderr: permanent lines for the events,
// and on a terminal a progress line redrawn in place.
type demoUI struct {
	w      io.Writer
	on     bool
	tty    bool
	size   int64
	drawn  bool
	last   time.Time
	status string
	start  time.Time
	mu     sync.Mutex
}

func newDemoUI(w io.Writer, quiet bool, size int64) *demoUI {
	u := &demoUI{w: w, on: !quiet, size: size}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		u.tty = true
	}
	return u
}

func (u *demoUI) printf(at time.Time, format string, args ...any) {
	if !u.on {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.start.IsZero() {
		u.start = at
	}
	u.line(demoLine{at, fmt.Sprintf(format, args...)})
}

// line prints a permanent line; u.mu is held.
func (u *demoUI) line(l demoLine) {
	if u.tty && u.drawn {
		fmt.Fprint(u.w, "\r\x1b[K")
		u.drawn = false
	}
	fmt.Fprintf(u.w, "[%6.2f s] %s\n", l.t.Sub(u.start).Seconds(), l.text)
}

func (u *demoUI) show(lines []demoLine, status string, pts []svgplot.Point, start, now time.Time) {
	if !u.on {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.start.IsZero() {
		u.start = start
	}
	for _, l := range lines {
		u.line(l)
	}
	if !u.tty || (len(lines) == 0 && status == u.status && now.Sub(u.last) < 100*time.Millisecond) {
		return
	}
	u.last, u.status = now, status
	cur := pts[len(pts)-1]
	// The rate over the last half second.
	j := len(pts) - 1
	for j > 0 && cur.T-pts[j-1].T <= 500*time.Millisecond {
		j--
	}
	rate := 0.0
	if dt := (cur.T - pts[j].T).Seconds(); dt > 0 {
		rate = float64(cur.Bytes-pts[j].Bytes) / dt
	}
	tail := fmt.Sprintf("%6.1f MB/s", rate/1e6)
	if status != "" {
		tail = status
	}
	fmt.Fprintf(u.w, "\r%3d%% %9s / %s  %5.1f s  %s\x1b[K", cur.Bytes*100/max(u.size, 1),
		binaryBytes(cur.Bytes), binaryBytes(u.size), cur.T.Seconds(), tail)
	u.drawn = true
}

// finish prints the last lines and clears the progress line.
func (u *demoUI) finish(lines []demoLine) {
	if !u.on {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, l := range lines {
		u.line(l)
	}
	if u.tty && u.drawn {
		fmt.Fprint(u.w, "\r\x1b[K")
		u.drawn = false
	}
}

func writeRandomFile(path string, size int64) ([32]byte, error) {
	f, err := os.Create(path)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, size); err != nil {
		return [32]byte{}, err
	}
	if err := f.Close(); err != nil {
		return [32]byte{}, err
	}
	return [32]byte(h.Sum(nil)), nil
}

func hashFile(path string) ([32]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return [32]byte{}, err
	}
	return [32]byte(h.Sum(nil)), nil
}

func writeChart(path string, c *svgplot.Chart) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := c.WriteSVG(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func newKey() (kex.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return kex.NewSigner(priv)
}

// byteSize is a flag holding a number of bytes, with an optional unit:
// KiB, MiB, GiB (K, M, G) or kB, MB, GB; "/s" may follow.
type byteSize int64

func (b *byteSize) String() string {
	if b == nil {
		return "0"
	}
	v := int64(*b)
	for _, u := range []struct {
		name string
		n    int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"GB", 1e9}, {"MB", 1e6}, {"KiB", 1 << 10}, {"kB", 1e3}} {
		if v != 0 && v%u.n == 0 {
			return strconv.FormatInt(v/u.n, 10) + u.name
		}
	}
	return strconv.FormatInt(v, 10)
}

func (b *byteSize) Set(s string) error {
	v, err := parseBytes(s)
	if err != nil {
		return err
	}
	*b = byteSize(v)
	return nil
}

func parseBytes(s string) (int64, error) {
	t := strings.TrimSuffix(strings.TrimSpace(s), "/s")
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		i = len(t)
	}
	num, unit := t[:i], strings.ToLower(strings.TrimSpace(t[i:]))
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, fmt.Errorf("bad size %q", s)
	}
	mult := map[string]float64{"": 1, "b": 1, "k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
		"m": 1 << 20, "mib": 1 << 20, "mb": 1e6, "g": 1 << 30, "gib": 1 << 30, "gb": 1e9}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("bad size %q: unknown unit %q", s, t[i:])
	}
	v *= mult
	if math.IsNaN(v) || v < 0 || v > 1<<50 {
		return 0, fmt.Errorf("size %q out of range", s)
	}
	return int64(v), nil
}

// binaryBytes formats n as B, KiB, MiB or GiB.
func binaryBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// decimalBytes formats n as B, kB, MB or GB.
func decimalBytes(n int64) string {
	switch {
	case n >= 1e9:
		return strconv.FormatFloat(float64(n)/1e9, 'f', -1, 64) + " GB"
	case n >= 1e6:
		return strconv.FormatFloat(float64(n)/1e6, 'f', -1, 64) + " MB"
	case n >= 1e3:
		return strconv.FormatFloat(float64(n)/1e3, 'f', -1, 64) + " kB"
	}
	return fmt.Sprintf("%d B", n)
}

// times says how many times something happened, as people write it.
func times(n int) string {
	switch n {
	case 1:
		return "once"
	case 2:
		return "twice"
	}
	return fmt.Sprintf("%d times", n)
}

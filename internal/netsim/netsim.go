// Package netsim is a user-space network simulator for tests.
//
// A [Network] holds listeners on simulated addresses (any "host:port"
// string, for example "198.18.0.1:22") and the connections dialed to them.
// Every connection is a [Link] with two ends, the client end returned by
// [Network.Dial] and the server end returned by the listener's Accept. Each
// direction of a link behaves like a TCP stream over a path with a one-way
// latency, an optional bandwidth limit and a bounded amount of data in
// flight (a Write blocks once the limit is reached, like a full socket
// buffer). Bytes become readable only once their delivery time has come.
//
// Besides timing, the simulator provides the failures that matter for
// session resumption:
//
//   - [Link.Cut] with [Reset]: both ends get ECONNRESET on their next (or
//     current) Read or Write, as after a TCP RST.
//   - [Link.Cut] with [Blackhole]: nothing is delivered any more in either
//     direction; writes succeed until the in-flight limit is reached and then
//     block, reads block until their deadline, as on a dead Wi-Fi link that
//     sends no RST. [Link.Heal] ends a blackhole (like a path that comes back
//     before TCP gives up).
//   - [Network.SetPathDown]: new dials fail with [ErrUnreachable];
//     established connections are unaffected.
//   - [Network.CutAll]: cut every open connection.
//
// The package uses real time (time.Now and timers) and starts no goroutines:
// blocked calls wait on a channel that is closed whenever the state of their
// link changes, plus a timer for the next delivery or the deadline.
//
// A test that cuts a connection in the middle of a transfer:
//
//	n := netsim.New(netsim.WithLatency(5 * time.Millisecond))
//	defer n.Close()
//	ln, _ := n.Listen("198.18.0.1:22")
//	go func() {
//		c, _ := ln.Accept()
//		io.Copy(io.Discard, c)
//	}()
//	c, _ := n.Dial(ctx, "198.18.0.1:22")
//	c.Write(first)                        // part of the transfer is on its way
//	netsim.LinkOf(c).Cut(netsim.Reset)    // or netsim.Blackhole
//	_, err := c.Write(second)             // errors.Is(err, syscall.ECONNRESET)
//
// With [Blackhole] the second Write does not fail; it blocks once the
// in-flight limit is reached, so the test sets a write deadline or relies on
// the code under test noticing the silence (keepalive timeouts), then dials
// a new connection to resume.
package netsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// DefaultBufferSize is the default limit of bytes in flight per direction.
const DefaultBufferSize = 4 << 20

// maxSegment is the largest chunk a Write enqueues at once. Each chunk gets
// its own delivery time, so a bandwidth-limited stream trickles in.
const maxSegment = 32 << 10

// ErrUnreachable is returned (wrapped in a *net.OpError) by dials while the
// path is down, see [Network.SetPathDown].
var ErrUnreachable = errors.New("netsim: network is unreachable")

// LinkConfig holds the properties of a link. They apply to each direction
// separately.
type LinkConfig struct {
	// Latency is the one-way delay.
	Latency time.Duration
	// Bandwidth is in bytes per second; 0 means unlimited.
	Bandwidth int64
	// BufferSize is the maximum number of bytes written but not yet read
	// per direction; 0 or less means DefaultBufferSize.
	BufferSize int
}

func (c LinkConfig) bufferSize() int {
	if c.BufferSize <= 0 {
		return DefaultBufferSize
	}
	return c.BufferSize
}

// Option configures a Network.
type Option func(*Network)

// WithLatency sets the default one-way latency of new links.
func WithLatency(d time.Duration) Option {
	return func(n *Network) { n.defaults.Latency = d }
}

// WithBandwidth sets the default bandwidth of new links in bytes per second
// (0 = unlimited).
func WithBandwidth(bytesPerSecond int64) Option {
	return func(n *Network) { n.defaults.Bandwidth = bytesPerSecond }
}

// WithBufferSize sets the default per-direction limit of bytes in flight of
// new links.
func WithBufferSize(bytes int) Option {
	return func(n *Network) { n.defaults.BufferSize = bytes }
}

// WithFailFast makes dials fail immediately with ErrUnreachable while the
// path is down, instead of waiting for the dial context to expire.
func WithFailFast() Option {
	return func(n *Network) { n.failFast = true }
}

// WithClientHost sets the host part of the local address of connections
// made with Dial (default "198.19.0.1"). Ports are allocated from 49152 up.
func WithClientHost(host string) Option {
	return func(n *Network) { n.clientHost = host }
}

// Network is a simulated network. The zero value is not usable; call New.
type Network struct {
	mu         sync.Mutex
	notify     chan struct{} // closed on state changes (see waitCh)
	defaults   LinkConfig
	failFast   bool
	clientHost string
	pathDown   bool
	closed     bool
	listeners  map[string]*listener
	links      map[*Link]struct{}
	nextID     int
	nextPort   int
}

// New returns a Network with the given options.
func New(opts ...Option) *Network {
	n := &Network{
		clientHost: "198.19.0.1",
		listeners:  make(map[string]*listener),
		links:      make(map[*Link]struct{}),
		nextPort:   49152,
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

func (n *Network) waitCh() <-chan struct{} {
	if n.notify == nil {
		n.notify = make(chan struct{})
	}
	return n.notify
}

func (n *Network) broadcast() {
	if n.notify != nil {
		close(n.notify)
		n.notify = nil
	}
}

// Defaults returns the configuration given to new links.
func (n *Network) Defaults() LinkConfig {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.defaults
}

// SetDefaults sets the configuration given to links created afterwards;
// existing links keep theirs (change them with Link.SetConfig).
func (n *Network) SetDefaults(cfg LinkConfig) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.defaults = cfg
}

// SetPathDown makes new dials fail with ErrUnreachable while down is true.
// Established connections are not affected; cut them explicitly.
// Dials waiting for the path proceed when it comes back up.
func (n *Network) SetPathDown(down bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.pathDown = down
	n.broadcast()
}

// Links returns the links that are not fully closed, oldest first.
func (n *Network) Links() []*Link {
	n.mu.Lock()
	ls := make([]*Link, 0, len(n.links))
	for l := range n.links {
		ls = append(ls, l)
	}
	n.mu.Unlock()
	slices.SortFunc(ls, func(a, b *Link) int { return a.id - b.id })
	return ls
}

// CutAll cuts every open connection with the given mode.
func (n *Network) CutAll(mode CutMode) {
	for _, l := range n.Links() {
		l.Cut(mode)
	}
}

// Close closes all listeners and connections of the network. Later Listen
// and Dial calls fail.
func (n *Network) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	var lns []*listener
	for _, ln := range n.listeners {
		lns = append(lns, ln)
	}
	n.broadcast()
	n.mu.Unlock()
	for _, ln := range lns {
		ln.Close()
	}
	for _, l := range n.Links() {
		l.client.Close()
		l.server.Close()
	}
	return nil
}

// Addr is the net.Addr of a simulated endpoint whose host is not an IP
// address. Endpoints with IP addresses use *net.TCPAddr.
type Addr string

// Network returns "tcp".
func (Addr) Network() string { return "tcp" }

func (a Addr) String() string { return string(a) }

func makeAddr(s string) net.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return net.TCPAddrFromAddrPort(ap)
	}
	return Addr(s)
}

// allocPort returns host:port with a fresh port if port is "0" or empty.
// n.mu must be held.
func (n *Network) allocAddr(host, port string) string {
	if port == "" || port == "0" {
		port = strconv.Itoa(n.nextPort)
		n.nextPort++
	}
	return net.JoinHostPort(host, port)
}

// Listen registers a listener on the simulated address addr ("host:port";
// port 0 picks a free port).
func (n *Network) Listen(addr string) (net.Listener, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Err: err}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Addr: Addr(addr), Err: net.ErrClosed}
	}
	addr = n.allocAddr(host, port)
	if _, ok := n.listeners[addr]; ok {
		return nil, &net.OpError{Op: "listen", Net: "tcp", Addr: makeAddr(addr),
			Err: &os.SyscallError{Syscall: "bind", Err: syscall.EADDRINUSE}}
	}
	ln := &listener{n: n, key: addr, addr: makeAddr(addr)}
	n.listeners[addr] = ln
	return ln, nil
}

// Dial connects to the listener at addr from an automatically chosen local
// address.
func (n *Network) Dial(ctx context.Context, addr string) (net.Conn, error) {
	return n.DialFrom(ctx, "", addr)
}

// DialFrom connects to the listener at addr from localAddr ("host:port";
// an empty string or port 0 picks a local address or port).
//
// The dial takes one round trip (twice the default latency). If nobody
// listens on addr it fails with ECONNREFUSED. While the path is down it
// waits until the path comes up or ctx is done, and then fails with an error
// wrapping both ErrUnreachable and ctx.Err(); with WithFailFast it fails
// immediately.
func (n *Network) DialFrom(ctx context.Context, localAddr, addr string) (net.Conn, error) {
	raddr := makeAddr(addr)
	fail := func(err error) error {
		return &net.OpError{Op: "dial", Net: "tcp", Addr: raddr, Err: err}
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fail(err)
	}
	host, port := n.clientHostDefault(), "0"
	if localAddr != "" {
		var err error
		host, port, err = net.SplitHostPort(localAddr)
		if err != nil {
			return nil, fail(err)
		}
	}
	for {
		if err := ctx.Err(); err != nil {
			return nil, fail(err)
		}
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			return nil, fail(net.ErrClosed)
		}
		if n.pathDown {
			if n.failFast {
				n.mu.Unlock()
				return nil, fail(ErrUnreachable)
			}
			ch := n.waitCh()
			n.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, fail(fmt.Errorf("%w: %w", ErrUnreachable, ctx.Err()))
			}
		}
		cfg := n.defaults
		n.mu.Unlock()

		// SYN, SYN-ACK.
		if err := sleepCtx(ctx, 2*cfg.Latency); err != nil {
			return nil, fail(err)
		}

		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			return nil, fail(net.ErrClosed)
		}
		if n.pathDown {
			// The handshake got lost; wait for the path like above.
			n.mu.Unlock()
			continue
		}
		ln := n.listeners[addr]
		if ln == nil || ln.closed {
			n.mu.Unlock()
			return nil, fail(&os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED})
		}
		laddr := makeAddr(n.allocAddr(host, port))
		l := n.newLink(n.defaults, laddr, ln.addr)
		ln.queue = append(ln.queue, l.server)
		n.broadcast()
		n.mu.Unlock()
		return l.client, nil
	}
}

func (n *Network) clientHostDefault() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.clientHost
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// newLink creates and registers a link. n.mu must be held.
func (n *Network) newLink(cfg LinkConfig, clientAddr, serverAddr net.Addr) *Link {
	n.nextID++
	l := &Link{n: n, id: n.nextID, cfg: cfg}
	l.client = &Conn{link: l, in: &l.toClient, out: &l.toServer, local: clientAddr, remote: serverAddr}
	l.server = &Conn{link: l, in: &l.toServer, out: &l.toClient, local: serverAddr, remote: clientAddr}
	n.links[l] = struct{}{}
	return l
}

type listener struct {
	n      *Network
	key    string
	addr   net.Addr
	queue  []*Conn // guarded by n.mu
	closed bool    // guarded by n.mu
}

func (ln *listener) Accept() (net.Conn, error) {
	n := ln.n
	n.mu.Lock()
	for {
		if ln.closed {
			n.mu.Unlock()
			return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: ln.addr, Err: net.ErrClosed}
		}
		if len(ln.queue) > 0 {
			c := ln.queue[0]
			ln.queue = ln.queue[1:]
			n.mu.Unlock()
			return c, nil
		}
		ch := n.waitCh()
		n.mu.Unlock()
		<-ch
		n.mu.Lock()
	}
}

// Close stops the listener; connections not yet accepted are reset.
func (ln *listener) Close() error {
	n := ln.n
	n.mu.Lock()
	if ln.closed {
		n.mu.Unlock()
		return &net.OpError{Op: "close", Net: "tcp", Addr: ln.addr, Err: net.ErrClosed}
	}
	ln.closed = true
	if n.listeners[ln.key] == ln {
		delete(n.listeners, ln.key)
	}
	pending := ln.queue
	ln.queue = nil
	n.broadcast()
	n.mu.Unlock()
	for _, c := range pending {
		c.link.Cut(Reset)
		c.Close()
	}
	return nil
}

func (ln *listener) Addr() net.Addr { return ln.addr }

// CutMode selects how Link.Cut breaks a connection.
type CutMode int

const (
	// Reset makes both ends fail with ECONNRESET at once; data in flight
	// is discarded.
	Reset CutMode = iota + 1
	// Blackhole stops all delivery in both directions. Data that has
	// already arrived can still be read; anything else never arrives.
	// Writes succeed until the in-flight limit is reached, then block.
	Blackhole
)

func (m CutMode) String() string {
	switch m {
	case Reset:
		return "Reset"
	case Blackhole:
		return "Blackhole"
	}
	return "CutMode(" + strconv.Itoa(int(m)) + ")"
}

// Stats counts the bytes of a link. Sent bytes were accepted by Write,
// delivered bytes were returned by Read on the other end.
type Stats struct {
	SentToServer, DeliveredToServer int64
	SentToClient, DeliveredToClient int64
}

// Link is a simulated connection: two Conns and the two directions between
// them.
type Link struct {
	n  *Network
	id int

	mu       sync.Mutex
	notify   chan struct{} // closed on every state change (see waitCh)
	cfg      LinkConfig
	reset    bool
	frozen   bool // blackholed
	frozenAt time.Time
	toServer pipe
	toClient pipe
	client   *Conn
	server   *Conn
}

// LinkOf returns the link of a connection made by a Network, or nil if c is
// not such a connection.
func LinkOf(c net.Conn) *Link {
	if sc, ok := c.(*Conn); ok {
		return sc.link
	}
	return nil
}

func (l *Link) waitCh() <-chan struct{} {
	if l.notify == nil {
		l.notify = make(chan struct{})
	}
	return l.notify
}

func (l *Link) broadcast() {
	if l.notify != nil {
		close(l.notify)
		l.notify = nil
	}
}

// Client returns the dialing end of the link.
func (l *Link) Client() *Conn { return l.client }

// Server returns the accepting end of the link.
func (l *Link) Server() *Conn { return l.server }

// Config returns the link's configuration.
func (l *Link) Config() LinkConfig {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cfg
}

// SetConfig changes the link's configuration. A new latency or bandwidth
// applies to data written afterwards; data is never reordered.
func (l *Link) SetConfig(cfg LinkConfig) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cfg = cfg
	l.broadcast()
}

// SetLatency changes the one-way latency of the link.
func (l *Link) SetLatency(d time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cfg.Latency = d
	l.broadcast()
}

// SetBandwidth changes the bandwidth of the link (bytes/second, 0 =
// unlimited).
func (l *Link) SetBandwidth(bytesPerSecond int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cfg.Bandwidth = bytesPerSecond
	l.broadcast()
}

// Stats returns the byte counters of the link.
func (l *Link) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Stats{
		SentToServer:      l.toServer.sent,
		DeliveredToServer: l.toServer.delivered,
		SentToClient:      l.toClient.sent,
		DeliveredToClient: l.toClient.delivered,
	}
}

// Cut breaks the link, see CutMode. Cutting a reset link does nothing.
func (l *Link) Cut(mode CutMode) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.reset {
		return
	}
	switch mode {
	case Reset:
		l.reset = true
		l.toServer.drop()
		l.toClient.drop()
	case Blackhole:
		if !l.frozen {
			l.frozen = true
			l.frozenAt = time.Now()
		}
	default:
		panic("netsim: invalid CutMode " + mode.String())
	}
	l.broadcast()
}

// Heal ends a blackhole: data stuck in flight is delivered one latency from
// now, as if retransmitted. It does not undo a Reset.
func (l *Link) Heal() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.frozen {
		return
	}
	l.frozen = false
	at := time.Now().Add(l.cfg.Latency)
	l.toServer.heal(l.frozenAt, at)
	l.toClient.heal(l.frozenAt, at)
	l.broadcast()
}

// IsCut reports whether the link is reset or blackholed.
func (l *Link) IsCut() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reset || l.frozen
}

// deliverable reports whether a segment due at t may be handed to the
// reader at now. l.mu must be held.
func (l *Link) deliverable(t, now time.Time) bool {
	return !t.After(now) && (!l.frozen || !t.After(l.frozenAt))
}

type segment struct {
	data []byte
	at   time.Time // delivery time
	fin  bool
}

// pipe is one direction of a link. It is guarded by the link's mutex.
type pipe struct {
	segs         []segment
	inflight     int       // bytes written and not yet read
	busyUntil    time.Time // when the sender's serialization ends
	lastAt       time.Time // delivery time of the last segment
	finQueued    bool
	readerGone   bool // the receiving end is closed
	readerGoneAt time.Time
	sent         int64
	delivered    int64
}

func (p *pipe) drop() {
	p.segs = nil
	p.inflight = 0
}

func (p *pipe) heal(frozenAt, at time.Time) {
	if p.readerGone {
		p.drop()
		return
	}
	for i := range p.segs {
		s := &p.segs[i]
		if s.at.After(frozenAt) && s.at.Before(at) {
			s.at = at
		}
	}
	if len(p.segs) > 0 {
		p.lastAt = p.segs[len(p.segs)-1].at
	}
}

// enqueue appends a segment that is written at now. For a FIN, data is nil.
func (p *pipe) enqueue(cfg LinkConfig, data []byte, fin bool, now time.Time) {
	depart := now
	if cfg.Bandwidth > 0 {
		if p.busyUntil.After(depart) {
			depart = p.busyUntil
		}
		depart = depart.Add(time.Duration(float64(len(data)) * float64(time.Second) / float64(cfg.Bandwidth)))
		p.busyUntil = depart
	}
	at := depart.Add(cfg.Latency)
	if at.Before(p.lastAt) {
		at = p.lastAt // keep the stream in order
	}
	p.lastAt = at
	p.segs = append(p.segs, segment{data: data, at: at, fin: fin})
	p.inflight += len(data)
	p.sent += int64(len(data))
}

// Conn is one end of a simulated connection. It implements net.Conn and
// CloseWrite.
type Conn struct {
	link          *Link
	in, out       *pipe
	local, remote net.Addr

	// Guarded by link.mu.
	closed   bool
	wrShut   bool
	rdl, wdl time.Time
}

var _ net.Conn = (*Conn)(nil)

// Link returns the connection's link.
func (c *Conn) Link() *Link { return c.link }

func (c *Conn) opErr(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.local, Addr: c.remote, Err: err}
}

func (c *Conn) sysErr(op string, errno syscall.Errno) error {
	return c.opErr(op, &os.SyscallError{Syscall: op, Err: errno})
}

// wait blocks until ch is closed or the earliest non-zero of deadline and
// wake has passed.
func wait(ch <-chan struct{}, deadline, wake time.Time) {
	t := deadline
	if t.IsZero() || (!wake.IsZero() && wake.Before(t)) {
		t = wake
	}
	if t.IsZero() {
		<-ch
		return
	}
	d := time.Until(t)
	if d <= 0 {
		return
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ch:
	case <-timer.C:
	}
}

// Read reads data that has arrived. It returns io.EOF once the peer has
// closed (or half-closed) and all data before that has been read.
func (c *Conn) Read(b []byte) (int, error) {
	l := c.link
	p := c.in
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		if c.closed {
			return 0, c.opErr("read", net.ErrClosed)
		}
		if l.reset {
			return 0, c.sysErr("read", syscall.ECONNRESET)
		}
		if len(b) == 0 {
			return 0, nil
		}
		now := time.Now()
		n := 0
		for n < len(b) && len(p.segs) > 0 && l.deliverable(p.segs[0].at, now) {
			s := &p.segs[0]
			if s.fin {
				break
			}
			k := copy(b[n:], s.data)
			n += k
			s.data = s.data[k:]
			if len(s.data) == 0 {
				p.segs[0] = segment{}
				p.segs = p.segs[1:]
			}
		}
		if n > 0 {
			p.inflight -= n
			p.delivered += int64(n)
			l.broadcast() // wake writers
			return n, nil
		}
		var wake time.Time
		if len(p.segs) > 0 {
			s := p.segs[0]
			if l.deliverable(s.at, now) && s.fin {
				return 0, io.EOF
			}
			if !l.frozen || !s.at.After(l.frozenAt) {
				wake = s.at
			}
		}
		if !c.rdl.IsZero() && !now.Before(c.rdl) {
			return 0, c.opErr("read", os.ErrDeadlineExceeded)
		}
		ch := l.waitCh()
		dl := c.rdl
		l.mu.Unlock()
		wait(ch, dl, wake)
		l.mu.Lock()
	}
}

// Write queues b for delivery to the peer. It blocks while the limit of
// bytes in flight is reached.
func (c *Conn) Write(b []byte) (int, error) {
	l := c.link
	p := c.out
	l.mu.Lock()
	defer l.mu.Unlock()
	written := 0
	for {
		if c.closed {
			return written, c.opErr("write", net.ErrClosed)
		}
		if l.reset {
			return written, c.sysErr("write", syscall.ECONNRESET)
		}
		if c.wrShut {
			return written, c.sysErr("write", syscall.EPIPE)
		}
		now := time.Now()
		if p.readerGone && (!l.frozen || p.readerGoneAt.Before(l.frozenAt)) {
			// The peer has closed: the first writes vanish, once its
			// RST could have arrived they fail.
			if now.Before(p.readerGoneAt.Add(l.cfg.Latency)) {
				p.sent += int64(len(b) - written)
				return len(b), nil
			}
			return written, c.sysErr("write", syscall.EPIPE)
		}
		if written == len(b) {
			return written, nil
		}
		if !c.wdl.IsZero() && !now.Before(c.wdl) {
			return written, c.opErr("write", os.ErrDeadlineExceeded)
		}
		limit := l.cfg.bufferSize()
		seg := min(maxSegment, limit, len(b)-written)
		if p.inflight == 0 || limit-p.inflight >= seg {
			data := make([]byte, seg)
			copy(data, b[written:])
			p.enqueue(l.cfg, data, false, now)
			written += seg
			l.broadcast() // wake the reader
			continue
		}
		ch := l.waitCh()
		dl := c.wdl
		l.mu.Unlock()
		wait(ch, dl, time.Time{})
		l.mu.Lock()
	}
}

// CloseWrite shuts down the writing side: the peer reads io.EOF after the
// data written so far. Later writes fail with EPIPE.
func (c *Conn) CloseWrite() error {
	l := c.link
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.closed {
		return c.opErr("close", net.ErrClosed)
	}
	c.shutWrite(time.Now())
	return nil
}

// shutWrite queues a FIN. l.mu must be held.
func (c *Conn) shutWrite(now time.Time) {
	l := c.link
	c.wrShut = true
	if !l.reset && !c.out.finQueued {
		c.out.finQueued = true
		c.out.enqueue(l.cfg, nil, true, now)
	}
	l.broadcast()
}

// Close closes the connection. The peer reads io.EOF after the data
// written so far; data sent to this end is discarded, and the peer's writes
// fail with EPIPE one latency after the close. (Unlike TCP, closing with
// unread data does not reset the connection; use Link.Cut for that.)
func (c *Conn) Close() error {
	l := c.link
	l.mu.Lock()
	if c.closed {
		l.mu.Unlock()
		return c.opErr("close", net.ErrClosed)
	}
	now := time.Now()
	c.shutWrite(now)
	c.closed = true
	c.in.readerGone = true
	c.in.readerGoneAt = now
	if !l.frozen {
		c.in.drop()
	}
	done := l.client.closed && l.server.closed
	l.broadcast()
	l.mu.Unlock()
	if done {
		l.n.mu.Lock()
		delete(l.n.links, l)
		l.n.mu.Unlock()
	}
	return nil
}

// LocalAddr returns the local address.
func (c *Conn) LocalAddr() net.Addr { return c.local }

// RemoteAddr returns the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.remote }

// SetDeadline sets the read and write deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	c.link.mu.Lock()
	defer c.link.mu.Unlock()
	c.rdl, c.wdl = t, t
	c.link.broadcast()
	return nil
}

// SetReadDeadline sets the read deadline; a blocked Read notices at once.
func (c *Conn) SetReadDeadline(t time.Time) error {
	c.link.mu.Lock()
	defer c.link.mu.Unlock()
	c.rdl = t
	c.link.broadcast()
	return nil
}

// SetWriteDeadline sets the write deadline; a blocked Write notices at once.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	c.link.mu.Lock()
	defer c.link.mu.Unlock()
	c.wdl = t
	c.link.broadcast()
	return nil
}

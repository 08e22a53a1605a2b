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
	"time"

	"github.com/rsftp/rsftp/internal/netwatch"
	"github.com/rsftp/rsftp/resume"
)

// Config is the resumable mode's policy; a nil *Config takes every
// default. Fields say which side uses them.
type Config struct {
	// Disable makes Dial offer plain TLS only, and a Listener select it.
	Disable bool
	// DialContext makes the TCP connections (client; net.Dialer's by
	// default). Each reconnection calls it again.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// AliveInterval and AliveCountMax find a dead link (client): after
	// AliveInterval without a record the client sends PING, and after
	// AliveCountMax unanswered PINGs it reconnects. Defaults 1 s and 3.
	AliveInterval time.Duration
	AliveCountMax int
	// MinBackoff, MaxBackoff and AttemptTimeout pace reconnections
	// (client; resume.SupervisorConfig's defaults).
	MinBackoff, MaxBackoff, AttemptTimeout time.Duration
	// PathChanges and PathChanged: as resume.SupervisorConfig's (client):
	// a notice of a change of the system's addresses or routes, and
	// whether the connection from local to remote would now take another
	// path (it is then given up at once). By default the system's
	// notices (internal/netwatch: netlink, routing sockets, iphlpapi)
	// unless NoNetworkWatch.
	PathChanges    <-chan struct{}
	PathChanged    func(local, remote net.Addr) bool
	NoNetworkWatch bool
	// Linger is how long a closed Conn's session waits for the peer to
	// acknowledge what was written before it ends (either side;
	// DefaultLinger if 0).
	Linger time.Duration
	// RetentionLimit bounds the memory one session's unacknowledged DATA
	// occupies (either side; resume.DefaultRetention by default). Writes
	// wait beyond it.
	RetentionLimit int
	// Events receives each change of a session's connection (either
	// side); it must not block.
	Events func(resume.Event)

	// Hold is how long the server keeps a detached session
	// (resume.DefaultHold by default), announced to the client.
	Hold time.Duration
	// IdleTimeout detaches a server session whose connection brought no
	// record for that long (resume.DefaultIdleTimeout by default).
	IdleTimeout time.Duration
	// MaxSessions, MaxDetachedPerClient: the server's session limits
	// (resume.Registry's MaxSessions and MaxDetachedPerUser). A client is
	// known by its certificate's public key if it showed one, else by its
	// IP address.
	MaxSessions, MaxDetachedPerClient int
	// Budget is charged with every byte the server's sessions retain
	// (resume.Registry.Budget); MaxRetainedBytes is its limit when
	// Budget is nil (1 GiB by default).
	Budget           *resume.Budget
	MaxRetainedBytes int64
	// HandshakeTimeout bounds a new connection's TLS handshake and first
	// record (server; 10 s by default); MaxHandshakes bounds those under
	// way at once (256 by default).
	HandshakeTimeout time.Duration
	MaxHandshakes    int
}

func (c *Config) get() *Config {
	if c == nil {
		return &Config{}
	}
	return c
}

// Conn is a net.Conn over TLS that survives the loss of its connection
// when both ends speak the resumable mode: the same *Conn reads and
// writes across reconnections, each byte delivered once and in order.
// Against a peer without the mode it is a plain TLS connection.
//
// Close ends the session for the peer too (CLOSE); a lost link does not:
// the client reconnects until the server's hold time runs out, and reads
// and writes wait meanwhile (writes while the retention limit has room).
type Conn struct {
	plain *tls.Conn // plain TLS: everything goes to it
	sess  *resume.Session
	sv    *resume.Supervisor // client

	mu  sync.Mutex
	cur *link

	// The reader goroutine hands DATA to Read through data: records
	// that stay valid while the link reads readBuffers-1 more DATA (one
	// in Read's hands, readAhead in the channel, one being read).
	data    chan []byte
	readErr error // set before data is closed
	open    bool  // data not closed yet
	closed  chan struct{}
	once    sync.Once
	// readMu: one reader of the session at a time, Read or the reader
	// goroutine (see reader). reads counts Reads; waiting says that a
	// Read waits for the reader goroutine, and bgKick wakes it; hint
	// bounds Read's own reads and takes DATA to its buffer (readPart).
	readMu     sync.Mutex
	pollUntil  int64       // Read's last bound (readNow), under readMu
	ownReading atomic.Bool // Read is reading the connection (kickRead)
	reads      atomic.Uint64
	waiting    atomic.Bool
	bgKick     chan struct{}
	hint       readHint

	rmu     sync.Mutex
	pending []byte

	wmu    sync.Mutex
	rd, wd deadline
	// held: Write's frames may wait in a link's batch (link.SealFrame).
	held holder

	local      net.Addr
	lingerTime time.Duration
	// retLimit and budget are what the session's retention is bounded by
	// (waitRoom).
	retLimit int
	budget   *resume.Budget
	// stalling is set while the reader waits for the application to
	// read; stalled once that has lasted stalledKeepalive (shared with
	// the links: see link.PacketsReceived). stallTimer is the reader's,
	// ticking while it waits.
	stalling, stalled atomic.Bool
	stallTimer        *time.Timer
}

func newConn(s *resume.Session, l *link, cfg *Config) *Conn {
	// A link writes ACKs from its writer goroutine, in records of their
	// own: one ahead of each write would add records, not save them.
	s.SetEarlyAck(0)
	c := &Conn{sess: s, cur: l, data: make(chan []byte, readAhead), open: true, closed: make(chan struct{}),
		bgKick: make(chan struct{}, 1), local: l.raw.LocalAddr(), lingerTime: cfg.Linger}
	if c.lingerTime <= 0 {
		c.lingerTime = DefaultLinger
	}
	c.retLimit = cfg.RetentionLimit
	if c.retLimit <= 0 {
		c.retLimit = resume.DefaultRetention
	}
	c.rd.init()
	c.rd.expired = c.kickRead
	c.wd.init()
	c.adopt(l)
	s.SetBeforeWait(c.flushHeld)
	c.stallTimer = time.AfterFunc(time.Hour, c.stallTick)
	c.stallTimer.Stop()
	go c.reader()
	return c
}

func newPlainConn(tc *tls.Conn) *Conn {
	return &Conn{plain: tc, closed: make(chan struct{})}
}

// Reading. The application's Read reads the session itself when it can
// (readNow): the record goes from TLS to the caller with no goroutine
// between, as plain TLS's does. The reader goroutine reads while the
// application does not: it answers PINGs and takes ACKs for a Conn that
// only writes, and keeps readAhead records ready for the next Read. One
// of them reads at a time, holding readMu; a record the reader read is
// handed on (to data) before readMu is released, so that Read, once it
// holds readMu and finds data empty, reads the next record.

// readGrace is how long the reader waits after a Read before it reads in
// the application's place: while Reads come closer than that, the reader
// leaves the connection to them, and each record goes from TLS to the
// caller without a handoff between goroutines.
const readGrace = 10 * time.Millisecond

// readPoll bounds a Read's own read of the connection: if no record
// arrives within it, Read gives the reading over to the reader goroutine
// and waits for it (which a deadline, Close and a lost link can
// interrupt).
const readPoll = 2 * time.Millisecond

// reader reads the session while the application does not, until the
// session ends: DATA to Read through data until EOF, then (the session
// handles ACKs as it reads) nothing more. Once the Conn is closed it
// discards what arrives.
func (c *Conn) reader() {
	park := time.NewTimer(readGrace)
	park.Stop()
	var seen uint64
	ended := false // the session ended: read its end
	for {
		if n := c.reads.Load(); n != seen && !c.waiting.Load() && !ended {
			// Reads came since we last looked: leave the connection to
			// them until they stop for readGrace, or one waits for us.
			seen = n
			park.Reset(readGrace)
			select {
			case <-park.C:
			case <-c.bgKick:
			case <-c.sess.Done():
				ended = true
			}
			continue
		}
		c.readMu.Lock()
		c.hint.poll.Store(0)
		c.hint.dst = nil
		p, err := c.sess.ReadPacket()
		if err != nil {
			c.finish(readError(err))
			c.readMu.Unlock()
			return
		}
		body, err := c.dataRecord(p)
		switch {
		case err != nil:
			c.readMu.Unlock()
			return
		case body != nil:
			c.handOn(body)
		}
		c.readMu.Unlock()
	}
}

// finish ends what Read gets: err after the records handed on. Under
// readMu.
func (c *Conn) finish(err error) {
	if c.open {
		c.readErr = err
		close(c.data)
		c.open = false
	}
}

// dataRecord takes a counted record the session read: a DATA record's
// body, nil for EOF (Read gets EOF once the records before it are
// read), an error (the session ended with a protocol error) for anything
// else. Under readMu.
func (c *Conn) dataRecord(p []byte) ([]byte, error) {
	switch {
	case p[0] == RecEOF && c.open:
		c.finish(io.EOF)
		return nil, nil
	case p[0] != RecData || !c.open:
		// Only DATA and one EOF are counted records of ours.
		err := &ProtocolError{Err: fmt.Errorf("%w: %s after EOF or in an attached session", ErrRecord, typeName(p[0]))}
		c.sess.Disconnect(ReasonProtocolError, err.Error())
		c.finish(err)
		return nil, err
	}
	return p[1:], nil
}

// handOn gives a DATA record's body to Read (the reader's). Under readMu.
func (c *Conn) handOn(body []byte) {
	select {
	case c.data <- body:
		return
	case <-c.closed:
		return
	default:
	}
	// The application is not reading: neither is the session, so
	// PINGs go unanswered. If that lasts, keep the link alive
	// (section 10): PONG at intervals, and our own liveness check
	// pauses (stallTick).
	c.stalling.Store(true)
	c.stallTimer.Reset(stalledKeepalive)
	select {
	case c.data <- body:
	case <-c.closed:
	}
	c.stalling.Store(false)
	c.stallTimer.Stop()
	c.stalled.Store(false)
}

// readNow is Read's own read of the session, under readMu: a record the
// reader handed on first, else the next one read within readPoll, its
// body in b if it fits (n bytes of it: DATA records are not split). ok
// is false if none came (the session is detached, or the record is not
// there yet): the reader goroutine reads then.
func (c *Conn) readNow(b []byte) (body []byte, n int, ok bool, err error) {
	select {
	case p, open := <-c.data:
		if !open {
			return nil, 0, true, c.readErr
		}
		return p, 0, true, nil
	default:
	}
	if !c.open {
		return nil, 0, false, nil // the reader hands on the end
	}
	// The bound moves once per half readPoll, not at each record: each
	// move resets the connection's deadline timer, which can wake the
	// runtime's poller.
	if now := time.Now().UnixNano(); c.pollUntil-now < int64(readPoll/2) {
		c.pollUntil = now + int64(readPoll)
	}
	c.hint.poll.Store(c.pollUntil)
	c.hint.dst, c.hint.used = b, false
	c.ownReading.Store(true)
	p, err := c.sess.ReadPacketNow()
	c.ownReading.Store(false)
	c.hint.poll.Store(0)
	c.hint.dst = nil
	if errors.Is(err, resume.ErrNoPacket) {
		return nil, 0, false, nil
	}
	if err != nil {
		c.finish(readError(err))
		return nil, 0, true, c.readErr
	}
	body, err = c.dataRecord(p)
	if err != nil || body == nil {
		return nil, 0, true, c.readErr
	}
	if c.hint.used {
		return nil, len(body), true, nil
	}
	return body, 0, true, nil
}

// kickRead ends a Read's own read of the connection at once (its read
// deadline passed, or the Conn was closed), instead of at the end of its
// poll: net/http's server, for one, waits for its background Read to
// return before it reads the next request. The read stops with the
// connection's deadline in the past; a read of the reader goroutine that
// the kick hits goes on (link.readPart).
func (c *Conn) kickRead() {
	if !c.ownReading.Load() {
		return
	}
	c.mu.Lock()
	l := c.cur
	c.mu.Unlock()
	l.kicked.Store(true)
	l.raw.SetReadDeadline(time.Unix(1, 0))
}

// stalledKeepalive is how often a Conn whose application does not read
// sends PONG, so that the peer's liveness check does not take the
// silence for a dead link.
const stalledKeepalive = 100 * time.Millisecond

// stallTick runs every stalledKeepalive while the reader waits for the
// application: it pauses the links' liveness checks and sends PONG on
// the current link. (A tick that comes after the wait ended does
// nothing.)
func (c *Conn) stallTick() {
	if !c.stalling.Load() {
		return
	}
	c.stalled.Store(true)
	c.mu.Lock()
	l := c.cur
	c.mu.Unlock()
	l.pong()
	c.stallTimer.Reset(stalledKeepalive)
}

// readAhead is how many records the reader hands on before Read takes
// them: with the one Read holds and the one being read, the link must
// keep that many and two more valid.
const readAhead = readBuffers - 2

// readError is what Read returns once the session ended with err.
func readError(err error) error {
	var ce *ClosedError
	switch {
	case errors.As(err, &ce) && ce.Reason == ReasonByApplication:
		return io.EOF
	case errors.Is(err, resume.ErrSessionClosed):
		return net.ErrClosed
	}
	return err
}

// Read reads application bytes.
func (c *Conn) Read(b []byte) (int, error) {
	if c.plain != nil {
		return c.plain.Read(b)
	}
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(b) == 0 {
		return 0, nil
	}
	if len(c.pending) == 0 {
		p, n, err := c.next(b)
		if n > 0 || err != nil {
			return n, err
		}
		c.pending = p
	}
	n := copy(b, c.pending)
	c.pending = c.pending[n:]
	return n, nil
}

// next returns the next DATA record's body for Read: read by Read itself
// if it can (no read deadline set, the reader not reading), and then into
// b if it fits (n bytes), else handed on by the reader goroutine.
func (c *Conn) next(b []byte) (p []byte, n int, err error) {
	own := !c.rd.armed()
	for {
		select {
		case <-c.rd.wait():
			return nil, 0, os.ErrDeadlineExceeded
		case <-c.closed:
			return nil, 0, net.ErrClosed
		default:
		}
		c.reads.Add(1) // the reader keeps away while Reads come (reader)
		if own && c.readMu.TryLock() {
			p, n, ok, err := c.readNow(b)
			c.readMu.Unlock()
			if ok {
				return p, n, err
			}
			own = false
		}
		// Wait for the reader goroutine, which does not keep away while
		// a Read waits (waiting is set before the kick that wakes it).
		c.waiting.Store(true)
		select {
		case c.bgKick <- struct{}{}:
		default:
		}
		select {
		case p, ok := <-c.data:
			c.waiting.Store(false)
			if !ok {
				return nil, 0, c.readErr
			}
			return p, 0, nil
		case <-c.rd.wait():
			c.waiting.Store(false)
			return nil, 0, os.ErrDeadlineExceeded
		case <-c.closed:
			c.waiting.Store(false)
			return nil, 0, net.ErrClosed
		}
	}
}

// Write writes application bytes, in DATA records of up to MaxData bytes.
// Each is kept until the peer acknowledges it, and sent again on the next
// connection if this one is lost. A write deadline bounds the wait for
// retention room (the peer has not acknowledged the retention limit);
// a record already going out on a congested connection is not stopped.
func (c *Conn) Write(b []byte) (int, error) {
	if c.plain != nil {
		return c.plain.Write(b)
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	defer c.flushHeld()
	written := 0
	for len(b) > 0 {
		select {
		case <-c.wd.wait():
			return written, os.ErrDeadlineExceeded
		case <-c.closed:
			return written, net.ErrClosed
		default:
		}
		n := min(len(b), MaxData)
		if c.wd.armed() {
			if err := c.waitRoom(1 + n); err != nil {
				return written, err
			}
		}
		f := c.sess.PacketBuffer(1 + n)
		f = append(f, RecData)
		f = append(f, b[:n]...)
		if len(b) > n {
			// More follow: the link may keep this one in its batch.
			c.held.mu.Lock()
			c.held.frame = &f[0]
			c.held.mu.Unlock()
		}
		if err := c.sess.WriteFrame(f); err != nil {
			return written, readError(err)
		}
		written += n
		b = b[n:]
	}
	return written, nil
}

// flushHeld writes what a link holds of Write's frames, and ends the hold
// of a frame not sealed yet: at the end of each Write, and before a
// Write waits for retention room (resume.Session.SetBeforeWait), since
// the peer's ACK that makes room needs them. A link that fails to write
// them is left as a lost link.
func (c *Conn) flushHeld() {
	c.held.mu.Lock()
	l := c.held.link
	c.held.frame, c.held.link = nil, nil
	c.held.mu.Unlock()
	if l == nil {
		return
	}
	if err := l.flushHeld(); err != nil {
		c.sess.DetachTransport(l, err)
	}
}

// waitRoom waits, until the write deadline, for the session to have room
// to retain a record of n bytes: within its retention limit and the
// server's budget (the session itself waits with no deadline). A session
// that retains nothing always has room.
func (c *Conn) waitRoom(n int) error {
	c.flushHeld()
	for {
		st := c.sess.Stats()
		need := resume.HeldSize(n)
		if st.RetainedBytes == 0 || st.HeldBytes+need <= c.retLimit &&
			(c.budget == nil || c.budget.Limit <= 0 || c.budget.Used()+int64(need) <= c.budget.Limit) {
			return nil
		}
		select {
		case <-c.wd.wait():
			return os.ErrDeadlineExceeded
		case <-c.closed:
			return net.ErrClosed
		case <-c.sess.Done():
			return nil // WriteFrame says why
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Close ends the session. It returns at once; the peer reads EOF after
// everything written before (an EOF record, retained and resent like
// data), and the session lives on in the background, reconnecting if
// need be, until the peer has acknowledged it all or Linger passed
// (section 8.1 of the document); then CLOSE ends it for both sides.
func (c *Conn) Close() error {
	if c.plain != nil {
		return c.plain.Close()
	}
	first := false
	c.once.Do(func() {
		first = true
		close(c.closed)
	})
	if !first {
		return net.ErrClosed
	}
	c.kickRead()
	go c.linger()
	return nil
}

// DefaultLinger is how long a closed Conn's session waits for the peer
// to acknowledge what was written (Config.Linger).
const DefaultLinger = 30 * time.Second

// linger sends EOF, waits until the peer acknowledged everything (or
// the session ended, or the linger time passed), then closes the
// session.
func (c *Conn) linger() {
	c.wmu.Lock() // after a Write in progress
	err := c.sess.WritePacket([]byte{RecEOF})
	c.wmu.Unlock()
	if err == nil {
		limit := time.NewTimer(c.lingerTime)
		defer limit.Stop()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
	wait:
		for {
			if st := c.sess.Stats(); st.Acked == st.Sent {
				break
			}
			select {
			case <-c.sess.Done():
				break wait
			case <-limit.C:
				break wait
			case <-tick.C:
			}
		}
	}
	c.sess.Close()
}

// Done is closed once the session has ended (after Close, once the peer
// acknowledged everything or the linger time passed); plain TLS: never.
func (c *Conn) Done() <-chan struct{} {
	if c.sess == nil {
		return nil
	}
	return c.sess.Done()
}

// LocalAddr is the local address of the current (or last) connection.
func (c *Conn) LocalAddr() net.Addr {
	if c.plain != nil {
		return c.plain.LocalAddr()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur.raw.LocalAddr()
}

// RemoteAddr is the peer's address on the current (or last) connection.
func (c *Conn) RemoteAddr() net.Addr {
	if c.plain != nil {
		return c.plain.RemoteAddr()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur.raw.RemoteAddr()
}

// SetDeadline sets both deadlines.
func (c *Conn) SetDeadline(t time.Time) error {
	if c.plain != nil {
		return c.plain.SetDeadline(t)
	}
	c.rd.set(t)
	c.wd.set(t)
	return nil
}

// SetReadDeadline makes a blocked or later Read return
// os.ErrDeadlineExceeded once t passed; the session is unaffected.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if c.plain != nil {
		return c.plain.SetReadDeadline(t)
	}
	c.rd.set(t)
	return nil
}

// SetWriteDeadline makes Write stop before its next record once t passed.
func (c *Conn) SetWriteDeadline(t time.Time) error {
	if c.plain != nil {
		return c.plain.SetWriteDeadline(t)
	}
	c.wd.set(t)
	return nil
}

// ConnectionState is the current TLS connection's state, as crypto/tls
// reports it, with NegotiatedProtocol the application's protocol (the
// resumable mode's marker taken off).
func (c *Conn) ConnectionState() tls.ConnectionState {
	if c.plain != nil {
		return c.plain.ConnectionState()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return appState(c.cur.state)
}

// Resumable reports whether the peer speaks the resumable mode.
func (c *Conn) Resumable() bool { return c.sess != nil }

// Status is a resumable connection's state and counters.
type Status struct {
	State resume.State
	Hold  time.Duration
	Stats resume.Stats
	Err   error // why the session ended
}

// Status returns the session's state (zero for plain TLS).
func (c *Conn) Status() Status {
	if c.sess == nil {
		return Status{}
	}
	return Status{State: c.sess.State(), Hold: c.sess.Hold(), Stats: c.sess.Stats(), Err: c.sess.Err()}
}

// Reconnect gives up the current connection and reconnects now (client).
func (c *Conn) Reconnect() {
	if c.sv != nil {
		c.sv.Trigger()
	}
}

// attached records the link the session moved to, and drops the one it
// left: resume.Session closes a detached connection only after a delay
// (for a CLOSE still in flight on it, which no longer matters once the
// session moved), and until then the reader may be blocked on it,
// holding back what arrives on the new one.
func (c *Conn) attached(l *link) {
	c.adopt(l)
	c.mu.Lock()
	old := c.cur
	c.cur = l
	c.mu.Unlock()
	if old != nil && old != l {
		old.Abort()
	}
}

// adopt gives l the Conn's settings that its reads and writes use: before
// the session runs on it (a Read's own read of a link without the hint
// would not be bounded by its poll).
func (c *Conn) adopt(l *link) {
	l.stalled.Store(&c.stalled)
	l.holder.Store(&c.held)
	l.hint.Store(&c.hint)
}

// deadline is a settable deadline whose expiry closes a channel.
type deadline struct {
	mu    sync.Mutex
	timer *time.Timer
	ch    chan struct{}
	// expired, if set, is called once the deadline has passed (Conn's
	// read deadline: kickRead).
	expired func()
}

func (d *deadline) init() { d.ch = make(chan struct{}) }

// armed reports whether a deadline is set (or has passed).
func (d *deadline) armed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		return true
	}
	select {
	case <-d.ch:
		return true
	default:
		return false
	}
}

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.ch // the timer fired: wait until it has closed the channel
	}
	d.timer = nil
	select {
	case <-d.ch:
		d.ch = make(chan struct{})
	default:
	}
	if t.IsZero() {
		return
	}
	if dur := time.Until(t); dur > 0 {
		ch, expired := d.ch, d.expired
		d.timer = time.AfterFunc(dur, func() {
			close(ch)
			if expired != nil {
				expired()
			}
		})
		return
	}
	close(d.ch)
	if d.expired != nil {
		d.expired()
	}
}

func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ch
}

// Dial connects to addr over TLS. If the server selects the resumable
// mode (TLS 1.3 and the marker in ALPN, section 2) the *Conn survives lost
// connections; else it is plain TLS. tlsConf is used as tls.Dial uses it
// (ServerName from addr if empty); its NextProtos are the application's,
// and ConnectionState reports the one chosen.
func Dial(ctx context.Context, network, addr string, tlsConf *tls.Config, cfg *Config) (*Conn, error) {
	cfg = cfg.get()
	conf := tlsConf.Clone()
	if conf == nil {
		conf = &tls.Config{}
	}
	if conf.ServerName == "" {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		conf.ServerName = host
	}
	app := conf.NextProtos
	resumable := !cfg.Disable && allows13(conf)
	if resumable {
		conf.NextProtos = clientOffer(app)
	}
	dial := cfg.DialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	raw, err := dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	bc := &batchConn{Conn: raw}
	tc := tls.Client(bc, conf)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, err
	}
	st := tc.ConnectionState()
	if _, ok := splitALPN(st.NegotiatedProtocol); !resumable || !ok {
		return newPlainConn(tc), nil
	}
	c, err := startClient(ctx, network, addr, conf, cfg, tc, bc)
	if err != nil {
		raw.Close()
		return nil, err
	}
	return c, nil
}

// startClient asks for a new session on the first connection (HELLO, then
// the server's ENABLE) and starts the supervisor that reconnects.
func startClient(ctx context.Context, network, addr string, conf *tls.Config, cfg *Config, tc *tls.Conn, bc *batchConn) (*Conn, error) {
	raw := bc.Conn
	l, err := newLink(tc, bc)
	if err != nil {
		return nil, err
	}
	rk, err := resumeKey(&l.state)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := l.WritePacket((&Hello{}).Marshal()); err != nil {
		return nil, fmt.Errorf("tlsresume: sending HELLO: %w", err)
	}
	p, err := l.ReadPacket()
	if err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("tlsresume: waiting for the server's ENABLE: %w", err)
	}
	if p[0] != RecEnable {
		return nil, fmt.Errorf("%w: the server answered HELLO with %s", ErrRecord, typeName(p[0]))
	}
	if !stop() {
		return nil, ctx.Err()
	}
	s, err := resume.EnableClient(l, rk, p)
	if err != nil {
		return nil, err
	}
	if s.Hold() == 0 {
		// A server out of sessions says so with a hold of 0 (as the
		// SSH extension's section 4.2): the connection goes on as a
		// session that does not survive a lost link.
		s.CloseWithError(errors.New("tlsresume: the server keeps no more sessions"))
		return nil, errors.New("tlsresume: the server keeps no more sessions")
	}
	s.SetRetentionLimit(cfg.RetentionLimit)
	c := newConn(s, l, cfg)
	spki := l.state.PeerCertificates[0].RawSubjectPublicKeyInfo
	proto := l.state.NegotiatedProtocol
	redialConf := conf.Clone()
	redialConf.NextProtos = []string{proto}
	redialConf.ClientSessionCache = nil // a full handshake each time
	dial := cfg.DialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	sc := resume.SupervisorConfig{
		Redial: func(ctx context.Context) (resume.Transport, error) {
			l, err := redial(ctx, dial, network, addr, redialConf, proto, spki)
			if err != nil {
				return nil, err
			}
			// Its first read is the answer to our request, made
			// before the session runs on it: the hint comes after.
			l.stalled.Store(&c.stalled)
			l.holder.Store(&c.held)
			l.nextHint = &c.hint
			return l, nil
		},
		Attached:       func(t resume.Transport) { c.attached(t.(*link)) },
		AliveInterval:  cfg.AliveInterval,
		AliveCountMax:  cfg.AliveCountMax,
		Probe:          func(t resume.Transport) { t.(*link).ping() },
		MinBackoff:     cfg.MinBackoff,
		MaxBackoff:     cfg.MaxBackoff,
		AttemptTimeout: cfg.AttemptTimeout,
		PathChanges:    cfg.PathChanges,
		Remote:         addr,
		Events:         cfg.Events,
	}
	if cfg.PathChanged != nil {
		sc.PathChanged = func(t resume.Transport) bool {
			return cfg.PathChanged(t.(*link).raw.LocalAddr(), t.(*link).RemoteAddr())
		}
	}
	var watcher *netwatch.Watcher
	if sc.PathChanges == nil && !cfg.NoNetworkWatch {
		if w, err := netwatch.New(); err == nil {
			watcher = w
			sc.PathChanges = w.Changes()
			sc.PathChanged = func(t resume.Transport) bool {
				l := t.(*link)
				return netwatch.PathChanged(l.raw.LocalAddr(), l.raw.RemoteAddr())
			}
		}
	}
	c.sv = resume.Supervise(s, l, sc)
	if watcher != nil {
		go func() {
			<-c.sv.Done()
			watcher.Close()
		}()
	}
	return c, nil
}

// redial is one reconnection's new connection: a full TLS 1.3 handshake,
// verified as the first one was, with the same protocol and the same
// server key.
func redial(ctx context.Context, dial func(context.Context, string, string) (net.Conn, error), network, addr string,
	conf *tls.Config, proto string, spki []byte) (*link, error) {
	raw, err := dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	bc := &batchConn{Conn: raw}
	tc := tls.Client(bc, conf)
	fail := func(err error) (*link, error) {
		raw.Close()
		return nil, err
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		return fail(err)
	}
	st := tc.ConnectionState()
	if st.NegotiatedProtocol != proto {
		return fail(fmt.Errorf("tlsresume: the server chose protocol %q on reconnection, not %q", st.NegotiatedProtocol, proto))
	}
	if len(st.PeerCertificates) == 0 || !bytes.Equal(st.PeerCertificates[0].RawSubjectPublicKeyInfo, spki) {
		return fail(errors.New("tlsresume: the server's key changed since the session began"))
	}
	l, err := newLink(tc, bc)
	if err != nil {
		return fail(err)
	}
	return l, nil
}

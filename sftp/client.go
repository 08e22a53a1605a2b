package sftp

// The client: one goroutine reads replies and hands each to the request
// waiting on its id; writes are serialized; a semaphore bounds requests in
// flight. Each request is a *call that owns two reusable buffers, one for
// the packet it sends and one for the reply body, so that pipelined
// transfers allocate nothing per request once warm.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rsftp/rsftp/internal/wire"
)

// DefaultMaxInflight is how many requests a client keeps outstanding at
// first, as OpenSSH's client does. A download grows it while the link
// needs more in flight (see readPipeline), up to maxGrownInflight
// requests and maxGrownInflightBytes, unless the MaxInflight option fixed
// it.
const DefaultMaxInflight = 64

const (
	maxGrownInflight      = 1024
	maxGrownInflightBytes = 64 << 20
)

// defaultReadWrite is the request size without limits@openssh.com.
const defaultReadWrite = 32768

// maxDirEntries bounds one ReadDir, against a server that never ends a
// listing.
const maxDirEntries = 1 << 22

// ErrClientClosed is returned by requests on a closed client.
var ErrClientClosed = errors.New("sftp: client closed")

// ErrInterrupted is matched (errors.Is) by the error of a request or a
// transfer whose context ended before it did. The same error also
// matches the context's error (context.Canceled or
// context.DeadlineExceeded), but its text says "interrupted", not the
// context's words.
var ErrInterrupted = errors.New("sftp: interrupted")

type interruptedError struct{ cause error }

func (e *interruptedError) Error() string {
	if errors.Is(e.cause, context.DeadlineExceeded) {
		return "interrupted: deadline exceeded"
	}
	return "interrupted"
}

func (e *interruptedError) Is(target error) bool { return target == ErrInterrupted }
func (e *interruptedError) Unwrap() error        { return e.cause }

// interrupted is the error for work that ctx ended.
func interrupted(ctx context.Context) error { return &interruptedError{cause: ctx.Err()} }

// writeGrace is how long a request or transfer whose context ended may
// take to notice before the client fails, which closes the stream: only
// a write held by flow control (no window room on a link that stalled)
// takes that long, and a request half written cannot be taken back.
const writeGrace = 250 * time.Millisecond

// ClientOption configures NewClient.
type ClientOption func(*clientConfig)

type clientConfig struct {
	maxInflight   int
	fixedInflight bool // set by MaxInflight: no growth
	readSize      int
	writeSize     int
	statAhead     *string // StatAhead's path
	// streamOpen opens another client over the connection (WithStreams).
	streamOpen func(ctx context.Context, opts ...ClientOption) (*Client, error)
}

// StatAhead makes NewClient send a STAT of p with INIT, before VERSION
// has come, and wait for its answer as it waits for VERSION: the first
// Stat of p, if the client sends no other request before it, takes that
// answer instead of asking again. A tool that stats the path it was
// given first thing saves a round trip (issue 17); a server answers
// requests in order once it has sent VERSION.
func StatAhead(p string) ClientOption {
	return func(c *clientConfig) { c.statAhead = &p }
}

// MaxInflight bounds the requests outstanding at once. Without it a
// client starts at DefaultMaxInflight and a download may grow that when
// the round trip needs more in flight.
func MaxInflight(n int) ClientOption {
	return func(c *clientConfig) { c.maxInflight, c.fixedInflight = n, true }
}

// ReadSize sets the bytes asked for by one READ. It is clamped to what the
// server allows and to MaxReadWrite.
func ReadSize(n int) ClientOption {
	return func(c *clientConfig) { c.readSize = n }
}

// WriteSize sets the bytes carried by one WRITE, clamped like ReadSize.
func WriteSize(n int) ClientOption {
	return func(c *clientConfig) { c.writeSize = n }
}

// Limits are the negotiated limits.
type Limits struct {
	// What the server announced with limits@openssh.com (all zero if it
	// did not; MaxOpenHandles zero means no limit).
	ServerMaxPacket, ServerMaxRead, ServerMaxWrite, ServerMaxOpenHandles uint64
	// What this client uses.
	MaxPacket   int // largest packet we send, length field excluded
	ReadSize    int
	WriteSize   int
	MaxInflight int
	// GrowInflight is how far a download may grow MaxInflight (0: not
	// at all, MaxInflight was set).
	GrowInflight int
}

// Client is an SFTP version 3 client. Its methods are safe for concurrent
// use. Paths are the server's strings, '/'-separated.
type Client struct {
	rw    io.ReadWriteCloser
	br    io.Reader
	via   viaReader    // rw's zero-copy read, if it has one
	fill  fillWriter   // rw's zero-copy write, if it has one
	grow  windowGrower // rw's receive window, if it can grow
	iov   [][]byte     // startFill's scratch, under wmu
	obuf  []byte       // startAll's scratch, under wmu
	field [4]byte      // readLoop's scratch: a DATA reply's length field

	wmu sync.Mutex // serializes writes to rw

	mu      sync.Mutex
	nextID  uint32
	pending map[uint32]*call
	free    []*call
	err     error // sticky; set once when the connection fails or closes

	closed  chan struct{} // closed with err
	slots   chan struct{} // one token per request in flight
	handles chan struct{} // one token per open handle; nil if unlimited

	exts   map[string]string
	limits Limits
	ahead  *statAnswer  // StatAhead's answer until a request is sent (under mu)
	grown  atomic.Int64 // the most READs a download grew to keep in flight (noteGrown)
	// grownWrites is the most WRITEs an upload grew to keep in flight.
	grownWrites atomic.Int64

	streams *streamPool // more sessions for large uploads (WithStreams), or nil
}

// statAnswer is the answer to a STAT sent with INIT (StatAhead).
type statAnswer struct {
	path  string
	attrs *Attrs
	err   error
}

// call is one request and its reply.
type call struct {
	out     []byte // the request packet, length included
	in      []byte // the reply body after type and id
	typ     byte
	err     error
	done    chan struct{}
	arrived time.Time // when readLoop had the reply (readPipeline's round trips)

	// to, on a READ, holds a local file that takes the data of a DATA
	// reply at offset at, written by readLoop straight from the
	// connection's buffer (where it has ReadVia) instead of into in; max
	// is the length asked for. direct says it was: wrote bytes, with
	// toErr if writing failed or the target was stopped.
	to     *readTarget
	at     int64
	max    int
	direct bool
	wrote  int
	toErr  error

	// abandoned: its waiter stopped waiting (its context ended), so
	// readLoop may still complete it; it is never reused.
	abandoned bool
}

// windowGrower is implemented by connections whose receive window can
// grow (channel.Channel).
type windowGrower interface {
	GrowWindow(n uint32) error
}

// viaReader is implemented by connections that lend their receive buffer
// (channel.Channel).
type viaReader interface {
	ReadVia(n int, fn func(bufs [][]byte)) (int, error)
}

// NewClient starts an SFTP session over rw, which is an SSH channel on
// which the "sftp" subsystem was started, or pipes to an sftp-server. It
// sends INIT, reads VERSION and asks for limits@openssh.com when offered.
// The client owns rw from now on: Close closes it.
func NewClient(ctx context.Context, rw io.ReadWriteCloser, opts ...ClientOption) (*Client, error) {
	cfg := clientConfig{maxInflight: DefaultMaxInflight}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.maxInflight < 1 {
		cfg.maxInflight = 1
	}
	if cfg.maxInflight > 1024 {
		cfg.maxInflight = 1024
	}
	c := &Client{
		rw:      rw,
		br:      newReplyReader(rw, 64<<10),
		pending: make(map[uint32]*call),
		closed:  make(chan struct{}),
		exts:    make(map[string]string),
	}

	// The version exchange runs before the reader goroutine; a context
	// that ends first closes rw to unblock it.
	stop := context.AfterFunc(ctx, func() { rw.Close() })
	err := c.handshake(cfg.statAhead)
	if !stop() {
		rw.Close()
		return nil, fmt.Errorf("sftp: version exchange: %w", ctx.Err())
	}
	if err != nil {
		rw.Close()
		return nil, err
	}

	if v, ok := rw.(viaReader); ok && c.br == io.Reader(rw) {
		c.via = v
	}
	if fw, ok := rw.(fillWriter); ok {
		c.fill = fw
	}
	if g, ok := rw.(windowGrower); ok {
		c.grow = g
	}
	slots := cfg.maxInflight
	if !cfg.fixedInflight {
		slots = max(slots, maxGrownInflight)
	}
	c.slots = make(chan struct{}, slots)
	c.limits.MaxInflight = cfg.maxInflight
	c.limits.MaxPacket = MaxPacket
	c.limits.ReadSize = defaultReadWrite
	c.limits.WriteSize = defaultReadWrite
	go c.readLoop()
	if cfg.streamOpen != nil {
		c.streams = &streamPool{open: cfg.streamOpen, opts: append(slices.Clone(opts), streamOnly)}
	}

	c.applySizes(cfg)
	if !cfg.fixedInflight {
		c.limits.GrowInflight = max(cfg.maxInflight, min(maxGrownInflight, maxGrownInflightBytes/c.limits.ReadSize))
	}
	return c, nil
}

// limitsID is the id of the limits@openssh.com request sent with INIT,
// aheadID that of StatAhead's STAT.
const (
	limitsID = 1
	aheadID  = 2
)

// handshake sends INIT and, in the same write, the limits@openssh.com
// request (and StatAhead's STAT, if ahead is set), then reads VERSION and
// the answers: a round trip less than asking once VERSION has listed the
// extension (issue 17). A server that does not know the request answers
// it with a STATUS (filexfer-02 section 8), as it answers requests in
// order once it sent VERSION; its answer counts only if VERSION listed
// the extension.
func (c *Client) handshake(ahead *string) error {
	pkt := finishPacket(wire.AppendUint32(startPacket(nil, typeInit), ProtocolVersion))
	lim := wire.AppendUint32(startPacket(nil, typeExtended), limitsID)
	lim = wire.AppendString(lim, extLimits)
	pkt = append(pkt, finishPacket(lim)...)
	if ahead != nil && len(*ahead) > 4096 {
		ahead = nil // longer than any PATH_MAX: Stat asks later
	}
	if ahead != nil {
		st := wire.AppendUint32(startPacket(nil, typeStat), aheadID)
		st = wire.AppendString(st, *ahead)
		pkt = append(pkt, finishPacket(st)...)
	}
	// Written beside the reads: over a stream with no buffer (net.Pipe
	// to a server that answers INIT before it reads on) the write ends
	// only once the server took it all. NewClient closes rw on failure,
	// which ends the write.
	werr := make(chan error, 1)
	go func() {
		_, err := c.rw.Write(pkt)
		werr <- err
	}()
	p, err := readPacket(c.br, nil)
	if err != nil {
		// What was read says more than a write that failed with it.
		return fmt.Errorf("sftp: reading VERSION: %w", err)
	}
	r := wire.NewReader(p)
	if t := r.Byte(); t != typeVersion {
		return fmt.Errorf("sftp: expected VERSION, got message type %d", t)
	}
	if v := r.Uint32(); r.Err() == nil && v != ProtocolVersion {
		return fmt.Errorf("sftp: server speaks version %d, not %d", v, ProtocolVersion)
	}
	for r.Len() > 0 && r.Err() == nil {
		if len(c.exts) >= maxExtensions {
			return fmt.Errorf("sftp: more than %d extensions in VERSION", maxExtensions)
		}
		name, data := r.String(), r.String()
		if r.Err() == nil {
			c.exts[name] = data
		}
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("sftp: bad VERSION: %w", err)
	}
	c.nextID = limitsID

	typ, body, err := c.handshakeReply(limitsID, "limits")
	if err != nil {
		return err
	}
	if c.HasExtension(extLimits) { // else a STATUS, most likely: no limits
		r, err := expectReply(typ, body, typeExtendedReply)
		if err != nil {
			return fmt.Errorf("sftp: limits: %w", err)
		}
		l := &c.limits
		l.ServerMaxPacket, l.ServerMaxRead, l.ServerMaxWrite, l.ServerMaxOpenHandles = r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64()
		if err := r.Err(); err != nil {
			return fmt.Errorf("sftp: limits reply: %w", err)
		}
	}
	if ahead != nil {
		c.nextID = aheadID
		typ, body, err := c.handshakeReply(aheadID, "stat")
		if err != nil {
			return err
		}
		ans := &statAnswer{path: *ahead}
		r, err := expectReply(typ, body, typeAttrs)
		if err == nil {
			a := parseAttrs(r)
			if err = r.Done(); err != nil {
				err = fmt.Errorf("sftp: bad ATTRS: %w", err)
			}
			ans.attrs = &a
		}
		if err != nil {
			ans.attrs, ans.err = nil, err
		}
		c.ahead = ans
	}
	if err := <-werr; err != nil {
		return fmt.Errorf("sftp: sending INIT: %w", err)
	}
	return nil
}

// handshakeReply reads the reply to request id of the handshake, checked
// as readLoop checks replies; what names the request in errors.
func (c *Client) handshakeReply(id uint32, what string) (typ byte, body []byte, err error) {
	var hdr [4]byte
	if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
		return 0, nil, fmt.Errorf("sftp: %s: %w", what, err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxPacket {
		return 0, nil, fmt.Errorf("%w: %d bytes", ErrPacketTooLarge, n)
	}
	if n < 5 {
		return 0, nil, fmt.Errorf("sftp: %d-byte reply packet", n)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(c.br, p); err != nil {
		return 0, nil, fmt.Errorf("sftp: %s: %w", what, err)
	}
	if got := binary.BigEndian.Uint32(p[1:5]); got != id {
		return 0, nil, fmt.Errorf("sftp: %s: a reply of type %d to request %d, not to the %s request", what, p[0], got, what)
	}
	return p[0], p[5:], nil
}

// applySizes picks request sizes: the server's limits capped at
// MaxReadWrite when it announced them, else 32 KiB; then the options,
// clamped to the same bounds.
func (c *Client) applySizes(cfg clientConfig) {
	l := &c.limits
	maxRead, maxWrite := defaultReadWrite, defaultReadWrite
	if l.ServerMaxPacket != 0 {
		// Our packets must fit the server's; leave room for headers and a
		// maximal handle.
		l.MaxPacket = int(min(l.ServerMaxPacket, MaxPacket))
	}
	if l.ServerMaxRead != 0 {
		maxRead = int(min(l.ServerMaxRead, MaxReadWrite))
	}
	if l.ServerMaxWrite != 0 {
		maxWrite = int(min(l.ServerMaxWrite, MaxReadWrite))
	}
	const hdr = 4 + 1 + 4 + 4 + maxHandleLen + 8 + 4
	maxWrite = min(maxWrite, l.MaxPacket-hdr)
	maxRead = min(maxRead, MaxPacket-(1+4+4)) // our reply bound
	l.ReadSize, l.WriteSize = maxRead, maxWrite
	if cfg.readSize > 0 {
		l.ReadSize = min(cfg.readSize, maxRead)
	}
	if cfg.writeSize > 0 {
		l.WriteSize = min(cfg.writeSize, maxWrite)
	}
	l.ReadSize = max(l.ReadSize, 1)
	l.WriteSize = max(l.WriteSize, 1)
	if n := l.ServerMaxOpenHandles; n > 0 && n < 1<<20 {
		c.handles = make(chan struct{}, n)
	}
}

// ReadsInFlight is how many READs a download keeps in flight now:
// Limits().MaxInflight, or more once a download found the round trip
// needed more (up to Limits().GrowInflight).
func (c *Client) ReadsInFlight() int {
	return max(c.limits.MaxInflight, int(c.grown.Load()))
}

// Limits reports the negotiated limits.
func (c *Client) Limits() Limits { return c.limits }

// HasExtension reports whether the server announced the extension.
func (c *Client) HasExtension(name string) bool {
	_, ok := c.exts[name]
	return ok
}

// Extensions returns the server's extensions and their data.
func (c *Client) Extensions() map[string]string {
	m := make(map[string]string, len(c.exts))
	for k, v := range c.exts {
		m[k] = v
	}
	return m
}

// Close ends the session: it closes the underlying stream and fails every
// request still waiting, and closes the sessions large uploads opened
// beside it (WithStreams).
func (c *Client) Close() error {
	c.fail(ErrClientClosed)
	if c.streams != nil {
		c.streams.close()
	}
	return nil
}

// Err reports why the client stopped working, or nil.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// fail records the first error, closes the stream and fails all pending
// requests.
func (c *Client) fail(err error) {
	c.mu.Lock()
	first := c.err == nil
	if first {
		c.err = err
		close(c.closed)
	}
	pend := c.pending
	c.pending = make(map[uint32]*call)
	err = c.err
	c.mu.Unlock()
	if first {
		c.rw.Close()
	}
	for _, rc := range pend {
		rc.err = err
		<-c.slots
		rc.done <- struct{}{}
	}
}

func (c *Client) readLoop() {
	var hdr [9]byte
	for {
		if _, err := io.ReadFull(c.br, hdr[:]); err != nil {
			if err == io.ErrUnexpectedEOF {
				err = fmt.Errorf("sftp: connection closed mid-packet: %w", err)
			} else if err == io.EOF {
				err = fmt.Errorf("sftp: connection closed: %w", io.ErrUnexpectedEOF)
			}
			c.fail(err)
			return
		}
		n := binary.BigEndian.Uint32(hdr[:4])
		if n > MaxPacket {
			c.fail(fmt.Errorf("%w: %d bytes", ErrPacketTooLarge, n))
			return
		}
		if n < 5 {
			c.fail(fmt.Errorf("sftp: %d-byte reply packet", n))
			return
		}
		typ, id := hdr[4], binary.BigEndian.Uint32(hdr[5:9])
		c.mu.Lock()
		rc := c.pending[id]
		delete(c.pending, id)
		c.mu.Unlock()
		if rc == nil {
			c.fail(fmt.Errorf("sftp: reply (type %d) to unknown request id %d", typ, id))
			return
		}
		body := int(n) - 5
		var err error
		got, direct := 0, false
		if typ == typeData && rc.to != nil && c.via != nil && body >= 4 {
			got = 4
			direct, err = c.readDirect(rc, body)
		}
		if direct {
			rc.in = rc.in[:0] // the data is in rc.to
		} else if err == nil {
			if cap(rc.in) < body {
				rc.in = make([]byte, body)
			}
			rc.in = rc.in[:body]
			copy(rc.in, c.field[:got])
			_, err = io.ReadFull(c.br, rc.in[got:])
		}
		if err != nil {
			// Said as it happened: a connection that ended, or the
			// cause (the session refused on reconnection, a local
			// write that failed) rather than a bare EOF.
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				err = fmt.Errorf("sftp: connection closed mid-packet: %w", io.ErrUnexpectedEOF)
			} else {
				err = fmt.Errorf("sftp: reading a reply: %w", err)
			}
			rc.err = err
			<-c.slots
			rc.done <- struct{}{}
			// rc belongs to its caller from here on (putCall clears it).
			c.fail(err)
			return
		}
		rc.typ = typ
		rc.arrived = time.Now()
		<-c.slots
		rc.done <- struct{}{}
	}
}

// readDirect reads the length field of a DATA reply of body bytes to rc,
// a READ with a local file to write to, into c.field. If the reply is
// well formed, its data goes to the file straight from the connection's
// buffer (rc.direct) and the reply is consumed; otherwise the caller
// reads the rest.
func (c *Client) readDirect(rc *call, body int) (bool, error) {
	if _, err := io.ReadFull(c.br, c.field[:]); err != nil {
		return false, err
	}
	n := binary.BigEndian.Uint32(c.field[:])
	if int64(n) != int64(body-4) || n == 0 || int64(n) > int64(rc.max) {
		return false, nil
	}
	rc.direct = true
	rc.wrote = 0
	_, err := c.via.ReadVia(int(n), func(bufs [][]byte) {
		k := 0
		for _, b := range bufs {
			k += len(b)
		}
		if rc.toErr == nil {
			rc.toErr = rc.to.write(bufs, rc.at+int64(rc.wrote))
		}
		rc.wrote += k
	})
	return true, err
}

// getCall returns a call with an empty request and reply.
func (c *Client) getCall() *call {
	c.mu.Lock()
	var rc *call
	if n := len(c.free); n > 0 {
		rc = c.free[n-1]
		c.free = c.free[:n-1]
	}
	c.mu.Unlock()
	if rc == nil {
		rc = &call{done: make(chan struct{}, 1)}
	}
	return rc
}

// putCall recycles a call after its reply has been used. Replies alias
// the call's buffer: nothing from them may be kept. An abandoned call is
// left to the garbage collector, since readLoop may still complete it.
func (c *Client) putCall(rc *call) {
	if rc.abandoned {
		return
	}
	rc.err = nil
	rc.typ = 0
	rc.to, rc.direct, rc.toErr = nil, false, nil
	c.mu.Lock()
	if len(c.free) < 2*DefaultMaxInflight+8 {
		c.free = append(c.free, rc)
	}
	c.mu.Unlock()
}

// newRequest starts a request packet with a placeholder id.
func (c *Client) newRequest(typ byte) *call {
	rc := c.getCall()
	rc.out = startPacket(rc.out, typ)
	rc.out = append(rc.out, 0, 0, 0, 0)
	return rc
}

func (c *Client) newExtended(name string) *call {
	rc := c.newRequest(typeExtended)
	rc.out = wire.AppendString(rc.out, name)
	return rc
}

// start sends a request; the reply (or failure) arrives on rc.done and is
// read with wait. start never fails on its own: every start needs a wait.
// If ctx ends while start waits for a slot, rc completes with the
// interruption.
func (c *Client) start(ctx context.Context, rc *call) {
	if !c.prepare(ctx, rc) {
		return
	}
	c.wmu.Lock()
	_, err := c.rw.Write(rc.out)
	c.wmu.Unlock()
	if err != nil {
		c.fail(fmt.Errorf("sftp: write: %w", err))
	}
}

// startAll is start for several requests, sent in one write: over a
// channel they go in one message, which the server reads in one go.
func (c *Client) startAll(ctx context.Context, rcs []*call) {
	n := 0
	for _, rc := range rcs {
		if c.prepare(ctx, rc) {
			rcs[n] = rc
			n++
		}
	}
	if n == 0 {
		return
	}
	c.wmu.Lock()
	c.obuf = c.obuf[:0]
	for _, rc := range rcs[:n] {
		c.obuf = append(c.obuf, rc.out...)
	}
	_, err := c.rw.Write(c.obuf)
	c.wmu.Unlock()
	if err != nil {
		c.fail(fmt.Errorf("sftp: write: %w", err))
	}
}

// prepare finishes rc's packet and registers it (register). If that
// fails, rc is complete with the error and prepare returns false.
func (c *Client) prepare(ctx context.Context, rc *call) bool {
	finishPacket(rc.out)
	return !c.oversize(rc, len(rc.out)-4) && c.register(ctx, rc)
}

// oversize completes rc with an error, and returns true, if its packet
// of n bytes (length field excluded) passes the packet limit.
func (c *Client) oversize(rc *call, n int) bool {
	if n <= c.limits.MaxPacket {
		return false
	}
	rc.err = fmt.Errorf("sftp: %d-byte request exceeds the %d-byte packet limit", n, c.limits.MaxPacket)
	rc.done <- struct{}{}
	return true
}

// startFill is start for a request that ends in data of up to limit bytes
// which read puts straight into the outgoing packets (the connection's
// WriteFill): rc.out holds the request up to the data's length field,
// which startFill sets to the count read returns (taken as 0 to limit).
// It returns read's result; the request goes out either way, with the
// data read.
func (c *Client) startFill(ctx context.Context, rc *call, limit int, read func(bufs [][]byte) (int, error)) (int, error) {
	hdr := len(rc.out)
	binary.BigEndian.PutUint32(rc.out, uint32(hdr-4+limit))
	if c.oversize(rc, hdr-4+limit) || !c.register(ctx, rc) {
		return 0, nil
	}
	var got int
	var rerr error
	c.wmu.Lock()
	_, err := c.fill.WriteFill(hdr+limit, func(bufs [][]byte) (int, error) {
		// The channel's slices stay as they are: it sizes packets by them.
		c.iov = append(c.iov[:0], bufs...)
		got, rerr = read(skipBytes(c.iov, hdr))
		got = min(max(got, 0), limit)
		binary.BigEndian.PutUint32(rc.out, uint32(hdr-4+got))
		binary.BigEndian.PutUint32(rc.out[hdr-4:], uint32(got))
		copyTo(bufs, rc.out)
		return hdr + got, nil
	})
	clear(c.iov)
	c.wmu.Unlock()
	if err != nil {
		c.fail(fmt.Errorf("sftp: write: %w", err))
	}
	return got, rerr
}

// register gives rc an id and a slot among the requests in flight. If
// the client has failed, or ctx ends first, it completes rc with the
// error and returns false.
func (c *Client) register(ctx context.Context, rc *call) bool {
	select {
	case c.slots <- struct{}{}:
	case <-c.closed:
		rc.err = c.Err()
		rc.done <- struct{}{}
		return false
	case <-ctx.Done():
		rc.err = interrupted(ctx)
		rc.done <- struct{}{}
		return false
	}
	c.mu.Lock()
	if c.err != nil {
		rc.err = c.err
		c.mu.Unlock()
		<-c.slots
		rc.done <- struct{}{}
		return false
	}
	c.nextID++
	id := c.nextID
	binary.BigEndian.PutUint32(rc.out[5:9], id)
	c.pending[id] = rc
	c.ahead = nil // anything may have changed the path
	c.mu.Unlock()
	return true
}

// wait returns the reply to a started request. The body aliases rc.in.
// If ctx ends first, rc is abandoned (putCall leaves it alone) and the
// error is the interruption.
func (c *Client) wait(ctx context.Context, rc *call) (byte, []byte, error) {
	select {
	case <-rc.done:
	case <-ctx.Done():
		select {
		case <-rc.done: // the reply came as well: use it
		default:
			rc.abandoned = true
			return 0, nil, interrupted(ctx)
		}
	}
	return rc.reply()
}

// watch guards an operation under ctx that sends requests: if ctx ends
// and the operation has not returned writeGrace later, it is held in a
// write by flow control on a link that stalled, and the client fails
// (closing the stream wakes the write). Call the returned func when the
// operation returns.
func (c *Client) watch(ctx context.Context) (end func()) {
	if ctx.Done() == nil {
		return func() {}
	}
	finished := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		t := time.NewTimer(writeGrace)
		defer t.Stop()
		select {
		case <-finished:
		case <-t.C:
			c.fail(fmt.Errorf("sftp: a request was still being sent %v after its transfer was %w", writeGrace, interrupted(ctx)))
		}
	})
	return func() {
		stop()
		close(finished)
	}
}

// reply is the reply of a completed call.
func (rc *call) reply() (byte, []byte, error) {
	if rc.err != nil {
		return 0, nil, rc.err
	}
	return rc.typ, rc.in, nil
}

func (c *Client) roundTrip(ctx context.Context, rc *call) (byte, []byte, error) {
	defer c.watch(ctx)()
	c.start(ctx, rc)
	return c.wait(ctx, rc)
}

// parseStatus returns nil for OK and a *StatusError otherwise. It does
// not allocate for OK: every acknowledged WRITE comes through here.
func parseStatus(body []byte) error {
	if len(body) < 4 {
		return errors.New("sftp: bad STATUS: too short")
	}
	code := binary.BigEndian.Uint32(body)
	if code == StatusOK {
		return nil
	}
	// Message and language tag are optional in practice (some servers
	// omit them).
	var msg, lang string
	if len(body) > 4 {
		r := wire.NewReader(body[4:])
		msg = r.String()
		lang = r.String()
	}
	return &StatusError{Code: code, Message: msg, Lang: lang}
}

// expectReply checks the reply type: a STATUS becomes its error.
func expectReply(typ byte, body []byte, want byte) (*wire.Reader, error) {
	if typ == want {
		return wire.NewReader(body), nil
	}
	if typ == typeStatus {
		if err := parseStatus(body); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("sftp: OK status where message type %d was expected", want)
	}
	return nil, fmt.Errorf("sftp: message type %d where %d was expected", typ, want)
}

func expectStatus(typ byte, body []byte) error {
	if typ != typeStatus {
		return fmt.Errorf("sftp: message type %d where STATUS was expected", typ)
	}
	return parseStatus(body)
}

// pathError wraps err with the operation and path, like os.PathError.
func pathError(op, p string, err error) error {
	if err == nil {
		return nil
	}
	return &fs.PathError{Op: op, Path: p, Err: err}
}

// linkError wraps a two-path operation's error.
func linkError(op, oldp, newp string, err error) error {
	if err == nil {
		return nil
	}
	return &os.LinkError{Op: op, Old: oldp, New: newp, Err: err}
}

// unsupported is the error for an extension the server did not offer:
// errors.Is matches errors.ErrUnsupported and errors.As a StatusError
// with code OP_UNSUPPORTED.
func unsupported(name string) error {
	return fmt.Errorf("%w (the server does not offer %s): %w",
		&StatusError{Code: StatusOpUnsupported}, name, errors.ErrUnsupported)
}

// statusRequest sends a request whose reply is a STATUS.
func (c *Client) statusRequest(ctx context.Context, rc *call) error {
	typ, body, err := c.roundTrip(ctx, rc)
	defer c.putCall(rc)
	if err != nil {
		return err
	}
	return expectStatus(typ, body)
}

func (c *Client) attrsRequest(ctx context.Context, rc *call) (*Attrs, error) {
	typ, body, err := c.roundTrip(ctx, rc)
	defer c.putCall(rc)
	if err != nil {
		return nil, err
	}
	r, err := expectReply(typ, body, typeAttrs)
	if err != nil {
		return nil, err
	}
	a := parseAttrs(r)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("sftp: bad ATTRS: %w", err)
	}
	return &a, nil
}

// nameRequest sends a request answered by NAME and returns its entries.
func (c *Client) nameRequest(ctx context.Context, rc *call) ([]DirEntry, error) {
	typ, body, err := c.roundTrip(ctx, rc)
	defer c.putCall(rc)
	if err != nil {
		return nil, err
	}
	r, err := expectReply(typ, body, typeName)
	if err != nil {
		return nil, err
	}
	return parseNames(r)
}

func parseNames(r *wire.Reader) ([]DirEntry, error) {
	n := r.Uint32()
	// Each entry takes at least 12 bytes (two strings and the flags).
	if r.Err() != nil || int64(n) > int64(r.Len()/12) {
		return nil, fmt.Errorf("sftp: bad NAME: %d entries in %d bytes", n, r.Len())
	}
	ents := make([]DirEntry, 0, n)
	for range n {
		var e DirEntry
		e.Name = r.String()
		e.Longname = r.String()
		e.Attrs = parseAttrs(r)
		ents = append(ents, e)
	}
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("sftp: bad NAME: %w", err)
	}
	return ents, nil
}

// singleName sends a request answered by a NAME with one entry.
func (c *Client) singleName(rc *call) (string, error) {
	ents, err := c.nameRequest(context.Background(), rc)
	if err != nil {
		return "", err
	}
	if len(ents) != 1 {
		return "", fmt.Errorf("sftp: %d names where 1 was expected", len(ents))
	}
	return ents[0].Name, nil
}

func (c *Client) pathRequest(typ byte, p string) *call {
	rc := c.newRequest(typ)
	rc.out = wire.AppendString(rc.out, p)
	return rc
}

// Stat returns the attributes of p, following symbolic links.
func (c *Client) Stat(p string) (*Attrs, error) {
	return c.stat(context.Background(), p)
}

// stat is Stat under ctx.
func (c *Client) stat(ctx context.Context, p string) (*Attrs, error) {
	c.mu.Lock()
	ans := c.ahead
	c.ahead = nil
	c.mu.Unlock()
	if ans != nil && ans.path == p {
		return ans.attrs, pathError("stat", p, ans.err)
	}
	a, err := c.attrsRequest(ctx, c.pathRequest(typeStat, p))
	return a, pathError("stat", p, err)
}

// Lstat returns the attributes of p without following a final symbolic
// link.
func (c *Client) Lstat(p string) (*Attrs, error) {
	return c.lstat(context.Background(), p)
}

func (c *Client) lstat(ctx context.Context, p string) (*Attrs, error) {
	a, err := c.attrsRequest(ctx, c.pathRequest(typeLstat, p))
	return a, pathError("lstat", p, err)
}

// Setstat changes the attributes of p that a.Flags names.
func (c *Client) Setstat(p string, a *Attrs) error {
	return c.setstat(context.Background(), p, a)
}

func (c *Client) setstat(ctx context.Context, p string, a *Attrs) error {
	rc := c.pathRequest(typeSetstat, p)
	rc.out = appendAttrs(rc.out, a)
	return pathError("setstat", p, c.statusRequest(ctx, rc))
}

// Chmod changes the permission bits of p.
func (c *Client) Chmod(p string, mode fs.FileMode) error {
	return c.Setstat(p, &Attrs{Flags: AttrPermissions, Mode: posixMode(mode) &^ modeType})
}

// Chown changes the owner and group of p.
func (c *Client) Chown(p string, uid, gid int) error {
	return c.Setstat(p, &Attrs{Flags: AttrUIDGID, UID: uint32(uid), GID: uint32(gid)})
}

// Chtimes changes the access and modification times of p (whole seconds,
// as SFTP v3 carries them).
func (c *Client) Chtimes(p string, atime, mtime time.Time) error {
	return c.Setstat(p, &Attrs{Flags: AttrACModTime, Atime: unixTime(atime), Mtime: unixTime(mtime)})
}

func unixTime(t time.Time) uint32 {
	s := t.Unix()
	if s < 0 {
		return 0
	}
	if s > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(s)
}

// Truncate changes the size of p.
func (c *Client) Truncate(p string, size int64) error {
	if size < 0 {
		return pathError("truncate", p, errors.New("negative size"))
	}
	return c.Setstat(p, &Attrs{Flags: AttrSize, Size: uint64(size)})
}

// DirEntry is one name from a directory listing.
type DirEntry struct {
	Name     string
	Longname string // the server's ls -l style line
	Attrs    Attrs
}

// ReadDir lists the directory p, without "." and "..". Names are the
// server's and are not checked: see validName before using one as a
// local path.
func (c *Client) ReadDir(p string) ([]DirEntry, error) {
	return c.readDir(context.Background(), p)
}

// ReadDirAll lists the directory p as the server sends it, "." and ".."
// included when the server sends them (ls -a).
func (c *Client) ReadDirAll(p string) ([]DirEntry, error) {
	return c.readDirDots(context.Background(), p, true)
}

func (c *Client) readDir(ctx context.Context, p string) ([]DirEntry, error) {
	return c.readDirDots(ctx, p, false)
}

func (c *Client) readDirDots(ctx context.Context, p string, dots bool) ([]DirEntry, error) {
	h, err := c.openHandle(ctx, c.pathRequest(typeOpendir, p))
	if err != nil {
		return nil, pathError("opendir", p, err)
	}
	var ents []DirEntry
	for {
		rc := c.newRequest(typeReaddir)
		rc.out = wire.AppendString(rc.out, h)
		batch, err := c.nameRequest(ctx, rc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			c.closeHandle(ctx, h)
			return nil, pathError("readdir", p, err)
		}
		if len(batch) == 0 {
			break // a NAME with no entries: treat as the end
		}
		for _, e := range batch {
			if !dots && (e.Name == "." || e.Name == "..") {
				continue
			}
			ents = append(ents, e)
		}
		if len(ents) > maxDirEntries {
			c.closeHandle(ctx, h)
			return nil, pathError("readdir", p, fmt.Errorf("sftp: more than %d entries", maxDirEntries))
		}
	}
	if err := c.closeHandle(ctx, h); err != nil {
		return ents, pathError("closedir", p, err)
	}
	return ents, nil
}

// openHandle sends OPEN or OPENDIR and returns the handle.
func (c *Client) openHandle(ctx context.Context, rc *call) (string, error) {
	if c.handles != nil {
		select {
		case c.handles <- struct{}{}:
		case <-c.closed:
			c.putCall(rc)
			return "", c.Err()
		case <-ctx.Done():
			c.putCall(rc)
			return "", interrupted(ctx)
		}
	}
	typ, body, err := c.roundTrip(ctx, rc)
	defer c.putCall(rc)
	if err == nil {
		var r *wire.Reader
		if r, err = expectReply(typ, body, typeHandle); err == nil {
			h := r.String()
			if err = r.Done(); err != nil {
				err = fmt.Errorf("sftp: bad HANDLE: %w", err)
			} else if len(h) > maxHandleLen {
				err = fmt.Errorf("sftp: %d-byte handle", len(h))
			} else {
				return h, nil
			}
		}
	}
	if c.handles != nil {
		<-c.handles
	}
	return "", err
}

func (c *Client) closeHandle(ctx context.Context, h string) error {
	rc := c.newRequest(typeClose)
	rc.out = wire.AppendString(rc.out, h)
	err := c.statusRequest(ctx, rc)
	if c.handles != nil {
		<-c.handles
	}
	return err
}

// Mkdir creates the directory p.
func (c *Client) Mkdir(p string, perm fs.FileMode) error {
	return c.mkdir(context.Background(), p, perm)
}

func (c *Client) mkdir(ctx context.Context, p string, perm fs.FileMode) error {
	rc := c.pathRequest(typeMkdir, p)
	rc.out = appendAttrs(rc.out, &Attrs{Flags: AttrPermissions, Mode: uint32(perm.Perm())})
	return pathError("mkdir", p, c.statusRequest(ctx, rc))
}

// MkdirAll creates p and any missing parents.
func (c *Client) MkdirAll(p string, perm fs.FileMode) error {
	if a, err := c.Stat(p); err == nil {
		if a.FileMode().IsDir() {
			return nil
		}
		return pathError("mkdir", p, errors.New("not a directory"))
	}
	if parent := path.Dir(p); parent != p && parent != "." && parent != "/" {
		if err := c.MkdirAll(parent, perm); err != nil {
			return err
		}
	}
	err := c.Mkdir(p, perm)
	if err != nil {
		// Lost a race, or p is "." or "/": fine if it is a directory now.
		if a, serr := c.Stat(p); serr == nil && a.FileMode().IsDir() {
			return nil
		}
	}
	return err
}

// Remove removes the file p (not a directory: see RemoveDirectory).
func (c *Client) Remove(p string) error {
	return pathError("remove", p, c.statusRequest(context.Background(), c.pathRequest(typeRemove, p)))
}

// RemoveDirectory removes the empty directory p.
func (c *Client) RemoveDirectory(p string) error {
	return pathError("rmdir", p, c.statusRequest(context.Background(), c.pathRequest(typeRmdir, p)))
}

// Rename renames oldp to newp with the protocol's RENAME, which OpenSSH's
// server refuses when newp exists.
func (c *Client) Rename(oldp, newp string) error {
	rc := c.pathRequest(typeRename, oldp)
	rc.out = wire.AppendString(rc.out, newp)
	return linkError("rename", oldp, newp, c.statusRequest(context.Background(), rc))
}

// PosixRename renames with posix-rename@openssh.com: POSIX rename(2)
// semantics, replacing newp. Without the extension it fails with
// OP_UNSUPPORTED (and errors.ErrUnsupported).
func (c *Client) PosixRename(oldp, newp string) error {
	return linkError("rename", oldp, newp, c.twoPathExtension(extPosixRename, oldp, newp))
}

// Hardlink makes newp a hard link to oldp (hardlink@openssh.com).
func (c *Client) Hardlink(oldp, newp string) error {
	return linkError("link", oldp, newp, c.twoPathExtension(extHardlink, oldp, newp))
}

func (c *Client) twoPathExtension(name, a, b string) error {
	if !c.HasExtension(name) {
		return unsupported(name)
	}
	rc := c.newExtended(name)
	rc.out = wire.AppendString(rc.out, a)
	rc.out = wire.AppendString(rc.out, b)
	return c.statusRequest(context.Background(), rc)
}

// Symlink makes link a symbolic link to target. OpenSSH's server takes
// SYMLINK's two paths in the reverse of the draft's order (target first;
// its PROTOCOL file says so), and so do we and OpenSSH's client.
func (c *Client) Symlink(target, link string) error {
	rc := c.newRequest(typeSymlink)
	rc.out = wire.AppendString(rc.out, target)
	rc.out = wire.AppendString(rc.out, link)
	return linkError("symlink", target, link, c.statusRequest(context.Background(), rc))
}

// ReadLink returns the target of the symbolic link p.
func (c *Client) ReadLink(p string) (string, error) {
	s, err := c.singleName(c.pathRequest(typeReadlink, p))
	return s, pathError("readlink", p, err)
}

// RealPath asks the server to canonicalize p ("." gives the working
// directory).
func (c *Client) RealPath(p string) (string, error) {
	s, err := c.singleName(c.pathRequest(typeRealpath, p))
	return s, pathError("realpath", p, err)
}

// HomeDir returns the user's home directory: expand-path@openssh.com of
// "~" if offered, else the server's starting directory (REALPATH "."),
// which OpenSSH's sshd makes the home directory. (OpenSSH's server, asked
// to expand "~", answers with its starting directory too.)
func (c *Client) HomeDir() (string, error) {
	if c.HasExtension(extExpandPath) {
		return c.ExpandPath("~")
	}
	return c.RealPath(".")
}

// UserHomeDir returns the home directory of the named user with the
// home-directory extension.
func (c *Client) UserHomeDir(user string) (string, error) {
	if !c.HasExtension(extHomeDir) {
		return "", pathError("home-directory", user, unsupported(extHomeDir))
	}
	rc := c.newExtended(extHomeDir)
	rc.out = wire.AppendString(rc.out, user)
	s, err := c.singleName(rc)
	return s, pathError("home-directory", user, err)
}

// ExpandPath canonicalizes p, expanding a leading "~" or "~/" to the home
// directory: expand-path@openssh.com if offered, else HomeDir and
// RealPath.
func (c *Client) ExpandPath(p string) (string, error) {
	if c.HasExtension(extExpandPath) {
		rc := c.newExtended(extExpandPath)
		rc.out = wire.AppendString(rc.out, p)
		s, err := c.singleName(rc)
		return s, pathError("expand-path", p, err)
	}
	if p == "~" || len(p) > 1 && p[:2] == "~/" {
		home, err := c.HomeDir()
		if err != nil {
			return "", err
		}
		p = path.Join(home, p[1:])
	}
	return c.RealPath(p)
}

// StatVFS is a file system's statistics (statvfs@openssh.com).
type StatVFS struct {
	Bsize, Frsize, Blocks, Bfree, Bavail, Files, Ffree, Favail, Fsid, Flag, Namemax uint64
}

// TotalSpace is the file system's size in bytes.
func (s *StatVFS) TotalSpace() uint64 { return s.Frsize * s.Blocks }

// FreeSpace is the bytes available to unprivileged users.
func (s *StatVFS) FreeSpace() uint64 { return s.Frsize * s.Bavail }

// StatVFS returns statistics of the file system holding p.
func (c *Client) StatVFS(p string) (*StatVFS, error) {
	if !c.HasExtension(extStatVFS) {
		return nil, pathError("statvfs", p, unsupported(extStatVFS))
	}
	rc := c.newExtended(extStatVFS)
	rc.out = wire.AppendString(rc.out, p)
	typ, body, err := c.roundTrip(context.Background(), rc)
	defer c.putCall(rc)
	if err != nil {
		return nil, pathError("statvfs", p, err)
	}
	r, err := expectReply(typ, body, typeExtendedReply)
	if err != nil {
		return nil, pathError("statvfs", p, err)
	}
	var s StatVFS
	for _, f := range []*uint64{&s.Bsize, &s.Frsize, &s.Blocks, &s.Bfree, &s.Bavail, &s.Files, &s.Ffree, &s.Favail, &s.Fsid, &s.Flag, &s.Namemax} {
		*f = r.Uint64()
	}
	if err := r.Err(); err != nil {
		return nil, pathError("statvfs", p, fmt.Errorf("sftp: bad statvfs reply: %w", err))
	}
	return &s, nil
}

// HashRange asks the server for the SHA-256 of up to n bytes of p from
// off, with our extension hash-range@rsftp. Request data: string path,
// uint64 offset, uint64 length, string algorithm ("sha256"). Reply
// (EXTENDED_REPLY): string algorithm, uint64 bytes hashed, string digest.
// The server hashes fewer than n bytes at the end of the file or past its
// own bound per request; hashed says how many. Without the extension it
// fails with errors.ErrUnsupported.
func (c *Client) HashRange(p string, off, n uint64) (digest []byte, hashed uint64, err error) {
	return c.hashRange(context.Background(), p, off, n)
}

func (c *Client) hashRange(ctx context.Context, p string, off, n uint64) (digest []byte, hashed uint64, err error) {
	if !c.HasExtension(extHashRange) {
		return nil, 0, pathError("hash-range", p, unsupported(extHashRange))
	}
	rc := c.newExtended(extHashRange)
	rc.out = wire.AppendString(rc.out, p)
	rc.out = wire.AppendUint64(rc.out, off)
	rc.out = wire.AppendUint64(rc.out, n)
	rc.out = wire.AppendString(rc.out, "sha256")
	typ, body, err := c.roundTrip(ctx, rc)
	defer c.putCall(rc)
	if err != nil {
		return nil, 0, pathError("hash-range", p, err)
	}
	r, err := expectReply(typ, body, typeExtendedReply)
	if err != nil {
		return nil, 0, pathError("hash-range", p, err)
	}
	alg := r.String()
	hashed = r.Uint64()
	digest = bytes.Clone(r.Bytes())
	if err := r.Done(); err != nil {
		return nil, 0, pathError("hash-range", p, fmt.Errorf("sftp: bad hash-range reply: %w", err))
	}
	if alg != "sha256" || len(digest) != sha256.Size {
		return nil, 0, pathError("hash-range", p, fmt.Errorf("sftp: hash-range reply with algorithm %q and a %d-byte digest", alg, len(digest)))
	}
	if hashed > n {
		return nil, 0, pathError("hash-range", p, fmt.Errorf("sftp: server hashed %d bytes of %d asked", hashed, n))
	}
	return digest, hashed, nil
}

// Open opens p for reading.
func (c *Client) Open(p string) (*File, error) {
	return c.OpenFile(p, os.O_RDONLY, 0)
}

// Create creates or truncates p for writing, with mode 0666 before the
// server's umask.
func (c *Client) Create(p string) (*File, error) {
	return c.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o666)
}

// OpenFile opens p with os.O_* flags; perm applies when the file is
// created.
func (c *Client) OpenFile(p string, flags int, perm fs.FileMode) (*File, error) {
	return c.openFile(context.Background(), p, flags, perm)
}

func (c *Client) openFile(ctx context.Context, p string, flags int, perm fs.FileMode) (*File, error) {
	var pf uint32
	switch flags & (os.O_RDONLY | os.O_WRONLY | os.O_RDWR) {
	case os.O_RDONLY:
		pf = FlagRead
	case os.O_WRONLY:
		pf = FlagWrite
	case os.O_RDWR:
		pf = FlagRead | FlagWrite
	default:
		return nil, pathError("open", p, errors.New("bad access mode"))
	}
	if flags&os.O_APPEND != 0 {
		pf |= FlagAppend
	}
	if flags&os.O_CREATE != 0 {
		pf |= FlagCreate
	}
	if flags&os.O_TRUNC != 0 {
		pf |= FlagTrunc
	}
	if flags&os.O_EXCL != 0 {
		pf |= FlagExcl
	}
	var a Attrs
	if flags&os.O_CREATE != 0 {
		a = Attrs{Flags: AttrPermissions, Mode: posixMode(perm) &^ modeType}
	}
	rc := c.pathRequest(typeOpen, p)
	rc.out = wire.AppendUint32(rc.out, pf)
	rc.out = appendAttrs(rc.out, &a)
	h, err := c.openHandle(ctx, rc)
	if err != nil {
		return nil, pathError("open", p, err)
	}
	return &File{c: c, name: p, handle: h, appendMode: flags&os.O_APPEND != 0}, nil
}

// File is an open remote file. Read, Write and Seek share an offset and
// are serialized; ReadAt and WriteAt may run concurrently with anything.
type File struct {
	c          *Client
	name       string
	handle     string
	appendMode bool
	closed     atomic.Bool

	mu  sync.Mutex // guards off and serializes offset-using calls
	off int64
}

// Name is the path the file was opened with.
func (f *File) Name() string { return f.name }

func (f *File) check(op string) error {
	if f == nil {
		return os.ErrInvalid
	}
	if f.closed.Load() {
		return pathError(op, f.name, os.ErrClosed)
	}
	return nil
}

func (f *File) handleRequest(typ byte) *call {
	rc := f.c.newRequest(typ)
	rc.out = wire.AppendString(rc.out, f.handle)
	return rc
}

// Close closes the handle. For written files a failed close may mean lost
// data: check its error.
func (f *File) Close() error {
	if f == nil {
		return os.ErrInvalid
	}
	return f.close(context.Background())
}

// close is Close under ctx. If ctx has already ended (an interrupted
// transfer), the CLOSE goes out in the background, unwaited for: the
// server frees the handle when it gets it.
func (f *File) close(ctx context.Context) error {
	if f == nil {
		return os.ErrInvalid
	}
	if f.closed.Swap(true) {
		return pathError("close", f.name, os.ErrClosed)
	}
	if ctx.Err() != nil {
		go f.c.closeHandle(context.Background(), f.handle)
		return nil
	}
	return pathError("close", f.name, f.c.closeHandle(ctx, f.handle))
}

// closeUnwaited closes a file that was only read from: the CLOSE goes
// out now and its reply is not waited for (the handle's slot among
// ServerMaxOpenHandles is given back when it comes). Nothing depends on
// it: a server answers requests in order, so later ones see the handle
// closed, and closing a file read from loses nothing. A download then
// ends a round trip sooner (issue 17). Once ctx has ended (an
// interrupted download, whose abandoned READs may hold every slot on a
// link that stalled) even the CLOSE goes out in the background.
func (f *File) closeUnwaited(ctx context.Context) {
	if f.closed.Swap(true) {
		return
	}
	c := f.c
	if ctx.Err() != nil {
		go c.closeHandle(context.Background(), f.handle)
		return
	}
	rc := c.newRequest(typeClose)
	rc.out = wire.AppendString(rc.out, f.handle)
	c.start(context.Background(), rc)
	go func() {
		<-rc.done
		if c.handles != nil {
			<-c.handles
		}
		c.putCall(rc)
	}()
}

// startClose sends CLOSE without waiting for its reply (behind an
// upload's last WRITE); waitClose waits for it. The file counts as closed
// from now on.
func (f *File) startClose(ctx context.Context) *call {
	f.closed.Store(true)
	rc := f.handleRequest(typeClose)
	f.c.start(ctx, rc)
	return rc
}

func (f *File) waitClose(ctx context.Context, rc *call) error {
	typ, body, err := f.c.wait(ctx, rc)
	if err == nil {
		err = expectStatus(typ, body)
	}
	f.c.putCall(rc)
	if f.c.handles != nil {
		<-f.c.handles
	}
	return pathError("close", f.name, err)
}

// startSetstat is setstat without waiting (waitStatus waits).
func (f *File) startSetstat(ctx context.Context, a *Attrs) *call {
	rc := f.handleRequest(typeFsetstat)
	rc.out = appendAttrs(rc.out, a)
	f.c.start(ctx, rc)
	return rc
}

// waitStatus waits for the STATUS that answers rc, op naming it in
// errors.
func (f *File) waitStatus(ctx context.Context, rc *call, op string) error {
	typ, body, err := f.c.wait(ctx, rc)
	if err == nil {
		err = expectStatus(typ, body)
	}
	f.c.putCall(rc)
	return pathError(op, f.name, err)
}

// Stat returns the open file's attributes (FSTAT).
func (f *File) Stat() (*Attrs, error) {
	return f.stat(context.Background())
}

func (f *File) stat(ctx context.Context) (*Attrs, error) {
	if err := f.check("stat"); err != nil {
		return nil, err
	}
	a, err := f.c.attrsRequest(ctx, f.handleRequest(typeFstat))
	return a, pathError("stat", f.name, err)
}

// Setstat changes the attributes a.Flags names (FSETSTAT).
func (f *File) Setstat(a *Attrs) error {
	return f.setstat(context.Background(), a)
}

func (f *File) setstat(ctx context.Context, a *Attrs) error {
	if err := f.check("setstat"); err != nil {
		return err
	}
	rc := f.handleRequest(typeFsetstat)
	rc.out = appendAttrs(rc.out, a)
	return pathError("setstat", f.name, f.c.statusRequest(ctx, rc))
}

// Chmod changes the permission bits.
func (f *File) Chmod(mode fs.FileMode) error {
	return f.Setstat(&Attrs{Flags: AttrPermissions, Mode: posixMode(mode) &^ modeType})
}

// Chtimes changes the access and modification times.
func (f *File) Chtimes(atime, mtime time.Time) error {
	return f.Setstat(&Attrs{Flags: AttrACModTime, Atime: unixTime(atime), Mtime: unixTime(mtime)})
}

// Truncate changes the file's size.
func (f *File) Truncate(size int64) error {
	if size < 0 {
		return pathError("truncate", f.name, errors.New("negative size"))
	}
	return f.Setstat(&Attrs{Flags: AttrSize, Size: uint64(size)})
}

// Sync asks the server to flush the file to stable storage
// (fsync@openssh.com).
func (f *File) Sync() error {
	if err := f.check("sync"); err != nil {
		return err
	}
	if !f.c.HasExtension(extFsync) {
		return pathError("sync", f.name, unsupported(extFsync))
	}
	rc := f.c.newExtended(extFsync)
	rc.out = wire.AppendString(rc.out, f.handle)
	return pathError("sync", f.name, f.c.statusRequest(context.Background(), rc))
}

// Seek sets the offset for the next Read or Write. SeekEnd asks the
// server for the size.
func (f *File) Seek(offset int64, whence int) (int64, error) {
	if err := f.check("seek"); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += f.off
	case io.SeekEnd:
		a, err := f.Stat()
		if err != nil {
			return 0, err
		}
		if a.Flags&AttrSize == 0 {
			return 0, pathError("seek", f.name, errors.New("server did not report the size"))
		}
		offset += int64(a.Size)
	default:
		return 0, pathError("seek", f.name, errors.New("bad whence"))
	}
	if offset < 0 {
		return 0, pathError("seek", f.name, errors.New("negative offset"))
	}
	f.off = offset
	return offset, nil
}

// Read reads up to len(p) bytes at the offset, pipelining requests when
// p is larger than one READ.
func (f *File) Read(p []byte) (int, error) {
	if err := f.check("read"); err != nil {
		return 0, err
	}
	if len(p) == 0 {
		return 0, nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.readAt(context.Background(), p, f.off)
	f.off += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// ReadAt reads len(p) bytes from off; fewer only with an error (io.EOF
// at the end of the file).
func (f *File) ReadAt(p []byte, off int64) (int, error) {
	if err := f.check("read"); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, pathError("read", f.name, errors.New("negative offset"))
	}
	return f.readAt(context.Background(), p, off)
}

// readAt is ReadAt under ctx.
func (f *File) readAt(ctx context.Context, p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, err := f.readPipeline(ctx, off, int64(len(p)), off+int64(len(p)), nil, func(b []byte, at int64) error {
		copy(p[at-off:], b)
		return nil
	})
	if err == nil && n < int64(len(p)) {
		err = io.ErrUnexpectedEOF
	}
	if err != nil && err != io.EOF {
		err = pathError("read", f.name, err)
	}
	return int(n), err
}

// WriteTo downloads the file from the offset to its end into w: up to
// MaxInflight READs of ReadSize bytes are outstanding at increasing
// offsets and the replies are written to w in order. Short reads are
// re-requested. It returns the bytes written to w.
func (f *File) WriteTo(w io.Writer) (int64, error) {
	if err := f.check("read"); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.readPipeline(context.Background(), f.off, -1, f.sizeHint(context.Background()), nil, func(b []byte, _ int64) error {
		m, err := w.Write(b)
		if err == nil && m != len(b) {
			err = io.ErrShortWrite
		}
		return err
	})
	f.off += n
	if err == io.EOF {
		err = nil
	}
	return n, err
}

// sizeHint is the file's size, for readPipeline, or MaxInt64 if unknown.
// It keeps the pipeline from asking far past the end of small files;
// past it, requests go one at a time until data shows the file grew.
func (f *File) sizeHint(ctx context.Context) int64 {
	if a, err := f.stat(ctx); err == nil && a.Flags&AttrSize != 0 && a.Size < math.MaxInt64 {
		return int64(a.Size)
	}
	return math.MaxInt64
}

// downloadTo is WriteTo into the local file lf, with the data from each
// offset going to that offset plus delta in lf. Where the connection
// lends its buffer, each reply's data is written as it arrives, by the
// goroutine that reads replies, with no copy on the way; done learns of
// the bytes in offset order either way. After a failure, lf may hold
// data past what done was told of (a short read is asked again while
// later replies land). When ctx ends, it returns at once with the
// interruption, leaving the READs in flight; from then on nothing more
// is written to lf, however late their replies come. hint is the file's
// size as the caller knows it (from a STAT just before), or negative:
// then FSTAT asks.
func (f *File) downloadTo(ctx context.Context, lf *os.File, delta, hint int64, done func(n int) error) (int64, error) {
	if err := f.check("read"); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	to := &readTarget{f: lf, delta: delta, done: done}
	// Stopped by ctx itself, not only when the pipeline notices: a
	// pipeline held in a write would otherwise let replies land after
	// the caller cut the file back.
	defer context.AfterFunc(ctx, func() { to.stop(interrupted(ctx)) })()
	if hint < 0 {
		hint = f.sizeHint(ctx)
	}
	n, err := f.readPipeline(ctx, f.off, -1, hint, to, func(b []byte, at int64) error {
		if _, err := lf.WriteAt(b, at+delta); err != nil {
			return err
		}
		return done(len(b))
	})
	f.off += n
	if err == io.EOF {
		err = nil
	}
	return n, err
}

// uploadFrom is ReadFrom from the local file lf, data for each offset
// coming from that offset plus delta in lf. Where the connection lets a
// writer fill its packets, the file is read straight into them, with no
// copy on the way. Before each request ready may stop the upload; advance
// learns of the bytes read.
func (f *File) uploadFrom(lf *os.File, delta int64, ready func() error, advance func(n int)) (int64, error) {
	return f.uploadFromCtx(context.Background(), lf, delta, ready, advance, nil)
}

// uploadFromCtx is uploadFrom under ctx: when ctx ends, it returns at
// once with the interruption and the bytes acknowledged so far, leaving
// the WRITEs in flight (the server may still apply them, in order, if
// the link comes back). finish, if set, is called once the last WRITE
// has gone out with none failed so far, before the replies still due
// are waited for: it sends what ends the upload (FSETSTAT, CLOSE) right
// behind the data, a round trip sooner than after the last reply (issue
// 17). If a WRITE fails after that, data written past it is truncated
// away by path, since the handle may be closed.
func (f *File) uploadFromCtx(ctx context.Context, lf *os.File, delta int64, ready func() error, advance func(n int), finish func()) (int64, error) {
	if err := f.check("write"); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	src := &writeSource{f: lf, delta: delta, ready: ready, advance: advance, finish: finish}
	r := &sourceReader{src: src, at: f.off + delta}
	n, err := f.writePipeline(ctx, f.off, r, src, true)
	f.off += n
	return n, pathError("write", f.name, err)
}

// writeSource is where writePipeline's data may come from straight into
// the connection's packets: data for offset x from f at x+delta.
type writeSource struct {
	f       *os.File
	delta   int64
	ready   func() error
	advance func(n int)
	finish  func() // see uploadFromCtx
}

// sourceReader reads a writeSource in order, for connections without
// WriteFill.
type sourceReader struct {
	src *writeSource
	at  int64
}

func (r *sourceReader) Read(p []byte) (int, error) {
	if err := r.src.ready(); err != nil {
		return 0, err
	}
	n, err := r.src.f.ReadAt(p, r.at)
	r.at += int64(n)
	r.src.advance(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

// readTarget is where readPipeline's replies may go straight from the
// connection: data from offset x lands in f at x+delta. Once stopped,
// nothing more lands in f: replies to READs abandoned by an interrupted
// download are read and dropped.
type readTarget struct {
	f     *os.File
	delta int64
	done  func(n int) error

	mu      sync.Mutex // held while readLoop writes to f
	stopped error      // why writes stopped, if they did
}

// write writes bufs to f at off, unless the target was stopped.
func (t *readTarget) write(bufs [][]byte, off int64) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped != nil {
		return t.stopped
	}
	_, err := writeAtv(t.f, bufs, off)
	return err
}

// stop ends writes to f; it returns once none is under way.
func (t *readTarget) stop(why error) {
	t.mu.Lock()
	if t.stopped == nil {
		t.stopped = why
	}
	t.mu.Unlock()
}

type inflight struct {
	rc    *call
	off   int64
	n     int
	ready bool      // rc.done has been received
	sent  time.Time // readPipeline's, for the round trip
	cs    int64     // a multi-session upload's chunk (rangeWriter)
}

// ring is a fixed-size deque of requests in offset order.
type ring struct {
	buf  []inflight
	head int
	n    int
}

func newRing(n int) ring { return ring{buf: make([]inflight, n+1)} }

func (q *ring) pushBack(x inflight) {
	q.buf[(q.head+q.n)%len(q.buf)] = x
	q.n++
}

func (q *ring) pushFront(x inflight) {
	q.head = (q.head - 1 + len(q.buf)) % len(q.buf)
	q.buf[q.head] = x
	q.n++
}

func (q *ring) at(i int) *inflight { return &q.buf[(q.head+i)%len(q.buf)] }

// waitFront removes the front request once its reply is in and returns
// it; read the reply with rc.reply. When the reply has not come yet, it
// first waits for the one batch-1 places further back (or the last):
// replies come in order, so one wake-up then covers a batch of them
// instead of one each.
func (q *ring) waitFront(batch int) inflight {
	x, _ := q.waitFrontOr(batch, nil)
	return x
}

// waitFrontOr is waitFront that gives up when cancel is closed: it then
// returns false and leaves the ring as it was (a nil cancel never
// closes).
func (q *ring) waitFrontOr(batch int, cancel <-chan struct{}) (inflight, bool) {
	x := q.at(0)
	if !x.ready {
		select {
		case <-x.rc.done:
			x.ready = true
		default:
			if k := min(batch, q.n) - 1; k > 0 && !q.at(k).ready {
				select {
				case <-q.at(k).rc.done:
					q.at(k).ready = true
				case <-cancel:
					return inflight{}, false
				}
			}
		}
	}
	if !x.ready {
		select {
		case <-x.rc.done:
			x.ready = true
		case <-cancel:
			return inflight{}, false
		}
	}
	return q.popFront(), true
}

// ended reports whether c is closed (a nil c never is).
func ended(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func (q *ring) popFront() inflight {
	x := q.buf[q.head]
	q.buf[q.head] = inflight{}
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return x
}

// inflightGrowth tells a download when to keep more READs in flight: when
// a window's worth of data (what was in flight) arrived in less than two
// round trips, the window bounds the rate, not the link. Its round trip
// is the shortest one seen (queues only lengthen the others). On a fast
// nearby link a window of 64 READs takes many round trips and nothing
// grows; on a distant one it arrives once per round trip, and doubling
// it doubles the rate until the link or the cap bounds it.
type inflightGrowth struct {
	minRTT time.Duration
	start  time.Time // of the current window
	bytes  int64     // arrived in it
}

// add records n bytes in reply to a request sent at sent, with w bytes
// in flight; it reports whether w should grow.
func (g *inflightGrowth) add(now, sent time.Time, n, w int64) bool {
	if rtt := now.Sub(sent); g.minRTT == 0 || rtt < g.minRTT {
		g.minRTT = rtt
	}
	g.bytes += n
	if g.bytes < w {
		return false
	}
	took := now.Sub(g.start)
	g.start, g.bytes = now, 0
	return took < 2*g.minRTT
}

// noteGrown records that a download keeps n READs in flight: later ones
// start there.
func (c *Client) noteGrown(n int) {
	for {
		old := c.grown.Load()
		if int64(n) <= old || c.grown.CompareAndSwap(old, int64(n)) {
			return
		}
	}
}

// noteGrownWrites records that an upload keeps n WRITEs in flight: later
// ones start there.
func (c *Client) noteGrownWrites(n int) {
	for {
		old := c.grownWrites.Load()
		if int64(n) <= old || c.grownWrites.CompareAndSwap(old, int64(n)) {
			return
		}
	}
}

// growWindow makes the connection's receive window hold n bytes of
// replies and some room, where it can grow.
func (c *Client) growWindow(n int64) {
	if c.grow != nil {
		c.grow.GrowWindow(uint32(min(n+1<<20, math.MaxUint32)))
	}
}

// readPipeline reads from off up to limit bytes (limit < 0: to the end),
// keeping up to ReadsInFlight READs outstanding (more as inflightGrowth
// finds the link needs them), and passes the data to
// sink in offset order. hint is where the file ends as far as the caller
// knows (its size, or MaxInt64): requests start at offsets below hint
// freely, at or past it only when nothing else is outstanding, and a
// short read that reaches it ends the file. It returns the
// bytes passed to sink, and io.EOF if the file ended first. When ctx
// ends it returns at once with the interruption (unless an error came
// first), abandoning the READs in flight and stopping to.
func (f *File) readPipeline(ctx context.Context, off, limit, hint int64, to *readTarget, sink func(b []byte, at int64) error) (int64, error) {
	c := f.c
	defer c.watch(ctx)()
	cancel := ctx.Done()
	maxIn := c.ReadsInFlight()
	size := int64(c.limits.ReadSize)
	end := int64(math.MaxInt64)
	if limit >= 0 {
		end = off + limit
	}
	q := newRing(max(maxIn, c.limits.GrowInflight))
	next, pos := off, off
	var err error
	issue := func(at int64, n int) inflight {
		rc := f.handleRequest(typeRead)
		rc.out = wire.AppendUint64(rc.out, uint64(at))
		rc.out = wire.AppendUint32(rc.out, uint32(n))
		if to != nil && c.via != nil {
			rc.to, rc.at, rc.max = to, at+to.delta, n
		}
		return inflight{rc: rc, off: at, n: n, sent: time.Now()}
	}
	// Requests go out in batches, and the replies are waited for in
	// batches (waitFront): per batch, one write and one wake-up.
	batch := max(1, maxIn/8)
	var group []*call
	growth := inflightGrowth{start: time.Now()}
	for {
		if q.n == 0 || q.n <= maxIn-batch {
			group = group[:0]
			for err == nil && q.n < maxIn && next < end && (next < hint || q.n == 0) && !ended(cancel) {
				n := min(size, end-next)
				x := issue(next, int(n))
				q.pushBack(x)
				group = append(group, x.rc)
				next += n
			}
			c.startAll(ctx, group)
		}
		if q.n == 0 {
			break
		}
		req, ok := q.waitFrontOr(batch, cancel)
		if !ok {
			// Interrupted: the READs still in flight are abandoned to
			// readLoop, which drops their data once to is stopped.
			if to != nil {
				to.stop(interrupted(ctx))
			}
			if err == nil {
				err = interrupted(ctx)
			}
			break
		}
		typ, body, rerr := req.rc.reply()
		arrived := req.rc.arrived
		got := 0
		if err != nil {
			c.putCall(req.rc) // draining after an error or the end
			continue
		}
		switch {
		case rerr != nil:
			err = rerr
		case typ == typeData && req.rc.direct:
			// Already in the file (readDirect), checked for length.
			got = req.rc.wrote
			if err = req.rc.toErr; err == nil {
				err = to.done(got)
			}
		case typ == typeData:
			if len(body) < 4 || int64(binary.BigEndian.Uint32(body)) != int64(len(body)-4) {
				err = errors.New("sftp: bad DATA reply")
				break
			}
			data := body[4:]
			got = len(data)
			if len(data) > req.n {
				err = fmt.Errorf("sftp: server sent %d bytes for a %d-byte read", len(data), req.n)
				break
			}
			if len(data) == 0 {
				err = errors.New("sftp: server sent an empty DATA reply")
				break
			}
			err = sink(data, req.off)
		case typ == typeStatus:
			err = parseStatus(body)
			if err == nil {
				err = errors.New("sftp: OK status in reply to READ")
			} else if errors.Is(err, io.EOF) {
				err = io.EOF
			}
		default:
			err = fmt.Errorf("sftp: message type %d in reply to READ", typ)
		}
		c.putCall(req.rc)
		if err == nil && maxIn < c.limits.GrowInflight && growth.add(arrived, req.sent, int64(got), int64(maxIn)*size) {
			maxIn = min(2*maxIn, c.limits.GrowInflight)
			batch = max(1, maxIn/8)
			c.growWindow(int64(maxIn) * (size + 13))
			c.noteGrown(maxIn)
		}
		if err == nil {
			pos += int64(got)
			if got < req.n && req.off+int64(got) >= hint {
				// A short read that reaches the size the file had: its
				// end. For a disk file a server reads all that was asked
				// or up to the end (draft-ietf-secsh-filexfer-02, 6.4),
				// so a READ past it would only say EOF: a round trip
				// less per file (issue 17). A server that cut a READ
				// short for another reason (its own cap) is asked for
				// the rest while the file is shorter than hint.
				err = io.EOF
			} else if got < req.n {
				// A short read: ask for the rest before anything later.
				x := issue(req.off+int64(got), req.n-got)
				c.start(ctx, x.rc)
				q.pushFront(x)
			} else if req.off >= hint {
				hint = math.MaxInt64 // the file grew: pipeline again
			}
		}
	}
	return pos - off, err
}

// Write writes p at the offset (or at the end in append mode).
func (f *File) Write(p []byte) (int, error) {
	if err := f.check("write"); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.writePipeline(context.Background(), f.off, bytes.NewReader(p), nil, false)
	f.off += n
	return int(n), pathError("write", f.name, err)
}

// WriteAt writes p at off. Large writes are pipelined; on an error the
// count is the prefix of p the server acknowledged.
func (f *File) WriteAt(p []byte, off int64) (int, error) {
	if err := f.check("write"); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, pathError("write", f.name, errors.New("negative offset"))
	}
	n, err := f.writePipeline(context.Background(), off, bytes.NewReader(p), nil, false)
	return int(n), pathError("write", f.name, err)
}

// ReadFrom uploads r from the offset to r's end: chunks of WriteSize are
// read from r and up to MaxInflight WRITEs kept outstanding.
//
// On any error it stops reading r, waits for the outstanding writes and
// returns the number of bytes from the start offset that the server
// acknowledged contiguously, so the remote file holds no hole below
// offset+n and a caller may resume from there. Writes past a failed one
// may have succeeded: if they extended the file, it is truncated back to
// the larger of offset+n and its size before the upload, so no data sits
// beyond a hole either.
func (f *File) ReadFrom(r io.Reader) (int64, error) {
	if err := f.check("write"); err != nil {
		return 0, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.writePipeline(context.Background(), f.off, r, nil, true)
	f.off += n
	return n, pathError("write", f.name, err)
}

// writePipeline writes r at off with up to MaxInflight WRITEs in flight
// and returns the bytes acknowledged contiguously from off. With cleanup,
// it truncates away data written past a failed write (see ReadFrom).
// When ctx ends it returns at once with the interruption, abandoning the
// WRITEs in flight (no cleanup: that needs the link).
func (f *File) writePipeline(ctx context.Context, off int64, r io.Reader, src *writeSource, cleanup bool) (int64, error) {
	c := f.c
	defer c.watch(ctx)()
	cancel := ctx.Done()
	maxIn := max(c.limits.MaxInflight, int(c.grownWrites.Load()))
	size := c.limits.WriteSize
	// As a download grows its READs in flight, an upload grows its
	// WRITEs while a window's worth is acknowledged within about a round
	// trip (issue 17: 64 WRITEs of 255 KiB are 16 MiB, what 200 ms at
	// 100 MB/s needs and more), up to maxGrownInflightBytes.
	growTo := maxIn
	if c.limits.GrowInflight > 0 {
		growTo = max(maxIn, min(maxGrownInflight, maxGrownInflightBytes/size))
	}
	growth := inflightGrowth{start: time.Now()}
	// The size before the upload: the server answers in order, so an
	// FSTAT sent first sees the file as it was.
	var statCall *call
	if cleanup && !f.appendMode {
		statCall = f.handleRequest(typeFstat)
		c.start(ctx, statCall)
	}
	q := newRing(growTo)
	next := off
	var acked int64
	var werr, rerr error
	readDone := false
	finished := false        // src.finish was called
	writtenPast := int64(-1) // end of the furthest write that succeeded after werr
	// As in readPipeline, replies are waited for in batches; the requests
	// are large enough to go out one by one.
	batch := max(1, maxIn/8)
	for {
		// Refill to maxIn once a batch has room (not one by one).
		refill := q.n == 0 || q.n <= maxIn-batch
		for refill && werr == nil && !readDone && q.n < maxIn {
			if ended(cancel) {
				readDone, rerr = true, interrupted(ctx)
				break
			}
			rc := f.handleRequest(typeWrite)
			rc.out = wire.AppendUint64(rc.out, uint64(next))
			rc.out = wire.AppendUint32(rc.out, 0)
			if src != nil && c.fill != nil {
				if err := src.ready(); err != nil {
					c.putCall(rc)
					readDone, rerr = true, err
					break
				}
				at := next + src.delta
				sent := time.Now()
				n, err := c.startFill(ctx, rc, size, func(bufs [][]byte) (int, error) {
					return readAtv(src.f, bufs, at)
				})
				if n < size {
					readDone = true
					if err != nil && err != io.EOF {
						rerr = err
					}
				}
				src.advance(n)
				q.pushBack(inflight{rc: rc, off: next, n: n, sent: sent})
				next += int64(n)
				continue
			}
			hdr := len(rc.out)
			if cap(rc.out) < hdr+size {
				nb := make([]byte, hdr, hdr+size)
				copy(nb, rc.out)
				rc.out = nb
			}
			n, err := io.ReadFull(r, rc.out[hdr:hdr+size])
			if err != nil {
				readDone = true
				if err != io.EOF && err != io.ErrUnexpectedEOF {
					rerr = err
				}
			}
			if n == 0 {
				c.putCall(rc)
				break
			}
			rc.out = rc.out[:hdr+n]
			binary.BigEndian.PutUint32(rc.out[hdr-4:], uint32(n))
			q.pushBack(inflight{rc: rc, off: next, n: n, sent: time.Now()})
			c.start(ctx, rc)
			next += int64(n)
		}
		if readDone && rerr == nil && werr == nil && src != nil && src.finish != nil && !finished {
			finished = true
			src.finish()
		}
		if q.n == 0 {
			break
		}
		req, ok := q.waitFrontOr(batch, cancel)
		if !ok {
			// Interrupted: the WRITEs in flight (and the FSTAT) are
			// abandoned to readLoop.
			if statCall != nil {
				statCall.abandoned = true
			}
			if werr != nil {
				return acked, werr
			}
			return acked, interrupted(ctx)
		}
		typ, body, err := req.rc.reply()
		if err == nil {
			err = expectStatus(typ, body)
		}
		arrived := req.rc.arrived
		c.putCall(req.rc)
		if err == nil && werr == nil && maxIn < growTo && growth.add(arrived, req.sent, int64(req.n), int64(maxIn)*int64(size)) {
			maxIn = min(2*maxIn, growTo)
			batch = max(1, maxIn/8)
			c.noteGrownWrites(maxIn)
		}
		switch {
		case werr == nil && err == nil:
			acked += int64(req.n)
		case werr == nil:
			werr = err
		case err == nil:
			writtenPast = max(writtenPast, req.off+int64(req.n))
		}
	}
	origSize := int64(-1)
	if statCall != nil {
		typ, body, err := c.wait(ctx, statCall)
		if err == nil {
			if r, err := expectReply(typ, body, typeAttrs); err == nil {
				if a := parseAttrs(r); r.Err() == nil && a.Flags&AttrSize != 0 && a.Size < math.MaxInt64 {
					origSize = int64(a.Size)
				}
			}
		}
		c.putCall(statCall)
	}
	if werr != nil {
		if cleanup && origSize >= 0 && writtenPast > max(origSize, off+acked) {
			keep := max(origSize, off+acked)
			truncate := f.Truncate
			if finished {
				truncate = func(n int64) error { return c.Truncate(f.name, n) }
			}
			if terr := truncate(keep); terr != nil {
				werr = fmt.Errorf("%w; and truncating away data written past it failed: %v", werr, terr)
			}
		}
		return acked, werr
	}
	if rerr != nil {
		if errors.Is(rerr, ErrInterrupted) {
			return acked, rerr
		}
		return acked, fmt.Errorf("reading the source: %w", rerr)
	}
	return acked, nil
}

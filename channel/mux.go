// Package channel is the SSH connection protocol (RFC 4254): a multiplexer
// of channels with per-channel flow control over one authenticated
// transport, global and channel requests, session channels and direct-tcpip
// forwarding.
//
// The multiplexer talks to the layer below through PacketConn: messages
// in, messages and frames out (PlainConn adapts a connection that knows
// only messages); the resume layer slots in there. One goroutine reads packets and
// dispatches them.
//
// Mux and Channel build and parse the wire messages themselves (with
// package internal/connmsg, where each message has its marshal and parse
// functions side by side): a program that opens and accepts channels
// never sees them. What a server's handler needs of a channel open is
// here: NewChannel.Type, NewChannel.DirectTCPIP for the host and port a
// direct-tcpip open asks for (NewChannel.DirectStreamLocal for the path of
// a direct-streamlocal@openssh.com one, streamlocal.go), and the reason codes of
// NewChannel.Reject and OpenError (Prohibited, ConnectFailed,
// UnknownChannelType, ResourceShortage).
package channel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/rsftp/rsftp/internal/connmsg"
	"github.com/rsftp/rsftp/internal/wire"
)

// PacketConn is what the multiplexer needs from the layer below: whole
// messages in and out, in order, and frames that the layer below may
// seal where they lie. transport.Conn and resume.Session implement it;
// PlainConn adapts a connection that only reads and writes messages.
// The write methods must be safe for concurrent use; ReadPacket and
// RetainPacket belong to the one goroutine that reads.
type PacketConn interface {
	// ReadPacket returns the next message. It is valid until the next
	// call, or until released if RetainPacket kept it.
	ReadPacket() ([]byte, error)
	// RetainPacket keeps the message ReadPacket last returned valid,
	// and unchanged, past the next call, until the result is released;
	// or it returns nil, and the caller copies what it keeps. Channel
	// data is then queued for the reader where it was decrypted. It is
	// called before the next ReadPacket.
	RetainPacket() interface{ Release() }
	// PacketBuffer returns a buffer to append a message of up to n
	// bytes to and hand over with WriteFrame: its length is
	// wire.FrameHeadroom (scratch for the framing), and its capacity
	// leaves wire.FrameTailroom spare bytes after the message.
	PacketBuffer(n int) []byte
	// WriteFrame sends the message at buf[wire.FrameHeadroom:], where
	// buf is a buffer from PacketBuffer with the message appended, and
	// takes buf: the caller must not touch it afterwards (resume.Session
	// retains the message in it until acknowledged, transport.Conn seals
	// it and reuses it).
	WriteFrame(buf []byte) error
	// WritePacket sends message p, which it does not keep: p is the
	// caller's again when it returns.
	WritePacket(p []byte) error
	// Disconnect ends the connection with a DISCONNECT of the given
	// reason (the multiplexer's answer to a protocol error of the peer).
	Disconnect(reason uint32, msg string) error
	// Close ends the connection.
	Close() error
}

// MessageConn is a connection that only reads and writes whole messages,
// what PlainConn adapts: ReadPacket's message is valid until the next
// call, WritePacket does not keep p and is safe for concurrent use.
type MessageConn interface {
	ReadPacket() ([]byte, error)
	WritePacket(p []byte) error
	Close() error
}

// PlainConn adapts c, which reads and writes whole messages only (an
// in-memory pipe, a simple transport), to PacketConn: RetainPacket
// returns nil (received data is copied), PacketBuffer hands out pooled
// buffers, WriteFrame writes the message with WritePacket and takes the
// buffer back, and Disconnect closes c.
func PlainConn(c MessageConn) PacketConn { return plainConn{c} }

type plainConn struct{ MessageConn }

func (plainConn) RetainPacket() interface{ Release() } { return nil }

func (plainConn) PacketBuffer(n int) []byte { return getFrame(n) }

func (p plainConn) WriteFrame(buf []byte) error {
	if len(buf) < wire.FrameHeadroom {
		return errors.New("channel: WriteFrame needs a buffer from PacketBuffer")
	}
	err := p.WritePacket(buf[wire.FrameHeadroom:])
	putFrame(buf)
	return err
}

func (p plainConn) Disconnect(uint32, string) error { return p.Close() }

// Frames of plainConn.PacketBuffer: pooled when they fit a 32 KiB data
// packet (the default maximum), allocated beyond.
const plainFrameSize = wire.FrameHeadroom + 32<<10 + 64 + wire.FrameTailroom

var plainFrames = sync.Pool{New: func() any { b := make([]byte, 0, plainFrameSize); return &b }}

func getFrame(n int) []byte {
	need := wire.FrameHeadroom + max(n, 0) + wire.FrameTailroom
	if need > plainFrameSize {
		return make([]byte, wire.FrameHeadroom, need)
	}
	return (*plainFrames.Get().(*[]byte))[:wire.FrameHeadroom]
}

func putFrame(b []byte) {
	if cap(b) == plainFrameSize {
		b = b[:0]
		plainFrames.Put(&b)
	}
}

// minRetain is the smallest data packet queued in place (RetainPacket)
// rather than copied: a small one would hold a whole receive buffer.
const minRetain = 8 << 10

// Defaults, chosen with the benchmarks in transport_test.go (2 cores,
// chacha20-poly1305): a channel moves at most one window per round trip,
// so at 40 ms RTT OpenSSH's 2 MiB window gives 49 MB/s and 16 MiB gives
// 345 MB/s (BenchmarkChannelWindowOverRTT). On loopback, where the window
// never binds, 16 MiB costs some cache locality (about 690 against 820
// MB/s), and 32 KiB packets beat 128 KiB ones (BenchmarkChannelThroughput).
// A window is only memory when the application stops reading.
const (
	DefaultWindowSize  = 16 << 20
	DefaultMaxPacket   = 32 << 10
	DefaultMaxChannels = 1024
	// DefaultMaxWindowTotal bounds the receive windows of one
	// connection's channels together: what a peer that never lets us read
	// can make us buffer (without it, 64 sessions of 16 MiB were 1 GiB).
	DefaultMaxWindowTotal = 64 << 20

	// maxSendPacket caps the data we put in one packet whatever the peer
	// allows, so that a data packet fits the transport's 256 KiB limit:
	// 512 bytes spare hold the message's 9-byte header (13 extended) and
	// the transport's framing, at most 260 bytes of length and padding
	// (its largest payload is 256 KiB less 260). It also lets a 255 KiB
	// SFTP READ reply (261,120 bytes of data, the most OpenSSH's client
	// and ours ask, and a 13-byte header) go as one packet where the peer
	// allows 256 KiB (rsftp's helper): with 1 KiB spare each reply took
	// two, the second of 13 bytes, each sealed, retained and woken for.
	maxSendPacket = 256<<10 - 512
	minMaxPacket  = 1024

	// Bounded queues between the reader loop and the application; what
	// does not fit is refused, never buffered without limit.
	maxQueuedRequests = 32
	maxQueuedOpens    = 64
)

// ErrClosed is returned by operations on a closed channel or multiplexer.
var ErrClosed = errors.New("channel: closed")

// Config tunes the multiplexer. The zero value uses the defaults.
type Config struct {
	// WindowSize is the receive window of each channel: how many bytes
	// the peer may send before we have read them.
	WindowSize uint32
	// MaxPacket is the largest data packet we accept.
	MaxPacket uint32
	// MaxChannels bounds open channels (both directions).
	MaxChannels int
	// MaxWindowTotal bounds the receive windows of all the connection's
	// channels together (what the peer may make us buffer). A new channel
	// gets WindowSize or less, down to one MaxPacket; GrowWindow grows
	// less. Default DefaultMaxWindowTotal.
	MaxWindowTotal uint64
	// Budget, if set, is charged with every channel's receive window, as
	// memory the peer can make us hold, and usually shared by many
	// connections (a server's *resume.Budget): what a channel is granted
	// when it opens, what GrowWindow adds, released when the channel is
	// gone or the connection ends. A window is granted only as far as the
	// budget admits it (smaller windows, down to one MaxPacket).
	Budget Budget
	// NoAutoGrow keeps each receive window as granted unless GrowWindow
	// is called. Without it a window doubles while the peer keeps it
	// full over a long round trip (data a window's worth at a time,
	// each within about the round trip the window adjustments measure:
	// the window, not the link, bounds the sender), within
	// MaxWindowTotal, the Budget and MaxGrownWindow (issue 17: uploads
	// grow their window as downloads do).
	NoAutoGrow bool
}

// Budget counts memory across connections (*resume.Budget implements it).
// TryCharge charges n bytes if there is room and reports whether it did;
// Charge charges them whatever the limit; Release gives back what was
// charged. The methods must be safe for concurrent use and must not block.
type Budget interface {
	TryCharge(n int64) bool
	Charge(n int64)
	Release(n int64)
}

func (c *Config) withDefaults() Config {
	var r Config
	if c != nil {
		r = *c
	}
	if r.WindowSize == 0 {
		r.WindowSize = DefaultWindowSize
	}
	if r.MaxPacket == 0 {
		r.MaxPacket = DefaultMaxPacket
	}
	r.MaxPacket = max(min(r.MaxPacket, maxSendPacket), minMaxPacket)
	if r.WindowSize < r.MaxPacket {
		r.WindowSize = r.MaxPacket
	}
	if r.MaxChannels <= 0 {
		r.MaxChannels = DefaultMaxChannels
	}
	if r.MaxWindowTotal == 0 {
		r.MaxWindowTotal = DefaultMaxWindowTotal
	}
	return r
}

// ProtocolError is a violation of RFC 4254 by the peer; the connection is
// closed with it.
type ProtocolError struct {
	// Msg says what the peer did wrong.
	Msg string
}

// Error returns "channel: protocol error: " and Msg.
func (e *ProtocolError) Error() string { return "channel: protocol error: " + e.Msg }

func protocolErrorf(format string, args ...any) error {
	return &ProtocolError{Msg: fmt.Sprintf(format, args...)}
}

// Open failure reason codes (RFC 4254 section 5.1), for NewChannel.Reject
// and OpenError.Reason.
const (
	Prohibited         uint32 = 1 // SSH_OPEN_ADMINISTRATIVELY_PROHIBITED
	ConnectFailed      uint32 = 2 // SSH_OPEN_CONNECT_FAILED
	UnknownChannelType uint32 = 3 // SSH_OPEN_UNKNOWN_CHANNEL_TYPE
	ResourceShortage   uint32 = 4 // SSH_OPEN_RESOURCE_SHORTAGE
)

func reasonText(r uint32) string {
	switch r {
	case Prohibited:
		return "administratively prohibited"
	case ConnectFailed:
		return "connect failed"
	case UnknownChannelType:
		return "unknown channel type"
	case ResourceShortage:
		return "resource shortage"
	}
	return fmt.Sprintf("reason %d", r)
}

// OpenError is the peer's refusal to open a channel (its
// CHANNEL_OPEN_FAILURE): Mux.OpenChannel, Mux.NewSession and Mux.DialTCP
// return it. Reason tells a refusal by policy (Prohibited) from a failure
// to connect (ConnectFailed), an unknown type or a limit reached
// (ResourceShortage).
type OpenError struct {
	// Type is the channel type that was refused, such as "session".
	Type string
	// Reason is the peer's reason code (Prohibited, ConnectFailed,
	// UnknownChannelType, ResourceShortage, or another the peer chose).
	Reason uint32
	// Message is the peer's description, possibly empty.
	Message string
}

// Error names the channel type, the peer's message and the reason.
func (e *OpenError) Error() string {
	if e.Message != "" {
		return fmt.Sprintf("channel: %s open refused: %s (%s)", e.Type, e.Message, reasonText(e.Reason))
	}
	return fmt.Sprintf("channel: %s open refused: %s", e.Type, reasonText(e.Reason))
}

// Mux multiplexes channels over one PacketConn.
type Mux struct {
	conn PacketConn
	cfg  Config

	mu       sync.Mutex
	chans    map[uint32]*Channel // by our (local) id
	nextID   uint32
	handlers map[string]chan *NewChannel
	global   chan *Request // incoming global requests; nil until asked for
	err      error         // why the reader loop ended
	done     chan struct{}

	// windows is the sum of the receive windows granted to the channels
	// we hold (those not yet released), kept under cfg.MaxWindowTotal
	// but for the floors (grantWindow).
	windows atomic.Uint64

	globalOut replyWaiters // our global requests awaiting replies
	globalIn  replyQueue   // peer's global requests awaiting our replies
}

// NewMux starts multiplexing over conn. Channel types nobody registered
// with HandleChannelOpen are refused, so a server registers its types in
// setup, which runs before the first packet is read:
//
//	m := channel.NewMux(conn, cfg, func(m *channel.Mux) {
//		sessions = m.HandleChannelOpen("session")
//	})
func NewMux(conn PacketConn, cfg *Config, setup ...func(*Mux)) *Mux {
	m := &Mux{
		conn:     conn,
		cfg:      cfg.withDefaults(),
		chans:    make(map[uint32]*Channel),
		handlers: make(map[string]chan *NewChannel),
		done:     make(chan struct{}),
	}
	m.globalIn.send = conn.WritePacket
	for _, f := range setup {
		f(m)
	}
	go m.loop()
	return m
}

// Close closes the underlying connection; channels fail with ErrClosed.
func (m *Mux) Close() error {
	return m.conn.Close()
}

// Wait blocks until the connection ends and returns why (io.EOF for an
// orderly close by the peer).
func (m *Mux) Wait() error {
	<-m.done
	return m.err
}

// Done is closed when the connection has ended.
func (m *Mux) Done() <-chan struct{} { return m.done }

// HandleChannelOpen returns the channel on which opens of type typ are
// delivered. It must be called before the peer's opens arrive; later
// calls for the same type return the same channel. Opens that find the
// queue full are refused with ResourceShortage.
func (m *Mux) HandleChannelOpen(typ string) <-chan *NewChannel {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ch, ok := m.handlers[typ]; ok {
		return ch
	}
	ch := make(chan *NewChannel, maxQueuedOpens)
	if m.err != nil {
		close(ch)
	}
	m.handlers[typ] = ch
	return ch
}

// GlobalRequests returns the channel of the peer's global requests. Until
// it is called, they are refused. Each Request must be answered with
// Reply; replies go out in the order the requests came (RFC 4254 4).
func (m *Mux) GlobalRequests() <-chan *Request {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.global == nil {
		m.global = make(chan *Request, maxQueuedRequests)
		if m.err != nil {
			close(m.global)
		}
	}
	return m.global
}

// SendRequest sends a global request. With wantReply it waits for the
// answer and returns its payload; ctx bounds the wait.
func (m *Mux) SendRequest(ctx context.Context, name string, wantReply bool, payload []byte) (bool, []byte, error) {
	msg := (&connmsg.GlobalRequest{Name: name, WantReply: wantReply, Payload: payload}).Marshal()
	if !wantReply {
		return false, nil, m.conn.WritePacket(msg)
	}
	w, err := m.globalOut.send(m.conn.WritePacket, msg)
	if err != nil {
		return false, nil, err
	}
	select {
	case r := <-w:
		if r.err != nil {
			return false, nil, r.err
		}
		return r.ok, r.payload, nil
	case <-ctx.Done():
		return false, nil, ctx.Err()
	}
}

// OpenChannel opens a channel of type typ with type-specific extra data
// and waits for the peer's answer. A refusal is an *OpenError.
func (m *Mux) OpenChannel(ctx context.Context, typ string, extra []byte) (*Channel, error) {
	c := m.newChannel(typ)
	m.mu.Lock()
	if m.err != nil {
		m.mu.Unlock()
		c.releaseWindow()
		return nil, m.closedErr()
	}
	id, ok := m.allocLocked()
	if !ok {
		n := len(m.chans)
		m.mu.Unlock()
		c.releaseWindow()
		return nil, fmt.Errorf("channel: cannot open %s: %d channels open (limit)", typ, n)
	}
	c.localID = id
	c.state = stateOpening
	c.opened = make(chan error, 1)
	m.chans[id] = c
	m.mu.Unlock()

	open := &connmsg.ChannelOpen{Type: typ, Sender: id, Window: c.in.window, MaxPacket: c.in.maxPacket, Extra: extra}
	if err := m.conn.WritePacket(open.Marshal()); err != nil {
		m.remove(c)
		return nil, fmt.Errorf("channel: opening %s: %w", typ, err)
	}
	select {
	case err := <-c.opened:
		if err != nil {
			return nil, err
		}
		return c, nil
	case <-ctx.Done():
		c.mu.Lock()
		if c.state == stateOpening {
			// The answer is still to come: close the channel if it
			// is confirmed, forget it if refused.
			c.abandoned = true
			c.mu.Unlock()
			return nil, fmt.Errorf("channel: opening %s: %w", typ, ctx.Err())
		}
		c.mu.Unlock()
		if err := <-c.opened; err != nil {
			return nil, err
		}
		c.Close()
		return nil, fmt.Errorf("channel: opening %s: %w", typ, ctx.Err())
	}
}

func (m *Mux) closedErr() error {
	if m.err == nil || errors.Is(m.err, io.EOF) {
		return ErrClosed
	}
	return fmt.Errorf("%w: %w", ErrClosed, m.err)
}

// allocLocked picks a free local channel id.
func (m *Mux) allocLocked() (uint32, bool) {
	if len(m.chans) >= m.cfg.MaxChannels {
		return 0, false
	}
	for {
		id := m.nextID
		m.nextID++
		if _, busy := m.chans[id]; !busy {
			return id, true
		}
	}
}

// remove forgets channel c and gives back its receive window.
func (m *Mux) remove(c *Channel) {
	m.mu.Lock()
	if m.chans[c.localID] == c {
		delete(m.chans, c.localID)
	}
	m.mu.Unlock()
	c.releaseWindow()
}

// grantWindow decides the receive window of a new channel and charges
// it: cfg.WindowSize, or less when the channels' windows would pass
// cfg.MaxWindowTotal or the Budget would not admit it (halving), but
// never less than one cfg.MaxPacket, which is charged even over both
// limits so that every channel can carry data. The overshoot is bounded
// by MaxChannels x MaxPacket per connection (32 MiB with the defaults).
func (m *Mux) grantWindow() uint32 {
	if g := m.reserveWindow(m.cfg.WindowSize, m.cfg.MaxPacket); g > 0 {
		return g
	}
	g := m.cfg.MaxPacket
	m.windows.Add(uint64(g))
	if m.cfg.Budget != nil {
		m.cfg.Budget.Charge(int64(g))
	}
	return g
}

// reserveWindow takes up to want bytes of window under cfg.MaxWindowTotal
// and the Budget, halving while the Budget refuses, and returns what it
// took: 0 if less than least would fit.
func (m *Mux) reserveWindow(want, least uint32) uint32 {
	least = max(least, 1)
	for size := want; size >= least; size /= 2 {
		// Under MaxWindowTotal: what is left of it, if less.
		var got uint32
		for {
			used := m.windows.Load()
			var left uint64
			if used < m.cfg.MaxWindowTotal {
				left = m.cfg.MaxWindowTotal - used
			}
			got = uint32(min(uint64(size), left))
			if got < least {
				return 0
			}
			if m.windows.CompareAndSwap(used, used+uint64(got)) {
				break
			}
		}
		if m.cfg.Budget == nil || m.cfg.Budget.TryCharge(int64(got)) {
			return got
		}
		m.windows.Add(-uint64(got))
		size = got
	}
	return 0
}

// releaseWindowBytes gives back n bytes of window taken by reserveWindow
// or grantWindow.
func (m *Mux) releaseWindowBytes(n uint32) {
	if n == 0 {
		return
	}
	m.windows.Add(-uint64(n))
	if m.cfg.Budget != nil {
		m.cfg.Budget.Release(int64(n))
	}
}

// WindowTotal is the sum of the receive windows of the channels we hold.
func (m *Mux) WindowTotal() uint64 { return m.windows.Load() }

func (m *Mux) lookup(id uint32) *Channel {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.chans[id]
}

// loop reads and dispatches packets until the connection fails or the
// peer breaks the protocol.
func (m *Mux) loop() {
	var err error
	for {
		var p []byte
		p, err = m.conn.ReadPacket()
		if err != nil {
			break
		}
		if err = m.handle(p); err != nil {
			var pe *ProtocolError
			if errors.As(err, &pe) {
				m.conn.Disconnect(wire.DisconnectProtocolError, pe.Msg)
			} else {
				m.conn.Close()
			}
			break
		}
	}
	m.shutdown(err)
}

func (m *Mux) shutdown(err error) {
	m.mu.Lock()
	m.err = err
	chans := m.chans
	m.chans = map[uint32]*Channel{}
	for _, h := range m.handlers {
		close(h)
	}
	if m.global != nil {
		close(m.global)
	}
	m.mu.Unlock()
	m.globalOut.fail(m.closedErr())
	for _, c := range chans {
		c.fail(m.closedErr())
	}
	close(m.done)
}

// handle dispatches one packet. Errors end the connection.
func (m *Mux) handle(p []byte) error {
	if len(p) == 0 {
		return protocolErrorf("empty packet")
	}
	switch p[0] {
	case wire.MsgGlobalRequest:
		return m.handleGlobalRequest(p)
	case wire.MsgRequestSuccess, wire.MsgRequestFailure:
		var payload []byte
		if p[0] == wire.MsgRequestSuccess {
			payload = append([]byte(nil), p[1:]...)
		} else if len(p) != 1 {
			return protocolErrorf("malformed REQUEST_FAILURE")
		}
		if !m.globalOut.deliver(reply{ok: p[0] == wire.MsgRequestSuccess, payload: payload}) {
			return protocolErrorf("%s without a global request", connmsg.Name(p[0]))
		}
		return nil
	case wire.MsgChannelOpen:
		return m.handleOpen(p)
	}
	if p[0] < wire.MsgChannelOpenConfirm || p[0] > wire.MsgChannelFailure {
		if p[0] < wire.MsgGlobalRequest {
			return protocolErrorf("unexpected message %d after authentication", p[0])
		}
		// Messages from extensions we do not know are ignored.
		return nil
	}
	id, ok := recipient(p)
	if !ok {
		return protocolErrorf("truncated %s", connmsg.Name(p[0]))
	}
	c := m.lookup(id)
	if c == nil {
		return protocolErrorf("%s for unknown channel %d", connmsg.Name(p[0]), id)
	}
	return c.handle(p)
}

// recipient returns the recipient channel of a channel message (numbers
// 91 to 100), which always follows the message number.
func recipient(p []byte) (uint32, bool) {
	if len(p) < 5 {
		return 0, false
	}
	return uint32(p[1])<<24 | uint32(p[2])<<16 | uint32(p[3])<<8 | uint32(p[4]), true
}

func (m *Mux) handleGlobalRequest(p []byte) error {
	msg, err := connmsg.ParseGlobalRequest(p)
	if err != nil {
		return protocolErrorf("%v", err)
	}
	r := &Request{Type: msg.Name, WantReply: msg.WantReply, Payload: append([]byte(nil), msg.Payload...)}
	if msg.WantReply {
		r.slot = m.globalIn.add(true)
	}
	m.mu.Lock()
	q := m.global
	m.mu.Unlock()
	if q != nil {
		select {
		case q <- r:
			return nil
		default:
		}
	}
	return r.Reply(false, nil)
}

func (m *Mux) handleOpen(p []byte) error {
	msg, err := connmsg.ParseChannelOpen(p)
	if err != nil {
		return protocolErrorf("%v", err)
	}
	refuse := func(reason uint32, text string) error {
		f := &connmsg.OpenFailure{Recipient: msg.Sender, Reason: reason, Message: text}
		return m.conn.WritePacket(f.Marshal())
	}
	if msg.MaxPacket == 0 {
		return refuse(ConnectFailed, "maximum packet size 0")
	}
	m.mu.Lock()
	h, ok := m.handlers[msg.Type]
	full := len(m.chans) >= m.cfg.MaxChannels
	m.mu.Unlock()
	if !ok {
		return refuse(UnknownChannelType, fmt.Sprintf("unknown channel type %q", msg.Type))
	}
	if full {
		return refuse(ResourceShortage, "too many channels")
	}
	nc := &NewChannel{
		mux:       m,
		typ:       msg.Type,
		extra:     append([]byte(nil), msg.Extra...),
		remoteID:  msg.Sender,
		window:    msg.Window,
		maxPacket: msg.MaxPacket,
	}
	select {
	case h <- nc:
		return nil
	default:
		return refuse(ResourceShortage, "too many pending channel opens")
	}
}

// NewChannel is a peer's request to open a channel; Accept or Reject it.
type NewChannel struct {
	mux       *Mux
	typ       string
	extra     []byte
	remoteID  uint32
	window    uint32
	maxPacket uint32

	mu       sync.Mutex
	answered bool
}

// Type is the channel type, such as "session".
func (n *NewChannel) Type() string { return n.typ }

// ExtraData is the type-specific data of the open request.
func (n *NewChannel) ExtraData() []byte { return n.extra }

func (n *NewChannel) answer() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.answered {
		return errors.New("channel: open request already answered")
	}
	n.answered = true
	return nil
}

// Accept opens the channel.
func (n *NewChannel) Accept() (*Channel, error) {
	if err := n.answer(); err != nil {
		return nil, err
	}
	m := n.mux
	c := m.newChannel(n.typ)
	c.remoteID = n.remoteID
	c.out.set(n.window, n.maxPacket)
	c.state = stateOpen
	m.mu.Lock()
	if m.err != nil {
		m.mu.Unlock()
		c.releaseWindow()
		return nil, m.closedErr()
	}
	id, ok := m.allocLocked()
	if !ok {
		m.mu.Unlock()
		c.releaseWindow()
		f := &connmsg.OpenFailure{Recipient: n.remoteID, Reason: ResourceShortage, Message: "too many channels"}
		m.conn.WritePacket(f.Marshal())
		return nil, errors.New("channel: too many channels")
	}
	c.localID = id
	m.chans[id] = c
	m.mu.Unlock()
	conf := &connmsg.OpenConfirm{Recipient: n.remoteID, Sender: id, Window: c.in.window, MaxPacket: c.in.maxPacket}
	if err := m.conn.WritePacket(conf.Marshal()); err != nil {
		m.remove(c)
		return nil, err
	}
	return c, nil
}

// Reject refuses the channel with a reason code and a message.
func (n *NewChannel) Reject(reason uint32, message string) error {
	if err := n.answer(); err != nil {
		return err
	}
	f := &connmsg.OpenFailure{Recipient: n.remoteID, Reason: reason, Message: message}
	return n.mux.conn.WritePacket(f.Marshal())
}

// Request is a global or channel request from the peer.
type Request struct {
	// Type is the request name, such as "keepalive@openssh.com" or
	// "exit-status".
	Type string
	// WantReply says the peer waits for an answer: call Reply exactly
	// once (until then later requests' replies wait behind this one).
	WantReply bool
	// Payload is the request-specific data; it is the Request's own.
	Payload []byte

	slot *replySlot
}

// Reply answers the request (a no-op unless WantReply). Replies leave in
// the order the requests arrived, whatever order Reply is called in.
func (r *Request) Reply(ok bool, payload []byte) error {
	if r.slot == nil {
		return nil
	}
	s := r.slot
	r.slot = nil
	return s.q.complete(s, ok, payload)
}

// replyQueue sends replies to the peer's requests in arrival order.
type replyQueue struct {
	mu      sync.Mutex
	send    func([]byte) error
	pending []*replySlot
	// success and failure build the reply messages.
	success func(payload []byte) []byte
	failure func() []byte
	closed  bool
}

type replySlot struct {
	q       *replyQueue
	done    bool
	ok      bool
	payload []byte
}

func (q *replyQueue) add(_ bool) *replySlot {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := &replySlot{q: q}
	q.pending = append(q.pending, s)
	return s
}

func (q *replyQueue) complete(s *replySlot, ok bool, payload []byte) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	s.done, s.ok, s.payload = true, ok, payload
	for len(q.pending) > 0 && q.pending[0].done {
		h := q.pending[0]
		q.pending[0] = nil
		q.pending = q.pending[1:]
		if q.closed {
			continue
		}
		var msg []byte
		switch {
		case h.ok && q.success != nil:
			msg = q.success(h.payload)
		case h.ok:
			msg = (&connmsg.RequestSuccess{Payload: h.payload}).Marshal()
		case q.failure != nil:
			msg = q.failure()
		default:
			msg = []byte{wire.MsgRequestFailure}
		}
		if err := q.send(msg); err != nil {
			return err
		}
	}
	return nil
}

// close drops replies not yet sent (the channel is gone).
func (q *replyQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
}

// replyWaiters matches the peer's replies to our requests, first in first
// out.
type replyWaiters struct {
	sendMu  sync.Mutex // held from queueing a waiter to sending its request
	mu      sync.Mutex
	waiting []chan reply
	err     error
}

type reply struct {
	ok      bool
	payload []byte
	err     error
}

// send queues a waiter and sends msg, atomically with respect to other
// senders so that replies match.
func (w *replyWaiters) send(write func([]byte) error, msg []byte) (chan reply, error) {
	w.sendMu.Lock()
	defer w.sendMu.Unlock()
	w.mu.Lock()
	if w.err != nil {
		w.mu.Unlock()
		return nil, w.err
	}
	ch := make(chan reply, 1)
	w.waiting = append(w.waiting, ch)
	w.mu.Unlock()
	// The reader may deliver the reply before WritePacket returns; ch is
	// buffered for that.
	if err := write(msg); err != nil {
		return nil, err
	}
	return ch, nil
}

func (w *replyWaiters) deliver(r reply) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.waiting) == 0 {
		return false
	}
	ch := w.waiting[0]
	w.waiting[0] = nil
	w.waiting = w.waiting[1:]
	ch <- r
	return true
}

func (w *replyWaiters) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
	for _, ch := range w.waiting {
		ch <- reply{err: err}
	}
	w.waiting = nil
}

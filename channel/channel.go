package channel

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/rsftp/rsftp/internal/connmsg"
	"github.com/rsftp/rsftp/internal/wire"
)

type chanState uint8

const (
	stateOpening chanState = iota // our open sent, no answer yet
	stateOpen
	stateGone // refused, or closed in both directions
)

// Channel is one open channel. Read and Write carry its data stream;
// Stderr its extended data of type 1. Read, Write and the request methods
// may be used from different goroutines.
//
// As crypto/tls's Conn splits its directions into halfConns, a channel
// keeps what it receives in a recvHalf and what it sends in a sendHalf;
// what concerns both (the channel's state, its close in either direction,
// the multiplexer's failure, requests) stays here.
//
// Locks: mu guards the channel's state and both halves; out.wmu, taken
// before mu and never while mu is held, makes one writer at a time.
// Waiters wait on mu's conditions: a reader of each stream on rcond, a
// writer on wcond. Data of one stream wakes only its reader and a window
// adjustment only the writer; what ends or fails the channel wakes all
// (wakeAllLocked). A single condition woke a Stderr reader that drains
// a session's stderr for every packet of stdout (rsftp's helper
// channel: 12,000 needless wake-ups per 512 MiB). The fields set when the channel
// opens (mux, typ, localID, and remoteID, which the confirmation sets
// before the opener returns the channel) are read without a lock.
type Channel struct {
	mux      *Mux
	typ      string
	localID  uint32
	remoteID uint32

	mu    sync.Mutex
	rcond [2]sync.Cond // on mu: data of stream 0 (stdout) and 1 (stderr) for their reader
	wcond sync.Cond    // on mu: window and the end of a packet's write, for the writer

	// Guarded by mu.
	state        chanState
	opened       chan error // answer to our open
	abandoned    bool       // our opener gave up waiting
	closeWanted  bool       // Close called: reads and writes fail
	sentClose    bool
	remoteClosed bool  // the peer's CLOSE arrived
	err          error // the multiplexer's failure

	in  recvHalf
	out sendHalf

	reqs     chan *Request // sent to under mu (RefuseRequests drains it)
	reqsOut  replyWaiters  // its own locks
	reqsIn   replyQueue
	reqsDone bool // guarded by mu
	refusing bool // RefuseRequests was called; guarded by mu
}

// recvHalf is what a channel receives: the window we granted, the data
// that arrived and waits to be read, the peer's EOF. Guarded by
// Channel.mu.
type recvHalf struct {
	// window is what the peer may still send; unacked what the
	// application consumed and we have not yet given back with
	// WINDOW_ADJUST.
	window    uint32
	maxPacket uint32 // the largest data packet we accept
	// size is the receive window granted (what we may have to buffer),
	// charged to the multiplexer's total and Budget until released.
	size     uint32
	released bool
	unacked  uint32
	auto     autoGrow

	stdout, stderr rbuf
	viaBufs        [][]byte // ReadVia's pieces
	// direct is the buffer of a Read waiting on an empty stdout: data
	// that arrives goes straight into it (directN bytes so far), saving
	// the copy through stdout. Only the waiting Read clears it.
	direct      []byte
	directN     int
	directBytes uint64 // in all, placed straight into a reader's buffer
	// sink takes data for a ReadSink waiting on an empty stdout, before
	// direct; sunk is what it took during the call being delivered.
	sink     func([]byte) int
	sunk     uint32
	discard  [2]bool // drop stdout / stderr instead of buffering
	eof      bool    // the peer's EOF arrived
	deadline deadline
	waits    [2]uint64 // times a reader of stdout, stderr went to sleep (tests)
	// want is what the waiting reader of stdout needs before it is
	// woken by data: 1, or ReadAtLeast's min (capped).
	want int
}

// sendHalf is what a channel sends: the peer's window and maximum
// packet, the reserve we keep of that window, our EOF. wmu is the
// writer's lock (one Write, Stderr().Write or WriteFill at a time) and
// guards fillFrames and fillSegs; the rest is guarded by Channel.mu.
type sendHalf struct {
	wmu        sync.Mutex
	fillFrames [][]byte // WriteFill's frames and their data areas, during a call
	fillSegs   [][]byte

	window    uint32 // what the peer lets us send
	peakWin   uint32 // the most window the peer ever let us have at once
	maxPacket uint32 // the peer's maximum packet
	// reserve is the part of the peer's window we leave unused while the
	// peer keeps adjusting it (set), waived while a writer has waited
	// reserveWait for an adjust in vain.
	reserve      uint32
	waived       bool
	reserveGen   uint64
	reserveTimer *time.Timer
	waivers      uint64 // times the reserve was waived
	inflight     bool   // a data packet is being written
	eofWanted    bool   // CloseWrite called
	sentEOF      bool
	deadline     deadline
}

// buf is the receive buffer of stream 0 (stdout) or 1 (stderr).
func (r *recvHalf) buf(stream int) *rbuf {
	if stream&1 == 1 {
		return &r.stderr
	}
	return &r.stdout
}

// take counts a data packet of n bytes against the window, or says how
// it breaks the protocol (on channel id).
func (r *recvHalf) take(n, id uint32) error {
	switch {
	case r.eof:
		return protocolErrorf("data for channel %d after CHANNEL_EOF", id)
	case n > r.maxPacket:
		return protocolErrorf("data packet of %d bytes on channel %d exceeds the maximum %d", n, id, r.maxPacket)
	case n > r.window:
		return protocolErrorf("peer sent %d bytes on channel %d with a window of %d", n, id, r.window)
	}
	r.window -= n
	return nil
}

// autoGrow grows a channel's receive window while the peer keeps it
// full over a long round trip (issue 17; HPN-SSH's dynamic window, by
// measurement instead of the TCP buffer): each window's worth of data
// that arrives within about a round trip says the window, not the link,
// bounds the sender. The round trip is measured by the adjustments: data
// past what we had granted before an adjustment cannot arrive before the
// adjustment went there and the data came back, and it comes exactly
// then when the peer was waiting for it, so the shortest such wait is
// the round trip, or more. A sender the link bounds (the window exceeds
// what the round trip needs) takes longer for a window than that wait
// (with adjustments of a quarter window, the wait is at most three
// quarters of a window's time). Guarded by Channel.mu.
type autoGrow struct {
	granted, received uint64 // window given in all; data taken
	probing           bool   // an adjustment's wait is being timed
	probeLimit        uint64 // granted before it
	probeAt           time.Time
	minWait           time.Duration // the shortest wait seen
	periodStart       time.Time     // of the current window's worth of data
	periodBytes       uint64
}

// A window's worth arriving within 5/4 of the shortest wait is one the
// window bounds.
const autoGrowNum, autoGrowDen = 5, 4

// took counts n bytes of data that arrived now against a window of size;
// it reports whether the window should grow.
func (a *autoGrow) took(now time.Time, n, size uint32) bool {
	a.received += uint64(n)
	if a.probing && a.received > a.probeLimit {
		a.probing = false
		if w := now.Sub(a.probeAt); a.minWait == 0 || w < a.minWait {
			a.minWait = w
		}
	}
	if a.periodStart.IsZero() {
		a.periodStart = now
		return false
	}
	a.periodBytes += uint64(n)
	if a.periodBytes < uint64(size) {
		return false
	}
	took := now.Sub(a.periodStart)
	a.periodStart, a.periodBytes = now, 0
	return a.minWait > 0 && took*autoGrowDen < a.minWait*autoGrowNum
}

// gave records adj bytes of window given back or added now.
func (a *autoGrow) gave(now time.Time, adj uint32) {
	if !a.probing {
		a.probing, a.probeLimit, a.probeAt = true, a.granted, now
	}
	a.granted += uint64(adj)
}

// deliver queues data for the reader: stderr's in its buffer; stdout's
// straight into the buffer of a waiting Read while it has room, else
// where it lies if it is large and conn retains the packet it came in
// (PacketConn.RetainPacket), else copied.
func (r *recvHalf) deliver(data []byte, extended bool, conn PacketConn) {
	if !extended && r.sink != nil && r.directN == 0 && r.stdout.len() == 0 {
		k := min(max(r.sink(data), 0), len(data))
		r.sunk += uint32(k)
		data = data[k:]
		if len(data) == 0 {
			return
		}
		// What the sink left goes to the reader, and the wait ends.
		r.sink = nil
	}
	switch {
	case extended:
		r.stderr.write(data)
	case r.directN < len(r.direct) && r.stdout.len() == 0:
		k := copy(r.direct[r.directN:], data)
		r.directN += k
		r.directBytes += uint64(k)
		r.stdout.write(data[k:])
	case len(data) >= minRetain:
		if owner := conn.RetainPacket(); owner != nil {
			r.stdout.push(data, owner)
			break
		}
		r.stdout.write(data)
	default:
		r.stdout.write(data)
	}
}

// consumed records n bytes consumed (read or dropped) and returns how
// much window to give back now, if any: we wait until a quarter of the
// window has accumulated, and give back nothing unless adjustable.
func (r *recvHalf) consumed(n uint32, adjustable bool) uint32 {
	r.unacked += n
	if r.unacked < r.size/4 || !adjustable {
		return 0
	}
	adj := r.unacked
	r.unacked = 0
	r.window += adj
	r.auto.gave(time.Now(), adj)
	return adj
}

// grow adds adj bytes to the window granted and to what the peer may
// send.
func (r *recvHalf) grow(adj uint32) {
	r.size += adj
	r.window += adj
	r.auto.gave(time.Now(), adj)
}

// drop empties both streams' buffers (the channel is closed).
func (r *recvHalf) drop() {
	r.stdout.reset()
	r.stderr.reset()
	r.directN = 0
}

// dropStream makes stream 0 or 1 drop what arrives from now on, empties
// its buffer, and returns the bytes dropped.
func (r *recvHalf) dropStream(stream int) int {
	r.discard[stream&1] = true
	buf := r.buf(stream)
	n := buf.len()
	buf.reset()
	if stream&1 == 0 {
		n += r.directN
		r.directN = 0
	}
	return n
}

// newChannel makes a channel with its receive window granted and
// charged (grantWindow); whoever fails to register it calls releaseWindow.
func (m *Mux) newChannel(typ string) *Channel {
	w := m.grantWindow()
	c := &Channel{
		mux:  m,
		typ:  typ,
		in:   recvHalf{window: w, size: w, maxPacket: m.cfg.MaxPacket, auto: autoGrow{granted: uint64(w)}, want: 1},
		reqs: make(chan *Request, maxQueuedRequests),
	}
	c.rcond[0].L, c.rcond[1].L, c.wcond.L = &c.mu, &c.mu, &c.mu
	c.reqsIn.send = m.conn.WritePacket
	c.reqsIn.success = func([]byte) []byte { return (&connmsg.ChannelSuccess{Recipient: c.remoteID}).Marshal() }
	c.reqsIn.failure = func() []byte { return (&connmsg.ChannelFailure{Recipient: c.remoteID}).Marshal() }
	c.in.deadline.wake = c.wakeReadersLocked
	c.out.deadline.wake = c.wcond.Broadcast
	return c
}

// Type is the channel type.
func (c *Channel) Type() string { return c.typ }

// IDs returns our and the peer's channel numbers.
func (c *Channel) IDs() (local, remote uint32) { return c.localID, c.remoteID }

// Windows reports the flow-control state: what the peer may still send
// us, and what we may still send it.
func (c *Channel) Windows() (receive, send uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.in.window, c.out.window
}

// PeerWindow is the most window the peer has let us have at once: the
// window it offered, or more if it adjusted past it. A channel sends at
// most about that much per round trip (OpenSSH's sshd offers 2 MiB).
func (c *Channel) PeerWindow() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.peakWin
}

// MaxGrownWindow bounds GrowWindow: a window is memory when the
// application stops reading.
const MaxGrownWindow = 256 << 20

// GrowWindow raises the channel's receive window to n bytes (at most
// MaxGrownWindow) and gives the peer the difference at once with
// WINDOW_ADJUST. A reader that finds the window bounding a fast, distant
// sender (its data arrives a window per round trip) calls it; a window
// never shrinks. It grows less, or not at all, where Config.MaxWindowTotal
// or Config.Budget has no room for all of it (Windows tells how far it
// went). It does nothing if the window is already that large or the
// channel is closing.
func (c *Channel) GrowWindow(n uint32) error {
	n = min(n, MaxGrownWindow)
	c.mu.Lock()
	if n <= c.in.size || c.growClosedLocked() {
		c.mu.Unlock()
		return nil
	}
	want := n - c.in.size
	c.mu.Unlock()
	// Charge outside c.mu: the Budget may call back into its owner.
	m := c.mux
	got := m.reserveWindow(want, min(want, m.cfg.MaxPacket))
	if got == 0 {
		return nil
	}
	c.mu.Lock()
	if c.growClosedLocked() || n <= c.in.size {
		c.mu.Unlock()
		m.releaseWindowBytes(got)
		return nil
	}
	// Another GrowWindow may have grown it meanwhile.
	adj := min(got, n-c.in.size)
	c.in.grow(adj)
	c.mu.Unlock()
	m.releaseWindowBytes(got - adj)
	return c.sendAdjust(adj)
}

func (c *Channel) growClosedLocked() bool {
	return c.in.released || c.sentClose || c.remoteClosed || c.err != nil
}

// releaseWindow gives back the channel's receive window to the
// multiplexer's total and the Budget, once: the channel is gone, or the
// connection ended (what is still buffered then is dropped by Close or
// drained by reads, and no more can arrive).
func (c *Channel) releaseWindow() {
	c.mu.Lock()
	if c.in.released {
		c.mu.Unlock()
		return
	}
	c.in.released = true
	n := c.in.size
	c.mu.Unlock()
	c.mux.releaseWindowBytes(n)
}

// Requests delivers the peer's channel requests. It is closed when the
// channel closes. Requests that find it full are refused.
func (c *Channel) Requests() <-chan *Request { return c.reqs }

// RefuseRequests refuses every request from now on, those queued in
// Requests included, without a goroutine to read them (a server whose
// session has started its command and takes no more requests).
func (c *Channel) RefuseRequests() {
	var queued []*Request
	c.mu.Lock()
	c.refusing = true
	for drained := false; !drained; {
		select {
		case r, ok := <-c.reqs:
			if ok {
				queued = append(queued, r)
			} else {
				drained = true
			}
		default:
			drained = true
		}
	}
	c.mu.Unlock()
	for _, r := range queued {
		r.Reply(false, nil)
	}
}

// handle processes a message for this channel; called by the reader loop.
func (c *Channel) handle(p []byte) error {
	switch p[0] {
	case wire.MsgChannelOpenConfirm:
		return c.handleConfirm(p)
	case wire.MsgChannelOpenFailure:
		return c.handleOpenFailure(p)
	}
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		return protocolErrorf("%s for channel %d before it was confirmed", connmsg.Name(p[0]), c.localID)
	}
	if c.remoteClosed {
		c.mu.Unlock()
		return protocolErrorf("%s for channel %d after CHANNEL_CLOSE", connmsg.Name(p[0]), c.localID)
	}
	c.mu.Unlock()
	switch p[0] {
	case wire.MsgChannelWindowAdjust:
		msg, err := connmsg.ParseWindowAdjust(p)
		if err != nil {
			return protocolErrorf("%v", err)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if !c.out.add(msg.Bytes) {
			return protocolErrorf("window of channel %d adjusted past 2^32-1", c.localID)
		}
		c.wcond.Broadcast()
		return nil
	case wire.MsgChannelData, wire.MsgChannelExtendedData:
		msg, err := connmsg.ParseData(p)
		if err != nil {
			return protocolErrorf("%v", err)
		}
		return c.handleData(&msg)
	case wire.MsgChannelEOF:
		if _, err := connmsg.ParseEOF(p); err != nil {
			return protocolErrorf("%v", err)
		}
		c.mu.Lock()
		c.in.eof = true
		c.wakeReadersLocked()
		c.mu.Unlock()
		return nil
	case wire.MsgChannelClose:
		if _, err := connmsg.ParseClose(p); err != nil {
			return protocolErrorf("%v", err)
		}
		return c.handleClose()
	case wire.MsgChannelRequest:
		msg, err := connmsg.ParseChannelRequest(p)
		if err != nil {
			return protocolErrorf("%v", err)
		}
		r := &Request{Type: msg.Type, WantReply: msg.WantReply, Payload: append([]byte(nil), msg.Payload...)}
		if msg.WantReply {
			r.slot = c.reqsIn.add(true)
		}
		// Queued under c.mu, so that RefuseRequests finds it.
		c.mu.Lock()
		queued := false
		if !c.refusing && !c.reqsDone {
			select {
			case c.reqs <- r:
				queued = true
			default:
			}
		}
		c.mu.Unlock()
		if queued {
			return nil
		}
		return r.Reply(false, nil)
	case wire.MsgChannelSuccess, wire.MsgChannelFailure:
		if len(p) != 5 {
			return protocolErrorf("malformed %s", connmsg.Name(p[0]))
		}
		if !c.reqsOut.deliver(reply{ok: p[0] == wire.MsgChannelSuccess}) {
			return protocolErrorf("%s for channel %d without a request", connmsg.Name(p[0]), c.localID)
		}
		return nil
	}
	return nil
}

func (c *Channel) handleConfirm(p []byte) error {
	msg, err := connmsg.ParseOpenConfirm(p)
	if err != nil {
		return protocolErrorf("%v", err)
	}
	c.mu.Lock()
	if c.state != stateOpening {
		c.mu.Unlock()
		return protocolErrorf("CHANNEL_OPEN_CONFIRMATION for channel %d, which is not opening", c.localID)
	}
	if msg.MaxPacket == 0 {
		c.mu.Unlock()
		return protocolErrorf("CHANNEL_OPEN_CONFIRMATION with maximum packet size 0")
	}
	c.remoteID = msg.Sender
	c.out.set(msg.Window, msg.MaxPacket)
	c.state = stateOpen
	abandoned := c.abandoned
	c.mu.Unlock()
	if abandoned {
		c.Close()
		return nil
	}
	c.opened <- nil
	return nil
}

func (c *Channel) handleOpenFailure(p []byte) error {
	msg, err := connmsg.ParseOpenFailure(p)
	if err != nil {
		return protocolErrorf("%v", err)
	}
	c.mu.Lock()
	if c.state != stateOpening {
		c.mu.Unlock()
		return protocolErrorf("CHANNEL_OPEN_FAILURE for channel %d, which is not opening", c.localID)
	}
	c.state = stateGone
	c.mu.Unlock()
	c.mux.remove(c)
	c.opened <- &OpenError{Type: c.typ, Reason: msg.Reason, Message: printable(msg.Message)}
	return nil
}

// printable keeps peer text safe for terminals and logs.
func printable(s string) string {
	const maxLen = 512
	b := make([]rune, 0, min(len(s), maxLen))
	for _, r := range s {
		if len(b) == maxLen {
			break
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			r = '?'
		}
		b = append(b, r)
	}
	return string(b)
}

func (c *Channel) handleData(msg *connmsg.Data) error {
	n := uint32(len(msg.Data))
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.in.take(n, c.localID); err != nil {
		return err
	}
	if !c.mux.cfg.NoAutoGrow && c.in.auto.took(time.Now(), n, c.in.size) && c.in.size < MaxGrownWindow && !c.growClosedLocked() {
		// Not from the reader loop: growing charges the budget and
		// writes an adjustment.
		go c.GrowWindow(c.in.size * 2)
	}
	stream := 0
	if msg.Extended {
		stream = 1
	}
	if c.closeWanted || c.sentClose || c.in.discard[stream] || (msg.Extended && msg.Code != connmsg.ExtendedDataStderr) {
		// Nobody will read it: count it as consumed.
		return c.sendAdjust(c.consumedLocked(n))
	}
	c.in.deliver(msg.Data, msg.Extended, c.mux.conn)
	if sunk := c.in.sunk; sunk > 0 {
		// ReadSink's sink took it, or part of it: that part is read,
		// and its reader waits on unless something is left.
		c.in.sunk = 0
		if sunk < n {
			c.rcond[0].Broadcast()
		}
		return c.sendAdjust(c.consumedLocked(sunk))
	}
	if stream == 1 || c.in.directN+c.in.stdout.len() >= c.in.want {
		// A ReadAtLeast sleeps on until what it asked for is there.
		c.rcond[stream].Broadcast()
	}
	return nil
}

// consumedLocked records n bytes consumed (read or dropped) and returns
// how much window to give back now, if any (recvHalf.consumed). The
// caller sends the adjust with sendAdjust, outside c.mu when it can. Once
// the channel is closing or the connection has failed there is no one to
// send it to: reads then drain what is buffered and end with the
// multiplexer's error, not with the failed write of an adjust.
func (c *Channel) consumedLocked(n uint32) uint32 {
	return c.in.consumed(n, !c.sentClose && !c.remoteClosed && c.err == nil)
}

func (c *Channel) sendAdjust(adj uint32) error {
	if adj == 0 {
		return nil
	}
	return c.mux.conn.WritePacket((&connmsg.WindowAdjust{Recipient: c.remoteID, Bytes: adj}).Marshal())
}

func (c *Channel) handleClose() error {
	c.mu.Lock()
	c.remoteClosed = true
	c.wakeAllLocked()
	err := c.maybeSendCloseLocked()
	c.mu.Unlock()
	c.releaseIfDone()
	c.finishRequests(ErrClosed)
	return err
}

// releaseIfDone frees our channel number once CLOSE went both ways.
func (c *Channel) releaseIfDone() {
	c.mu.Lock()
	done := c.sentClose && c.remoteClosed && c.state != stateGone
	if done {
		c.state = stateGone
	}
	c.mu.Unlock()
	if done {
		c.mux.remove(c)
	}
}

// maybeSendCloseLocked sends CLOSE when it is wanted (by Close or by the
// peer's CLOSE) and no data packet is on its way out, so that nothing
// follows our CLOSE.
func (c *Channel) maybeSendCloseLocked() error {
	if c.sentClose || c.out.inflight || !(c.closeWanted || c.remoteClosed) || c.state != stateOpen || c.err != nil {
		return nil
	}
	c.sentClose = true
	return c.mux.conn.WritePacket((&connmsg.Close{Recipient: c.remoteID}).Marshal())
}

// maybeSendEOFLocked is the same for EOF.
func (c *Channel) maybeSendEOFLocked() error {
	if c.out.sentEOF || c.sentClose || c.out.inflight || !c.out.eofWanted || c.state != stateOpen || c.err != nil {
		return nil
	}
	c.out.sentEOF = true
	return c.mux.conn.WritePacket((&connmsg.EOF{Recipient: c.remoteID}).Marshal())
}

func (c *Channel) finishRequests(err error) {
	c.reqsOut.fail(err)
	c.reqsIn.close()
	c.mu.Lock()
	if !c.reqsDone {
		c.reqsDone = true
		close(c.reqs)
	}
	c.mu.Unlock()
}

// fail ends the channel because the multiplexer ended.
func (c *Channel) fail(err error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = err
	}
	wasOpening := c.state == stateOpening
	c.state = stateGone
	c.wakeAllLocked()
	c.mu.Unlock()
	c.releaseWindow()
	if wasOpening {
		c.opened <- err
	}
	c.finishRequests(err)
}

// Read reads channel data. It returns io.EOF after the peer's EOF or
// CLOSE once buffered data is consumed.
func (c *Channel) Read(p []byte) (int, error) { return c.read(p, 0, 1) }

// ReadAtLeast is Read for a reader that knows it needs at least min bytes
// before it can use any (a transport reading a packet of known length
// through a channel, such as rsftp's inner connection through sshd):
// while it waits, the data that arrives wakes it only once min bytes are
// there (or len(p), if smaller), however many packets bring them, where
// Read wakes for each. It returns what is there then, up to len(p). It
// returns fewer than min bytes, without an error, when the channel's data
// ends, fails or passes its read deadline first; the next call says why.
// It never waits for more than the peer may send before we give window
// back: min is capped at what is buffered and the window still open.
func (c *Channel) ReadAtLeast(p []byte, min int) (int, error) {
	return c.read(p, 0, min)
}

// Buffered returns how many bytes of channel data (not stderr) have
// arrived and wait to be read: a Read of up to that many returns at once.
// The channel buffers on its own, so a reader that would wrap it in a
// bufio.Reader only for this can read it directly and save a copy.
func (c *Channel) Buffered() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.in.stdout.len()
}

// read reads stream (0 stdout, 1 stderr) into p, waiting while fewer than
// want bytes are there (want > 1: ReadAtLeast, stdout only).
func (c *Channel) read(p []byte, stream, want int) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	buf := c.in.buf(stream)
	n := 0
	if want = max(min(want, len(p)), 1); want > 1 {
		// The peer sends no more than the window open now before we
		// give some back, which we do only as the reader consumes; and
		// a peer may keep part of it in reserve while it waits for
		// adjustments (sendHalf.reserve: half).
		want = int(max(min(uint64(want), uint64(buf.len())+uint64(c.in.window/2)), 1))
	}
	if buf.len() < want {
		if err := c.readErrLocked(); (err != nil && buf.len() == 0) || len(p) == 0 {
			return 0, err
		}
		if stream == 0 {
			c.in.want = want
		}
		if stream == 0 && c.in.direct == nil && buf.len() == 0 {
			// Wait with p exposed to handleData: what lands in it is
			// ours, and comes before anything in stdout.
			c.in.direct, c.in.directN = p, 0
			n = c.waitLocked(stream, &c.in.directN)
			c.in.direct, c.in.directN = nil, 0
		} else {
			n = c.waitLocked(stream, nil)
		}
		if stream == 0 {
			c.in.want = 1
		}
		if n < 0 {
			if buf.len() == 0 {
				return 0, c.readErrLocked()
			}
			n = 0
		}
	}
	n += buf.read(p[n:])
	adj := c.consumedLocked(uint32(n))
	if adj == 0 {
		return n, nil
	}
	c.mu.Unlock()
	err := c.sendAdjust(adj)
	c.mu.Lock()
	return n, err
}

// ReadSink is Read for a reader that hands data on, such as a client
// writing a terminal: while it waits on an empty buffer, data that
// arrives is first offered to sink, which the goroutine that reads the
// connection calls with the channel's lock held, in order; what sink
// takes counts as read, and the wait goes on. Data sink leaves (it
// returns less than len(p), possibly 0) is read into p as by Read, and
// ReadSink returns it; data that was buffered when it was called is
// returned without sink. So a reader that writes out what ReadSink
// returns before it calls again keeps the data in order, and the
// connection's goroutine hands data on without waking the reader's.
// sink must not block: the connection waits for it (a non-blocking
// write that takes what fits). It must not call the channel's methods.
// Another Read, ReadVia or ReadSink must not run at the same time.
func (c *Channel) ReadSink(p []byte, sink func([]byte) int) (int, error) {
	if sink == nil || len(p) == 0 {
		return c.Read(p)
	}
	c.mu.Lock()
	if c.in.stdout.len() > 0 || c.in.direct != nil {
		c.mu.Unlock()
		return c.Read(p)
	}
	c.in.sink = sink
	c.mu.Unlock()
	n, err := c.Read(p)
	c.mu.Lock()
	c.in.sink = nil
	c.mu.Unlock()
	return n, err
}

// ReadVia consumes the next n bytes of channel data (not stderr) without
// copying them out: it calls fn with them where they lie in the receive
// buffer, in pieces as they arrive, in order, and counts them read when fn
// returns. The slices are valid only during the call. It returns how many
// bytes it consumed: n, unless the channel ended or failed first (a
// channel that ends early gives io.ErrUnexpectedEOF). Another Read or
// ReadVia must not run at the same time.
func (c *Channel) ReadVia(n int, fn func(bufs [][]byte)) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	done := 0
	for done < n {
		if c.in.stdout.len() == 0 && c.waitLocked(0, nil) < 0 {
			err := c.readErrLocked()
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return done, err
		}
		bufs := c.in.stdout.peek(n-done, c.in.viaBufs[:0])
		c.in.viaBufs = bufs
		k := 0
		for _, b := range bufs {
			k += len(b)
		}
		c.in.stdout.pinned = true
		c.mu.Unlock()
		fn(bufs)
		c.mu.Lock()
		clear(bufs)
		if !c.in.stdout.pinned {
			// Close or Discard dropped the buffer meanwhile, and Discard
			// counted these bytes consumed.
			if c.closeWanted {
				return done, ErrClosed
			}
			return done + k, errors.New("channel: data discarded during ReadVia")
		}
		c.in.stdout.pinned = false
		c.in.stdout.discard(k)
		done += k
		if adj := c.consumedLocked(uint32(k)); adj > 0 {
			c.mu.Unlock()
			err := c.sendAdjust(adj)
			c.mu.Lock()
			if err != nil {
				return done, err
			}
		}
	}
	return done, nil
}

// Write sends data, in packets no bigger than the peer allows, waiting for
// window space as needed.
func (c *Channel) Write(p []byte) (int, error) { return c.write(p, false) }

// TryWrite sends all of p, as Write does, if it can begin at once: no
// other write of the channel is under way and the peer's window lets all
// of p go now. Otherwise it sends nothing and reports false, and the
// caller may hand p to a goroutine that waits in Write. Like Write it
// may still wait for the connection below (its bound on what is queued
// to send, resumption's retention). An error is the channel's: it was
// closed or failed, and nothing was sent (or, as Write reports it, part
// of p before a failure).
func (c *Channel) TryWrite(p []byte) (bool, error) {
	if len(p) == 0 {
		return true, nil
	}
	if !c.out.wmu.TryLock() {
		return false, nil
	}
	defer c.out.wmu.Unlock()
	c.mu.Lock()
	err := c.writableLocked()
	now := err == nil && uint64(c.out.usable()) >= uint64(len(p))
	c.mu.Unlock()
	if err != nil || !now {
		return false, err
	}
	// Only writers take window, and wmu is ours: the claims return at
	// once, unless an adjustment arriving meanwhile restores a waived
	// reserve (sendHalf.set), and then they wait as Write's would.
	_, err = c.writeLocked(p, false)
	return true, err
}

// waitLocked waits until the buffer of stream (0 stdout, 1 stderr) and
// *placed (if placed is not nil) hold c.in.want bytes together, and
// returns *placed then (0 if nil), or -1 when the read must end first
// (readErrLocked says why; some data may be there).
func (c *Channel) waitLocked(stream int, placed *int) int {
	buf := c.in.buf(stream)
	want := 1
	if stream == 0 {
		want = c.in.want
	}
	for {
		got := 0
		if placed != nil {
			got = *placed
		}
		if got+buf.len() >= want {
			return got
		}
		if c.readErrLocked() != nil {
			if got > 0 {
				return got
			}
			return -1
		}
		// The reader waits for data that may be long in coming (an idle
		// session, a detached one): hold no chunk meanwhile.
		buf.shrink()
		c.in.waits[stream&1]++
		c.rcond[stream&1].Wait()
	}
}

// readErrLocked says why a read finding its buffer empty must end, or
// returns nil if it may wait.
func (c *Channel) readErrLocked() error {
	switch {
	case c.closeWanted:
		return ErrClosed
	case c.in.eof || c.remoteClosed:
		return io.EOF
	case c.err != nil:
		return c.err
	case c.in.deadline.passed():
		return os.ErrDeadlineExceeded
	}
	return nil
}

func (c *Channel) write(p []byte, ext bool) (int, error) {
	c.out.wmu.Lock()
	defer c.out.wmu.Unlock()
	return c.writeLocked(p, ext)
}

// writeLocked is write with c.out.wmu held.
func (c *Channel) writeLocked(p []byte, ext bool) (int, error) {
	sent := 0
	for len(p) > 0 {
		n, err := c.claim(len(p), false)
		if err != nil {
			return sent, err
		}
		msg := connmsg.Data{Recipient: c.remoteID, Extended: ext, Code: connmsg.ExtendedDataStderr, Data: p[:n]}
		// Marshalled into a frame the connection takes: it seals it
		// where it lies (transport.Conn) or keeps it (resume.Session).
		err = c.mux.conn.WriteFrame(msg.AppendMarshal(c.mux.conn.PacketBuffer(n + 16)))
		if err = c.written(err); err != nil {
			return sent, err
		}
		sent += n
		p = p[n:]
	}
	return sent, nil
}

// claim waits until up to n bytes may go in one packet and takes that
// much of the window, returning how much. With the reserve in force it
// waits for room for a whole packet rather than send a runt. With whole,
// it takes all of n (which must fit in a packet) or, when the window
// would only let a shorter packet go now, nothing: it returns 0. A claim
// that returns more than 0 must be followed by written.
func (c *Channel) claim(n int, whole bool) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	want := uint32(min(uint64(n), c.out.packetLimit()))
	for {
		if err := c.writableLocked(); err != nil {
			return 0, err
		}
		u := c.out.usable()
		if u >= want {
			break
		}
		if u > 0 && (c.out.reserve == 0 || c.out.waived) {
			if whole {
				return 0, nil
			}
			break
		}
		if c.out.window > 0 && c.out.reserveTimer == nil {
			c.awaitAdjustLocked()
		}
		c.wcond.Wait()
	}
	return c.out.take(n), nil
}

// written ends the write of a packet begun by claim; err is the write's
// result.
func (c *Channel) written(err error) error {
	c.mu.Lock()
	c.out.inflight = false
	err2 := c.maybeSendEOFLocked()
	if err2 == nil {
		err2 = c.maybeSendCloseLocked()
	}
	c.wcond.Broadcast()
	c.mu.Unlock()
	c.releaseIfDone()
	if err == nil {
		err = err2
	}
	return err
}

// WriteFill sends up to n bytes of data that fill writes straight into
// the packets that carry them, saving the copy Write makes (the SFTP
// server reads files into them). fill gets the packets' data areas, in
// order, n bytes in all, and returns how many bytes it filled from the
// start; only those are sent. If fill fails, nothing is sent. WriteFill
// returns the bytes sent; like Write, it is atomic with respect to other
// writers of the channel.
func (c *Channel) WriteFill(n int, fill func(bufs [][]byte) (int, error)) (int, error) {
	if n <= 0 {
		return 0, nil
	}
	c.out.wmu.Lock()
	defer c.out.wmu.Unlock()
	c.mu.Lock()
	err := c.writableLocked()
	pkt := int(c.out.packetLimit())
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}

	// Lay out the packets: each a frame from the connection
	// (wire.FrameHeadroom, the CHANNEL_DATA header, the data, room for
	// the transport's framing).
	frames, segs := c.out.fillFrames[:0], c.out.fillSegs[:0]
	for off := 0; off < n; off += pkt {
		d := min(pkt, n-off)
		b := c.mux.conn.PacketBuffer(connmsg.DataHeaderLen + d)
		b = slices.Grow(b, connmsg.DataHeaderLen+d+wire.FrameTailroom)
		// The header, with a data length of 0 until the data is known.
		b = (&connmsg.Data{Recipient: c.remoteID}).AppendMarshal(b)
		b = b[:len(b)+d]
		frames = append(frames, b)
		segs = append(segs, b[len(b)-d:])
	}
	c.out.fillFrames, c.out.fillSegs = frames, segs
	defer func() {
		clear(c.out.fillFrames[:cap(c.out.fillFrames)])
		clear(c.out.fillSegs[:cap(c.out.fillSegs)])
	}()
	k, err := fill(segs)
	if err != nil {
		return 0, err
	}
	if k < 0 || k > n {
		return 0, fmt.Errorf("channel: WriteFill: fill reported %d of %d bytes", k, n)
	}

	sent := 0
	for i, b := range frames {
		d := min(len(segs[i]), k-sent)
		if d <= 0 {
			break
		}
		data := segs[i][:d]
		b = b[:len(b)-len(segs[i])+d]
		binary.BigEndian.PutUint32(b[wire.FrameHeadroom+5:], uint32(d))
		got, err := c.claim(d, true)
		if err != nil {
			return sent, err
		}
		if got == 0 {
			// The window lets only a shorter packet go: send this one's
			// data the ordinary way.
			m, err := c.writeLocked(data, false)
			sent += m
			if err != nil {
				return sent, err
			}
			continue
		}
		if err = c.written(c.mux.conn.WriteFrame(b)); err != nil {
			return sent, err
		}
		sent += d
	}
	return sent, nil
}

// reserveWait is how long a writer held back by the reserve waits for a
// window adjustment before it sends into the reserve.
var reserveWait = 2 * time.Millisecond

// set records the window and maximum packet the peer offered for the
// channel. Of a window of 16 packets to maxReserveWindow, we keep at most
// half plus a packet in flight, as long as the peer keeps adjusting it:
// the rest is reserve.
// A peer that drains more slowly than we send then holds half the
// backlog. OpenSSH's client, whose cost per packet grows with what it
// holds, downloads from us much faster so (see README, SFTP benchmark).
// A peer that adjusts only once its window is spent costs a wait of
// reserveWait per window, after which the reserve is waived.
func (s *sendHalf) set(window, maxPacket uint32) {
	s.window = window
	s.peakWin = window
	s.maxPacket = maxPacket
	if window/16 >= maxPacket && window <= maxReserveWindow {
		// Only a window of 16 packets or more: a smaller one holds
		// little, and a reserve would only cut it into runts. And none
		// of more than maxReserveWindow: a peer that offers that much
		// wants it used on long paths, where each adjustment would
		// otherwise cost a wait of reserveWait (BenchmarkChannelWindowOverRTT:
		// 16 MiB at 40 ms RTT lost 12% with a reserve).
		s.reserve = window/2 - maxPacket
	}
}

// maxReserveWindow is the largest peer window given a reserve: OpenSSH
// offers 2 MiB; we offer 16 MiB (DefaultWindowSize).
const maxReserveWindow = 4 << 20

// usable is what may be sent now: the window less the reserve, unless
// waived.
func (s *sendHalf) usable() uint32 {
	switch {
	case s.waived:
		return s.window
	case s.window <= s.reserve:
		return 0
	}
	return s.window - s.reserve
}

// packetLimit is the most data one packet may carry: the peer's maximum,
// and ours (maxSendPacket).
func (s *sendHalf) packetLimit() uint64 { return min(uint64(s.maxPacket), maxSendPacket) }

// take takes up to n bytes of the usable window for a packet about to be
// written, which it marks in flight, and returns how much.
func (s *sendHalf) take(n int) int {
	// In 64 bits: the peer's window and maximum packet go up to
	// 2^32-1, which is negative as a 32-bit int.
	k := int(min(uint64(n), uint64(s.usable()), s.packetLimit()))
	s.window -= uint32(k)
	s.inflight = true
	return k
}

// add applies the peer's WINDOW_ADJUST of n bytes, restoring the reserve,
// and reports false, changing nothing, if the window would pass 2^32-1.
func (s *sendHalf) add(n uint32) bool {
	if uint64(s.window)+uint64(n) > 1<<32-1 {
		return false
	}
	s.window += n
	s.peakWin = max(s.peakWin, s.window)
	s.adjusted()
	return true
}

// awaitAdjustLocked arms the timer that waives the reserve if no window
// adjustment comes within reserveWait.
func (c *Channel) awaitAdjustLocked() {
	gen := c.out.reserveGen
	c.out.reserveTimer = time.AfterFunc(reserveWait, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.out.reserveGen == gen {
			c.out.waived = true
			c.out.waivers++
			c.out.reserveTimer = nil
			c.wcond.Broadcast()
		}
	})
}

// adjusted restores the reserve after a window adjustment.
func (s *sendHalf) adjusted() {
	s.reserveGen++
	s.waived = false
	if s.reserveTimer != nil {
		s.reserveTimer.Stop()
		s.reserveTimer = nil
	}
}

func (c *Channel) writableLocked() error {
	switch {
	case c.closeWanted || c.sentClose:
		return ErrClosed
	case c.out.eofWanted:
		return errors.New("channel: write after CloseWrite")
	case c.remoteClosed:
		return fmt.Errorf("channel: %s channel closed by peer: %w", c.typ, io.ErrClosedPipe)
	case c.err != nil:
		return c.err
	case c.out.deadline.passed():
		return os.ErrDeadlineExceeded
	}
	return nil
}

// CloseWrite sends EOF: we will send no more data. Reading goes on.
func (c *Channel) CloseWrite() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.out.eofWanted {
		return nil
	}
	c.out.eofWanted = true
	c.wcond.Broadcast()
	return c.maybeSendEOFLocked()
}

// Close closes the channel in both directions. Buffered data is dropped.
func (c *Channel) Close() error {
	c.mu.Lock()
	if c.closeWanted {
		c.mu.Unlock()
		return nil
	}
	c.closeWanted = true
	c.in.drop()
	c.wakeAllLocked()
	err := c.maybeSendCloseLocked()
	c.mu.Unlock()
	c.releaseIfDone()
	return err
}

// SendRequest sends a channel request. With wantReply it waits for the
// answer (ctx bounds the wait) and reports whether the peer agreed.
func (c *Channel) SendRequest(ctx context.Context, name string, wantReply bool, payload []byte) (bool, error) {
	w, err := c.startRequest(name, wantReply, payload)
	if err != nil || w == nil {
		return false, err
	}
	return waitReply(ctx, w)
}

// startRequest sends a channel request; with wantReply it returns where
// the reply will come (waitReply), without waiting for it.
func (c *Channel) startRequest(name string, wantReply bool, payload []byte) (chan reply, error) {
	c.mu.Lock()
	err := c.writableLocked()
	if errors.Is(err, os.ErrDeadlineExceeded) || (err != nil && c.out.eofWanted && !c.closeWanted && !c.remoteClosed && c.err == nil) {
		// Requests such as exit-status go after EOF.
		err = nil
	}
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	msg := (&connmsg.ChannelRequest{Recipient: c.remoteID, Type: name, WantReply: wantReply, Payload: payload}).Marshal()
	if !wantReply {
		return nil, c.mux.conn.WritePacket(msg)
	}
	return c.reqsOut.send(c.mux.conn.WritePacket, msg)
}

// waitReply waits for the reply to a request (SendRequest).
func waitReply(ctx context.Context, w chan reply) (bool, error) {
	select {
	case r := <-w:
		return r.ok, r.err
	case <-ctx.Done():
		return false, ctx.Err()
	}
}

// Stderr returns the channel's extended data stream of type 1: reading
// gives what the peer sent there, writing sends there.
func (c *Channel) Stderr() io.ReadWriter { return stderr{c} }

type stderr struct{ c *Channel }

func (s stderr) Read(p []byte) (int, error)  { return s.c.read(p, 1, 1) }
func (s stderr) Write(p []byte) (int, error) { return s.c.write(p, true) }

// Discard makes the channel drop what arrives on stdout (stream 0) or
// stderr (stream 1) instead of buffering it, returning window space at
// once. Sessions use it for streams nobody reads.
func (c *Channel) Discard(stream int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.in.dropStream(stream)
	adj := c.consumedLocked(uint32(n))
	c.mu.Unlock()
	c.sendAdjust(adj)
	c.mu.Lock()
}

// SetReadDeadline makes blocked and future reads fail with
// os.ErrDeadlineExceeded after t (zero t: no deadline).
func (c *Channel) SetReadDeadline(t time.Time) error {
	c.in.deadline.set(&c.mu, t)
	return nil
}

// SetWriteDeadline does the same for writes.
func (c *Channel) SetWriteDeadline(t time.Time) error {
	c.out.deadline.set(&c.mu, t)
	return nil
}

// SetDeadline sets both deadlines.
func (c *Channel) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

// wakeReadersLocked wakes the readers of both streams: the channel's
// receiving side ended or failed, or the read deadline changed.
func (c *Channel) wakeReadersLocked() {
	c.rcond[0].Broadcast()
	c.rcond[1].Broadcast()
}

// wakeAllLocked wakes every waiter: the channel ended or failed.
func (c *Channel) wakeAllLocked() {
	c.wakeReadersLocked()
	c.wcond.Broadcast()
}

// deadline calls wake, with the channel's lock held, when it passes or
// changes: wake makes the waiters it concerns look again.
type deadline struct {
	wake  func()
	t     time.Time
	timer *time.Timer
}

func (d *deadline) set(mu *sync.Mutex, t time.Time) {
	mu.Lock()
	defer mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	d.t = t
	if !t.IsZero() {
		d.timer = time.AfterFunc(time.Until(t), func() {
			mu.Lock()
			d.wake()
			mu.Unlock()
		})
	}
	d.wake()
}

func (d *deadline) passed() bool {
	return !d.t.IsZero() && !time.Now().Before(d.t)
}

// rbuf is a receive buffer: a queue of pieces of data, each either
// copied into a fixed-size chunk (write), so that a reader that lags
// behind never makes the writer move what is buffered (a single sliding
// slice did, and cost a third of the throughput with 16 MiB windows), or
// left where the transport decrypted it (push), held until read. It never
// holds more than the channel's window.
type rbuf struct {
	segs   []seg // segs[0] holds the oldest data; only the last may be empty
	n      int
	pinned bool // a ReadVia callback is reading segments
}

// A seg is a piece of buffered data: b, in a chunk from chunkPool whose
// room after b later writes fill, or in memory held by owner.
type seg struct {
	b     []byte
	chunk *[]byte
	owner interface{ Release() }
}

const rbufChunk = 64 << 10

var chunkPool = sync.Pool{New: func() any { b := make([]byte, rbufChunk); return &b }}

func (r *rbuf) len() int { return r.n }

// write copies p in.
func (r *rbuf) write(p []byte) {
	r.n += len(p)
	for len(p) > 0 {
		last := len(r.segs) - 1
		if last < 0 || r.segs[last].chunk == nil || len(r.segs[last].b) == cap(r.segs[last].b) {
			c := chunkPool.Get().(*[]byte)
			r.segs = append(r.segs, seg{b: (*c)[:0], chunk: c})
			last++
		}
		sg := &r.segs[last]
		k := min(len(p), cap(sg.b)-len(sg.b))
		sg.b = append(sg.b, p[:k]...)
		p = p[k:]
	}
}

// push queues p without a copy: owner holds the memory it lies in, and is
// released once p is read.
func (r *rbuf) push(p []byte, owner interface{ Release() }) {
	if last := len(r.segs) - 1; last >= 0 && len(r.segs[last].b) == 0 {
		r.drop(last)
		r.segs = r.segs[:last]
	}
	r.n += len(p)
	r.segs = append(r.segs, seg{b: p[:len(p):len(p)], owner: owner})
}

// drop gives back what segment i holds.
func (r *rbuf) drop(i int) {
	sg := &r.segs[i]
	if !r.pinned {
		if sg.chunk != nil {
			chunkPool.Put(sg.chunk)
		}
		if sg.owner != nil {
			sg.owner.Release()
		}
	}
	// Pinned, the memory may be under a ReadVia callback: the collector
	// takes it instead, once nothing refers to it.
	*sg = seg{}
}

// front returns the first contiguous piece of what is buffered.
func (r *rbuf) front() []byte {
	if r.n == 0 {
		return nil
	}
	return r.segs[0].b
}

// skip drops k bytes, at most len(r.front()), from the front.
func (r *rbuf) skip(k int) {
	sg := &r.segs[0]
	sg.b = sg.b[k:]
	r.n -= k
	if len(sg.b) > 0 {
		return
	}
	if len(r.segs) == 1 && sg.chunk != nil {
		sg.b = (*sg.chunk)[:0] // keep the last chunk for the next write
		return
	}
	r.drop(0)
	r.segs = r.segs[1:]
}

func (r *rbuf) read(p []byte) int {
	total := 0
	for len(p) > 0 && r.n > 0 {
		k := copy(p, r.front())
		r.skip(k)
		total += k
		p = p[k:]
	}
	return total
}

// peek appends to dst the pieces of the first max bytes buffered (or of
// all, if fewer), where they lie.
func (r *rbuf) peek(max int, dst [][]byte) [][]byte {
	for _, sg := range r.segs {
		if max <= 0 {
			break
		}
		if p := sg.b[:min(len(sg.b), max)]; len(p) > 0 {
			dst = append(dst, p)
			max -= len(p)
		}
	}
	return dst
}

// discard drops the first k bytes buffered.
func (r *rbuf) discard(k int) {
	for k > 0 && r.n > 0 {
		m := min(k, len(r.front()))
		r.skip(m)
		k -= m
	}
}

// shrink gives back the chunk an empty buffer keeps for the next write
// (skip), so that a channel waiting for data holds none; the next write
// takes one from the pool again.
func (r *rbuf) shrink() {
	if r.n != 0 || r.pinned || len(r.segs) == 0 {
		return
	}
	for i := range r.segs {
		r.drop(i)
	}
	r.segs = r.segs[:0]
}

// reset drops what is buffered.
func (r *rbuf) reset() {
	for i := range r.segs {
		r.drop(i)
	}
	*r = rbuf{}
}

// conn adapts a channel to net.Conn (direct-tcpip).
type conn struct {
	*Channel
	laddr, raddr net.Addr
}

func (c *conn) LocalAddr() net.Addr  { return c.laddr }
func (c *conn) RemoteAddr() net.Addr { return c.raddr }

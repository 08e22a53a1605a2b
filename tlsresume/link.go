package tlsresume

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/resume"
)

// Exporter labels (section 4). The resume key is exported from the
// session's first connection; each connection's channel binding is
// RFC 9266's tls-exporter value.
const (
	KeyLabel     = "EXPERIMENTAL rsftp tls-resume key v1"
	KeyLen       = 32
	BindingLabel = "EXPORTER-Channel-Binding"
	BindingLen   = 32
)

// readBuffers is how many records a link's reads rotate through.
const readBuffers = 4

// closeTimeout bounds the write of a CLOSE (or any last record) on a
// connection being ended.
const closeTimeout = 2 * time.Second

// link is one TLS connection carrying a session's records: the
// resume.Transport of package resume, over a TLS 1.3 connection whose
// ALPN chose the resumable mode. Records are read by one goroutine (the
// session's reader); writes are serialized by wmu, each record one
// tls.Conn.Write. PING is answered here, and every record read counts as
// a packet for the liveness checks.
type link struct {
	tc      *tls.Conn
	raw     net.Conn
	bc      *batchConn // between tc and raw: SealFrame's records in one write
	binding []byte     // tls-exporter of this connection
	state   tls.ConnectionState

	// Records are read into rbufs in turn: a DATA record stays valid
	// until readBuffers-1 more DATA records were read, so that Conn's
	// reader can hand several to Read at once (see Conn.reader).
	rbufs [readBuffers][]byte
	next  int
	// The record being read (readPart): its header, the bytes read of
	// header and body, the body's length once known, and whether the
	// body goes to hint's dst.
	hdr        [headerLen]byte
	have, want int
	direct     bool
	// hint is the Conn's (readHint); deadline the read deadline set on
	// raw for its poll.
	hint     atomic.Pointer[readHint]
	deadline int64
	kicked   atomic.Bool // the Conn moved the read deadline (Conn.kickRead)
	// nextHint becomes hint once a record was read: a client's new link
	// reads the answer to its resume request without it, and gets it
	// before the session runs on it.
	nextHint *readHint
	packets  atomic.Uint64
	stalled  atomic.Pointer[atomic.Bool] // the Conn's: its reader waits for the application

	wmu     sync.Mutex
	wbuf    []byte
	batched int                    // frames in bc's batch, held (SealFrame)
	holder  atomic.Pointer[holder] // the Conn's, once it runs on this link

	// Background writes (ACKs, PONGs): the newest ACK not yet written,
	// whether a PONG is owed, and whether bc holds bytes a write that
	// could not wait left behind (bgFlush), written by the writer
	// goroutine so that the reader never blocks on a full connection.
	// An ACK is taken from bgAck only under wmu (see writeAckNow).
	bgMu    sync.Mutex
	bgAck   []byte
	bgPong  bool
	bgFlush bool
	bgKick  chan struct{}
	bgStart sync.Once

	done     chan struct{}
	doneOnce sync.Once
	protoErr atomic.Pointer[error] // the first protocol error read
}

// newLink wraps a TLS connection whose handshake is done and whose ALPN
// chose the resumable mode over TLS 1.3.
func newLink(tc *tls.Conn, bc *batchConn) (*link, error) {
	raw := bc.Conn
	st := tc.ConnectionState()
	if st.Version != tls.VersionTLS13 {
		return nil, fmt.Errorf("tlsresume: resumable mode negotiated over %s (TLS 1.3 only)", tls.VersionName(st.Version))
	}
	b, err := st.ExportKeyingMaterial(BindingLabel, nil, BindingLen)
	if err != nil {
		return nil, fmt.Errorf("tlsresume: exporting the channel binding: %w", err)
	}
	l := &link{tc: tc, raw: raw, bc: bc, binding: b, state: st, bgKick: make(chan struct{}, 1), done: make(chan struct{})}
	l.rbufs[0] = make([]byte, MaxRecord) // the others once DATA comes
	return l, nil
}

// resumeKey is the session's resume key, from its first connection.
func resumeKey(st *tls.ConnectionState) ([]byte, error) {
	k, err := st.ExportKeyingMaterial(KeyLabel, nil, KeyLen)
	if err != nil {
		return nil, fmt.Errorf("tlsresume: exporting the resume key: %w", err)
	}
	return k, nil
}

// ReadPacket returns the next record for the session: DATA and the resume
// messages. PING is answered, PONG dropped; CLOSE is a *ClosedError;
// HELLO, unknown types and malformed bodies are errors, and so is the
// end of the connection without CLOSE (a lost link).
func (l *link) ReadPacket() ([]byte, error) { return l.readRecord(false) }

// readRecord is ReadPacket; the server's first record may be HELLO.
func (l *link) readRecord(first bool) ([]byte, error) {
	for {
		if l.rbufs[l.next] == nil {
			l.rbufs[l.next] = make([]byte, MaxRecord)
		}
		p, err := l.readPart(l.rbufs[l.next])
		if err == nil && p[0] == RecData {
			// Other records take the buffer the next DATA will.
			l.next = (l.next + 1) % readBuffers
		}
		if errors.Is(err, ErrRecord) {
			return nil, l.protocolError(err)
		}
		if err != nil {
			if err == io.EOF {
				// crypto/tls reports a TCP FIN at a record boundary as
				// EOF as it does close_notify: neither ends the session
				// (anyone on the path can forge a FIN); only CLOSE does.
				err = errors.New("tlsresume: the connection ended without CLOSE")
			}
			return nil, err
		}
		l.packets.Add(1)
		if l.nextHint != nil {
			l.hint.Store(l.nextHint)
			l.nextHint = nil
		}
		if err := CheckRecord(p); err != nil {
			return nil, l.protocolError(err)
		}
		switch p[0] {
		case RecPing:
			l.bgMu.Lock()
			l.bgPong = true
			l.bgMu.Unlock()
			l.kick()
			continue
		case RecPong:
			continue
		case RecClose:
			c, _ := ParseClose(p)
			return nil, &ClosedError{Reason: c.Reason, Description: c.Description}
		case RecHello:
			if first {
				return p, nil
			}
			return nil, l.protocolError(fmt.Errorf("%w: HELLO after the session began", ErrRecord))
		}
		return p, nil
	}
}

// readPart reads the record being read into buf (at least MaxRecord
// bytes; the same buffer until the record is complete) and returns it,
// as ReadRecord does. The Conn's hint, if set, bounds the read (poll:
// past it the read stops with resume.ErrNoPacket, keeping what it read
// of the record for the next call; a TLS read cut by its connection's
// deadline goes on where it stopped), and may give the buffer a DATA
// record's body is read into (dst): then the record returned is its type
// byte followed by garbage, and used says so.
func (l *link) readPart(buf []byte) ([]byte, error) {
	h := l.hint.Load()
	var until int64
	var dst []byte
	if h != nil {
		until, dst = h.poll.Load(), h.dst
	}
	if l.kicked.Swap(false) {
		l.deadline = -1 // a kick moved it (Conn.kickRead)
	}
	if until != l.deadline {
		d := time.Time{}
		if until != 0 {
			d = time.Unix(0, until)
		}
		if err := l.raw.SetReadDeadline(d); err != nil {
			return nil, err
		}
		l.deadline = until
	}
	var err error
	for l.have < headerLen+l.want && err == nil {
		var k int
		switch body := l.have - headerLen; {
		case body < 0:
			k, err = l.tc.Read(l.hdr[l.have:])
		case body == 0 && dst != nil:
			k, err = l.tc.Read(buf[:1]) // the type: where the rest goes
		case l.direct:
			k, err = l.tc.Read(dst[body-1 : l.want-1])
		default:
			k, err = l.tc.Read(buf[body:l.want])
		}
		l.have += k
		switch {
		case l.have == headerLen && l.want == 0:
			if l.want, err = ParseHeader(l.hdr[:]); err != nil {
				return nil, err
			}
		case k > 0 && l.have == headerLen+1 && buf[0] == RecData && l.want > 1 && l.want-1 <= len(dst):
			l.direct = true
		}
	}
	if l.have == headerLen+l.want && l.want > 0 {
		p := buf[:l.want]
		if h != nil {
			h.used = l.direct
		}
		l.have, l.want, l.direct = 0, 0, false
		return p, nil
	}
	if l.direct {
		// The rest goes where a reader without dst finds it.
		copy(buf[1:], dst[:l.have-headerLen-1])
		l.direct = false
	}
	switch {
	case until != 0 && errors.Is(err, os.ErrDeadlineExceeded):
		return nil, fmt.Errorf("tlsresume: read stopped by the reader's poll: %w", resume.ErrNoPacket)
	case errors.Is(err, os.ErrDeadlineExceeded) && l.kicked.Load():
		// A kick meant for a Read's own read that ended just before:
		// this read has no bound, and goes on.
		return l.readPart(buf)
	case err == io.EOF && l.have > 0:
		err = io.ErrUnexpectedEOF
	}
	return nil, err
}

// readHint is what the reader of a Conn tells its links' reads
// (readPart): poll, a bound (UnixNano, 0 for none), and dst, where a DATA
// record's body may go. used reports whether the last record went there.
// dst and used belong to the holder of Conn.readMu.
type readHint struct {
	poll atomic.Int64
	dst  []byte
	used bool
}

// RetainPacket: records are read into one buffer; the session copies.
func (l *link) RetainPacket() interface{ Release() } { return nil }

// PacketsReceived counts records read (resume.PacketCounter). While the
// Conn's application does not read, nothing is read from the link, and
// the count is made to move: the liveness checks pause (the peer's
// PINGs wait in the socket, and the Conn keeps the peer's check
// satisfied with PONGs).
func (l *link) PacketsReceived() uint64 {
	n := l.packets.Load()
	if s := l.stalled.Load(); s != nil && s.Load() {
		n += uint64(time.Now().UnixNano())
	}
	return n
}

// pong sends an unsolicited PONG, a keepalive (in the background).
func (l *link) pong() {
	l.bgMu.Lock()
	l.bgPong = true
	l.bgMu.Unlock()
	l.kick()
}

// RemoteAddr is the peer's address on this connection.
func (l *link) RemoteAddr() net.Addr { return l.raw.RemoteAddr() }

// WritePacket writes record p.
func (l *link) WritePacket(p []byte) error {
	if len(p) == 0 || len(p) > MaxRecord {
		return fmt.Errorf("tlsresume: writing a record of %d bytes", len(p))
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	return l.writeLocked(p)
}

// writeLocked writes record p, under wmu.
func (l *link) writeLocked(p []byte) error {
	l.wbuf = AppendRecord(l.wbuf[:0], p)
	_, err := l.tc.Write(l.wbuf)
	return err
}

// SealFrame writes the record at frame[wire.FrameHeadroom:], its length in
// the headroom before it. A frame the Conn's writer marked (holder.frame:
// more of the same Write follow) may stay in the batch, unwritten, until
// batchFrames frames are there or the writer flushes it (Conn.flushHeld).
func (l *link) SealFrame(frame []byte) error {
	p := frame[wire.FrameHeadroom:]
	if len(p) == 0 || len(p) > MaxRecord {
		return fmt.Errorf("tlsresume: writing a record of %d bytes", len(p))
	}
	h := frame[wire.FrameHeadroom-headerLen : wire.FrameHeadroom]
	h[0], h[1], h[2], h[3] = byte(len(p)>>24), byte(len(p)>>16), byte(len(p)>>8), byte(len(p))
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.bc.batch()
	_, err := l.tc.Write(frame[wire.FrameHeadroom-headerLen:])
	l.batched++
	if err == nil && l.batched < batchFrames && l.holder.Load().hold(l, &frame[0]) {
		return nil
	}
	l.batched = 0
	return errors.Join(err, l.bc.flush())
}

// batchFrames is how many full DATA records a Write's batch collects
// before it goes out: 256 KiB of TLS records per system call, where plain
// crypto/tls makes one per TLS record of 16 KiB (issue 20: the sender's
// CPU per byte, and the receiver's wake-ups, one per write on loopback;
// scripts/bench-tlsresume.sh). Two records a call (64 KiB) made 2.5 times
// the sender's write(2) calls and cost it about 10% more CPU per byte.
const batchFrames = 8

// holder is how a Conn's Write lets its frames wait in a link's batch:
// frame is the frame being written that more frames of the same Write
// follow, and link the link whose batch holds frames since. Every hold
// sets link under mu, and the writer flushes it before it waits for
// anything and when its Write ends (Conn.flushHeld), so that nothing
// stays held once the writer is not about to write more.
type holder struct {
	mu    sync.Mutex
	frame *byte
	link  *link
}

// hold reports whether l may keep the frame at f in its batch, and if so
// records that l holds it.
func (h *holder) hold(l *link, f *byte) bool {
	if h == nil {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.frame != f {
		return false
	}
	h.frame = nil
	h.link = l
	return true
}

// flushHeld writes what SealFrame held in the batch.
func (l *link) flushHeld() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.batched = 0
	return l.bc.flush()
}

// batchConn is the connection under a link's TLS connection. While a
// frame is sealed (batch, then flush) it collects what TLS writes and
// makes it one write: a full DATA record is two TLS records, which were
// two system calls (issue 20's measurements of the resumable mode's CPU
// cost beside plain crypto/tls). Otherwise writes pass through. Its lock
// orders a write TLS makes on its own (an alert, a KeyUpdate's answer,
// from the reading goroutine) with the flush.
type batchConn struct {
	net.Conn
	mu       sync.Mutex
	batching bool
	// buf holds what the batch collected, in a buffer from batchBufs
	// (box) while it holds anything: an idle link keeps none.
	buf []byte
	box *[]byte
	// rc is the socket's, for flushNow (taken at its first use, with
	// rcTaken; nil where the connection is not a *net.TCPConn or
	// *net.UnixConn itself: netsim's has none, and a type of the
	// caller's that embeds one may count or pace its own Write, which a
	// write on the descriptor would bypass).
	rc      syscall.RawConn
	rcTaken bool
}

// maxBatch bounds what a batch collects: past it a write goes through
// after what was collected. batchFrames full DATA records (each two TLS
// records of 16 KiB and 22 bytes) and the ACKs and PONGs written
// meanwhile fit.
const maxBatch = 320 << 10

// batchBufs holds the buffers of batches under way, shared by the links.
var batchBufs = sync.Pool{New: func() any { b := make([]byte, 0, maxBatch); return &b }}

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.batching && len(b.buf)+len(p) <= maxBatch {
		if b.box == nil {
			b.box = batchBufs.Get().(*[]byte)
			b.buf = (*b.box)[:0]
		}
		b.buf = append(b.buf, p...)
		return len(p), nil
	}
	if err := b.flushLocked(); err != nil {
		return 0, err
	}
	return b.Conn.Write(p)
}

// batch starts a batch and reports whether one was under way (frames
// held in it: see holder).
func (b *batchConn) batch() (was bool) {
	b.mu.Lock()
	was, b.batching = b.batching, true
	b.mu.Unlock()
	return was
}

// held reports whether a batch is under way (frames a Write holds).
func (b *batchConn) held() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.batching
}

// flushNow ends a batch and writes what it holds as far as the socket
// takes it without waiting. done is false if some remains: it stays in
// the buffer, ahead of anything written next, for a flush or a write
// that may wait.
func (b *batchConn) flushNow() (done bool, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batching = false
	if len(b.buf) == 0 {
		return true, nil
	}
	if !b.rcTaken {
		b.rcTaken = true
		switch c := b.Conn.(type) {
		case *net.TCPConn:
			b.rc, _ = c.SyscallConn()
		case *net.UnixConn:
			b.rc, _ = c.SyscallConn()
		}
	}
	if b.rc == nil {
		return false, nil
	}
	n, err := writeNow(b.rc, b.buf)
	b.buf = b.buf[:copy(b.buf, b.buf[n:])]
	if err == errWouldBlock {
		return false, nil
	}
	if len(b.buf) == 0 {
		b.release()
		return true, err
	}
	return false, err
}

// release gives the emptied batch buffer back to batchBufs. Under mu.
func (b *batchConn) release() {
	if b.box != nil {
		*b.box = b.buf[:0]
		batchBufs.Put(b.box)
		b.box, b.buf = nil, nil
	}
}

// errWouldBlock: the socket takes no more now (writeNow).
var errWouldBlock = errors.New("tlsresume: the socket's buffer is full")

// flush writes what the batch collected and ends it.
func (b *batchConn) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batching = false
	return b.flushLocked()
}

func (b *batchConn) flushLocked() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.Conn.Write(b.buf)
	b.buf = b.buf[:0]
	b.release()
	return err
}

// WritePacketBackground writes an ACK now if that cannot wait: when no
// other write holds the link (wmu) and the socket takes the record
// without blocking, or frames a Write holds in the batch will take it out
// (writeAckNow). Otherwise it queues it for the writer goroutine (the
// newest replaces one not yet written: each acknowledges everything
// before it). The reading goroutine, which makes most ACKs, thus writes
// them itself, without waking another goroutine for each (issue 20), and
// never waits on a full connection.
func (l *link) WritePacketBackground(p []byte) error {
	if len(p) == 0 || p[0] != RecAck {
		return l.WritePacket(p)
	}
	select {
	case <-l.done:
		return net.ErrClosed
	default:
	}
	if l.wmu.TryLock() {
		done, err := l.writeAckNow(p)
		l.wmu.Unlock()
		if err != nil || done {
			return err
		}
		l.bgMu.Lock()
		l.bgFlush = true
		l.bgMu.Unlock()
		l.kick()
		return nil
	}
	l.bgMu.Lock()
	l.bgAck = append(l.bgAck[:0], p...)
	l.bgMu.Unlock()
	l.kick()
	return nil
}

// writeAckNow writes ACK p under wmu, without waiting: it supersedes an
// ACK queued for the writer (which takes it only under wmu, so an older
// ACK never follows a newer one), joins the frames held in the batch if a
// Write holds some (they leave when it flushes), or else goes out as far
// as the socket takes it now. done is false if some of it remains in bc.
func (l *link) writeAckNow(p []byte) (done bool, err error) {
	l.bgMu.Lock()
	l.bgAck = l.bgAck[:0]
	l.bgMu.Unlock()
	held := l.bc.batch()
	l.wbuf = AppendRecord(l.wbuf[:0], p)
	if _, err := l.tc.Write(l.wbuf); err != nil {
		if !held {
			l.bc.flushNow() // ends the batch; the link is lost anyway
		}
		return false, err
	}
	if held {
		return true, nil
	}
	return l.bc.flushNow()
}

func (l *link) kick() {
	l.bgStart.Do(func() { go l.writer() })
	select {
	case l.bgKick <- struct{}{}:
	default:
	}
}

// writer writes the queued ACK and PONG, and what an ACK written at once
// left in bc, until the link ends.
func (l *link) writer() {
	var ack []byte
	for {
		select {
		case <-l.done:
			return
		case <-l.bgKick:
		}
		l.wmu.Lock()
		l.bgMu.Lock()
		ack = append(ack[:0], l.bgAck...)
		l.bgAck = l.bgAck[:0]
		pong, flush := l.bgPong, l.bgFlush
		l.bgPong, l.bgFlush = false, false
		l.bgMu.Unlock()
		var err error
		if len(ack) > 0 {
			err = l.writeLocked(ack)
		}
		if err == nil && pong {
			err = l.writeLocked([]byte{RecPong})
		}
		if err == nil && flush && !l.bc.held() {
			err = l.bc.flush()
		}
		l.wmu.Unlock()
		if err != nil {
			// The reader finds the broken connection too.
			l.Abort()
			return
		}
	}
}

// ping sends PING (the supervisor's liveness probe).
func (l *link) ping() { l.WritePacket([]byte{RecPing}) }

func (l *link) finish() { l.doneOnce.Do(func() { close(l.done) }) }

// Abort drops the connection without CLOSE or close_notify: for the peer,
// a lost link.
func (l *link) Abort() error {
	l.finish()
	return l.raw.Close()
}

// Disconnect ends the session on this connection: CLOSE, then
// close_notify.
func (l *link) Disconnect(reason uint32, msg string) error {
	l.finish()
	l.raw.SetWriteDeadline(time.Now().Add(closeTimeout))
	err := l.WritePacket((&Close{Reason: reason, Description: msg}).Marshal())
	err = errors.Join(err, l.tc.Close())
	return err
}

// Close ends the session: CLOSE by application, or with reason 2 after a
// protocol error read here (section 8.3).
func (l *link) Close() error {
	if err := l.protoErr.Load(); err != nil {
		return l.Disconnect(ReasonProtocolError, (*err).Error())
	}
	return l.Disconnect(ReasonByApplication, "closed by application")
}

// ProtocolError is a malformed record, or one not valid where it came:
// it ends the session (the session then closes the link, which says
// CLOSE with reason 2), unless the link was only an attempt to resume,
// which is dropped without CLOSE.
type ProtocolError struct{ Err error }

func (e *ProtocolError) Error() string      { return e.Err.Error() }
func (e *ProtocolError) Unwrap() error      { return e.Err }
func (e *ProtocolError) SessionEnded() bool { return true }

func (l *link) protocolError(err error) error {
	l.protoErr.CompareAndSwap(nil, &err)
	return &ProtocolError{Err: err}
}

// SessionID is the connection's channel binding, which the resume
// exchange's MACs cover.
func (l *link) SessionID() []byte { return l.binding }

var (
	_ resume.Transport     = (*link)(nil)
	_ resume.PacketCounter = (*link)(nil)
)

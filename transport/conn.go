// Package transport implements the SSH transport layer (RFC 4253): the
// version exchange, the binary packet protocol with its ciphers and
// per-direction sequence numbers, key exchange and rekeying with OpenSSH's
// strict-kex rules, and EXT_INFO (RFC 8308).
//
// The transport knows no extension of the layers above by name. A layer
// that needs one describes it in Config.Extensions (the pseudo-algorithm
// names of the first KEXINITs and the local-extension message numbers,
// 192-255, it owns); the transport negotiates it (Conn.Negotiated), passes
// its messages up through ReadPacket, and exports keying material from
// the first key exchange for it (Conn.ExportKey, RFC 4253's key derivation
// with a label for the key letter). The session resumption extension of
// package resume is configured this way by the module root.
//
// The protocol itself is an Engine, which does no I/O: bytes go in with
// Input, messages come out of Next, and what it must send (key exchange,
// replies, sealed messages) waits in Output. A test or fuzzer drives two
// of them against each other with no goroutine and no socket.
//
// A Conn is a loop over that machinery on a net.Conn, driven by its
// callers: whoever calls ReadPacket feeds the engine from the socket and
// so drives key exchanges (there is no hidden goroutine for reading), and
// WritePacket seals into the engine's output, so that packets from
// several goroutines coalesce into few system calls: a writer goroutine
// sends channel data, and a writer of another message that finds no
// write under way sends what is sealed at that moment, its own message
// with it, and leaves the rest to the writer goroutine (the goroutine
// that reads, replying, is then never kept writing a bulk stream).
package transport

import (
	"bytes"
	"context"
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
	"github.com/rsftp/rsftp/kex"
)

// Bounds on what may wait in memory.
const (
	// maxWriteBuffer is how many sealed bytes may wait for the socket
	// before channel data writers block.
	maxWriteBuffer = 1 << 20
	// maxQueuedDuringKex bounds the control messages queued while our key
	// exchange is in flight; a peer that makes us exceed it (by flooding
	// requests while stalling the kex) is disconnected.
	maxQueuedDuringKex = 1 << 20
	// queuedOverhead is what one queued message costs in memory besides
	// its payload (its slice header in queued, allocation rounding), and
	// counts towards maxQueuedDuringKex: otherwise a flood of 1-byte
	// replies would hold some 32 times the bound.
	queuedOverhead = 64
	// maxControlBuffer is how many sealed bytes may wait for the socket
	// before writers of other messages block too. Those are mostly
	// replies the reading goroutine sends on the peer's behalf
	// (UNIMPLEMENTED, request failures, channel request replies): a peer
	// that floods requests and never reads its replies (the class of
	// OpenSSH's CVE-2025-26466, PING answered by queued PONGs) then stops
	// being read instead of growing our buffer. Larger than
	// maxWriteBuffer so that data never starves control messages.
	maxControlBuffer = 4 << 20
)

// ErrClosed is returned by operations on a closed Conn.
var ErrClosed = errors.New("transport: connection closed")

// Conn is an SSH transport connection after the version exchange and the
// first key exchange. ReadPacket and WritePacket carry every message
// above the transport layer (service requests, authentication, channels).
type Conn struct {
	// engine is the protocol: its read half belongs to the goroutine
	// inside ReadPacket, the rest is guarded by mu (engine.locker).
	engine
	nc net.Conn
	// rd is what the reader reads: nc, or where the system allows it a
	// read of nc's descriptor that does not enter a system call in the
	// runtime's sense (rawio_linux.go).
	rd io.Reader

	// inSeq, inTotal and inBytes mirror the reader's counters so that
	// Seq may be called from any goroutine.
	inSeq            atomic.Uint32
	inTotal, inBytes atomic.Uint64

	mu   sync.Mutex
	cond *sync.Cond // signalled when kexOut clears, the buffer drains, or the conn fails
	// spare is the other buffer of the pair with the engine's wbuf,
	// written by the flusher while writers fill wbuf.
	spare    []byte
	flushing bool
	// wcond wakes writeLoop, which writes channel data in the background
	// so that the next packets are sealed while the system call runs.
	wcond *sync.Cond
	// rw is the socket's descriptor for writeNow (nil when nc has
	// none: rawConn), and flushed when the last write to it ended: a
	// background write that finds the buffer empty long after that is
	// written from its caller's goroutine (writeInlineLocked).
	rw      syscall.RawConn
	flushed time.Time
	// inlined and inlinedShort count the inline writes, and those the
	// socket took only part of (tests).
	inlined, inlinedShort int
	kexTimer              *time.Timer
	closed                bool
}

// inlineAfter is how long the connection must have gone unwritten for a
// background write that finds nothing else sealed to be written by its
// caller at once (one non-blocking system call) instead of by writeLoop.
// A writer that produces continuously (rsftp put's, a -L forward's) seals
// its next packet within a few microseconds of the last write's end and
// keeps writeLoop, which overlaps the two; one that waits for its data
// between packets (a program's output read from a terminal, 50-500 µs a
// 32 KiB packet here) would otherwise pay for a wake-up of writeLoop on
// another thread per packet.
const inlineAfter = 50 * time.Microsecond

// errWouldBlock: the socket takes no more now (writeNow).
var errWouldBlock = errors.New("transport: the socket's buffer is full")

// NewClientConn runs the version exchange and first key exchange as a
// client over nc. ctx bounds the handshake.
func NewClientConn(ctx context.Context, nc net.Conn, cfg *Config) (*Conn, error) {
	// Keys slow to make (sntrup761) are made on another goroutine while
	// the versions and KEXINITs cross (not in the Engine, which starts
	// no goroutine of its own).
	kex.Prepare(cfg.kexAlgorithms())
	return handshake(ctx, nc, cfg, true)
}

// NewServerConn runs the version exchange and first key exchange as a
// server over nc. ctx bounds the handshake.
func NewServerConn(ctx context.Context, nc net.Conn, cfg *Config) (*Conn, error) {
	if len(cfg.HostKeys) == 0 {
		return nil, errors.New("transport: server config has no host keys")
	}
	return handshake(ctx, nc, cfg, false)
}

func handshake(ctx context.Context, nc net.Conn, cfg *Config, isClient bool) (*Conn, error) {
	c := &Conn{nc: nc, rd: nc}
	if c.rw = rawConn(nc); c.rw != nil {
		if r := rawReader(nc, c.rw); r != nil {
			c.rd = r
		}
	}
	if err := c.init(cfg, isClient); err != nil {
		return nil, err
	}
	c.cond = sync.NewCond(&c.mu)
	c.locker = &c.mu
	c.onKexStart = c.armKexTimer
	c.onKexEnd = func() {
		if c.kexTimer != nil {
			c.kexTimer.Stop()
			c.kexTimer = nil
		}
		c.cond.Broadcast()
	}

	// Make ctx interrupt blocking reads and writes during the handshake.
	stop := context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	fail := func(err error) (*Conn, error) {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		nc.Close()
		return nil, err
	}

	// Our version line and first KEXINIT (engine.start).
	if err := c.start(); err != nil {
		return fail(err)
	}
	c.mu.Lock()
	err := c.flushLocked()
	c.mu.Unlock()
	if err != nil {
		return fail(fmt.Errorf("transport: sending version: %w", err))
	}
	for !c.rk.firstDone {
		p, err := c.readOne()
		if err != nil {
			return fail(err)
		}
		if p != nil {
			c.sendDisconnect(wire.DisconnectProtocolError, "unexpected message during the first key exchange")
			return fail(fmt.Errorf("transport: peer sent message %d before the first key exchange completed", p[0]))
		}
	}
	if !stop() {
		return fail(ctx.Err())
	}
	c.wcond = sync.NewCond(&c.mu)
	go c.writeLoop()
	return c, nil
}

// armKexTimer fails the connection if the key exchange that kexInit
// started has not completed within Config.KexTimeout.
func (c *Conn) armKexTimer(kexInit []byte) {
	d := c.cfg.kexTimeout()
	c.kexTimer = time.AfterFunc(d, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.kexOut && bytes.Equal(c.ourKexInit, kexInit) {
			c.failLocked(fmt.Errorf("transport: key exchange did not complete within %v", d))
		}
	})
}

// writeLoop writes what data writers sealed (WritePacket returns before
// channel data reaches the socket) until the connection fails. Other
// messages are still flushed by their writer, or picked up here when a
// write is under way.
//
// Measured on 2 cores: rsftp put over loopback gained 17-19% with it
// (client and server in two processes), get was unchanged, and
// BenchmarkConnThroughput (both ends in one process, three busy
// goroutines on two cores) lost about 20%.
func (c *Conn) writeLoop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.werr == nil {
		if len(c.wbuf) == 0 || c.flushing {
			c.wcond.Wait()
			continue
		}
		c.flushLocked()
	}
}

// Sequence numbers are visible for tests and for the resume layer.
type SeqState struct {
	// In and Out are the sequence numbers of the next packet.
	In, Out uint32
	// InTotal and OutTotal count packets since the connection began.
	InTotal, OutTotal uint64
	// InBytes and OutBytes count wire bytes since the last key exchange.
	InBytes, OutBytes uint64
}

// PacketsReceived counts every packet received, the transport's own
// (PONG, IGNORE, key exchange) included: what a liveness watchdog
// (resume.Watchdog) reads.
func (c *Conn) PacketsReceived() uint64 { return c.inTotal.Load() }

// Seq reports the sequence numbers and counters. The In half is as of
// the last packet ReadPacket processed.
func (c *Conn) Seq() SeqState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return SeqState{In: c.inSeq.Load(), Out: c.out.seq, InTotal: c.inTotal.Load(), OutTotal: c.out.total,
		InBytes: c.inBytes.Load(), OutBytes: c.out.bytes}
}

// LocalAddr and RemoteAddr are those of the underlying connection.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// RemoteAddr is the peer's address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// ReadPacket returns the next message above the transport layer. The
// slice is valid until the next call. Transport messages (key exchange,
// IGNORE, DEBUG, EXT_INFO, PING) are handled inside; callers must keep
// calling ReadPacket for key exchanges to progress.
func (c *Conn) ReadPacket() ([]byte, error) {
	for {
		p, err := c.readOne()
		if err != nil {
			return nil, err
		}
		if p != nil {
			return p, nil
		}
	}
}

// RetainPacket keeps the payload ReadPacket last returned valid, and
// unchanged, until the result is released, instead of only until the next
// ReadPacket: the channel layer queues data where it was decrypted. It
// returns nil when retained payloads already hold as much of the input as
// allowed; the caller then copies. Like ReadPacket it belongs to the
// reading goroutine, and must come before the next ReadPacket.
func (c *Conn) RetainPacket() interface{ Release() } {
	if sl := c.in.retain(); sl != nil {
		return sl
	}
	return nil // not a nil *slab in an interface
}

// readOne reads one packet and handles it if it belongs to the transport
// (returning nil, nil), or returns it.
func (c *Conn) readOne() ([]byte, error) {
	if c.readErr != nil {
		return nil, c.readErr
	}
	for {
		p, err := c.engine.readOne()
		if err == errNeedMore {
			if err = c.fillInput(); err == nil {
				continue
			}
		} else {
			c.inSeq.Store(c.in.seq)
			c.inTotal.Store(c.in.total)
			c.inBytes.Store(c.in.bytes)
			if err == nil && c.replied {
				// What the engine sealed in reply goes out now.
				c.replied = false
				err = c.flushReplies()
			}
		}
		if err != nil {
			c.readFailed(err)
			return nil, c.readErr
		}
		return p, nil
	}
}

// readFailed ends the connection after a fatal error of the reading
// side, after sending the DISCONNECT the engine sealed for it, if any.
func (c *Conn) readFailed(err error) {
	c.mu.Lock()
	if c.closed && c.decodeErr {
		// closeGracefully drains the socket beside us: what we got may
		// be torn.
		err = ErrClosed
	}
	if c.disconnectSent && c.werr == nil {
		// Data sealed before goes first (writeLoop may still be writing
		// it); the deadline bounds the wait for a peer that does not
		// read.
		c.nc.SetWriteDeadline(time.Now().Add(time.Second))
		for c.werr == nil && (c.flushing || len(c.wbuf) > 0) {
			if !c.flushing {
				c.flushLocked()
				continue
			}
			c.cond.Wait()
		}
	}
	c.failLocked(err)
	c.mu.Unlock()
	c.readErr = err
	c.in.close() // no read follows: readErr answers them
}

// flushReplies sends what the engine sealed on the peer's behalf (key
// exchange messages, PONG, UNIMPLEMENTED) at once. A peer that floods
// requests and never reads the replies (the class of OpenSSH's
// CVE-2025-26466) then stops being read while maxControlBuffer bytes wait
// for it, instead of growing the buffer.
func (c *Conn) flushReplies() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.flushNow {
		return nil
	}
	err := c.flushLocked()
	for err == nil && len(c.wbuf) >= maxControlBuffer {
		if !c.flushing {
			err = c.flushLocked()
			continue
		}
		c.cond.Wait()
		err = c.werr
	}
	return err
}

// fillInput reads from the socket into the engine's input buffer.
func (c *Conn) fillInput() error {
	err := c.in.fill(c.rd)
	if err == nil {
		return nil
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	switch {
	case closed:
		return ErrClosed
	case c.versionDone && errors.Is(err, io.ErrUnexpectedEOF):
		// inbound.fill's own "connection closed in the middle of a
		// packet", which says it all.
		return err
	case c.versionDone:
		return fmt.Errorf("transport: reading: %w", err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("transport: connection closed in the middle of the version line: %w", io.ErrUnexpectedEOF)
	case errors.Is(err, io.EOF):
		return fmt.Errorf("transport: connection closed before the version exchange: %w", io.EOF)
	}
	return fmt.Errorf("transport: reading version: %w", err)
}

// WritePacket sends one message. p is not retained. Channel data waits
// while a key exchange is in flight and while the write buffer holds
// maxWriteBuffer bytes; other messages are queued (boundedly) during a
// key exchange, so that the goroutine reading packets never blocks on
// its own key exchange, and wait only when maxControlBuffer bytes are
// waiting for a peer that does not read.
//
// Channel data is sealed here and written by the connection's writer
// goroutine, so that the caller seals the next packet while the system
// call runs, unless the connection has been idle for inlineAfter: then
// the caller writes it with one system call that does not wait, and
// leaves what the socket does not take to the writer goroutine. An error
// writing it is returned by a later call (and the reader fails). Other
// messages are written before WritePacket returns,
// unless a write already under way takes them along. Close sends what was
// sealed before its DISCONNECT.
func (c *Conn) WritePacket(p []byte) error { return c.writePacket(p, false) }

// WritePacketBackground is WritePacket for a message that, like channel
// data, may leave through the connection's writer goroutine after the call
// returns (the resume layer's ACKs, written by the goroutine that reads).
func (c *Conn) WritePacketBackground(p []byte) error { return c.writePacket(p, true) }

// SealFrame sends the message at frame[wire.FrameHeadroom:], which has
// wire.FrameTailroom bytes of spare capacity after it: the packet is
// sealed from frame into the connection's output in one pass, without
// first copying the message into a frame of its own. SealFrame does not
// keep frame: it is the caller's again when SealFrame returns (the resume
// layer resends the frames it retains this way). Its headroom and spare
// capacity are scratch, overwritten; the message is left as it was. Like
// channel data, the packet may leave through the writer goroutine after
// the call returns.
func (c *Conn) SealFrame(frame []byte) error {
	if len(frame) < wire.FrameHeadroom {
		return errors.New("transport: framed packet without its headroom")
	}
	return c.write(frame[wire.FrameHeadroom:], frame, true)
}

// PacketBuffer returns a buffer to append a message of up to n bytes to
// and hand over with WriteFrame: its length is wire.FrameHeadroom, and
// its capacity leaves wire.FrameTailroom bytes after the message. Buffers
// come from a pool that WriteFrame refills (channel.PacketConn).
func (c *Conn) PacketBuffer(n int) []byte { return getFrame(n) }

// WriteFrame sends the message appended to buf, a buffer from
// PacketBuffer, as SealFrame does, and takes buf: the caller must not
// touch it afterwards (it goes back to the pool once sealed). This is
// channel.PacketConn's frame write, for a multiplexer running directly
// on the connection.
func (c *Conn) WriteFrame(buf []byte) error {
	err := c.SealFrame(buf)
	putFrame(buf)
	return err
}

// Frame buffers of PacketBuffer, pooled by size class: a class holds
// frames of framePoolBase<<i bytes plus slack, which covers the channel
// layer's data packets (32 KiB by default, at most 256 KiB) with their
// header and the frame's head and tail room. They live from PacketBuffer
// to WriteFrame only, so one class per size wastes little. A larger frame
// is allocated and left to the collector.
const (
	framePoolBase  = 32 << 10
	framePoolSlack = 128
)

var framePools [4]sync.Pool

func frameClass(need int) int {
	for i := range framePools {
		if need <= framePoolBase<<i+framePoolSlack {
			return i
		}
	}
	return -1
}

func getFrame(n int) []byte {
	need := wire.FrameHeadroom + max(n, 0) + wire.FrameTailroom
	i := frameClass(need)
	if i < 0 {
		return make([]byte, wire.FrameHeadroom, need)
	}
	if b, ok := framePools[i].Get().(*[]byte); ok {
		return (*b)[:wire.FrameHeadroom]
	}
	return make([]byte, wire.FrameHeadroom, framePoolBase<<i+framePoolSlack)
}

// putFrame gives a frame of a pooled size back to its pool.
func putFrame(b []byte) {
	for i := range framePools {
		if cap(b) == framePoolBase<<i+framePoolSlack {
			b = b[:0]
			framePools[i].Put(&b)
			return
		}
	}
}

func (c *Conn) writePacket(p []byte, background bool) error { return c.write(p, nil, background) }

// write sends payload p; frame, if not nil, is the buffer p lies in at
// wire.FrameHeadroom.
func (c *Conn) write(p, frame []byte, background bool) error {
	if err := checkPayload(p); err != nil {
		return err
	}
	isData := p[0] == wire.MsgChannelData || p[0] == wire.MsgChannelExtendedData
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		if c.werr != nil {
			return c.werr
		}
		if isData {
			if !c.kexOut && len(c.wbuf) < maxWriteBuffer {
				break
			}
		} else if c.kexOut || len(c.wbuf) < maxControlBuffer {
			// During a kex they are queued, under their own bound.
			break
		}
		c.cond.Wait()
	}
	if c.kexOut {
		if err := c.queueLocked(p); err != nil {
			c.failLocked(err)
			return err
		}
		return nil
	}
	alone := len(c.wbuf) == 0
	if frame != nil {
		c.sealFramedLocked(p, frame)
	} else {
		c.sealLocked(p)
	}
	var err error
	if (isData || background) && c.wcond != nil {
		switch {
		case c.flushing:
			// The write under way, or writeLoop after it, takes it.
		case alone && c.rw != nil && time.Since(c.flushed) >= inlineAfter:
			c.writeInlineLocked()
		default:
			// writeLoop sends it while the caller seals the next one.
			c.wcond.Signal()
		}
	} else {
		err = c.flushLocked()
	}
	c.maybeRekeyLocked()
	return err
}

// flushLocked writes out the buffer unless another goroutine is already
// doing so; that one will pick up what we added. c.mu is held on entry
// and exit but released around the system call.
//
// Once writeLoop runs, a call makes one pass: it writes what the buffer
// held when it began (the caller's own message with it) and leaves what
// was sealed meanwhile to writeLoop. Looping until the buffer is empty
// would keep the caller writing as long as data writers refill it: the
// goroutine that reads, flushing a reply (a key exchange message, a
// window adjustment), then stopped reading for the rest of a bulk
// transfer, so that the peer's next KEXINIT or NEWKEYS waited for the
// whole stream (TestReaderNotCapturedByFlush), and two such peers could
// each block writing to the other.
func (c *Conn) flushLocked() error {
	c.flushNow = false
	if c.flushing {
		return nil
	}
	c.flushing = true
	for pass := 0; len(c.wbuf) > 0 && c.werr == nil; pass++ {
		if pass > 0 && c.wcond != nil {
			c.wcond.Signal()
			break
		}
		buf := c.wbuf
		c.wbuf = c.spare[:0]
		// Writers waiting for room have it now: they seal the next
		// packets while this write runs, as writeLoop is there for
		// (what is held stays within this write and one full buffer).
		c.cond.Broadcast()
		c.mu.Unlock()
		_, err := c.nc.Write(buf)
		c.mu.Lock()
		if c.werr == nil {
			c.spare = buf[:0]
		}
		if err != nil {
			if c.closed {
				err = ErrClosed
			} else {
				err = fmt.Errorf("transport: writing: %w", err)
			}
			c.failLocked(err)
		}
		c.cond.Broadcast()
	}
	c.flushing = false
	c.flushed = time.Now()
	return c.werr
}

// writeInlineLocked writes the buffer from the caller's goroutine with
// one non-blocking system call (writeNow), so that a sporadic writer
// does not wake writeLoop on another thread for each packet: that
// hand-off, not the bytes, bounded a terminal's output through rsftp
// serve (issue 18: the server's futex calls per 128 MiB of it fell from
// 9,300-9,800 to 700-1,900). It never waits for the socket, so any
// goroutine may call it, the reader sending its ACKs included
// (TestReaderNotCapturedByFlush): what the socket does not take now goes
// back in front of the buffer, for writeLoop. c.mu is held on entry and
// exit but released around the system call; no flush is under way.
func (c *Conn) writeInlineLocked() {
	c.flushing = true
	buf := c.wbuf
	c.wbuf = c.spare[:0]
	c.mu.Unlock()
	n, err := writeNow(c.rw, buf)
	c.mu.Lock()
	c.flushing = false
	c.flushed = time.Now()
	c.inlined++
	if err == errWouldBlock {
		c.inlinedShort++
	}
	switch {
	case c.werr != nil:
		// Failed meanwhile: nothing more is written.
	case err == nil:
		c.spare = buf[:0]
	case err == errWouldBlock:
		// The rest goes first, then what was sealed meanwhile.
		rest := append(buf[:0], buf[n:]...)
		c.spare = c.wbuf[:0]
		c.wbuf = append(rest, c.wbuf...)
	default:
		if c.closed {
			err = ErrClosed
		} else {
			// As nc's Write would have said it.
			err = fmt.Errorf("transport: writing: %w", &net.OpError{Op: "write", Net: c.nc.LocalAddr().Network(),
				Source: c.nc.LocalAddr(), Addr: c.nc.RemoteAddr(), Err: os.NewSyscallError("write", err)})
		}
		c.failLocked(err)
	}
	if len(c.wbuf) > 0 && c.werr == nil {
		c.wcond.Signal()
	}
	c.cond.Broadcast()
}

// maybeRekeyLocked starts a key exchange when our policy says so.
func (c *Conn) maybeRekeyLocked() {
	if err := c.engine.maybeRekeyLocked(); err != nil {
		c.failLocked(err)
		return
	}
	if c.flushNow {
		c.flushLocked()
	}
}

// Rekey starts a key exchange now unless one is already in flight. It
// does not wait for it to finish.
func (c *Conn) Rekey() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.werr != nil {
		return c.werr
	}
	if c.kexOut {
		return nil
	}
	if err := c.startKexLocked(false); err != nil {
		return err
	}
	return c.flushLocked()
}

func (c *Conn) failLocked(err error) {
	c.stopLocked(err)
	if !c.flushing {
		// Nothing will be written any more: let the buffers go (a
		// failed connection may stay referenced for long).
		c.wbuf, c.spare = nil, nil
		c.nc.Close()
	} else {
		// The flusher is inside Write; closing unblocks it.
		go c.nc.Close()
	}
}

// stopLocked makes err the connection's error (unless it has one) and
// wakes everything waiting on it, without closing the socket.
func (c *Conn) stopLocked(err error) {
	if c.werr == nil {
		c.werr = err
	}
	if c.kexTimer != nil {
		c.kexTimer.Stop()
	}
	c.cond.Broadcast()
	if c.wcond != nil {
		c.wcond.Broadcast()
	}
}

// sendDisconnect makes a best effort to tell the peer why we are leaving.
func (c *Conn) sendDisconnect(reason uint32, msg string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.werr != nil {
		return
	}
	// Data sealed before goes first (writeLoop may still be writing
	// it); the deadline bounds the wait for a peer that does not read.
	c.nc.SetWriteDeadline(time.Now().Add(time.Second))
	for c.werr == nil && (c.flushing || len(c.wbuf) > 0) {
		if !c.flushing {
			c.flushLocked()
			continue
		}
		c.cond.Wait()
	}
	if c.werr != nil {
		return
	}
	c.sealLocked(marshalDisconnect(reason, msg))
	c.flushLocked()
}

// Disconnect sends DISCONNECT with reason and message and closes.
func (c *Conn) Disconnect(reason uint32, msg string) error {
	c.sendDisconnect(reason, msg)
	c.closeGracefully(&DisconnectError{Reason: reason, Message: msg})
	return nil
}

// Close sends DISCONNECT (by application) and closes the connection.
func (c *Conn) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	c.sendDisconnect(wire.DisconnectByApplication, "closed")
	c.closeGracefully(ErrClosed)
	return nil
}

// Bounds of closeGracefully's wait for the peer's end of the stream.
const (
	lingerTimeout  = 300 * time.Millisecond
	lingerMaxBytes = 1 << 20
)

// closeGracefully closes after sendDisconnect. If that got everything out,
// it first ends our half of the TCP stream and waits, for lingerTimeout at
// most, until the peer has acknowledged all of it. A socket closed with
// unread input (a late ACK or window adjustment of the peer's) sends RST,
// and the RST discards what our kernel has not sent yet: the tail of our
// data, or our DISCONNECT, and a resuming peer would then hold the session
// as if the link had died. Where the kernel cannot say what is
// unacknowledged, it reads (and drops) what the peer sends until the
// peer's end of the stream, lingerTimeout or lingerMaxBytes. Reads that
// run meanwhile in ReadPacket end in ErrClosed.
func (c *Conn) closeGracefully(err error) {
	c.mu.Lock()
	c.closed = true
	cw, halfClose := c.nc.(interface{ CloseWrite() error })
	if c.werr != nil || c.flushing || len(c.wbuf) > 0 || !halfClose {
		c.failLocked(err)
		c.mu.Unlock()
		return
	}
	// Writers fail from now on, but the socket stays open for linger.
	c.stopLocked(err)
	c.mu.Unlock()
	if cw.CloseWrite() == nil {
		c.linger()
	}
	c.nc.Close()
}

func (c *Conn) linger() {
	deadline := time.Now().Add(lingerTimeout)
	if _, ok := unacked(c.nc); !ok {
		c.nc.SetReadDeadline(deadline)
		io.Copy(io.Discard, io.LimitReader(c.nc, lingerMaxBytes))
		return
	}
	for wait := 500 * time.Microsecond; time.Now().Before(deadline); wait = min(2*wait, 10*time.Millisecond) {
		if n, ok := unacked(c.nc); !ok || n == 0 {
			return
		}
		time.Sleep(wait)
	}
}

// Abort closes the connection without DISCONNECT: the peer sees a lost
// connection, not the end of the session (the resume layer detaches this
// way).
func (c *Conn) Abort() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	c.failLocked(ErrClosed)
	return nil
}

// SendPing sends ping@openssh.com with data if the peer offered it.
func (c *Conn) SendPing(data []byte) error {
	if _, ok := c.ExtInfo("ping@openssh.com"); !ok {
		return errors.New("transport: peer does not support ping@openssh.com")
	}
	return c.WritePacket(marshalPing(wire.MsgPing, data))
}

func splitNames(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}

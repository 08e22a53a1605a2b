package transport

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/rsftp/rsftp/internal/wire"
)

// direction is the state of one direction of the binary packet protocol:
// its cipher, its sequence number, and what has crossed it since the last
// key exchange. It is the analogue of crypto/tls's halfConn.
type direction struct {
	cipher packetCipher
	// seq is the sequence number of the next packet. It wraps at 2^32 and,
	// under strict kex, is reset to zero by every NEWKEYS.
	seq uint32
	// bytes and packets count traffic since the last NEWKEYS of this
	// direction; they drive our rekeying policy.
	bytes   uint64
	packets uint64
	// total counts every packet since the connection began.
	total uint64
}

// changeCipher installs the keys of a completed key exchange.
func (d *direction) changeCipher(c packetCipher, strict bool) {
	d.cipher = c
	d.bytes, d.packets = 0, 0
	if strict {
		d.seq = 0
	}
}

// inbound decodes packets from a byte stream without doing I/O itself:
// bytes go in with space/commit, payloads come out of next. The payload
// next returns aliases the buffer and stays valid until the next call,
// or, if retained, until released.
type inbound struct {
	direction
	slab       *slab // the input buffer, slab.buf ("buf" below)
	start, end int   // unconsumed bytes are buf[start:end]
	need       int   // total bytes of the packet at buf[start:], once its length is known
	// retained says a payload in buf outlives next: nothing in buf may
	// move or be overwritten, and the next packet that does not fit
	// after the others starts a new slab.
	retained bool
	// held counts the slabs left behind that retained payloads still
	// hold. Past maxHeldSlabs retain refuses, and the channel layer
	// copies: a peer that interleaves a few packets nobody reads with a
	// stream that is read would otherwise hold a slab per unread packet.
	held atomic.Int32
}

// maxHeldSlabs bounds what retained payloads may hold of one connection's
// input: about 27 MiB, room for a 16 MiB window's worth of data in 32 KiB
// packets, and more.
const maxHeldSlabs = 96

func newInbound() *inbound {
	sl := newSlab()
	return &inbound{direction: direction{cipher: newNoneCipher()}, slab: sl}
}

// slabSize is an inbound buffer's: room for one maximal packet plus its
// tag, and then some so that one read can fetch several small packets.
const slabSize = maxPacketLength + 4 + 64 + 32*1024

// A slab is an inbound buffer with a count of its holders: the inbound
// while reading into it, and each payload in it retained (retain). The
// last to release it returns it to the pool.
type slab struct {
	buf  []byte
	refs atomic.Int32
	// held is the count of the inbound that left the slab behind while
	// payloads still held it; nil while it is the inbound's own.
	held *atomic.Int32
}

var slabPool = sync.Pool{New: func() any { return &slab{buf: make([]byte, slabSize)} }}

func newSlab() *slab {
	sl := slabPool.Get().(*slab)
	sl.refs.Store(1)
	return sl
}

// Release drops one hold on the slab.
func (sl *slab) Release() {
	switch n := sl.refs.Add(-1); {
	case n == 0:
		if sl.held != nil {
			sl.held.Add(-1)
			sl.held = nil
		}
		slabPool.Put(sl)
	case n < 0:
		panic("transport: inbound buffer released once too often")
	}
}

// retain keeps the payload next last returned valid, and unchanged, until
// the result is released. It returns nil, retaining nothing, when
// retained payloads already hold maxHeldSlabs slabs left behind.
func (in *inbound) retain() *slab {
	if in.held.Load() >= maxHeldSlabs {
		return nil
	}
	in.slab.refs.Add(1)
	in.retained = true
	return in.slab
}

// close gives up the inbound buffer once the connection has failed (the
// reading goroutine's last act): a connection that stays referenced (a
// detached session's first connection is, for its hold time) must not
// keep a slab. Payloads still retained keep their own holds.
func (in *inbound) close() {
	if in.slab != nil {
		in.slab.Release()
		in.slab = nil
	}
}

// errNeedMore says the buffer does not yet hold a whole packet.
var errNeedMore = errors.New("transport: need more input")

// space returns the free part of the buffer to read into, compacting
// first if the current packet would not otherwise fit.
func (in *inbound) space() []byte {
	if in.retained {
		if in.end < len(in.slab.buf) && (in.need == 0 || in.start+in.need <= len(in.slab.buf)) {
			return in.slab.buf[in.end:]
		}
		// Go on in a fresh slab, taking the partial packet along.
		sl := newSlab()
		n := copy(sl.buf, in.slab.buf[in.start:in.end])
		old := in.slab
		old.held = &in.held
		in.held.Add(1)
		old.Release() // the last hold, if every payload is gone already
		in.slab, in.start, in.end, in.retained = sl, 0, n, false
		return in.slab.buf[in.end:]
	}
	if in.start == in.end {
		in.start, in.end = 0, 0
	} else if len(in.slab.buf)-in.start < maxPacketLength+4+64 {
		n := copy(in.slab.buf, in.slab.buf[in.start:in.end])
		in.start, in.end = 0, n
	}
	return in.slab.buf[in.end:]
}

// commit records that n bytes were read into space().
func (in *inbound) commit(n int) { in.end += n }

// next decodes the next packet from the buffer. It returns errNeedMore if
// the packet is not complete yet; any other error is fatal for the
// connection (a MAC failure, a bad length).
func (in *inbound) next() ([]byte, error) {
	avail := in.end - in.start
	if in.need == 0 {
		lb := in.cipher.lengthBytes()
		if avail < lb {
			return nil, errNeedMore
		}
		rest, err := in.cipher.packetLength(in.seq, in.slab.buf[in.start:in.start+lb])
		if err != nil {
			return nil, err
		}
		in.need = lb + rest
	}
	if avail < in.need {
		return nil, errNeedMore
	}
	pkt := in.slab.buf[in.start : in.start+in.need]
	payload, err := in.cipher.openPacket(in.seq, pkt)
	if err != nil {
		return nil, err
	}
	in.start += in.need
	in.bytes += uint64(in.need)
	in.need = 0
	in.seq++
	in.packets++
	in.total++
	return payload, nil
}

// atLeastReader is a reader that can wait until at least min bytes have
// come (channel.Channel.ReadAtLeast): a connection over a channel, such
// as rsftp's inner connection through sshd, then wakes once per packet
// of its own instead of once per packet of the channel's.
type atLeastReader interface {
	ReadAtLeast(p []byte, min int) (int, error)
}

// fill reads at least once from r into the buffer. Where the packet's
// length is known and r is an atLeastReader, it asks for the rest of the
// packet at least.
func (in *inbound) fill(r io.Reader) error {
	sp := in.space()
	var n int
	var err error
	if ar, ok := r.(atLeastReader); ok && in.need > in.end-in.start {
		n, err = ar.ReadAtLeast(sp, min(in.need-(in.end-in.start), len(sp)))
		if n == 0 && err == nil {
			// Its data ended or its deadline passed before: Read says
			// which.
			n, err = r.Read(sp)
		}
	} else {
		n, err = r.Read(sp)
	}
	in.commit(n)
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	if errors.Is(err, io.EOF) && in.end > in.start {
		return fmt.Errorf("transport: connection closed in the middle of a packet: %w", io.ErrUnexpectedEOF)
	}
	return err
}

// outbound seals packets into a write buffer.
type outbound struct {
	direction
}

// seal appends the wire form of payload to dst and advances the sequence
// number.
func (out *outbound) seal(dst, payload []byte) []byte {
	n := len(dst)
	dst = out.cipher.appendPacket(dst, out.seq, payload)
	return out.advance(dst, n)
}

// sealFramed is seal for a payload at frame[wire.FrameHeadroom:], framed
// and sealed from there in one pass where the cipher can (framedSealer).
func (out *outbound) sealFramed(dst, frame []byte) []byte {
	n := len(dst)
	if fs, ok := out.cipher.(framedSealer); ok {
		if d, ok := fs.appendFramed(dst, out.seq, frame); ok {
			return out.advance(d, n)
		}
	}
	dst = out.cipher.appendPacket(dst, out.seq, frame[wire.FrameHeadroom:])
	return out.advance(dst, n)
}

func (out *outbound) advance(dst []byte, n int) []byte {
	out.seq++
	out.packets++
	out.total++
	out.bytes += uint64(len(dst) - n)
	return dst
}

package sftp

// Uploads spread over several SFTP sessions of one connection (issue 17).
// A channel moves at most its window per round trip, and a server may
// grant little: OpenSSH's sshd gives each session 2 MiB, so one SFTP
// session uploads at most 2 MiB per round trip (20 MB/s at 100 ms). With
// WithStreams, a large upload opens the same file on up to
// TransferOptions.Streams sessions of the connection and writes byte
// ranges of it in place from each: the file is created (or truncated, or
// checked for a resume) once, on the client's own session, before the
// others open it.
//
// What such an upload reports as written is the contiguous prefix every
// byte of which the server acknowledged; when it fails, data written past
// that prefix (by the other sessions) is truncated away, so that the
// remote file is that prefix and no more, as after a failed upload over
// one session: a resume continues from its size.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/rsftp/rsftp/internal/wire"
)

const (
	// DefaultStreams is the most sessions an upload spreads over when
	// TransferOptions.Streams is 0 (automatic): as many as make
	// streamWindowTarget bytes of the server's window in flight, up to
	// this: OpenSSH's sshd allows 10 sessions per connection
	// (MaxSessions), whose 2 MiB windows then move 20 MiB per round
	// trip, 100 MB/s at 200 ms.
	DefaultStreams = 10
	// MaxStreams bounds TransferOptions.Streams.
	MaxStreams = 64

	// streamWindowTarget is the window an automatic choice aims for
	// across its sessions (10 of sshd's 2 MiB); a server that grants
	// half of it to one session (ours: 16 MiB, grown as needed) gets
	// one.
	streamWindowTarget = 32 << 20
	// streamStopGrace bounds the wait, after an interruption, for the
	// replies of WRITEs in flight on the other sessions, without which
	// data past the reported prefix cannot be truncated away.
	streamStopGrace = 500 * time.Millisecond
)

// Variables for tests.
var (
	// minStreamUpload is the least an upload must still move to use
	// more sessions: opening one costs round trips (a channel, the
	// subsystem, INIT, OPEN).
	minStreamUpload int64 = 32 << 20
	// streamMinRTT is the least round trip (as the upload's OPEN took)
	// at which an automatic choice spreads: nearer, one session's 2 MiB
	// window moves 400 MB/s or more, what one of sshd's sftp-server
	// processes writes, and more sessions only add processes (on
	// loopback with each end on one core, 10 sessions uploaded to sshd
	// at 0.64x the rate of one).
	streamMinRTT = 5 * time.Millisecond
	// streamChunk is the byte range a session takes at a time.
	streamChunk int64 = 4 << 20
)

// WithStreams lets large uploads of the client spread over more SFTP
// sessions of the same connection (see TransferOptions.Streams): open
// starts one more, with the options it is given (those of this client,
// without its StatAhead). rsftp.Client.SFTP sets it. A session the
// server refuses is no error: the upload goes on over those it has, and
// the client asks no more of that server.
func WithStreams(open func(ctx context.Context, opts ...ClientOption) (*Client, error)) ClientOption {
	return func(c *clientConfig) { c.streamOpen = open }
}

// streamOnly is the option of the clients a streamPool opens: no STAT
// ahead (it is the first client's) and no pool of their own.
func streamOnly(c *clientConfig) { c.statAhead, c.streamOpen = nil, nil }

// streamPool holds the client's extra sessions between uploads.
type streamPool struct {
	open func(ctx context.Context, opts ...ClientOption) (*Client, error)
	opts []ClientOption

	mu      sync.Mutex
	idle    []*Client
	opening int  // opens under way (for an upload that may have ended)
	refused bool // the server refused one: ask for no more
	closed  bool
}

// take delivers up to want extra clients on the channel it returns,
// which it closes once every one was delivered or failed to open: idle
// ones at once, new ones as each opens (they open at once, and an
// upload starts with the client's own session without waiting for
// them: sshd, which starts each SFTP server in turn, took up to 0.7 s
// for 7 of them here).
func (p *streamPool) take(ctx context.Context, want int) <-chan *Client {
	ch := make(chan *Client, want)
	p.mu.Lock()
	n := 0
	for n < want && len(p.idle) > 0 {
		x := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if x.Err() != nil {
			x.Close()
			continue
		}
		ch <- x
		n++
	}
	// Sessions still opening for an earlier upload count: they come to
	// the pool when they open.
	need := want - n - p.opening
	if p.refused || p.closed {
		need = 0
	}
	need = max(need, 0)
	p.opening += need
	p.mu.Unlock()
	if need == 0 {
		close(ch)
		return ch
	}
	go func() {
		var wg sync.WaitGroup
		for range need {
			wg.Add(1)
			go func() {
				defer wg.Done()
				x, err := p.open(ctx, p.opts...)
				p.mu.Lock()
				p.opening--
				if err != nil && ctx.Err() == nil {
					p.refused = true
				}
				p.mu.Unlock()
				if err == nil {
					ch <- x
				}
			}()
		}
		wg.Wait()
		close(ch)
	}()
	return ch
}

// give takes clients back for later uploads (a failed one is closed).
func (p *streamPool) give(xs []*Client) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, x := range xs {
		if x.Err() != nil || p.closed {
			x.Close()
			continue
		}
		p.idle = append(p.idle, x)
	}
}

// Streams is how many more sessions the client holds for large uploads
// (WithStreams): those opened and not closed, between uploads.
func (c *Client) Streams() int {
	if c.streams == nil {
		return 0
	}
	c.streams.mu.Lock()
	defer c.streams.mu.Unlock()
	return len(c.streams.idle)
}

// close closes the idle clients; those taken are closed when given back.
func (p *streamPool) close() {
	p.mu.Lock()
	idle := p.idle
	p.idle, p.closed = nil, true
	p.mu.Unlock()
	for _, x := range idle {
		x.Close()
	}
}

// peerWindower is implemented by connections that know the most the
// peer let them send at once (channel.Channel).
type peerWindower interface {
	PeerWindow() uint32
}

// streamCount is how many sessions an upload of n more bytes uses, when
// its OPEN took rtt.
func (c *Client) streamCount(opt *TransferOptions, n int64, rtt time.Duration) int {
	if c.streams == nil || opt.Streams == 1 || n < minStreamUpload {
		return 1
	}
	if opt.Streams > 1 {
		return min(opt.Streams, MaxStreams)
	}
	if rtt < streamMinRTT {
		return 1
	}
	pw, ok := c.rw.(peerWindower)
	if !ok {
		return 1
	}
	w := int64(max(pw.PeerWindow(), 1))
	if w >= streamWindowTarget/2 {
		return 1
	}
	return int(min((streamWindowTarget+w-1)/w, DefaultStreams))
}

// rangeWriter hands out the byte ranges of a multi-session upload and
// keeps what each session acknowledged, to know the contiguous prefix
// that is certainly written.
type rangeWriter struct {
	lf         *os.File
	start, end int64
	opt        *TransferOptions
	pr         *progress

	mu      sync.Mutex
	next    int64           // where the next chunk starts
	chunks  map[int64]int64 // chunk start -> bytes acknowledged in order from it
	lens    map[int64]int64 // chunk start -> its length
	prefix  int64           // all below is acknowledged
	written int64           // the end of the furthest acknowledged write
	err     error           // the first failure: every session stops
	tmu     sync.Mutex      // Throttle, one at a time
	rmu     sync.Mutex      // progress reports, one at a time
}

// chunk takes the next range, or reports none left (or a failure).
func (w *rangeWriter) chunk() (off, n int64, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil || w.next >= w.end {
		return 0, 0, false
	}
	off, n = w.next, min(streamChunk, w.end-w.next)
	w.next += n
	w.chunks[off], w.lens[off] = 0, n
	return off, n, true
}

// ack records an acknowledged WRITE of n bytes at off, in chunk cs (a
// session's WRITEs of one chunk are answered in order).
func (w *rangeWriter) ack(cs, off int64, n int) {
	w.mu.Lock()
	if w.chunks[cs] == off-cs {
		w.chunks[cs] += int64(n)
	}
	w.written = max(w.written, off+int64(n))
	old := w.prefix
	for {
		got, ok := w.chunks[w.prefix]
		if !ok || got != w.lens[w.prefix] {
			break
		}
		delete(w.chunks, w.prefix)
		delete(w.lens, w.prefix)
		w.prefix += got
	}
	p := w.prefix
	w.mu.Unlock()
	if p > old {
		w.rmu.Lock()
		w.pr.add(int(p - old))
		w.rmu.Unlock()
	}
}

// fail records the first failure; every session stops at its next
// WRITE.
func (w *rangeWriter) fail(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
}

func (w *rangeWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// left reports whether ranges remain to be handed out, with no failure.
func (w *rangeWriter) left() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err == nil && w.next < w.end
}

// furthest is the end of the furthest acknowledged WRITE.
func (w *rangeWriter) furthest() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.written
}

// certain is the acknowledged prefix: the prefix of whole chunks and
// what the first unfinished one has in order.
func (w *rangeWriter) certain() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.prefix + w.chunks[w.prefix]
}

// throttle is opt.throttle for one session of several.
func (w *rangeWriter) throttle(ctx context.Context, n int) error {
	if w.opt.Throttle == nil {
		return nil
	}
	w.tmu.Lock()
	defer w.tmu.Unlock()
	return w.opt.throttle(ctx, n)
}

// run writes chunks through f (a handle of one session) until none is
// left or any session failed, keeping up to its client's MaxInflight
// WRITEs in flight across chunks. When ctx ends it stops sending and
// waits up to streamStopGrace for the replies of the WRITEs in flight,
// then gives up on them (returning the interruption).
func (w *rangeWriter) run(ctx context.Context, f *File) error {
	c := f.c
	maxIn := c.limits.MaxInflight
	size := int64(c.limits.WriteSize)
	q := newRing(maxIn)
	type pos struct{ cs, off, end int64 }
	var cur pos
	have := false
	var err error
	owed := 0
	batch := max(1, maxIn/8)
	var graceEnd <-chan time.Time
	for {
		refill := q.n == 0 || q.n <= maxIn-batch
		for refill && err == nil && q.n < maxIn {
			if e := w.failed(); e != nil {
				err = errStreamStopped
				break
			}
			if ctx.Err() != nil {
				err = interrupted(ctx)
				break
			}
			if !have || cur.off >= cur.end {
				off, n, ok := w.chunk()
				if !ok {
					break
				}
				cur, have = pos{off, off, off + n}, true
			}
			if e := w.throttle(ctx, owed); e != nil {
				err = e
				break
			}
			owed = 0
			n := int(min(size, cur.end-cur.off))
			rc := f.handleRequest(typeWrite)
			rc.out = wire.AppendUint64(rc.out, uint64(cur.off))
			rc.out = wire.AppendUint32(rc.out, 0)
			var got int
			var rerr error
			if c.fill != nil {
				at := cur.off
				got, rerr = c.startFill(ctx, rc, n, func(bufs [][]byte) (int, error) {
					return readAtv(w.lf, bufs, at)
				})
			} else {
				hdr := len(rc.out)
				rc.out = append(rc.out, make([]byte, n)...)
				got, rerr = w.lf.ReadAt(rc.out[hdr:], cur.off)
				got = max(got, 0)
				rc.out = rc.out[:hdr+got]
				binary.BigEndian.PutUint32(rc.out[hdr-4:], uint32(got))
				c.start(ctx, rc)
			}
			q.pushBack(inflight{rc: rc, off: cur.off, n: got, cs: cur.cs})
			if got < n {
				if rerr == nil || errors.Is(rerr, io.EOF) {
					rerr = fmt.Errorf("the local file ended at %d bytes, not %d (it changed during the upload)", cur.off+int64(got), w.end)
				}
				err = fmt.Errorf("reading the source: %w", rerr)
				break
			}
			cur.off += int64(got)
			owed += got
		}
		if err != nil {
			w.fail(err)
		}
		if q.n == 0 {
			break
		}
		if err != nil && graceEnd == nil && ctx.Err() != nil {
			t := time.NewTimer(streamStopGrace)
			defer t.Stop()
			graceEnd = t.C
		}
		var req inflight
		if graceEnd != nil {
			// Interrupted: wait for each reply, but not past the grace.
			select {
			case <-q.at(0).rc.done:
				q.at(0).ready = true
				req = q.popFront()
			case <-graceEnd:
				for q.n > 0 {
					q.popFront().rc.abandoned = true
				}
				return err
			}
		} else {
			req = q.waitFront(batch)
		}
		typ, body, rerr := req.rc.reply()
		if rerr == nil {
			rerr = expectStatus(typ, body)
		}
		c.putCall(req.rc)
		if rerr != nil {
			if err == nil || errors.Is(err, errStreamStopped) {
				err = pathError("write", f.name, rerr)
			}
			w.fail(err)
			continue
		}
		w.ack(req.cs, req.off, req.n)
	}
	if err == nil && owed > 0 {
		err = w.throttle(ctx, owed)
		if err != nil {
			w.fail(err)
		}
	}
	return err
}

// errStreamStopped is a session's error when another one failed.
var errStreamStopped = errors.New("sftp: stopped: another session of the upload failed")

// uploadStreams uploads lf from start to total through rf (the file,
// opened, created or checked, on c's own session) and up to k-1 extra
// sessions, each opening the file as it joins. It returns the bytes
// certainly written from start, contiguously, and an error; after a
// failure nothing past start+n is left in the file. Once every WRITE
// succeeded it calls finish (rf's FSETSTAT and CLOSE go out) and closes
// the extra handles beside it.
func (c *Client) uploadStreams(ctx context.Context, rf *File, lf *os.File, remote string, start, total int64, k int, opt *TransferOptions, pr *progress, finish func()) (int64, error) {
	w := &rangeWriter{lf: lf, start: start, end: total, opt: opt, pr: pr,
		next: start, prefix: start, written: start,
		chunks: map[int64]int64{}, lens: map[int64]int64{}}
	var (
		mu      sync.Mutex
		joining = true // extra sessions may still join
		clients []*Client
		files   []*File
		runs    sync.WaitGroup
		errs    []error
	)
	record := func(err error) {
		if err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
		}
	}
	arrivals := c.streams.take(ctx, k-1)
	go func() {
		for x := range arrivals {
			mu.Lock()
			if !joining {
				mu.Unlock()
				c.streams.give([]*Client{x})
				continue
			}
			clients = append(clients, x)
			runs.Add(1)
			mu.Unlock()
			go func() {
				defer runs.Done()
				if !w.left() {
					return
				}
				f, err := x.openFile(ctx, remote, os.O_WRONLY, 0)
				if err != nil {
					return // done without it
				}
				mu.Lock()
				files = append(files, f)
				mu.Unlock()
				record(w.run(ctx, f))
			}()
		}
	}()
	record(w.run(ctx, rf))
	// rf's run ends once every range was handed out (or one failed):
	// no session joins from now on, and those at work finish.
	mu.Lock()
	joining = false
	mu.Unlock()
	runs.Wait()
	defer c.streams.give(clients)
	err := w.failed()
	if err != nil {
		// The first real failure, not a session's "stopped".
		for _, e := range errs {
			if !errors.Is(e, errStreamStopped) {
				err = e
				break
			}
		}
	}
	// Every WRITE is answered: the handles close together (CLOSE's
	// error is the upload's: data may be lost), rf's through finish.
	if err == nil && finish != nil {
		finish()
	}
	closes := make([]*call, len(files))
	for i, f := range files {
		if ctx.Err() != nil {
			f.close(ctx) // interrupted: CLOSE goes in the background
		} else {
			closes[i] = f.startClose(ctx)
		}
	}
	for i, f := range files {
		if closes[i] != nil {
			if cerr := f.waitClose(ctx, closes[i]); cerr != nil && err == nil {
				err = cerr
			}
		}
	}
	done := w.certain() - start
	if err == nil {
		return done, nil
	}
	if keep := start + done; w.furthest() > keep {
		// Data past a hole: cut it, so that the file is the prefix a
		// resume continues from. Over the link that is left, and not
		// past a short grace once interrupted.
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), streamStopGrace)
		if ctx.Err() == nil {
			tctx, cancel = context.WithCancel(ctx)
		}
		terr := c.truncateCtx(tctx, remote, keep)
		cancel()
		if terr != nil {
			err = fmt.Errorf("%w; and truncating away data written past the first %d bytes failed: %v", err, keep, terr)
		}
	}
	return done, err
}

// truncateCtx is Truncate under ctx.
func (c *Client) truncateCtx(ctx context.Context, p string, size int64) error {
	return c.setstat(ctx, p, &Attrs{Flags: AttrSize, Size: uint64(size)})
}

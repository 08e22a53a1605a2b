package sftp

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rsftp/rsftp/internal/wire"
)

// ServerConfig configures Serve.
type ServerConfig struct {
	// Root is the directory every path is confined to. Required.
	Root string
	// ReadOnly refuses every request that would change the file system.
	ReadOnly bool
	// MaxHandles bounds the open file and directory handles of a session
	// (default DefaultMaxHandles); an OPEN or OPENDIR past it fails with
	// "too many open handles".
	MaxHandles int
	// Logger receives session-level diagnostics; nil discards them.
	Logger *slog.Logger
	// Home is the path inside Root reported as the home directory and
	// against which relative paths resolve (default "/").
	Home string

	// maxHash bounds one hash-range request (tests shrink it).
	maxHash int64
	// hashGate, if set, replaces the process-wide hashSlots (tests);
	// hashWait, if set, is called when a hash-range request has to wait
	// for a slot.
	hashGate chan struct{}
	hashWait func()
	// inPlaceMin, if > 0, replaces minFillRead and minDirectWrite (the
	// fuzzer lowers it to reach those paths with small inputs).
	inPlaceMin int
}

// DefaultMaxHandles is the default of ServerConfig.MaxHandles.
const DefaultMaxHandles = 256

// Server-side bounds.
const (
	defaultMaxHandles = DefaultMaxHandles
	// maxHashRange bounds the bytes one hash-range request may hash
	// (about a second of SHA-256 on one core). The reply says how many
	// were hashed; the client asks again for the rest.
	maxHashRange = 256 << 20
	// maxReaddirNames is the most names one NAME reply to READDIR
	// carries, as OpenSSH's server does.
	maxReaddirNames = 100
	// maxSymlinkHops bounds symlinks followed by REALPATH.
	maxSymlinkHops = 40
	// outBufSize is one output buffer: room for four full DATA replies.
	outBufSize = 4*(MaxReadWrite+13) + 64<<10
	// syncOutBufSize is the reply buffer when DATA replies bypass it
	// (readFill): room for the largest other reply, and some.
	syncOutBufSize = MaxPacket + 64<<10
	// minFillRead is the smallest READ answered with readFill: smaller
	// ones are batched in the reply buffer.
	minFillRead = 16 << 10
	// minDirectWrite is the smallest WRITE packet served by writeDirect.
	minDirectWrite = 16 << 10
	// inBufSize buffers small requests; big WRITEs bypass it.
	inBufSize = 64 << 10
	// hashBufSize is the scratch of hash-range and copy-data.
	hashBufSize = 256 << 10
)

// A session holds its request and reply buffers (inBuf, and out when
// replies go to a fillWriter) only while it has requests to serve: it
// takes them from these pools when a request arrives and gives them back
// when it waits for the next with nothing buffered, so an idle session
// (a detached one, say, for up to its hold time) holds none of their
// 576 KiB. hash-range and copy-data take their scratch per request.
var (
	inPool   = newBufPool(MaxPacket)
	outPool  = newBufPool(syncOutBufSize)
	hashPool = newBufPool(hashBufSize)
)

// bufPoolKeep is how many buffers a bufPool keeps for certain.
const bufPoolKeep = 4

// bufPool hands out buffers of one size: a few kept for certain (a
// sync.Pool lets its buffers go at each collection, and at random under
// the race detector), more in a sync.Pool.
type bufPool struct {
	size int
	kept chan []byte
	more sync.Pool
}

func newBufPool(size int) *bufPool {
	p := &bufPool{size: size, kept: make(chan []byte, bufPoolKeep)}
	p.more.New = func() any { b := make([]byte, size); return &b }
	return p
}

// get returns a buffer of len p.size.
func (p *bufPool) get() []byte {
	select {
	case b := <-p.kept:
		return b
	default:
		return *p.more.Get().(*[]byte)
	}
}

// put gives b back (a buffer that grew past twice the pool's size goes
// to the collector instead). b must not be used afterwards.
func (p *bufPool) put(b []byte) {
	if cap(b) < p.size || cap(b) > 2*p.size {
		return
	}
	b = b[:p.size]
	select {
	case p.kept <- b:
	default:
		p.more.Put(&b)
	}
}

// serverExtensions are advertised in VERSION.
var serverExtensions = []ExtPair{
	{extPosixRename, "1"},
	{extStatVFS, "2"},
	{extFstatVFS, "2"},
	{extHardlink, "1"},
	{extFsync, "1"},
	{extLsetstat, "1"},
	{extLimits, "1"},
	{extExpandPath, "1"},
	{extHomeDir, "1"},
	{extUsersGroups, "1"},
	{extCopyData, "1"},
	{extHashRange, "1"},
}

// hashSlots bounds the hash-range requests being hashed at once by all
// the sessions of the process: half the cores, at least one. A session
// serves its requests one at a time, so it holds at most one slot.
var hashSlots = make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/2))

// escapeError returns the os package's "path escapes from parent" error
// (unexported there), probed on root, so root escapes map to
// PERMISSION_DENIED.
func escapeError(root *os.Root) error {
	_, err := root.Lstat("../x")
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Serve serves one SFTP session over rw until the client closes it
// (returning nil) or a protocol error ends it. Every file operation is
// confined to cfg.Root through an os.Root. When ctx is canceled and rw
// is an io.Closer, rw is closed to end the session.
//
// A session that fails for another reason than ctx or the end of its
// connection (a DISCONNECT) is logged to cfg.Logger as a warning, "sftp
// session ended" with "err".
func Serve(ctx context.Context, rw io.ReadWriter, cfg *ServerConfig) error {
	err := serve(ctx, rw, cfg)
	if err != nil && cfg != nil && cfg.Logger != nil && ctx.Err() == nil && !connectionEnded(err) {
		cfg.Logger.Warn("sftp session ended", "err", err)
	}
	return err
}

func serve(ctx context.Context, rw io.ReadWriter, cfg *ServerConfig) error {
	if cfg == nil || cfg.Root == "" {
		return errors.New("sftp: ServerConfig.Root is required")
	}
	root, err := os.OpenRoot(cfg.Root)
	if err != nil {
		return fmt.Errorf("sftp: opening root: %w", err)
	}
	defer root.Close()

	s := &server{
		ctx:        ctx,
		cfg:        cfg,
		root:       root,
		home:       path.Clean("/" + cfg.Home),
		log:        cfg.Logger,
		maxHandles: cfg.MaxHandles,
		maxHash:    cfg.maxHash,
		handles:    make(map[string]*handle),
		users:      make(map[uint32]string),
		groups:     make(map[uint32]string),
		escape:     escapeError(root),
		hostRoots:  hostRoots(cfg.Root),
		hashGate:   cfg.hashGate,
	}
	if s.hashGate == nil {
		s.hashGate = hashSlots
	}
	if s.rootInfo, err = root.Stat("."); err != nil {
		return fmt.Errorf("sftp: opening root: %w", err)
	}
	if s.maxHandles <= 0 {
		s.maxHandles = defaultMaxHandles
	}
	if s.maxHash <= 0 {
		s.maxHash = maxHashRange
	}
	s.minFill, s.minDirect = minFillRead, minDirectWrite
	if cfg.inPlaceMin > 0 {
		s.minFill, s.minDirect = cfg.inPlaceMin, cfg.inPlaceMin
	}
	if rr, ok := rw.(requestReader); ok {
		// The channel buffers what arrives: no bufio on top.
		s.in = rr
		if v, ok := rw.(viaReader); ok {
			s.via = v
		}
	} else {
		s.in = bufio.NewReaderSize(rw, inBufSize)
	}
	if fw, ok := rw.(fillWriter); ok {
		// Files are read straight into the outgoing packets, and the
		// transport writes them out beside us: no writer goroutine.
		s.fill = fw
		s.syncOut = rw
	} else {
		s.w = newOutWriter(rw)
		s.out = s.w.get()
	}

	if c, ok := rw.(io.Closer); ok {
		stop := context.AfterFunc(ctx, func() { c.Close() })
		defer stop()
	}

	err = s.loop()
	for k, h := range s.handles {
		h.f.Close()
		delete(s.handles, k)
	}
	if ferr := s.closeOut(); err == nil && ferr != nil {
		err = ferr
	}
	s.release()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// connectionEnded reports whether err is the end of the SSH connection
// under the session by a DISCONNECT (transport.DisconnectError says so
// with SessionEnded): the client closing its connection after its last
// request, most often, and never a failure of the SFTP session itself.
// Serve returns it without a warning; the caller says how the
// connection ended.
func connectionEnded(err error) bool {
	var e interface{ SessionEnded() bool }
	return errors.As(err, &e) && e.SessionEnded()
}

type server struct {
	ctx        context.Context
	cfg        *ServerConfig
	root       *os.Root
	home       string // clean, absolute within the root
	log        *slog.Logger
	maxHandles int
	maxHash    int64
	escape     error
	rootInfo   fs.FileInfo   // the root directory itself, to recognise it under any name
	hostRoots  []string      // the root's host path, as given and with links resolved
	hashGate   chan struct{} // hash-range slots (hashSlots)
	minFill    int           // READs of this many bytes or more go to readFill
	minDirect  int           // WRITE packets of this many bytes or more go to writeDirect

	handles    map[string]*handle
	nextHandle uint32

	in     requestReader
	via    viaReader  // in's zero-copy read, if it has one
	hdr    [4]byte    // readRequest's scratch
	inited bool       // INIT came
	inBuf  []byte     // from inPool while requests are served, else nil
	w      *outWriter // nil when fill is set
	// fill, when the connection has it, takes DATA replies read straight
	// into its packets (readFill); other replies go to syncOut.
	fill    fillWriter
	syncOut io.Writer
	iov     [][]byte // readFill's scratch
	// out holds replies not yet handed to the writer: with fill, from
	// outPool while requests are served, else nil; without, one of the
	// outWriter's buffers.
	out []byte

	users, groups map[uint32]string
}

type handle struct {
	f       *os.File
	name    string // root-relative name it was opened by
	abs     string // client-visible absolute path
	dir     bool
	append  bool
	dots    bool // "." and ".." sent
	eof     bool // directory fully read
	pending []string
}

// requestReader is a reader that says what it holds: the request loop
// answers what it has before waiting for more.
type requestReader interface {
	io.Reader
	Buffered() int
}

// fillWriter is implemented by connections that let a writer fill their
// packets in place (channel.Channel).
type fillWriter interface {
	WriteFill(n int, fill func(bufs [][]byte) (int, error)) (int, error)
}

// outWriter writes filled buffers on its own goroutine so disk reads
// overlap network writes; two buffers circulate between it and the
// request loop.
type outWriter struct {
	w      io.Writer
	full   chan []byte
	free   chan []byte
	done   chan struct{}
	failed atomic.Bool
	err    error // set before failed
}

func newOutWriter(w io.Writer) *outWriter {
	o := &outWriter{
		w:    w,
		full: make(chan []byte, 2),
		free: make(chan []byte, 2),
		done: make(chan struct{}),
	}
	o.free <- make([]byte, 0, outBufSize)
	o.free <- make([]byte, 0, outBufSize)
	go o.run()
	return o
}

func (o *outWriter) run() {
	defer close(o.done)
	for b := range o.full {
		if !o.failed.Load() {
			if _, err := o.w.Write(b); err != nil {
				o.err = err
				o.failed.Store(true)
			}
		}
		o.free <- b[:0]
	}
}

func (o *outWriter) get() []byte { return <-o.free }

// send hands b to the writer and returns an empty buffer.
func (o *outWriter) send(b []byte) ([]byte, error) {
	if o.failed.Load() {
		return b[:0], o.err
	}
	o.full <- b
	return o.get(), nil
}

// close writes what remains and waits for the writer.
func (o *outWriter) close(b []byte) error {
	if len(b) > 0 && !o.failed.Load() {
		o.full <- b
	}
	close(o.full)
	<-o.done
	if o.failed.Load() {
		return o.err
	}
	return nil
}

// flush hands pending replies to the writer.
func (s *server) flush() error {
	if len(s.out) == 0 {
		return nil
	}
	if s.w == nil {
		_, err := s.syncOut.Write(s.out)
		s.out = s.out[:0]
		return err
	}
	var err error
	s.out, err = s.w.send(s.out)
	return err
}

// acquire takes the request buffer and, with fill, the reply buffer for
// the requests about to be served.
func (s *server) acquire() {
	if s.inBuf == nil {
		s.inBuf = inPool.get()
	}
	if s.w == nil && s.out == nil {
		s.out = outPool.get()[:0]
	}
}

// release gives back what acquire took, once the replies are flushed
// (loop calls it before it waits for the next request with nothing
// buffered).
func (s *server) release() {
	if s.inBuf != nil {
		inPool.put(s.inBuf)
		s.inBuf = nil
	}
	if s.w == nil && s.out != nil && len(s.out) == 0 {
		outPool.put(s.out)
		s.out = nil
	}
}

// closeOut writes what replies remain and stops the writer.
func (s *server) closeOut() error {
	if s.w == nil {
		return s.flush()
	}
	return s.w.close(s.out)
}

// reserve makes room for n more bytes of replies, flushing if needed.
func (s *server) reserve(n int) error {
	if len(s.out)+n <= cap(s.out) {
		return nil
	}
	return s.flush()
}

var errNotInit = errors.New("sftp: first packet is not INIT")

// readRequest reads one packet into s.inBuf. After INIT, a WRITE whose
// data can go straight from the connection's buffer to the file (s.via)
// is served here instead (writeDirect), and readRequest returns nil, nil.
func (s *server) readRequest() ([]byte, error) {
	if _, err := io.ReadFull(s.in, s.hdr[:]); err != nil {
		return nil, err // io.EOF only if the stream ended between packets
	}
	n := binary.BigEndian.Uint32(s.hdr[:])
	if n > MaxPacket {
		return nil, fmt.Errorf("%w: %d bytes", ErrPacketTooLarge, n)
	}
	if n < 1 {
		return nil, errors.New("sftp: empty packet")
	}
	s.acquire()
	buf := s.inBuf[:n]
	got := 0
	if s.via != nil && s.inited && n >= 9 && int64(n) >= int64(s.minDirect) {
		// Type, id and the handle's length; for a WRITE then the handle,
		// the offset and the data's length.
		got = 9
		err := readFull(s.in, buf[:got])
		if err == nil && buf[0] == typeWrite {
			if hl := binary.BigEndian.Uint32(buf[5:9]); hl <= maxHandleLen && 9+hl+12 <= n {
				got = 9 + int(hl) + 12
				err = readFull(s.in, buf[9:got])
				if err == nil && int64(binary.BigEndian.Uint32(buf[got-4:got])) == int64(n)-int64(got) {
					return nil, s.writeDirect(buf[:got], int(n)-got)
				}
			}
		}
		if err != nil {
			return nil, err
		}
	}
	if err := readFull(s.in, buf[got:]); err != nil {
		return nil, err
	}
	return buf, nil
}

// readFull is io.ReadFull inside a packet: the stream may not end.
func readFull(r io.Reader, p []byte) error {
	_, err := io.ReadFull(r, p)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// writeDirect serves a WRITE, req up to its data's length field, whose n
// bytes of data wait in the connection: they go from its buffer to the
// file without a copy (pwritev). The data is consumed whatever the answer.
func (s *server) writeDirect(req []byte, n int) error {
	id := binary.BigEndian.Uint32(req[1:5])
	r := wire.NewReader(req[5:])
	h := s.handleOf(r)
	off := r.Uint64()
	refusal := s.writeRefusal(r.Err() != nil, h, off)
	var werr error
	done := int64(0)
	_, err := s.via.ReadVia(n, func(bufs [][]byte) {
		k := 0
		for _, b := range bufs {
			k += len(b)
		}
		if refusal == nil && werr == nil {
			if h.append {
				for _, b := range bufs {
					if _, werr = h.f.Write(b); werr != nil {
						break
					}
				}
			} else {
				_, werr = writeAtv(h.f, bufs, int64(off)+done)
			}
		}
		done += int64(k)
	})
	if err != nil {
		return err
	}
	if err := s.reserve(1024); err != nil {
		return err
	}
	if refusal != nil {
		return s.statusErr(id, refusal)
	}
	return s.statusErr(id, werr)
}

var (
	errBadMessage     = &StatusError{Code: StatusBadMessage, Message: "bad message"}
	errInvalidHandle  = &StatusError{Code: StatusFailure, Message: "invalid handle"}
	errOffsetTooLarge = &StatusError{Code: StatusFailure, Message: "offset too large"}
)

// writeRefusal says why a WRITE may not be carried out, or nil if it may:
// a malformed request, a handle that is unknown or a directory's, a
// read-only server, an offset past 2^63-1.
func (s *server) writeRefusal(malformed bool, h *handle, off uint64) error {
	switch {
	case malformed:
		return errBadMessage
	case h == nil || h.dir:
		return errInvalidHandle
	case s.cfg.ReadOnly:
		return errReadOnly
	case off > math.MaxInt64:
		return errOffsetTooLarge
	}
	return nil
}

func (s *server) loop() error {
	p, err := s.readRequest()
	if err != nil {
		if err == io.EOF {
			return nil
		}
		return err
	}
	if p[0] != typeInit {
		return errNotInit
	}
	s.inited = true
	// The client's version and extensions are not needed: we speak 3.
	s.out = startReply(s.out, typeVersion)
	start := len(s.out) - 5
	s.out = wire.AppendUint32(s.out, ProtocolVersion)
	for _, e := range serverExtensions {
		s.out = wire.AppendString(s.out, e.Name)
		s.out = wire.AppendString(s.out, e.Data)
	}
	s.out = endReply(s.out, start)

	for {
		if s.in.Buffered() == 0 {
			if err := s.flush(); err != nil {
				return err
			}
			// The next read may wait for long: hold no buffers meanwhile.
			s.release()
		}
		p, err := s.readRequest()
		if err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		if p == nil {
			continue // served by readRequest
		}
		if err := s.dispatch(p); err != nil {
			return err
		}
	}
}

// startReply appends a packet header with a placeholder length.
func startReply(b []byte, typ byte) []byte {
	return append(b, 0, 0, 0, 0, typ)
}

// endReply fills in the length of the packet starting at start.
func endReply(b []byte, start int) []byte {
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return b
}

// dispatch handles one request. Only session-ending errors are returned.
func (s *server) dispatch(p []byte) error {
	typ := p[0]
	if typ == typeInit {
		return errors.New("sftp: duplicate INIT")
	}
	if len(p) < 5 {
		return fmt.Errorf("sftp: %d-byte packet of type %d has no id", len(p), typ)
	}
	id := binary.BigEndian.Uint32(p[1:5])
	r := wire.NewReader(p[5:])
	if err := s.reserve(1024); err != nil {
		return err
	}
	switch typ {
	case typeRead:
		return s.doRead(id, r)
	case typeWrite:
		return s.doWrite(id, r)
	case typeOpen:
		return s.doOpen(id, r)
	case typeClose:
		return s.doClose(id, r)
	case typeLstat, typeStat:
		name := r.String()
		if r.Err() != nil {
			return s.badMessage(id)
		}
		var fi fs.FileInfo
		var err error
		if typ == typeStat {
			fi, err = s.root.Stat(s.rel(name))
		} else {
			fi, err = s.root.Lstat(s.rel(name))
		}
		return s.attrsReply(id, fi, err)
	case typeFstat:
		h := s.handleOf(r)
		if r.Err() != nil {
			return s.badMessage(id)
		}
		if h == nil {
			return s.invalidHandle(id)
		}
		fi, err := h.f.Stat()
		return s.attrsReply(id, fi, err)
	case typeSetstat:
		name := r.String()
		a := parseAttrs(r)
		if r.Err() != nil {
			return s.badMessage(id)
		}
		return s.statusErr(id, s.setstat(s.rel(name), &a, false))
	case typeFsetstat:
		h := s.handleOf(r)
		a := parseAttrs(r)
		if r.Err() != nil {
			return s.badMessage(id)
		}
		if h == nil {
			return s.invalidHandle(id)
		}
		return s.statusErr(id, s.fsetstat(h, &a))
	case typeOpendir:
		return s.doOpendir(id, r)
	case typeReaddir:
		return s.doReaddir(id, r)
	case typeRemove:
		name := r.String()
		if r.Err() != nil {
			return s.badMessage(id)
		}
		return s.statusErr(id, s.remove(s.rel(name), false))
	case typeRmdir:
		name := r.String()
		if r.Err() != nil {
			return s.badMessage(id)
		}
		return s.statusErr(id, s.remove(s.rel(name), true))
	case typeMkdir:
		name := r.String()
		a := parseAttrs(r)
		if r.Err() != nil {
			return s.badMessage(id)
		}
		if s.cfg.ReadOnly {
			return s.statusErr(id, errReadOnly)
		}
		perm := fs.FileMode(0o777)
		if a.Flags&AttrPermissions != 0 {
			perm = permOf(a.Mode)
		}
		return s.statusErr(id, s.root.Mkdir(s.rel(name), perm))
	case typeRealpath:
		name := r.String()
		if r.Err() != nil {
			return s.badMessage(id)
		}
		// Later fields (a control byte and compose paths) belong to
		// newer drafts; version 3 has none.
		rp, err := s.realpath(name)
		if err != nil {
			return s.statusErr(id, err)
		}
		return s.nameReply(id, rp)
	case typeRename:
		oldName, newName := r.String(), r.String()
		if r.Err() != nil {
			return s.badMessage(id)
		}
		return s.statusErr(id, s.rename(s.rel(oldName), s.rel(newName)))
	case typeReadlink:
		name := r.String()
		if r.Err() != nil {
			return s.badMessage(id)
		}
		target, err := s.readlink(s.rel(name))
		if err != nil {
			return s.statusErr(id, err)
		}
		return s.nameReply(id, target)
	case typeSymlink:
		// OpenSSH's order: the link's target first, then the link.
		target, link := r.String(), r.String()
		if r.Err() != nil {
			return s.badMessage(id)
		}
		return s.statusErr(id, s.symlink(target, link))
	case typeExtended:
		return s.doExtended(id, r)
	}
	return s.status(id, StatusOpUnsupported, "unsupported request")
}

// Replies.

func (s *server) status(id, code uint32, msg string) error {
	if len(msg) > 256 {
		msg = msg[:256]
	}
	if err := s.reserve(64 + len(msg)); err != nil {
		return err
	}
	start := len(s.out)
	s.out = startReply(s.out, typeStatus)
	s.out = wire.AppendUint32(s.out, id)
	s.out = wire.AppendUint32(s.out, code)
	s.out = wire.AppendString(s.out, msg)
	s.out = wire.AppendString(s.out, "en")
	s.out = endReply(s.out, start)
	return nil
}

func (s *server) badMessage(id uint32) error {
	return s.status(id, errBadMessage.Code, errBadMessage.Message)
}

func (s *server) invalidHandle(id uint32) error {
	return s.status(id, errInvalidHandle.Code, errInvalidHandle.Message)
}

// statusErr replies with err mapped to a status (OK for nil).
func (s *server) statusErr(id uint32, err error) error {
	if err == nil {
		return s.status(id, StatusOK, "")
	}
	code, msg := s.mapError(err)
	if s.log != nil && s.log.Enabled(s.ctx, slog.LevelDebug) {
		s.log.Debug("sftp request failed", "id", id, "status", statusName(code), "err", err)
	}
	return s.status(id, code, msg)
}

var errReadOnly = &StatusError{Code: StatusPermissionDenied, Message: "read-only server"}

// mapError maps a local error to a status code and a short message that
// never carries a path.
func (s *server) mapError(err error) (uint32, string) {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Code, se.Message
	}
	inner := err
	var pe *fs.PathError
	var le *os.LinkError
	var sce *os.SyscallError
	switch {
	case errors.As(err, &pe):
		inner = pe.Err
	case errors.As(err, &le):
		inner = le.Err
	case errors.As(err, &sce):
		inner = sce.Err
	}
	if s.escape != nil && errors.Is(inner, s.escape) || inner.Error() == "path escapes from parent" {
		return StatusPermissionDenied, "path escapes root"
	}
	var errno syscall.Errno
	if errors.As(inner, &errno) {
		switch errno {
		case syscall.ENOENT, syscall.ENOTDIR, syscall.EBADF, syscall.ELOOP:
			return StatusNoSuchFile, errno.Error()
		case syscall.EPERM, syscall.EACCES, syscall.EFAULT:
			return StatusPermissionDenied, errno.Error()
		case syscall.ENAMETOOLONG, syscall.EINVAL:
			return StatusBadMessage, errno.Error()
		case syscall.ENOSYS, syscall.EOPNOTSUPP:
			return StatusOpUnsupported, errno.Error()
		}
		return StatusFailure, errno.Error()
	}
	code := statusCode(inner)
	if code == StatusFailure && inner != nil {
		// Errors from the os package (no errno) describe the
		// problem without a path once unwrapped.
		return code, inner.Error()
	}
	return code, statusName(code)
}

func (s *server) attrsReply(id uint32, fi fs.FileInfo, err error) error {
	if err != nil {
		return s.statusErr(id, err)
	}
	a := AttrsFromFileInfo(fi)
	start := len(s.out)
	s.out = startReply(s.out, typeAttrs)
	s.out = wire.AppendUint32(s.out, id)
	s.out = appendAttrs(s.out, &a)
	s.out = endReply(s.out, start)
	return nil
}

// nameReply sends a NAME with one entry whose longname is the name and
// whose attributes are empty, as REALPATH and READLINK replies are.
func (s *server) nameReply(id uint32, name string) error {
	if len(name) > MaxPacket/2-64 {
		return s.status(id, StatusFailure, "name too long")
	}
	if err := s.reserve(2*len(name) + 64); err != nil {
		return err
	}
	start := len(s.out)
	s.out = startReply(s.out, typeName)
	s.out = wire.AppendUint32(s.out, id)
	s.out = wire.AppendUint32(s.out, 1)
	s.out = wire.AppendString(s.out, name)
	s.out = wire.AppendString(s.out, name)
	s.out = wire.AppendUint32(s.out, 0)
	s.out = endReply(s.out, start)
	return nil
}

// Paths.

// abs resolves a client path to a clean absolute path in the root's
// namespace: relative paths resolve against home, and ".." stops at "/".
func (s *server) abs(p string) string {
	if p == "" || p[0] != '/' {
		p = s.home + "/" + p
	}
	return path.Clean(p)
}

// rel turns a client path into a name for the os.Root methods.
func (s *server) rel(p string) string {
	return relOf(s.abs(p))
}

func relOf(abs string) string {
	if abs == "/" {
		return "."
	}
	return strings.TrimPrefix(abs, "/")
}

// realpath canonicalizes p, following symlinks inside the root. A final
// component that does not exist is allowed. Absolute link targets are
// server-side paths that cannot be mapped safely: such a link is left
// as it is.
func (s *server) realpath(p string) (string, error) {
	comps := splitPath(s.abs(p))
	resolved := "/"
	hops := 0
	for i := 0; i < len(comps); i++ {
		c := comps[i]
		switch c {
		case "", ".":
			continue
		case "..":
			resolved = path.Dir(resolved)
			continue
		}
		next := path.Join(resolved, c)
		fi, err := s.root.Lstat(relOf(next))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && i == len(comps)-1 {
				return next, nil
			}
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			hops++
			if hops > maxSymlinkHops {
				return "", syscall.ELOOP
			}
			target, err := s.root.Readlink(relOf(next))
			if err != nil {
				return "", err
			}
			if !path.IsAbs(target) && target != "" {
				rest := append(splitPath(target), comps[i+1:]...)
				comps = rest
				i = -1
				continue
			}
		} else if !fi.IsDir() && i < len(comps)-1 {
			return "", syscall.ENOTDIR
		}
		resolved = next
	}
	return resolved, nil
}

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

// permOf converts POSIX permission bits to an fs.FileMode.
func permOf(mode uint32) fs.FileMode {
	a := Attrs{Mode: mode & 0o7777}
	return a.FileMode() &^ fs.ModeType
}

// Handles.

func (s *server) handleOf(r *wire.Reader) *handle {
	b := r.Bytes()
	if r.Err() != nil {
		return nil
	}
	return s.handles[string(b)]
}

var errTooManyHandles = &StatusError{Code: StatusFailure, Message: "too many open handles"}

func (s *server) newHandle(h *handle) (string, error) {
	if len(s.handles) >= s.maxHandles {
		return "", errTooManyHandles
	}
	for {
		s.nextHandle++
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], s.nextHandle)
		key := string(b[:])
		if _, used := s.handles[key]; !used {
			s.handles[key] = h
			return key, nil
		}
	}
}

func (s *server) handleReply(id uint32, key string) error {
	start := len(s.out)
	s.out = startReply(s.out, typeHandle)
	s.out = wire.AppendUint32(s.out, id)
	s.out = wire.AppendString(s.out, key)
	s.out = endReply(s.out, start)
	return nil
}

// Requests.

var errNotRegular = &StatusError{Code: StatusFailure, Message: "not a regular file"}

func (s *server) doOpen(id uint32, r *wire.Reader) error {
	name := r.String()
	pflags := r.Uint32()
	a := parseAttrs(r)
	if r.Err() != nil {
		return s.badMessage(id)
	}
	var flag int
	switch {
	case pflags&FlagRead != 0 && pflags&FlagWrite != 0:
		flag = os.O_RDWR
	case pflags&FlagWrite != 0:
		flag = os.O_WRONLY
	default:
		flag = os.O_RDONLY
	}
	if pflags&FlagAppend != 0 {
		flag |= os.O_APPEND
	}
	if pflags&FlagCreate != 0 {
		flag |= os.O_CREATE
	}
	if pflags&FlagTrunc != 0 {
		flag |= os.O_TRUNC
	}
	if pflags&FlagExcl != 0 {
		flag |= os.O_EXCL
	}
	if s.cfg.ReadOnly && pflags&(FlagWrite|FlagAppend|FlagCreate|FlagTrunc) != 0 {
		return s.statusErr(id, errReadOnly)
	}
	perm := fs.FileMode(0o666)
	if a.Flags&AttrPermissions != 0 {
		perm = permOf(a.Mode)
	}
	if len(s.handles) >= s.maxHandles {
		return s.statusErr(id, errTooManyHandles)
	}
	rel := s.rel(name)
	// O_NONBLOCK keeps a FIFO from blocking the session; only regular
	// files (and directories, whose reads fail) are served.
	f, err := s.root.OpenFile(rel, flag|syscall.O_NONBLOCK, perm)
	if err != nil {
		return s.statusErr(id, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return s.statusErr(id, err)
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		f.Close()
		return s.statusErr(id, errNotRegular)
	}
	key, err := s.newHandle(&handle{f: f, name: rel, abs: s.abs(name), append: flag&os.O_APPEND != 0})
	if err != nil {
		f.Close()
		return s.statusErr(id, err)
	}
	return s.handleReply(id, key)
}

func (s *server) doClose(id uint32, r *wire.Reader) error {
	b := r.Bytes()
	if r.Err() != nil {
		return s.badMessage(id)
	}
	h := s.handles[string(b)]
	if h == nil {
		return s.invalidHandle(id)
	}
	delete(s.handles, string(b))
	return s.statusErr(id, h.f.Close())
}

func (s *server) doRead(id uint32, r *wire.Reader) error {
	h := s.handleOf(r)
	off := r.Uint64()
	n := r.Uint32()
	if r.Err() != nil {
		return s.badMessage(id)
	}
	if h == nil || h.dir {
		return s.invalidHandle(id)
	}
	if off > math.MaxInt64 {
		return s.status(id, StatusEOF, "end of file")
	}
	if n > MaxReadWrite {
		n = MaxReadWrite
	}
	if s.fill != nil && int64(n) >= int64(s.minFill) {
		return s.readFill(id, h, int64(off), int(n))
	}
	if err := s.reserve(13 + int(n)); err != nil {
		return err
	}
	start := len(s.out)
	s.out = startReply(s.out, typeData)
	s.out = wire.AppendUint32(s.out, id)
	s.out = wire.AppendUint32(s.out, 0)
	dataAt := len(s.out)
	if cap(s.out)-dataAt < int(n) {
		// Only when a reply outgrew the buffer; not the steady state.
		s.out = append(s.out, make([]byte, n)...)[:dataAt]
	}
	buf := s.out[dataAt : dataAt+int(n)]
	got, err := h.f.ReadAt(buf, int64(off))
	if got == 0 && n > 0 {
		s.out = s.out[:start]
		if err == nil || err == io.EOF {
			return s.status(id, StatusEOF, "end of file")
		}
		return s.statusErr(id, err)
	}
	binary.BigEndian.PutUint32(s.out[dataAt-4:], uint32(got))
	s.out = endReply(s.out[:dataAt+got], start)
	return nil
}

// readFill answers a READ of n bytes at off with the file read straight
// into the packets that carry the reply (channel.Channel's WriteFill),
// saving a copy of every byte served.
func (s *server) readFill(id uint32, h *handle, off int64, n int) error {
	// Replies already made go first.
	if err := s.flush(); err != nil {
		return err
	}
	var got int
	var rerr error
	_, err := s.fill.WriteFill(13+n, func(bufs [][]byte) (int, error) {
		// The channel's slices stay as they are: it sizes packets by them.
		s.iov = append(s.iov[:0], bufs...)
		got, rerr = readAtv(h.f, skipBytes(s.iov, 13), off)
		if got == 0 {
			return 0, nil
		}
		var hdr [13]byte
		binary.BigEndian.PutUint32(hdr[0:], uint32(9+got))
		hdr[4] = typeData
		binary.BigEndian.PutUint32(hdr[5:], id)
		binary.BigEndian.PutUint32(hdr[9:], uint32(got))
		copyTo(bufs, hdr[:])
		return 13 + got, nil
	})
	clear(s.iov)
	if err != nil {
		return err
	}
	if got == 0 {
		if rerr == nil || rerr == io.EOF {
			return s.status(id, StatusEOF, "end of file")
		}
		return s.statusErr(id, rerr)
	}
	return nil
}

// skipBytes returns bufs less their first n bytes, and less any empty
// buffers at the start. It reslices the first buffer left in place.
func skipBytes(bufs [][]byte, n int) [][]byte {
	for len(bufs) > 0 && n >= len(bufs[0]) {
		n -= len(bufs[0])
		bufs = bufs[1:]
	}
	if len(bufs) > 0 && n > 0 {
		bufs[0] = bufs[0][n:]
	}
	return bufs
}

// copyTo copies p to the start of bufs, across them in turn.
func copyTo(bufs [][]byte, p []byte) {
	for _, b := range bufs {
		if len(p) == 0 {
			return
		}
		p = p[copy(b, p):]
	}
}

func (s *server) doWrite(id uint32, r *wire.Reader) error {
	h := s.handleOf(r)
	off := r.Uint64()
	data := r.Bytes()
	if err := s.writeRefusal(r.Err() != nil, h, off); err != nil {
		return s.statusErr(id, err)
	}
	var err error
	if h.append {
		_, err = h.f.Write(data)
	} else {
		_, err = h.f.WriteAt(data, int64(off))
	}
	return s.statusErr(id, err)
}

func (s *server) doOpendir(id uint32, r *wire.Reader) error {
	name := r.String()
	if r.Err() != nil {
		return s.badMessage(id)
	}
	if len(s.handles) >= s.maxHandles {
		return s.statusErr(id, errTooManyHandles)
	}
	rel := s.rel(name)
	f, err := s.root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return s.statusErr(id, err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.IsDir() {
		err = syscall.ENOTDIR
	}
	if err != nil {
		f.Close()
		return s.statusErr(id, err)
	}
	key, err := s.newHandle(&handle{f: f, name: rel, abs: s.abs(name), dir: true})
	if err != nil {
		f.Close()
		return s.statusErr(id, err)
	}
	return s.handleReply(id, key)
}

func (s *server) doReaddir(id uint32, r *wire.Reader) error {
	h := s.handleOf(r)
	if r.Err() != nil {
		return s.badMessage(id)
	}
	if h == nil || !h.dir {
		return s.invalidHandle(id)
	}
	if !h.dots {
		h.dots = true
		h.pending = append(h.pending, ".", "..")
	}
	if err := s.reserve(MaxPacket + 4); err != nil {
		return err
	}
	start := len(s.out)
	s.out = startReply(s.out, typeName)
	s.out = wire.AppendUint32(s.out, id)
	countAt := len(s.out)
	s.out = wire.AppendUint32(s.out, 0)
	count := 0
	now := time.Now()
	for count < maxReaddirNames {
		if len(h.pending) == 0 {
			if h.eof {
				break
			}
			names, err := h.f.Readdirnames(maxReaddirNames)
			if err == io.EOF || (err == nil && len(names) == 0) {
				h.eof = true
				break
			}
			if err != nil && len(names) == 0 {
				if count > 0 {
					break // report it on the next READDIR
				}
				s.out = s.out[:start]
				return s.statusErr(id, err)
			}
			h.pending = names
		}
		name := h.pending[0]
		var rel string
		switch name {
		case ".":
			rel = h.name
		case "..":
			rel = relOf(path.Dir(h.abs))
		default:
			rel = path.Join(h.name, name)
		}
		fi, err := s.root.Lstat(rel)
		if err != nil {
			h.pending = h.pending[1:] // vanished or unreadable: skip
			continue
		}
		a := AttrsFromFileInfo(fi)
		mark := len(s.out)
		s.out = wire.AppendString(s.out, name)
		s.out = s.appendLongname(s.out, name, fi, &a, now)
		s.out = appendAttrs(s.out, &a)
		if len(s.out)-start-4 > MaxPacket {
			s.out = s.out[:mark]
			break
		}
		h.pending = h.pending[1:]
		count++
	}
	if count == 0 {
		s.out = s.out[:start]
		return s.status(id, StatusEOF, "end of file")
	}
	binary.BigEndian.PutUint32(s.out[countAt:], uint32(count))
	s.out = endReply(s.out, start)
	return nil
}

// appendLongname appends an `ls -l` style line as a string.
func (s *server) appendLongname(b []byte, name string, fi fs.FileInfo, a *Attrs, now time.Time) []byte {
	lenAt := len(b)
	b = append(b, 0, 0, 0, 0)
	b = appendModeString(b, a.Mode)
	b = append(b, ' ')
	b = padLeft(b, strconv.FormatUint(nlinkOf(fi), 10), 4)
	b = append(b, ' ')
	u, g := strconv.FormatUint(uint64(a.UID), 10), strconv.FormatUint(uint64(a.GID), 10)
	if a.Flags&AttrUIDGID != 0 {
		u, g = s.userName(a.UID), s.groupName(a.GID)
	}
	b = padRight(b, u, 8)
	b = append(b, ' ')
	b = padRight(b, g, 8)
	b = append(b, ' ')
	b = padLeft(b, strconv.FormatUint(a.Size, 10), 8)
	b = append(b, ' ')
	mt := fi.ModTime()
	if mt.After(now.Add(-182*24*time.Hour)) && !mt.After(now) {
		b = mt.AppendFormat(b, "Jan _2 15:04")
	} else {
		b = mt.AppendFormat(b, "Jan _2  2006")
	}
	b = append(b, ' ')
	b = append(b, name...)
	binary.BigEndian.PutUint32(b[lenAt:], uint32(len(b)-lenAt-4))
	return b
}

func padLeft(b []byte, s string, w int) []byte {
	for i := len(s); i < w; i++ {
		b = append(b, ' ')
	}
	return append(b, s...)
}

func padRight(b []byte, s string, w int) []byte {
	b = append(b, s...)
	for i := len(s); i < w; i++ {
		b = append(b, ' ')
	}
	return b
}

// appendModeString appends the ten-character `ls -l` mode.
func appendModeString(b []byte, mode uint32) []byte {
	t := byte('?')
	switch mode & modeType {
	case modeRegular:
		t = '-'
	case modeDir:
		t = 'd'
	case modeSymlink:
		t = 'l'
	case modeFIFO:
		t = 'p'
	case modeChar:
		t = 'c'
	case modeBlock:
		t = 'b'
	case modeSocket:
		t = 's'
	}
	b = append(b, t)
	const rwx = "rwxrwxrwx"
	var p [9]byte
	for i := range 9 {
		if mode&(1<<(8-i)) != 0 {
			p[i] = rwx[i]
		} else {
			p[i] = '-'
		}
	}
	special := func(bit uint32, i int, set, unset byte) {
		if mode&bit != 0 {
			if p[i] == 'x' {
				p[i] = set
			} else {
				p[i] = unset
			}
		}
	}
	special(0o4000, 2, 's', 'S')
	special(0o2000, 5, 's', 'S')
	special(0o1000, 8, 't', 'T')
	return append(b, p[:]...)
}

func (s *server) userName(uid uint32) string { return orNumber(s.lookupUser(uid), uid) }

func (s *server) groupName(gid uint32) string { return orNumber(s.lookupGroup(gid), gid) }

// lookupUser returns the name of uid, or "" if unknown; answers are
// cached for the session.
func (s *server) lookupUser(uid uint32) string {
	if n, ok := s.users[uid]; ok {
		return n
	}
	n := ""
	if u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10)); err == nil {
		n = u.Username
	}
	if len(s.users) < 4096 {
		s.users[uid] = n
	}
	return n
}

func (s *server) lookupGroup(gid uint32) string {
	if n, ok := s.groups[gid]; ok {
		return n
	}
	n := ""
	if g, err := user.LookupGroupId(strconv.FormatUint(uint64(gid), 10)); err == nil {
		n = g.Name
	}
	if len(s.groups) < 4096 {
		s.groups[gid] = n
	}
	return n
}

func orNumber(n string, id uint32) string {
	if n == "" {
		return strconv.FormatUint(uint64(id), 10)
	}
	return n
}

// setstat applies attributes to a path: size, permissions, times, then
// owner. With nofollow a final symlink is changed itself.
func (s *server) setstat(rel string, a *Attrs, nofollow bool) error {
	if s.cfg.ReadOnly {
		return errReadOnly
	}
	if a.Flags&attrChanges != 0 {
		// The root is refused under any name ("/", "..", a link to it).
		stat := s.root.Stat
		if nofollow {
			stat = s.root.Lstat
		}
		if fi, err := stat(rel); err == nil && os.SameFile(fi, s.rootInfo) {
			return errRootAttrs
		}
	}
	if nofollow {
		fi, err := s.root.Lstat(rel)
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if a.Flags&(AttrSize|AttrPermissions|AttrACModTime) != 0 {
				return &StatusError{Code: StatusOpUnsupported, Message: "cannot change a symlink's size, mode or times"}
			}
			if a.Flags&AttrUIDGID != 0 {
				return s.root.Lchown(rel, int(a.UID), int(a.GID))
			}
			return nil
		}
	}
	if a.Flags&AttrSize != 0 {
		if a.Size > math.MaxInt64 {
			return syscall.EINVAL
		}
		f, err := s.root.OpenFile(rel, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return err
		}
		fi, err := f.Stat()
		if err == nil && os.SameFile(fi, s.rootInfo) {
			err = errRootAttrs
		}
		if err == nil && !fi.Mode().IsRegular() {
			err = errNotRegular
		}
		if err == nil {
			err = f.Truncate(int64(a.Size))
		}
		f.Close()
		if err != nil {
			return err
		}
	}
	if a.Flags&AttrPermissions != 0 {
		if err := s.root.Chmod(rel, permOf(a.Mode)); err != nil {
			return err
		}
	}
	if a.Flags&AttrACModTime != 0 {
		if err := s.root.Chtimes(rel, time.Unix(int64(a.Atime), 0), time.Unix(int64(a.Mtime), 0)); err != nil {
			return err
		}
	}
	if a.Flags&AttrUIDGID != 0 {
		if err := s.root.Chown(rel, int(a.UID), int(a.GID)); err != nil {
			return err
		}
	}
	return nil
}

// attrChanges are the attributes SETSTAT changes; others are ignored.
const attrChanges = AttrSize | AttrUIDGID | AttrPermissions | AttrACModTime

// errRootAttrs refuses a change to the root directory itself: its mode,
// owner and times are the server's, not the client's.
var errRootAttrs = &StatusError{Code: StatusPermissionDenied, Message: "cannot change the root directory"}

func (s *server) fsetstat(h *handle, a *Attrs) error {
	if s.cfg.ReadOnly {
		return errReadOnly
	}
	if a.Flags&attrChanges != 0 {
		// The open file itself: no name to swap.
		fi, err := h.f.Stat()
		if err != nil {
			return err
		}
		if os.SameFile(fi, s.rootInfo) {
			return errRootAttrs
		}
	}
	if a.Flags&AttrSize != 0 {
		if a.Size > math.MaxInt64 {
			return syscall.EINVAL
		}
		if err := h.f.Truncate(int64(a.Size)); err != nil {
			return err
		}
	}
	if a.Flags&AttrPermissions != 0 {
		if err := h.f.Chmod(permOf(a.Mode)); err != nil {
			return err
		}
	}
	if a.Flags&AttrACModTime != 0 {
		if err := futimes(h.f, time.Unix(int64(a.Atime), 0), time.Unix(int64(a.Mtime), 0)); err != nil {
			return err
		}
	}
	if a.Flags&AttrUIDGID != 0 {
		if err := h.f.Chown(int(a.UID), int(a.GID)); err != nil {
			return err
		}
	}
	return nil
}

var errIsDir = &StatusError{Code: StatusFailure, Message: "is a directory"}

// remove unlinks a file (dir false) or removes an empty directory.
func (s *server) remove(rel string, dir bool) error {
	if s.cfg.ReadOnly {
		return errReadOnly
	}
	fi, err := s.root.Lstat(rel)
	if err != nil {
		return err
	}
	if fi.IsDir() != dir {
		if dir {
			return syscall.ENOTDIR
		}
		return errIsDir
	}
	if rel == "." {
		return syscall.EBUSY
	}
	return s.root.Remove(rel)
}

var errExists = &StatusError{Code: StatusFailure, Message: "file exists"}

// rename is SFTP v3's RENAME: it fails if the new name exists. Regular
// files move by link and unlink, which is atomic about that; others
// check first.
func (s *server) rename(oldRel, newRel string) error {
	if s.cfg.ReadOnly {
		return errReadOnly
	}
	fi, err := s.root.Lstat(oldRel)
	if err != nil {
		return err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if err := s.checkLinkMove(oldRel, newRel); err != nil {
			return err
		}
	}
	if fi.Mode().IsRegular() {
		err := s.root.Link(oldRel, newRel)
		if err == nil {
			if err := s.root.Remove(oldRel); err != nil {
				s.root.Remove(newRel)
				return err
			}
			return nil
		}
		if errors.Is(err, fs.ErrExist) {
			return errExists
		}
		// No hard links here (or across devices): fall back.
	}
	if _, err := s.root.Lstat(newRel); err == nil {
		return errExists
	}
	return s.root.Rename(oldRel, newRel)
}

// symlink creates link pointing at target. An absolute target (a path in
// the client's view of the root) is stored relative to the link's
// directory so that it resolves inside the root. The stored target is
// then resolved from the link's directory as the kernel will resolve it
// for any program on the host (following the links it meets), and the
// link is refused if that leaves the root.
func (s *server) symlink(target, link string) error {
	if s.cfg.ReadOnly {
		return errReadOnly
	}
	if target == "" || strings.IndexByte(target, 0) >= 0 {
		return syscall.EINVAL
	}
	linkAbs := s.abs(link)
	if linkAbs == "/" {
		return errExists
	}
	// The directory the link goes in, with its links resolved: a
	// relative target is taken from there, not from the name's parent.
	dir, err := s.resolveDir(path.Dir(linkAbs))
	if err != nil {
		return err
	}
	if path.IsAbs(target) {
		target = relPath(joinAbs(dir), path.Clean(target))
	}
	if _, _, err := s.resolveFrom(dir, target); err != nil {
		return err
	}
	return s.root.Symlink(target, relOf(path.Join(joinAbs(dir), path.Base(linkAbs))))
}

var errLinkEscapes = &StatusError{Code: StatusPermissionDenied, Message: "link target escapes root"}

// resolveDir resolves a clean absolute path in the client's view to the
// components of the directory it names, with every link resolved; all of
// it must exist.
func (s *server) resolveDir(p string) ([]string, error) {
	comps, lexical, err := s.resolveFrom(nil, strings.TrimPrefix(p, "/"))
	if err != nil {
		return nil, err
	}
	if lexical > 0 {
		return nil, syscall.ENOENT
	}
	if len(comps) > 0 {
		fi, err := s.root.Lstat(strings.Join(comps, "/"))
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			return nil, syscall.ENOTDIR
		}
	}
	return comps, nil
}

// resolveFrom resolves the link target t from the directory dir
// (components from the root, with no links in them) as the kernel would:
// component by component, following the links it meets (at most
// maxSymlinkHops), ".." going to the parent of what was reached. An
// absolute link met on the way is followed if it names a place inside
// the root by its host path. It returns the components reached, of which
// the last lexical ones are names that do not exist (or lie under a
// non-directory): from the first of them on the kernel could not walk
// today, and the rest is taken as written. Climbing above the root, or
// an absolute link out of it, is errLinkEscapes.
func (s *server) resolveFrom(dir []string, t string) (comps []string, lexical int, err error) {
	comps = append([]string(nil), dir...)
	rest := splitPath(t)
	hops := 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(comps) == 0 {
				return nil, 0, errLinkEscapes
			}
			comps = comps[:len(comps)-1]
			if lexical > 0 {
				lexical--
			}
			continue
		}
		if lexical > 0 {
			comps = append(comps, c)
			lexical++
			continue
		}
		name := strings.Join(append(comps, c), "/")
		fi, err := s.root.Lstat(name)
		switch {
		case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
			comps = append(comps, c)
			lexical = 1
			continue
		case err != nil:
			return nil, 0, err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			hops++
			if hops > maxSymlinkHops {
				return nil, 0, syscall.ELOOP
			}
			lt, err := s.root.Readlink(name)
			if err != nil {
				return nil, 0, err
			}
			if path.IsAbs(lt) {
				inside, ok := s.hostToClient(lt)
				if !ok {
					return nil, 0, errLinkEscapes
				}
				comps = comps[:0]
				lt = inside
			}
			rest = append(splitPath(lt), rest...)
		case fi.IsDir():
			comps = append(comps, c)
		default:
			// A file: nothing can be walked under it today.
			comps = append(comps, c)
			lexical = 1
		}
	}
	return comps, lexical, nil
}

// checkLinkMove refuses to rename or hard-link a symlink to where its
// relative target would leave the root (it resolves from its new
// directory). Anything else, and a move into a directory that does not
// exist, is left to the operation itself.
func (s *server) checkLinkMove(oldRel, newRel string) error {
	fi, err := s.root.Lstat(oldRel)
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		return nil
	}
	t, err := s.root.Readlink(oldRel)
	if err != nil || path.IsAbs(t) {
		return nil // an absolute link means the same anywhere
	}
	dir, err := s.resolveDir(path.Dir("/" + newRel))
	if err != nil {
		return nil
	}
	_, _, err = s.resolveFrom(dir, t)
	return err
}

// readlink returns the target of the link rel as the client should see
// it: a relative target as stored; an absolute one that names a place
// inside the root by its host path as the path inside the root; an
// absolute one outside the root is refused (PERMISSION_DENIED), as its
// host path is not the client's to see.
func (s *server) readlink(rel string) (string, error) {
	t, err := s.root.Readlink(rel)
	if err != nil || !path.IsAbs(t) {
		return t, err
	}
	if inside, ok := s.hostToClient(t); ok {
		return inside, nil
	}
	return "", errLinkOutside
}

var errLinkOutside = &StatusError{Code: StatusPermissionDenied, Message: "link target is outside the root"}

// hostRoots returns the host path of the root as configured and with its
// links resolved, clean, absolute and with forward slashes: the prefixes
// an absolute link inside the root may carry.
func hostRoots(root string) []string {
	var out []string
	add := func(p string) {
		p = filepath.ToSlash(filepath.Clean(p))
		for _, q := range out {
			if q == p {
				return
			}
		}
		if path.IsAbs(p) {
			out = append(out, p)
		}
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil
	}
	add(abs)
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		add(real)
	}
	return out
}

// hostToClient maps an absolute host path (a link's target) to the
// client's view of it if it lies inside the root. The path is cleaned
// lexically first.
func (s *server) hostToClient(t string) (string, bool) {
	t = path.Clean(t)
	for _, r := range s.hostRoots {
		switch {
		case r == "/":
			return t, true
		case t == r:
			return "/", true
		case strings.HasPrefix(t, r+"/"):
			return t[len(r):], true
		}
	}
	return "", false
}

// joinAbs turns components from the root into a clean absolute path.
func joinAbs(comps []string) string {
	return "/" + strings.Join(comps, "/")
}

// relPath returns target relative to directory dir; both clean and
// absolute.
func relPath(dir, target string) string {
	d, t := splitPath(dir), splitPath(target)
	i := 0
	for i < len(d) && i < len(t) && d[i] == t[i] {
		i++
	}
	var parts []string
	for range d[i:] {
		parts = append(parts, "..")
	}
	parts = append(parts, t[i:]...)
	if len(parts) == 0 {
		return "."
	}
	return strings.Join(parts, "/")
}

// Extensions.

func (s *server) doExtended(id uint32, r *wire.Reader) error {
	name := r.String()
	if r.Err() != nil {
		return s.badMessage(id)
	}
	switch name {
	case extLimits:
		start := len(s.out)
		s.out = startReply(s.out, typeExtendedReply)
		s.out = wire.AppendUint32(s.out, id)
		s.out = wire.AppendUint64(s.out, MaxPacket)
		s.out = wire.AppendUint64(s.out, MaxReadWrite)
		s.out = wire.AppendUint64(s.out, MaxReadWrite)
		s.out = wire.AppendUint64(s.out, uint64(s.maxHandles))
		s.out = endReply(s.out, start)
		return nil
	case extPosixRename:
		oldName, newName := r.String(), r.String()
		if r.Err() != nil {
			return s.badMessage(id)
		}
		if s.cfg.ReadOnly {
			return s.statusErr(id, errReadOnly)
		}
		if err := s.checkLinkMove(s.rel(oldName), s.rel(newName)); err != nil {
			return s.statusErr(id, err)
		}
		return s.statusErr(id, s.root.Rename(s.rel(oldName), s.rel(newName)))
	case extHardlink:
		oldName, newName := r.String(), r.String()
		if r.Err() != nil {
			return s.badMessage(id)
		}
		if s.cfg.ReadOnly {
			return s.statusErr(id, errReadOnly)
		}
		if err := s.checkLinkMove(s.rel(oldName), s.rel(newName)); err != nil {
			return s.statusErr(id, err)
		}
		return s.statusErr(id, s.root.Link(s.rel(oldName), s.rel(newName)))
	case extStatVFS:
		name := r.String()
		if r.Err() != nil {
			return s.badMessage(id)
		}
		f, err := s.root.OpenFile(s.rel(name), os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return s.statusErr(id, err)
		}
		v, err := statvfs(f)
		f.Close()
		return s.statvfsReply(id, &v, err)
	case extFstatVFS:
		h := s.handleOf(r)
		if r.Err() != nil {
			return s.badMessage(id)
		}
		if h == nil {
			return s.invalidHandle(id)
		}
		v, err := statvfs(h.f)
		return s.statvfsReply(id, &v, err)
	case extFsync:
		h := s.handleOf(r)
		if r.Err() != nil {
			return s.badMessage(id)
		}
		if h == nil {
			return s.invalidHandle(id)
		}
		return s.statusErr(id, h.f.Sync())
	case extLsetstat:
		name := r.String()
		a := parseAttrs(r)
		if r.Err() != nil {
			return s.badMessage(id)
		}
		return s.statusErr(id, s.setstat(s.rel(name), &a, true))
	case extExpandPath:
		p := r.String()
		if r.Err() != nil {
			return s.badMessage(id)
		}
		switch {
		case p == "~":
			p = s.home
		case strings.HasPrefix(p, "~/"):
			p = s.home + p[1:]
		case strings.HasPrefix(p, "~"):
			return s.status(id, StatusNoSuchFile, "unknown user")
		}
		rp, err := s.realpath(p)
		if err != nil {
			return s.statusErr(id, err)
		}
		return s.nameReply(id, rp)
	case extHomeDir:
		_ = r.Bytes() // the user: there is one home
		if r.Err() != nil {
			return s.badMessage(id)
		}
		return s.nameReply(id, s.home)
	case extUsersGroups:
		return s.doUsersGroups(id, r)
	case extHashRange:
		return s.doHashRange(id, r)
	case extCopyData:
		return s.doCopyData(id, r)
	}
	return s.status(id, StatusOpUnsupported, "unsupported extension")
}

func (s *server) statvfsReply(id uint32, v *[11]uint64, err error) error {
	if err != nil {
		return s.statusErr(id, err)
	}
	start := len(s.out)
	s.out = startReply(s.out, typeExtendedReply)
	s.out = wire.AppendUint32(s.out, id)
	for _, x := range v {
		s.out = wire.AppendUint64(s.out, x)
	}
	s.out = endReply(s.out, start)
	return nil
}

func (s *server) doUsersGroups(id uint32, r *wire.Reader) error {
	uids, gids := r.Bytes(), r.Bytes()
	if r.Err() != nil || len(uids)%4 != 0 || len(gids)%4 != 0 {
		return s.badMessage(id)
	}
	// Build the reply aside: its size depends on the names.
	var names [2][]byte
	for i, ids := range [2][]byte{uids, gids} {
		var b []byte
		for j := 0; j+4 <= len(ids); j += 4 {
			x := binary.BigEndian.Uint32(ids[j:])
			var n string
			if i == 0 {
				n = s.lookupUser(x)
			} else {
				n = s.lookupGroup(x)
			}
			b = wire.AppendString(b, n)
			if len(b) > MaxPacket {
				return s.status(id, StatusFailure, "too many ids")
			}
		}
		names[i] = b
	}
	if len(names[0])+len(names[1])+32 > MaxPacket {
		return s.status(id, StatusFailure, "too many ids")
	}
	if err := s.reserve(len(names[0]) + len(names[1]) + 32); err != nil {
		return err
	}
	start := len(s.out)
	s.out = startReply(s.out, typeExtendedReply)
	s.out = wire.AppendUint32(s.out, id)
	s.out = wire.AppendBytes(s.out, names[0])
	s.out = wire.AppendBytes(s.out, names[1])
	s.out = endReply(s.out, start)
	return nil
}

// doHashRange is hash-range@rsftp: string path, uint64 offset, uint64
// length, string algorithm ("sha256"); the reply is an EXTENDED_REPLY
// with string algorithm, uint64 bytes hashed (fewer than asked at end of
// file or past the bound, maxHashRange: the client asks again from
// there) and string digest. At most len(hashSlots) requests of all
// sessions hash at once; the others wait their turn.
func (s *server) doHashRange(id uint32, r *wire.Reader) error {
	name := r.String()
	off := r.Uint64()
	length := r.Uint64()
	alg := r.String()
	if r.Err() != nil {
		return s.badMessage(id)
	}
	if alg != "sha256" {
		return s.status(id, StatusOpUnsupported, "unsupported hash algorithm")
	}
	if off > math.MaxInt64 {
		return s.status(id, StatusFailure, "offset too large")
	}
	if length > uint64(s.maxHash) {
		length = uint64(s.maxHash)
	}
	f, err := s.root.OpenFile(s.rel(name), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return s.statusErr(id, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = errNotRegular
	}
	if err != nil {
		return s.statusErr(id, err)
	}
	// Hashing costs the server a core while the request costs the client
	// nothing: the sessions of the process share a few slots.
	select {
	case s.hashGate <- struct{}{}:
	default:
		if s.cfg.hashWait != nil {
			s.cfg.hashWait()
		}
		select {
		case s.hashGate <- struct{}{}:
		case <-s.ctx.Done():
			return s.ctx.Err()
		}
	}
	defer func() { <-s.hashGate }()
	hbuf := hashPool.get()
	defer hashPool.put(hbuf)
	h := sha256.New()
	var done uint64
	for done < length {
		if s.ctx.Err() != nil {
			return s.ctx.Err()
		}
		want := uint64(len(hbuf))
		if length-done < want {
			want = length - done
		}
		pos := uint64(off) + done
		if pos > math.MaxInt64 {
			break
		}
		n, err := f.ReadAt(hbuf[:want], int64(pos))
		h.Write(hbuf[:n])
		done += uint64(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			return s.statusErr(id, err)
		}
		if n == 0 {
			break
		}
	}
	start := len(s.out)
	s.out = startReply(s.out, typeExtendedReply)
	s.out = wire.AppendUint32(s.out, id)
	s.out = wire.AppendString(s.out, "sha256")
	s.out = wire.AppendUint64(s.out, done)
	s.out = wire.AppendBytes(s.out, h.Sum(nil))
	s.out = endReply(s.out, start)
	return nil
}

// doCopyData is copy-data (draft-ietf-secsh-filexfer-extensions): string
// read handle, uint64 read offset, uint64 length (0: to end of file),
// string write handle, uint64 write offset.
func (s *server) doCopyData(id uint32, r *wire.Reader) error {
	src := s.handleOf(r)
	roff := r.Uint64()
	length := r.Uint64()
	dst := s.handleOf(r)
	woff := r.Uint64()
	if r.Err() != nil {
		return s.badMessage(id)
	}
	if src == nil || dst == nil || src.dir || dst.dir {
		return s.invalidHandle(id)
	}
	if s.cfg.ReadOnly {
		return s.statusErr(id, errReadOnly)
	}
	if roff > math.MaxInt64 || woff > math.MaxInt64 || length > math.MaxInt64 {
		return s.status(id, StatusFailure, "offset too large")
	}
	if src == dst {
		// Overlapping ranges of one file would copy copied data.
		end := uint64(math.MaxInt64)
		if length != 0 {
			end = roff + length
		}
		if woff < end && roff < woff+max(length, 1) || length == 0 && woff >= roff {
			return s.status(id, StatusFailure, "overlapping copy")
		}
	}
	hbuf := hashPool.get()
	defer hashPool.put(hbuf)
	var done uint64
	for length == 0 || done < length {
		if s.ctx.Err() != nil {
			return s.ctx.Err()
		}
		want := uint64(len(hbuf))
		if length != 0 && length-done < want {
			want = length - done
		}
		if roff+done > math.MaxInt64-want || woff+done > math.MaxInt64-want {
			return s.status(id, StatusFailure, "offset too large")
		}
		n, rerr := src.f.ReadAt(hbuf[:want], int64(roff+done))
		if n > 0 {
			var werr error
			if dst.append {
				_, werr = dst.f.Write(hbuf[:n])
			} else {
				_, werr = dst.f.WriteAt(hbuf[:n], int64(woff+done))
			}
			if werr != nil {
				return s.statusErr(id, werr)
			}
			done += uint64(n)
		}
		if rerr == io.EOF || (rerr == nil && n == 0) {
			break
		}
		if rerr != nil {
			return s.statusErr(id, rerr)
		}
	}
	return s.status(id, StatusOK, "")
}

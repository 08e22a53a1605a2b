package sftp

// Whole-file and recursive transfers for the tool: get and put with
// resume that verifies what is already there, and recursive get that
// never trusts the server's names.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// TransferOptions control Download and Upload.
type TransferOptions struct {
	// Recursive transfers directories and what they contain: regular
	// files and directories; other types (symbolic links, devices) are
	// skipped with a warning.
	Recursive bool
	// PreserveTimesAndMode copies permission bits and access and
	// modification times to the destination.
	PreserveTimesAndMode bool
	// Resume appends to a destination file shorter than the source after
	// checking that the bytes it already has match the source: by
	// SHA-256 with hash-range@rsftp when the server offers it, else by
	// comparing them whole up to 64 MiB and by samples beyond (with a
	// warning). A mismatch is an error and the destination is left alone.
	Resume bool
	// Progress, if set, is called as data moves and with warnings.
	Progress func(ev ProgressEvent)
	// Throttle, if set, is told of every n bytes of file data as they
	// move, in order, by the goroutine that moves them; it may block to
	// hold a rate (a token bucket: scp's -l), which holds the transfer
	// back, and its error ends the transfer. Downloads call it as data
	// arrives (READs already in flight are not recalled, as with
	// OpenSSH's sftp); uploads before each WRITE for the data of the one
	// before.
	Throttle func(ctx context.Context, n int) error
	// Skip, if set, makes the transfer go on after a file or directory
	// inside a recursive transfer that cannot be read or written: Skip is
	// told of its path (the source's) and the error, and the transfer
	// continues with the next entry, as scp -r and OpenSSH's sftp do.
	// The caller decides how the whole ends (scp exits 1). An
	// interruption (ctx), a client that stopped working or a failed
	// Throttle still end the transfer at once.
	Skip func(path string, err error)
	// FollowLinks follows symbolic links inside a recursive transfer, as
	// scp does, instead of skipping them with a warning: a link to a file
	// is copied as the file, a link to a directory as the directory. A
	// link to a directory on its own path (a loop) is an error for that
	// link: detected by device and inode on upload (os.SameFile), by the
	// server's REALPATH on download.
	FollowLinks bool
	// Attrs are remote's attributes as the caller read them with Stat
	// just before: for Download the source's, for Upload the target's (a
	// zero Attrs when it does not exist). The transfer then does not ask
	// the server for them again (a round trip less; issue 17).
	Attrs *Attrs
	// Concurrency is how many regular files of a recursive transfer
	// move at once, over the one session (issue 17: a small file costs
	// round trips, not bandwidth); 0 is DefaultConcurrency, 1 one at a
	// time. Directories are walked in order; the files in each go
	// together, and a directory's times (PreserveTimesAndMode) are set
	// once its files are done. Progress, Skip and Throttle are then
	// called one at a time, but the events of different files
	// interleave. After an error that ends the transfer no other file
	// starts; those under way finish first.
	Concurrency int
	// Streams is how many SFTP sessions of the connection a large upload
	// may spread over, writing byte ranges of the file in place from each
	// (issue 17: a server that grants each session a small window, as
	// sshd's 2 MiB, bounds one session to that window per round trip).
	// It needs a client made with WithStreams (rsftp.Client.SFTP's);
	// sessions the server refuses are done without. 0 is automatic:
	// for an upload of 32 MiB or more to a server that grants a session
	// less than 16 MiB and whose OPEN took 5 ms or more (a near server's
	// one session is not bound by its window), as many as make 32 MiB of
	// its window in flight, up to DefaultStreams (10 for sshd's 2 MiB);
	// 1 is one session.
	// What a failed upload reports as written is the prefix every byte
	// of which the server acknowledged, and the file is cut back to it,
	// as over one session.
	Streams int

	tree *tree // set for the files of a recursive transfer (forTree)
}

// DefaultConcurrency is TransferOptions.Concurrency's default.
const DefaultConcurrency = 64

// tree is what the files of a recursive transfer share while they move
// at once.
type tree struct {
	sem chan struct{} // one token per file under way
}

// forTree returns opt for a recursive transfer: files at once, with the
// callbacks serialized.
func (opt TransferOptions) forTree() *TransferOptions {
	n := opt.Concurrency
	if n <= 0 {
		n = DefaultConcurrency
	}
	o := opt
	if n == 1 {
		return &o
	}
	o.tree = &tree{sem: make(chan struct{}, n)}
	var mu, tmu sync.Mutex
	if f := opt.Progress; f != nil {
		o.Progress = func(ev ProgressEvent) {
			mu.Lock()
			defer mu.Unlock()
			f(ev)
		}
	}
	if f := opt.Skip; f != nil {
		o.Skip = func(p string, err error) {
			mu.Lock()
			defer mu.Unlock()
			f(p, err)
		}
	}
	if f := opt.Throttle; f != nil {
		o.Throttle = func(ctx context.Context, n int) error {
			tmu.Lock()
			defer tmu.Unlock()
			return f(ctx, n)
		}
	}
	return &o
}

// files runs the file transfers of one directory at once (each holding a
// token of the tree's), and keeps the first error that ends the
// transfer; the caller then starts no other and waits for those under
// way, as a transfer one file at a time would have finished the files
// before the failure.
type files struct {
	c   *Client
	opt *TransferOptions
	ctx context.Context
	wg  sync.WaitGroup
	mu  sync.Mutex
	err error
}

func (c *Client) newFiles(ctx context.Context, opt *TransferOptions) *files {
	return &files{c: c, opt: opt, ctx: ctx}
}

// do runs fn, the transfer of the file at p (the source's path), when a
// token is free; without a tree, at once and in order. Its error goes to
// Skip where it may, or ends the transfer.
func (g *files) do(p string, fn func(ctx context.Context) error) {
	if g.opt.tree == nil {
		if err := g.c.skip(g.ctx, g.opt, p, fn(g.ctx)); err != nil {
			g.fail(err)
		}
		return
	}
	select {
	case g.opt.tree.sem <- struct{}{}:
	case <-g.ctx.Done():
		g.fail(interrupted(g.ctx))
		return
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer func() { <-g.opt.tree.sem }()
		if err := g.c.skip(g.ctx, g.opt, p, fn(g.ctx)); err != nil {
			g.fail(err)
		}
	}()
}

func (g *files) fail(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.err == nil {
		g.err = err
	}
}

// failed reports the error that ends the transfer, if any yet.
func (g *files) failed() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}

// wait waits for the files under way and returns the first error.
func (g *files) wait() error {
	g.wg.Wait()
	return g.failed()
}

// maxDepth bounds the nesting of a recursive transfer (a backstop for
// loops that the checks cannot see, such as a server whose REALPATH does
// not resolve links).
const maxDepth = 256

// fatal reports whether err must end a transfer even when Skip is set:
// the context ended, the client stopped, or err is an interruption.
func (c *Client) fatal(ctx context.Context, err error) bool {
	return ctx.Err() != nil || c.Err() != nil || errors.Is(err, ErrInterrupted) ||
		errors.Is(err, ErrClientClosed) || errors.Is(err, errThrottle)
}

// errThrottle marks an error of Throttle, which always ends a transfer.
var errThrottle = errors.New("sftp: throttle")

type throttleError struct{ err error }

func (e *throttleError) Error() string { return e.err.Error() }
func (e *throttleError) Unwrap() []error {
	return []error{e.err, errThrottle}
}

func (o *TransferOptions) throttle(ctx context.Context, n int) error {
	if o.Throttle == nil || n <= 0 {
		return nil
	}
	if err := o.Throttle(ctx, n); err != nil {
		if ctx.Err() != nil {
			return interrupted(ctx)
		}
		return &throttleError{err}
	}
	return nil
}

// skip hands an entry's error to Skip when it may be skipped, and then
// returns nil; otherwise it returns err.
func (c *Client) skip(ctx context.Context, opt *TransferOptions, p string, err error) error {
	if err == nil || opt.Skip == nil || c.fatal(ctx, err) {
		return err
	}
	opt.Skip(p, err)
	return nil
}

// ProgressEvent reports a transfer's progress, or a warning.
type ProgressEvent struct {
	Path     string // the source path
	Done     int64  // bytes of the file transferred so far, including resumed ones
	Total    int64  // the file's size, -1 if unknown
	Finished bool   // the file is complete
	Warning  string // when set, a warning about Path instead of progress
}

// PartialError reports a file transfer that failed after Done bytes of
// the source reached the destination contiguously from its start (no
// holes below Done): a transfer with Resume continues from there. A
// transfer whose context ended has an Err that matches ErrInterrupted
// (and the context's error); a download's destination then holds exactly
// the Done bytes, and an upload's at least those (WRITEs still in flight
// may land in order after them if the link comes back).
type PartialError struct {
	Op   string // "download" or "upload"
	Src  string
	Dst  string
	Done int64
	Err  error
}

func (e *PartialError) Error() string {
	return fmt.Sprintf("%s %s: %v (the first %d bytes are safely in %s; resume to continue)", e.Op, e.Src, e.Err, e.Done, e.Dst)
}

func (e *PartialError) Unwrap() error { return e.Err }

// resumeTailCheck is how much of an existing prefix is compared when the
// server cannot hash it.
const resumeTailCheck = 1 << 20

func (o *TransferOptions) report(ev ProgressEvent) {
	if o.Progress != nil {
		o.Progress(ev)
	}
}

func (o *TransferOptions) warn(p, format string, args ...any) {
	o.report(ProgressEvent{Path: p, Total: -1, Warning: fmt.Sprintf(format, args...)})
}

// ValidName reports whether a name from a directory listing may be used
// as one local path component: not empty, ".", "..", and without '/',
// NUL or (on the local system) any other separator or special form.
func ValidName(name string) bool {
	if name == "" || name == "." || name == ".." {
		return false
	}
	if strings.ContainsAny(name, "/\x00") || strings.ContainsRune(name, filepath.Separator) {
		return false
	}
	return filepath.IsLocal(name) && filepath.Base(name) == name
}

// Download copies remote to local. If local is an existing directory the
// copy goes inside it under remote's base name. A directory needs
// Recursive.
//
// Every wait honours ctx: when it ends, Download returns promptly, even
// on a link that stalled, with an error matching ErrInterrupted; a file
// under way is cut back to the bytes received in order (a *PartialError
// says how many).
func (c *Client) Download(ctx context.Context, remote, local string, opt TransferOptions) error {
	if ctx.Err() != nil {
		return interrupted(ctx)
	}
	a := opt.Attrs
	if a == nil {
		var err error
		if a, err = c.stat(ctx, remote); err != nil {
			return err
		}
	}
	if st, err := os.Stat(local); err == nil && st.IsDir() {
		if base := path.Base(remote); ValidName(base) {
			local = filepath.Join(local, base)
		} else if !a.FileMode().IsDir() {
			return fmt.Errorf("download %s: cannot name a file after it in %s", remote, local)
		}
	}
	switch {
	case a.FileMode().IsDir():
		if !opt.Recursive {
			return fmt.Errorf("download %s: is a directory (recursive transfer not requested)", remote)
		}
		var anc []string
		if opt.FollowLinks {
			real, err := c.RealPath(remote)
			if err != nil {
				return err
			}
			anc = []string{real}
		}
		return c.downloadDir(ctx, remote, local, a, opt.forTree(), 0, anc)
	case a.FileMode().IsRegular():
		return c.downloadFile(ctx, remote, local, a, &opt)
	}
	return fmt.Errorf("download %s: not a regular file or directory", remote)
}

// downloadDir downloads the directory remote, depth levels below the
// top, into local. With FollowLinks, anc holds the server's REALPATH of
// each directory from the top to remote.
func (c *Client) downloadDir(ctx context.Context, remote, local string, a *Attrs, opt *TransferOptions, depth int, anc []string) error {
	if ctx.Err() != nil {
		return interrupted(ctx)
	}
	if depth > maxDepth {
		return fmt.Errorf("download %s: more than %d levels of directories", remote, maxDepth)
	}
	ents, err := c.readDir(ctx, remote)
	if err != nil {
		return err
	}
	// Check every name before creating anything for this directory.
	for _, e := range ents {
		if !ValidName(e.Name) {
			return fmt.Errorf("download %s: server sent the name %q in a directory listing, which is not a single path component; refusing it", remote, e.Name)
		}
	}
	perm := fs.FileMode(0o755)
	if a.Flags&AttrPermissions != 0 {
		perm = a.FileMode().Perm()
	}
	// Owner access is needed while filling it; the umask applies.
	if err := os.Mkdir(local, perm|0o700); err != nil {
		if st, serr := os.Stat(local); serr != nil || !st.IsDir() {
			return err
		}
	}
	// Regular files (as listed, links not followed) go several at once;
	// the rest in order, here.
	g := c.newFiles(ctx, opt)
	for _, e := range ents {
		rp, lp := path.Join(remote, e.Name), filepath.Join(local, e.Name)
		ea := e.Attrs
		if ea.Flags&AttrPermissions != 0 && ea.FileMode().IsRegular() {
			g.do(rp, func(ctx context.Context) error { return c.downloadFile(ctx, rp, lp, &ea, opt) })
		} else if err := c.skip(g.ctx, opt, rp, c.downloadEntry(g.ctx, rp, lp, &ea, opt, depth, anc)); err != nil {
			g.fail(err)
		}
		if g.failed() != nil {
			break
		}
	}
	if err := g.wait(); err != nil {
		return err
	}
	if opt.PreserveTimesAndMode {
		return setLocal(local, a)
	}
	return nil
}

// downloadEntry downloads one entry of a directory listing (ea are its
// attributes as listed).
func (c *Client) downloadEntry(ctx context.Context, rp, lp string, ea *Attrs, opt *TransferOptions, depth int, anc []string) error {
	var err error
	if ea.Flags&AttrPermissions == 0 {
		if ea, err = c.lstat(ctx, rp); err != nil {
			return err
		}
	}
	var sub []string
	if opt.FollowLinks {
		if ea, sub, err = c.followLink(ctx, "download", rp, ea, anc); err != nil {
			return err
		}
	}
	switch m := ea.FileMode(); {
	case m.IsDir():
		return c.downloadDir(ctx, rp, lp, ea, opt, depth+1, sub)
	case m.IsRegular():
		return c.downloadFile(ctx, rp, lp, ea, opt)
	default:
		opt.warn(rp, "skipping %s: %s, not a regular file or directory", rp, fileTypeName(m))
	}
	return nil
}

func setLocal(local string, a *Attrs) error {
	if a.Flags&AttrPermissions != 0 {
		if err := os.Chmod(local, a.FileMode().Perm()); err != nil {
			return err
		}
	}
	if a.Flags&AttrACModTime != 0 {
		if err := os.Chtimes(local, time.Unix(int64(a.Atime), 0), time.Unix(int64(a.Mtime), 0)); err != nil {
			return err
		}
	}
	return nil
}

// progress counts a file's bytes as they move and reports them.
type progress struct {
	opt  *TransferOptions
	p    string
	done int64
	tot  int64
}

func (pg *progress) add(n int) {
	pg.done += int64(n)
	if n > 0 {
		pg.opt.report(ProgressEvent{Path: pg.p, Done: pg.done, Total: pg.tot})
	}
}

func localHash(f *os.File, off, n int64) ([]byte, error) {
	h := sha256.New()
	m, err := io.Copy(h, io.NewSectionReader(f, off, n))
	if err != nil {
		return nil, err
	}
	if m != n {
		return nil, io.ErrUnexpectedEOF
	}
	return h.Sum(nil), nil
}

// prefixMatches checks that the first n bytes of the local file and of
// the remote one agree: by hash-range@rsftp when offered, else by
// comparing the last up-to-1-MiB of them (with a warning).
func (c *Client) prefixMatches(ctx context.Context, rf *File, lf *os.File, n int64, opt *TransferOptions, src string) (bool, error) {
	if n == 0 {
		return true, nil
	}
	if c.HasExtension(extHashRange) {
		// The server may hash less than asked (its per-request bound):
		// compare range by range.
		for pos := int64(0); pos < n; {
			rd, hashed, err := c.hashRange(ctx, rf.Name(), uint64(pos), uint64(n-pos))
			if err != nil {
				return false, err
			}
			if hashed == 0 {
				return false, nil // the remote file is shorter
			}
			ld, err := localHash(lf, pos, int64(hashed))
			if err != nil {
				return false, err
			}
			if !bytes.Equal(rd, ld) {
				return false, nil
			}
			pos += int64(hashed)
		}
		return true, nil
	}
	// Without the hash extension the bytes must come over the link:
	// compare all of a prefix up to fullCheckLimit, and otherwise the
	// first and last MiB and blocks spread over the rest.
	if n <= fullCheckLimit {
		return sameRange(ctx, rf, lf, 0, n)
	}
	opt.warn(src, "resume: the server cannot hash (no %s); compared the first and last %d bytes and %d sampled blocks of the %d bytes already transferred", extHashRange, resumeTailCheck, resumeSamples, n)
	ranges := [][2]int64{{0, resumeTailCheck}, {n - resumeTailCheck, resumeTailCheck}}
	for i := int64(1); i <= resumeSamples; i++ {
		ranges = append(ranges, [2]int64{n * i / (resumeSamples + 1), resumeSampleLen})
	}
	for _, r := range ranges {
		ok, err := sameRange(ctx, rf, lf, r[0], min(r[1], n-r[0]))
		if err != nil || !ok {
			return ok, err
		}
	}
	return true, nil
}

// Resume checks without hash-range@rsftp: prefixes up to fullCheckLimit
// are compared whole; longer ones by samples.
const (
	fullCheckLimit  = 64 << 20
	resumeSamples   = 16
	resumeSampleLen = 64 << 10
)

// sameRange compares n bytes at off of the remote and the local file.
func sameRange(ctx context.Context, rf *File, lf *os.File, off, n int64) (bool, error) {
	const chunk = 1 << 20
	rb := make([]byte, min(n, chunk))
	lb := make([]byte, min(n, chunk))
	for n > 0 {
		k := min(n, chunk)
		if _, err := rf.readAt(ctx, rb[:k], off); err != nil {
			if errors.Is(err, io.EOF) {
				return false, nil // the remote file is shorter
			}
			return false, err
		}
		if _, err := lf.ReadAt(lb[:k], off); err != nil {
			if errors.Is(err, io.EOF) {
				return false, nil
			}
			return false, err
		}
		if !bytes.Equal(rb[:k], lb[:k]) {
			return false, nil
		}
		off += k
		n -= k
	}
	return true, nil
}

func (c *Client) downloadFile(ctx context.Context, remote, local string, a *Attrs, opt *TransferOptions) error {
	if ctx.Err() != nil {
		return interrupted(ctx)
	}
	rf, err := c.openFile(ctx, remote, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer rf.closeUnwaited(ctx)
	total := int64(-1)
	if a.Flags&AttrSize != 0 {
		total = int64(a.Size)
	}
	mode := fs.FileMode(0o666)
	if a.Flags&AttrPermissions != 0 {
		mode = a.FileMode().Perm()
	}

	var start int64
	var lf *os.File
	if opt.Resume {
		if st, err := os.Stat(local); err == nil && st.Mode().IsRegular() {
			lf, err = os.OpenFile(local, os.O_RDWR, 0)
			if err != nil {
				return err
			}
			defer lf.Close()
			start = st.Size()
			if total >= 0 && start > total {
				return fmt.Errorf("resume %s: local file %s is larger (%d bytes) than the remote (%d bytes); not appending", remote, local, start, total)
			}
			ok, err := c.prefixMatches(ctx, rf, lf, start, opt, remote)
			if err != nil {
				return fmt.Errorf("resume %s: checking the local file: %w", remote, err)
			}
			if !ok {
				return fmt.Errorf("resume: local file differs from the remote in its first %d bytes; not appending (%s)", start, local)
			}
			if _, err := lf.Seek(start, io.SeekStart); err != nil {
				return err
			}
			if _, err := rf.Seek(start, io.SeekStart); err != nil {
				return err
			}
		}
	}
	if lf == nil {
		lf, err = os.OpenFile(local, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode|0o200)
		if err != nil {
			return err
		}
		defer lf.Close()
	}
	pw := &progress{opt: opt, p: remote, done: start, tot: total}
	// Remote and local offsets are the same (both start at start).
	// The size just read is the pipeline's hint: no FSTAT.
	hint := int64(-1)
	if total >= 0 {
		hint = total
	}
	if _, err := rf.downloadTo(ctx, lf, 0, hint, func(n int) error {
		if ctx.Err() != nil {
			return interrupted(ctx)
		}
		pw.add(n)
		return opt.throttle(ctx, n)
	}); err != nil {
		// Data may have landed past the first gap (downloadTo): cut it,
		// so that the file is a true prefix for a resume.
		if terr := lf.Truncate(pw.done); terr != nil {
			err = fmt.Errorf("%w (and truncating %s to the %d bytes received in order: %v)", err, local, pw.done, terr)
		}
		return &PartialError{Op: "download", Src: remote, Dst: local, Done: pw.done, Err: err}
	}
	if err := lf.Close(); err != nil {
		return err
	}
	if opt.PreserveTimesAndMode {
		if err := setLocal(local, a); err != nil {
			return err
		}
	}
	opt.report(ProgressEvent{Path: remote, Done: pw.done, Total: total, Finished: true})
	return nil
}

// Upload copies local to remote. If remote is an existing directory the
// copy goes inside it under local's base name. A directory needs
// Recursive. On a failed file the error says how many bytes are safely
// on the server (Resume continues from there). As with Download, every
// wait honours ctx.
func (c *Client) Upload(ctx context.Context, local, remote string, opt TransferOptions) error {
	if ctx.Err() != nil {
		return interrupted(ctx)
	}
	st, err := os.Stat(local)
	if err != nil {
		return err
	}
	a := opt.Attrs
	if a == nil {
		var err error
		if a, err = c.stat(ctx, remote); err != nil {
			a = &Attrs{}
		}
	}
	if a.FileMode().IsDir() {
		if base := filepath.Base(local); ValidName(base) {
			remote = path.Join(remote, base)
		} else if !st.IsDir() {
			return fmt.Errorf("upload %s: cannot name a file after it in %s", local, remote)
		}
	}
	switch {
	case st.IsDir():
		if !opt.Recursive {
			return fmt.Errorf("upload %s: is a directory (recursive transfer not requested)", local)
		}
		return c.uploadDir(ctx, local, remote, st, opt.forTree(), []fs.FileInfo{st})
	case st.Mode().IsRegular():
		return c.uploadFile(ctx, local, remote, st, &opt)
	}
	return fmt.Errorf("upload %s: not a regular file or directory", local)
}

// fileTypeName names a file type for a message.
func fileTypeName(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	}
	return "of type " + m.Type().String()
}

// pathCause is the error inside a *fs.PathError (the operation and path
// are said already where it is used).
func pathCause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// followLink is FollowLinks for an entry p of a remote directory whose
// ancestors' real paths are anc: the attributes of what p leads to and,
// for a directory, the real paths of its ancestors and itself. A link is
// followed with STAT and its directory's real path asked of the server
// (REALPATH resolves links); a plain directory's is its parent's plus
// its name. A directory already on the path is a loop.
func (c *Client) followLink(ctx context.Context, op, p string, a *Attrs, anc []string) (*Attrs, []string, error) {
	var real string
	if a.FileMode()&fs.ModeSymlink != 0 {
		var err error
		if a, err = c.stat(ctx, p); err != nil {
			return nil, nil, fmt.Errorf("%s %s: following the symbolic link: %w", op, p, pathCause(err))
		}
		if !a.FileMode().IsDir() {
			return a, nil, nil
		}
		if real, err = c.RealPath(p); err != nil {
			return nil, nil, err
		}
	} else if !a.FileMode().IsDir() || len(anc) == 0 {
		return a, nil, nil
	} else {
		real = path.Join(anc[len(anc)-1], path.Base(p))
	}
	if slices.Contains(anc, real) {
		return nil, nil, fmt.Errorf("%s %s: symbolic link loop: it leads back to %s, a directory on its own path", op, p, real)
	}
	return a, append(slices.Clip(anc), real), nil
}

// uploadDir uploads the directory local to remote; anc are the
// directories from the top to local (for FollowLinks' loop check, and
// the depth).
func (c *Client) uploadDir(ctx context.Context, local, remote string, st fs.FileInfo, opt *TransferOptions, anc []fs.FileInfo) error {
	if ctx.Err() != nil {
		return interrupted(ctx)
	}
	if len(anc) > maxDepth {
		return fmt.Errorf("upload %s: more than %d levels of directories", local, maxDepth)
	}
	ents, err := os.ReadDir(local)
	if err != nil {
		return err
	}
	if err := c.mkdir(ctx, remote, st.Mode().Perm()|0o700); err != nil {
		if a, serr := c.stat(ctx, remote); serr != nil || !a.FileMode().IsDir() {
			return err
		}
	}
	// Regular files (links not followed) go several at once; the rest in
	// order, here.
	g := c.newFiles(ctx, opt)
	for _, e := range ents {
		lp, rp := filepath.Join(local, e.Name()), path.Join(remote, e.Name())
		if e.Type().IsRegular() {
			g.do(lp, func(ctx context.Context) error { return c.uploadEntry(ctx, e, lp, rp, opt, anc) })
		} else if err := c.skip(g.ctx, opt, lp, c.uploadEntry(g.ctx, e, lp, rp, opt, anc)); err != nil {
			g.fail(err)
		}
		if g.failed() != nil {
			break
		}
	}
	if err := g.wait(); err != nil {
		return err
	}
	if opt.PreserveTimesAndMode {
		a := AttrsFromFileInfo(st)
		a.Flags = AttrPermissions | AttrACModTime
		a.Mode &^= modeType
		return c.setstat(ctx, remote, &a)
	}
	return nil
}

// uploadEntry uploads one entry of a local directory.
func (c *Client) uploadEntry(ctx context.Context, e fs.DirEntry, lp, rp string, opt *TransferOptions, anc []fs.FileInfo) error {
	info, err := e.Info()
	if err != nil {
		return err
	}
	if opt.FollowLinks {
		if info.Mode()&fs.ModeSymlink != 0 {
			if info, err = os.Stat(lp); err != nil {
				return fmt.Errorf("upload %s: following the symbolic link: %w", lp, pathCause(err))
			}
		}
		// A directory reached through a link further up may be on its
		// own path too, link or not.
		if info.IsDir() {
			for i, a := range anc {
				if os.SameFile(a, info) {
					top := filepath.Dir(lp)
					for range len(anc) - 1 - i {
						top = filepath.Dir(top)
					}
					return fmt.Errorf("upload %s: symbolic link loop: it leads back to %s, a directory on its own path", lp, top)
				}
			}
		}
	}
	switch m := info.Mode(); {
	case m.IsDir():
		return c.uploadDir(ctx, lp, rp, info, opt, append(slices.Clip(anc), info))
	case m.IsRegular():
		return c.uploadFile(ctx, lp, rp, info, opt)
	default:
		opt.warn(lp, "skipping %s: %s, not a regular file or directory", lp, fileTypeName(m))
	}
	return nil
}

func (c *Client) uploadFile(ctx context.Context, local, remote string, st fs.FileInfo, opt *TransferOptions) error {
	if ctx.Err() != nil {
		return interrupted(ctx)
	}
	lf, err := os.Open(local)
	if err != nil {
		return err
	}
	defer lf.Close()
	total := st.Size()

	var start int64
	var rf *File
	// openRTT is how long the OPEN of the remote file took: at least a
	// round trip, which tells a near server from a distant one.
	var openRTT time.Duration
	if opt.Resume {
		if a, err := c.stat(ctx, remote); err == nil && a.FileMode().IsRegular() && a.Flags&AttrSize != 0 {
			start = int64(a.Size)
			if start > total {
				return fmt.Errorf("resume %s: remote file %s is larger (%d bytes) than the local (%d bytes); not appending", local, remote, start, total)
			}
			t0 := time.Now()
			if rf, err = c.openFile(ctx, remote, os.O_RDWR, 0); err != nil {
				return err
			}
			openRTT = time.Since(t0)
			defer rf.close(ctx)
			ok, err := c.prefixMatches(ctx, rf, lf, start, opt, local)
			if err != nil {
				return fmt.Errorf("resume %s: checking the remote file: %w", local, err)
			}
			if !ok {
				return fmt.Errorf("resume: remote file differs from the local in its first %d bytes; not appending (%s)", start, remote)
			}
			if _, err := rf.Seek(start, io.SeekStart); err != nil {
				return err
			}
			if _, err := lf.Seek(start, io.SeekStart); err != nil {
				return err
			}
		}
	}
	if rf == nil {
		t0 := time.Now()
		rf, err = c.openFile(ctx, remote, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, st.Mode().Perm())
		if err != nil {
			return err
		}
		openRTT = time.Since(t0)
		defer rf.close(ctx)
	}
	pr := &progress{opt: opt, p: local, done: start, tot: total}
	if k := c.streamCount(opt, total-start, openRTT); k > 1 {
		return c.uploadFileStreams(ctx, rf, lf, local, remote, st, start, k, opt, pr)
	}
	// FSETSTAT (-p) and CLOSE go right behind the last WRITE, and are
	// waited for with the WRITEs' replies (issue 17).
	var setstatCall, closeCall *call
	finish := func() {
		if opt.PreserveTimesAndMode {
			a := AttrsFromFileInfo(st)
			a.Flags = AttrPermissions | AttrACModTime
			a.Mode &^= modeType
			setstatCall = rf.startSetstat(ctx, &a)
		}
		closeCall = rf.startClose(ctx)
	}
	// Local and remote offsets are the same (both start at start).
	owed := 0 // bytes read for the last WRITE, not yet throttled
	n, err := rf.uploadFromCtx(ctx, lf, 0, func() error {
		if ctx.Err() != nil {
			return interrupted(ctx)
		}
		n := owed
		owed = 0
		return opt.throttle(ctx, n)
	}, func(n int) {
		owed += n
		pr.add(n)
	}, finish)
	if err == nil {
		err = opt.throttle(ctx, owed) // the last WRITE's data
	}
	var setstatErr, closeErr error
	if setstatCall != nil {
		setstatErr = rf.waitStatus(ctx, setstatCall, "setstat")
	}
	if closeCall != nil {
		closeErr = rf.waitClose(ctx, closeCall)
	}
	if err != nil {
		return &PartialError{Op: "upload", Src: local, Dst: remote, Done: start + n, Err: err}
	}
	if setstatErr != nil {
		return setstatErr
	}
	if closeErr != nil {
		return fmt.Errorf("upload %s: %w", local, closeErr)
	}
	opt.report(ProgressEvent{Path: local, Done: start + n, Total: total, Finished: true})
	return nil
}

// uploadFileStreams is uploadFile's transfer over up to k sessions
// (TransferOptions.Streams): rf is open on c's own session, created or
// checked from start.
func (c *Client) uploadFileStreams(ctx context.Context, rf *File, lf *os.File, local, remote string, st fs.FileInfo, start int64, k int, opt *TransferOptions, pr *progress) error {
	total := st.Size()
	var setstatCall, closeCall *call
	n, err := c.uploadStreams(ctx, rf, lf, remote, start, total, k, opt, pr, func() {
		if opt.PreserveTimesAndMode {
			a := AttrsFromFileInfo(st)
			a.Flags = AttrPermissions | AttrACModTime
			a.Mode &^= modeType
			setstatCall = rf.startSetstat(ctx, &a)
		}
		closeCall = rf.startClose(ctx)
	})
	var setstatErr, closeErr error
	if setstatCall != nil {
		setstatErr = rf.waitStatus(ctx, setstatCall, "setstat")
	}
	if closeCall != nil {
		closeErr = rf.waitClose(ctx, closeCall)
	}
	if err != nil {
		return &PartialError{Op: "upload", Src: local, Dst: remote, Done: start + n, Err: err}
	}
	if setstatErr != nil {
		return setstatErr
	}
	if closeErr != nil {
		return fmt.Errorf("upload %s: %w", local, closeErr)
	}
	opt.report(ProgressEvent{Path: local, Done: start + n, Total: total, Finished: true})
	return nil
}

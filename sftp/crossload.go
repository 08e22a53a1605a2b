package sftp

// Copies from one server to another through this process, as scp does
// between two remote hosts (its -3, the default since OpenSSH 8.7).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sync"
)

// Crossload copies srcPath on src to dstPath on dst, the data passing
// through this process: READs pipelined on src, WRITEs on dst, with up to
// their MaxInflight requests outstanding on each. src and dst may be the
// same Client (a copy within one server). If dstPath is an existing
// directory the copy goes inside it under srcPath's base name; a
// directory needs Recursive. TransferOptions apply as for Download and
// Upload (progress paths are src's; Skip and FollowLinks on src's tree,
// loops found by src's REALPATH), except Resume, which is refused: the
// whole file is copied again. Every wait honours ctx.
func Crossload(ctx context.Context, src *Client, srcPath string, dst *Client, dstPath string, opt TransferOptions) error {
	if opt.Resume {
		return errors.New("copy between servers cannot resume a partial file")
	}
	if ctx.Err() != nil {
		return interrupted(ctx)
	}
	a, err := src.stat(ctx, srcPath)
	if err != nil {
		return err
	}
	if d, err := dst.stat(ctx, dstPath); err == nil && d.FileMode().IsDir() {
		if base := path.Base(srcPath); ValidName(base) {
			dstPath = path.Join(dstPath, base)
		} else if !a.FileMode().IsDir() {
			return fmt.Errorf("copy %s: cannot name a file after it in %s", srcPath, dstPath)
		}
	}
	x := &crossload{src: src, dst: dst, opt: &opt}
	switch {
	case a.FileMode().IsDir():
		if !opt.Recursive {
			return fmt.Errorf("copy %s: is a directory (recursive transfer not requested)", srcPath)
		}
		var anc []string
		if opt.FollowLinks {
			real, err := src.RealPath(srcPath)
			if err != nil {
				return err
			}
			anc = []string{real}
		}
		return x.dir(ctx, srcPath, dstPath, a, 0, anc)
	case a.FileMode().IsRegular():
		return x.file(ctx, srcPath, dstPath, a)
	}
	return fmt.Errorf("copy %s: not a regular file or directory", srcPath)
}

type crossload struct {
	src, dst *Client
	opt      *TransferOptions
}

func (x *crossload) skip(ctx context.Context, p string, err error) error {
	if err == nil || x.opt.Skip == nil || x.src.fatal(ctx, err) || x.dst.fatal(ctx, err) {
		return err
	}
	x.opt.Skip(p, err)
	return nil
}

func (x *crossload) dir(ctx context.Context, sp, dp string, a *Attrs, depth int, anc []string) error {
	if ctx.Err() != nil {
		return interrupted(ctx)
	}
	if depth > maxDepth {
		return fmt.Errorf("copy %s: more than %d levels of directories", sp, maxDepth)
	}
	ents, err := x.src.readDir(ctx, sp)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !ValidName(e.Name) {
			return fmt.Errorf("copy %s: server sent the name %q in a directory listing, which is not a single path component; refusing it", sp, e.Name)
		}
	}
	perm := fs.FileMode(0o755)
	if a.Flags&AttrPermissions != 0 {
		perm = a.FileMode().Perm()
	}
	if err := x.dst.mkdir(ctx, dp, perm|0o700); err != nil {
		if d, serr := x.dst.stat(ctx, dp); serr != nil || !d.FileMode().IsDir() {
			return err
		}
	}
	for _, e := range ents {
		esp, edp := path.Join(sp, e.Name), path.Join(dp, e.Name)
		err := x.entry(ctx, esp, edp, &e.Attrs, depth, anc)
		if err = x.skip(ctx, esp, err); err != nil {
			return err
		}
	}
	if x.opt.PreserveTimesAndMode {
		return x.dst.setstat(ctx, dp, preserved(a))
	}
	return nil
}

func (x *crossload) entry(ctx context.Context, sp, dp string, ea *Attrs, depth int, anc []string) error {
	var err error
	if ea.Flags&AttrPermissions == 0 {
		if ea, err = x.src.lstat(ctx, sp); err != nil {
			return err
		}
	}
	var sub []string
	if x.opt.FollowLinks {
		if ea, sub, err = x.src.followLink(ctx, "copy", sp, ea, anc); err != nil {
			return err
		}
	}
	switch m := ea.FileMode(); {
	case m.IsDir():
		return x.dir(ctx, sp, dp, ea, depth+1, sub)
	case m.IsRegular():
		return x.file(ctx, sp, dp, ea)
	default:
		x.opt.warn(sp, "skipping %s: %s, not a regular file or directory", sp, fileTypeName(m))
	}
	return nil
}

// preserved is what -p sets on the destination: permissions and times.
func preserved(a *Attrs) *Attrs {
	p := &Attrs{}
	if a.Flags&AttrPermissions != 0 {
		p.Flags |= AttrPermissions
		p.Mode = a.Mode &^ modeType
	}
	if a.Flags&AttrACModTime != 0 {
		p.Flags |= AttrACModTime
		p.Atime, p.Mtime = a.Atime, a.Mtime
	}
	return p
}

// file copies one regular file: a goroutine runs the READ pipeline on
// src into a pipe, from which the WRITE pipeline on dst reads.
func (x *crossload) file(ctx context.Context, sp, dp string, a *Attrs) error {
	if ctx.Err() != nil {
		return interrupted(ctx)
	}
	rf, err := x.src.openFile(ctx, sp, os.O_RDONLY, 0)
	if err != nil {
		return err
	}
	defer rf.close(ctx)
	total := int64(-1)
	if a.Flags&AttrSize != 0 {
		total = int64(a.Size)
	}
	mode := fs.FileMode(0o644)
	if a.Flags&AttrPermissions != 0 {
		mode = a.FileMode().Perm()
	}
	wf, err := x.dst.openFile(ctx, dp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	defer wf.close(ctx)

	pr, pw := io.Pipe()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rf.mu.Lock()
		defer rf.mu.Unlock()
		_, err := rf.readPipeline(ctx, 0, -1, rf.sizeHint(ctx), nil, func(b []byte, _ int64) error {
			_, err := pw.Write(b)
			return err
		})
		if err == io.EOF {
			err = nil
		}
		if err != nil {
			err = &sourceError{err}
		}
		pw.CloseWithError(err) // nil: EOF for the writer
	}()
	in := &crossReader{r: pr, ctx: ctx, opt: x.opt, pg: &progress{opt: x.opt, p: sp, tot: total}}
	wf.mu.Lock()
	n, err := wf.writePipeline(ctx, 0, in, nil, true)
	wf.mu.Unlock()
	pr.CloseWithError(errors.New("copy ended")) // stops the reader if the writer failed
	wg.Wait()
	if err == nil {
		err = in.throttleErr
	}
	if err != nil {
		var se *sourceError
		if errors.As(err, &se) {
			return fmt.Errorf("copy %s: reading: %w", sp, se.err)
		}
		if errors.Is(err, ErrInterrupted) {
			return err
		}
		return fmt.Errorf("copy %s to %s: writing after %d bytes: %w", sp, dp, n, err)
	}
	if x.opt.PreserveTimesAndMode {
		if err := wf.setstat(ctx, preserved(a)); err != nil {
			return err
		}
	}
	if err := wf.close(ctx); err != nil {
		return fmt.Errorf("copy %s: %w", sp, err)
	}
	x.opt.report(ProgressEvent{Path: sp, Done: n, Total: total, Finished: true})
	return nil
}

// sourceError marks a failure of the reading side of a crossload.
type sourceError struct{ err error }

func (e *sourceError) Error() string { return e.err.Error() }
func (e *sourceError) Unwrap() error { return e.err }

// crossReader is what the WRITE pipeline reads: the pipe from the READ
// pipeline, counted for progress and throttled.
type crossReader struct {
	r           io.Reader
	ctx         context.Context
	opt         *TransferOptions
	pg          *progress
	throttleErr error
}

func (c *crossReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.pg.add(n)
		if terr := c.opt.throttle(c.ctx, n); terr != nil {
			c.throttleErr = terr
			return n, terr
		}
	}
	return n, err
}

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/rsftp/rsftp/sftp"
)

// openSFTP connects and starts the sftp subsystem.
func openSFTP(ctx context.Context, f *commonFlags, spec remoteSpec, log *logger, opts ...sftp.ClientOption) (*session, *sftp.Client, error) {
	s, err := connect(ctx, f, spec, log)
	if err != nil {
		return nil, nil, err
	}
	c, err := s.client.SFTP(ctx, opts...)
	if err != nil {
		closeSession(ctx, s, nil)
		return nil, nil, fmt.Errorf("%s: %w", s.host, err)
	}
	return s, c, nil
}

// closeGrace bounds the wait for a clean close once the command was
// interrupted: on a dead link closing may wait for it (the DISCONNECT's
// write has a deadline of a second, then a linger), and an interrupted
// rsftp must end within a second. The process ends right after, which
// closes the socket anyway.
const closeGrace = 300 * time.Millisecond

// closeSession closes the SFTP client (if any) and the session. Once ctx
// has ended (a signal) it waits at most closeGrace for that.
func closeSession(ctx context.Context, s *session, c *sftp.Client) {
	done := make(chan struct{})
	go func() {
		if c != nil {
			c.Close()
		}
		s.Close()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	t := time.NewTimer(closeGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

func progressFunc(p *progress, log *logger, note *resumeNote) func(sftp.ProgressEvent) {
	return func(ev sftp.ProgressEvent) {
		if ev.Warning != "" {
			if strings.Contains(ev.Warning, ev.Path) {
				log.warnf("%s", sanitize(ev.Warning))
			} else {
				log.warnf("%s: %s", sanitize(ev.Path), sanitize(ev.Warning))
			}
			return
		}
		note.progress(ev)
		p.update(ev.Path, ev.Done, ev.Total, ev.Finished)
	}
}

// resumeNote keeps what an interrupted get or put tells the user: how
// much of the file under way is kept, and the command that continues
// the transfer.
type resumeNote struct {
	cmd    string   // "get", "put", "cp" or "ls"
	args   []string // as given
	resume bool     // -a was given already

	mu       sync.Mutex
	prog     *progress
	single   string // a get's local file, when the transfer is of one file
	file     string // the source file under way
	done     int64  // its bytes moved so far (a get's: in order, on disk)
	finished bool   // it is complete
}

func (n *resumeNote) setProgress(p *progress) {
	n.mu.Lock()
	n.prog = p
	n.mu.Unlock()
}

func (n *resumeNote) progress(ev sftp.ProgressEvent) {
	n.mu.Lock()
	n.file, n.done, n.finished = ev.Path, ev.Done, ev.Finished
	n.mu.Unlock()
}

// continueCommand is the command that resumes the transfer: the same
// arguments with -a.
func (n *resumeNote) continueCommand() string {
	words := []string{"rsftp", n.cmd}
	if !n.resume {
		words = append(words, "-a")
	}
	for _, a := range n.args {
		words = append(words, shellQuote(a))
	}
	return strings.Join(words, " ")
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9_@%+=:,./-]+$`)

// shellQuote quotes s for a POSIX shell where it needs it.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// interrupted is the error an interrupted command ends with: what was
// kept and how to continue. err is what the command returned, and
// stuck says it had not returned (the transfer was held somewhere the
// interruption could not reach in time).
func (n *resumeNote) interrupted(sig string, err error, stuck bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.prog.stop()
	what := "interrupted (" + sig + ")"
	if n.cmd != "get" && n.cmd != "put" && n.cmd != "cp" {
		return errors.New(what)
	}
	var kept string
	var pe *sftp.PartialError
	switch {
	case errors.As(err, &pe) && pe.Op == "download":
		kept = fmt.Sprintf("kept the first %d bytes (%s) of %s, verified and in order, in %s", pe.Done, human(float64(pe.Done)), sanitize(pe.Src), pe.Dst)
	case errors.As(err, &pe):
		kept = fmt.Sprintf("the server confirmed the first %d bytes (%s) of %s in %s", pe.Done, human(float64(pe.Done)), pe.Src, sanitize(pe.Dst))
	case stuck && n.cmd != "put" && n.single != "" && n.file != "":
		// The download did not return in time: cut the file back to the
		// bytes it reported in order (replies that come later are not
		// written, and later bytes may sit past a hole).
		if terr := os.Truncate(n.single, n.done); terr != nil {
			kept = fmt.Sprintf("could not cut %s back to its first %d bytes received in order (%v); rsftp get -a will check what it holds", n.single, n.done, terr)
		} else {
			kept = fmt.Sprintf("kept the first %d bytes (%s) of %s, verified and in order, in %s", n.done, human(float64(n.done)), sanitize(n.file), n.single)
		}
	case stuck && n.file != "" && !n.finished:
		if n.single != "" || n.cmd == "get" {
			kept = fmt.Sprintf("part of %s is on disk; rsftp %s -a checks it before it continues", sanitize(n.file), n.cmd)
		} else {
			kept = fmt.Sprintf("the server has part of %s (%d bytes sent, not all confirmed); rsftp %s -a checks it before it continues", n.file, n.done, n.cmd)
		}
	case n.file == "":
		kept = "nothing was transferred yet"
	default:
		kept = fmt.Sprintf("%s was transferred up to %d bytes", sanitize(n.file), n.done)
	}
	return fmt.Errorf("%s; %s; to continue: %s", what, kept, n.continueCommand())
}

// runGet is get: remote sources ([user@]host:path, wildcards matched on
// the server) into a local path, "." if none is given.
func runGet(ctx context.Context, args []string, note *resumeNote) error {
	req, operands, err := readCopyOptions("get", args)
	if err != nil {
		return err
	}
	if len(operands) < 1 {
		return usageErr("get needs [user@]host:remote (one or more) and optionally a local path")
	}
	eps, err := parseEndpoints(operands)
	if err != nil {
		return err
	}
	req.sources, req.target = eps, endpoint{arg: ".", spec: remoteSpec{path: "."}}
	if last := eps[len(eps)-1]; len(eps) > 1 && !last.remote {
		req.sources, req.target = eps[:len(eps)-1], last
	}
	for _, s := range req.sources {
		if !s.remote {
			return usageErr("%q is not a remote path ([user@]host:path); get copies from a server (put and cp copy from here)", s.arg)
		}
	}
	return runCopy(ctx, req, note)
}

// runPut is put: local sources into a remote path.
func runPut(ctx context.Context, args []string, note *resumeNote) error {
	req, operands, err := readCopyOptions("put", args)
	if err != nil {
		return err
	}
	if len(operands) < 2 {
		return usageErr("put needs a local path (one or more) and [user@]host:[remote]")
	}
	eps, err := parseEndpoints(operands)
	if err != nil {
		return err
	}
	req.sources, req.target = eps[:len(eps)-1], eps[len(eps)-1]
	if !req.target.remote {
		return usageErr("%q is not a remote path ([user@]host:path)", req.target.arg)
	}
	for _, s := range req.sources {
		if s.remote {
			return usageErr("%q is a remote path; put copies local files (write ./%s for a local file of that name; cp copies between servers)", s.arg, s.arg)
		}
	}
	return runCopy(ctx, req, note)
}

// runCp is cp: scp's command line (SRC... DST, either side remote or
// local).
func runCp(ctx context.Context, args []string, note *resumeNote) error {
	req, operands, err := readCopyOptions("cp", args)
	if err != nil {
		return err
	}
	if len(operands) < 2 {
		return usageErr("cp needs a source (one or more) and a target, each [user@]host:path, sftp://[user@]host[:port]/path or a local path")
	}
	eps, err := parseEndpoints(operands)
	if err != nil {
		return err
	}
	req.sources, req.target = eps[:len(eps)-1], eps[len(eps)-1]
	return runCopy(ctx, req, note)
}

func parseEndpoints(args []string) ([]endpoint, error) {
	eps := make([]endpoint, len(args))
	for i, a := range args {
		ep, err := parseEndpoint(a)
		if err != nil {
			return nil, err
		}
		eps[i] = ep
	}
	return eps, nil
}

// runLs is ls: a remote directory, file or pattern listed as OpenSSH's
// sftp lists it (lsfmt.go).
func runLs(ctx context.Context, args []string, _ *resumeNote) (err error) {
	common, opts, operands, err := splitOptions(args, "1afhlnrSt", "")
	if err != nil {
		return usageErr("%v", err)
	}
	f, err := parseCommon(common, "PicFoJqv")
	if err != nil {
		return err
	}
	var o lsOptions
	for _, x := range opts {
		switch x.letter {
		case '1':
			o.single = true
		case 'a':
			o.all = true
		case 'f':
			o.unsorted = true
		case 'h':
			o.human = true
		case 'l':
			o.long = true
		case 'n':
			o.numeric, o.long = true, true
		case 'r':
			o.reverse = true
		case 'S':
			o.bySize = true
		case 't':
			o.byTime = true
		}
	}
	if len(operands) != 1 {
		return usageErr("ls needs [user@]host:[path]")
	}
	ep, err := parseEndpoint(operands[0])
	if err != nil {
		return err
	}
	if !ep.remote {
		return usageErr("%q is not a remote path ([user@]host:path)", operands[0])
	}
	log := &logger{level: 2}
	cs := newConns(f, log, nil)
	defer cs.closeAll(ctx)
	defer func() { err = cs.explainLoss(ctx, err) }()
	rc, err := cs.get(ctx, ep)
	if err != nil {
		return err
	}
	items, err := lsCollect(ctx, rc.c, ep.spec.path, o)
	if err != nil {
		return noMatch(operands[0], err)
	}
	width := 0
	if fd := int(os.Stdout.Fd()); term.IsTerminal(fd) {
		width = 80
		if w, _, err := term.GetSize(fd); err == nil && w > 0 {
			width = w
		}
	}
	out := bufio.NewWriter(os.Stdout)
	for _, l := range lsFormat(items, o, time.Now(), time.Local, width) {
		out.WriteString(l)
		out.WriteByte('\n')
	}
	return out.Flush()
}

// lsCollect finds what ls lists for the remote path p as given: the
// entries of a directory (hidden ones only with -a, "." and ".." among
// them), the paths a pattern matches (or the entries of the one
// directory it matches), or the path itself, with the server's longname
// from its directory's listing for -l.
func lsCollect(ctx context.Context, c *sftp.Client, p string, o lsOptions) ([]lsItem, error) {
	given := p
	if p == "" {
		p, given = ".", "."
	}
	if user, rest, ok := sftp.SplitTilde(p); ok && sftp.HasMeta(rest) {
		home, err := c.TildeHome(user)
		if err != nil {
			return nil, err
		}
		p = strings.TrimSuffix(sftp.GlobEscape(home), "/") + "/" + rest
	} else if ok {
		var err error
		if p, err = c.ExpandTilde(p); err != nil {
			return nil, err
		}
	}
	if sftp.HasMeta(p) {
		ms, err := c.Glob(ctx, p)
		if err != nil {
			return nil, err
		}
		if len(ms) == 1 {
			if st, err := c.Stat(ms[0].Path); err == nil && st.FileMode().IsDir() {
				return lsDir(c, ms[0].Path, o)
			}
		}
		items := make([]lsItem, len(ms))
		for i, m := range ms {
			items[i] = lsItem{display: m.Path, attrs: m.Attrs, longname: m.Longname}
		}
		return items, nil
	}
	st, err := c.Stat(p)
	if err != nil {
		return nil, err
	}
	if st.FileMode().IsDir() {
		return lsDir(c, p, o)
	}
	it := lsItem{display: given, attrs: *st}
	if a, err := c.Lstat(p); err == nil {
		it.attrs = *a
	}
	if o.long {
		// The longname (link count, owner's and group's names) is in
		// the listing of the file's directory.
		dir, base := path.Split(strings.TrimRight(p, "/"))
		if dir == "" {
			dir = "."
		}
		if ents, err := c.ReadDir(dir); err == nil {
			for _, e := range ents {
				if e.Name == base {
					it.longname = e.Longname
					break
				}
			}
		}
	}
	return []lsItem{it}, nil
}

// lsDir lists the directory p: its entries, with -a "." and ".." too
// (made from LSTATs where the server does not send them).
func lsDir(c *sftp.Client, p string, o lsOptions) ([]lsItem, error) {
	var ents []sftp.DirEntry
	var err error
	if o.all {
		ents, err = c.ReadDirAll(p)
	} else {
		ents, err = c.ReadDir(p)
	}
	if err != nil {
		return nil, err
	}
	items := make([]lsItem, 0, len(ents)+2)
	dots := 0
	for _, e := range ents {
		if e.Name == "." || e.Name == ".." {
			dots++
		}
		items = append(items, lsItem{display: e.Name, attrs: e.Attrs, longname: e.Longname})
	}
	if o.all && dots == 0 {
		for _, d := range []string{".", ".."} {
			if a, err := c.Lstat(path.Join(p, d)); err == nil {
				items = append(items, lsItem{display: d, attrs: *a})
			}
		}
	}
	return lsVisible(items, o), nil
}

// sanitize keeps names from the server from driving the terminal.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

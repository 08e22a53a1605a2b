package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/rsftp/rsftp/sftp"
)

// openSFTP connects and starts the sftp subsystem.
func openSFTP(ctx context.Context, f *commonFlags, spec remoteSpec, log *logger) (*session, *sftp.Client, error) {
	s, err := connect(ctx, f, spec, log)
	if err != nil {
		return nil, nil, err
	}
	c, err := s.client.SFTP(ctx)
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
			log.warnf("%s: %s", ev.Path, ev.Warning)
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
	cmd    string   // "get", "put" or "ls"
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
	if n.cmd != "get" && n.cmd != "put" {
		return errors.New(what)
	}
	var kept string
	var pe *sftp.PartialError
	switch {
	case errors.As(err, &pe) && pe.Op == "download":
		kept = fmt.Sprintf("kept the first %d bytes (%s) of %s, verified and in order, in %s", pe.Done, human(float64(pe.Done)), sanitize(pe.Src), pe.Dst)
	case errors.As(err, &pe):
		kept = fmt.Sprintf("the server confirmed the first %d bytes (%s) of %s in %s", pe.Done, human(float64(pe.Done)), pe.Src, sanitize(pe.Dst))
	case stuck && n.cmd == "get" && n.single != "" && n.file != "":
		// The download did not return in time: cut the file back to the
		// bytes it reported in order (replies that come later are not
		// written, and later bytes may sit past a hole).
		if terr := os.Truncate(n.single, n.done); terr != nil {
			kept = fmt.Sprintf("could not cut %s back to its first %d bytes received in order (%v); rsftp get -a will check what it holds", n.single, n.done, terr)
		} else {
			kept = fmt.Sprintf("kept the first %d bytes (%s) of %s, verified and in order, in %s", n.done, human(float64(n.done)), sanitize(n.file), n.single)
		}
	case stuck && n.file != "" && !n.finished:
		if n.cmd == "get" {
			kept = fmt.Sprintf("part of %s is on disk; rsftp get -a checks it before it continues", sanitize(n.file))
		} else {
			kept = fmt.Sprintf("the server has part of %s (%d bytes sent, not all confirmed); rsftp put -a checks it before it continues", n.file, n.done)
		}
	case n.file == "":
		kept = "nothing was transferred yet"
	default:
		kept = fmt.Sprintf("%s was transferred up to %d bytes", sanitize(n.file), n.done)
	}
	return fmt.Errorf("%s; %s; to continue: %s", what, kept, n.continueCommand())
}

func runGet(ctx context.Context, args []string, note *resumeNote) error {
	f, rest, err := parseFlags(args, "PicFoqprav")
	if err != nil {
		return usageErr("%v", err)
	}
	if len(rest) < 1 || len(rest) > 2 {
		return usageErr("get needs [user@]host:remote and optionally a local path")
	}
	spec, ok := parseRemote(rest[0])
	if !ok {
		return usageErr("%q is not a remote path ([user@]host:path)", rest[0])
	}
	local := "."
	if len(rest) == 2 {
		local = rest[1]
	}
	note.resume = f.resume
	log := &logger{level: 2}
	s, c, err := openSFTP(ctx, f, spec, log)
	if err != nil {
		return err
	}
	defer closeSession(ctx, s, c)
	note.setProgress(s.progress)
	remote := spec.path
	if remote == "" {
		remote = "."
	}
	st, err := c.Stat(remote)
	if err != nil {
		return err
	}
	if st.FileMode().IsDir() && !f.recursive {
		return fmt.Errorf("%s is a directory (use -r)", remote)
	}
	// Into an existing directory: keep the remote base name, which must
	// be a plain name.
	if fi, err := os.Stat(local); err == nil && fi.IsDir() {
		base := path.Base(strings.TrimRight(remote, "/"))
		if base == "." || base == "/" || base == "" {
			base = "."
			if real, err := c.RealPath(remote); err == nil {
				base = path.Base(real)
			}
		}
		if !sftp.ValidName(base) {
			return fmt.Errorf("cannot derive a local name from %q", remote)
		}
		local = filepath.Join(local, base)
	}
	if !st.FileMode().IsDir() {
		note.mu.Lock()
		note.single = local
		note.mu.Unlock()
	}
	p := s.progress
	return c.Download(ctx, remote, local, sftp.TransferOptions{
		Recursive:            f.recursive,
		PreserveTimesAndMode: f.preserve,
		Resume:               f.resume,
		Progress:             progressFunc(p, log, note),
	})
}

func runPut(ctx context.Context, args []string, note *resumeNote) error {
	f, rest, err := parseFlags(args, "PicFoqprav")
	if err != nil {
		return usageErr("%v", err)
	}
	if len(rest) != 2 {
		return usageErr("put needs a local path and [user@]host:[remote]")
	}
	local := rest[0]
	spec, ok := parseRemote(rest[1])
	if !ok {
		return usageErr("%q is not a remote path ([user@]host:path)", rest[1])
	}
	fi, err := os.Stat(local)
	if err != nil {
		return err
	}
	if fi.IsDir() && !f.recursive {
		return fmt.Errorf("%s is a directory (use -r)", local)
	}
	note.resume = f.resume
	log := &logger{level: 2}
	s, c, err := openSFTP(ctx, f, spec, log)
	if err != nil {
		return err
	}
	defer closeSession(ctx, s, c)
	note.setProgress(s.progress)
	remote := spec.path
	if remote == "" {
		remote = "."
	}
	if st, err := c.Stat(remote); err == nil && st.FileMode().IsDir() {
		base := filepath.Base(filepath.Clean(local))
		if base == "." || base == string(filepath.Separator) {
			if abs, err := filepath.Abs(local); err == nil {
				base = filepath.Base(abs)
			}
		}
		remote = path.Join(remote, base)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	p := s.progress
	return c.Upload(ctx, local, remote, sftp.TransferOptions{
		Recursive:            f.recursive,
		PreserveTimesAndMode: f.preserve,
		Resume:               f.resume,
		Progress:             progressFunc(p, log, note),
	})
}

func runLs(ctx context.Context, args []string, _ *resumeNote) error {
	f, rest, err := parseFlags(args, "PicFoqlav1")
	if err != nil {
		return usageErr("%v", err)
	}
	long, all := false, false
	for _, a := range args[:len(args)-len(rest)] {
		if strings.HasPrefix(a, "-") && !strings.ContainsAny(a, "PicFo") {
			long = long || strings.Contains(a, "l")
			all = all || strings.Contains(a, "a")
		}
	}
	if len(rest) != 1 {
		return usageErr("ls needs [user@]host:[path]")
	}
	spec, ok := parseRemote(rest[0])
	if !ok {
		return usageErr("%q is not a remote path ([user@]host:path)", rest[0])
	}
	log := &logger{level: 2}
	s, c, err := openSFTP(ctx, f, spec, log)
	if err != nil {
		return err
	}
	defer closeSession(ctx, s, c)
	p := spec.path
	if p == "" {
		p = "."
	}
	st, err := c.Stat(p)
	if err != nil {
		return err
	}
	if !st.FileMode().IsDir() {
		if long {
			fmt.Println(longLine(path.Base(p), st))
		} else {
			fmt.Println(p)
		}
		return nil
	}
	entries, err := c.ReadDir(p)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !all && strings.HasPrefix(e.Name, ".") {
			continue
		}
		name := sanitize(e.Name)
		if long {
			if e.Longname != "" {
				fmt.Println(sanitize(e.Longname))
			} else {
				fmt.Println(longLine(name, &e.Attrs))
			}
		} else {
			fmt.Println(name)
		}
	}
	return nil
}

func longLine(name string, a *sftp.Attrs) string {
	return fmt.Sprintf("%s %8d %s %s", a.FileMode().String(), a.Size, a.ModTime().Format("Jan _2 15:04"), sanitize(name))
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

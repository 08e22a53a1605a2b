package main

// The commands of rsftp sftp, named and spelt as OpenSSH's sftp's.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rsftp/rsftp/resume"
	"github.com/rsftp/rsftp/sftp"
)

const (
	modeRemote   = iota // runs apart; Ctrl-C returns to the prompt after interruptGrace
	modeTransfer        // runs apart; Ctrl-C ends it, and the prompt waits for it to stop
	modeLocal           // runs in the loop's goroutine
)

type command struct {
	names []string
	mode  int
	// args says what each operand completes to: 'r' remote path, 'l'
	// local path, '-' nothing; the last letter repeats.
	args  string
	usage string
	help  string
	run   func(sh *shell, c *call) error
}

var shellCommands []command

func init() {
	shellCommands = []command{
		{[]string{"bye", "exit", "quit"}, modeLocal, "-", "bye", "Quit sftp", func(*shell, *call) error { return errQuit }},
		{[]string{"cd"}, modeRemote, "r", "cd [path]", "Change remote directory to 'path' (the starting directory without one)", (*shell).cmdCd},
		{[]string{"chgrp"}, modeRemote, "-r", "chgrp [-h] grp path", "Change group of file 'path' to 'grp' (numeric)", (*shell).cmdChown},
		{[]string{"chmod"}, modeRemote, "-r", "chmod [-h] mode path", "Change permissions of file 'path' to 'mode' (octal)", (*shell).cmdChmod},
		{[]string{"chown"}, modeRemote, "-r", "chown [-h] own path", "Change owner of file 'path' to 'own' (numeric)", (*shell).cmdChown},
		{[]string{"copy", "cp"}, modeRemote, "r", "copy oldpath newpath", "Copy remote file (not supported: use get and put)", (*shell).cmdCopy},
		{[]string{"df"}, modeRemote, "r", "df [-hi] [path]", "Display statistics for current directory or\n                                   filesystem containing 'path'", (*shell).cmdDf},
		{[]string{"get"}, modeTransfer, "rl", "get [-afpPrR] remote [local]", "Download file", func(sh *shell, c *call) error { return sh.get(c, false) }},
		{[]string{"help", "?"}, modeLocal, "-", "help", "Display this help text", (*shell).cmdHelp},
		{[]string{"lcd"}, modeLocal, "l", "lcd [path]", "Change local directory to 'path'", (*shell).cmdLcd},
		{[]string{"lls"}, modeLocal, "l", "lls [ls-options [path]]", "Display local directory listing", (*shell).cmdLls},
		{[]string{"lmkdir"}, modeLocal, "l", "lmkdir path", "Create local directory", (*shell).cmdLmkdir},
		{[]string{"ln"}, modeRemote, "r", "ln [-s] oldpath newpath", "Link remote file (-s for symlink)", (*shell).cmdLn},
		{[]string{"lpwd"}, modeLocal, "-", "lpwd", "Print local working directory", (*shell).cmdLpwd},
		{[]string{"ls", "dir"}, modeRemote, "r", "ls [-1afhlnrSt] [path]", "Display remote directory listing", (*shell).cmdLs},
		{[]string{"lumask"}, modeLocal, "-", "lumask umask", "Set local umask to 'umask'", (*shell).cmdLumask},
		{[]string{"mkdir"}, modeRemote, "r", "mkdir path", "Create remote directory", (*shell).cmdMkdir},
		{[]string{"progress"}, modeLocal, "-", "progress", "Toggle display of progress meter", (*shell).cmdProgress},
		{[]string{"put"}, modeTransfer, "lr", "put [-afpPrR] local [remote]", "Upload file", func(sh *shell, c *call) error { return sh.put(c, false) }},
		{[]string{"pwd"}, modeLocal, "-", "pwd", "Display remote working directory", (*shell).cmdPwd},
		{[]string{"reget"}, modeTransfer, "rl", "reget [-fpPrR] remote [local]", "Resume download file", func(sh *shell, c *call) error { return sh.get(c, true) }},
		{[]string{"rename"}, modeRemote, "r", "rename [-l] oldpath newpath", "Rename remote file (-l: the protocol's RENAME, which does not replace)", (*shell).cmdRename},
		{[]string{"reput"}, modeTransfer, "lr", "reput [-fpPrR] local [remote]", "Resume upload file", func(sh *shell, c *call) error { return sh.put(c, true) }},
		{[]string{"rm"}, modeRemote, "r", "rm path", "Delete remote file", (*shell).cmdRm},
		{[]string{"rmdir"}, modeRemote, "r", "rmdir path", "Remove remote directory", (*shell).cmdRmdir},
		{[]string{"symlink"}, modeRemote, "r", "symlink oldpath newpath", "Symlink remote file", (*shell).cmdSymlink},
		{[]string{"version"}, modeLocal, "-", "version", "Show SFTP version", (*shell).cmdVersion},
	}
}

func lookupCommand(name string) *command {
	for i := range shellCommands {
		if slices.Contains(shellCommands[i].names, name) {
			return &shellCommands[i]
		}
	}
	return nil
}

func (sh *shell) cmdHelp(c *call) error {
	var b strings.Builder
	b.WriteString("Available commands:\n")
	line := func(u, h string) { fmt.Fprintf(&b, "%-34s %s\n", u, h) }
	for _, cmd := range shellCommands {
		line(cmd.usage, cmd.help)
		for _, alias := range cmd.names[1:] {
			if alias == "?" {
				continue
			}
			line(strings.Replace(cmd.usage, cmd.names[0], alias, 1), cmd.help)
		}
	}
	line("!command", "Execute 'command' in local shell")
	line("!", "Escape to local shell")
	line("?", "Synonym for help")
	io.WriteString(c.out, b.String())
	return nil
}

func (sh *shell) cmdVersion(c *call) error {
	fmt.Fprintln(c.out, "SFTP protocol version 3")
	return nil
}

func (sh *shell) cmdProgress(c *call) error {
	sh.showProgress = !sh.showProgress
	if sh.showProgress {
		fmt.Fprintln(c.out, "Progress meter enabled")
	} else {
		fmt.Fprintln(c.out, "Progress meter disabled")
	}
	return nil
}

func (sh *shell) cmdPwd(c *call) error {
	fmt.Fprintf(c.out, "Remote working directory: %s\n", sanitize(sh.getCwd()))
	return nil
}

func (sh *shell) cmdLpwd(c *call) error {
	wd, err := os.Getwd()
	if err != nil {
		return fmt.Errorf("Couldn't get local cwd: %s", errnoText(err))
	}
	fmt.Fprintf(c.out, "Local working directory: %s\n", wd)
	return nil
}

// operands checks a command's operand count.
func operands(cmd string, rest []string, min, max int, what string) error {
	switch {
	case len(rest) < min:
		return fmt.Errorf("%s: you must specify %s.", cmd, what)
	case max >= 0 && len(rest) > max:
		return fmt.Errorf("%s: too many arguments (%s takes %s)", cmd, cmd, what)
	}
	return nil
}

func (sh *shell) cmdCd(c *call) error {
	_, rest, err := cmdFlags("cd", c.args[1:], "")
	if err != nil {
		return err
	}
	if err := operands("cd", rest, 0, 1, "a path"); err != nil {
		return err
	}
	target := sh.home
	if len(rest) == 1 {
		target = sh.abs(unescape(rest[0]))
	}
	real, err := sh.c.RealPath(target)
	if err != nil {
		return err
	}
	st, err := sh.c.Stat(real)
	if err != nil {
		return err
	}
	if !st.FileMode().IsDir() {
		return fmt.Errorf("Can't change directory: %q is not a directory", real)
	}
	sh.setCwd(real)
	return nil
}

func localPath(p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, p[1:])
		}
	}
	return p
}

func (sh *shell) cmdLcd(c *call) error {
	_, rest, err := cmdFlags("lcd", c.args[1:], "")
	if err != nil {
		return err
	}
	if err := operands("lcd", rest, 0, 1, "a path"); err != nil {
		return err
	}
	dir := "~"
	if len(rest) == 1 {
		dir = unescape(rest[0])
	}
	if err := os.Chdir(localPath(dir)); err != nil {
		return fmt.Errorf("Couldn't change local directory to %q: %s", dir, errnoText(err))
	}
	return nil
}

func (sh *shell) cmdLmkdir(c *call) error {
	_, rest, err := cmdFlags("lmkdir", c.args[1:], "")
	if err != nil {
		return err
	}
	if err := operands("lmkdir", rest, 1, 1, "a path"); err != nil {
		return err
	}
	p := unescape(rest[0])
	if err := os.Mkdir(localPath(p), 0o777); err != nil {
		return fmt.Errorf("Couldn't create local directory %q: %s", p, errnoText(err))
	}
	return nil
}

func (sh *shell) cmdLumask(c *call) error {
	if len(c.args) != 2 {
		return errors.New("lumask: you must supply a numeric argument (octal).")
	}
	n, err := strconv.ParseUint(c.args[1], 8, 32)
	if err != nil || n > 0o777 {
		return fmt.Errorf("lumask: invalid umask %q (octal, at most 777)", c.args[1])
	}
	if err := setUmask(int(n)); err != nil {
		return err
	}
	fmt.Fprintf(c.out, "Local umask: %03o\n", n)
	return nil
}

// cmdLls runs ls(1) on the rest of the line through the local shell, as
// sftp does.
func (sh *shell) cmdLls(c *call) error {
	return sh.localShell(localListing(c.rest)) // dir on Windows
}

// localShell runs a command line with the user's shell (on Windows
// cmd.exe), or the shell itself when the line is empty.
func (sh *shell) localShell(line string) error {
	cmd := interactiveShell()
	if line != "" {
		cmd = shellCommand(line)
	}
	shell := cmd.Path
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return fmt.Errorf("Shell exited with status %d", ee.ExitCode())
	}
	if err != nil {
		return fmt.Errorf("Couldn't execute %s: %v", shell, err)
	}
	return nil
}

func (sh *shell) cmdMkdir(c *call) error {
	_, rest, err := cmdFlags("mkdir", c.args[1:], "")
	if err != nil {
		return err
	}
	if err := operands("mkdir", rest, 1, -1, "a path"); err != nil {
		return err
	}
	for _, p := range rest {
		if err := sh.c.Mkdir(sh.abs(unescape(p)), 0o777); err != nil {
			return err
		}
	}
	return nil
}

func (sh *shell) cmdRmdir(c *call) error {
	_, rest, err := cmdFlags("rmdir", c.args[1:], "")
	if err != nil {
		return err
	}
	if err := operands("rmdir", rest, 1, -1, "a path"); err != nil {
		return err
	}
	for _, p := range rest {
		if err := sh.c.RemoveDirectory(sh.abs(unescape(p))); err != nil {
			return err
		}
	}
	return nil
}

// eachMatch expands each pattern remotely and calls fn for each match,
// going on after a failure (reported on stderr) as sftp does; it fails if
// any did, or if a pattern matched nothing.
func (sh *shell) eachMatch(ctx context.Context, patterns []string, fn func(p string) error) error {
	failed := 0
	for _, pat := range patterns {
		matches, err := sh.glob(ctx, pat)
		if err != nil {
			return err
		}
		if len(matches) == 0 {
			sh.warnf("File %q not found.", sh.abs(unescape(pat)))
			failed++
			continue
		}
		for _, m := range matches {
			if err := fn(m); err != nil {
				sh.warnf("%s", explain(err))
				failed++
			}
		}
	}
	if failed > 0 {
		return errReported
	}
	return nil
}

func (sh *shell) cmdRm(c *call) error {
	_, rest, err := cmdFlags("rm", c.args[1:], "")
	if err != nil {
		return err
	}
	if err := operands("rm", rest, 1, -1, "a path"); err != nil {
		return err
	}
	return sh.eachMatch(c.ctx, rest, func(p string) error {
		if !sh.quiet {
			fmt.Fprintf(c.out, "Removing %s\n", sanitize(p))
		}
		return sh.c.Remove(p)
	})
}

func (sh *shell) cmdRename(c *call) error {
	fl, rest, err := cmdFlags("rename", c.args[1:], "l")
	if err != nil {
		return err
	}
	if err := operands("rename", rest, 2, 2, "two paths, oldpath and newpath"); err != nil {
		return err
	}
	from, to := sh.abs(unescape(rest[0])), sh.abs(unescape(rest[1]))
	if !fl['l'] && sh.c.HasExtension("posix-rename@openssh.com") {
		return sh.c.PosixRename(from, to)
	}
	return sh.c.Rename(from, to)
}

func (sh *shell) cmdChmod(c *call) error {
	fl, rest, err := cmdFlags("chmod", c.args[1:], "h")
	if err != nil {
		return err
	}
	if fl['h'] {
		return errors.New("chmod -h: not supported (rsftp's client does not send lsetstat@openssh.com)")
	}
	if err := operands("chmod", rest, 2, -1, "a mode and a path"); err != nil {
		return err
	}
	mode, err := strconv.ParseUint(rest[0], 8, 32)
	if err != nil || mode > 0o7777 {
		return fmt.Errorf("chmod: invalid mode %q: give it in octal, such as 644 or 0755", rest[0])
	}
	return sh.eachMatch(c.ctx, rest[1:], func(p string) error {
		if !sh.quiet {
			fmt.Fprintf(c.out, "Changing mode on %s\n", sanitize(p))
		}
		return sh.c.Setstat(p, &sftp.Attrs{Flags: sftp.AttrPermissions, Mode: uint32(mode)})
	})
}

func (sh *shell) cmdChown(c *call) error {
	name := c.args[0]
	fl, rest, err := cmdFlags(name, c.args[1:], "h")
	if err != nil {
		return err
	}
	if fl['h'] {
		return fmt.Errorf("%s -h: not supported (rsftp's client does not send lsetstat@openssh.com)", name)
	}
	what := "an owner"
	if name == "chgrp" {
		what = "a group"
	}
	if err := operands(name, rest, 2, -1, what+" and a path"); err != nil {
		return err
	}
	id, err := strconv.ParseUint(rest[0], 10, 32)
	if err != nil {
		return fmt.Errorf("%s: %q is not a number: rsftp takes numeric user and group ids", name, rest[0])
	}
	return sh.eachMatch(c.ctx, rest[1:], func(p string) error {
		st, err := sh.c.Stat(p)
		if err != nil {
			return err
		}
		if st.Flags&sftp.AttrUIDGID == 0 {
			return fmt.Errorf("Can't change %s of %q: the server did not give its owner and group", name, p)
		}
		uid, gid := int(st.UID), int(st.GID)
		if name == "chgrp" {
			gid = int(id)
			if !sh.quiet {
				fmt.Fprintf(c.out, "Changing group on %s\n", sanitize(p))
			}
		} else {
			uid = int(id)
			if !sh.quiet {
				fmt.Fprintf(c.out, "Changing owner on %s\n", sanitize(p))
			}
		}
		return sh.c.Chown(p, uid, gid)
	})
}

func (sh *shell) cmdLn(c *call) error {
	fl, rest, err := cmdFlags("ln", c.args[1:], "s")
	if err != nil {
		return err
	}
	if err := operands("ln", rest, 2, 2, "two paths, oldpath and newpath"); err != nil {
		return err
	}
	if fl['s'] {
		return sh.symlink(rest[0], rest[1])
	}
	if !sh.c.HasExtension("hardlink@openssh.com") {
		return errors.New("ln: the server does not support hard links (hardlink@openssh.com); ln -s makes a symbolic link")
	}
	return sh.c.Hardlink(sh.abs(unescape(rest[0])), sh.abs(unescape(rest[1])))
}

func (sh *shell) cmdSymlink(c *call) error {
	_, rest, err := cmdFlags("symlink", c.args[1:], "")
	if err != nil {
		return err
	}
	if err := operands("symlink", rest, 2, 2, "two paths, oldpath and newpath"); err != nil {
		return err
	}
	return sh.symlink(rest[0], rest[1])
}

// symlink makes newpath point at oldpath as typed: a relative target
// stays relative to the link, as with sftp and ln -s.
func (sh *shell) symlink(oldpath, newpath string) error {
	return sh.c.Symlink(unescape(oldpath), sh.abs(unescape(newpath)))
}

func (sh *shell) cmdCopy(c *call) error {
	return fmt.Errorf("%s: not supported (rsftp's client does not send copy-data); use get and put", c.args[0])
}

func (sh *shell) cmdDf(c *call) error {
	fl, rest, err := cmdFlags("df", c.args[1:], "hi")
	if err != nil {
		return err
	}
	if err := operands("df", rest, 0, 1, "at most one path"); err != nil {
		return err
	}
	p := sh.getCwd()
	if len(rest) == 1 {
		p = sh.abs(unescape(rest[0]))
	}
	if !sh.c.HasExtension("statvfs@openssh.com") {
		return errors.New("Server does not support statvfs@openssh.com extension")
	}
	st, err := sh.c.StatVFS(p)
	if err != nil {
		return err
	}
	pct := func(used, total uint64) uint64 {
		if total == 0 {
			return 0
		}
		return 100 * used / total
	}
	used := st.Blocks - min(st.Bfree, st.Blocks)
	switch {
	case fl['i']:
		fmt.Fprintf(c.out, "     Inodes        Used       Avail      (root)    %%Capacity\n")
		iused := st.Files - min(st.Ffree, st.Files)
		fmt.Fprintf(c.out, "%11d %11d %11d %11d         %3d%%\n", st.Files, iused, st.Favail, st.Ffree, pct(iused, st.Files))
	case fl['h']:
		h := func(blocks uint64) string { return strings.TrimSuffix(lsScaled(st.Frsize*blocks), "B") + "B" }
		fmt.Fprintf(c.out, "    Size     Used    Avail   (root)    %%Capacity\n")
		fmt.Fprintf(c.out, "%8s %8s %8s %8s         %3d%%\n", h(st.Blocks), h(used), h(st.Bavail), h(st.Bfree), pct(used, st.Blocks))
	default:
		k := func(blocks uint64) uint64 { return st.Frsize * blocks / 1024 }
		fmt.Fprintf(c.out, "        Size         Used        Avail       (root)    %%Capacity\n")
		fmt.Fprintf(c.out, "%12d %12d %12d %12d         %3d%%\n", k(st.Blocks), k(used), k(st.Bavail), k(st.Bfree), pct(used, st.Blocks))
	}
	return nil
}

// cmdLs lists as sftp's ls, with what rsftp ls uses (lsCollect,
// lsFormat): a directory's entries (hidden ones with -a, "." and ".."
// among them), the files a pattern matches, or the one directory it
// matches; sorted by name unless -S (size), -t (time) or -f (unsorted),
// -r reversing; in columns on a terminal, one per line with -1 or
// elsewhere, long with -l (-n numeric ids, -h sizes with units). Paths
// given relative to the working directory are shown relative to it.
func (sh *shell) cmdLs(c *call) error {
	fl, rest, err := cmdFlags("ls", c.args[1:], "1afhlnrSt")
	if err != nil {
		return err
	}
	if err := operands("ls", rest, 0, 1, "at most one path"); err != nil {
		return err
	}
	o := lsOptions{single: fl['1'], all: fl['a'], unsorted: fl['f'], human: fl['h'], long: fl['l'] || fl['n'],
		numeric: fl['n'], reverse: fl['r'], bySize: fl['S'], byTime: fl['t']}
	arg := "."
	if len(rest) == 1 {
		arg = rest[0]
	}
	relative := !path.IsAbs(unescape(arg)) && !strings.HasPrefix(arg, "~")
	abs := sh.abs(arg)
	items, err := lsCollect(c.ctx, sh.c, abs, o)
	if errors.Is(err, sftp.ErrNoMatch) || errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("Can't ls: %q not found", unescape(abs))
	}
	if err != nil {
		return err
	}
	for i := range items {
		if path.IsAbs(items[i].display) {
			items[i].display = sh.display(items[i].display, relative)
		}
	}
	width := 0
	if sh.interactive {
		width = sh.width()
	}
	var b strings.Builder
	for _, l := range lsFormat(items, o, time.Now(), time.Local, width) {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	_, err = io.WriteString(c.out, b.String())
	return err
}

// transferOptions are a get or put's options: the command line's
// defaults (-a -p -r) and the command's flags.
func (sh *shell) transferOptions(name string, args []string, resume bool) (sftp.TransferOptions, []string, error) {
	fl, rest, err := cmdFlags(name, args, "afpPrR")
	if err != nil {
		return sftp.TransferOptions{}, nil, err
	}
	if fl['f'] {
		sh.warnFsync()
	}
	return sftp.TransferOptions{
		Recursive:            sh.defRecursive || fl['r'] || fl['R'],
		PreserveTimesAndMode: sh.defPreserve || fl['p'] || fl['P'],
		Resume:               resume || sh.defResume || fl['a'],
	}, rest, nil
}

func (sh *shell) warnFsync() {
	if !sh.fsyncWarned {
		sh.fsyncWarned = true
		sh.warnf("rsftp: -f ignored: rsftp's client does not send fsync@openssh.com")
	}
}

// setProgress turns the progress line on for a transfer (if the progress
// command left it on and stderr is a terminal) and off after it, ending
// a line it left unfinished. While it is off, the session's events
// (connection lost, resumed) print as lines of their own.
func (sh *shell) setProgress(on bool) {
	p := sh.s.progress
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.on = sh.progCapable && sh.showProgress
		if w, _, err := termSize(p.out); err == nil && w > 40 {
			p.width = w
		}
		return
	}
	if p.on && (p.file != "" || p.status != "") {
		fmt.Fprintln(p.out)
	}
	p.on = false
	p.file, p.status = "", ""
}

// transfer runs a get or put's transfer with the progress line.
func (sh *shell) transfer(opt sftp.TransferOptions, fn func(sftp.TransferOptions) error) error {
	p := sh.s.progress
	opt.Progress = func(ev sftp.ProgressEvent) {
		if ev.Warning != "" {
			sh.warnf("rsftp: %s: %s", sanitize(ev.Path), ev.Warning)
			return
		}
		p.update(ev.Path, ev.Done, ev.Total, ev.Finished)
	}
	sh.setProgress(true)
	defer sh.setProgress(false)
	return fn(opt)
}

// interruptedTransfer says what an interrupted get or put kept and the
// command that continues it.
func interruptedTransfer(op, src, dst string, opt sftp.TransferOptions, err error) error {
	again := "reget"
	if op == "put" {
		again = "reput"
	}
	if opt.Recursive {
		again += " -r"
	}
	if opt.PreserveTimesAndMode {
		again += " -p"
	}
	again = fmt.Sprintf("\"%s %s %s\"", again, escapeWord(src), escapeWord(dst))
	var pe *sftp.PartialError
	if errors.As(err, &pe) {
		if pe.Op == "download" {
			return fmt.Errorf("%s interrupted: kept the first %d bytes (%s) of %s in %s; %s continues it",
				op, pe.Done, human(float64(pe.Done)), sanitize(pe.Src), pe.Dst, again)
		}
		return fmt.Errorf("%s interrupted: the server has the first %d bytes (%s) of %s in %s; %s continues it",
			op, pe.Done, human(float64(pe.Done)), pe.Src, sanitize(pe.Dst), again)
	}
	return fmt.Errorf("%s interrupted; %s continues it", op, again)
}

func isLocalDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

func (sh *shell) get(c *call, resume bool) error {
	name := c.args[0]
	opt, rest, err := sh.transferArgs(c, resume, "remote [local]")
	if err != nil {
		return err
	}
	matches, err := sh.glob(c.ctx, rest[0])
	if err != nil {
		return err
	}
	if len(matches) == 0 {
		return fmt.Errorf("File %q not found.", unescape(sh.abs(rest[0])))
	}
	local := "."
	if len(rest) == 2 {
		local = localPath(unescape(rest[1]))
	}
	localDir := isLocalDir(local)
	if len(matches) > 1 && !localDir {
		return fmt.Errorf("Multiple source paths, but destination %q is not a directory", local)
	}
	return sh.eachTransfer(c, name, opt, matches, func(m string) (string, string) {
		shown := local
		if localDir {
			shown = filepath.Join(local, path.Base(m))
		}
		return shown, fmt.Sprintf("Fetching %s to %s", sanitize(m), sanitize(shown))
	}, func(m string, o sftp.TransferOptions) error { return sh.c.Download(c.ctx, m, local, o) })
}

// transferArgs reads a get or put command's options and checks that one
// or two paths follow (usage is how its help names them).
func (sh *shell) transferArgs(c *call, resume bool, usage string) (sftp.TransferOptions, []string, error) {
	name := c.args[0]
	opt, rest, err := sh.transferOptions(name, c.args[1:], resume)
	if err != nil {
		return opt, nil, err
	}
	if len(rest) == 0 {
		return opt, nil, fmt.Errorf("You must specify at least one path after a %s command.", name)
	}
	if len(rest) > 2 {
		return opt, nil, fmt.Errorf("%s: too many arguments (%s %s)", name, name, usage)
	}
	return opt, rest, nil
}

// eachTransfer runs a get or put for each source as sftp does: a line
// saying what goes where (describe gives it, with the destination as
// shown), unless quiet; an interruption ends them all and says what
// continues it; with several sources a failure is said and the others
// go on, the command failing in the end.
func (sh *shell) eachTransfer(c *call, name string, opt sftp.TransferOptions, srcs []string,
	describe func(src string) (shown, line string), run func(src string, o sftp.TransferOptions) error) error {
	failed := 0
	for _, src := range srcs {
		shown, line := describe(src)
		if !sh.quiet {
			fmt.Fprintln(c.out, line)
		}
		err := sh.transfer(opt, func(o sftp.TransferOptions) error { return run(src, o) })
		if err == nil {
			continue
		}
		if c.ctx.Err() != nil || errors.Is(err, sftp.ErrInterrupted) {
			return interruptedTransfer(name, src, shown, opt, err)
		}
		if len(srcs) == 1 {
			return err
		}
		sh.warnf("%s", explain(err))
		failed++
	}
	if failed > 0 {
		return errReported
	}
	return nil
}

// localGlob expands a local pattern; names starting with '.' only match
// a pattern whose last component starts with '.'.
func localGlob(pattern string) ([]string, error) {
	pattern = localPath(pattern)
	if !sftp.HasMeta(pattern) {
		p := unescape(pattern)
		if _, err := os.Lstat(p); err != nil {
			return nil, nil
		}
		return []string{p}, nil
	}
	m, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("bad pattern %q: %v", pattern, err)
	}
	if !strings.HasPrefix(filepath.Base(pattern), ".") {
		m = slices.DeleteFunc(m, func(p string) bool { return strings.HasPrefix(filepath.Base(p), ".") })
	}
	return m, nil
}

func (sh *shell) put(c *call, resume bool) error {
	name := c.args[0]
	opt, rest, err := sh.transferArgs(c, resume, "local [remote]")
	if err != nil {
		return err
	}
	srcs, err := localGlob(rest[0])
	if err != nil {
		return err
	}
	if len(srcs) == 0 {
		return fmt.Errorf("File %q not found.", unescape(rest[0]))
	}
	remote := sh.getCwd()
	if len(rest) == 2 {
		remote = sh.abs(unescape(rest[1]))
	}
	remoteDir := false
	if st, err := sh.c.Stat(remote); err == nil && st.FileMode().IsDir() {
		remoteDir = true
	}
	if len(srcs) > 1 && !remoteDir {
		return fmt.Errorf("Multiple paths match, but destination %q is not a directory", remote)
	}
	return sh.eachTransfer(c, name, opt, srcs, func(src string) (string, string) {
		shown := remote
		if remoteDir {
			shown = path.Join(remote, filepath.Base(src))
		}
		return shown, fmt.Sprintf("Uploading %s to %s", src, sanitize(shown))
	}, func(src string, o sftp.TransferOptions) error { return sh.c.Upload(c.ctx, src, remote, o) })
}

// explain puts an error in one line as sftp does: `remote open "x": No
// such file` for the server's refusals, `local open "y": Permission
// denied` for this side's.
func explain(err error) string {
	var se *sftp.StatusError
	var le *os.LinkError
	var pe *fs.PathError
	var errno syscall.Errno
	switch {
	case errors.As(err, &le) && errors.As(le.Err, &se):
		return fmt.Sprintf("remote %s %q to %q: %s", le.Op, sanitize(le.Old), sanitize(le.New), statusText(se))
	case errors.As(err, &pe) && errors.As(pe.Err, &se):
		return fmt.Sprintf("remote %s %q: %s", pe.Op, sanitize(pe.Path), statusText(se))
	case errors.As(err, &pe) && errors.As(pe.Err, &errno):
		return fmt.Sprintf("local %s %q: %s", pe.Op, pe.Path, errnoText(errno))
	case errors.As(err, &se) && err.Error() == se.Error():
		return statusText(se)
	}
	return userMessage(err)
}

// statusText is OpenSSH's text for a status, with the server's message
// when it says more.
func statusText(se *sftp.StatusError) string {
	t := fx2txt(se.Code)
	if m := strings.TrimSpace(se.Message); m != "" && !strings.HasPrefix(strings.ToLower(m), strings.ToLower(t)) {
		t += " (" + sanitize(m) + ")"
	}
	return t
}

// errnoText is a system error's text with a capital, as strerror.
func errnoText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		err = errno
	}
	s := err.Error()
	if s != "" {
		s = strings.ToUpper(s[:1]) + s[1:]
	}
	return s
}

// complete is the Terminal's AutoCompleteCallback: on Tab it completes
// the command name, or a remote or local path as the command's operand
// takes, listing the candidates when there are several and typing more
// would not narrow them.
func (sh *shell) complete(line string, pos int, key rune) (string, int, bool) {
	if key != '\t' {
		return "", 0, false
	}
	head, tail := line[:pos], line[pos:]
	start := wordStart(head)
	words, err := splitLine(head[:start])
	if err != nil {
		return line, pos, true
	}
	word := head[start:]
	var cands []candidate
	prefixLen := 0
	if len(words) == 0 {
		for prefixLen < len(word) && (word[prefixLen] == '-' || word[prefixLen] == '@') {
			prefixLen++
		}
		typed := word[prefixLen:]
		if strings.HasPrefix(typed, "!") {
			return line, pos, true
		}
		for _, cmd := range shellCommands {
			for _, n := range cmd.names {
				if strings.HasPrefix(n, typed) && n != "?" {
					cands = append(cands, candidate{name: n})
				}
			}
		}
		return sh.applyCompletion(head[:start+prefixLen], "", typed, cands, tail)
	}
	cmd := lookupCommand(strings.TrimLeft(words[0], "-@"))
	if cmd == nil || strings.ContainsAny(word, `'"`) {
		return line, pos, true
	}
	operand := 0
	for _, w := range words[1:] {
		if !strings.HasPrefix(w, "-") {
			operand++
		}
	}
	kind := cmd.args[min(operand, len(cmd.args)-1)]
	slash := strings.LastIndex(word, "/") + 1
	dirRaw, base := word[:slash], unescape(word[slash:])
	dir := unescape(dirRaw)
	switch kind {
	case 'r':
		ents, err := sh.completionList(sh.abs(dir))
		if err != nil {
			if errors.Is(err, errCompletionAway) && sh.term != nil {
				sh.term.Write([]byte(err.Error() + "\n"))
			}
			return line, pos, true
		}
		for _, e := range ents {
			cands = append(cands, candidate{name: e.Name, dir: e.Attrs.FileMode().IsDir()})
		}
	case 'l':
		d := localPath(dir)
		if d == "" {
			d = "."
		}
		ents, err := os.ReadDir(d)
		if err != nil {
			return line, pos, true
		}
		for _, e := range ents {
			cands = append(cands, candidate{name: e.Name(), dir: e.IsDir()})
		}
	default:
		return line, pos, true
	}
	cands = slices.DeleteFunc(cands, func(c candidate) bool {
		return !strings.HasPrefix(c.name, base) || strings.HasPrefix(c.name, ".") && !strings.HasPrefix(base, ".")
	})
	return sh.applyCompletion(head[:start], dirRaw, base, cands, tail)
}

// completionWait bounds how long Tab waits for a remote listing: a link
// that went away during the request would otherwise hold the prompt
// until the session resumed.
const completionWait = 3 * time.Second

var errCompletionAway = errors.New("(reconnecting: remote names complete again once the link is back)")

// completionList lists the remote directory dir for Tab. While the
// session is reconnecting, or a listing still waits from an earlier
// Tab, or this one takes longer than completionWait, it returns
// errCompletionAway at once instead of blocking the prompt; a listing
// left waiting ends on its own when the session resumes or closes.
func (sh *shell) completionList(dir string) ([]sftp.DirEntry, error) {
	if sh.s != nil {
		if st, ok := sh.s.client.ResumeStatus(); ok && st.State == resume.Detached {
			return nil, errCompletionAway
		}
	}
	if !sh.completing.CompareAndSwap(false, true) {
		return nil, errCompletionAway
	}
	type listing struct {
		ents []sftp.DirEntry
		err  error
	}
	done := make(chan listing, 1)
	go func() {
		ents, err := sh.c.ReadDir(dir)
		sh.completing.Store(false)
		done <- listing{ents, err}
	}()
	t := time.NewTimer(completionWait)
	defer t.Stop()
	select {
	case l := <-done:
		return l.ents, l.err
	case <-t.C:
		return nil, errCompletionAway
	}
}

type candidate struct {
	name string
	dir  bool
}

// applyCompletion puts the completion of typed (after lead and dirRaw)
// into the line: the one candidate, with "/" for a directory or a space
// otherwise; or the candidates' longest common prefix; or, when that
// adds nothing, a listing of them above the prompt.
func (sh *shell) applyCompletion(lead, dirRaw, typed string, cands []candidate, tail string) (string, int, bool) {
	slices.SortFunc(cands, func(a, b candidate) int { return strings.Compare(a.name, b.name) })
	cands = slices.CompactFunc(cands, func(a, b candidate) bool { return a.name == b.name })
	word := dirRaw + escapeWord(typed)
	switch {
	case len(cands) == 1:
		word = dirRaw + escapeWord(cands[0].name)
		if cands[0].dir {
			word += "/"
		} else if !strings.HasPrefix(tail, " ") {
			word += " "
		}
	case len(cands) > 1:
		common := cands[0].name
		for _, c := range cands[1:] {
			for !strings.HasPrefix(c.name, common) {
				common = common[:len(common)-1]
			}
		}
		if len(common) > len(typed) {
			word = dirRaw + escapeWord(common)
		} else if sh.term != nil {
			names := make([]string, len(cands))
			for i, c := range cands {
				names[i] = sanitize(c.name)
				if c.dir {
					names[i] += "/"
				}
			}
			sh.term.Write([]byte(strings.Join(lsColumns(names, sh.width()), "\n") + "\n"))
		}
	}
	newHead := lead + word
	return newHead + tail, len(newHead), true
}

// wordStart is where the last word of head begins (after the last blank
// outside quotes and not escaped).
func wordStart(head string) int {
	start := 0
	var quote byte
	for i := 0; i < len(head); i++ {
		switch ch := head[i]; {
		case ch == '\\':
			i++
		case quote != 0:
			if ch == quote {
				quote = 0
			}
		case ch == '\'' || ch == '"':
			quote = ch
		case ch == ' ' || ch == '\t':
			start = i + 1
		}
	}
	return start
}

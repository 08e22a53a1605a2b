package main

// rsftp sftp: an interactive SFTP shell with OpenSSH sftp's commands,
// over the same resumable session as get and put.
//
// On a terminal, lines are read with golang.org/x/term's Terminal (line
// editing, history, tab completion of commands and of remote and local
// paths) with the terminal's input in raw mode while a line is typed,
// and back in its usual mode while a command runs: then Ctrl-C is
// SIGINT, which ends the command under way (a transfer keeps what it
// moved and says how reget or reput continues it) and comes back to the
// prompt. At the prompt Ctrl-C drops the line and Ctrl-D (on an empty
// line) ends the session. Otherwise commands are read line by line from
// stdin or from -b's file, each echoed after "sftp> " as sftp does; in
// batch mode (-b) the first command that fails, unless prefixed with
// '-', ends rsftp with status 1, and BatchMode=yes forbids prompts.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"path"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/rsftp/rsftp/sftp"
)

func sftpUsage(w io.Writer) {
	fmt.Fprint(w, `usage: rsftp sftp [-apqrv] [-b batchfile] [-B buffer_size] [-R num_requests]
                 [-P port] [-i identity_file] [-c cipher] [-F ssh_config] [-o ssh_option]
                 [-J destination] [--events file] [--no-resume] [user@]host[:path]
       rsftp user@host[:path]     (the same, with no options: the word needs an @ or a :)

An interactive SFTP session with OpenSSH sftp's commands ("help" lists
them), line editing, history and tab completion of commands and paths.
Transfers resume like rsftp get and put: with a server that offers it
(rsftp serve), a lost connection is re-established without
authenticating again, and the session and a transfer under way go on.
Ctrl-C ends the transfer under way (reget or reput continues it); at the
prompt it clears the line, and Ctrl-D or "bye" ends the session.

  -b batchfile  read commands from batchfile ("-" for stdin), each echoed
                after "sftp> "; the first command that fails ends rsftp
                with status 1 unless it starts with '-' ('@' hides the
                echo); implies -o BatchMode=yes (no prompts)
  -a  get and put resume partial files (as reget and reput)
  -p  get and put preserve modification times and modes
  -r  get and put copy directories recursively
  -q  no progress meter, warnings or informational messages
  -B buffer_size   bytes per READ and WRITE request
  -R num_requests  requests in flight (fixed; by default it grows)
  host:path        start in the remote directory path, or fetch the file
                   path into the current directory and exit
Accepted and ignored: -2, -N; -4 and -6 set AddressFamily; -A and -C warn.
Refused: -1, -D, -l (bandwidth limit), -S, -s with another subsystem.
`)
}

var errSFTPHelp = errors.New("help")

// sftpArgs is what rsftp sftp's command line asks for beyond the options
// the other client commands share.
type sftpArgs struct {
	batchFile  string
	hasBatch   bool
	clientOpts []sftp.ClientOption
	fsync      bool
	dest       string
	warnings   []string
}

// parseSFTPArgs parses OpenSSH sftp's options. Those the other commands
// share go to parseFlags, in their order (so that -b's BatchMode=yes
// and -o options keep ssh's first-value-wins order).
func parseSFTPArgs(args []string) (*commonFlags, *sftpArgs, error) {
	sa := &sftpArgs{}
	var pass []string
	i := 0
args:
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		if strings.HasPrefix(a, "--") {
			name, _, hasVal := strings.Cut(a[2:], "=")
			if name == "help" {
				return nil, nil, errSFTPHelp
			}
			pass = append(pass, a)
			if name == "events" && !hasVal && i+1 < len(args) {
				i++
				pass = append(pass, args[i])
			}
			continue
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			if strings.IndexByte("bBRlsSDXPicFoJ", c) >= 0 {
				val := a[j+1:]
				if val == "" {
					i++
					if i == len(args) {
						return nil, nil, usageErr("%v", optionNeedsValue(c))
					}
					val = args[i]
				}
				if err := sa.valueOption(c, val, &pass); err != nil {
					return nil, nil, err
				}
				continue args
			}
			switch c {
			case 'q', 'v', 'a', 'p', 'r':
				pass = append(pass, "-"+string(c))
			case 'f':
				sa.fsync = true
			case 'h':
				return nil, nil, errSFTPHelp
			case '1':
				return nil, nil, usageErr("-1: SSH protocol version 1 is not supported")
			case '2', 'N':
			case '4':
				pass = append(pass, "-o", "AddressFamily=inet")
			case '6':
				pass = append(pass, "-o", "AddressFamily=inet6")
			case 'A':
				sa.warnings = append(sa.warnings, "-A ignored: an SFTP session does not use agent forwarding")
			case 'C':
				sa.warnings = append(sa.warnings, "-C ignored: compression is not supported")
			default:
				return nil, nil, usageErr("unknown option -- %c", c)
			}
		}
	}
	rest := args[i:]
	f, extra, err := parseFlags(pass, "PicFoJqvapr")
	if err != nil {
		return nil, nil, usageErr("%v", err)
	}
	if len(extra) != 0 {
		return nil, nil, usageErr("unexpected %q", extra[0])
	}
	if len(rest) != 1 {
		return nil, nil, usageErr("sftp needs one destination, [user@]host[:path]")
	}
	sa.dest = rest[0]
	return f, sa, nil
}

func (sa *sftpArgs) valueOption(c byte, val string, pass *[]string) error {
	number := func(what string) (int, error) {
		n, err := strconv.Atoi(val)
		if err != nil || n < 1 {
			return 0, usageErr("invalid %s %q", what, val)
		}
		return n, nil
	}
	switch c {
	case 'b':
		sa.batchFile, sa.hasBatch = val, true
		*pass = append(*pass, "-o", "BatchMode=yes")
	case 'B':
		n, err := number("buffer size")
		if err != nil {
			return err
		}
		sa.clientOpts = append(sa.clientOpts, sftp.ReadSize(n), sftp.WriteSize(n))
	case 'R':
		n, err := number("number of requests")
		if err != nil {
			return err
		}
		sa.clientOpts = append(sa.clientOpts, sftp.MaxInflight(n))
	case 'X':
		k, v, _ := strings.Cut(val, "=")
		switch strings.ToLower(k) {
		case "buffer":
			return sa.valueOption('B', v, pass)
		case "nrequests":
			return sa.valueOption('R', v, pass)
		}
		return usageErr("-X %s: unknown option (rsftp knows buffer= and nrequests=)", val)
	case 'l':
		return usageErr("-l: a bandwidth limit is not supported")
	case 's':
		if val != "sftp" {
			return usageErr("-s %s: only the sftp subsystem is supported", val)
		}
	case 'S':
		return usageErr("-S: rsftp is its own SSH client and runs no other program")
	case 'D':
		return usageErr("-D: connecting to a local sftp-server is not supported")
	default: // P i c F o J
		*pass = append(*pass, "-"+string(c), val)
	}
	return nil
}

// parseDest reads [user@]host[:path], [user@][v6addr][:path] or
// sftp://[user@]host[:port][/path]. path is "" when none was given.
func parseDest(s string, f *commonFlags) (remoteSpec, error) {
	if strings.HasPrefix(s, "sftp://") {
		u, err := url.Parse(s)
		if err != nil || u.Hostname() == "" {
			return remoteSpec{}, usageErr("invalid sftp:// address %q", s)
		}
		r := remoteSpec{host: u.Hostname(), path: strings.TrimPrefix(u.Path, "/")}
		if u.User != nil {
			r.user = u.User.Username()
		}
		if p := u.Port(); p != "" && f.port == "" {
			f.port = p
		}
		return r, nil
	}
	if r, ok := parseRemote(s); ok {
		return r, nil
	}
	var r remoteSpec
	if at := strings.LastIndex(s, "@"); at >= 0 {
		r.user, s = s[:at], s[at+1:]
	}
	r.host = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	if r.host == "" {
		return r, usageErr("no host in %q", s)
	}
	return r, nil
}

// looksLikeDestination says whether "rsftp WORD" means "rsftp sftp
// WORD": a word with '@' or ':' cannot be a subcommand's name.
func looksLikeDestination(word string) bool {
	return !strings.HasPrefix(word, "-") && strings.ContainsAny(word, "@:")
}

// errQuit is returned by bye, exit and quit.
var errQuit = errors.New("quit")

// errReported is a failure whose messages were already printed.
var errReported = errors.New("failed (see above)")

// errLineInterrupted is a line dropped with Ctrl-C (or put aside with
// Ctrl-Z, to be typed again).
var errLineInterrupted = errors.New("line interrupted")

// shell is one rsftp sftp session.
type shell struct {
	s   *session
	c   *sftp.Client
	log *logger

	stdout, stderr io.Writer
	interactive    bool // reading from a terminal with line editing
	batch          bool // -b
	quiet          bool // sftp's quiet when not interactive: no "Fetching ..." lines
	showProgress   bool // the progress command's toggle
	progCapable    bool // stderr is a terminal and -q was not given
	defResume      bool // -a
	defPreserve    bool // -p
	defRecursive   bool // -r
	fsyncWarned    bool

	term     *term.Terminal
	ttyFd    int
	ttyState *term.State // the terminal as rsftp found it
	keys     *ctrlCReader
	// completing is set while a remote listing for Tab is under way.
	completing atomic.Bool

	mu     sync.Mutex
	cwd    string // remote working directory, absolute
	home   string // the remote starting directory
	cancel context.CancelFunc
}

func runSFTP(args []string) error {
	f, sa, err := parseSFTPArgs(args)
	if errors.Is(err, errSFTPHelp) {
		sftpUsage(os.Stdout)
		return nil
	}
	if err != nil {
		return err
	}
	spec, err := parseDest(sa.dest, f)
	if err != nil {
		return err
	}
	msgs := &promptWriter{}
	sh := &shell{
		log:          &logger{level: 2, w: msgs},
		stdout:       os.Stdout,
		stderr:       os.Stderr,
		batch:        sa.hasBatch,
		showProgress: !sa.hasBatch,
		defResume:    f.resume,
		defPreserve:  f.preserve,
		defRecursive: f.recursive,
		ttyFd:        -1,
	}
	if !f.quiet {
		for _, w := range sa.warnings {
			fmt.Fprintf(os.Stderr, "rsftp: %s\n", w)
		}
	}
	if sa.fsync {
		sh.warnFsync()
	}

	var in io.Reader
	switch {
	case sa.hasBatch && sa.batchFile == "-":
		in = os.Stdin
	case sa.hasBatch:
		fh, err := os.Open(sa.batchFile)
		if err != nil {
			return fmt.Errorf("batch file: %v", err)
		}
		defer fh.Close()
		in = fh
	case term.IsTerminal(int(os.Stdin.Fd())) && term.IsTerminal(int(os.Stdout.Fd())):
		sh.interactive = true
		sh.ttyFd = int(os.Stdin.Fd())
		if sh.ttyState, err = term.GetState(sh.ttyFd); err != nil {
			return fmt.Errorf("terminal: %v", err)
		}
	default:
		in = os.Stdin
	}
	sh.quiet = !sh.interactive

	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigc)
	// SIGWINCH; on Windows a poll of the console's size (tty_windows.go).
	defer notifyResize(sigc, int(os.Stdout.Fd()))()
	go func() {
		for s := range sigc {
			sh.onSignal(s)
		}
	}()

	// Connect; SIGINT gives up.
	ctx, cancel := context.WithCancel(context.Background())
	sh.setCancel(cancel)
	s, err := connect(ctx, f, spec, sh.log)
	var c *sftp.Client
	if err == nil {
		if c, err = s.client.SFTP(ctx, sa.clientOpts...); err != nil {
			closeSession(ctx, s, nil)
			err = fmt.Errorf("%s: %w", s.host, err)
		}
	}
	interrupted := ctx.Err() != nil
	sh.setCancel(nil)
	cancel()
	if err != nil {
		if interrupted {
			return &exitError{code: 130, err: errors.New("interrupted while connecting")}
		}
		return err
	}
	sh.mu.Lock()
	sh.s, sh.c = s, c
	sh.mu.Unlock()
	defer closeSession(context.Background(), s, c)
	sh.progCapable = s.progress.on
	sh.setProgress(false)

	cwd, err := c.RealPath(".")
	if err != nil {
		return fmt.Errorf("remote working directory: %s", explain(err))
	}
	sh.cwd, sh.home = cwd, cwd
	if sh.log.level >= 2 {
		fmt.Fprintf(os.Stderr, "Connected to %s.\n", spec.host)
	}

	if spec.path != "" {
		done, err := sh.startAt(spec.path)
		if done || err != nil {
			return err
		}
	}

	var next func() (string, error)
	if sh.interactive {
		sh.keys = &ctrlCReader{r: os.Stdin}
		sh.term = term.NewTerminal(struct {
			io.Reader
			io.Writer
		}{sh.keys, os.Stdout}, "sftp> ")
		sh.term.History = &history{skip: sh.keys.pendingInterrupt}
		sh.term.AutoCompleteCallback = sh.complete
		msgs.t.Store(sh.term)
		defer msgs.t.Store(nil)
		defer term.Restore(sh.ttyFd, sh.ttyState)
		next = sh.readTTY
	} else {
		br := bufio.NewReaderSize(in, 64<<10)
		next = func() (string, error) {
			line, err := br.ReadString('\n')
			if err == io.EOF && line != "" {
				err = nil
			}
			return strings.TrimRight(line, "\r\n"), err
		}
	}
	return sh.loop(next)
}

// startAt handles the path of host:path: a directory becomes the working
// directory; anything else is fetched into the local directory, and the
// session ends (done), as sftp does.
func (sh *shell) startAt(p string) (done bool, err error) {
	abs := sh.abs(p)
	if st, err := sh.c.Stat(unescape(abs)); err == nil && st.FileMode().IsDir() {
		real, err := sh.c.RealPath(unescape(abs))
		if err != nil {
			return true, errors.New(explain(err))
		}
		sh.setCwd(real)
		return false, nil
	}
	quit, err := sh.execute("get " + escapeWord(unescape(abs)))
	_ = quit
	if err != nil {
		if !errors.Is(err, errReported) {
			fmt.Fprintln(sh.stderr, explain(err))
		}
		return true, &exitError{code: 1, err: fmt.Errorf("could not fetch %s", abs)}
	}
	return true, nil
}

// loop reads and runs commands until EOF, bye or, in batch mode, a
// failure.
func (sh *shell) loop(next func() (string, error)) error {
	lineNo := 0
	for {
		line, err := next()
		if errors.Is(err, errLineInterrupted) {
			continue
		}
		if err == io.EOF {
			if sh.interactive {
				fmt.Fprintln(sh.stdout)
			}
			return nil
		}
		if err != nil {
			return err
		}
		lineNo++
		cmd := strings.TrimLeft(line, " \t")
		ignore, noEcho := false, false
		for cmd != "" && (cmd[0] == '-' || cmd[0] == '@') {
			if cmd[0] == '-' {
				ignore = true
			} else {
				noEcho = true
			}
			cmd = cmd[1:]
		}
		if !sh.interactive && !noEcho {
			fmt.Fprintf(sh.stdout, "sftp> %s\n", line)
		}
		cmd = strings.TrimSpace(cmd)
		if cmd == "" || cmd[0] == '#' {
			continue
		}
		quit, err := sh.execute(cmd)
		if err != nil {
			if !errors.Is(err, errReported) {
				fmt.Fprintln(sh.stderr, explain(err))
			}
			if sh.batch && !ignore {
				return &exitError{code: 1, err: fmt.Errorf("batch stopped at line %d (%s) by the error above", lineNo, strings.TrimSpace(line))}
			}
		}
		if quit {
			return nil
		}
		if cerr := sh.c.Err(); cerr != nil {
			lost := &linkLostError{host: sh.s.host, cause: cerr, resumable: sh.s.client.Resumable(), err: cerr}
			return &exitError{code: 1, err: errors.New(userMessage(lost))}
		}
	}
}

// promptWriter takes the session's own messages (a lost link, the
// reconnection attempts), which come at any time: once the line editor
// runs they go through it, above the prompt, with the prompt and the line
// being typed drawn again beneath (and newlines as the raw terminal needs
// them); before that, and after, to stderr.
type promptWriter struct{ t atomic.Pointer[term.Terminal] }

func (w *promptWriter) Write(p []byte) (int, error) {
	if t := w.t.Load(); t != nil {
		return t.Write(p)
	}
	return os.Stderr.Write(p)
}

// readTTY reads a line with the terminal's input in raw mode.
func (sh *shell) readTTY() (string, error) {
	if err := rawInput(sh.ttyFd); err != nil {
		return "", fmt.Errorf("terminal: %v", err)
	}
	sh.resize()
	line, err := sh.term.ReadLine()
	term.Restore(sh.ttyFd, sh.ttyState)
	if sh.keys.takeInterrupt() {
		return "", errLineInterrupted
	}
	if sh.keys.takeSuspend() {
		// Ctrl-Z at the prompt stops rsftp, as with sftp's line
		// editor; once continued, the line typed so far is typed
		// again at a new prompt.
		if err := suspendSelf(); err != nil {
			fmt.Fprintf(sh.stderr, "cannot suspend: %v\n", err)
		}
		sh.keys.retype(strings.TrimSuffix(line, "^Z"))
		return "", errLineInterrupted
	}
	return line, err
}

func (sh *shell) resize() {
	if sh.term == nil {
		return
	}
	if w, h, err := term.GetSize(sh.ttyFd); err == nil {
		sh.term.SetSize(w, h)
	}
}

// width is the terminal's width for ls, 80 when not on a terminal.
func (sh *shell) width() int {
	if w, _, err := term.GetSize(int(os.Stdout.Fd())); err == nil && w > 0 {
		return w
	}
	return 80
}

func (sh *shell) setCancel(c context.CancelFunc) {
	sh.mu.Lock()
	sh.cancel = c
	sh.mu.Unlock()
}

func (sh *shell) onSignal(s os.Signal) {
	switch s {
	case sigResize:
		sh.resize()
	case os.Interrupt:
		// While a command runs: end it. At the prompt the terminal is in
		// raw mode and Ctrl-C is a key (see ctrlCReader); a SIGINT from
		// elsewhere is ignored there, as sftp does.
		sh.mu.Lock()
		if sh.cancel != nil {
			sh.cancel()
		}
		sh.mu.Unlock()
	default:
		// SIGTERM, SIGHUP: give the terminal back and end the session.
		if sh.ttyState != nil {
			term.Restore(sh.ttyFd, sh.ttyState)
		}
		sh.mu.Lock()
		s2, c := sh.s, sh.c
		sh.mu.Unlock()
		if s2 != nil {
			done, cancel := context.WithCancel(context.Background())
			cancel()
			closeSession(done, s2, c)
		}
		n := s.(syscall.Signal)
		fmt.Fprintf(os.Stderr, "\nrsftp sftp: ended by %s\n", sigName(n))
		os.Exit(128 + int(n))
	}
}

func (sh *shell) getCwd() string {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.cwd
}

func (sh *shell) setCwd(p string) {
	sh.mu.Lock()
	sh.cwd = p
	sh.mu.Unlock()
}

// abs makes a remote path (which may hold glob escapes) absolute: "~"
// and "~/..." are the starting directory, "~user" that user's home
// where the server tells it, a relative path is under the working
// directory.
func (sh *shell) abs(p string) string {
	sh.mu.Lock()
	cwd, home := sh.cwd, sh.home
	sh.mu.Unlock()
	switch {
	case p == "" || p == ".":
		return cwd
	case p == "~":
		return home
	case strings.HasPrefix(p, "~/"):
		return path.Join(home, p[2:])
	case strings.HasPrefix(p, "~") && sh.c != nil:
		// ~user: expand-path@openssh.com or home-directory, if the
		// server offers one; else the path stays as written (and the
		// operation on it fails).
		if user, rest, _ := sftp.SplitTilde(p); user != "" {
			if h, err := sh.c.TildeHome(unescape(user)); err == nil {
				return path.Join(sftp.GlobEscape(h), rest)
			}
		}
	case path.IsAbs(p):
		return path.Clean(p)
	}
	return path.Join(cwd, p)
}

// display is how ls shows a remote path: relative to the working
// directory when the user's argument was relative.
func (sh *shell) display(p string, relative bool) string {
	if !relative {
		return p
	}
	cwd := sh.getCwd()
	if cwd == "/" {
		return strings.TrimPrefix(p, "/")
	}
	if strings.HasPrefix(p, cwd+"/") {
		return p[len(cwd)+1:]
	}
	return p
}

// glob expands a remote pattern (as the user typed it, with escapes)
// with sftp.Client.Glob, as sftp does; a pattern without wildcards comes
// back unescaped and unchecked, one that matches nothing as no path.
func (sh *shell) glob(ctx context.Context, pattern string) ([]string, error) {
	abs := sh.abs(pattern)
	if !sftp.HasMeta(abs) {
		return []string{unescape(abs)}, nil
	}
	ms, err := sh.c.Glob(ctx, abs)
	if errors.Is(err, sftp.ErrNoMatch) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	paths := make([]string, len(ms))
	for i, m := range ms {
		paths[i] = m.Path
	}
	return paths, nil
}

// gatedWriter stops passing output on once a command is abandoned (an
// interrupted request whose answer comes after the prompt is back).
type gatedWriter struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func (g *gatedWriter) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return len(p), nil
	}
	return g.w.Write(p)
}

func (g *gatedWriter) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// call is one command being run.
type call struct {
	ctx  context.Context
	out  io.Writer
	args []string // the words, glob escapes kept
	rest string   // the line after the command's name, as typed
}

// execute runs one command line (without its '-' and '@' prefixes).
func (sh *shell) execute(line string) (quit bool, err error) {
	if line[0] == '!' {
		return false, sh.localShell(strings.TrimSpace(line[1:]))
	}
	args, err := splitLine(line)
	if err != nil {
		return false, err
	}
	if len(args) == 0 {
		return false, nil
	}
	cmd := lookupCommand(args[0])
	if cmd == nil {
		return false, errors.New("Invalid command.")
	}
	rest := ""
	if i := strings.IndexAny(line, " \t"); i >= 0 {
		rest = strings.TrimSpace(line[i:])
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sh.setCancel(cancel)
	defer sh.setCancel(nil)
	gw := &gatedWriter{w: sh.stdout}
	c := &call{ctx: ctx, out: gw, args: args, rest: rest}
	if cmd.mode == modeLocal {
		err = cmd.run(sh, c)
	} else {
		done := make(chan error, 1)
		go func() { done <- cmd.run(sh, c) }()
		select {
		case err = <-done:
		case <-ctx.Done():
			if cmd.mode == modeTransfer {
				// Transfers honour ctx: they stop promptly and say what
				// they kept.
				err = <-done
				break
			}
			t := time.NewTimer(interruptGrace)
			select {
			case err = <-done:
			case <-t.C:
				gw.close()
				err = fmt.Errorf("%s interrupted; the server may still carry it out", args[0])
			}
			t.Stop()
		}
	}
	if errors.Is(err, errQuit) {
		return true, nil
	}
	return false, err
}

// ctrlCReader hands the terminal's keys to x/term's Terminal, which
// treats Ctrl-C as the end of input. It turns a Ctrl-C into "^C" at the
// end of the line and Enter instead, and marks the line as interrupted,
// so that the shell drops it (and the history does not keep it). The
// Ctrl-C is handed over alone, after what came before it was read: the
// Terminal only reads again once it has no complete line left, so the
// line it returns next is the interrupted one.
//
// Ctrl-Z is handed over the same way ("^Z" and Enter), marked as a
// suspension: the shell stops rsftp, and once continued hands the line
// back (retype) to be read again at a new prompt. The terminal's own ^Z
// is off in raw mode, and sftp's line editor suspends on it. Not on
// Windows, which has no job control.
type ctrlCReader struct {
	r io.Reader

	mu          sync.Mutex
	buf         [256]byte
	pending     []byte
	err         error
	interrupted bool
	suspended   bool
}

const (
	ctrlC = 0x03
	ctrlZ = 0x1a
)

// canSuspend: Windows has no job control.
const canSuspend = runtime.GOOS != "windows"

// isStop reports whether b is a key that ends the line at once: Ctrl-C,
// and Ctrl-Z where rsftp can be suspended.
func isStop(b byte) bool { return b == ctrlC || (b == ctrlZ && canSuspend) }

func (k *ctrlCReader) Read(p []byte) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.pending) == 0 {
		if k.err != nil {
			err := k.err
			k.err = nil
			return 0, err
		}
		n, err := k.r.Read(k.buf[:])
		if n == 0 {
			return 0, err
		}
		k.pending, k.err = k.buf[:n], err
	}
	switch k.pending[0] {
	case ctrlC:
		k.pending = k.pending[1:]
		k.interrupted = true
		return copy(p, "\x05^C\r"), nil // Ctrl-E (end of line), ^C, Enter
	case ctrlZ:
		if canSuspend {
			k.pending = k.pending[1:]
			k.suspended = true
			return copy(p, "\x05^Z\r"), nil
		}
	}
	end := 1
	for end < len(k.pending) && !isStop(k.pending[end]) {
		end++
	}
	n := copy(p, k.pending[:end])
	k.pending = k.pending[n:]
	return n, nil
}

// pendingInterrupt reports whether the line being returned is to be
// dropped (Ctrl-C) or put aside (Ctrl-Z): the history skips it.
func (k *ctrlCReader) pendingInterrupt() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.interrupted || k.suspended
}

func (k *ctrlCReader) takeSuspend() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	was := k.suspended
	k.suspended = false
	return was
}

// retype puts line before the keys not yet read, as if typed again.
func (k *ctrlCReader) retype(line string) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.pending = append([]byte(line), k.pending...)
}

func (k *ctrlCReader) takeInterrupt() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	was := k.interrupted
	k.interrupted = false
	return was
}

// history keeps the lines typed, without empty ones, repeats of the
// previous one or lines dropped with Ctrl-C.
type history struct {
	lines []string
	skip  func() bool
}

const historyMax = 500

func (h *history) Add(s string) {
	if strings.TrimSpace(s) == "" || (h.skip != nil && h.skip()) {
		return
	}
	if n := len(h.lines); n > 0 && h.lines[n-1] == s {
		return
	}
	h.lines = append(h.lines, s)
	if len(h.lines) > historyMax {
		h.lines = h.lines[len(h.lines)-historyMax:]
	}
}

func (h *history) Len() int                { return len(h.lines) }
func (h *history) At(i int) string         { return h.lines[len(h.lines)-1-i] }
func (sh *shell) warnf(f string, a ...any) { fmt.Fprintf(sh.stderr, f+"\n", a...) }

// termSize is the size of w if it is a terminal.
func termSize(w io.Writer) (int, int, error) {
	if f, ok := w.(*os.File); ok {
		return term.GetSize(int(f.Fd()))
	}
	return 0, 0, errors.New("not a terminal")
}

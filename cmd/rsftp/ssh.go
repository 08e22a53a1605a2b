package main

// rsftp ssh: OpenSSH's ssh with a session that survives the network. A
// shell or command, with a pseudo-terminal as ssh decides, forwards (-L,
// -R, -D), agent forwarding (-A), the escape sequences, and the exit
// status ssh gives; over a resumable session (rsftp serve), a lost link
// only pauses it: keys typed meanwhile are kept and delivered once, and
// the output goes on from where it stopped.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/channel"
	"github.com/rsftp/rsftp/internal/connmsg"
)

// sshExitFailure is ssh's exit status for its own failures (usage,
// configuration, connection), and for a remote command that ended
// without an exit status (killed by a signal).
const sshExitFailure = 255

const sshUsage = `usage: rsftp ssh [-46AaCgNnqsTtVvx] [-b bind_address] [-c cipher_spec]
                [-D [bind_address:]port] [-E log_file] [-e escape_char]
                [-F configfile] [-i identity_file] [-J destination]
                [-L address] [-l login_name] [-m mac_spec] [-o option]
                [-p port] [-Q query_option] [-R address] [-W host:port]
                [--events file] [--no-resume]
                destination [command [argument ...]]

Logs in to destination ([user@]host or ssh://[user@]host[:port]) and runs
command there, or a login shell, as OpenSSH's ssh does: the same options,
ssh_config and known_hosts, the exit status of the remote command (255 for
a failure of rsftp ssh itself or a command killed by a signal).

  -L [bind_address:]port:host:hostport   forward a local port to host:hostport
  -L [bind_address:]port:remote_socket   (from the server); also
  -L local_socket:host:hostport          local_socket:remote_socket
  -R [bind_address:]port:host:hostport   forward a port on the server to
  -R [bind_address:]port:local_socket    host:hostport from here (port 0: the
  -R remote_socket:host:hostport         server picks one); -R [bind:]port
                                         alone: SOCKS from the server's side
  -D [bind_address:]port  a SOCKS4/4a/5 proxy here, connecting from the server
  -A, -a          forward the agent ($SSH_AUTH_SOCK), or do not
  -N              no command: forwards only
  -T, -t, -tt     no pseudo-terminal; one; one even when stdin is no terminal
  -n              stdin from /dev/null
  -e char         the escape character (default ~; "none" turns escapes off)
  -s              command is a subsystem
  -W host:port    connect stdin and stdout to host:port from the server
  -E log_file     rsftp's messages to log_file instead of stderr
  -g              GatewayPorts: -L and -D listen on every address
  -4, -6          IPv4 or IPv6 only
  -l login        the user to log in as
  -p port         the server's port
  -b address      the local address to connect from
  -c, -m          ciphers, MACs (as ssh)
  -Q term         list what rsftp supports: cipher, cipher-auth, mac, kex,
                  key, key-cert, key-plain, key-sig, sig, key-ca-sign,
                  compression, protocol-version (help: the terms), or an
                  ssh_config keyword that takes an algorithm list
` + sshCommonHelp + `
Escapes (typed right after a newline, with a pseudo-terminal): ~. ends the
session, ~^Z suspends rsftp, ~# lists forwarded connections, ~C adds or
cancels a forward (-L, -R, -D, -KL, -KR, -KD, as ssh's), ~& (once the
session's command ended and rsftp waits for forwarded connections) ends rsftp
with them (ssh would fork and serve them in the background), ~B sends a BREAK,
~R re-exchanges keys, ~^R reconnects now, ~? lists them all, ~~ sends ~.

With a server that offers it (rsftp serve), a lost connection does not end
the session: rsftp reconnects by itself for as long as the server holds it.
Keys typed meanwhile are kept and delivered once; the terminal's title says
that it is reconnecting and how long the server still holds the session,
and is put back once resumed (the screen itself is left to the remote
program: not a byte of its output is lost).
`

const sshCommonHelp = `  -i identity     a private key file (repeatable)
  -F ssh_config   read this file instead of ~/.ssh/config ("none": no file)
  -o option       an ssh_config option, as Key=Value (repeatable)
  -J [user@]host[:port][,...]  through these jump hosts, in order
  -q              quiet: no warnings
  -v              verbose
  --events file   append session events (connected, link_lost, reconnecting,
                  resumed, resume_failed, closed) to file as JSON lines
  --no-resume     plain SSH: do not offer session resumption
`

// sshArgs is rsftp ssh's command line.
type sshArgs struct {
	f        commonFlags
	dest     remoteSpec
	command  []string
	forwards []forwardSpec
	flagOpts []string // options the flags set, before -o's
	logFile  string   // -E
	stdio    string   // -W host:port
	help     bool
	version  bool
	query    string // -Q
}

// parseSSHArgs reads ssh's command line: options, the destination, more
// options (ssh reads them after the destination too), then the command
// and its arguments, which are not options.
func parseSSHArgs(args []string) (*sshArgs, error) {
	a := &sshArgs{f: commonFlags{resumeHelper: true}} // ResumeHelper=auto takes the helper through sshd, as for the file commands
	haveDest := false
	i := 0
	noMore := false
	tty := 0
	for i < len(args) {
		arg := args[i]
		if noMore || len(arg) < 2 || arg[0] != '-' {
			if haveDest {
				break
			}
			if err := a.setDest(arg); err != nil {
				return nil, err
			}
			haveDest = true
			i++
			continue
		}
		i++
		if arg == "--" {
			noMore = true
			continue
		}
		if strings.HasPrefix(arg, "--") {
			name, val, hasVal := strings.Cut(arg[2:], "=")
			switch name {
			case "help":
				a.help = true
				return a, nil
			case "events":
				if !hasVal {
					if i == len(args) {
						return nil, errors.New("option --events needs a file")
					}
					val = args[i]
					i++
				}
				a.f.events = val
			case "no-resume":
				if hasVal {
					return nil, errors.New("option --no-resume takes no value")
				}
				a.f.noResume = true
			default:
				return nil, fmt.Errorf("unknown option --%s", name)
			}
			continue
		}
		for j := 1; j < len(arg); j++ {
			c := arg[j]
			if strings.IndexByte("BbcDEeFIiJLlmOopQRSWw", c) >= 0 {
				val := arg[j+1:]
				if val == "" {
					if i == len(args) {
						return nil, fmt.Errorf("option -%c needs a value", c)
					}
					val = args[i]
					i++
				}
				if err := a.setValue(c, val); err != nil {
					return nil, err
				}
				if a.query != "" {
					return a, nil // answered at once, as ssh does
				}
				break
			}
			switch c {
			case '4':
				a.flagOpts = append(a.flagOpts, "AddressFamily=inet")
			case '6':
				a.flagOpts = append(a.flagOpts, "AddressFamily=inet6")
			case 'A':
				a.flagOpts = append(a.flagOpts, "ForwardAgent=yes")
			case 'a':
				a.flagOpts = append(a.flagOpts, "ForwardAgent=no")
			case 'C':
				a.flagOpts = append(a.flagOpts, "Compression=yes") // warned about, as any keyword rsftp ignores
			case 'g':
				a.flagOpts = append(a.flagOpts, "GatewayPorts=yes")
			case 'N':
				a.flagOpts = append(a.flagOpts, "SessionType=none")
			case 'n':
				a.flagOpts = append(a.flagOpts, "StdinNull=yes")
			case 's':
				a.flagOpts = append(a.flagOpts, "SessionType=subsystem")
			case 'T':
				tty = -1
			case 't':
				if tty < 0 {
					tty = 0
				}
				tty++
			case 'q':
				a.f.quiet = true
			case 'v':
				a.f.verbose++
				showErrorChain = true
			case 'V':
				a.version = true
				return a, nil
			case 'x', 'k', 'K':
				// No X11 forwarding and no GSSAPI here either way.
			case 'h':
				a.help = true
				return a, nil
			case 'X', 'Y':
				return nil, fmt.Errorf("-%c: rsftp does not forward X11", c)
			case 'f':
				return nil, errors.New("-f: rsftp cannot put itself in the background after authenticating (a Go program cannot fork); run it with & or under nohup, with -N for forwards only")
			case 'M', 'G':
				return nil, fmt.Errorf("-%c is not supported by rsftp", c)
			default:
				return nil, fmt.Errorf("unknown option -- %c", c)
			}
		}
	}
	if !haveDest {
		return nil, errors.New("no destination")
	}
	a.command = args[i:]
	switch {
	case tty < 0:
		a.flagOpts = append(a.flagOpts, "RequestTTY=no")
	case tty == 1:
		a.flagOpts = append(a.flagOpts, "RequestTTY=yes")
	case tty > 1:
		a.flagOpts = append(a.flagOpts, "RequestTTY=force")
	}
	// The flags' options come first: they win over -o and the files.
	for _, o := range a.flagOpts {
		if err := checkOptionValue('o', o, nil); err != nil {
			return nil, err
		}
	}
	a.f.options = append(append([]string(nil), a.flagOpts...), a.f.options...)
	return a, nil
}

// setDest reads the destination: [user@]host or ssh://[user@]host[:port].
func (a *sshArgs) setDest(s string) error {
	if rest, ok := strings.CutPrefix(s, "ssh://"); ok {
		u, err := url.Parse("ssh://" + rest)
		if err != nil || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("invalid destination %q (want ssh://[user@]host[:port])", s)
		}
		a.dest.host = u.Hostname()
		if u.User != nil && a.dest.user == "" {
			a.dest.user = u.User.Username()
		}
		if p := u.Port(); p != "" && a.f.port == "" {
			if err := checkOptionValue('P', p, nil); err != nil {
				return err
			}
			a.f.port = p
		}
		return nil
	}
	if at := strings.LastIndexByte(s, '@'); at >= 0 {
		if at == 0 {
			return fmt.Errorf("invalid destination %q", s)
		}
		if a.dest.user == "" {
			a.dest.user = s[:at]
		}
		s = s[at+1:]
	}
	if s == "" {
		return errors.New("empty host name")
	}
	a.dest.host = s
	return nil
}

// setValue takes an option with a value.
func (a *sshArgs) setValue(c byte, val string) error {
	switch c {
	case 'p':
		if err := checkOptionValue('P', val, nil); err != nil {
			return err
		}
		if a.f.port == "" {
			a.f.port = val
		}
	case 'l':
		if a.dest.user == "" {
			a.dest.user = val
		}
	case 'i':
		a.f.identities = append(a.f.identities, val)
	case 'F':
		a.f.configFile = val
	case 'o':
		if err := checkOptionValue('o', val, a.f.options); err != nil {
			return err
		}
		a.f.options = append(a.f.options, val)
	case 'J':
		if err := checkOptionValue('J', val, nil); err != nil {
			return err
		}
		if a.f.jump != "" {
			return errors.New("only one -J is allowed (separate jump hops with commas)")
		}
		a.f.jump = val
	case 'c':
		if err := checkOptionValue('c', val, nil); err != nil {
			return err
		}
		a.f.cipher = val
	case 'm':
		a.flagOpts = append(a.flagOpts, "MACs="+val)
	case 'b':
		a.flagOpts = append(a.flagOpts, "BindAddress="+val)
	case 'e':
		if _, ok := parseEscapeChar(val); !ok {
			return fmt.Errorf("bad escape character %q (one character, ^X or none)", val)
		}
		a.flagOpts = append(a.flagOpts, "EscapeChar="+val)
	case 'E':
		a.logFile = val
	case 'L', 'R', 'D':
		f, err := parseForward(c, val)
		if err != nil {
			return err
		}
		a.forwards = append(a.forwards, f)
	case 'W':
		host, port, err := net.SplitHostPort(val)
		if err != nil || host == "" || parsePort(port) <= 0 {
			return fmt.Errorf("bad stdio forwarding specification %q (want host:port)", val)
		}
		a.stdio = val
	case 'S':
		if !strings.EqualFold(val, "none") {
			return errors.New("-S: rsftp does not multiplex sessions over a control socket")
		}
	case 'B':
		return errors.New("-B: rsftp cannot bind to an interface; use -b with its address")
	case 'I':
		return errors.New("-I: rsftp does not load PKCS#11 providers")
	case 'Q':
		a.query = val
	case 'O', 'w':
		return fmt.Errorf("-%c is not supported by rsftp", c)
	}
	return nil
}

// sshOptions are the session's options, resolved from the command line
// and ssh_config.
type sshOptions struct {
	requestTTY  string // no, yes, force, auto
	sessionType string // none, subsystem, default
	command     string
	stdinNull   bool
	escape      int
	agent       string // the agent's socket to forward, "" for none
	sendEnv     []string
	setEnv      []string
	forwards    []forwardSpec
	exitOnFwd   bool
	gateway     bool
}

func resolveSSHOptions(cfg *sshConfig, a *sshArgs) (*sshOptions, error) {
	o := &sshOptions{
		requestTTY:  strings.ToLower(cfg.getDefault("requesttty", "auto")),
		sessionType: strings.ToLower(cfg.getDefault("sessiontype", "default")),
		stdinNull:   yes(cfg.getDefault("stdinnull", "no")),
		exitOnFwd:   yes(cfg.getDefault("exitonforwardfailure", "no")),
		gateway:     yes(cfg.getDefault("gatewayports", "no")),
		setEnv:      cfg.all("setenv"),
	}
	switch o.requestTTY {
	case "true":
		o.requestTTY = "yes"
	case "false":
		o.requestTTY = "no"
	}
	o.escape, _ = parseEscapeChar(cfg.getDefault("escapechar", "~"))
	o.command = strings.Join(a.command, " ")
	if rc, ok := cfg.get("remotecommand"); ok && !strings.EqualFold(rc, "none") {
		if o.command != "" {
			return nil, errors.New("cannot run both the command line's command and RemoteCommand")
		}
		o.command = rc
	}
	if o.sessionType == "subsystem" && o.command == "" {
		return nil, errors.New("-s (SessionType subsystem) needs the subsystem's name as the command")
	}
	switch fa := cfg.getDefault("forwardagent", "no"); strings.ToLower(fa) {
	case "no", "false":
	case "yes", "true":
		o.agent = auth.DefaultAgentSocket()
	default:
		p, err := expandDollar(fa, os.LookupEnv)
		if err != nil {
			return nil, fmt.Errorf("ForwardAgent %s: %w", fa, err)
		}
		o.agent, _ = tildeExpand(p, os.Getenv("HOME"))
	}
	o.sendEnv = cfg.all("sendenv")
	if !yes(cfg.getDefault("clearallforwardings", "no")) {
		o.forwards = append(o.forwards, a.forwards...)
		for _, k := range []struct {
			key  string
			kind byte
		}{{"localforward", 'L'}, {"remoteforward", 'R'}, {"dynamicforward", 'D'}} {
			for _, v := range cfg.all(k.key) {
				spec, err := configForwardSpec(k.kind, strings.Fields(v))
				if err == nil {
					var f forwardSpec
					if f, err = parseForward(k.kind, spec); err == nil {
						o.forwards = append(o.forwards, f)
						continue
					}
				}
				return nil, err
			}
		}
	}
	return o, nil
}

// sendEnvNames are the local variables SendEnv sends: those whose name
// one of its patterns matches, a "-pattern" taking back the patterns
// before it that it matches (ssh's rm_env).
func sendEnvNames(patterns []string, environ []string) []string {
	var pats []string
	for _, p := range patterns {
		if rm, ok := strings.CutPrefix(p, "-"); ok {
			kept := pats[:0]
			for _, q := range pats {
				if !auth.MatchPattern(rm, q) {
					kept = append(kept, q)
				}
			}
			pats = kept
			continue
		}
		pats = append(pats, p)
	}
	var out []string
	for _, kv := range environ {
		name, _, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			continue
		}
		for _, p := range pats {
			if auth.MatchPattern(p, name) {
				out = append(out, kv)
				break
			}
		}
	}
	return out
}

// wantPTY decides, as ssh does, whether to ask for a pseudo-terminal:
// RequestTTY force always; no never (nor with no session, -N); yes, or
// auto with no command, when stdin is a terminal. warn says ssh's
// "Pseudo-terminal will not be allocated" applies.
func wantPTY(o *sshOptions, stdinTTY bool) (pty, warn bool) {
	switch o.requestTTY {
	case "force":
		return o.sessionType != "none", false
	case "yes":
		pty = true
	case "no":
		return false, false
	default:
		pty = o.command == "" && o.sessionType == "default"
	}
	if o.sessionType == "none" {
		return false, false
	}
	if !stdinTTY || o.stdinNull {
		return false, pty
	}
	return pty, false
}

// runSSH runs rsftp ssh and returns its exit status; it prints its own
// messages.
func runSSH(args []string) int {
	a, err := parseSSHArgs(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "rsftp ssh: %s (rsftp ssh -h prints the usage)\n", err)
		return sshExitFailure
	}
	if a.help {
		fmt.Print(sshUsage)
		return 0
	}
	if a.version {
		fmt.Fprint(os.Stderr, versionText())
		return 0
	}
	if a.query != "" {
		names, err := queryAlgorithms(a.query)
		if err != nil {
			fmt.Fprintf(os.Stderr, "rsftp ssh: %v\n", err)
			return sshExitFailure
		}
		for _, n := range names {
			fmt.Println(n)
		}
		return 0
	}
	r := &sshRun{a: a, log: &logger{level: 2}}
	r.log.w = rawLineWriter{r: r, w: os.Stderr}
	if a.logFile != "" {
		f, err := os.OpenFile(a.logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			fmt.Fprintf(os.Stderr, "rsftp ssh: -E: %v\n", err)
			return sshExitFailure
		}
		defer f.Close()
		r.log.w = f
	}
	return r.run()
}

// sshRun is one run of rsftp ssh.
type sshRun struct {
	a    *sshArgs
	o    *sshOptions
	log  *logger
	s    *session
	dest string // user@host, for messages and the title

	out     *termOut
	notice  *notice
	fwd     *forwarder
	sess    *channel.Session
	havePTY bool

	termMu  sync.Mutex
	rawFd   int
	restore func() // the terminal's modes as they were; nil when not raw

	quit     chan string // why the session ends at this side's request (~., a signal)
	quitOnce sync.Once
	// sessionOver is set once the session's program ended: ~& then
	// ends rsftp (waitForwards).
	sessionOver atomic.Bool
}

// fail prints a failure as ssh's one line on stderr and returns 255.
func (r *sshRun) fail(err error) int {
	r.restoreTerminal()
	msg := userMessage(err)
	if r.dest != "" {
		msg = strings.ReplaceAll(msg, "\n", " ")
	}
	fmt.Fprintf(r.log.out(), "rsftp ssh: %s\r\n", msg)
	if showErrorChain && msg != err.Error() {
		fmt.Fprintf(r.log.out(), "debug1: the error in full: %v\r\n", err)
	}
	return sshExitFailure
}

func (r *sshRun) run() int {
	a := r.a
	// Signals end the session with ssh's status; the terminal is put
	// back first (restoreTerminal).
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.quit = make(chan string, 1)
	var sigMu sync.Mutex
	var gotSig os.Signal
	go func() {
		select {
		case s := <-sigs:
			sigMu.Lock()
			gotSig = s
			sigMu.Unlock()
			cancel()
			r.end("signal")
		case <-ctx.Done():
		}
	}()
	sigStatus := func() (int, bool) {
		sigMu.Lock()
		defer sigMu.Unlock()
		if gotSig == nil {
			return 0, false
		}
		r.restoreTerminal()
		r.log.debugf("Killed by signal %v.", gotSig)
		if gotSig == syscall.SIGTERM && r.o != nil && r.o.sessionType == "none" {
			return 0, true // ssh -N ends cleanly on SIGTERM
		}
		return sshExitFailure, true
	}

	a.f.command = strings.Join(a.command, " ")
	a.f.sessionType = "shell"
	switch {
	case a.stdio != "" || hasOpt(a.flagOpts, "SessionType=none"):
		a.f.sessionType = "none"
	case hasOpt(a.flagOpts, "SessionType=subsystem"):
		a.f.sessionType = "subsystem"
	case a.f.command != "":
		a.f.sessionType = "exec"
	}
	r.dest = a.dest.host
	if a.dest.user != "" {
		r.dest = a.dest.user + "@" + a.dest.host
	}
	// The notice goes to the terminal once it is known whether a pty is
	// in use; until then events are lines.
	var noticeMu sync.Mutex
	a.f.onEvent = func(e rsftp.Event) {
		noticeMu.Lock()
		n := r.notice
		noticeMu.Unlock()
		if n != nil {
			n.event(e)
		} else if e.Kind == rsftp.EventLinkLost || e.Kind == rsftp.EventResumed {
			r.log.infof("%s", eventLine(e))
		}
	}
	s, err := connect(ctx, &a.f, a.dest, r.log)
	if err != nil {
		if code, ok := sigStatus(); ok {
			return code
		}
		return r.fail(err)
	}
	r.s = s
	defer s.Close()
	r.dest = s.hc.user + "@" + s.hc.hostArg
	o, err := resolveSSHOptions(s.hc.cfg, a)
	if err != nil {
		return r.fail(err)
	}
	r.o = o
	stdinTTY := term.IsTerminal(int(os.Stdin.Fd()))
	pty, warn := wantPTY(o, stdinTTY)
	if a.stdio != "" {
		pty, warn = false, false
	}
	if warn {
		r.log.warnf("Pseudo-terminal will not be allocated because stdin is not a terminal.")
	}
	r.havePTY = pty
	r.out = newTermOut(os.Stdout)
	var n *notice
	if pty && term.IsTerminal(int(os.Stdout.Fd())) {
		n = newNotice(r.out, r.dest, r.log)
	} else {
		n = newNotice(nil, r.dest, r.log)
	}
	noticeMu.Lock()
	r.notice = n
	noticeMu.Unlock()
	defer n.close()

	// Forwards first, as ssh sets them up before the session.
	r.fwd = newForwarder(ctx, s.client, r.log, o.gateway)
	defer r.fwd.close()
	for _, f := range o.forwards {
		if err := r.fwd.start(f); err != nil {
			if o.exitOnFwd {
				return r.fail(fmt.Errorf("forwarding failed (ExitOnForwardFailure): %w", err))
			}
			r.log.warnf("Warning: %v", err)
		}
	}

	code := 0
	switch {
	case a.stdio != "":
		code = r.runStdio(ctx)
	case o.sessionType == "none":
		code = r.runNone(ctx)
	default:
		code = r.runSession(ctx, stdinTTY)
	}
	if c, ok := sigStatus(); ok {
		return c
	}
	return code
}

func hasOpt(opts []string, o string) bool {
	for _, x := range opts {
		if x == o {
			return true
		}
	}
	return false
}

// eventLine is a session event as a line on stderr (no terminal).
func eventLine(e rsftp.Event) string {
	switch e.Kind {
	case rsftp.EventLinkLost:
		return fmt.Sprintf("connection lost (%s); reconnecting, the server holds the session for %s", linkCause(e.Err), e.HoldLeft.Round(time.Second))
	case rsftp.EventResumed:
		return fmt.Sprintf("resumed after %s offline; nothing lost", shortDuration(e.Offline))
	}
	return string(e.Kind)
}

// end asks the session to end at this side's request (~., a signal).
func (r *sshRun) end(why string) {
	r.quitOnce.Do(func() {
		r.quit <- why
		close(r.quit)
	})
}

// connectionGone is why a session ended that this side did not end: the
// connection's error, said as ssh says it.
func (r *sshRun) connectionGone() int {
	err := r.s.client.Wait()
	if st, ok := r.s.client.ResumeStatus(); ok && st.Err != nil {
		err = st.Err
	}
	r.restoreTerminal()
	if errors.Is(err, rsftp.ErrHoldExpired) {
		fmt.Fprintf(os.Stderr, "Connection to %s lost: the server's hold of the session ran out before the link came back.\r\n", r.s.host)
		return sshExitFailure
	}
	fmt.Fprintf(os.Stderr, "Connection to %s closed by remote host.\r\n", r.s.host)
	if err != nil {
		r.log.debugf("the connection's error: %v", err)
	}
	return sshExitFailure
}

// runNone is -N: forwards only, until a signal, ~. (no terminal here) or
// the connection's end.
func (r *sshRun) runNone(ctx context.Context) int {
	done := make(chan struct{})
	go func() {
		r.s.client.Wait()
		close(done)
	}()
	select {
	case <-ctx.Done():
		return 0
	case <-r.quit:
		return 0
	case <-done:
		return r.connectionGone()
	}
}

// runStdio is -W: stdin and stdout joined to host:port as the server
// reaches it (a ProxyCommand for another ssh).
func (r *sshRun) runStdio(ctx context.Context) int {
	host, ps, _ := net.SplitHostPort(r.a.stdio)
	c, err := r.s.client.DialTCP(ctx, host, parsePort(ps))
	if err != nil {
		return r.fail(fmt.Errorf("stdio forwarding to %s failed: %w", r.a.stdio, err))
	}
	defer c.Close()
	out := make(chan struct{})
	go func() {
		io.Copy(os.Stdout, c)
		close(out)
	}()
	go func() {
		io.Copy(c, os.Stdin)
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}()
	select {
	case <-out:
	case <-ctx.Done():
	}
	return 0
}

// enterRaw puts the terminal in raw mode (ssh's enter_raw_mode), keeping
// how to put it back.
func (r *sshRun) enterRaw() error {
	r.termMu.Lock()
	defer r.termMu.Unlock()
	if r.restore != nil {
		return nil
	}
	fd := int(os.Stdin.Fd())
	st, err := term.MakeRaw(fd)
	if err != nil {
		return err
	}
	r.rawFd = fd
	r.restore = func() { term.Restore(fd, st) }
	return nil
}

// restoreTerminal puts the terminal's modes back as they were, on every
// way out.
func (r *sshRun) restoreTerminal() {
	r.termMu.Lock()
	defer r.termMu.Unlock()
	if r.restore != nil {
		r.restore()
		r.restore = nil
	}
}

// rawLineWriter ends lines with CR LF while the terminal is raw (no
// output processing there), so that rsftp's messages start at the left
// margin as ssh's do.
type rawLineWriter struct {
	r *sshRun
	w io.Writer
}

func (x rawLineWriter) Write(p []byte) (int, error) {
	x.r.termMu.Lock()
	raw := x.r.restore != nil
	x.r.termMu.Unlock()
	if !raw {
		return x.w.Write(p)
	}
	q := bytes.ReplaceAll(bytes.ReplaceAll(p, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n"))
	if _, err := x.w.Write(q); err != nil {
		return 0, err
	}
	return len(p), nil
}

// stderrLine writes one of rsftp's messages to the terminal while it may
// be raw (CR LF ends the line).
func (r *sshRun) stderrLine(s string) {
	io.WriteString(os.Stderr, s)
}

// runSession runs the shell, command or subsystem.
func (r *sshRun) runSession(ctx context.Context, stdinTTY bool) int {
	o := r.o
	sess, err := r.s.client.NewSession(ctx)
	if err != nil {
		return r.fail(fmt.Errorf("opening a session: %w", err))
	}
	r.sess = sess
	defer sess.Close()
	if o.agent != "" {
		sock := o.agent
		if err := r.s.client.ForwardAgent(ctx, sess, func(ctx context.Context) (net.Conn, error) {
			return dialAgent(ctx, sock)
		}); err != nil {
			r.log.warnf("Agent forwarding refused: %v", err)
		}
	} else if strings.EqualFold(r.s.hc.cfg.getDefault("forwardagent", "no"), "yes") {
		r.log.warnf("ForwardAgent: no agent to forward ($SSH_AUTH_SOCK is not set)")
	}
	if r.havePTY {
		if err := r.requestPTY(ctx, sess); err != nil {
			r.log.warnf("PTY allocation request failed on channel 0: %v", err)
			r.havePTY = false
		}
	}
	for _, kv := range sendEnvNames(o.sendEnv, os.Environ()) {
		name, val, _ := strings.Cut(kv, "=")
		r.setenv(sess, name, val)
	}
	for _, kv := range o.setEnv {
		name, val, _ := strings.Cut(kv, "=")
		r.setenv(sess, name, val)
	}
	stdout, stderr := sess.Stdout(), sess.Stderr()
	switch {
	case o.sessionType == "subsystem":
		err = sess.Subsystem(ctx, o.command)
	case o.command != "":
		err = sess.Exec(ctx, o.command)
	default:
		err = sess.Shell(ctx)
	}
	if err != nil {
		return r.fail(err)
	}
	if r.havePTY {
		// -tt with stdin no terminal: a pty there, nothing to make raw
		// here.
		if stdinTTY {
			if err := r.enterRaw(); err != nil {
				r.log.warnf("cannot put the terminal in raw mode: %v", err)
			}
		}
		defer r.restoreTerminal()
		stopResize := r.watchResize(sess)
		defer stopResize()
	}

	var outWG sync.WaitGroup
	outWG.Add(2)
	go func() {
		defer outWG.Done()
		copyOut(r.out, stdout)
	}()
	go func() {
		defer outWG.Done()
		io.Copy(os.Stderr, stderr)
	}()
	in := r.startStdin(sess)

	waited := make(chan error, 1)
	go func() {
		err := sess.Wait()
		outWG.Wait()
		waited <- err
	}()
	var werr error
	select {
	case werr = <-waited:
	case why := <-r.quit:
		r.restoreTerminal()
		if why == "~." && r.havePTY && r.log.level >= 2 {
			fmt.Fprintf(os.Stderr, "Connection to %s closed.\r\n", r.s.host)
		}
		return sshExitFailure
	case <-ctx.Done():
		return sshExitFailure
	}
	in.stop()
	r.sessionOver.Store(true)
	// Forwarded connections still open keep rsftp, as ssh; ~& or ~.
	// ends the wait.
	if n, _ := r.fwd.active(); n > 0 {
		r.waitForwards()
	}
	r.restoreTerminal()
	var ee *channel.ExitError
	var missing *channel.ExitMissingError
	code := 0
	switch {
	case werr == nil:
	case errors.As(werr, &ee) && ee.Signal != "":
		r.log.debugf("remote command killed by signal %s", ee.Signal)
		code = sshExitFailure
	case errors.As(werr, &ee):
		code = ee.Status
	case errors.As(werr, &missing):
		code = sshExitFailure
	default:
		return r.connectionGone()
	}
	if r.havePTY && r.log.level >= 2 {
		fmt.Fprintf(os.Stderr, "Connection to %s closed.\r\n", r.s.host)
	}
	return code
}

// copyOut copies the session's output to the terminal. Where the
// terminal takes it at once, the goroutine that reads the connection
// writes it (Channel.ReadSink with termOut.tryWrite), and this one waits
// only for what it left: each packet then reaches the terminal without a
// wake-up of this goroutine on another thread (issue 18's bulk row).
func copyOut(out *termOut, stdout io.Reader) {
	ch, ok := stdout.(interface {
		ReadSink(p []byte, sink func([]byte) int) (int, error)
	})
	if !ok || !out.hasNoWait {
		io.Copy(out, stdout)
		return
	}
	defer out.closeNoWait()
	buf := make([]byte, 32<<10)
	for {
		n, err := ch.ReadSink(buf, out.tryWrite)
		if n > 0 {
			if _, werr := out.Write(buf[:n]); werr != nil {
				// As io.Copy: the rest of the output has nowhere to go.
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// waitForwards waits for the forwarded connections still open once the
// session's program ended, as ssh does ("Waiting for forwarded
// connections to terminate..."), listing them.
func (r *sshRun) waitForwards() {
	r.fwd.stopListening()
	for {
		n, idle := r.fwd.active()
		if n == 0 {
			return
		}
		r.stderrLine("Waiting for forwarded connections to terminate...\r\n" + r.fwd.list(time.Now()))
		select {
		case <-idle:
		case <-r.quit:
			r.fwd.close()
			return
		}
	}
}

// setenv sends an env request without waiting for the answer, as ssh
// does: a server that refuses a name says so only in its log.
func (r *sshRun) setenv(sess *channel.Session, name, val string) {
	r.log.debugf("Sending env %s = %s", name, val)
	m := &connmsg.Env{Name: name, Value: val}
	sess.Channel().SendRequest(context.Background(), "env", false, m.Marshal())
}

// stdinRelay reads stdin and sends it on the session, through the
// escape machine when a pseudo-terminal is in use. Reading and sending
// are apart: while the link is away, or the server's window is shut,
// the sender waits but the reader goes on (up to stdinQueue chunks), so
// that ~. and the other escapes still act, and nothing typed is dropped:
// the channel keeps what it is given until the session resumes.
type stdinRelay struct {
	r     *sshRun
	sess  *channel.Session
	queue chan []byte
	stopc chan struct{}
	once  sync.Once
}

// stdinQueue bounds the chunks read ahead of the sender (each at most
// 32 KiB).
const stdinQueue = 64

func (r *sshRun) startStdin(sess *channel.Session) *stdinRelay {
	in := &stdinRelay{r: r, sess: sess, queue: make(chan []byte, stdinQueue), stopc: make(chan struct{})}
	go in.send()
	if r.o.stdinNull {
		close(in.queue)
		return in
	}
	go in.read()
	return in
}

func (in *stdinRelay) stop() { in.once.Do(func() { close(in.stopc) }) }

func (in *stdinRelay) send() {
	w := in.sess.Stdin()
	for b := range in.queue {
		if _, err := w.Write(b); err != nil {
			return
		}
	}
	w.Close() // EOF
}

func (in *stdinRelay) read() {
	r := in.r
	esc := newEscapeMachine(noEscapeChar)
	if r.havePTY {
		esc = newEscapeMachine(r.o.escape)
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := os.Stdin.Read(buf)
		data := buf[:n]
		for len(data) > 0 {
			send, used, act := esc.feed(nil, data)
			data = data[used:]
			if len(send) > 0 {
				select {
				case in.queue <- send:
				case <-in.stopc:
					return
				}
			}
			if act == escCommand {
				// What was typed after ~C in the same read begins
				// its line.
				r.stderrLine(escapeName(esc.char) + "C\r\n")
				data = r.commandLine(data)
				continue
			}
			if act != escNone && !in.act(act, esc.char) {
				return
			}
		}
		if err != nil {
			close(in.queue)
			return
		}
	}
}

// act carries out an escape; false ends the reading.
func (in *stdinRelay) act(act escapeAction, char int) bool {
	r := in.r
	e := escapeName(char)
	switch act {
	case escDisconnect:
		r.stderrLine(e + ".\r\n")
		r.end("~.")
		return false
	case escSuspend:
		r.stderrLine(e + "^Z [suspend rsftp]\r\n")
		r.restoreTerminal()
		if err := suspendSelf(); err != nil {
			r.stderrLine(fmt.Sprintf("cannot suspend: %v\r\n", err))
		}
		r.enterRaw()
		r.sendWindowSize(in.sess)
	case escBackground:
		// ssh forks: its child serves the forwarded connections still
		// open while the parent returns the terminal. A Go program
		// cannot fork, so once only forwarded connections remain, ~&
		// ends rsftp with them; before, it says so and does nothing.
		if !r.sessionOver.Load() {
			r.stderrLine(e + "& [the session still runs: ~& ends rsftp once only forwarded connections remain (it cannot fork into the background); ~. ends it now]\r\n")
			return true
		}
		n, _ := r.fwd.active()
		r.stderrLine(fmt.Sprintf("%s& [rsftp cannot fork into the background: ending its %d forwarded connections]\r\n", e, n))
		r.end("~&")
		return false
	case escHelp:
		r.stderrLine(e + "?\r\n" + escapeHelp(char))
	case escForwards:
		r.stderrLine(e + "#\r\n" + r.fwd.list(time.Now()))
	case escBreak:
		r.stderrLine(e + "B\r\n")
		if err := sendBreak(in.sess); err != nil {
			r.stderrLine(fmt.Sprintf("BREAK: %v\r\n", err))
		}
	case escRekey:
		r.stderrLine(e + "R\r\n")
		if err := r.s.client.Transport().Rekey(); err != nil {
			r.stderrLine(fmt.Sprintf("re-exchanging keys: %v\r\n", err))
		}
	case escReconnect:
		if r.s.client.Resumable() {
			r.stderrLine(e + "^R [reconnecting]\r\n")
			r.s.client.Reconnect()
		} else {
			r.stderrLine(e + "^R [the session is not resumable]\r\n")
		}
	case escInfo:
		r.stderrLine(e + "I\r\n" + r.connectionInfo())
	case escVerbose, escQuieter:
		if act == escVerbose && r.log.level < 4 {
			r.log.level++
		} else if act == escQuieter && r.log.level > 0 {
			r.log.level--
		}
		name := map[int]string{0: "QUIET", 1: "ERROR", 2: "INFO", 3: "VERBOSE", 4: "DEBUG"}[r.log.level]
		ch := "v"
		if act == escQuieter {
			ch = "V"
		}
		r.stderrLine(fmt.Sprintf("%s%s [LogLevel %s]\r\n", e, ch, name))
	}
	return true
}

// connectionInfo is what ~I prints.
func (r *sshRun) connectionInfo() string {
	c := r.s.client
	t := c.Transport()
	var b strings.Builder
	fmt.Fprintf(&b, "  connected to %s (%s) as %s\r\n", r.s.host, t.RemoteAddr(), r.s.hc.user)
	if st, ok := c.ResumeStatus(); ok {
		fmt.Fprintf(&b, "  resumable session %s, held %s by the server after a lost link; %s\r\n", st.Session, st.Hold, st.State)
	} else {
		b.WriteString("  not resumable (plain SSH)\r\n")
	}
	return b.String()
}

// watchResize sends window-change when the terminal's size changes.
func (r *sshRun) watchResize(sess *channel.Session) (stop func()) {
	c := make(chan os.Signal, 1)
	stopNotify := notifyResize(c, int(os.Stdout.Fd()))
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-c:
				r.sendWindowSize(sess)
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(c)
		stopNotify()
		close(done)
	}
}

// localTermSize is the local terminal's size (ssh asks stdin's terminal).
func localTermSize() (cols, rows int) {
	for _, f := range []*os.File{os.Stdin, os.Stdout} {
		if w, h, err := term.GetSize(int(f.Fd())); err == nil {
			return w, h
		}
	}
	return 80, 24
}

// commandLine is ~C: one line read with the terminal's own editing
// (cooked mode, as ssh reads it), adding or cancelling a forward:
// -L, -R, -D spec, -KL, -KR, -KD [bind_address:]port, or ? for help.
// typed is what came after ~C in the same read: the line's start, or the
// whole line and more, whose rest it returns.
func (r *sshRun) commandLine(typed []byte) (rest []byte) {
	var line string
	if i := bytes.IndexAny(typed, "\r\n"); i >= 0 {
		line, rest = string(typed[:i]), typed[i+1:]
		io.WriteString(os.Stderr, "rsftp> "+line+"\r\n")
	} else {
		r.restoreTerminal()
		io.WriteString(os.Stderr, "rsftp> "+string(typed))
		more, err := readTerminalLine(os.Stdin)
		r.enterRaw()
		if err != nil {
			return nil
		}
		line = string(typed) + more
	}
	r.termMu.Lock()
	raw := r.restore != nil
	r.termMu.Unlock()
	nl := "\n"
	if raw {
		nl = "\r\n"
	}
	msg, err := r.runCommandLine(line)
	switch {
	case err != nil:
		fmt.Fprintf(os.Stderr, "%v%s", err, nl)
	case msg != "":
		io.WriteString(os.Stderr, strings.ReplaceAll(msg, "\n", nl)+nl)
	}
	return rest
}

// readTerminalLine reads a line a byte at a time, so that nothing typed
// after it is taken from the session's input.
func readTerminalLine(f io.Reader) (string, error) {
	var b []byte
	var c [1]byte
	for len(b) < 4096 {
		n, err := f.Read(c[:])
		if n == 1 {
			if c[0] == '\n' || c[0] == '\r' {
				return string(b), nil
			}
			b = append(b, c[0])
		}
		if err != nil {
			return string(b), err
		}
	}
	return string(b), nil
}

// commandLineHelp is what ~C's ? prints.
const commandLineHelp = `Commands:
      -L[bind_address:]port:host:hostport    Request local forward
      -R[bind_address:]port:host:hostport    Request remote forward
      -D[bind_address:]port                  Request dynamic forward
      -KL[bind_address:]port                 Cancel local forward
      -KR[bind_address:]port                 Cancel remote forward
      -KD[bind_address:]port                 Cancel dynamic forward
      (the Unix socket forms of -L and -R too)`

// runCommandLine carries out one ~C line and says how it went.
func (r *sshRun) runCommandLine(line string) (string, error) {
	line = strings.TrimSpace(line)
	switch {
	case line == "":
		return "", nil
	case line == "?" || line == "-h" || line == "help":
		return commandLineHelp, nil
	case !strings.HasPrefix(line, "-") || len(line) < 2:
		return "", errors.New("Invalid command (? lists them).")
	}
	cancel := line[1] == 'K'
	rest := line[1:]
	if cancel {
		rest = rest[1:]
	}
	if rest == "" || strings.IndexByte("LRD", rest[0]) < 0 {
		return "", errors.New("Invalid command (? lists them).")
	}
	kind, spec := rest[0], strings.TrimSpace(rest[1:])
	if cancel {
		if err := r.fwd.cancel(kind, spec); err != nil {
			return "", err
		}
		return "Canceled forwarding.", nil
	}
	f, err := parseForward(kind, spec)
	if err != nil {
		return "", err
	}
	if err := r.fwd.start(f); err != nil {
		return "", fmt.Errorf("Port forwarding failed: %w", err)
	}
	return "Forwarding port.", nil
}

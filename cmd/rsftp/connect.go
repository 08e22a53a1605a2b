package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/kex"
	"github.com/rsftp/rsftp/resume"
	"github.com/rsftp/rsftp/transport"
)

// commonFlags are the OpenSSH-style options all client commands share.
type commonFlags struct {
	port       string
	identities []string
	cipher     string
	quiet      bool
	preserve   bool
	recursive  bool
	resume     bool
	configFile string
	options    []string
	jump       string // -J [user@]host[:port][,...]
	verbose    int
	events     string // --events FILE: JSON lines of session events
	noResume   bool   // --no-resume: plain SSH even if the server offers resumption
	// resumeHelper lets a session with sshd go through rsftp's helper
	// under ResumeHelper=auto (helper_client.go): set for the file
	// commands; =yes takes the helper for any command.
	resumeHelper bool
	// command and sessionType are what Match command and sessiontype
	// see (rsftp ssh's; the file commands are "sftp", a subsystem).
	command, sessionType string
	// onEvent, if set, shows a resumable session's events instead of
	// the progress line (rsftp ssh: the terminal's title).
	onEvent func(rsftp.Event)
}

// parseFlags parses OpenSSH-style options: single-letter flags that may
// be bundled (-rp), values attached or separate (-P22, -P 22); parsing
// stops at the first operand or "--", as in OpenSSH's tools.
func parseFlags(args []string, allowed string) (*commonFlags, []string, error) {
	f := &commonFlags{resumeHelper: true}
	// Every client command connects through connect, which takes the
	// way -J gives.
	allowed += "J"
	withValue := "PicFoJ"
	i := 0
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
			name, val, hasVal := strings.Cut(a[2:], "=")
			switch name {
			case "events":
				if !hasVal {
					i++
					if i == len(args) {
						return nil, nil, fmt.Errorf("option --%s requires an argument", name)
					}
					val = args[i]
				}
				f.events = val
			case "no-resume":
				if hasVal {
					return nil, nil, fmt.Errorf("option --%s takes no argument", name)
				}
				f.noResume = true
			default:
				return nil, nil, fmt.Errorf("unknown option --%s", name)
			}
			continue
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			if !strings.ContainsRune(allowed, rune(c)) {
				return nil, nil, fmt.Errorf("unknown option -- %c", c)
			}
			if strings.IndexByte(withValue, c) >= 0 {
				val := a[j+1:]
				if val == "" {
					i++
					if i == len(args) {
						return nil, nil, optionNeedsValue(c)
					}
					val = args[i]
				}
				if err := checkOptionValue(c, val, f.options); err != nil {
					return nil, nil, err
				}
				switch c {
				case 'P':
					f.port = val
				case 'i':
					f.identities = append(f.identities, val)
				case 'c':
					f.cipher = val
				case 'F':
					f.configFile = val
				case 'o':
					f.options = append(f.options, val)
				case 'J':
					if f.jump != "" {
						return nil, nil, errors.New("only one -J is allowed (separate jump hops with commas)")
					}
					f.jump = val
				}
				break
			}
			switch c {
			case 'q':
				f.quiet = true
			case 'p':
				f.preserve = true
			case 'r':
				f.recursive = true
			case 'a':
				f.resume = true
			case 'v':
				f.verbose++
				showErrorChain = true
			}
		}
	}
	return f, args[i:], nil
}

// remoteSpec is [user@]host:path.
type remoteSpec struct {
	user, host, path string
}

// parseRemote splits [user@]host:path (host may be [IPv6]). ok is false
// for a local path: no colon, or a slash before the first colon, as scp
// decides.
func parseRemote(s string) (remoteSpec, bool) {
	var r remoteSpec
	rest := s
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		if c := strings.IndexByte(rest, ':'); c >= 0 && at < c {
			r.user, rest = rest[:at], rest[at+1:]
		}
	}
	if strings.HasPrefix(rest, "[") {
		end := strings.Index(rest, "]:")
		if end < 0 {
			return r, false
		}
		r.host, r.path = rest[1:end], rest[end+2:]
		return r, r.host != ""
	}
	c := strings.IndexByte(rest, ':')
	if c <= 0 {
		return r, false
	}
	if slash := strings.IndexByte(rest, '/'); slash >= 0 && slash < c {
		return r, false
	}
	r.host, r.path = rest[:c], rest[c+1:]
	return r, true
}

// session is an authenticated connection ready for SFTP.
type session struct {
	client   *rsftp.Client
	hc       *hostConfig // the options resolved for the destination
	host     string
	port     int
	stopKA   func()
	progress *progress
	events   *eventLog
	stopSig  func()
}

func (s *session) Close() error {
	if s.stopKA != nil {
		s.stopKA()
	}
	if s.stopSig != nil {
		s.stopSig()
	}
	err := s.client.Close()
	if !s.client.Resumable() {
		s.events.write(rsftp.Event{Time: time.Now(), Kind: rsftp.EventClosed, Remote: s.client.Transport().RemoteAddr().String()})
	}
	s.events.close()
	return err
}

// logger prints messages according to LogLevel and -q.
type logger struct {
	level int // 0 quiet, 1 error, 2 info, 3 verbose, 4+ debug
	// w is where messages go: os.Stderr if nil (rsftp ssh -E: a file).
	w io.Writer
	// keys are the identity files that could not be used: said with an
	// authentication failure, or as warnings once connected.
	keys keyNotes
}

func (l *logger) out() io.Writer {
	if l.w != nil {
		return l.w
	}
	return os.Stderr
}

func (l *logger) warnf(format string, args ...any) {
	if l.level >= 1 {
		fmt.Fprintf(l.out(), "rsftp: "+format+"\n", args...)
	}
}

func (l *logger) infof(format string, args ...any) {
	if l.level >= 2 {
		fmt.Fprintf(l.out(), "rsftp: "+format+"\n", args...)
	}
}

func (l *logger) debugf(format string, args ...any) {
	if l.level >= 4 {
		fmt.Fprintf(l.out(), "debug1: "+format+"\n", args...)
	}
}

func logLevel(s string) int {
	switch strings.ToUpper(s) {
	case "QUIET":
		return 0
	case "FATAL", "ERROR":
		return 1
	case "INFO":
		return 2
	case "VERBOSE":
		return 3
	}
	return 4
}

// buildConfig resolves the ssh options for the destination: the command
// line first, then -F's file or ~/.ssh/config and /etc/ssh/ssh_config,
// with Match, %-tokens and the final pass as ssh (resolveHost).
func buildConfig(f *commonFlags, spec remoteSpec) (*hostConfig, error) {
	req := lookupRequest{hostArg: spec.host, user: spec.user, port: f.port, jump: f.jump,
		options: f.options, identities: f.identities, cipher: f.cipher, configFile: f.configFile,
		command: f.command, sessionType: f.sessionType}
	if f.quiet {
		req.logLevel = "QUIET"
	} else if f.verbose > 0 {
		req.logLevel = "DEBUG"
	}
	return resolveHost(req, realEnv())
}

// algorithmList applies an OpenSSH algorithm spec to the supported
// algorithms, in our order of preference (assembleAlgorithms: "a,b"
// replaces, "+a" appends, "-a" removes, "^a" puts first, with * and ?
// patterns); nil for "". A name rsftp does not support is an error, as
// in ssh, except in a removal.
func algorithmList(spec string, supported []string, what string) ([]string, error) {
	if spec == "" {
		return nil, nil
	}
	list, dropped := assembleAlgorithms(spec, supported)
	if len(dropped) > 0 {
		return nil, fmt.Errorf("Bad SSH2 %s spec '%s' (rsftp supports %s)", what, spec, strings.Join(supported, ","))
	}
	return list, nil
}

// connect opens an authenticated connection to the destination.
func connect(ctx context.Context, f *commonFlags, spec remoteSpec, log *logger) (*session, error) {
	hc, err := buildConfig(f, spec)
	if err != nil {
		return nil, err
	}
	cfg := hc.cfg
	log.level = logLevel(cfg.getDefault("loglevel", "INFO"))
	for _, w := range cfg.warnings {
		log.warnf("%s", w)
	}
	for _, d := range cfg.debug {
		log.debugf("%s", d)
	}
	hostname, port, userName := hc.hostname, hc.port, hc.user
	ccfg, err := clientConfig(ctx, hc, log)
	if err != nil {
		return nil, err
	}
	// The way to the server (direct, ProxyCommand or jump hosts), for
	// the first connection and every reconnection alike.
	rt, err := newRoute(ctx, hc, log, 0)
	if err != nil {
		return nil, err
	}

	dialCtx := ctx
	if ct := cfg.getDefault("connecttimeout", "none"); ct != "none" {
		n, _ := strconv.Atoi(ct)
		if n > 0 {
			var cancel context.CancelFunc
			dialCtx, cancel = context.WithTimeout(ctx, time.Duration(n)*time.Second)
			defer cancel()
		}
	}
	addr := net.JoinHostPort(hostname, strconv.Itoa(port))
	log.debugf("Connecting to %s as %s%s", addr, userName, rt.describe())
	events, err := openEventLog(f.events)
	if err != nil {
		return nil, err
	}
	prog := newProgress(f.quiet)
	iv, _ := strconv.Atoi(cfg.getDefault("serveraliveinterval", "0"))
	maxAlive, _ := strconv.Atoi(cfg.getDefault("serveralivecountmax", "3"))
	if !f.noResume {
		ccfg.Resume = &rsftp.ResumeConfig{
			Redial: rt.dial,
			Events: func(e rsftp.Event) {
				events.write(e)
				if f.onEvent != nil {
					f.onEvent(e)
					return
				}
				showEvent(e, prog, log)
			},
		}
		if iv > 0 {
			// ServerAliveInterval/CountMax set how soon a silent link
			// counts as lost; the session then resumes instead of
			// ending.
			ccfg.Resume.AliveInterval = time.Duration(iv) * time.Second
			ccfg.Resume.AliveCountMax = maxAlive
		}
		if ccfg.Resume.AttemptTimeout = 10 * time.Second; dialCtx != ctx {
			if d, ok := dialCtx.Deadline(); ok {
				ccfg.Resume.AttemptTimeout = time.Until(d)
			}
		}
	}
	prompts := secretPrompts.Load()
	client, err := rt.connect(dialCtx, addr, ccfg)
	if err == nil && ccfg.Resume != nil && !client.Resumable() {
		// sshd: the session through rsftp's helper (helper_client.go).
		if hm, _ := parseHelperMode(cfg.getDefault(resumeHelperKeyword, "auto")); hm == helperYes || hm == helperAuto && f.resumeHelper {
			client, err = useHelper(dialCtx, client, hm, secretPrompts.Load() != prompts, rt, addr, ccfg, log)
		}
	}
	if err != nil {
		events.close()
		ce := &connectError{host: hostname, port: port, user: userName, notes: log.keys.take(), err: err}
		if errors.Is(err, context.DeadlineExceeded) && dialCtx != ctx && ctx.Err() == nil {
			ce.timeout, _ = strconv.Atoi(cfg.getDefault("connecttimeout", "0"))
		}
		return nil, ce
	}
	for _, n := range log.keys.take() {
		log.warnf("%s", n)
	}
	s := &session{client: client, hc: hc, host: hostname, port: port, progress: prog, events: events}
	return s.start(iv, maxAlive, log), nil
}

// clientConfig builds the client configuration for a destination (the
// server, or a jump host on the way): algorithms, authentication and the
// host key check, from its resolved options.
func clientConfig(ctx context.Context, hc *hostConfig, log *logger) (*rsftp.ClientConfig, error) {
	cfg := hc.cfg
	hostname, port, userName := hc.hostname, hc.port, hc.user
	batch := yes(cfg.getDefault("batchmode", "no"))
	var err error

	var tc transport.Config
	if tc.Ciphers, err = algorithmList(cfg.getDefault("ciphers", ""), transport.SupportedCiphers(), "cipher"); err != nil {
		return nil, err
	}
	if tc.MACs, err = algorithmList(cfg.getDefault("macs", ""), transport.SupportedMACs(), "mac"); err != nil {
		return nil, err
	}
	if tc.KexAlgorithms, err = algorithmList(cfg.getDefault("kexalgorithms", ""), kex.SupportedMethods(), "kex"); err != nil {
		return nil, err
	}
	if tc.HostKeyAlgorithms, err = hostKeyAlgorithms(cfg, hostname, port); err != nil {
		return nil, err
	}
	tc.Tap = packetLog() // $RSFTP_PACKETS, for developers (packetlog.go)

	methods, err := authMethods(ctx, cfg, hostname, userName, port, batch, log)
	if err != nil {
		return nil, err
	}
	pkAlgs, err := pubkeyAlgorithms(cfg, log)
	if err != nil {
		return nil, err
	}
	hkcb, err := hostKeyCallback(cfg, batch, log)
	if err != nil {
		return nil, err
	}
	if alias, ok := cfg.get("hostkeyalias"); ok {
		// known_hosts names the key by the alias alone, as in ssh.
		check := hkcb
		hkcb = func(_ string, _ int, key kex.PublicKey) error { return check(alias, 22, key) }
	}
	return &rsftp.ClientConfig{
		User:                userName,
		Auth:                methods,
		PublicKeyAlgorithms: pkAlgs,
		HostKeyCallback:     hkcb,
		Transport:           tc,
		Banner: func(msg string) {
			if log.level >= 2 {
				fmt.Fprint(os.Stderr, msg)
			}
		},
	}, nil
}

// start sets up what a session needs once connected: SIGUSR2 to
// reconnect a resumable one, keepalives (ServerAliveInterval) for a plain
// one.
func (s *session) start(iv, maxAlive int, log *logger) *session {
	client, events := s.client, s.events
	if rst, ok := client.ResumeStatus(); ok {
		log.debugf("Session resumable; the server holds it for %v after a lost connection", rst.Hold)
		// SIGUSR2 (on Windows a named event: reconnect_windows.go)
		// reconnects at once, as after a network change.
		s.stopSig = onReconnectRequest(client.Reconnect, log)
	} else {
		events.write(rsftp.Event{Time: time.Now(), Kind: rsftp.EventConnected, Remote: client.Transport().RemoteAddr().String()})
		if iv > 0 {
			s.stopKA = keepalive(client, time.Duration(iv)*time.Second, maxAlive, log)
		}
	}
	return s
}

// showEvent puts a resumable session's state on the progress line (or,
// without one, on stderr). The transient states are short enough for an
// 80-column line beside the file's name and figures; a resumption leaves
// one line in the scrollback, whose count says whose it is: the client
// knows what it sent again, not what the server did.
func showEvent(e rsftp.Event, p *progress, log *logger) {
	var msg string
	on := p.enabled()
	switch e.Kind {
	case rsftp.EventLinkLost:
		if !on {
			log.infof("connection lost (%s); the server holds the session for %s", linkCause(e.Err), e.HoldLeft.Round(time.Second))
			return
		}
		msg = fmt.Sprintf("link lost; session held %s", shortDuration(e.HoldLeft))
	case rsftp.EventReconnecting:
		msg = fmt.Sprintf("reconnecting (try %d); held %s more", e.Attempt, shortDuration(e.HoldLeft))
	case rsftp.EventResumeFailed:
		if !on {
			log.infof("reconnection attempt %d failed: %s", e.Attempt, attemptCause(e.Err))
		}
		return
	case rsftp.EventResumed:
		msg = fmt.Sprintf("resumed after %s offline; %s sent again by this side", shortDuration(e.Offline), human(float64(e.Retransmitted)))
		if !on {
			log.infof("%s", msg)
			return
		}
		p.setStatus("")
		p.note(msg)
		return
	default:
		return
	}
	if on {
		p.setStatus(msg)
	}
}

// shortDuration prints d as people read it on a status line: "2.1s",
// "59m58s", "1h0m" (seconds dropped past an hour); under a second in
// milliseconds ("8ms"), where a tenth would round a quick resumption to
// "0s".
func shortDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	s := d.Round(time.Minute).String()
	return strings.TrimSuffix(s, "0s")
}

// keepalive sends keepalive@openssh.com after interval without a packet
// from the server and closes the connection when max of them in a row go
// unanswered, as ssh's ServerAliveInterval/ServerAliveCountMax do (a
// resume.Watchdog).
func keepalive(c *rsftp.Client, interval time.Duration, max int, log *logger) func() {
	ctx, cancel := context.WithCancel(context.Background())
	wd := resume.NewWatchdog(packetCount(func() uint64 { return c.Transport().Seq().InTotal }), resume.WatchdogConfig{
		Interval: interval,
		Probes:   max,
		Probe: func() {
			rctx, rcancel := context.WithTimeout(ctx, interval)
			defer rcancel()
			c.Mux().SendRequest(rctx, "keepalive@openssh.com", true, nil)
		},
		Lost: func(time.Duration) {
			log.warnf("Timeout, server %s not responding.", c.Transport().RemoteAddr())
			c.Close()
		},
	})
	return func() {
		wd.Stop()
		cancel()
	}
}

// packetCount is a resume.PacketCounter over a function (the client's
// current connection changes when a session resumes; the count then jumps,
// which reads as traffic).
type packetCount func() uint64

func (f packetCount) PacketsReceived() uint64 { return f() }

// authMethods builds publickey (certificates, agent keys and identity
// files: publicKeyMethod), keyboard-interactive and password, in the
// order and subset PreferredAuthentications gives (preferredAuthMethods),
// each unless its ssh_config keyword turns it off.
func authMethods(ctx context.Context, cfg *sshConfig, host, userName string, port int, batch bool, log *logger) ([]auth.Method, error) {
	var methods []auth.Method
	if yes(cfg.getDefault("pubkeyauthentication", "yes")) {
		methods = append(methods, publicKeyMethod(ctx, cfg, batch, log, func(path string, err error) {
			log.keys.add(identityProblem(path, err, batch))
		}))
	}
	pubkey := methods // publickey's, so far
	var password, kbdInt auth.Method
	if !batch && yes(cfg.getDefault("passwordauthentication", "yes")) {
		tries, _ := strconv.Atoi(cfg.getDefault("numberofpasswordprompts", "3"))
		n := 0
		password = auth.PasswordCallback(func() (string, error) {
			n++
			if n > tries {
				return "", &passwordTriesError{tries}
			}
			return readSecret(fmt.Sprintf("%s@%s's password: ", userName, host))
		})
	}
	if !batch && yes(cfg.getDefault("kbdinteractiveauthentication", "yes")) {
		kbdInt = auth.KeyboardInteractive(func(name, instruction string, prompts []string, echo []bool) ([]string, error) {
			if name != "" || instruction != "" {
				fmt.Fprintln(os.Stderr, strings.TrimSpace(name+"\n"+instruction))
			}
			answers := make([]string, len(prompts))
			for i, p := range prompts {
				a, err := readSecret(p)
				if err != nil {
					return nil, err
				}
				answers[i] = a
			}
			return answers, nil
		})
	}
	return preferredAuthMethods(cfg.getDefault("preferredauthentications", ""), pubkey, kbdInt, password, log)
}

// loadIdentity reads a private key file, asking for its passphrase on
// the terminal if it is encrypted.
func loadIdentity(path string, batch bool) (kex.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("identity file %s: %w", path, err)
	}
	k, _, err := auth.ParsePrivateKey(data, nil)
	for tries := 0; errors.Is(err, auth.ErrPassphraseRequired) || (errors.Is(err, auth.ErrIncorrectPassphrase) && tries < 3); tries++ {
		if batch {
			return nil, fmt.Errorf("identity file %s: %w (BatchMode)", path, err)
		}
		var pass string
		pass, err = readSecret(fmt.Sprintf("Enter passphrase for key '%s': ", path))
		if err != nil {
			return nil, fmt.Errorf("identity file %s: %w", path, err)
		}
		k, _, err = auth.ParsePrivateKey(data, []byte(pass))
	}
	if err != nil {
		return nil, fmt.Errorf("identity file %s: %w", path, err)
	}
	return kex.NewSigner(k)
}

// readSecret prompts on the terminal and reads a line without echo.
func readSecret(prompt string) (string, error) {
	secretPrompts.Add(1)
	tty, err := openTerminal() // /dev/tty; the console on Windows
	if err != nil {
		what := strings.TrimSuffix(strings.TrimSpace(prompt), ":")
		if what != "" {
			what = strings.ToLower(what[:1]) + what[1:]
		}
		return "", &noTerminalError{what: what}
	}
	defer tty.Close()
	fmt.Fprint(tty, prompt)
	b, err := term.ReadPassword(int(tty.Fd()))
	fmt.Fprintln(tty)
	return string(b), err
}

// hostKeyCallback checks host keys against known_hosts with
// StrictHostKeyChecking; "ask" (the default) asks on the terminal.
func hostKeyCallback(cfg *sshConfig, batch bool, log *logger) (rsftp.HostKeyCallback, error) {
	files, userFiles := knownHostsFiles(cfg)
	modeStr := cfg.getDefault("stricthostkeychecking", "ask")
	mode, err := auth.ParseStrictMode(modeStr)
	if err != nil {
		return nil, err
	}
	hash := yes(cfg.getDefault("hashknownhosts", "no"))
	if userFiles == 0 && mode != auth.StrictYes {
		// Nowhere to record new keys: behave as "yes".
		mode = auth.StrictYes
	}
	chk, err := newHostKeyChecker(cfg, files, mode, hash, log)
	if err != nil {
		return nil, err
	}
	cb := chk.Check
	ask := strings.EqualFold(modeStr, "ask") && !batch
	return func(host string, port int, key kex.PublicKey) error {
		err := cb(host, port, key)
		var unknown *auth.UnknownHostError
		if err == nil || !ask || !errors.As(err, &unknown) {
			return err
		}
		// A host certificate nothing vouches for: its plain key is
		// asked about and recorded, as ssh does.
		key = unknown.Key
		name := auth.KnownHostName(host, port)
		fmt.Fprintf(os.Stderr, "The authenticity of host '%s' can't be established.\n%s key fingerprint is %s.\n",
			name, keyTypeName(key), kex.FingerprintSHA256(key))
		ok, aerr := askHostKey(kex.FingerprintSHA256(key))
		if aerr != nil {
			return err // no terminal: the unknown host it is
		}
		if !ok {
			return &hostKeyDeclined{host: name}
		}
		if werr := auth.AddKnownHost(files[0], host, port, key, hash); werr != nil {
			log.warnf("could not add the host key to %s: %v", files[0], werr)
		} else {
			log.warnf("Warning: Permanently added '%s' (%s) to the list of known hosts.", name, keyTypeName(key))
		}
		return nil
	}, nil
}

func keyTypeName(k kex.PublicKey) string {
	switch t := k.Type(); {
	case t == kex.KeyAlgoED25519:
		return "ED25519"
	case strings.HasPrefix(t, "ecdsa"):
		return "ECDSA"
	case t == kex.KeyAlgoRSA:
		return "RSA"
	default:
		return t
	}
}

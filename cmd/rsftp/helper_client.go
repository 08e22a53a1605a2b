package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/channel"
	"github.com/rsftp/rsftp/internal/connmsg"
	"github.com/rsftp/rsftp/kex"
	"github.com/rsftp/rsftp/transport"
	"golang.org/x/sys/cpu"
)

// helperMode is ResumeHelper's value (docs/PROTOCOL.helper.md):
//
//   - auto: the resume extension in band where the server offers it
//     (rsftp serve), else the helper through sshd where the account can
//     run commands and rsftp is there or can be installed, else plain SSH
//     (a one-line notice says why). A login that asked anything on the
//     terminal (a password) is not repeated silently: plain SSH.
//   - yes: the same, but a helper that cannot start is an error, and a
//     login that asked on the terminal asks again at each reconnection.
//   - no: never the helper.
type helperMode int

const (
	helperAuto helperMode = iota
	helperYes
	helperNo
)

// resumeHelperKeyword is rsftp's own ssh_config keyword. OpenSSH's ssh
// refuses unknown keywords: "IgnoreUnknown ResumeHelper" before it keeps
// a file shared with ssh readable by both (rsftp reads its own keywords
// whatever IgnoreUnknown says).
const resumeHelperKeyword = "resumehelper"

// rsftpKeywords are ssh_config keywords that rsftp reads and OpenSSH
// does not know.
var rsftpKeywords = map[string]bool{resumeHelperKeyword: true}

func init() {
	implemented[resumeHelperKeyword] = true
}

func parseHelperMode(s string) (helperMode, error) {
	switch strings.ToLower(s) {
	case "auto", "":
		return helperAuto, nil
	case "yes", "true":
		return helperYes, nil
	case "no", "false":
		return helperNo, nil
	}
	return 0, fmt.Errorf("expected auto, yes or no, got %q", s)
}

// validateResumeHelper checks ResumeHelper's arguments (sshconfig.go's
// validate).
func validateResumeHelper(args []string) error {
	if len(args) > 1 {
		return fmt.Errorf("garbage at end of line: %q", strings.Join(args[1:], " "))
	}
	_, err := parseHelperMode(args[0])
	return err
}

// secretPrompts counts what readSecret asked on the terminal: a login
// that asked something cannot be repeated silently for a reconnection.
var secretPrompts atomic.Int64

// helperRun is a session through sshd: the way to sshd and the login
// (for reconnections), and where the helper is.
type helperRun struct {
	rt   *route
	addr string
	// pin accepts only the first outer connection's host key.
	pin rsftp.HostKeyCallback
	bin string // the remote rsftp, absolute
	dir string // the helper directory, absolute
	log *logger

	mu      sync.Mutex
	session string // once the inner session is made
	// noStreamLocal is set once sshd refused a direct-streamlocal
	// channel to the helper's socket (AllowStreamLocalForwarding,
	// DisableForwarding, restrict or no-port-forwarding in
	// authorized_keys): later reconnections go through "rsftp attach"
	// at once.
	noStreamLocal bool
}

// helperStartTimeout bounds the probe, the upload and the helper's start
// when the caller's context has no deadline of its own.
const helperStartTimeout = 2 * time.Minute

// useHelper runs the session through rsftp's helper on the server when
// the outer connection (to sshd) is plain SSH: it returns the inner,
// resumable client, which owns outer from then on, or outer itself with
// a notice when the helper cannot run there (an error instead under
// ResumeHelper=yes). ccfg is the outer login's configuration, with the
// session's ResumeConfig; prompted says whether that login asked on the
// terminal.
func useHelper(ctx context.Context, outer *rsftp.Client, mode helperMode, prompted bool, rt *route, addr string, ccfg *rsftp.ClientConfig, log *logger) (*rsftp.Client, error) {
	fallback := func(format string, args ...any) (*rsftp.Client, error) {
		msg := fmt.Sprintf(format, args...)
		if mode == helperYes {
			outer.Close()
			return nil, fmt.Errorf("ResumeHelper=yes: %s", msg)
		}
		log.infof("%s; plain SSH: the session ends with the connection", msg)
		return outer, nil
	}
	if mode == helperAuto && prompted {
		// Said with -v only: every password login to a server without
		// the extension would otherwise print it.
		log.debugf("no resume helper: the login asked on the terminal, and a reconnection would ask again (ResumeHelper=yes lets it); plain SSH")
		return outer, nil
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, helperStartTimeout)
		defer cancel()
	}
	host := rt.hc.hostname
	self, err := selfBinary()
	if err != nil {
		return fallback("this rsftp cannot read its own binary to install it on %s (%v)", host, err)
	}
	dirExpr := `"$HOME"/` + defaultHelperDir
	if d := os.Getenv(helperDirEnv); d != "" {
		dirExpr = shQuote(d)
		if !strings.HasPrefix(d, "/") {
			dirExpr = `"$HOME"/` + shQuote(d)
		}
	}
	p, err := probeHelper(ctx, outer, dirExpr, self)
	if err != nil {
		// A refused exec, a forced command (ForceCommand
		// internal-sftp, command= in authorized_keys), a restricted
		// shell: the administrator's choice, not a fault, said with
		// -v only under auto.
		if mode == helperYes {
			return fallback("%s runs no commands for this account, or not the probe (%v)", host, err)
		}
		log.debugf("no resume helper: %s runs no commands for this account, or not the probe (%v); plain SSH", host, err)
		return outer, nil
	}
	h := &helperRun{rt: rt, addr: addr, dir: p.dir, log: log}
	switch {
	case p.pathBin != "":
		h.bin = p.pathBin
		log.debugf("helper: %s on %s (%s)", p.pathBin, host, p.pathRelease)
	case p.cached == self.sum:
		h.bin = self.remotePath(p.dir)
		log.debugf("helper: %s on %s, installed before", h.bin, host)
	case p.uname == "" || !unameMatches(p.uname):
		return fallback("rsftp is not installed on %s, and this one (%s/%s) cannot run there (%s); install rsftp on %s (go install github.com/rsftp/rsftp/cmd/rsftp@latest, in PATH) for sessions that survive the network",
			host, runtime.GOOS, runtime.GOARCH, strings.TrimSpace(p.uname), host)
	default:
		if p.cached != "" {
			log.infof("the rsftp helper cached on %s is damaged (SHA-256 %.12s…, not %.12s…): installing it again", host, p.cached, self.sum)
		} else {
			log.infof("installing the rsftp helper on %s (%s, %.1f MB, once)", host, self.remotePath(p.dir), float64(self.size)/1e6)
		}
		if err := uploadHelper(ctx, outer, p.dir, self); err != nil {
			return fallback("could not install the rsftp helper in %s on %s (%v)", p.dir, host, err)
		}
		h.bin = self.remotePath(p.dir)
	}
	h.pin = pinOuterKey(outer)
	inner, err := h.start(ctx, outer, ccfg)
	if err != nil {
		// outer is closed with the failed inner connection: the
		// fallback logs in again.
		if mode == helperYes {
			return nil, fmt.Errorf("the rsftp helper on %s: %w", host, err)
		}
		log.infof("the rsftp helper on %s did not start (%v); plain SSH: the session ends with the connection", host, err)
		rcfg := *ccfg
		rcfg.Resume = nil
		return rt.connect(ctx, addr, &rcfg)
	}
	return inner, nil
}

// pinOuterKey accepts only the host key of outer's connection: a
// reconnection to sshd meets the key the first connection checked, as
// the resume extension pins the inner one.
func pinOuterKey(outer *rsftp.Client) rsftp.HostKeyCallback {
	first := outer.Transport().HostKey()
	want := first.Marshal()
	return func(host string, port int, key kex.PublicKey) error {
		if !bytes.Equal(key.Marshal(), want) {
			return fmt.Errorf("%s presented a %s host key on reconnection, not the %s key of the session's first connection", host, key.Type(), first.Type())
		}
		return nil
	}
}

// login is the outer login of a reconnection: the destination's methods
// made anew (a password is asked again, with NumberOfPasswordPrompts
// tries of its own; a key from the agent running now), no banner, the
// host key pinned.
func (h *helperRun) login(ctx context.Context) (*rsftp.ClientConfig, error) {
	c, err := clientConfig(ctx, h.rt.hc, h.log)
	if err != nil {
		return nil, err
	}
	c.Banner = nil
	c.HostKeyCallback = h.pin
	if h.rt.hc.cfg.getDefault("kexalgorithms", "") == "" {
		c.Transport.KexAlgorithms = helperReconnectKex()
	}
	return c, nil
}

// start runs the helper over outer and the inner SSH connection with it,
// resumable, whose reconnections go through h.redial.
func (h *helperRun) start(ctx context.Context, outer *rsftp.Client, ccfg *rsftp.ClientConfig) (*rsftp.Client, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	signer, err := kex.NewSigner(priv)
	if err != nil {
		return nil, err
	}
	cmd := fmt.Sprintf("%s helper --dir %s --key %s", shQuote(h.bin), shQuote(h.dir),
		base64.StdEncoding.EncodeToString(signer.PublicKey().Marshal()))
	hc, err := execConn(ctx, outer, cmd)
	if err != nil {
		outer.Close()
		return nil, err
	}
	rc := *ccfg.Resume
	rc.Redial = h.redial
	tc := ccfg.Transport
	tc.HostKeyAlgorithms = nil // the helper's key is an ed25519 key of its own
	if tc.Ciphers == nil {
		tc.Ciphers = innerCiphers()
	}
	icfg := &rsftp.ClientConfig{
		User: ccfg.User,
		Auth: []auth.Method{auth.PublicKeys(priv)},
		// The helper's host key is new for each helper and came over
		// the outer connection, whose host key was checked; NewClient
		// pins it for the session's reconnections.
		HostKeyCallback: func(string, int, kex.PublicKey) error { return nil },
		Transport:       tc,
		Channel:         innerChannel(ccfg.Channel),
		Resume:          &rc,
	}
	inner, err := rsftp.NewClient(ctx, hc, h.addr, icfg)
	if err != nil {
		hc.Close()
		return nil, hc.explain(err)
	}
	st, ok := inner.ResumeStatus()
	if !ok {
		inner.Close()
		return nil, errors.New("the helper did not make the session resumable")
	}
	h.mu.Lock()
	h.session = st.Session
	h.mu.Unlock()
	return inner, nil
}

// innerMaxPacket is the largest data packet the client lets the helper
// send on the inner connection (the multiplexer caps it at what fits a
// transport packet, 255 KiB), where a connection over TCP lets its peer
// send 32 KiB (channel.DefaultMaxPacket). Every inner packet costs the
// helper a seal, a retained frame and a hand-off to its writer, and the
// client a decryption and a wake-up of the SFTP reader, while sshd cuts
// the stream into 32 KiB packets of its own whatever the inner size: a
// READ's 255 KiB reply goes as two inner packets instead of eight. A 512
// MiB get through sshd, pinned (docs/PROTOCOL.helper.md section 10):
// the client's CPU fell by a fifth, the throughput rose by about as much.
const innerMaxPacket = 256 << 10

// innerChannel is the inner connection's channel settings: the user's,
// with the larger packets of innerMaxPacket unless set.
func innerChannel(c channel.Config) channel.Config {
	if c.MaxPacket == 0 {
		c.MaxPacket = innerMaxPacket
	}
	return c
}

// innerCiphers is the inner connection's cipher preference when the user
// chose none: the outer connection protects the wire already, so the
// cheapest first. On a CPU with AES instructions that is aes128-gcm
// (about half of chacha20-poly1305's CPU per byte here, with VAES);
// elsewhere the default order.
func innerCiphers() []string {
	all := transport.SupportedCiphers()
	if !(cpu.X86.HasAES && cpu.X86.HasPCLMULQDQ) && !(cpu.ARM64.HasAES && cpu.ARM64.HasPMULL) {
		return all
	}
	const first = "aes128-gcm@openssh.com"
	if !slices.Contains(all, first) {
		return all
	}
	return append([]string{first}, slices.DeleteFunc(all, func(c string) bool { return c == first })...)
}

// redial is the inner session's Redial: a new login to sshd the way the
// first went, then the helper's socket reached through it: sshd's own
// direct-streamlocal@openssh.com channel to the socket, whose data may
// follow its confirmation at once; where sshd refuses that, an exec of
// "rsftp attach SESSION", which starts the user's shell and rsftp and
// whose data waits for sshd's window, granted once the command runs
// (docs/PROTOCOL.helper.md section 7).
func (h *helperRun) redial(ctx context.Context) (net.Conn, error) {
	h.mu.Lock()
	id, noSL := h.session, h.noStreamLocal
	h.mu.Unlock()
	if id == "" {
		return nil, errors.New("the session has no helper yet")
	}
	cfg, err := h.login(ctx)
	if err != nil {
		return nil, err
	}
	oc, err := h.rt.connect(ctx, h.addr, cfg)
	if err != nil {
		return nil, err
	}
	if !noSL {
		hc, err := streamLocalConn(ctx, oc, helperSocketPath(h.dir, id))
		if err == nil {
			return hc, nil
		}
		var oe *channel.OpenError
		if !errors.As(err, &oe) {
			oc.Close()
			return nil, fmt.Errorf("the helper's socket: %w", err)
		}
		// Refused: by policy, or no socket there (the helper not
		// listening yet, or gone: attach waits for it and says which).
		// sshd gives the same reason for both ("connect failed"), so
		// any refusal is remembered: at worst a session whose link
		// was lost before its helper listened pays attach's round
		// trip on each reconnection.
		h.mu.Lock()
		h.noStreamLocal = true
		h.mu.Unlock()
		h.log.debugf("helper: sshd did not connect to the helper's socket (%v); rsftp attach", err)
	}
	cmd := fmt.Sprintf("%s attach --dir %s %s", shQuote(h.bin), shQuote(h.dir), id)
	hc, err := execConn(ctx, oc, cmd)
	if err != nil {
		oc.Close()
		return nil, fmt.Errorf("rsftp attach: %w", err)
	}
	return hc, nil
}

// streamLocalConn opens a direct-streamlocal@openssh.com channel of c to
// the Unix socket at path and returns it as a net.Conn whose Close closes
// c too.
func streamLocalConn(ctx context.Context, c *rsftp.Client, path string) (*helperConn, error) {
	ch, err := c.Mux().OpenChannel(ctx, connmsg.ChanDirectStreamLocal, (&connmsg.DirectStreamLocal{Path: path}).Marshal())
	if err != nil {
		return nil, err
	}
	return &helperConn{Channel: ch, outer: c,
		laddr: c.Transport().LocalAddr(), raddr: c.Transport().RemoteAddr()}, nil
}

// errExecRefused is a server's refusal of an exec request.
var errExecRefused = errors.New("the server refused to run a command")

// execConn runs cmd on a new session channel of c and returns the
// channel as a net.Conn (its stdin and stdout), whose Close closes c too.
// The command's stderr is kept (its end) for the error that ends it.
func execConn(ctx context.Context, c *rsftp.Client, cmd string) (*helperConn, error) {
	sess, err := c.NewSession(ctx)
	if err != nil {
		return nil, err
	}
	hc := &helperConn{Channel: sess.Channel(), sess: sess, outer: c,
		laddr: c.Transport().LocalAddr(), raddr: c.Transport().RemoteAddr()}
	sess.Stdout()
	stderr := sess.Stderr()
	go func() {
		// Drained always: unread stderr would hold the channel's window.
		io.Copy(&hc.stderr, stderr)
	}()
	// The inner connection's first flight (version, KEXINIT, the
	// guessed key exchange) goes right behind the exec request, not a
	// round trip later: sshd keeps it for the command. A refusal closes
	// the channel, which fails the inner handshake, and says why.
	wait, err := sess.StartExec(cmd)
	if err != nil {
		sess.Close()
		return nil, err
	}
	go func() {
		wctx, cancel := context.WithTimeout(context.Background(), helperStartTimeout)
		defer cancel()
		if err := wait(wctx); err != nil {
			hc.refused.Store(&err)
			sess.Close()
		}
	}()
	return hc, nil
}

// helperConn is an exec channel to the helper or to "rsftp attach", as
// the inner connection's net.Conn. Its addresses are the outer
// connection's, so that a route change to sshd is seen as one.
type helperConn struct {
	*channel.Channel
	sess         *channel.Session // nil for a direct-streamlocal channel
	outer        *rsftp.Client
	laddr, raddr net.Addr
	stderr       tailBuffer
	refused      atomic.Pointer[error] // the exec request's failure
	closeWrite   atomic.Int64          // when CloseWrite was called (Unix ns), 0 before
	once         sync.Once
}

// Read is the channel's; when it ends, what the remote command said on
// stderr (attach's "no helper serves session ...") joins the error.
func (c *helperConn) Read(p []byte) (int, error) {
	n, err := c.Channel.Read(p)
	if err != nil {
		if msg := c.stderr.line(); msg != "" {
			err = fmt.Errorf("the remote command: %s: %w", msg, err)
		}
	}
	return n, err
}

// ReadAtLeast is the channel's (channel.Channel.ReadAtLeast), with Read's
// error: a reader that knows how much it needs (the inner transport, the
// rest of the packet it reads) sleeps until that much has come, instead
// of waking for each of sshd's 32 KiB packets.
func (c *helperConn) ReadAtLeast(p []byte, min int) (int, error) {
	n, err := c.Channel.ReadAtLeast(p, min)
	if err != nil {
		if msg := c.stderr.line(); msg != "" {
			err = fmt.Errorf("the remote command: %s: %w", msg, err)
		}
	}
	return n, err
}

func (c *helperConn) LocalAddr() net.Addr  { return c.laddr }
func (c *helperConn) RemoteAddr() net.Addr { return c.raddr }

// Close closes the channel and the outer connection; a dead link's
// DISCONNECT is given a second.
//
// After CloseWrite (the inner connection closing gracefully: its
// DISCONNECT sent, then our end of input), it first waits, until
// helperCloseWait after CloseWrite at most, for the remote command's
// output to end: sshd drops the channel data it has not yet written to
// the command when the client's DISCONNECT follows (sshd 9.2: 200 KiB
// written and DISCONNECT at once, 64 KiB reached the command, 30 times of
// 30), and the last data is the inner connection's own DISCONNECT,
// without which the helper takes the session for a lost link and holds
// it for its whole hold time. The command's output ends once it has read
// all of its input (the helper when it ends the session; attach when it
// has passed it on and the helper closed), so waiting for it is waiting
// for the delivery. The inner connection's close waits for this too, for
// 300 ms (transport's linger); this covers a loaded server. An inner
// connection dropped without DISCONNECT (Abort) does not wait.
func (c *helperConn) Close() error {
	c.once.Do(func() {
		if at := c.closeWrite.Load(); at != 0 {
			c.Channel.SetReadDeadline(time.Unix(0, at).Add(helperCloseWait))
			io.Copy(io.Discard, c.Channel)
		}
		c.Channel.Close()
		done := make(chan struct{})
		go func() {
			c.outer.Close()
			close(done)
		}()
		t := time.NewTimer(time.Second)
		select {
		case <-done:
		case <-t.C:
		}
		t.Stop()
	})
	return nil
}

// CloseWrite ends our input (channel EOF) and notes when, for Close.
func (c *helperConn) CloseWrite() error {
	c.closeWrite.CompareAndSwap(0, time.Now().UnixNano())
	return c.Channel.CloseWrite()
}

// helperCloseWait bounds Close's wait for the remote command's end.
const helperCloseWait = time.Second

// explain adds to err what the remote command said before it ended, if
// it ended (the helper's or attach's one line).
func (c *helperConn) explain(err error) error {
	if c.sess == nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- c.sess.Wait() }()
	t := time.NewTimer(500 * time.Millisecond)
	defer t.Stop()
	var werr error
	select {
	case werr = <-done:
	case <-t.C:
	}
	if p := c.refused.Load(); p != nil {
		return fmt.Errorf("%w (%v)", errExecRefused, *p)
	}
	if msg := c.stderr.line(); msg != "" {
		return fmt.Errorf("%s (%w)", msg, err)
	}
	if werr != nil {
		return fmt.Errorf("%w (the remote command: %v)", err, werr)
	}
	return err
}

// tailBuffer keeps the last 4 KiB written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > 4096 {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-4096:]...)
	}
	return len(p), nil
}

// line is the last non-empty line, printable.
func (b *tailBuffer) line() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	lines := strings.Split(strings.TrimSpace(string(b.buf)), "\n")
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, strings.TrimSpace(lines[len(lines)-1]))
}

// probe is what the probe script found on the server.
type probe struct {
	uname       string // uname -sm
	dir         string // the helper directory, absolute
	pathBin     string // an rsftp on PATH that speaks helperProtocol
	pathRelease string
	cached      string // the SHA-256 of the cached copy of this binary, if any
}

// probeHelper runs one script on the server: uname, the helper
// directory, an rsftp on PATH that speaks this helper protocol, else the
// SHA-256 of the cached copy of this binary (sha256sum, shasum, or the
// copy itself). dirExpr is the directory as the shell must read it.
func probeHelper(ctx context.Context, c *rsftp.Client, dirExpr string, self *selfInfo) (*probe, error) {
	script := strings.Join([]string{
		`d=` + dirExpr,
		`echo "dir $d"`,
		`echo "uname $(uname -sm)"`,
		`p=$(command -v rsftp 2>/dev/null)`,
		`if [ -n "$p" ]; then l=$("$p" helper --probe 2>/dev/null); case "$l" in "` + fmt.Sprintf("%s %d ", helperProbeWord, helperProtocol) + `"*) echo "path $p"; echo "release $l"; exit 0;; esac; fi`,
		`f="$d/` + self.dirName() + `/rsftp"`,
		// The cached rsftp hashes itself first: Go's SHA-256 uses the
		// CPU's SHA instructions where sha256sum may not (14 MB: 16
		// ms against 66 here, on every start's critical path). A
		// damaged copy that runs prints another digest, or none of 64
		// digits (then the system's tools hash it), and is replaced.
		`if [ -f "$f" ]; then s=$("$f" helper --sha256 "$f" 2>/dev/null) && [ ${#s} -eq 64 ] || s=$(sha256sum "$f" 2>/dev/null || shasum -a 256 "$f" 2>/dev/null); echo "cache ${s%% *}"; fi`,
		`exit 0`,
	}, "; ") // one line: csh and tcsh refuse a newline inside quotes
	out, err := runRemote(ctx, c, "sh -c "+shQuote(script), nil)
	if err != nil {
		return nil, err
	}
	p := &probe{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		switch k {
		case "dir":
			p.dir = v
		case "uname":
			p.uname = v
		case "path":
			p.pathBin = v
		case "release":
			if _, rel, err := parseProbe(v); err == nil {
				p.pathRelease = rel
			}
		case "cache":
			p.cached = strings.ToLower(strings.TrimSpace(v))
		}
	}
	if !strings.HasPrefix(p.dir, "/") {
		return nil, fmt.Errorf("the probe found no home directory (%q)", p.dir)
	}
	return p, nil
}

// uploadHelper copies this binary to dir/<version>-<sha256>/rsftp on the
// server over c: written to a temporary name in a directory of mode
// 0700, its SHA-256 checked there, then renamed.
func uploadHelper(ctx context.Context, c *rsftp.Client, dir string, self *selfInfo) error {
	f, err := os.Open(self.path)
	if err != nil {
		return err
	}
	defer f.Close()
	script := strings.Join([]string{
		`umask 077`,
		`d=` + shQuote(dir) + `; v="$d/` + self.dirName() + `"`,
		`mkdir -p "$v" && chmod 700 "$d" "$v" || exit 1`,
		`t="$v/.rsftp.$$"`,
		`cat >"$t" || { rm -f "$t"; exit 1; }`,
		`chmod 700 "$t" || { rm -f "$t"; exit 1; }`,
		`s=$(sha256sum "$t" 2>/dev/null || shasum -a 256 "$t" 2>/dev/null || "$t" helper --sha256 "$t" 2>/dev/null)`,
		`if [ "${s%% *}" != "` + self.sum + `" ]; then rm -f "$t"; echo "the copy's SHA-256 is not the client's binary's" >&2; exit 1; fi`,
		`mv -f "$t" "$v/rsftp" || { rm -f "$t"; exit 1; }`,
	}, "; ") // one line: csh and tcsh refuse a newline inside quotes
	_, err = runRemote(ctx, c, "sh -c "+shQuote(script), f)
	return err
}

// runRemote runs cmd on c with stdin (nil: none) and returns its stdout;
// a failure is the last line of its stderr.
func runRemote(ctx context.Context, c *rsftp.Client, cmd string, stdin io.Reader) ([]byte, error) {
	sess, err := c.NewSession(ctx)
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	stop := context.AfterFunc(ctx, func() { sess.Close() })
	defer stop()
	stdout := sess.Stdout()
	errStream := sess.Stderr() // before Exec: else the server's stderr is dropped
	var stderr tailBuffer
	errDone := make(chan struct{})
	go func() {
		io.Copy(&stderr, errStream)
		close(errDone)
	}()
	if err := sess.Exec(ctx, cmd); err != nil {
		if ctx.Err() == nil {
			return nil, fmt.Errorf("%w (%v)", errExecRefused, err)
		}
		return nil, err
	}
	if stdin != nil {
		go func() {
			// A script that failed early stops reading: its exit
			// status and stderr say why, not this write's error.
			io.Copy(sess.Stdin(), stdin)
			sess.Stdin().Close()
		}()
	} else {
		sess.Stdin().Close()
	}
	var out bytes.Buffer
	_, rerr := io.Copy(&out, io.LimitReader(stdout, 1<<16))
	werr := sess.Wait()
	<-errDone
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if werr != nil {
		if msg := stderr.line(); msg != "" {
			return nil, fmt.Errorf("%s: %w", msg, werr)
		}
		return nil, werr
	}
	return out.Bytes(), rerr
}

// selfInfo is this binary: its path, size and SHA-256.
type selfInfo struct {
	path string
	size int64
	sum  string
}

var (
	selfOnce sync.Once
	self     *selfInfo
	selfErr  error
)

func selfBinary() (*selfInfo, error) {
	selfOnce.Do(func() {
		p, err := os.Executable()
		if err != nil {
			selfErr = err
			return
		}
		f, err := os.Open(p)
		if err != nil {
			selfErr = err
			return
		}
		defer f.Close()
		h := sha256.New()
		n, err := io.Copy(h, f)
		if err != nil {
			selfErr = err
			return
		}
		self = &selfInfo{path: p, size: n, sum: hex.EncodeToString(h.Sum(nil))}
	})
	return self, selfErr
}

// dirName is the binary's directory under the helper directory:
// <release>-<sha256>, the release in characters safe in a path.
func (s *selfInfo) dirName() string {
	rel := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '+':
			return r
		}
		return '_'
	}, strings.Fields(releaseName() + " x")[0])
	if len(rel) > 40 {
		rel = rel[:40]
	}
	return rel + "-" + s.sum
}

func (s *selfInfo) remotePath(dir string) string {
	return dir + "/" + s.dirName() + "/rsftp"
}

// unameMatches reports whether "uname -sm" names this binary's system
// and architecture.
func unameMatches(uname string) bool {
	f := strings.Fields(uname)
	if len(f) != 2 {
		return false
	}
	goos := map[string]string{"Linux": "linux", "Darwin": "darwin", "FreeBSD": "freebsd", "OpenBSD": "openbsd", "NetBSD": "netbsd"}[f[0]]
	goarch := map[string]string{"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
		"i386": "386", "i686": "386", "riscv64": "riscv64", "ppc64le": "ppc64le", "s390x": "s390x"}[f[1]]
	return goos == runtime.GOOS && goarch == runtime.GOARCH
}

// shQuote quotes s for a POSIX shell.
func shQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

//go:build unix

package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/kex"
	"github.com/rsftp/rsftp/sftp"
)

// runHelper is "rsftp helper": the remote end of a session through sshd
// (docs/PROTOCOL.helper.md). It serves one SSH connection with the resume
// extension on its standard input and output, authenticated by the public
// key the client gave on its command line (--key), once; the session it
// makes then listens for its resumptions on a Unix socket, 0600 in a
// directory 0700 named by the session, under --dir's run/. It exits when
// the session ends: closed by the client, or its hold time run out while
// detached; its socket and directory go with it.
func runHelper(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("rsftp helper", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	dir := fs.String("dir", "", "the helper's directory (default ~/"+defaultHelperDir+"; relative to the home directory)")
	hold := fs.Duration("hold", time.Hour, "how long a session whose connection was lost waits for its client")
	idle := fs.Duration("idle-timeout", time.Minute, "a session whose connection brought nothing for this long is detached")
	keyArg := fs.String("key", "", "the client's public key for this one login (base64 of its SSH encoding)")
	probe := fs.Bool("probe", false, "print the helper protocol and release, and exit")
	sum := fs.String("sha256", "", "print the SHA-256 of this file in hex, and exit (where sha256sum and shasum are missing)")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	switch {
	case *probe:
		fmt.Printf("%s %d %s\n", helperProbeWord, helperProtocol, releaseName())
		return nil
	case *sum != "":
		h, err := fileSHA256(*sum)
		if err != nil {
			return err
		}
		fmt.Println(h)
		return nil
	case fs.NArg() != 0:
		return usageErr("helper takes no operands")
	case *hold <= 0:
		return usageErr("helper: --hold must be positive")
	}
	blob, err := base64.StdEncoding.DecodeString(*keyArg)
	if err != nil || len(blob) == 0 {
		return usageErr("helper needs --key, the client's public key in base64")
	}
	clientKey, err := kex.ParsePublicKey(blob)
	if err != nil {
		return usageErr("helper: --key: %v", err)
	}
	// Nothing the helper creates is for anyone else; a write to the
	// closed output of a lost link is an error, not a signal; the hang-up
	// of a lost link does not end the session.
	syscall.Umask(0o077)
	signal.Ignore(syscall.SIGPIPE, syscall.SIGHUP)
	base, err := helperBaseDir(*dir)
	if err != nil {
		return err
	}
	run := filepath.Join(base, helperRunDir)
	if err := mkdirPrivate(base); err != nil {
		return err
	}
	if err := mkdirPrivate(run); err != nil {
		return err
	}
	h := &helper{run: run, clientKey: clientKey.Marshal()}
	nc, err := newStdioConn()
	if err != nil {
		return err
	}
	return h.serve(ctx, nc, *hold, *idle)
}

// helper is one helper process's state.
type helper struct {
	run       string // the run directory
	clientKey []byte // the one key that may log in, once
	loggedIn  atomic.Bool
	srv       *rsftp.Server

	mu      sync.Mutex
	ln      net.Listener
	sockDir string // the session's directory, once listening
	lnErr   error
}

// serve serves the client's connection nc (the helper's standard input
// and output) and the session's resumptions until the session ends.
func (h *helper) serve(ctx context.Context, nc net.Conn, hold, idle time.Duration) error {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	// The host key is made for this helper and never stored: the client
	// trusts it because it came over the outer connection, whose host
	// key it checked, and pins it for the session's resumptions.
	hostKey, err := kex.NewSigner(priv)
	if err != nil {
		return err
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return fmt.Errorf("helper: the home directory: %w", err)
	}
	cfg := &rsftp.ServerConfig{
		HostKeys: []kex.Signer{hostKey},
		Auth: auth.ServerConfig{
			PublicKeyCallback: h.checkKey,
			MaxAuthTries:      2,
		},
		// The user's own files as sftp-server serves them: the whole
		// file system, relative paths from the home directory.
		Subsystems: map[string]rsftp.Handler{"sftp": rsftp.SFTPHandler(&sftp.ServerConfig{Root: "/", Home: home})},
		// Commands and shells as the user, which sshd's exec already
		// allowed: the helper gives nothing the account lacks.
		// Shells (login shells) and commands as sshd runs them, with
		// the PATH sshd gave the helper.
		Exec: rsftp.ShellHandler(rsftp.ShellConfig{Path: os.Getenv("PATH")}),
		// Its environment, forwards and agent as the user pleases:
		// sshd's AcceptEnv and forwarding options guard what sshd
		// itself does, not what the user's programs do (sshd_config(5)
		// says as much of AllowTcpForwarding).
		AcceptEnv:                  []string{"*"},
		AllowTCPForwarding:         func(string, string, int) bool { return true },
		AllowRemoteForwarding:      func(string, string, int) bool { return true },
		AllowStreamLocalForwarding: func(string, string, bool) bool { return true },
		AllowAgentForwarding:       func(string) bool { return true },
		MaxSessionsPerConn:         64,
		LoginGraceTime:             30 * time.Second,
		Resume: &rsftp.ResumeServerConfig{
			Hold: hold, IdleTimeout: idle, MaxSessions: 1, MaxDetachedPerUser: 1,
			Events: h.event,
		},
	}
	srv, err := rsftp.NewServer(cfg)
	if err != nil {
		return err
	}
	h.srv = srv
	stop := context.AfterFunc(ctx, func() { srv.Close() })
	defer stop()
	// ServeConn returns when the session ends for good: closed, or its
	// hold over. A lost stdin only detaches it.
	srv.ServeConn(nc)
	h.mu.Lock()
	ln, sockDir, lnErr := h.ln, h.sockDir, h.lnErr
	h.ln = nil
	h.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	if sockDir != "" {
		os.RemoveAll(sockDir)
	}
	srv.Close()
	if !h.loggedIn.Load() {
		return errors.New("helper: the client did not log in")
	}
	return lnErr
}

// checkKey admits the client's key, for the first login only: a
// resumption needs no login, and a second login, on the socket or
// anywhere, is refused.
func (h *helper) checkKey(_ string, key kex.PublicKey) (*auth.Permissions, error) {
	if h.loggedIn.Load() {
		return nil, errors.New("this helper serves one session, and it has begun")
	}
	if !bytes.Equal(key.Marshal(), h.clientKey) {
		return nil, errors.New("not the key the client started the helper with")
	}
	return &auth.Permissions{Identity: "helper"}, nil
}

// event takes the session's first event, "connected", to open its
// socket, named by the session.
func (h *helper) event(e rsftp.Event) {
	if e.Kind != rsftp.EventConnected || e.Session == "" {
		return
	}
	h.loggedIn.Store(true)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ln != nil || h.lnErr != nil {
		return
	}
	if err := checkSessionID(e.Session); err != nil {
		h.lnErr = err
		return
	}
	dir := filepath.Join(h.run, e.Session)
	if err := os.Mkdir(dir, 0o700); err != nil {
		h.lnErr = fmt.Errorf("helper: the session's directory: %w", err)
		return
	}
	sock := filepath.Join(dir, helperSocketName)
	ln, err := net.Listen("unix", sock)
	if err == nil {
		err = os.Chmod(sock, 0o600)
	}
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		os.RemoveAll(dir)
		h.lnErr = fmt.Errorf("helper: the session's socket: %w", err)
		return
	}
	h.ln, h.sockDir = ln, dir
	// Resumptions, each checked by the registry; each connection's
	// first words wait for the client's (answerFirstListener).
	go h.srv.Serve(answerFirstListener{ln})
	go h.watch(sock)
}

// watch ends the helper, and its session, when its socket is removed
// (its directory cleaned away, such as ~/.cache by a tidy user or a
// test's temporary directory): no client could come back to it.
func (h *helper) watch(sock string) {
	want, err := os.Lstat(sock)
	if err != nil {
		return
	}
	t := time.NewTicker(helperWatchInterval)
	defer t.Stop()
	for range t.C {
		h.mu.Lock()
		live := h.ln != nil
		h.mu.Unlock()
		if !live {
			return
		}
		if fi, err := os.Lstat(sock); err != nil || !os.SameFile(fi, want) {
			h.srv.Close()
			return
		}
	}
}

// helperWatchInterval is how often a helper checks that its socket is
// still there.
const helperWatchInterval = 2 * time.Second

// helperBaseDir is --dir, or ~/.cache/rsftp; a relative --dir is taken
// from the home directory, as sshd runs commands there.
func helperBaseDir(dir string) (string, error) {
	if dir != "" && filepath.IsAbs(dir) {
		return filepath.Clean(dir), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("the home directory: %w", err)
	}
	if dir == "" {
		dir = defaultHelperDir
	}
	return filepath.Join(home, dir), nil
}

// mkdirPrivate makes dir (and its parents) if missing and checks that it
// is a directory, not a link, owned by this user, and that nobody else
// may enter it (it makes it so if it can).
func mkdirPrivate(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("helper: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("helper: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("helper: %s is not a directory", dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("helper: %s belongs to user %d, not to this user (%d)", dir, st.Uid, os.Geteuid())
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("helper: %s is open to others and could not be made private: %w", dir, err)
		}
	}
	return nil
}

func fileSHA256(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// runAttach is "rsftp attach SESSION": it splices its standard input and
// output onto the socket of the helper serving SESSION, for the client's
// resumption, and returns when either side ends. The helper decides
// everything else: the resumption's MAC, a competing attempt (BUSY).
func runAttach(args []string) error {
	fs := flag.NewFlagSet("rsftp attach", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	dir := fs.String("dir", "", "the helper's directory (default ~/"+defaultHelperDir+")")
	if err := fs.Parse(args); err != nil {
		return &exitError{code: 2, err: err}
	}
	if fs.NArg() != 1 {
		return usageErr("attach takes one session")
	}
	id := fs.Arg(0)
	if err := checkSessionID(id); err != nil {
		return usageErr("%v", err)
	}
	signal.Ignore(syscall.SIGPIPE, syscall.SIGHUP)
	base, err := helperBaseDir(*dir)
	if err != nil {
		return err
	}
	sock := filepath.Join(base, helperRunDir, id, helperSocketName)
	uc, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: sock, Net: "unix"})
	// The helper opens its socket when its session begins, just after
	// the client learns the session: a link lost at once may bring the
	// client back before it listens.
	for wait := time.Now().Add(time.Second); errors.Is(err, os.ErrNotExist) && time.Now().Before(wait); {
		time.Sleep(20 * time.Millisecond)
		uc, err = net.DialUnix("unix", nil, &net.UnixAddr{Name: sock, Net: "unix"})
	}
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("no helper serves session %s here (its hold time ran out, or it ended)", id)
		}
		return fmt.Errorf("session %s: %w", id, err)
	}
	defer uc.Close()
	done := make(chan struct{}, 2)
	go func() {
		io.Copy(uc, os.Stdin)
		// The link is gone (sshd closed our input): the helper learns
		// it at once and detaches the session.
		uc.CloseWrite()
		done <- struct{}{}
	}()
	go func() {
		io.Copy(os.Stdout, uc)
		done <- struct{}{}
	}()
	<-done
	return nil
}

// stdioConn is the helper's standard input and output as a net.Conn,
// with deadlines (the descriptors are made non-blocking, so that the
// runtime's poller serves them).
type stdioConn struct {
	r, w          *os.File
	pw            *pacedWriter // the writes to w, on a pipe large enough
	local, remote net.Addr
	once          sync.Once
}

func newStdioConn() (*stdioConn, error) {
	growPipes()
	for _, fd := range []int{0, 1} {
		if err := syscall.SetNonblock(fd, true); err != nil {
			return nil, fmt.Errorf("helper: standard input and output: %w", err)
		}
	}
	c := &stdioConn{r: os.NewFile(0, "stdin"), w: os.NewFile(1, "stdout"), local: helperAddr("stdio"), remote: helperAddr("stdio")}
	if n := pipeSize(1); n >= minPacedPipe {
		if rc, err := c.w.SyscallConn(); err == nil {
			c.pw = &pacedWriter{rc: rc, size: n, wait: initialPace}
		}
	}
	// SSH_CONNECTION names the outer connection's ends: the helper's
	// logs and limits, and the SSH_CLIENT and SSH_CONNECTION its shells
	// get, name them as sshd does.
	if f := strings.Fields(os.Getenv("SSH_CONNECTION")); len(f) == 4 {
		if r, err := net.ResolveTCPAddr("tcp", net.JoinHostPort(f[0], f[1])); err == nil && r.IP != nil {
			c.remote = r
		}
		if l, err := net.ResolveTCPAddr("tcp", net.JoinHostPort(f[2], f[3])); err == nil && l.IP != nil {
			c.local = l
		}
	}
	return c, nil
}

func (c *stdioConn) Read(p []byte) (int, error) { return c.r.Read(p) }
func (c *stdioConn) Write(p []byte) (int, error) {
	if c.pw != nil {
		return c.pw.Write(p)
	}
	return c.w.Write(p)
}
func (c *stdioConn) Close() error {
	c.once.Do(func() {
		if c.pw != nil {
			c.pw.closed.Store(true)
		}
		c.r.Close()
		c.w.Close()
	})
	return nil
}
func (c *stdioConn) LocalAddr() net.Addr  { return c.local }
func (c *stdioConn) RemoteAddr() net.Addr { return c.remote }
func (c *stdioConn) SetDeadline(t time.Time) error {
	c.r.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}
func (c *stdioConn) SetReadDeadline(t time.Time) error { return c.r.SetReadDeadline(t) }
func (c *stdioConn) SetWriteDeadline(t time.Time) error {
	if c.pw != nil {
		c.pw.deadline.Store(t.UnixNano())
		if t.IsZero() {
			c.pw.deadline.Store(0)
		}
		return nil
	}
	return c.w.SetWriteDeadline(t)
}

// pacedWriter writes the helper's output to the pipe sshd reads, waiting
// when it is full for a good part of it to drain instead of for the
// first free page. sshd reads its channel's input 32 KiB at a time;
// a writer woken by the poller as soon as there is room (every read of
// a full pipe frees some) wakes, and preempts sshd on a shared core, once
// per 32 KiB: 16,000 times a 512 MiB transfer. Sleeping for about the
// time sshd takes to drain a part of the pipe (measured as it goes: what
// the next write accepted) wakes it a few hundred times instead, while
// the rest of the pipe keeps sshd busy.
type pacedWriter struct {
	rc       syscall.RawConn
	size     int           // the pipe's capacity
	wait     time.Duration // the current pause on a full pipe
	deadline atomic.Int64  // Unix ns, 0 for none
	closed   atomic.Bool
	mu       sync.Mutex
}

const (
	minPacedPipe = 256 << 10
	initialPace  = 500 * time.Microsecond
	minPace      = 50 * time.Microsecond
	maxPace      = 20 * time.Millisecond
)

func (w *pacedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	slept := false
	for n < len(p) {
		if w.closed.Load() {
			return n, os.ErrClosed
		}
		var m int
		var werr error
		err := w.rc.Write(func(fd uintptr) bool {
			m, werr = syscall.Write(int(fd), p[n:])
			return true // never the poller's wait: the pause below is ours
		})
		if err != nil {
			return n, err
		}
		if m > 0 {
			n += m
		}
		if slept && n < len(p) {
			// What the pipe took after a pause is what sshd drained
			// meanwhile: aim at a quarter to three quarters of it.
			switch got := max(m, 0); {
			case got >= w.size*3/4:
				w.wait = max(w.wait/2, minPace)
			case got < w.size/4:
				w.wait = min(w.wait*2, maxPace)
			}
		}
		slept = false
		if werr == nil || werr == syscall.EINTR {
			continue
		}
		if werr != syscall.EAGAIN {
			return n, &os.PathError{Op: "write", Path: "stdout", Err: werr}
		}
		d := w.wait
		if dl := w.deadline.Load(); dl != 0 {
			left := time.Until(time.Unix(0, dl))
			if left <= 0 {
				return n, os.ErrDeadlineExceeded
			}
			d = min(d, left)
		}
		time.Sleep(d)
		slept = true
	}
	return n, nil
}

type helperAddr string

func (a helperAddr) Network() string { return "stdio" }
func (a helperAddr) String() string  { return string(a) }

// answerFirstListener's connections hold what the helper writes until the
// client has spoken (answerFirstConn).
type answerFirstListener struct{ net.Listener }

func (l answerFirstListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return newAnswerFirstConn(c), nil
}

// answerFirstConn is a connection on the helper's socket (a resumption
// reaching it through sshd's direct-streamlocal channel or "rsftp
// attach"): the helper's version line and KEXINIT wait there until the
// client's first flight has arrived, and leave with the key exchange
// reply, in one write. Written apart, the reply is the second small
// segment sshd sends on a TCP connection where it leaves Nagle's
// algorithm on (no pty): it waits for the acknowledgment of the first,
// which the client, having nothing to send, delays (up to 40 ms on
// Linux). rsftp's client never waits for the server's version line
// before sending its own, its KEXINIT and its guess; for any other,
// answerFirstDelay ends the wait.
type answerFirstConn struct {
	net.Conn
	mu     sync.Mutex
	held   []byte
	spoken bool // the peer's first bytes have arrived
	timer  *time.Timer
}

// answerFirstDelay bounds how long the helper's first words wait for the
// peer's.
const answerFirstDelay = 100 * time.Millisecond

func newAnswerFirstConn(c net.Conn) *answerFirstConn {
	a := &answerFirstConn{Conn: c}
	a.timer = time.AfterFunc(answerFirstDelay, func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.spoken = true
		a.flushLocked()
	})
	return a
}

// flushLocked writes what was held, if any; an error is left for the
// next Write to meet.
func (a *answerFirstConn) flushLocked() error {
	if len(a.held) == 0 {
		return nil
	}
	b := a.held
	a.held = nil
	_, err := a.Conn.Write(b)
	return err
}

func (a *answerFirstConn) Read(p []byte) (int, error) {
	a.mu.Lock()
	if a.spoken && len(a.held) > 0 {
		// The peer spoke and we are about to wait for more: what we
		// hold may be what it waits for.
		if err := a.flushLocked(); err != nil {
			a.mu.Unlock()
			return 0, err
		}
	}
	a.mu.Unlock()
	n, err := a.Conn.Read(p)
	if n > 0 {
		a.mu.Lock()
		if !a.spoken {
			a.spoken = true
			a.timer.Stop()
		}
		a.mu.Unlock()
	}
	return n, err
}

func (a *answerFirstConn) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.spoken {
		a.held = append(a.held, p...)
		return len(p), nil
	}
	if len(a.held) == 0 {
		return a.Conn.Write(p)
	}
	b := append(a.held, p...)
	a.held = nil
	if _, err := a.Conn.Write(b); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (a *answerFirstConn) Close() error {
	a.timer.Stop()
	return a.Conn.Close()
}

// CloseWrite half-closes after what is held (the transport's graceful
// close).
func (a *answerFirstConn) CloseWrite() error {
	a.mu.Lock()
	a.spoken = true
	err := a.flushLocked()
	a.mu.Unlock()
	if err != nil {
		return err
	}
	if cw, ok := a.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

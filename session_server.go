package rsftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/channel"
	"github.com/rsftp/rsftp/internal/connmsg"
	"github.com/rsftp/rsftp/internal/wire"
)

// maxEnvVars bounds the environment a client may set on one session, and
// maxEnvBytes the bytes of its names and values together.
const (
	maxEnvVars  = 256
	maxEnvBytes = 64 << 10
)

// PtyRequest is what a client asked for with pty-req (RFC 4254 section
// 6.2): the terminal type, its size and its modes.
type PtyRequest struct {
	// Term is the client's TERM, such as "xterm-256color".
	Term string
	// Window is the size the terminal had when the client asked;
	// ServerSession.Window has the latest.
	Window Window
	// Modes are the terminal modes the client sent, in order (RFC 4254
	// section 8); ServerSession.Run applies them to the pseudo-terminal.
	Modes channel.TerminalModes
}

// Window is a terminal's size: columns and rows of characters, and
// pixels (0 when the client does not know).
type Window struct {
	Cols, Rows, WidthPx, HeightPx uint32
}

// SessionRequests serves the requests a client sends while a session's
// handler runs (ServerSession.Notify): each function may be nil, and a
// request without one is refused.
type SessionRequests struct {
	// WindowChange is called with the terminal's new size.
	WindowChange func(w Window)
	// Signal delivers a signal named as RFC 4254 section 6.10 names
	// them ("INT", "TERM"); an error refuses the request.
	Signal func(name string) error
	// Break sends a break of ms milliseconds to the terminal (RFC 4335);
	// an error refuses the request.
	Break func(ms uint32) error
}

// sessionState is what a ServerSession's request loop shares with its
// handler, under mu.
type sessionState struct {
	mu     sync.Mutex
	window Window
	reqs   SessionRequests
	pty    *ptyFiles // allocated at pty-req until Run takes it
	tty    string    // the terminal's path
	// done is closed when the channel closes (the client's CLOSE, or
	// the connection's end): the handler's program gets SIGHUP.
	done chan struct{}
}

// Notify installs the functions that serve window-change, signal and
// break while the handler runs; ServerSession.Run installs its own. A
// request that arrives before Notify is refused (a window-change is
// remembered: Window returns it).
func (s *ServerSession) Notify(r SessionRequests) {
	if s.state == nil {
		return // not the server's session: nothing to notify
	}
	s.state.mu.Lock()
	s.state.reqs = r
	s.state.mu.Unlock()
}

// Window returns the terminal's latest size: that of pty-req, or of the
// last window-change.
func (s *ServerSession) Window() Window {
	if s.state == nil {
		return Window{}
	}
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	return s.state.window
}

// TTY is the path of the session's terminal (SSH_TTY), such as
// /dev/pts/3; empty without one.
func (s *ServerSession) TTY() string {
	if s.state == nil {
		return ""
	}
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	return s.state.tty
}

// Done is closed when the session's channel closes: the client closed
// it, or the connection (or, for a resumable session, the session) ended.
func (s *ServerSession) Done() <-chan struct{} {
	if s.state == nil {
		return nil // never closed
	}
	return s.state.done
}

// serveSession handles the requests of one session channel: env and
// pty-req before the command, then exec, shell or subsystem, which starts
// the handler. While it runs, window-change, signal and break go to the
// handler (Notify); other requests are refused.
func (sc *serverConn) serveSession(c *channel.Channel) {
	defer sc.doneSession()
	defer c.Close()
	sess := &ServerSession{Channel: c, User: sc.user, Perms: sc.perms, RemoteAddr: sc.remote, Conn: sc.conn,
		state: &sessionState{done: make(chan struct{})}}
	defer sess.releasePty()
	reqs := c.Requests()
	envBytes := 0
	var handler Handler
	for handler == nil {
		r, ok := <-reqs
		if !ok {
			return
		}
		switch r.Type {
		case "env":
			m, err := connmsg.ParseEnv(r.Payload)
			if err != nil || len(sess.Env) >= maxEnvVars || envBytes+len(m.Name)+len(m.Value) > maxEnvBytes || !sc.s.acceptEnv(m.Name) {
				r.Reply(false, nil)
				continue
			}
			envBytes += len(m.Name) + len(m.Value)
			sess.Env = append(sess.Env, m.Name+"="+m.Value)
			r.Reply(true, nil)
		case "pty-req":
			r.Reply(sc.ptyRequest(sess, r.Payload), nil)
		case "window-change":
			ok := sess.windowChange(r.Payload)
			r.Reply(ok, nil)
		case "exec", "shell", "subsystem":
			var arg string
			if r.Type != "shell" {
				rd := wire.NewReader(r.Payload)
				arg = rd.String()
				if rd.Done() != nil {
					r.Reply(false, nil)
					continue
				}
			}
			handler = sc.startHandler(sess, r.Type, arg)
			r.Reply(handler != nil, nil)
		case "auth-agent-req@openssh.com":
			// The socket goes when the session ends (or the
			// connection: forward_server.go).
			if stop := sc.agentRequest(r, sess); stop != nil {
				defer stop()
			}
		default:
			// x11-req and others: not offered by this server.
			r.Reply(false, nil)
		}
	}
	go sess.serveRunning(reqs)
	status := handler(sc.ctx, sess)
	// The status goes after the output (the handler has written it all)
	// and before EOF, as sshd sends it when its child has exited: a
	// client may close the channel as soon as EOF has gone both ways
	// (dropbear's dbclient does, within 0.1 ms), and a status that came
	// after our EOF then found the channel closed and was lost.
	if sess.ExitSignal != "" {
		m := &connmsg.ExitSignal{Signal: sess.ExitSignal, CoreDumped: sess.ExitCoreDumped, Message: sess.ExitMessage}
		c.SendRequest(sc.ctx, "exit-signal", false, m.Marshal())
	} else {
		c.SendRequest(sc.ctx, "exit-status", false, (&connmsg.ExitStatus{Status: uint32(status)}).Marshal())
	}
	c.CloseWrite()
}

// startHandler chooses the handler of an exec, shell or subsystem
// request and fills in sess, or returns nil to refuse it. A forced
// command (ServerConfig.ForceCommand, else the key's command= or the
// certificate's force-command) replaces what the client asked for, which
// OriginalCommand keeps (SSH_ORIGINAL_COMMAND): a forced "internal-sftp"
// or sftp-server runs the "sftp" subsystem, anything else goes to Exec.
func (sc *serverConn) startHandler(sess *ServerSession, typ, arg string) Handler {
	cfg := &sc.s.cfg
	// Nothing of a refused request stays for the next one.
	sess.Command, sess.Subsystem, sess.OriginalCommand, sess.Forced = "", "", "", false
	if forced, ok := sc.forcedCommand(); ok {
		if typ != "shell" {
			sess.OriginalCommand = arg
		}
		if h := cfg.Subsystems["sftp"]; h != nil && isSFTPCommand(forced) {
			sess.Subsystem = "sftp"
			return h
		}
		if cfg.Exec == nil {
			return nil
		}
		sess.Command, sess.Forced = forced, true
		return cfg.Exec
	}
	switch typ {
	case "subsystem":
		h := cfg.Subsystems[arg]
		if h != nil {
			sess.Subsystem = arg
		}
		return h
	case "exec":
		sess.Command = arg
	}
	if cfg.Exec == nil {
		return nil
	}
	return cfg.Exec
}

// forcedCommand is the command every exec, shell and subsystem request
// of the connection runs instead: sshd's ForceCommand first, then the
// authorized_keys line's command= (or the certificate's force-command).
func (sc *serverConn) forcedCommand() (string, bool) {
	if c := sc.s.cfg.ForceCommand; c != "" {
		return c, true
	}
	if p := sc.perms; p != nil {
		if p.KeyOptions != nil && p.KeyOptions.HasCommand {
			return p.KeyOptions.Command, true
		}
		if p.ForceCommand != "" {
			return p.ForceCommand, true
		}
	}
	return "", false
}

// isSFTPCommand reports whether a forced command names the SFTP server,
// as sshd's "internal-sftp" or a path to sftp-server without arguments.
func isSFTPCommand(cmd string) bool {
	f := strings.Fields(cmd)
	return len(f) == 1 && (f[0] == "internal-sftp" || path.Base(f[0]) == "sftp-server")
}

// acceptEnv reports whether the client may set the variable name:
// ServerConfig.AcceptEnv's patterns, as sshd's AcceptEnv.
func (s *Server) acceptEnv(name string) bool {
	for _, p := range s.cfg.AcceptEnv {
		if auth.MatchPattern(p, name) {
			return true
		}
	}
	return false
}

// ptyRequest answers pty-req: a pseudo-terminal is allocated now (as
// sshd does), unless the request is malformed (a TERM with a NUL, which
// no environment can hold, included), the key or certificate forbids it
// (no-pty, restrict), ServerConfig.NoPTY is set, nothing could use it
// (no Exec), the session has one already, or the system has none
// (Windows).
func (sc *serverConn) ptyRequest(sess *ServerSession, payload []byte) bool {
	m, err := connmsg.ParsePtyRequest(payload)
	if err != nil || strings.IndexByte(m.Term, 0) >= 0 || sess.Pty != nil || sc.s.cfg.Exec == nil || sc.s.cfg.NoPTY {
		return false
	}
	if p := sc.perms; p != nil && p.KeyOptions != nil && !p.KeyOptions.PTY {
		return false
	}
	req := &PtyRequest{Term: m.Term, Window: Window{Cols: m.Cols, Rows: m.Rows, WidthPx: m.WidthPx, HeightPx: m.HeightPx}}
	for _, x := range m.Modes {
		req.Modes = append(req.Modes, channel.TerminalMode{Opcode: x.Opcode, Value: x.Value})
	}
	p, err := openPty(req)
	if err != nil {
		sc.s.logConn(sc.remote, slog.LevelWarn, "pty allocation failed", []any{"user", sc.user, "err", err}, "pty allocation failed: %v", err)
		return false
	}
	sess.Pty = req
	sess.state.mu.Lock()
	sess.state.pty = p
	sess.state.tty = p.name()
	sess.state.window = req.Window
	sess.state.mu.Unlock()
	return true
}

// windowChange records the terminal's new size and tells the handler;
// false for a malformed request or a session without a terminal.
func (s *ServerSession) windowChange(payload []byte) bool {
	m, err := connmsg.ParseWindowChange(payload)
	if err != nil || s.Pty == nil {
		return false
	}
	w := Window{Cols: m.Cols, Rows: m.Rows, WidthPx: m.WidthPx, HeightPx: m.HeightPx}
	s.state.mu.Lock()
	s.state.window = w
	f := s.state.reqs.WindowChange
	s.state.mu.Unlock()
	if f != nil {
		f(w)
	}
	return true
}

// serveRunning serves the requests that come while the handler runs,
// until the channel closes, and then closes Done.
func (s *ServerSession) serveRunning(reqs <-chan *channel.Request) {
	defer close(s.state.done)
	for r := range reqs {
		ok := false
		switch r.Type {
		case "window-change":
			ok = s.windowChange(r.Payload)
		case "signal":
			m, err := connmsg.ParseSignal(r.Payload)
			s.state.mu.Lock()
			f := s.state.reqs.Signal
			s.state.mu.Unlock()
			ok = err == nil && f != nil && f(m.Name) == nil
		case "break":
			m, err := connmsg.ParseBreak(r.Payload)
			s.state.mu.Lock()
			f := s.state.reqs.Break
			s.state.mu.Unlock()
			ok = err == nil && f != nil && f(m.Millis) == nil
		}
		r.Reply(ok, nil)
	}
}

// takePty hands the pseudo-terminal allocated at pty-req to its user;
// nil without one.
func (s *ServerSession) takePty() *ptyFiles {
	if s.state == nil {
		return nil
	}
	s.state.mu.Lock()
	defer s.state.mu.Unlock()
	p := s.state.pty
	s.state.pty = nil
	return p
}

// releasePty closes a pseudo-terminal nobody took.
func (s *ServerSession) releasePty() {
	if p := s.takePty(); p != nil {
		p.close()
	}
}

// signalNames maps signals to their RFC 4254 section 6.10 names: those
// every system's syscall package names here, USR1 and USR2 in
// session_server_unix.go (Windows has neither; a process there is never
// killed by a signal, so Run reports its exit status alone).
var signalNames = map[syscall.Signal]string{
	syscall.SIGABRT: "ABRT", syscall.SIGALRM: "ALRM", syscall.SIGFPE: "FPE",
	syscall.SIGHUP: "HUP", syscall.SIGILL: "ILL", syscall.SIGINT: "INT",
	syscall.SIGKILL: "KILL", syscall.SIGPIPE: "PIPE", syscall.SIGQUIT: "QUIT",
	syscall.SIGSEGV: "SEGV", syscall.SIGTERM: "TERM",
}

// signalByName is the signal an RFC 4254 name stands for.
func signalByName(name string) (syscall.Signal, bool) {
	for sig, n := range signalNames {
		if n == name {
			return sig, true
		}
	}
	return 0, false
}

// wantsShell reports whether the session asked for a shell: no command,
// none forced, no subsystem.
func (s *ServerSession) wantsShell() bool {
	return s.Command == "" && !s.Forced && s.Subsystem == ""
}

// CommandHandler returns a Handler that runs the exec command with
// "shell -c command" (a shell request: shell alone) as the server's own
// user, in its home directory, with the client's environment added to
// the server's, through ServerSession.Run: on the pseudo-terminal the
// client asked for, if any, else with stdin, stdout and stderr on the
// channel. shell must take "-c command" as sh does: on Windows a POSIX
// shell such as Git's sh.exe, not cmd.exe. ShellHandler builds a login
// environment instead.
func CommandHandler(shell string) Handler {
	return func(ctx context.Context, s *ServerSession) int {
		var cmd *exec.Cmd
		if s.wantsShell() {
			cmd = exec.Command(shell)
		} else {
			cmd = exec.Command(shell, "-c", s.Command)
		}
		cmd.Env = append(os.Environ(), s.Env...)
		cmd.Dir, _ = os.UserHomeDir()
		return s.Run(ctx, cmd)
	}
}

// Run runs cmd as the session's program and returns its exit status,
// having set ExitSignal (with ExitCoreDumped and ExitMessage) if a signal
// killed it. Its stdin, stdout and stderr must be unset: on Unix, with a
// pseudo-terminal from pty-req, the program gets the terminal as all
// three (modes applied, the window size set and changed as the client
// says, SIGWINCH coming from the terminal) and as its controlling
// terminal, in a session of its own (setsid); without one, the
// channel's stdin, stdout and stderr through pipes, also in a session of
// its own. A signal request goes to its process group, a break to the
// terminal. All of its output is sent before Run returns (the caller
// then sends the exit status and EOF); after the program exited, a
// terminal still held open by a process it left behind is read until it
// has been quiet for a moment, as sshd does. When the channel closes
// first, the process group gets SIGHUP (and the terminal hangs up), and
// Run still waits for the program; when ctx ends, SIGHUP and, if the
// program is still there after shutdownGrace, SIGKILL. On Windows there
// are no terminals, no sessions and no signals but KILL.
func (s *ServerSession) Run(ctx context.Context, cmd *exec.Cmd) int {
	if cmd.Stdin != nil || cmd.Stdout != nil || cmd.Stderr != nil {
		io.WriteString(s.Channel.Stderr(), "rsftp: the session's program has its own stdin, stdout or stderr\n")
		return 127
	}
	if p := s.takePty(); p != nil {
		return s.runPty(ctx, cmd, p)
	}
	return s.runPipes(ctx, cmd)
}

// runPipes runs cmd with the channel's streams through pipes.
func (s *ServerSession) runPipes(ctx context.Context, cmd *exec.Cmd) int {
	setSession(cmd, false)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return s.startFailed(err)
	}
	// stdout goes through our own pipe and a large buffer: os/exec's
	// 32 KiB copies cost a fifth of a bulk download.
	pr, pw, err := os.Pipe()
	if err != nil {
		stdin.Close()
		return s.startFailed(err)
	}
	cmd.Stdout = pw
	cmd.Stderr = s.Channel.Stderr()
	err = cmd.Start()
	pw.Close()
	if err != nil {
		pr.Close()
		return s.startFailed(err)
	}
	s.Notify(SessionRequests{Signal: func(name string) error { return signalGroup(cmd.Process, name) }})
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		defer pr.Close()
		// Hide *os.File's WriteTo so that our buffer is used.
		io.CopyBuffer(s.Channel, struct{ io.Reader }{pr}, make([]byte, 256<<10))
	}()
	go func() {
		io.CopyBuffer(stdin, struct{ io.Reader }{s.Channel}, make([]byte, 256<<10))
		stdin.Close()
	}()
	stop := s.hangUpWhenDone(ctx, cmd.Process, nil)
	err = cmd.Wait()
	stop()
	<-copied
	return s.exitStatus(err)
}

// startFailed reports a program that could not start, as a shell does
// (status 127).
func (s *ServerSession) startFailed(err error) int {
	io.WriteString(s.Channel.Stderr(), "rsftp: "+err.Error()+"\n")
	return 127
}

// shutdownGrace is how long a program has to exit after SIGHUP when its
// session's connection ends, before SIGKILL.
const shutdownGrace = 5 * time.Second

// exitStatus turns Wait's result into the exit status, and a death by a
// signal into ExitSignal (a signal RFC 4254 does not name is exit status
// 128+signal, as a shell reports it).
func (s *ServerSession) exitStatus(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			if name, ok := signalNames[ws.Signal()]; ok {
				s.ExitSignal = name
				s.ExitCoreDumped = ws.CoreDump()
				s.ExitMessage = ws.Signal().String()
			}
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	if err != nil {
		io.WriteString(s.Channel.Stderr(), "rsftp: "+err.Error()+"\n")
		return 127
	}
	return 0
}

// errUnknownSignal refuses a signal request this system cannot deliver.
func errUnknownSignal(name string) error {
	return fmt.Errorf("signal %q is not one RFC 4254 names or this system has", name)
}

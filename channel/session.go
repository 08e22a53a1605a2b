package channel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/rsftp/rsftp/internal/connmsg"
	"github.com/rsftp/rsftp/internal/wire"
)

// Session is the client side of a "session" channel (RFC 4254 section 6):
// set the environment, then run one command or subsystem, then Wait.
//
// Ask for Stdout and Stderr before Exec: a stream nobody asked for is
// discarded so that it cannot stall the other (a subsystem's stdout is
// never discarded: it is the subsystem's protocol, read via Channel).
type Session struct {
	ch *Channel

	mu           sync.Mutex
	started      bool
	wantStdout   bool
	wantStderr   bool
	exitStatus   *uint32
	exitSignal   *ExitError
	requestsDone chan struct{}
}

// NewSession opens a session channel.
func (m *Mux) NewSession(ctx context.Context) (*Session, error) {
	ch, err := m.OpenChannel(ctx, "session", nil)
	if err != nil {
		return nil, err
	}
	s := &Session{ch: ch, requestsDone: make(chan struct{})}
	go s.serveRequests()
	return s, nil
}

// Channel returns the underlying channel.
func (s *Session) Channel() *Channel { return s.ch }

// serveRequests collects exit-status and exit-signal and refuses
// anything else the server asks.
func (s *Session) serveRequests() {
	defer close(s.requestsDone)
	for r := range s.ch.Requests() {
		switch r.Type {
		case "exit-status":
			if m, err := connmsg.ParseExitStatus(r.Payload); err == nil {
				st := m.Status
				s.mu.Lock()
				s.exitStatus = &st
				s.mu.Unlock()
			}
			r.Reply(false, nil)
		case "exit-signal":
			if m, err := connmsg.ParseExitSignal(r.Payload); err == nil {
				s.mu.Lock()
				s.exitSignal = &ExitError{Signal: printable(m.Signal), CoreDumped: m.CoreDumped, Message: printable(m.Message)}
				s.mu.Unlock()
			}
			r.Reply(false, nil)
		default:
			r.Reply(false, nil)
		}
	}
}

// Stdin returns the writer for the command's standard input; closing it
// sends EOF.
func (s *Session) Stdin() io.WriteCloser { return stdinWriter{s.ch} }

type stdinWriter struct{ c *Channel }

func (w stdinWriter) Write(p []byte) (int, error) { return w.c.Write(p) }
func (w stdinWriter) Close() error                { return w.c.CloseWrite() }

// Stdout returns the reader of the command's standard output.
func (s *Session) Stdout() io.Reader {
	s.mu.Lock()
	s.wantStdout = true
	s.mu.Unlock()
	return s.ch
}

// Stderr returns the reader of the command's standard error.
func (s *Session) Stderr() io.Reader {
	s.mu.Lock()
	s.wantStderr = true
	s.mu.Unlock()
	return s.ch.Stderr()
}

// Setenv asks the server to set an environment variable. Servers refuse
// names they do not accept (OpenSSH's AcceptEnv).
func (s *Session) Setenv(ctx context.Context, name, value string) error {
	ok, err := s.ch.SendRequest(ctx, "env", true, (&connmsg.Env{Name: name, Value: value}).Marshal())
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("channel: server refused to set environment variable %s", name)
	}
	return nil
}

func (s *Session) start(ctx context.Context, req, arg string) error {
	wait, err := s.startNoWait(req, arg)
	if err != nil {
		return err
	}
	return wait(ctx)
}

// startNoWait sends the request that starts the session's program and
// returns the wait for the server's answer.
func (s *Session) startNoWait(req, arg string) (wait func(ctx context.Context) error, err error) {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return nil, errors.New("channel: session already started")
	}
	s.started = true
	// A subsystem's stdout is its protocol stream (read through Channel);
	// an exec's stdout nobody asked for is dropped.
	if !s.wantStdout && req != "subsystem" {
		s.ch.Discard(0)
	}
	if !s.wantStderr {
		s.ch.Discard(1)
	}
	s.mu.Unlock()
	var payload []byte
	if req != "shell" {
		payload = wire.AppendString(nil, arg)
	}
	w, err := s.ch.startRequest(req, true, payload)
	if err != nil {
		return nil, fmt.Errorf("channel: %s request: %w", req, err)
	}
	return func(ctx context.Context) error {
		ok, err := waitReply(ctx, w)
		if err != nil {
			return fmt.Errorf("channel: %s request: %w", req, err)
		}
		if !ok {
			if req == "shell" {
				return errors.New("channel: server refused to start a shell")
			}
			return fmt.Errorf("channel: server refused %s %q", req, arg)
		}
		return nil
	}, nil
}

// Exec starts cmd on the server.
func (s *Session) Exec(ctx context.Context, cmd string) error { return s.start(ctx, "exec", cmd) }

// Subsystem starts a subsystem such as "sftp".
func (s *Session) Subsystem(ctx context.Context, name string) error {
	return s.start(ctx, "subsystem", name)
}

// StartSubsystem is Subsystem without waiting for the server's answer:
// the request goes out, and wait waits for the answer and returns what
// Subsystem would. What is written on the channel meanwhile follows the
// request, as OpenSSH's ssh sends a subsystem's first bytes (sftp's
// INIT) right behind its request: a server reads requests and data in
// order and hands the data to the program the request started, so the
// round trip of the answer is saved (issue 17). If the server refuses,
// nothing reads those bytes; the caller closes the session.
func (s *Session) StartSubsystem(name string) (wait func(ctx context.Context) error, err error) {
	return s.startNoWait("subsystem", name)
}

// Shell starts the user's login shell: on the pseudo-terminal
// RequestPty asked for, if any, else with plain stdin and stdout.
func (s *Session) Shell(ctx context.Context) error { return s.start(ctx, "shell", "") }

// Signal sends a signal such as "TERM" or "INT" (without "SIG"); the
// server sends it to the command's process group. No answer is asked
// for (OpenSSH's sshd gives none).
func (s *Session) Signal(name string) error {
	_, err := s.ch.SendRequest(context.Background(), "signal", false, (&connmsg.Signal{Name: name}).Marshal())
	return err
}

// RequestPty asks the server for a pseudo-terminal (pty-req, RFC 4254
// section 6.2) of type term (the remote TERM, such as "xterm-256color"),
// cols by rows characters, with modes applied (TerminalModesFromFd reads
// the local terminal's). Ask before Shell or Exec; a refusal (sshd's
// PermitTTY no, an authorized_keys no-pty) is an error, and the session
// can still run its command without a terminal.
func (s *Session) RequestPty(ctx context.Context, term string, cols, rows int, modes TerminalModes) error {
	m := &connmsg.PtyRequest{Term: term, Cols: clampDim(cols), Rows: clampDim(rows), Modes: modes.connmsg()}
	ok, err := s.ch.SendRequest(ctx, "pty-req", true, m.Marshal())
	if err != nil {
		return fmt.Errorf("channel: pty-req: %w", err)
	}
	if !ok {
		return errors.New("channel: server refused to allocate a pseudo-terminal")
	}
	return nil
}

// WindowChange tells the server that the terminal is now cols by rows
// characters (window-change, RFC 4254 section 6.7); no answer is asked
// for.
func (s *Session) WindowChange(cols, rows int) error {
	m := &connmsg.WindowChange{Cols: clampDim(cols), Rows: clampDim(rows)}
	_, err := s.ch.SendRequest(context.Background(), "window-change", false, m.Marshal())
	return err
}

// Break asks the server to send a break of ms milliseconds to the
// session's terminal (RFC 4335), as ssh's ~B escape does; no answer is
// asked for.
func (s *Session) Break(ms uint32) error {
	_, err := s.ch.SendRequest(context.Background(), "break", false, (&connmsg.Break{Millis: ms}).Marshal())
	return err
}

// clampDim makes a terminal dimension a uint32: negative is 0.
func clampDim(n int) uint32 {
	if n < 0 {
		return 0
	}
	return uint32(min(uint64(n), 1<<32-1))
}

// Wait waits for the server to close the session and returns nil for exit
// status 0, *ExitError for another status or a signal, and
// *ExitMissingError when the server reported neither.
func (s *Session) Wait() error {
	<-s.requestsDone
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ch.mu.Lock()
	err := s.ch.err
	s.ch.mu.Unlock()
	switch {
	case s.exitSignal != nil:
		return s.exitSignal
	case s.exitStatus != nil && *s.exitStatus == 0:
		return nil
	case s.exitStatus != nil:
		return &ExitError{Status: int(*s.exitStatus)}
	case err != nil:
		return fmt.Errorf("channel: session ended without an exit status: %w", err)
	}
	return &ExitMissingError{}
}

// Run runs cmd with stdout and stderr discarded and waits for it.
// Cancelling ctx closes the session.
func (s *Session) Run(ctx context.Context, cmd string) error {
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	if err := s.Exec(ctx, cmd); err != nil {
		return err
	}
	s.Stdin().Close()
	err := s.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// Output runs cmd and returns its standard output.
func (s *Session) Output(ctx context.Context, cmd string) ([]byte, error) {
	stop := context.AfterFunc(ctx, func() { s.Close() })
	defer stop()
	out := s.Stdout()
	if err := s.Exec(ctx, cmd); err != nil {
		return nil, err
	}
	s.Stdin().Close()
	b, rerr := io.ReadAll(out)
	err := s.Wait()
	if ctx.Err() != nil {
		return b, ctx.Err()
	}
	if err == nil && rerr != nil {
		err = rerr
	}
	return b, err
}

// Close closes the session channel.
func (s *Session) Close() error { return s.ch.Close() }

// ExitError reports a remote command that failed: a non-zero exit status,
// or death by a signal. Session.Wait, Run and Output return it; use
// errors.As to read the status.
type ExitError struct {
	// Status is the exit status (exit-status); 0 when Signal is set.
	Status int
	Signal string // such as "TERM"; empty for a normal exit
	// CoreDumped is the server's claim that the command dumped core
	// (exit-signal only).
	CoreDumped bool
	// Message is the server's description of the signal (exit-signal
	// only), with unprintable characters replaced; possibly empty.
	Message string
}

// Error says how the command ended: "remote command exited with status
// N", or killed by a signal, with its message.
func (e *ExitError) Error() string {
	if e.Signal != "" {
		s := "remote command killed by signal " + e.Signal
		if e.CoreDumped {
			s += " (core dumped)"
		}
		if e.Message != "" {
			s += ": " + e.Message
		}
		return s
	}
	return fmt.Sprintf("remote command exited with status %d", e.Status)
}

// ExitMissingError reports a session the server closed without an exit
// status or signal.
type ExitMissingError struct{}

// Error says that the command ended without an exit status or signal.
func (e *ExitMissingError) Error() string {
	return "remote command exited without exit status or exit signal"
}

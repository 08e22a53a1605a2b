package rsftp

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"syscall"

	"github.com/rsftp/rsftp/channel"
	"github.com/rsftp/rsftp/internal/wire"
)

// maxEnvVars bounds the environment a client may set on one session.
const maxEnvVars = 256

// serveSession handles the requests of one session channel: env and
// pty-req before the command, then exec, shell or subsystem, which starts
// the handler. Requests after that are refused.
func (sc *serverConn) serveSession(c *channel.Channel) {
	defer sc.doneSession()
	defer c.Close()
	sess := &ServerSession{Channel: c, User: sc.user, Perms: sc.perms, RemoteAddr: sc.remote, Conn: sc.conn}
	reqs := c.Requests()
	var handler Handler
	for handler == nil {
		r, ok := <-reqs
		if !ok {
			return
		}
		switch r.Type {
		case "env":
			rd := wire.NewReader(r.Payload)
			name, val := rd.String(), rd.String()
			if rd.Done() != nil || len(sess.Env) >= maxEnvVars || name == "" {
				r.Reply(false, nil)
				continue
			}
			sess.Env = append(sess.Env, name+"="+val)
			r.Reply(true, nil)
		case "exec", "shell":
			if r.Type == "exec" {
				rd := wire.NewReader(r.Payload)
				sess.Command = rd.String()
				if rd.Done() != nil {
					r.Reply(false, nil)
					continue
				}
			}
			if sc.s.cfg.Exec == nil {
				r.Reply(false, nil)
				continue
			}
			handler = sc.s.cfg.Exec
			r.Reply(true, nil)
		case "subsystem":
			rd := wire.NewReader(r.Payload)
			name := rd.String()
			h := sc.s.cfg.Subsystems[name]
			if rd.Done() != nil || h == nil {
				r.Reply(false, nil)
				continue
			}
			sess.Subsystem = name
			handler = h
			r.Reply(true, nil)
		case "auth-agent-req@openssh.com":
			// The socket goes when the session ends (or the
			// connection: forward_server.go).
			if stop := sc.agentRequest(r, sess); stop != nil {
				defer stop()
			}
		default:
			// pty-req, x11-req and others: not offered by this
			// server.
			r.Reply(false, nil)
		}
	}
	c.RefuseRequests()
	status := handler(sc.ctx, sess)
	c.CloseWrite()
	if sess.ExitSignal != "" {
		p := wire.AppendString(nil, sess.ExitSignal)
		p = wire.AppendBool(p, false)
		p = wire.AppendString(p, "")
		p = wire.AppendString(p, "")
		c.SendRequest(sc.ctx, "exit-signal", false, p)
		return
	}
	c.SendRequest(sc.ctx, "exit-status", false, wire.AppendUint32(nil, uint32(status)))
}

// signalNames maps signals to their RFC 4254 section 6.10 names: those
// every system's syscall package names here, USR1 and USR2 in
// session_server_unix.go (Windows has neither; a process there is never
// killed by a signal, so CommandHandler reports its exit status alone).
var signalNames = map[syscall.Signal]string{
	syscall.SIGABRT: "ABRT", syscall.SIGALRM: "ALRM", syscall.SIGFPE: "FPE",
	syscall.SIGHUP: "HUP", syscall.SIGILL: "ILL", syscall.SIGINT: "INT",
	syscall.SIGKILL: "KILL", syscall.SIGPIPE: "PIPE", syscall.SIGQUIT: "QUIT",
	syscall.SIGSEGV: "SEGV", syscall.SIGTERM: "TERM",
}

// CommandHandler returns a Handler that runs the exec command with
// "shell -c command" as the server's own user, with the client's
// environment added to the server's. stdin, stdout and stderr are the
// channel's. A command killed by a signal is reported with exit-signal
// (or, for a signal RFC 4254 does not name, exit status 128+signal).
// shell must take "-c command" as sh does: on Windows a POSIX shell such
// as Git's sh.exe, not cmd.exe.
func CommandHandler(shell string) Handler {
	return func(ctx context.Context, s *ServerSession) int {
		var cmd *exec.Cmd
		if s.Command == "" {
			cmd = exec.CommandContext(ctx, shell)
		} else {
			cmd = exec.CommandContext(ctx, shell, "-c", s.Command)
		}
		cmd.Env = append(os.Environ(), s.Env...)
		cmd.Dir, _ = os.UserHomeDir()
		stdin, err := cmd.StdinPipe()
		if err != nil {
			io.WriteString(s.Channel.Stderr(), "rsftp: "+err.Error()+"\n")
			return 127
		}
		// stdout goes through our own pipe and a large buffer: os/exec's
		// 32 KiB copies cost a fifth of a bulk download.
		pr, pw, err := os.Pipe()
		if err != nil {
			io.WriteString(s.Channel.Stderr(), "rsftp: "+err.Error()+"\n")
			return 127
		}
		cmd.Stdout = pw
		cmd.Stderr = s.Channel.Stderr()
		err = cmd.Start()
		pw.Close()
		if err != nil {
			pr.Close()
			io.WriteString(s.Channel.Stderr(), "rsftp: "+err.Error()+"\n")
			return 127
		}
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
		err = cmd.Wait()
		<-copied
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				if name, ok := signalNames[ws.Signal()]; ok {
					s.ExitSignal = name
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
}

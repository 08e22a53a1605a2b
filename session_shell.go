package rsftp

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// DefaultShellPath is the PATH ShellHandler gives programs, as Debian's
// sshd gives a user other than root.
const DefaultShellPath = "/usr/local/bin:/usr/bin:/bin:/usr/games"

// ShellConfig configures ShellHandler.
type ShellConfig struct {
	// Shell is the user's shell, which runs shells (as a login shell)
	// and commands ("shell -c command"). Default: the user's login shell
	// from the password database, else $SHELL, else /bin/sh.
	Shell string
	// Path is the PATH programs get; default DefaultShellPath.
	Path string
}

// ShellHandler returns a Handler that gives the client a shell or runs
// its command as sshd does, as the user the server runs as (it never
// switches users): a shell request runs the user's shell as a login
// shell (argv[0] "-bash" for /bin/bash), an exec request "shell -c
// command", in the home directory (or / if that fails, saying so on
// stderr), with a login environment: USER, LOGNAME, HOME, SHELL, PATH,
// MAIL, TZ (if the server has it), then what the client sent (as
// ServerConfig.AcceptEnv let through), then SSH_CLIENT,
// SSH_CONNECTION, SSH_TTY and TERM (with a pseudo-terminal),
// SSH_ORIGINAL_COMMAND (under a forced command) and SSH_AUTH_SOCK (with
// agent forwarding). The program runs through ServerSession.Run: on the
// pseudo-terminal the client asked for, if any.
func ShellHandler(cfg ShellConfig) Handler {
	return func(ctx context.Context, s *ServerSession) int {
		u, err := user.Current()
		if err != nil {
			return s.startFailed(fmt.Errorf("cannot tell who runs the server: %w", err))
		}
		shell := cfg.Shell
		if shell == "" {
			shell = loginShell(u)
		}
		path := cfg.Path
		if path == "" {
			path = DefaultShellPath
		}
		name := loginName(u.Username)
		env := []string{"USER=" + name, "LOGNAME=" + name, "HOME=" + u.HomeDir, "PATH=" + path,
			"MAIL=" + filepath.Join("/var/mail", name), "SHELL=" + shell}
		if tz, ok := os.LookupEnv("TZ"); ok {
			env = append(env, "TZ="+tz)
		}
		env = setEnv(env, s.Env...)
		env = setEnv(env, sessionEnv(s)...)

		base := filepath.Base(shell)
		cmd := &exec.Cmd{Path: shell, Env: env, Dir: u.HomeDir}
		if s.wantsShell() {
			cmd.Args = []string{"-" + base}
		} else {
			cmd.Args = []string{base, "-c", s.Command}
		}
		if fi, err := os.Stat(u.HomeDir); err != nil || !fi.IsDir() {
			msg := "not a directory"
			if err != nil {
				msg = err.Error()
			}
			fmt.Fprintf(sessionStderr(s), "Could not chdir to home directory %s: %s\r\n", u.HomeDir, msg)
			cmd.Dir = "/"
		}
		return s.Run(ctx, cmd)
	}
}

// sessionStderr is where a message to the user goes before the program
// starts: stderr, which with a terminal the client shows as well.
func sessionStderr(s *ServerSession) io.Writer { return s.Channel.Stderr() }

// sessionEnv is what sshd adds to a program's environment about the
// connection: SSH_CLIENT, SSH_CONNECTION, SSH_TTY and TERM,
// SSH_ORIGINAL_COMMAND, SSH_AUTH_SOCK.
func sessionEnv(s *ServerSession) []string {
	var env []string
	rip, rport := splitAddr(s.RemoteAddr)
	var lip, lport string
	if s.Conn != nil {
		lip, lport = splitAddr(s.Conn.LocalAddr())
	}
	env = append(env, "SSH_CLIENT="+rip+" "+rport+" "+lport,
		"SSH_CONNECTION="+rip+" "+rport+" "+lip+" "+lport)
	if s.Pty != nil {
		if tty := s.TTY(); tty != "" {
			env = append(env, "SSH_TTY="+tty)
		}
		env = append(env, "TERM="+s.Pty.Term)
	}
	if s.OriginalCommand != "" {
		env = append(env, "SSH_ORIGINAL_COMMAND="+s.OriginalCommand)
	}
	if s.AgentSocket != "" {
		env = append(env, "SSH_AUTH_SOCK="+s.AgentSocket)
	}
	return env
}

// splitAddr is an address's host and port for SSH_CONNECTION ("UNKNOWN"
// and 65535 for one that is not IP, as sshd says for a socket it cannot
// name).
func splitAddr(a net.Addr) (host, port string) {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String(), strconv.Itoa(ta.Port)
	}
	if a != nil {
		if h, p, err := net.SplitHostPort(a.String()); err == nil {
			return h, p
		}
	}
	return "UNKNOWN", "65535"
}

// setEnv sets each "NAME=value" of vars in env, replacing an earlier
// value of the same name.
func setEnv(env []string, vars ...string) []string {
	for _, v := range vars {
		name, _, _ := strings.Cut(v, "=")
		replaced := false
		for i, e := range env {
			if n, _, _ := strings.Cut(e, "="); n == name {
				env[i] = v
				replaced = true
				break
			}
		}
		if !replaced {
			env = append(env, v)
		}
	}
	return env
}

// loginName is a user name as a login name: DOMAIN\user (Windows)
// without the domain.
func loginName(name string) string {
	if i := strings.LastIndexByte(name, '\\'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// loginShell is u's shell: its password database entry's (read from
// /etc/passwd: os/user does not give it), else $SHELL, else /bin/sh.
func loginShell(u *user.User) string {
	if f, err := os.Open("/etc/passwd"); err == nil {
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Split(sc.Text(), ":")
			if len(fields) == 7 && fields[2] == u.Uid && fields[0] == u.Username && fields[6] != "" {
				return fields[6]
			}
		}
	}
	if sh := os.Getenv("SHELL"); sh != "" {
		return sh
	}
	return "/bin/sh"
}

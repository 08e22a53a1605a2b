//go:build unix

package rsftp_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/channel"
	"github.com/rsftp/rsftp/kex"
)

// shellServer starts a Server whose Exec is ShellHandler with /bin/sh,
// whose logins get perms, and dials it.
func shellServer(t *testing.T, perms *auth.Permissions, edit func(*rsftp.ServerConfig)) *rsftp.Client {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Skip("no /bin/sh")
	}
	cfg := &rsftp.ServerConfig{
		Auth: auth.ServerConfig{PublicKeyCallback: func(string, kex.PublicKey) (*auth.Permissions, error) {
			if perms == nil {
				return &auth.Permissions{}, nil
			}
			p := *perms
			return &p, nil
		}},
		Exec: rsftp.ShellHandler(rsftp.ShellConfig{Shell: "/bin/sh"}),
	}
	if edit != nil {
		edit(cfg)
	}
	return serveAndDial(t, cfg, testSigner(t))
}

// transcript collects a session's output for waitFor.
type transcript struct {
	mu   sync.Mutex
	cond *sync.Cond
	buf  bytes.Buffer
	done bool
}

func newTranscript(r io.Reader) *transcript {
	tr := &transcript{}
	tr.cond = sync.NewCond(&tr.mu)
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := r.Read(b)
			tr.mu.Lock()
			tr.buf.Write(b[:n])
			if err != nil {
				tr.done = true
			}
			tr.cond.Broadcast()
			tr.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return tr
}

// waitFor waits until the output holds s after what earlier waits
// consumed, and consumes up to its end; it fails at the end of the output
// or after a minute (a test that hangs rather than a timed check).
func (tr *transcript) waitFor(t *testing.T, s string) string {
	t.Helper()
	timer := time.AfterFunc(time.Minute, func() {
		tr.mu.Lock()
		tr.done = true
		tr.cond.Broadcast()
		tr.mu.Unlock()
	})
	defer timer.Stop()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for {
		if i := strings.Index(tr.buf.String(), s); i >= 0 {
			out := string(tr.buf.Next(i + len(s)))
			return out
		}
		if tr.done {
			t.Fatalf("output ended (or a minute passed) without %q: %q", s, tr.buf.String())
		}
		tr.cond.Wait()
	}
}

func (tr *transcript) all() string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for !tr.done {
		tr.cond.Wait()
	}
	return tr.buf.String()
}

// ptySession opens a session with a pseudo-terminal of cols by rows and
// modes, starts cmd (a shell if empty) and returns its output.
func ptySession(t *testing.T, c *rsftp.Client, cmd string, cols, rows int, modes channel.TerminalModes) (*channel.Session, *transcript) {
	t.Helper()
	ctx := context.Background()
	s, err := c.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.RequestPty(ctx, "xterm", cols, rows, modes); err != nil {
		t.Fatal(err)
	}
	tr := newTranscript(s.Stdout())
	if cmd == "" {
		err = s.Shell(ctx)
	} else {
		err = s.Exec(ctx, cmd)
	}
	if err != nil {
		t.Fatal(err)
	}
	return s, tr
}

// TestPtyShell: a login shell on a terminal: its prompt, a command
// typed, the size after a window-change (stty size), and exit's status.
func TestPtyShell(t *testing.T) {
	c := shellServer(t, nil, nil)
	s, tr := ptySession(t, c, "", 80, 24, nil)
	in := s.Stdin()
	io.WriteString(in, "PS1='rsftp-prompt> '\n")
	tr.waitFor(t, "rsftp-prompt> ")
	io.WriteString(in, "echo sum-$((40+2))\n")
	tr.waitFor(t, "sum-42")
	tr.waitFor(t, "rsftp-prompt> ")
	io.WriteString(in, "stty size\n")
	tr.waitFor(t, "24 80")
	tr.waitFor(t, "rsftp-prompt> ")
	if err := s.WindowChange(132, 43); err != nil {
		t.Fatal(err)
	}
	// The window-change and the line typed after it are served apart
	// (a request, channel data): ask until the new size shows.
	for i := 0; ; i++ {
		io.WriteString(in, "stty size\n")
		out := tr.waitFor(t, "rsftp-prompt> ")
		if strings.Contains(out, "43 132") {
			break
		}
		if i == 50 {
			t.Fatalf("stty size after window-change 132x43: %q", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	io.WriteString(in, "exit 3\n")
	var ee *channel.ExitError
	if err := s.Wait(); !errors.As(err, &ee) || ee.Status != 3 {
		t.Fatalf("Wait after exit 3: %v", err)
	}
}

// TestPtyInterrupt: ^C typed on the terminal interrupts the foreground
// program (the line discipline's SIGINT to the foreground group).
func TestPtyInterrupt(t *testing.T) {
	c := shellServer(t, nil, nil)
	s, tr := ptySession(t, c, "echo ready; sleep 1000; echo not-interrupted", 80, 24, nil)
	tr.waitFor(t, "ready")
	// A ^C between the echo and the sleep's start reaches the shell
	// alone (dash catches it under -c and goes on): type it until the
	// program ends, as a person would.
	ended := make(chan struct{})
	go func() {
		for {
			s.Stdin().Write([]byte{3})
			select {
			case <-ended:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	err := s.Wait()
	close(ended)
	var ee *channel.ExitError
	if !errors.As(err, &ee) || !(ee.Signal == "INT" || ee.Status == 130) {
		t.Fatalf("Wait after ^C: %v (want killed by INT, or status 130)", err)
	}
	if out := tr.all(); strings.Contains(out, "not-interrupted") {
		t.Fatalf("the shell went on after ^C: %q", out)
	}
}

// TestSessionSignalAndExit: a signal request reaches the program; exit
// status and exit-signal come back as the program ended.
func TestSessionSignalAndExit(t *testing.T) {
	c := shellServer(t, nil, nil)
	ctx := context.Background()
	for _, pty := range []bool{false, true} {
		s, err := c.NewSession(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if pty {
			if err := s.RequestPty(ctx, "xterm", 80, 24, nil); err != nil {
				t.Fatal(err)
			}
		}
		tr := newTranscript(s.Stdout())
		if err := s.Exec(ctx, "echo ready; sleep 1000 & wait"); err != nil {
			t.Fatal(err)
		}
		tr.waitFor(t, "ready")
		if err := s.Signal("TERM"); err != nil {
			t.Fatal(err)
		}
		var ee *channel.ExitError
		if err := s.Wait(); !errors.As(err, &ee) || ee.Signal != "TERM" || ee.Message == "" {
			t.Fatalf("pty %v: Wait after signal TERM: %v", pty, err)
		}
		s.Close()
	}

	// A break asked with a reply: granted on a terminal (tcsendbreak),
	// refused without one.
	for _, pty := range []bool{true, false} {
		s, err := c.NewSession(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if pty {
			if err := s.RequestPty(ctx, "xterm", 80, 24, nil); err != nil {
				t.Fatal(err)
			}
		}
		tr := newTranscript(s.Stdout())
		if err := s.Exec(ctx, "echo ready; read x"); err != nil {
			t.Fatal(err)
		}
		tr.waitFor(t, "ready")
		ok, err := s.Channel().SendRequest(ctx, "break", true, []byte{0, 0, 1, 0})
		if err != nil || ok != pty {
			t.Errorf("pty %v: break answered %v, %v", pty, ok, err)
		}
		s.Close()
	}

	s, _ := c.NewSession(ctx)
	var ee *channel.ExitError
	if err := s.Run(ctx, "kill -TERM $$"); !errors.As(err, &ee) || ee.Signal != "TERM" || ee.CoreDumped {
		t.Fatalf("kill -TERM $$: %v", err)
	}
	s, _ = c.NewSession(ctx)
	if err := s.Run(ctx, "exit 42"); !errors.As(err, &ee) || ee.Status != 42 || ee.Signal != "" {
		t.Fatalf("exit 42: %v", err)
	}
	s, _ = c.NewSession(ctx)
	if err := s.Run(ctx, "true"); err != nil {
		t.Fatalf("true: %v", err)
	}
}

// TestSessionEnv: env requests pass ServerConfig.AcceptEnv's patterns or
// are refused; the login environment is sshd's.
func TestSessionEnv(t *testing.T) {
	c := shellServer(t, nil, func(cfg *rsftp.ServerConfig) { cfg.AcceptEnv = []string{"LANG", "LC_*"} })
	ctx := context.Background()
	s, err := c.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []struct {
		name string
		ok   bool
	}{{"LANG", true}, {"LC_ALL", true}, {"FOO", false}, {"PATH", false}, {"XLANG", false}} {
		if err := s.Setenv(ctx, e.name, "v-"+e.name); (err == nil) != e.ok {
			t.Errorf("Setenv %s: %v, want accepted %v", e.name, err, e.ok)
		}
	}
	out, err := s.Output(ctx, `echo "$LANG|$LC_ALL|${FOO-unset}|$PATH|$SHELL|$HOME|${SSH_TTY-none}|$SSH_CONNECTION|$(pwd)"`)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(strings.TrimSpace(string(out)), "|")
	home, _ := os.UserHomeDir()
	want := []string{"v-LANG", "v-LC_ALL", "unset", rsftp.DefaultShellPath, "/bin/sh"}
	if len(f) != 9 || strings.Join(f[:5], "|") != strings.Join(want, "|") {
		t.Fatalf("environment %q, want %q first", f, want)
	}
	if f[6] != "none" || !strings.HasPrefix(f[7], "127.0.0.1 ") || len(strings.Fields(f[7])) != 4 {
		t.Errorf("SSH_TTY %q, SSH_CONNECTION %q", f[6], f[7])
	}
	if fi, err := os.Stat(home); err == nil && fi.IsDir() && (f[5] == "" || f[8] != f[5]) {
		t.Errorf("HOME %q, working directory %q", f[5], f[8])
	}

	// What a client makes the server keep is bounded: 64 KiB of names
	// and values per session (and 32 KiB a value, the parser's bound).
	s, err = c.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("v", 32<<10)
	for _, e := range []struct {
		name, value string
		ok          bool
	}{{"LC_A", big, true}, {"LC_B", big, false}, {"LC_C", "small", true}, {"LC_D", big + "v", false}} {
		if err := s.Setenv(ctx, e.name, e.value); (err == nil) != e.ok {
			t.Errorf("Setenv %s of %d bytes: %v, want accepted %v", e.name, len(e.value), err, e.ok)
		}
	}
	s.Close()

	// With a terminal: TERM and SSH_TTY.
	s, tr := ptySession(t, c, `echo "[$TERM|$SSH_TTY|$(tty)]"`, 80, 24, nil)
	s.Wait()
	out2 := tr.all()
	i, j := strings.Index(out2, "["), strings.Index(out2, "]")
	if i < 0 || j < i {
		t.Fatalf("output %q", out2)
	}
	g := strings.Split(out2[i+1:j], "|")
	if len(g) != 3 || g[0] != "xterm" || g[1] == "" || g[1] != g[2] {
		t.Errorf("TERM, SSH_TTY and tty: %q", g)
	}
}

// TestPtyModes: the modes sent with pty-req are the terminal's: echo
// off, ^X as the interrupt character, shown by stty -a; a full-screen
// program's view (tput) of the size.
func TestPtyModes(t *testing.T) {
	if _, err := exec.LookPath("tput"); err != nil {
		t.Skip("no tput")
	}
	c := shellServer(t, nil, nil)
	modes := channel.TerminalModes{{Opcode: 53 /* ECHO */, Value: 0}, {Opcode: 1 /* VINTR */, Value: 0x18}}
	s, tr := ptySession(t, c, "stty -a; tput cols; tput lines", 100, 30, modes)
	s.Wait()
	out := tr.all()
	if !strings.Contains(out, " -echo ") && !strings.Contains(out, " -echo\r") {
		t.Errorf("stty -a does not show -echo: %q", out)
	}
	if !strings.Contains(out, "intr = ^X") {
		t.Errorf("stty -a does not show intr = ^X: %q", out)
	}
	if !strings.Contains(out, "\r\n100\r\n30\r\n") {
		t.Errorf("tput cols and lines: %q, want 100 and 30", out)
	}
	// Echo is off: what is typed does not come back.
	s, tr = ptySession(t, c, "read line; echo got-$line", 80, 24, modes)
	io.WriteString(s.Stdin(), "secret\n")
	s.Wait()
	if out := tr.all(); strings.Count(out, "secret") != 1 || !strings.Contains(out, "got-secret") {
		t.Errorf("with echo off: %q", out)
	}
}

// TestPtyRefused: a key with no-pty (or restrict) gets a failure for
// pty-req, and its session still runs its command without a terminal;
// a forced command runs instead of the client's, which it finds in
// SSH_ORIGINAL_COMMAND.
func TestPtyRefused(t *testing.T) {
	perms := &auth.Permissions{KeyOptions: &auth.KeyPermissions{PTY: false, HasCommand: true,
		Command: `echo "forced:$SSH_ORIGINAL_COMMAND"; tty`}}
	c := shellServer(t, perms, nil)
	ctx := context.Background()
	s, err := c.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RequestPty(ctx, "xterm", 80, 24, nil); err == nil {
		t.Fatal("pty-req granted despite no-pty")
	}
	out, err := s.Output(ctx, "ls -l")
	var ee *channel.ExitError
	if !errors.As(err, &ee) || ee.Status != 1 { // tty: not a tty
		t.Errorf("exit: %v", err)
	}
	if !strings.HasPrefix(string(out), "forced:ls -l\nnot a tty") {
		t.Errorf("output %q", out)
	}
	// A shell, or a subsystem, gets the forced command too.
	for _, start := range []func(*channel.Session) error{
		func(s *channel.Session) error { return s.Shell(ctx) },
		func(s *channel.Session) error { return s.Subsystem(ctx, "sftp") },
	} {
		s, err := c.NewSession(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tr := newTranscript(s.Stdout())
		if err := start(s); err != nil {
			t.Fatal(err)
		}
		s.Stdin().Close()
		s.Wait()
		if out := tr.all(); !strings.HasPrefix(out, "forced:") {
			t.Errorf("shell or subsystem under a forced command: %q", out)
		}
	}
}

// TestEmptyForcedCommand: command="" runs nothing (an empty sh -c), never a
// shell, whatever the client asks for.
func TestEmptyForcedCommand(t *testing.T) {
	c := shellServer(t, &auth.Permissions{KeyOptions: &auth.KeyPermissions{PTY: true, HasCommand: true}}, nil)
	ctx := context.Background()
	for _, start := range []func(*channel.Session) error{
		func(s *channel.Session) error { return s.Shell(ctx) },
		func(s *channel.Session) error { return s.Exec(ctx, "echo not-forced") },
	} {
		s, err := c.NewSession(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tr := newTranscript(s.Stdout())
		if err := start(s); err != nil {
			t.Fatal(err)
		}
		io.WriteString(s.Stdin(), "echo a-shell-read-this\n")
		s.Stdin().Close()
		if err := s.Wait(); err != nil {
			t.Errorf("Wait: %v", err)
		}
		if out := tr.all(); out != "" {
			t.Errorf("an empty forced command printed %q", out)
		}
	}
}

// TestPtyOutputDrained: all a program wrote to its terminal arrives
// before the exit status, however fast it exits.
func TestPtyOutputDrained(t *testing.T) {
	c := shellServer(t, nil, nil)
	for i := 0; i < 3; i++ {
		s, tr := ptySession(t, c, "head -c 300000 /dev/zero | tr '\\0' x", 80, 24, nil)
		if err := s.Wait(); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(tr.all(), "x"); n != 300000 {
			t.Fatalf("run %d: %d bytes of 300000", i, n)
		}
	}
}

// TestPtyHangUp: when the client closes the channel, the program gets
// SIGHUP, as under sshd.
func TestPtyHangUp(t *testing.T) {
	c := shellServer(t, nil, nil)
	mark := filepath.Join(t.TempDir(), "hup")
	for _, pty := range []bool{true, false} {
		ctx := context.Background()
		s, err := c.NewSession(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if pty {
			if err := s.RequestPty(ctx, "xterm", 80, 24, nil); err != nil {
				t.Fatal(err)
			}
		}
		tr := newTranscript(s.Stdout())
		if err := s.Exec(ctx, "trap 'echo hup > "+mark+"; exit 0' HUP; echo ready; while :; do sleep 0.05; done"); err != nil {
			t.Fatal(err)
		}
		tr.waitFor(t, "ready")
		s.Close()
		for i := 0; ; i++ {
			if b, err := os.ReadFile(mark); err == nil && string(b) == "hup\n" {
				break
			}
			if i == 1000 {
				t.Fatalf("pty %v: no SIGHUP after the channel closed", pty)
			}
			time.Sleep(10 * time.Millisecond)
		}
		os.Remove(mark)
	}
}

// TestPtyLeftBehind: a process the program left behind holding the
// terminal (ignoring the hang-up) does not keep the session open: the
// output is read until the terminal is quiet, and the exit status comes
// while that process still runs.
func TestPtyLeftBehind(t *testing.T) {
	if _, err := exec.LookPath("pgrep"); err != nil {
		t.Skip("no pgrep")
	}
	c := shellServer(t, nil, nil)
	const marker = "sleep 30.4217"
	s, tr := ptySession(t, c, "(trap '' HUP; echo started; exec "+marker+") & read x; exit 9", 80, 24, nil)
	tr.waitFor(t, "started")
	io.WriteString(s.Stdin(), "\n")
	var ee *channel.ExitError
	if err := s.Wait(); !errors.As(err, &ee) || ee.Status != 9 {
		t.Fatalf("Wait: %v", err)
	}
	out, err := exec.Command("pgrep", "-f", marker).Output()
	exec.Command("pkill", "-f", marker).Run()
	if err != nil || len(out) == 0 {
		t.Errorf("the process left behind is gone (pgrep: %v): the session waited for it", err)
	}
}

//go:build linux

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// startJobShell runs bash on a new pseudo-terminal, with job control, as
// a person's login shell would be: rsftp started from it is a foreground
// job in a process group of its own, which SIGTSTP can stop (a process
// group with no parent in its session, as startPTY's rsftp is, ignores
// it: the kernel discards stop signals to orphaned groups).
func startJobShell(t *testing.T, dir string) *ptySession {
	t.Helper()
	bash, err := exec.LookPath("bash")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("bash, to run rsftp as a job of, is required under CI=true (Debian package bash)")
		}
		t.Skip("no bash to run rsftp as a job of")
	}
	cmd := exec.Command(bash, "--norc", "--noprofile", "--noediting", "-i")
	cmd.Dir = dir
	cmd.Env = append(e2eEnv(t), "TERM=xterm", "PS1=LOCAL> ")
	return runOnPTY(t, cmd)
}

// toolLine is the shell command line that runs rsftp with args.
func toolLine(t *testing.T, args []string) string {
	var line strings.Builder
	line.WriteString(shellQuote(e2eTool(t)))
	for _, a := range args {
		line.WriteString(" " + shellQuote(a))
	}
	return line.String()
}

// procState is the state letter of /proc/pid/stat ("T" when stopped).
func procState(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

// TestE2ESSHPTYSuspend: ~^Z after a newline stops rsftp ssh as the
// terminal's ^Z stops a job: the local shell gets the terminal back, in
// its own modes (what is typed there echoes and runs locally); the
// window size changed meanwhile reaches the server after `fg`; the
// remote shell carries on in raw mode, and the terminal is as before once
// the session ends.
func TestE2ESSHPTYSuspend(t *testing.T) {
	tg, _, _ := shellServeTarget(t)
	dir := t.TempDir()
	p := startJobShell(t, dir)
	p.expect("LOCAL> ")
	before := ttyModes(t, p.slave)
	p.typeKeys(toolLine(t, tg.args("127.0.0.1")) + "\r")
	setPrompt(p)
	if out := remoteRun(p, "stty size"); !strings.Contains(out, "40 100") {
		t.Fatalf("stty size: %q (want 40 100)", out)
	}

	// ~^Z: rsftp says so and stops; bash reports the stopped job and
	// prompts.
	p.typeKeys("\r")
	p.expect(shellPrompt)
	p.typeKeys("~\x1a")
	p.expect("^Z [suspend rsftp]")
	p.expect("Stopped")
	p.expect("LOCAL> ")
	pid := 0
	for _, f := range strings.Fields(p.localRun("jobs -p")) {
		if n, err := strconv.Atoi(f); err == nil {
			pid = n
		}
	}
	if pid == 0 {
		t.Fatal("no stopped job's pid from bash's jobs -p")
	}
	deadline := time.Now().Add(ptyWait)
	for procState(pid) != "T" {
		if time.Now().After(deadline) {
			t.Fatalf("rsftp (pid %d) is in state %q after ~^Z, want T (stopped)", pid, procState(pid))
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The local shell has the terminal, with its echo.
	if out := p.localRun("echo local-$((6*7))"); !strings.Contains(out, "local-42") {
		t.Fatalf("the local shell after ~^Z: %q", out)
	}
	// A window change while rsftp is stopped reaches the server with fg.
	setWinsize(t, p.slave, 30, 90)
	p.typeKeys("fg\r")
	p.expect("fg")
	// rsftp puts the terminal back in raw mode once SIGCONT reaches
	// it; what is typed before that is echoed by the local terminal (as
	// with OpenSSH's ssh, whose window is smaller but there too), so
	// wait for it as a person would see it.
	deadline = time.Now().Add(ptyWait)
	for ttyModes(t, p.slave)&unix.ECHO != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the terminal is not in raw mode again after fg: lflag %#x", ttyModes(t, p.slave))
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Nothing was sent while stopped; the remote shell answers what is
	// typed now. The window change makes the remote bash redraw its
	// prompt (SIGWINCH) at a moment of its own, so a prompt alone does not
	// tell that the shell has read this line: its output does.
	p.typeKeys("echo fg-$((6*7))\r")
	p.expect("fg-42")
	p.expect(shellPrompt)
	if out := remoteRun(p, "stty size"); !strings.Contains(out, "30 90") {
		t.Fatalf("stty size after fg: %q (want 30 90, the size set while rsftp was stopped)", out)
	}
	// Raw mode again: a tilde mid-line is the remote shell's, and the
	// escapes work after a newline.
	if out := remoteRun(p, "echo a~b"); !strings.Contains(out, "a~b") {
		t.Fatalf("after fg: %q", out)
	}
	p.typeKeys("exit 4\r")
	p.expect("closed.")
	p.expect("LOCAL> ")
	if out := p.localRun("echo rsftp-exit=$?"); !strings.Contains(out, "rsftp-exit=4") {
		t.Fatalf("rsftp's exit status after fg: %q, want 4", out)
	}
	if after := ttyModes(t, p.slave); after != before {
		t.Fatalf("terminal modes after the session %#x, before %#x", after, before)
	}
	p.typeKeys("exit\r")
	p.wait()
}

// localRun types a command at the local shell and returns what it
// printed before the next local prompt.
func (p *ptySession) localRun(line string) string {
	p.t.Helper()
	p.typeKeys(line + "\r")
	p.expect(line)
	return p.expect("LOCAL> ")
}

// TestE2EShellSuspend: Ctrl-Z at rsftp sftp's prompt stops rsftp, as
// sftp's line editor does; after fg the line typed so far is at a new
// prompt, to be finished, and the session goes on.
func TestE2EShellSuspend(t *testing.T) {
	fx := newPTYFixture(t)
	os.WriteFile(filepath.Join(fx.root, "small.txt"), []byte("small\n"), 0o644)
	p := startJobShell(t, fx.local)
	p.expect("LOCAL> ")
	p.typeKeys(toolLine(t, fx.args(t, fx.port)) + "\r")
	p.expect("sftp> ")
	p.typeKeys("ls -1 sma")
	p.expect("ls -1 sma")
	p.typeKeys("\x1a")
	p.expect("^Z")
	p.expect("Stopped")
	p.expect("LOCAL> ")
	if out := p.localRun("echo local-$((6*7))"); !strings.Contains(out, "local-42") {
		t.Fatalf("the local shell after Ctrl-Z: %q", out)
	}
	p.typeKeys("fg\r")
	p.expect("sftp> ls -1 sma")
	p.typeKeys("ll.txt\r")
	if out := p.expect("sftp> "); !strings.Contains(out, "small.txt") {
		t.Fatalf("the line finished after fg: %q", out)
	}
	// The suspended line is not in the history: the up arrow recalls
	// the finished one.
	p.typeKeys("\x1b[A")
	p.expect("ls -1 small.txt")
	p.typeKeys("\x15bye\r") // Ctrl-U drops the recalled line
	p.expect("LOCAL> ")
	if out := p.localRun("echo rsftp-exit=$?"); !strings.Contains(out, "rsftp-exit=0") {
		t.Fatalf("rsftp's exit status: %q", out)
	}
}

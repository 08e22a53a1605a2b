//go:build linux

package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// rsftp ssh driven through a pseudo-terminal as a person types (startPTY,
// from interactive_pty_linux_test.go): the remote shell's prompt, the
// window size, Ctrl-C, a program that reads raw keys on the other
// screen, the escapes, the exit status and the terminal's modes after.

// shellPrompt is the prompt the tests give the remote shell, typed so
// that its echo does not match it.
const shellPrompt = "PS> "

func setPrompt(p *ptySession) {
	p.typeKeys("PS1='P''S> '\r")
	p.expect(shellPrompt)
}

// remoteRun types a command and returns what it printed before the next
// prompt.
func remoteRun(p *ptySession, line string) string {
	p.t.Helper()
	p.typeKeys(line + "\r")
	p.expect(line)
	return p.expect(shellPrompt)
}

// setWinsize changes the terminal's size; the kernel sends SIGWINCH to
// its foreground process group (rsftp).
func setWinsize(t *testing.T, f *os.File, rows, cols uint16) {
	if err := unix.IoctlSetWinsize(int(f.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatal(err)
	}
}

// testInteractiveShell is the session every pty test runs against a
// server: rsftp ssh with no command (a pty as RequestTTY auto decides).
func testInteractiveShell(t *testing.T, args []string) {
	p := startPTY(t, t.TempDir(), args...)
	before := ttyModes(t, p.slave)
	setPrompt(p)
	if out := remoteRun(p, "tty"); !strings.Contains(out, "/dev/pts/") {
		t.Fatalf("no terminal on the server: %q", out)
	}
	if out := remoteRun(p, "stty size"); !strings.Contains(out, "40 100") {
		t.Fatalf("stty size: %q (want 40 100)", out)
	}
	setWinsize(t, p.slave, 33, 121)
	// The window change and the next command race; a few tries.
	deadline := time.Now().Add(ptyWait)
	for {
		if out := remoteRun(p, "stty size"); strings.Contains(out, "33 121") {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("stty size after the window change: %q (want 33 121)", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The window change made bash redraw its prompt at a moment of its
	// own, one prompt more than the commands above account for: the
	// output of a command, not a prompt, tells where the shell is.
	p.typeKeys("echo winch-$((6*7))\r")
	p.expect("winch-42")
	p.expect(shellPrompt)
	// Ctrl-C reaches the remote foreground process, not rsftp.
	p.typeKeys("sleep 300\r")
	p.expect("sleep 300")
	time.Sleep(300 * time.Millisecond)
	p.typeKeys("\x03")
	p.expect(shellPrompt)
	p.typeKeys("echo status=$?\r")
	p.expect("status=130")
	p.expect(shellPrompt)
	// A program on the other screen that reads three raw keys, a
	// tilde in the middle of a line among them.
	p.typeKeys("printf '\\033[?1049h'; stty raw -echo; k=$(dd bs=1 count=3 2>/dev/null); stty sane; printf '\\033[?1049l'; echo \"keys=[$k]\"\r")
	p.expect("\x1b[?1049h")
	time.Sleep(200 * time.Millisecond)
	p.typeKeys("a~b")
	if out := p.expect(shellPrompt); !strings.Contains(out, "keys=[a~b]") {
		t.Fatalf("raw keys: %q", out)
	}
	// ~? after a newline lists the escapes (and sends nothing);
	// ~~ sends one ~.
	p.typeKeys("\r")
	p.expect(shellPrompt)
	p.typeKeys("~?")
	p.expect("Supported escape sequences")
	p.expect("~.")
	p.typeKeys("~~echo x\r")
	if out := p.expect(shellPrompt); !strings.Contains(out, "~echo: command not found") && !strings.Contains(out, "~echo: not found") {
		t.Fatalf("~~: %q", out)
	}
	p.typeKeys("exit 3\r")
	p.expect("Connection to 127.0.0.1 closed.")
	if code := p.wait(); code != 3 {
		t.Fatalf("exit status %d, want the remote shell's 3", code)
	}
	if after := ttyModes(t, p.slave); after != before {
		t.Fatalf("terminal modes after exit %#x, before %#x", after, before)
	}

	// ~. ends the session: 255, the terminal as it was.
	p = startPTY(t, t.TempDir(), args...)
	before = ttyModes(t, p.slave)
	setPrompt(p)
	p.typeKeys("sleep 300 &\r")
	p.expect(shellPrompt)
	p.typeKeys("~.")
	p.expect("~.")
	if code := p.wait(); code != 255 {
		t.Fatalf("exit status after ~. %d, want 255", code)
	}
	if after := ttyModes(t, p.slave); after != before || after&unix.ECHO == 0 {
		t.Fatalf("terminal modes after ~. %#x, before %#x", after, before)
	}

	// A signal: the terminal is put back too.
	p = startPTY(t, t.TempDir(), args...)
	before = ttyModes(t, p.slave)
	setPrompt(p)
	p.cmd.Process.Signal(unix.SIGTERM)
	if code := p.wait(); code != 255 {
		t.Fatalf("exit status after SIGTERM %d, want 255", code)
	}
	if after := ttyModes(t, p.slave); after != before {
		t.Fatalf("terminal modes after SIGTERM %#x, before %#x", after, before)
	}
}

// TestE2ESSHPTYAgainstSshd: the interactive session against OpenSSH's
// sshd (plain SSH, no resumption).
func TestE2ESSHPTYAgainstSshd(t *testing.T) {
	tg := newSshdTarget(t)
	testInteractiveShell(t, tg.args("127.0.0.1"))
}

// TestE2ESSHPTYForwardsAfterExit: a forwarded connection still open when
// the shell exits keeps rsftp, which says so and lists it (as ssh); ~#
// lists it while the shell runs; ~& then ends rsftp with the shell's
// exit status.
func TestE2ESSHPTYForwardsAfterExit(t *testing.T) {
	tg := newSshdTarget(t)
	echo := echoServer(t)
	lport := e2eFreePort(t)
	p := startPTY(t, t.TempDir(), tg.args("-L", fmt.Sprintf("%d:127.0.0.1:%d", lport, echo), "127.0.0.1")...)
	before := ttyModes(t, p.slave)
	setPrompt(p)
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", lport))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("ping"))
	var b [4]byte
	if _, err := io.ReadFull(c, b[:]); err != nil || string(b[:]) != "ping" {
		t.Fatalf("through -L: %q %v", b, err)
	}
	p.typeKeys("\r~#")
	p.expect("The following forwarded connections are open:")
	p.expect(fmt.Sprintf("local forward localhost:%d: from 127.0.0.1:", lport))
	p.typeKeys("~&")
	p.expect("the session still runs")
	p.typeKeys("exit 4\r")
	p.expect("Waiting for forwarded connections to terminate...")
	p.typeKeys("~&")
	p.expect("ending its 1 forwarded connections")
	if code := p.wait(); code != 4 {
		t.Fatalf("exit status %d after ~&, want the shell's 4", code)
	}
	if after := ttyModes(t, p.slave); after != before {
		t.Fatalf("terminal modes after ~& %#x, before %#x", after, before)
	}
}

// TestE2ESSHPTYCommandLine: ~C adds a local forward, which carries a
// connection, and cancels it (-KL), after which nothing listens; a bad
// line is one message and the session goes on.
func TestE2ESSHPTYCommandLine(t *testing.T) {
	tg := newSshdTarget(t)
	echo := echoServer(t)
	lport := e2eFreePort(t)
	p := startPTY(t, t.TempDir(), tg.args("127.0.0.1")...)
	setPrompt(p)
	p.typeKeys(fmt.Sprintf("\r~C-L %d:127.0.0.1:%d\r", lport, echo))
	p.expect("Forwarding port.")
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", lport))
	if err != nil {
		t.Fatal(err)
	}
	checkEcho(t, c, 100<<10)
	c.Close()
	// ~C alone, then the line typed at its prompt.
	p.typeKeys("\r~C")
	p.expect("rsftp> ")
	time.Sleep(100 * time.Millisecond)
	p.typeKeys(fmt.Sprintf("-KL %d\r", lport))
	p.expect("Canceled forwarding.")
	if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", lport)); err == nil {
		c.Close()
		t.Fatal("the cancelled forward still listens")
	}
	p.typeKeys("\r~C-Q\r")
	p.expect("Invalid command")
	p.typeKeys("echo still-$((40+2))\r")
	p.expect("still-42") // the shell's output, not the echo of the line
	p.typeKeys("exit\r")
	if code := p.wait(); code != 0 {
		t.Fatalf("exit status %d", code)
	}
}

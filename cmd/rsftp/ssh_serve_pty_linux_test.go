//go:build linux

package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/agenttest"
	"github.com/rsftp/rsftp/internal/sshtest"
	"github.com/rsftp/rsftp/kex"
)

// rsftp ssh with a pseudo-terminal against rsftp serve --shell: the same
// interactive session as against sshd, and a session whose link is cut
// while its shell prints.

// shellServeTarget starts rsftp serve --shell (and --events) behind a
// linkRelay; the target's port is the relay's.
func shellServeTarget(t *testing.T, extra ...string) (*sshTarget, *linkRelay, string) {
	dir := t.TempDir()
	key := sshtest.KeyGen(t, dir, "ed25519", 0)
	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	srvEvents := filepath.Join(dir, "server-events")
	port, kh := e2eServeArgs(t, root, key+".pub", "127.0.0.1", append([]string{"--shell", "--events", srvEvents}, extra...)...)
	relay := newLinkRelay(t, "127.0.0.1:"+strconv.Itoa(port))
	khb, err := os.ReadFile(kh)
	if err != nil {
		t.Fatal(err)
	}
	kh2 := kh + ".relay"
	os.WriteFile(kh2, bytes.Replace(khb, []byte(fmt.Sprintf("]:%d ", port)), []byte(fmt.Sprintf("]:%d ", relay.port())), 1), 0o600)
	return &sshTarget{key: key, kh: kh2, port: relay.port()}, relay, srvEvents
}

// TestE2ESSHPTYAgainstRsftpServe: the interactive session (prompt, window
// size, Ctrl-C, raw keys, escapes, exit status, ~., a signal, the
// terminal's modes) against rsftp serve --shell.
func TestE2ESSHPTYAgainstRsftpServe(t *testing.T) {
	tg, _, _ := shellServeTarget(t)
	testInteractiveShell(t, tg.args("127.0.0.1"))
}

// TestE2ESSHPTYCutWhilePrinting: the remote shell prints a numbered line
// every 10 ms on its terminal while the link is reset and blackholed;
// keys typed while it is away go to a program reading them. On the
// screen every line shows once and in order; the terminal's title says
// the link is lost and is put back once resumed; the keys arrive once.
func TestE2ESSHPTYCutWhilePrinting(t *testing.T) {
	tg, relay, _ := shellServeTarget(t)
	dir := t.TempDir()
	events := filepath.Join(dir, "events")
	typed := filepath.Join(dir, "typed")
	p := startPTY(t, dir, tg.args("--events", events, "-o", "ServerAliveInterval=1", "127.0.0.1")...)
	before := ttyModes(t, p.slave)
	setPrompt(p)
	// The loop runs until the reader of the keys ends (Ctrl-D).
	p.typeKeys(fmt.Sprintf(`stty -echo; (i=0; while [ ! -e %[1]s.done ]; do echo "line $i"; i=$((i+1)); sleep 0.01; done; echo "end $i") & cat > %[1]s; touch %[1]s.done; wait; stty echo`+"\r", typed))
	p.expect("line 20")
	p.typeKeys("before the cut\r")
	stderr := func() string { return p.all() }
	relay.reset()
	waitEvent(t, events, "link_lost", 1, stderr)
	p.expect("\x1b]2;rsftp: ")
	p.typeKeys("typed while the link was away\r")
	waitEvent(t, events, "resumed", 1, stderr)
	p.expect("\x1b[23;2t")
	relay.blackhole()
	waitEvent(t, events, "link_lost", 2, stderr)
	p.typeKeys("typed into the blackhole\r")
	time.Sleep(300 * time.Millisecond)
	relay.restore()
	waitEvent(t, events, "resumed", 2, stderr)
	p.expect("\x1b[23;2t")
	p.typeKeys("after\r\x04")
	out := p.expect(shellPrompt)
	lines := regexp.MustCompile(`line (\d+)\r\n`).FindAllStringSubmatch(p.all(), -1)
	end := regexp.MustCompile(`end (\d+)\r\n`).FindStringSubmatch(out)
	if end == nil {
		t.Fatalf("no end line: %q", out)
	}
	n, _ := strconv.Atoi(end[1])
	if len(lines) != n {
		t.Fatalf("%d lines on the screen, the loop printed %d", len(lines), n)
	}
	for i, l := range lines {
		if l[1] != strconv.Itoa(i) {
			t.Fatalf("line %d shows as %q: lost, doubled or out of order", i, l[0])
		}
	}
	b, err := os.ReadFile(typed)
	if err != nil {
		t.Fatal(err)
	}
	if want := "before the cut\ntyped while the link was away\ntyped into the blackhole\nafter\n"; string(b) != want {
		t.Fatalf("the program read %q, want %q", b, want)
	}
	all := p.all()
	// A push and a pop per outage (two, or more if a loaded machine
	// made the link look dead once more).
	if push, pop := strings.Count(all, "\x1b[22;2t"), strings.Count(all, "\x1b[23;2t"); push < 2 || push != pop || !strings.Contains(all, "link lost") {
		t.Fatalf("title pushes %d, pops %d", push, pop)
	}
	p.typeKeys("exit\r")
	if code := p.wait(); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	if after := ttyModes(t, p.slave); after != before {
		t.Fatalf("terminal modes after exit %#x, before %#x", after, before)
	}
	t.Logf("%d lines across a reset and a blackhole", n)
}

// TestE2ESSHAgentAcrossCut: ssh-add -l on the server through the agent
// rsftp ssh -A forwards, before and after the link is reset: the same
// key both times.
func TestE2ESSHAgentAcrossCut(t *testing.T) {
	tg, relay, _ := shellServeTarget(t, "--forwarding", "agent")
	signer, err := loadIdentity(tg.key, true)
	if err != nil {
		t.Fatal(err)
	}
	ag := agenttest.New()
	ag.Add(signer, "forwarded-key")
	sock, stop, err := ag.Listen(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	events := filepath.Join(t.TempDir(), "events")
	cmd := exec.Command(e2eTool(t), tg.args("-A", "--events", events, "127.0.0.1", "ssh-add -l; read go; ssh-add -l")...)
	cmd.Env = append(e2eEnv(t), "SSH_AUTH_SOCK="+sock)
	stdin, _ := cmd.StdinPipe()
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	fp := kex.FingerprintSHA256(signer.PublicKey())
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), fp) {
		if time.Now().After(deadline) {
			t.Fatalf("ssh-add -l before the cut: %q", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	relay.reset()
	waitEvent(t, events, "resumed", 1, out.String)
	io.WriteString(stdin, "go\n")
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("rsftp ssh: %v\n%s", err, out.String())
	}
	if n := strings.Count(out.String(), fp); n != 2 {
		t.Fatalf("the key listed %d times, want 2: %q", n, out.String())
	}
}

// TestE2ESSHPTYDisconnectWhileAway: ~. while the link is away (a
// blackhole: the client reconnects in vain) ends rsftp at once with 255,
// the title and the terminal's modes put back.
func TestE2ESSHPTYDisconnectWhileAway(t *testing.T) {
	tg, relay, _ := shellServeTarget(t)
	dir := t.TempDir()
	events := filepath.Join(dir, "events")
	p := startPTY(t, dir, tg.args("--events", events, "-o", "ServerAliveInterval=1", "127.0.0.1")...)
	before := ttyModes(t, p.slave)
	setPrompt(p)
	relay.blackhole()
	waitEvent(t, events, "link_lost", 1, p.all)
	p.expect("\x1b]2;rsftp: ")
	p.typeKeys("\r~.")
	p.expect("~.")
	if code := p.wait(); code != 255 {
		t.Fatalf("exit status after ~. %d, want 255", code)
	}
	if !strings.Contains(p.all(), "\x1b[23;2t") {
		t.Fatalf("the title was not put back")
	}
	if after := ttyModes(t, p.slave); after != before {
		t.Fatalf("terminal modes after ~. %#x, before %#x", after, before)
	}
}

//go:build linux

package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rsftp/rsftp/internal/sshtest"
)

// The interactive mode driven through a pseudo-terminal, as a person
// types: the built rsftp runs with the terminal's slave side as its
// stdin, stdout, stderr and controlling terminal, and the test writes
// keys to the master side and reads what the terminal shows.

// ptyWait bounds each wait for output: a stuck session fails the test
// instead of hanging it. Nothing is measured against it.
const ptyWait = 60 * time.Second

type ptySession struct {
	t      *testing.T
	master *os.File
	slave  *os.File // kept open to read the terminal's modes after exit
	cmd    *exec.Cmd
	exited chan struct{}
	err    error // cmd.Wait's, once exited is closed

	drains int // drain's markers so far

	mu   sync.Mutex
	out  []byte
	mark int // where the next expect starts looking
}

// openPTY opens a pseudo-terminal pair: /dev/ptmx, unlocked with
// TIOCSPTLCK, its slave named by TIOCGPTN.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(fd)
		t.Fatalf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		unix.Close(fd)
		t.Fatalf("ptsname: %v", err)
	}
	name := fmt.Sprintf("/dev/pts/%d", n)
	sfd, err := unix.Open(name, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(fd)
		t.Fatalf("open %s: %v", name, err)
	}
	if err := unix.IoctlSetWinsize(sfd, unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 100}); err != nil {
		t.Fatalf("TIOCSWINSZ: %v", err)
	}
	return os.NewFile(uintptr(fd), "/dev/ptmx"), os.NewFile(uintptr(sfd), name)
}

// startPTY runs rsftp with args in dir on a new pseudo-terminal, as the
// leader of a new session with the terminal as its controlling one (so
// that Ctrl-C sends it SIGINT as a shell's foreground job).
func startPTY(t *testing.T, dir string, args ...string) *ptySession {
	t.Helper()
	cmd := exec.Command(e2eTool(t), args...)
	cmd.Dir = dir
	cmd.Env = append(e2eEnv(t), "TERM=xterm")
	return runOnPTY(t, cmd)
}

// runOnPTY starts cmd on a new pseudo-terminal, as the leader of a new
// session with the terminal as its controlling one, and records what the
// terminal shows. At the test's end it kills cmd's process group if cmd
// still runs.
func runOnPTY(t *testing.T, cmd *exec.Cmd) *ptySession {
	t.Helper()
	master, slave := openPTY(t)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &ptySession{t: t, master: master, slave: slave, cmd: cmd, exited: make(chan struct{})}
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			p.mu.Lock()
			p.out = append(p.out, buf[:n]...)
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			cmd.Process.Kill()
			<-p.exited
		}
		slave.Close()
		master.Close()
		if t.Failed() {
			t.Logf("terminal output:\n%s", p.all())
		}
	})
	return p
}

func (p *ptySession) all() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return string(p.out)
}

// expect waits until the terminal shows s after the last match, and
// returns what it showed up to s.
func (p *ptySession) expect(s string) string {
	p.t.Helper()
	deadline := time.Now().Add(ptyWait)
	for {
		p.mu.Lock()
		i := bytes.Index(p.out[p.mark:], []byte(s))
		if i >= 0 {
			seen := string(p.out[p.mark : p.mark+i+len(s)])
			p.mark += i + len(s)
			p.mu.Unlock()
			return seen
		}
		rest := string(p.out[p.mark:])
		p.mu.Unlock()
		exited := false
		select {
		case <-p.exited:
			exited = true
		default:
		}
		if exited || time.Now().After(deadline) {
			p.drain()
			p.mu.Lock()
			ok := bytes.Contains(p.out[p.mark:], []byte(s))
			p.mu.Unlock()
			if ok {
				continue
			}
			p.t.Fatalf("waiting for %q (exited %v); the terminal showed since the last match:\n%q", s, exited, rest)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// drain returns once the recorder has taken all that was written to the
// terminal before the call: the test's own descriptor of the terminal
// stays open, so the end of the program's output shows as no end of
// file, and a program that printed its last lines and exited may leave
// them unread for a moment (a fixed pause missed them on a loaded
// machine). drain writes a marker after them and waits for it, then
// takes it out of the record.
func (p *ptySession) drain() {
	p.t.Helper()
	p.drains++
	marker := []byte(fmt.Sprintf("<<rsftp-test-drain-%d>>", p.drains))
	if _, err := p.slave.Write(marker); err != nil {
		p.t.Fatalf("writing the drain marker: %v", err)
	}
	deadline := time.Now().Add(ptyWait)
	for {
		p.mu.Lock()
		if i := bytes.Index(p.out, marker); i >= 0 {
			p.out = append(p.out[:i], p.out[i+len(marker):]...)
			if p.mark > i {
				p.mark = max(i, p.mark-len(marker))
			}
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		if time.Now().After(deadline) {
			p.t.Fatalf("the terminal's output was not drained within %v", ptyWait)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// typeKeys writes keys to the terminal as typed.
func (p *ptySession) typeKeys(keys string) {
	p.t.Helper()
	if _, err := p.master.Write([]byte(keys)); err != nil {
		p.t.Fatal(err)
	}
}

// run types a command line at the prompt and waits for the next prompt;
// it returns what the command printed.
func (p *ptySession) run(line string) string {
	p.t.Helper()
	p.typeKeys(line + "\r")
	p.expect(line)
	return p.expect("sftp> ")
}

// wait waits for rsftp to exit and returns its status.
func (p *ptySession) wait() int {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(ptyWait):
		p.t.Fatalf("rsftp did not exit")
	}
	p.drain()
	if ee, ok := p.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if p.err != nil {
		p.t.Fatal(p.err)
	}
	return 0
}

// ptyFixture is a served root, a local directory and the options that
// reach the server (through addr's port if a relay is given).
type ptyFixture struct {
	root, local, key string
	port             int
	kh               string
	events           string
}

func newPTYFixture(t *testing.T) *ptyFixture {
	dir := t.TempDir()
	fx := &ptyFixture{key: sshtest.KeyGen(t, dir, "ed25519", 0), root: filepath.Join(dir, "root"), local: filepath.Join(dir, "local"),
		events: filepath.Join(dir, "server-events")}
	os.Mkdir(fx.root, 0o755)
	os.Mkdir(fx.local, 0o755)
	fx.port, fx.kh = e2eServeArgs(t, fx.root, fx.key+".pub", "127.0.0.1", "--events", fx.events)
	return fx
}

// args are rsftp sftp's arguments to reach the server at port (the
// server's own or a relay's), trusting its host key there.
func (fx *ptyFixture) args(t *testing.T, port int) []string {
	kh := fx.kh
	if port != fx.port {
		b, err := os.ReadFile(fx.kh)
		if err != nil {
			t.Fatal(err)
		}
		kh = fx.kh + fmt.Sprint(port)
		os.WriteFile(kh, bytes.Replace(b, []byte(fmt.Sprintf("]:%d ", fx.port)), []byte(fmt.Sprintf("]:%d ", port)), 1), 0o600)
	}
	return []string{"sftp", "-F", "none", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + kh, "-i", fx.key, "-P", fmt.Sprint(port), "127.0.0.1"}
}

// ttyModes reads the terminal's local modes.
func ttyModes(t *testing.T, f *os.File) uint32 {
	tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return tio.Lflag
}

// TestE2EShellInteractive: commands typed at the prompt, a remote file
// name completed with Tab, a command recalled with the up arrow, Ctrl-C
// at the prompt dropping the line, Ctrl-D ending the session, and the
// terminal's modes as they were before.
func TestE2EShellInteractive(t *testing.T) {
	fx := newPTYFixture(t)
	os.WriteFile(filepath.Join(fx.root, "report-2026.txt"), []byte("the report\n"), 0o644)
	os.WriteFile(filepath.Join(fx.root, "alpha1"), []byte("1"), 0o644)
	os.WriteFile(filepath.Join(fx.root, "alpha2"), []byte("2"), 0o644)
	os.Mkdir(filepath.Join(fx.root, "docs"), 0o755)
	os.WriteFile(filepath.Join(fx.root, "docs", "notes.md"), []byte("notes\n"), 0o644)
	os.WriteFile(filepath.Join(fx.local, "upload.txt"), []byte("uploaded\n"), 0o644)

	p := startPTY(t, fx.local, fx.args(t, fx.port)...)
	before := ttyModes(t, p.slave)
	p.expect("Connected to 127.0.0.1.")
	p.expect("sftp> ")
	if out := p.run("pwd"); !strings.Contains(out, "Remote working directory: /") {
		t.Fatalf("pwd: %q", out)
	}
	if out := p.run("ls"); !strings.Contains(out, "alpha1") || !strings.Contains(out, "report-2026.txt") {
		t.Fatalf("ls: %q", out)
	}
	p.run("put upload.txt")
	if b, err := os.ReadFile(filepath.Join(fx.root, "upload.txt")); err != nil || string(b) != "uploaded\n" {
		t.Fatalf("put: %q %v", b, err)
	}

	// Tab completes a command, then a unique remote name.
	p.typeKeys("ge\t")
	p.expect("get ")
	p.typeKeys("rep\t")
	p.expect("get report-2026.txt ")
	p.typeKeys("\r")
	if out := p.expect("sftp> "); !strings.Contains(out, "Fetching /report-2026.txt to report-2026.txt") {
		t.Fatalf("get after completion: %q", out)
	}
	if b, err := os.ReadFile(filepath.Join(fx.local, "report-2026.txt")); err != nil || string(b) != "the report\n" {
		t.Fatalf("get after completion: %q %v", b, err)
	}
	// Tab on a shared prefix completes what is common, a second Tab
	// lists the candidates; a directory gets its slash.
	p.typeKeys("ls -l al\t")
	p.expect("ls -l alpha")
	p.typeKeys("\t")
	p.expect("alpha1")
	p.expect("alpha2")
	p.typeKeys("1\r")
	p.expect("alpha1")
	p.expect("sftp> ")
	p.typeKeys("cd do\t")
	p.expect("cd docs/")
	p.typeKeys("\r")
	p.expect("sftp> ")
	if out := p.run("ls"); !strings.Contains(out, "notes.md") {
		t.Fatalf("ls in docs: %q", out)
	}
	p.run("cd ..")

	// The up arrow recalls the get; run again, it fetches the file anew.
	os.Remove(filepath.Join(fx.local, "report-2026.txt"))
	p.typeKeys("\x1b[A\x1b[A\x1b[A\x1b[A\x1b[A")
	p.expect("get report-2026.txt")
	p.typeKeys("\r")
	if out := p.expect("sftp> "); !strings.Contains(out, "Fetching /report-2026.txt") {
		t.Fatalf("recalled get: %q", out)
	}
	if _, err := os.Stat(filepath.Join(fx.local, "report-2026.txt")); err != nil {
		t.Fatalf("recalled get: %v", err)
	}

	// Ctrl-C at the prompt drops the line: it neither runs nor enters
	// the history.
	p.typeKeys("mkdir never-made")
	p.expect("never-made")
	p.typeKeys("\x03")
	p.expect("^C")
	p.expect("sftp> ")
	p.typeKeys("\x1b[A")
	if seen := p.expect("get report-2026.txt"); strings.Contains(seen, "never-made") {
		t.Fatalf("the history holds the line dropped with Ctrl-C: %q", seen)
	}
	p.typeKeys("\x03")
	p.expect("sftp> ")
	if out := p.run("lpwd"); !strings.Contains(out, "Local working directory: "+fx.local) {
		t.Fatalf("lpwd: %q", out)
	}
	if _, err := os.Stat(filepath.Join(fx.root, "never-made")); !os.IsNotExist(err) {
		t.Fatalf("a line dropped with Ctrl-C ran: %v", err)
	}
	// Errors are one line, and the shell goes on.
	if out := p.run("get missing.bin"); !strings.Contains(out, `remote stat "/missing.bin": No such file`) {
		t.Fatalf("get missing.bin: %q", out)
	}
	if out := p.run("frobnicate"); !strings.Contains(out, "Invalid command.") {
		t.Fatalf("unknown command: %q", out)
	}
	if out := p.run("!echo from-the-local-shell"); !strings.Contains(out, "from-the-local-shell") {
		t.Fatalf("!command: %q", out)
	}
	if out := p.run("progress"); !strings.Contains(out, "Progress meter disabled") {
		t.Fatalf("progress: %q", out)
	}

	// Ctrl-D ends the session; the terminal is as it was.
	p.typeKeys("\x04")
	if code := p.wait(); code != 0 {
		t.Fatalf("exit status %d after Ctrl-D", code)
	}
	if after := ttyModes(t, p.slave); after != before || after&unix.ICANON == 0 || after&unix.ECHO == 0 {
		t.Fatalf("terminal modes after exit %#x, before %#x", after, before)
	}
}

// shellRelay forwards TCP connections to a server; cut resets all of them
// at once (as a link that goes away), and later connections pass again.
// With pace on, it forwards at most 8 KiB per millisecond each way, so
// that a transfer is still under way when the test acts.
type shellRelay struct {
	ln   net.Listener
	to   string
	pace atomic.Bool
	// refuse resets each new connection at once (the link stays away).
	refuse atomic.Bool
	mu     sync.Mutex
	open   []*net.TCPConn
	cuts   int
}

func newShellRelay(t *testing.T, to string) *shellRelay {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &shellRelay{ln: ln, to: to}
	t.Cleanup(func() {
		ln.Close()
		r.cut()
	})
	go r.serve()
	return r
}

func (r *shellRelay) port() int { return r.ln.Addr().(*net.TCPAddr).Port }

func (r *shellRelay) serve() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		if r.refuse.Load() {
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", r.to)
		if err != nil {
			c.Close()
			continue
		}
		r.mu.Lock()
		r.open = append(r.open, c.(*net.TCPConn), s.(*net.TCPConn))
		r.mu.Unlock()
		go r.pipe(c, s)
		go r.pipe(s, c)
	}
}

func (r *shellRelay) pipe(dst, src net.Conn) {
	buf := make([]byte, 8<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
			if r.pace.Load() {
				time.Sleep(time.Millisecond)
			}
		}
		if err != nil {
			if err == io.EOF {
				dst.(*net.TCPConn).CloseWrite()
			}
			return
		}
	}
}

// cut resets every connection open through the relay.
func (r *shellRelay) cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.open {
		c.SetLinger(0)
		c.Close()
	}
	r.open = nil
	r.cuts++
}

// TestE2EShellInterruptTransfer: Ctrl-C during a get ends the transfer,
// keeps the part received and says that reget continues it; the shell
// stays, and reget completes the file.
func TestE2EShellInterruptTransfer(t *testing.T) {
	fx := newPTYFixture(t)
	const size = 24 << 20
	e2eRandFile(t, filepath.Join(fx.root, "big.bin"), size)
	relay := newShellRelay(t, fmt.Sprintf("127.0.0.1:%d", fx.port))
	p := startPTY(t, fx.local, fx.args(t, relay.port())...)
	p.expect("sftp> ")
	relay.pace.Store(true)
	p.typeKeys("get big.bin\r")
	p.expect("Fetching /big.bin to big.bin")
	local := filepath.Join(fx.local, "big.bin")
	if !waitSize(local, 6<<20, ptyWait) {
		t.Fatal("the download did not reach 6 MiB")
	}
	p.typeKeys("\x03")
	out := p.expect("sftp> ")
	if !strings.Contains(out, "get interrupted: kept the first") || !strings.Contains(out, `"reget /big.bin big.bin" continues it`) {
		t.Fatalf("after Ctrl-C: %q", out)
	}
	fi, err := os.Stat(local)
	if err != nil || fi.Size() >= size {
		t.Fatalf("partial file: %v %v", fi, err)
	}
	t.Logf("kept %d of %d bytes: %q", fi.Size(), size, out)
	relay.pace.Store(false)
	if out := p.run("reget big.bin"); strings.Contains(out, "interrupted") || strings.Contains(out, "differ") {
		t.Fatalf("reget: %q", out)
	}
	e2eSame(t, filepath.Join(fx.root, "big.bin"), local)
	p.typeKeys("bye\r")
	if code := p.wait(); code != 0 {
		t.Fatalf("exit status %d after bye", code)
	}
}

// TestE2EShellLinkCut: the link is cut while the shell waits at the
// prompt, and again in the middle of a download. The identity file is
// gone by then, so the session can only go on by resuming (no new
// authentication): the next command works and the download completes.
func TestE2EShellLinkCut(t *testing.T) {
	fx := newPTYFixture(t)
	const size = 24 << 20
	e2eRandFile(t, filepath.Join(fx.root, "big.bin"), size)
	os.WriteFile(filepath.Join(fx.root, "small.txt"), []byte("small\n"), 0o644)
	relay := newShellRelay(t, fmt.Sprintf("127.0.0.1:%d", fx.port))
	p := startPTY(t, fx.local, fx.args(t, relay.port())...)
	p.expect("sftp> ")
	if out := p.run("ls"); !strings.Contains(out, "small.txt") {
		t.Fatalf("ls: %q", out)
	}
	// No private key from now on: only a resumption can carry the
	// session on. (The server's authorized_keys stays: it checks at a
	// resumption that the key is still authorized.)
	os.Remove(fx.key)

	relay.cut()
	if out := p.run("ls -l small.txt"); !strings.Contains(out, "small.txt") {
		t.Fatalf("ls after the cut: %q", out)
	}
	p.run("mkdir made-after-cut")
	if _, err := os.Stat(filepath.Join(fx.root, "made-after-cut")); err != nil {
		t.Fatalf("mkdir after the cut: %v", err)
	}

	// A cut in the middle of a download.
	relay.pace.Store(true)
	p.typeKeys("get big.bin\r")
	p.expect("Fetching /big.bin")
	local := filepath.Join(fx.local, "big.bin")
	if !waitSize(local, 2<<20, ptyWait) {
		t.Fatal("the download did not reach 2 MiB")
	}
	relay.cut()
	relay.pace.Store(false)
	out := p.expect("sftp> ")
	if strings.Contains(out, "interrupted") || strings.Contains(out, "Connection closed") {
		t.Fatalf("download across the cut: %q", out)
	}
	// The resumption stays on the screen as a line of its own.
	if !strings.Contains(out, "resumed after") {
		t.Fatalf("no resumption notice on the screen during the download: %q", out)
	}
	e2eSame(t, filepath.Join(fx.root, "big.bin"), local)
	if out := p.run("pwd"); !strings.Contains(out, "Remote working directory: /") {
		t.Fatalf("pwd: %q", out)
	}
	p.typeKeys("bye\r")
	if code := p.wait(); code != 0 {
		t.Fatalf("exit status %d after bye", code)
	}
	time.Sleep(100 * time.Millisecond) // the server's last events
	ev := readEvents(t, fx.events)
	if n := countEvents(ev, "resumed"); n < 2 {
		t.Fatalf("server: %d resumptions for 2 cuts: %v", n, ev)
	}
	for _, e := range ev {
		t.Logf("server event: %v", e)
	}
}

// TestE2EShellCompletionWhileAway: Tab on a remote name while the link is
// away says so at once and leaves the line as typed, instead of holding
// the prompt until the session resumes; once it has resumed, the same
// Tab completes the name.
func TestE2EShellCompletionWhileAway(t *testing.T) {
	fx := newPTYFixture(t)
	os.WriteFile(filepath.Join(fx.root, "report-2026.txt"), []byte("the report\n"), 0o644)
	relay := newShellRelay(t, fmt.Sprintf("127.0.0.1:%d", fx.port))
	p := startPTY(t, fx.local, fx.args(t, relay.port())...)
	p.expect("sftp> ")
	p.typeKeys("get rep\t")
	p.expect("get report-2026.txt ")
	p.typeKeys("\x15") // Ctrl-U: an empty line again

	relay.refuse.Store(true)
	relay.cut()
	p.typeKeys("get rep\t")
	p.expect("(reconnecting: remote names complete again once the link is back)")
	p.expect("sftp> get rep")
	// The line is still being edited: more keys go into it. The
	// reconnection attempts' messages go above the prompt, which is
	// drawn again with the line beneath them.
	p.typeKeys("ort")
	p.expect("ort")
	p.expect("rsftp: reconnection attempt ")
	p.expect("sftp> get report")

	relay.refuse.Store(false)
	p.cmd.Process.Signal(syscall.SIGUSR2) // reconnect now, not at the next retry
	deadline := time.Now().Add(ptyWait)
	for countEvents(readEvents(t, fx.events), "resumed") < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the session did not resume")
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.typeKeys("\t")
	p.expect("get report-2026.txt ")
	p.typeKeys("\r")
	if out := p.expect("sftp> "); !strings.Contains(out, "Fetching /report-2026.txt to report-2026.txt") {
		t.Fatalf("get after completion: %q", out)
	}
	p.typeKeys("bye\r")
	if code := p.wait(); code != 0 {
		t.Fatalf("exit status %d after bye", code)
	}
}

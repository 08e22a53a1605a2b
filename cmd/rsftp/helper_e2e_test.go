//go:build unix

package main

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/sshtest"
)

// helperRig is Debian's sshd started by the test, a key it accepts, and a
// helper directory of the test's own (RSFTP_HELPER_DIR): nothing goes
// into the real home, even when the remote user is the test's.
type helperRig struct {
	dir, key, kh string
	sshd         *sshtest.Sshd
	remote       string // a directory for the remote files
	helperDir    string
	port         int // where the client connects: sshd, or a relay before it
}

func newHelperRig(t *testing.T, sshdExtra ...string) *helperRig {
	t.Helper()
	dir := t.TempDir()
	r := &helperRig{dir: dir}
	r.key = sshtest.KeyGen(t, dir, "ed25519", 0)
	pub, _ := os.ReadFile(r.key + ".pub")
	r.sshd = sshtest.StartSshd(t, string(pub), sshdExtra...)
	r.port = r.sshd.Port
	r.kh = filepath.Join(dir, "known_hosts")
	r.trustPort(t, r.sshd.Port)
	r.remote = filepath.Join(dir, "remote")
	os.Mkdir(r.remote, 0o755)
	r.helperDir = filepath.Join(dir, "helper")
	return r
}

// trustPort adds sshd's host key under 127.0.0.1:port (a relay's port
// too).
func (r *helperRig) trustPort(t *testing.T, port int) {
	hk, _ := os.ReadFile(r.sshd.HostKey + ".pub")
	f := strings.Fields(string(hk))
	kf, err := os.OpenFile(r.kh, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(kf, "[127.0.0.1]:%d %s %s\n", port, f[0], f[1])
	kf.Close()
}

// command is the tool with the rig's options: sshd (or the relay) at
// r.port, the test's helper directory; extra before the operands.
func (r *helperRig) command(t *testing.T, sub string, extra []string, operands ...string) (*exec.Cmd, *lockedBuffer) {
	// e2eOpts' but for ResumeHelper, left to its default (auto).
	args := []string{sub, "-F", "none", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + r.kh, "-i", r.key, "-P", strconv.Itoa(r.port), "-q"}
	args = append(args, "-o", "User="+sshtest.User(t))
	args = append(args, extra...)
	args = append(args, operands...)
	cmd := exec.Command(e2eTool(t), args...)
	cmd.Env = append(e2eEnv(t), helperDirEnv+"="+r.helperDir)
	errb := &lockedBuffer{}
	cmd.Stderr = errb
	return cmd, errb
}

func (r *helperRig) run(t *testing.T, sub string, extra []string, operands ...string) (string, error) {
	cmd, errb := r.command(t, sub, extra, operands...)
	err := cmd.Run()
	return errb.String(), err
}

// cachedBinary is the one binary in the helper directory's cache.
func (r *helperRig) cachedBinary(t *testing.T) string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(r.helperDir, "*-*", "rsftp"))
	if len(m) != 1 {
		t.Fatalf("cached helpers: %v, want one", m)
	}
	return m[0]
}

// TestE2EHelperBasics: a get through sshd installs the helper once (a
// second get finds it by its SHA-256 and uploads nothing), the
// directories are private, and a helper whose session closed leaves no
// socket or directory behind.
func TestE2EHelperBasics(t *testing.T) {
	r := newHelperRig(t)
	want := e2eRandFile(t, filepath.Join(r.remote, "f"), 1<<20)
	local := filepath.Join(r.dir, "f1")
	errs, err := r.run(t, "get", []string{"-o", "LogLevel=INFO"}, "127.0.0.1:"+filepath.Join(r.remote, "f"), local)
	if err != nil {
		t.Fatalf("first get: %v\n%s", err, errs)
	}
	if !strings.Contains(errs, "installing the rsftp helper") {
		t.Errorf("the first get did not say it installed the helper:\n%s", errs)
	}
	if got, _ := os.ReadFile(local); !bytes.Equal(got, want) {
		t.Fatal("first get: the file differs")
	}
	bin := r.cachedBinary(t)
	fi1, _ := os.Stat(bin)
	for _, d := range []string{r.helperDir, filepath.Dir(bin), filepath.Join(r.helperDir, helperRunDir)} {
		fi, err := os.Stat(d)
		if err != nil || fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: %v, mode %v; want 0700", d, err, fi.Mode().Perm())
		}
	}
	errs, err = r.run(t, "get", []string{"-o", "LogLevel=INFO"}, "127.0.0.1:"+filepath.Join(r.remote, "f"), filepath.Join(r.dir, "f2"))
	if err != nil {
		t.Fatalf("second get: %v\n%s", err, errs)
	}
	if strings.Contains(errs, "installing") {
		t.Errorf("the second get installed the helper again:\n%s", errs)
	}
	fi2, _ := os.Stat(bin)
	if !os.SameFile(fi1, fi2) || !fi1.ModTime().Equal(fi2.ModTime()) {
		t.Error("the cached helper was replaced by the second get")
	}
	waitNoSessions(t, r.helperDir)
}

// waitNoSessions waits for the run directory to be empty: every helper
// removed its socket and directory.
func waitNoSessions(t *testing.T, helperDir string) bool {
	t.Helper()
	run := filepath.Join(helperDir, helperRunDir)
	var left []os.DirEntry
	// A helper ends as soon as its session's DISCONNECT reaches it
	// through sshd; 20 s leaves room for a machine as loaded as CI's
	// (this failed once there at 5 s, and never in 37 runs here under
	// load), and what is printed below tells a slow helper from one
	// that holds a session it should not.
	start := time.Now()
	for deadline := start.Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		left, _ = os.ReadDir(run)
		if len(left) == 0 {
			if d := time.Since(start); d > 5*time.Second {
				t.Logf("the helper took %v to end after its session", d.Round(time.Millisecond))
			}
			return true
		}
	}
	var names []string
	for _, e := range left {
		names = append(names, e.Name())
	}
	t.Errorf("helpers left %d entries in %s after %v: %v\n%s", len(left), run, time.Since(start).Round(time.Millisecond), names, helperProcesses(helperDir))
	return false
}

// helperProcesses describes the live processes whose command line names
// helperDir (helpers and attaches of a test's rig): pid, state, where
// the kernel has them wait, and the command line.
func helperProcesses(helperDir string) string {
	var b strings.Builder
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !bytes.Contains(cmdline, []byte(helperDir)) {
			continue
		}
		status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		state := ""
		for _, l := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(l, "State:") {
				state = strings.TrimSpace(strings.TrimPrefix(l, "State:"))
			}
		}
		wchan, _ := os.ReadFile(fmt.Sprintf("/proc/%d/wchan", pid))
		fmt.Fprintf(&b, "pid %d %s wchan %s: %s\n", pid, state, wchan, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
	}
	if b.Len() == 0 {
		return "no process names the helper directory"
	}
	return b.String()
}

var _ = syscall.Getuid

// cutsRelay is a TCP relay before sshd whose connections the test
// cuts: reset closes both sides at once; blackhole stops moving bytes in
// either direction and keeps the sockets open (a dead path that says
// nothing), until the test ends. New connections pass at once either
// way. What comes back is paced at bps bytes a second (0: as fast as it
// comes).
type cutsRelay struct {
	port     int
	bps      int
	mu       sync.Mutex
	live     []*relayPair
	accepted int
	release  chan struct{}
}

type relayPair struct {
	c, s   net.Conn
	frozen atomic.Bool
}

func startCutsRelay(t *testing.T, to int, bps int) *cutsRelay {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &cutsRelay{port: l.Addr().(*net.TCPAddr).Port, bps: bps, release: make(chan struct{})}
	t.Cleanup(func() {
		l.Close()
		close(r.release)
		r.mu.Lock()
		for _, p := range r.live {
			p.c.Close()
			p.s.Close()
		}
		r.mu.Unlock()
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", to))
			if err != nil {
				c.Close()
				continue
			}
			p := &relayPair{c: c, s: s}
			r.mu.Lock()
			r.live = append(r.live, p)
			r.accepted++
			r.mu.Unlock()
			go r.pump(p, c, s, 0)
			go r.pump(p, s, c, r.bps)
		}
	}()
	return r
}

func (r *cutsRelay) pump(p *relayPair, from, to net.Conn, bps int) {
	buf := make([]byte, 32<<10)
	var n64 int64
	start := time.Now()
	for {
		n, err := from.Read(buf)
		if p.frozen.Load() {
			<-r.release // a blackhole: nothing more, either way
			return
		}
		if n > 0 {
			if _, werr := to.Write(buf[:n]); werr != nil {
				break
			}
			n64 += int64(n)
			if ahead := time.Duration(float64(n64)/float64(bps)*float64(time.Second)) - time.Since(start); bps > 0 && ahead > 0 {
				time.Sleep(ahead)
			}
		}
		if err != nil {
			break
		}
	}
	if !p.frozen.Load() {
		from.Close()
		to.Close()
	}
}

// cut ends every connection so far: reset closes them, blackhole
// freezes them.
func (r *cutsRelay) cut(blackhole bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range r.live {
		if blackhole {
			p.frozen.Store(true)
		} else {
			p.c.Close()
			p.s.Close()
		}
	}
	if !blackhole {
		r.live = nil
	}
}

func (r *cutsRelay) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.accepted
}

// waitResumed waits until the events file records n resumptions.
func waitResumed(events string, n int, within time.Duration) bool {
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		b, _ := os.ReadFile(events)
		if bytes.Count(b, []byte(`"event":"resumed"`)) >= n {
			return true
		}
	}
	return false
}

// helperTestSize is the size of the cut transfers: 256 MiB, or
// $RSFTP_HELPER_TEST_MIB.
func helperTestSize() int64 {
	if n, err := strconv.Atoi(os.Getenv("RSFTP_HELPER_TEST_MIB")); err == nil && n > 0 {
		return int64(n) << 20
	}
	return 256 << 20
}

// TestE2EHelperCuts: rsftp get and put through Debian's sshd, with the
// helper, cut three times in the middle (reset, blackhole, reset) by a
// relay between the tool and sshd: the files arrive whole, each cut is a
// resumption (events), and the helper was installed once, by the first
// command: reconnections and the second command upload nothing.
func TestE2EHelperCuts(t *testing.T) {
	r := newHelperRig(t)
	relay := startCutsRelay(t, r.sshd.Port, 48<<20)
	r.port = relay.port
	r.trustPort(t, relay.port)
	size := helperTestSize()
	installs := 0
	for _, dir := range []string{"get", "put"} {
		src := filepath.Join(r.dir, dir+"-src")
		dst := filepath.Join(r.dir, dir+"-dst")
		remote, local := src, dst
		if dir == "get" {
			remote = filepath.Join(r.remote, "big-get")
			src = remote
		} else {
			remote = filepath.Join(r.remote, "big-put")
			dst = remote
		}
		e2eRandFile(t, src, size)
		events := filepath.Join(r.dir, dir+"-events")
		extra := []string{"-o", "LogLevel=INFO", "-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=2", "--events", events}
		var cmd *exec.Cmd
		var errb *lockedBuffer
		if dir == "get" {
			cmd, errb = r.command(t, "get", extra, "127.0.0.1:"+remote, local)
		} else {
			cmd, errb = r.command(t, "put", extra, src, "127.0.0.1:"+remote)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cuts := 0
		for i, blackhole := range []bool{false, true, false} {
			if !waitSize(dst, size*int64(i+1)/5, 120*time.Second) {
				break
			}
			relay.cut(blackhole)
			cuts++
			// The next cut waits for the resumption: one that met a
			// connection in its handshake would be a failed attempt,
			// not a lost link.
			waitResumed(events, cuts, 60*time.Second)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("rsftp %s: %v\n%s", dir, err, errb.String())
		}
		if cuts != 3 {
			t.Fatalf("rsftp %s: the transfer ended after %d cuts of 3", dir, cuts)
		}
		e2eSame(t, src, dst)
		ev := readEvents(t, events)
		if n := countEvents(ev, "resumed"); n < cuts {
			t.Errorf("rsftp %s: %d resumed events after %d cuts: %v", dir, n, cuts, ev)
		}
		installs += strings.Count(errb.String(), "installing the rsftp helper")
		t.Logf("rsftp %s: %d cuts, %d resumed, %d connections to sshd so far; stderr:\n%s", dir, cuts, countEvents(ev, "resumed"), relay.count(), errb.String())
		os.Remove(src)
		os.Remove(dst)
	}
	if installs != 1 {
		t.Errorf("the helper was installed %d times; want once, by the first command", installs)
	}
	r.cachedBinary(t)
	waitNoSessions(t, r.helperDir)
}

// TestE2EHelperReconnectPaths: a reconnection reaches the helper's
// socket through sshd's direct-streamlocal channel, and where sshd
// refuses those (AllowStreamLocalForwarding no) through "rsftp attach",
// learning the refusal once: the second reconnection goes straight to
// attach. Both resume a cut get, reset then blackhole.
func TestE2EHelperReconnectPaths(t *testing.T) {
	for _, streamLocal := range []bool{true, false} {
		t.Run(fmt.Sprintf("streamlocal=%v", streamLocal), func(t *testing.T) {
			var extra []string
			if !streamLocal {
				extra = []string{"AllowStreamLocalForwarding no"}
			}
			r := newHelperRig(t, extra...)
			relay := startCutsRelay(t, r.sshd.Port, 8<<20)
			r.port = relay.port
			r.trustPort(t, relay.port)
			const size = 24 << 20
			remote := filepath.Join(r.remote, "paths")
			local := filepath.Join(r.dir, "paths")
			e2eRandFile(t, remote, size)
			events := filepath.Join(r.dir, "events")
			cmd, errb := r.command(t, "get", []string{"-o", "LogLevel=DEBUG", "-o", "ServerAliveInterval=1",
				"-o", "ServerAliveCountMax=2", "--events", events}, "127.0.0.1:"+remote, local)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			cuts := 0
			for i, blackhole := range []bool{false, true} {
				if !waitSize(local, size*int64(i+1)/4, 60*time.Second) {
					break
				}
				relay.cut(blackhole)
				cuts++
				waitResumed(events, cuts, 60*time.Second)
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("rsftp get: %v\n%s", err, errb.String())
			}
			if cuts != 2 {
				t.Fatalf("the transfer ended after %d cuts of 2", cuts)
			}
			e2eSame(t, remote, local)
			if n := countEvents(readEvents(t, events), "resumed"); n < cuts {
				t.Errorf("%d resumed events after %d cuts", n, cuts)
			}
			fallbacks := strings.Count(errb.String(), "sshd did not connect to the helper's socket")
			if streamLocal && fallbacks != 0 {
				t.Errorf("a reconnection went through rsftp attach although sshd forwards to Unix sockets:\n%s", errb.String())
			}
			if !streamLocal && fallbacks != 1 {
				t.Errorf("sshd's refusal of direct-streamlocal was met %d times, want once (then remembered):\n%s", fallbacks, errb.String())
			}
			if !waitNoSessions(t, r.helperDir) {
				t.Logf("rsftp get's log:\n%s", errb.String())
			}
		})
	}
}

// TestE2EHelperDamagedCache: a cached helper whose bytes changed is
// found out by its SHA-256 and installed again, and the session runs
// through the new copy.
func TestE2EHelperDamagedCache(t *testing.T) {
	r := newHelperRig(t)
	want := e2eRandFile(t, filepath.Join(r.remote, "f"), 1<<20)
	if errs, err := r.run(t, "get", []string{"-o", "LogLevel=INFO"}, "127.0.0.1:"+filepath.Join(r.remote, "f"), filepath.Join(r.dir, "f1")); err != nil {
		t.Fatalf("first get: %v\n%s", err, errs)
	}
	bin := r.cachedBinary(t)
	good, _ := os.ReadFile(bin)
	bad := bytes.Clone(good)
	for i := len(bad) / 2; i < len(bad)/2+4096; i++ {
		bad[i] ^= 0x5a
	}
	if err := os.WriteFile(bin, bad, 0o700); err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(r.dir, "f2")
	errs, err := r.run(t, "get", []string{"-o", "LogLevel=INFO", "--events", filepath.Join(r.dir, "events")}, "127.0.0.1:"+filepath.Join(r.remote, "f"), local)
	if err != nil {
		t.Fatalf("get with a damaged helper: %v\n%s", err, errs)
	}
	if !strings.Contains(errs, "damaged") {
		t.Errorf("nothing said the cached helper was damaged:\n%s", errs)
	}
	if now, _ := os.ReadFile(bin); !bytes.Equal(now, good) {
		t.Error("the damaged helper was not replaced by the client's binary")
	}
	if got, _ := os.ReadFile(local); !bytes.Equal(got, want) {
		t.Error("the file differs")
	}
	if ev := readEvents(t, filepath.Join(r.dir, "events")); countEvents(ev, "closed") != 1 || countEvents(ev, "connected") != 1 {
		t.Errorf("events %v", ev)
	}
}

// TestE2EHelperReadOnlyHome: where the helper cannot be installed (its
// directory on a read-only file system: a tmpfs mounted read-only as
// root, else a directory without write permission), the command runs
// over plain SSH and says so in one line.
func TestE2EHelperReadOnlyHome(t *testing.T) {
	r := newHelperRig(t)
	os.Mkdir(r.helperDir, 0o755)
	if os.Geteuid() == 0 {
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", r.helperDir).CombinedOutput(); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("mount a read-only tmpfs: %v %s", err, out)
			}
			t.Skipf("mount a read-only tmpfs: %v %s", err, out)
		}
		t.Cleanup(func() { exec.Command("umount", r.helperDir).Run() })
	} else {
		os.Chmod(r.helperDir, 0o555)
		t.Cleanup(func() { os.Chmod(r.helperDir, 0o755) })
	}
	want := e2eRandFile(t, filepath.Join(r.remote, "f"), 1<<20)
	local := filepath.Join(r.dir, "f")
	errs, err := r.run(t, "get", []string{"-o", "LogLevel=INFO"}, "127.0.0.1:"+filepath.Join(r.remote, "f"), local)
	if err != nil {
		t.Fatalf("get: %v\n%s", err, errs)
	}
	if got, _ := os.ReadFile(local); !bytes.Equal(got, want) {
		t.Error("the file differs")
	}
	lines := strings.Split(strings.TrimSpace(errs), "\n")
	var note string
	for _, l := range lines {
		if strings.Contains(l, "could not install the rsftp helper") {
			note = l
		}
	}
	if note == "" || !strings.Contains(note, "plain SSH") || !(strings.Contains(note, "Read-only file system") || strings.Contains(note, "Permission denied")) {
		t.Errorf("no one-line note that the helper could not be installed, why, and that the session is plain SSH:\n%s", errs)
	}
	t.Logf("the note: %s", note)
	if m, _ := filepath.Glob(filepath.Join(r.helperDir, "*")); len(m) != 0 {
		t.Errorf("left in the read-only directory: %v", m)
	}
}

// TestE2EHelperSSHLines: rsftp ssh -o ResumeHelper=yes through sshd, a
// command printing numbered lines, its output cut three times (reset,
// blackhole, reset) by the relay: every line arrives once, in order, and
// each cut is a resumption.
func TestE2EHelperSSHLines(t *testing.T) {
	r := newHelperRig(t)
	relay := startCutsRelay(t, r.sshd.Port, 4<<20)
	r.trustPort(t, relay.port)
	const lines = 3000000 // about 21 MB: five seconds at the relay's pace
	events := filepath.Join(r.dir, "events")
	cmd := exec.Command(e2eTool(t), "ssh", "-F", "none", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile="+r.kh, "-i", r.key, "-p", strconv.Itoa(relay.port), "-l", sshtest.User(t),
		"-o", "ResumeHelper=yes", "-o", "ServerAliveInterval=1", "-o", "ServerAliveCountMax=2", "--events", events,
		"127.0.0.1", fmt.Sprintf("seq 1 %d", lines))
	cmd.Env = append(e2eEnv(t), helperDirEnv+"="+r.helperDir)
	out := filepath.Join(r.dir, "out")
	of, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer of.Close()
	cmd.Stdout = of
	errb := &lockedBuffer{}
	cmd.Stderr = errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var want int64
	for i := 1; i <= lines; i++ {
		want += int64(len(strconv.Itoa(i)) + 1)
	}
	cuts := 0
	for i, blackhole := range []bool{false, true, false} {
		if !waitSize(out, want*int64(i+1)/5, 60*time.Second) {
			break
		}
		relay.cut(blackhole)
		cuts++
		waitResumed(events, cuts, 60*time.Second)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("rsftp ssh: %v\n%s", err, errb.String())
	}
	if cuts != 3 {
		t.Fatalf("the output ended after %d cuts of 3", cuts)
	}
	got, _ := os.ReadFile(out)
	n := 0
	for _, l := range strings.Split(strings.TrimSuffix(string(got), "\n"), "\n") {
		n++
		if l != strconv.Itoa(n) {
			t.Fatalf("line %d is %q: a line lost, repeated or out of order", n, l)
		}
	}
	if n != lines {
		t.Fatalf("%d lines, want %d", n, lines)
	}
	ev := readEvents(t, events)
	if got := countEvents(ev, "resumed"); got < cuts {
		t.Errorf("%d resumed events after %d cuts: %v", got, cuts, ev)
	}
	t.Logf("%d lines through %d cuts; stderr:\n%s", n, cuts, errb.String())
}

// TestE2EHelperSSHCommand: rsftp ssh takes the helper under
// ResumeHelper=auto, the default, and a command through it runs as
// through sshd: the environment the client sets (SetEnv), SSH_CONNECTION naming
// the outer connection's ends, the home directory as its directory, its
// exit status.
func TestE2EHelperSSHCommand(t *testing.T) {
	r := newHelperRig(t)
	cmd := exec.Command(e2eTool(t), "ssh", "-F", "none", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile="+r.kh, "-i", r.key, "-p", strconv.Itoa(r.sshd.Port), "-l", sshtest.User(t),
		"-o", "SetEnv=RSFTP_VIA=helper", "127.0.0.1",
		`echo "$RSFTP_VIA|$SSH_CONNECTION|$(pwd)"; exit 7`)
	cmd.Env = append(e2eEnv(t), helperDirEnv+"="+r.helperDir)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Fatalf("exit: %v, want status 7\n%s", err, errb.String())
	}
	f := strings.Split(strings.TrimSpace(out.String()), "|")
	home, _ := os.UserHomeDir()
	if len(f) != 3 || f[0] != "helper" || !strings.HasPrefix(f[1], "127.0.0.1 ") || !strings.HasSuffix(f[1], " "+strconv.Itoa(r.sshd.Port)) || f[2] != home {
		t.Fatalf("through the helper: %q; want helper|127.0.0.1 PORT 127.0.0.1 %d|%s\n%s", out.String(), r.sshd.Port, home, errb.String())
	}
	if m, _ := filepath.Glob(filepath.Join(r.helperDir, "*-*", "rsftp")); len(m) != 1 {
		t.Fatalf("the command did not go through the helper (cache %v)", m)
	}
}

// TestE2EHelperForcedCommand: an account whose sshd forces its command
// (ForceCommand internal-sftp) runs no probe: the command runs over plain
// SSH, silently under auto (the administrator's choice, not a fault:
// said with -v), and ResumeHelper=yes is an error that says why.
func TestE2EHelperForcedCommand(t *testing.T) {
	r := newHelperRig(t, "ForceCommand internal-sftp")
	want := e2eRandFile(t, filepath.Join(r.remote, "f"), 1<<20)
	local := filepath.Join(r.dir, "f")
	errs, err := r.run(t, "get", nil, "127.0.0.1:"+filepath.Join(r.remote, "f"), local)
	if err != nil {
		t.Fatalf("get: %v\n%s", err, errs)
	}
	if got, _ := os.ReadFile(local); !bytes.Equal(got, want) {
		t.Error("the file differs")
	}
	if strings.TrimSpace(errs) != "" {
		t.Errorf("auto said something of the helper without -v:\n%s", errs)
	}
	if m, _ := filepath.Glob(filepath.Join(r.helperDir, "*")); len(m) != 0 {
		t.Errorf("the helper directory holds %v", m)
	}
	errs, err = r.run(t, "get", []string{"-o", "ResumeHelper=yes"}, "127.0.0.1:"+filepath.Join(r.remote, "f"), local+"2")
	if err == nil || !strings.Contains(errs, "ResumeHelper=yes") {
		t.Errorf("ResumeHelper=yes with a forced command: %v\n%s", err, errs)
	}
	t.Logf("with ResumeHelper=yes: %s", strings.TrimSpace(errs))
}

// TestE2EHelperInnerPackets: through the helper, the client lets the
// helper send data packets of innerMaxPacket (sshd's own packets carry
// 32 KiB at most), so that a READ's reply crosses the inner layers in
// two packets instead of eight; a get without the helper still receives
// sshd's 32 KiB packets. The client's packet log (RSFTP_PACKETS) shows
// both connections' packets.
func TestE2EHelperInnerPackets(t *testing.T) {
	r := newHelperRig(t)
	want := e2eRandFile(t, filepath.Join(r.remote, "f"), 4<<20)
	largest := func(mode string) int {
		log := filepath.Join(r.dir, "packets-"+mode)
		local := filepath.Join(r.dir, "f-"+mode)
		cmd, errb := r.command(t, "get", []string{"-o", "ResumeHelper=" + mode}, "127.0.0.1:"+filepath.Join(r.remote, "f"), local)
		cmd.Env = append(cmd.Env, "RSFTP_PACKETS="+log)
		if err := cmd.Run(); err != nil {
			t.Fatalf("get, ResumeHelper=%s: %v\n%s", mode, err, errb)
		}
		if got, _ := os.ReadFile(local); !bytes.Equal(got, want) {
			t.Fatalf("get, ResumeHelper=%s: the file differs", mode)
		}
		b, err := os.ReadFile(log)
		if err != nil {
			t.Fatal(err)
		}
		// "12.345 ms <  94 CHANNEL_DATA 32777 ..."
		n := 0
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) >= 6 && f[2] == "<" && f[4] == "CHANNEL_DATA" {
				if k, err := strconv.Atoi(f[5]); err == nil {
					n = max(n, k)
				}
			}
		}
		return n
	}
	if n := largest("yes"); n <= 64<<10 || n > innerMaxPacket+64 {
		t.Errorf("through the helper the largest data packet received had %d bytes; want more than 64 KiB, at most innerMaxPacket (%d) and its header", n, innerMaxPacket)
	}
	if n := largest("no"); n == 0 || n > 32<<10+64 {
		t.Errorf("from sshd directly the largest data packet received had %d bytes; want sshd's 32 KiB at most", n)
	}
}

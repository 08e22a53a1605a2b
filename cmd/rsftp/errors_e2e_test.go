package main

import (
	"fmt"
	"io"
	"log/slog"
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

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/internal/sshtest"
	"github.com/rsftp/rsftp/kex"
)

// oneLine checks that a failed command said one line on stderr that
// holds every word of want, and none of the error chains' jargon.
func oneLine(t *testing.T, what string, r e2eResult, want ...string) {
	t.Helper()
	msg := strings.TrimSuffix(r.stderr, "\n")
	t.Logf("%s: %s", what, msg)
	if r.code == 0 || msg == "" || strings.Contains(msg, "\n") {
		t.Errorf("%s: exit %d, stderr not one line:\n%s", what, r.code, r.stderr)
		return
	}
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("%s: %q does not say %q", what, msg, w)
		}
	}
	for _, j := range []string{"transport: ", "auth: ", "sftp: ", "resume: ", "channel: ", "ssh: ", "context canceled", ": EOF", "unexpected EOF", "dial tcp"} {
		if strings.Contains(msg, j) {
			t.Errorf("%s: %q says %q", what, msg, j)
		}
	}
}

// runNoTTY runs the tool in a session of its own, without a controlling
// terminal (as from cron or a pipeline): nothing can be asked.
func runNoTTY(t *testing.T, args ...string) e2eResult {
	t.Helper()
	cmd := exec.Command(e2eTool(t), args...)
	cmd.Env = e2eEnv(t)
	cmd.SysProcAttr = newSession()
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return e2eResult{out.String(), errb.String(), code}
}

// TestE2EConnectErrors: what rsftp says when it cannot reach or log in
// to a server, each in one line with what to do: a refused port, a name
// that does not resolve, an unknown host key in batch mode, a changed
// one, a missing identity file, an encrypted key with BatchMode and with
// no terminal, a key the server refuses; then a missing remote file and
// a local target that cannot be written.
func TestE2EConnectErrors(t *testing.T) {
	dir := t.TempDir()
	key := sshtest.KeyGen(t, dir, "ed25519", 0)
	stranger := sshtest.KeyGen(t, t.TempDir(), "ed25519", 0)
	encrypted := filepath.Join(dir, "enc")
	if out, err := exec.Command(sshtest.Binary(t, "ssh-keygen"), "-q", "-t", "ed25519", "-N", "secret", "-f", encrypted).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	pub, _ := os.ReadFile(key + ".pub")
	encPub, _ := os.ReadFile(encrypted + ".pub")
	ak := filepath.Join(dir, "authorized_keys")
	os.WriteFile(ak, append(pub, encPub...), 0o600)
	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	os.WriteFile(filepath.Join(root, "f"), []byte("x"), 0o644)
	port, kh := e2eServe(t, root, ak)
	p := strconv.Itoa(port)
	base := []string{"-F", "none", "-q", "-o", "IdentityAgent=none", "-o", "IdentitiesOnly=yes"}
	with := func(extra ...string) []string { return append(append([]string{}, base...), extra...) }
	ok := with("-o", "BatchMode=yes", "-o", "UserKnownHostsFile="+kh, "-i", key, "-P", p)

	closed := e2eFreePort(t)
	oneLine(t, "refused port", e2eRun(t, append(append([]string{"ls"}, with("-o", "BatchMode=yes", "-P", strconv.Itoa(closed))...), "127.0.0.1:")...),
		fmt.Sprintf("cannot connect to 127.0.0.1 port %d: connection refused", closed), "-P")
	oneLine(t, "unresolvable host", e2eRun(t, append(append([]string{"ls"}, with("-o", "BatchMode=yes")...), "nohost.invalid:")...),
		`cannot resolve host name "nohost.invalid"`)

	empty := filepath.Join(dir, "empty_kh")
	os.WriteFile(empty, nil, 0o600)
	hk, _ := os.ReadFile(filepath.Join(filepath.Dir(kh), "hk.pub"))
	hostKey, _, err := auth.ParsePublicKeyFile(hk)
	if err != nil {
		t.Fatal(err)
	}
	fp := kex.FingerprintSHA256(hostKey)
	oneLine(t, "unknown host, batch mode", e2eRun(t, append(append([]string{"ls"}, with("-o", "BatchMode=yes", "-o", "UserKnownHostsFile="+empty, "-i", key, "-P", p)...), "127.0.0.1:")...),
		"Host key verification failed", fmt.Sprintf("[127.0.0.1]:%d is not in known_hosts", port), fp)
	other := filepath.Join(dir, "other_kh")
	otherKey, _ := os.ReadFile(stranger + ".pub")
	f := strings.Fields(string(otherKey))
	os.WriteFile(other, []byte(fmt.Sprintf("[127.0.0.1]:%d %s %s\n", port, f[0], f[1])), 0o600)
	oneLine(t, "changed host key", e2eRun(t, append(append([]string{"ls"}, with("-o", "BatchMode=yes", "-o", "UserKnownHostsFile="+other, "-i", key, "-P", p)...), "127.0.0.1:")...),
		"Host key verification failed", "has CHANGED", other+":1", "ssh-keygen -R")

	user := localUser()
	oneLine(t, "missing identity file", e2eRun(t, append(append([]string{"ls"}, with("-o", "BatchMode=yes", "-o", "UserKnownHostsFile="+kh, "-i", filepath.Join(dir, "nokey"), "-P", p)...), "127.0.0.1:")...),
		"Permission denied for "+user+"@127.0.0.1", "identity file "+filepath.Join(dir, "nokey")+" does not exist")
	oneLine(t, "encrypted key, BatchMode", e2eRun(t, append(append([]string{"ls"}, with("-o", "BatchMode=yes", "-o", "UserKnownHostsFile="+kh, "-i", encrypted, "-P", p)...), "127.0.0.1:")...),
		"Permission denied", "key "+encrypted+" needs its passphrase", "BatchMode", "ssh-add "+encrypted)
	oneLine(t, "encrypted key, no terminal", runNoTTY(t, append(append([]string{"ls"}, with("-o", "UserKnownHostsFile="+kh, "-i", encrypted, "-P", p)...), "127.0.0.1:")...),
		"Permission denied", "key "+encrypted+" needs its passphrase and there is no terminal", "ssh-add "+encrypted, "run rsftp in a terminal")
	oneLine(t, "key refused", e2eRun(t, append(append([]string{"ls"}, with("-o", "BatchMode=yes", "-o", "UserKnownHostsFile="+kh, "-i", stranger, "-P", p)...), "127.0.0.1:")...),
		"Permission denied for "+user+"@127.0.0.1", "refused publickey with 1 key", "authorized_keys")

	oneLine(t, "missing remote file", e2eRun(t, append(append([]string{"get"}, ok...), "127.0.0.1:nope", filepath.Join(dir, "x"))...),
		"nope: no such file or directory on the server")
	notDir := filepath.Join(dir, "plainfile")
	os.WriteFile(notDir, nil, 0o644)
	oneLine(t, "local target under a file", e2eRun(t, append(append([]string{"get"}, ok...), "127.0.0.1:f", filepath.Join(notDir, "f"))...),
		filepath.Join(notDir, "f"), "not a directory")
	if os.Geteuid() != 0 {
		ro := filepath.Join(dir, "ro")
		os.Mkdir(ro, 0o500)
		oneLine(t, "local directory not writable", e2eRun(t, append(append([]string{"get"}, ok...), "127.0.0.1:f", filepath.Join(ro, "f"))...),
			"permission denied", filepath.Join(ro, "f"))
	}
	// -v adds the chain, after the sentence.
	r := e2eRun(t, append(append([]string{"ls", "-v"}, with("-o", "BatchMode=yes", "-P", strconv.Itoa(closed))...), "127.0.0.1:")...)
	if !strings.Contains(r.stderr, "connection refused; check the port") || !strings.Contains(r.stderr, "the error in full: ssh: dial 127.0.0.1:") {
		t.Errorf("-v: %s", r.stderr)
	}
}

// heldServer is an rsftp server in the test process with a given host
// key and --hold.
func heldServer(t *testing.T, root, authorizedKeys, hostKey, hold string) int {
	t.Helper()
	o, err := parseServeFlags([]string{"--root", root, "--host-key", hostKey, "--authorized-keys", authorizedKeys, "--hold", hold}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	hk, _, err := loadOrCreateHostKey(hostKey)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := rsftp.NewServer(o.serveConfig(hk, localUser(), slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().(*net.TCPAddr).Port
}

// switchRelay forwards connections to a port the test can change, with
// what comes back held to bps; cut closes every connection so far.
type switchRelay struct {
	port   int
	target atomic.Int32
	mu     sync.Mutex
	conns  []net.Conn
}

func newSwitchRelay(t *testing.T, to int, bps float64) *switchRelay {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &switchRelay{port: l.Addr().(*net.TCPAddr).Port}
	r.target.Store(int32(to))
	t.Cleanup(func() { l.Close(); r.cut() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.target.Load()))
			if err != nil {
				c.Close()
				continue
			}
			r.mu.Lock()
			r.conns = append(r.conns, c, s)
			r.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() {
				buf := make([]byte, 16<<10)
				start, down := time.Now(), 0
				for {
					n, err := s.Read(buf)
					if n > 0 {
						if _, err := c.Write(buf[:n]); err != nil {
							break
						}
						down += n
						if ahead := time.Duration(float64(down)/bps*float64(time.Second)) - time.Since(start); ahead > 0 {
							time.Sleep(ahead)
						}
					}
					if err != nil {
						break
					}
				}
				c.Close()
			}()
		}
	}()
	return r
}

func (r *switchRelay) cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.Close()
	}
	r.conns = nil
}

// TestE2ETransferErrors: a download whose connection is lost says so in
// one line, with what was kept and the command that continues it: with
// --no-resume; when the server that answers the reconnection does not
// know the session (restarted); when the link stays down past the
// server's hold; and interrupted with SIGINT.
func TestE2ETransferErrors(t *testing.T) {
	dir := t.TempDir()
	key := sshtest.KeyGen(t, dir, "ed25519", 0)
	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	e2eRandFile(t, filepath.Join(root, "big"), 32<<20)
	hk := filepath.Join(dir, "hk")
	first := heldServer(t, root, key+".pub", hk, "1h")
	restarted := heldServer(t, root, key+".pub", hk, "1h") // the same host, which never saw the session
	briefHold := heldServer(t, root, key+".pub", hk, "1s")
	hostPub, _, err := loadOrCreateHostKey(hk)
	if err != nil {
		t.Fatal(err)
	}
	closed := e2eFreePort(t)

	for _, c := range []struct {
		name  string
		to    int
		extra []string
		then  func(r *switchRelay, cmd *exec.Cmd)
		code  int
		want  []string
	}{
		{"no-resume", first, []string{"--no-resume"}, func(r *switchRelay, _ *exec.Cmd) { r.cut() }, 1,
			[]string{"download of big stopped: the connection to 127.0.0.1 was lost", "not resumable", "of big are in ", "to continue: rsftp get -a "}},
		{"unknown session", first, nil, func(r *switchRelay, _ *exec.Cmd) { r.target.Store(int32(restarted)); r.cut() }, 1,
			[]string{"download of big stopped", "the server no longer holds the session (it was restarted, or dropped it)", "to continue: rsftp get -a "}},
		{"hold expired", briefHold, nil, func(r *switchRelay, _ *exec.Cmd) { r.target.Store(int32(closed)); r.cut() }, 1,
			[]string{"download of big stopped: the connection to 127.0.0.1 was lost for longer than the server holds a session", "to continue: rsftp get -a "}},
		{"SIGINT", first, nil, func(_ *switchRelay, cmd *exec.Cmd) { cmd.Process.Signal(syscall.SIGINT) }, 130,
			[]string{"interrupted (SIGINT)", "of big", "to continue: rsftp get -a "}},
	} {
		t.Run(c.name, func(t *testing.T) {
			relay := newSwitchRelay(t, c.to, 4<<20)
			kh := filepath.Join(t.TempDir(), "known_hosts")
			os.WriteFile(kh, []byte(fmt.Sprintf("[127.0.0.1]:%d %s\n", relay.port, kex.MarshalAuthorizedKey(hostPub.PublicKey()))), 0o600)
			local := filepath.Join(t.TempDir(), "big")
			args := append(append([]string{"get"}, e2eOpts(key, kh, relay.port)...), c.extra...)
			cmd := exec.Command(e2eTool(t), append(args, "127.0.0.1:big", local)...)
			cmd.Env = e2eEnv(t)
			var errb lockedBuffer
			cmd.Stderr = &errb
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			t.Cleanup(func() { cmd.Process.Kill() })
			if !waitSize(local, 6<<20, 60*time.Second) {
				t.Fatalf("the download did not start:\n%s", errb.String())
			}
			c.then(relay, cmd)
			werr := <-exited
			code := 0
			if ee, ok := werr.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			if code != c.code {
				t.Errorf("exit %d (%v), want %d", code, werr, c.code)
			}
			oneLine(t, c.name, e2eResult{stderr: errb.String(), code: code}, c.want...)
		})
	}
}

// TestE2EServeStartupErrors: rsftp serve's refusals to start are one
// line that names the option at fault.
func TestE2EServeStartupErrors(t *testing.T) {
	dir := t.TempDir()
	key := sshtest.KeyGen(t, dir, "ed25519", 0)
	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	encrypted := filepath.Join(dir, "enc")
	if out, err := exec.Command(sshtest.Binary(t, "ssh-keygen"), "-q", "-t", "ed25519", "-N", "secret", "-f", encrypted).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	serve := func(args ...string) e2eResult {
		r := e2eRun(t, append([]string{"serve"}, args...)...)
		// What serve says before it fails (the host key it created).
		var lines []string
		for _, l := range strings.Split(r.stderr, "\n") {
			if strings.HasPrefix(l, "rsftp serve: ") {
				lines = append(lines, l)
			}
		}
		r.stderr = strings.Join(lines, "\n") + "\n"
		return r
	}
	hk := filepath.Join(dir, "hk")
	for _, c := range []struct {
		name string
		args []string
		want []string
	}{
		{"address in use", []string{"--listen", busy.Addr().String(), "--root", root, "--host-key", hk, "--authorized-keys", key + ".pub"},
			[]string{"--listen " + busy.Addr().String() + ": the address is in use", "choose another port"}},
		{"encrypted host key", []string{"--listen", "127.0.0.1:0", "--root", root, "--host-key", encrypted, "--authorized-keys", key + ".pub"},
			[]string{"--host-key " + encrypted + " is encrypted", "no passphrase"}},
		{"missing authorized_keys", []string{"--listen", "127.0.0.1:0", "--root", root, "--host-key", hk, "--authorized-keys", filepath.Join(dir, "nope")},
			[]string{"--authorized-keys: " + filepath.Join(dir, "nope") + ": no such file or directory"}},
		{"root not a directory", []string{"--listen", "127.0.0.1:0", "--root", key, "--host-key", hk, "--authorized-keys", key + ".pub"},
			[]string{"--root " + key + " is not a directory"}},
	} {
		oneLine(t, c.name, serve(c.args...), c.want...)
	}
}

// TestE2EDemoInterrupted: rsftp demo interrupted by SIGINT says so in one
// line, with status 130 as the other commands, not "context canceled" or
// the session's inner error; one past -timeout says what to change.
func TestE2EDemoInterrupted(t *testing.T) {
	cmd := exec.Command(e2eTool(t), "demo", "-q", "-svg", "", "-bandwidth", "2MB", "-size", "64MiB")
	cmd.Env = e2eEnv(t)
	cmd.Dir = t.TempDir()
	var out, errb lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), "session:") {
		if time.Now().After(deadline) {
			t.Fatalf("the demo did not start: %s %s", out.String(), errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	err := <-exited
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	if code != 130 {
		t.Errorf("exit %d (%v), want 130", code, err)
	}
	oneLine(t, "demo SIGINT", e2eResult{stderr: errb.String(), code: code}, "rsftp demo: interrupted")

	r := e2eRun(t, "demo", "-q", "-svg", "", "-bandwidth", "1MB", "-size", "64MiB", "-timeout", "300ms")
	oneLine(t, "demo timeout", e2eResult{stderr: r.stderr, code: r.code}, "gave up after 300ms (-timeout)", "a longer -timeout")
}

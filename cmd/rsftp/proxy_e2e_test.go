package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/internal/sshtest"
	"github.com/rsftp/rsftp/kex"
)

// socketOwner finds the process that holds the TCP socket from local to
// remote (both IPv4), from /proc/net/tcp and /proc/*/fd: its pid and
// command name. ok is false where /proc does not tell (not Linux).
func socketOwner(local, remote *net.TCPAddr) (pid int, comm string, ok bool) {
	hexAddr := func(a *net.TCPAddr) string {
		ip := a.IP.To4()
		if ip == nil {
			return ""
		}
		return fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], a.Port)
	}
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return 0, "", false
	}
	inode := ""
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 9 && f[1] == hexAddr(local) && f[2] == hexAddr(remote) {
			inode = f[9]
		}
	}
	if inode == "" || inode == "0" {
		return 0, "", false
	}
	want := "socket:[" + inode + "]"
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		n, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fds, _ := os.ReadDir(filepath.Join("/proc", p.Name(), "fd"))
		for _, fd := range fds {
			if l, _ := os.Readlink(filepath.Join("/proc", p.Name(), "fd", fd.Name())); l == want {
				c, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "comm"))
				return n, strings.TrimSpace(string(c)), true
			}
		}
	}
	return 0, "", false
}

// peer is who connected to a test server: the process holding the
// connecting socket.
type peer struct {
	pid  int
	comm string
	addr string // the connection's remote address
}

// testServer is an rsftp server in the test process: configured as
// rsftp serve is (SFTP, resumable sessions, the test's key), and for a
// jump host with direct-tcpip allowed. It records the direct-tcpip
// requests it serves and, for each connection it accepts, the process
// that made it.
type testServer struct {
	port    int
	khLine  string // its known_hosts line
	mu      sync.Mutex
	forward []string // host:port of each direct-tcpip request
	peers   []peer
}

func (s *testServer) forwards() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.forward...)
}

func (s *testServer) accepted() []peer {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]peer(nil), s.peers...)
}

type ownerListener struct {
	net.Listener
	s *testServer
}

func (l ownerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		// The connecting socket is open until we accepted it and it
		// said something: look now.
		pid, comm, ok := socketOwner(c.RemoteAddr().(*net.TCPAddr), c.LocalAddr().(*net.TCPAddr))
		if !ok {
			pid, comm = -1, "?"
		}
		l.s.mu.Lock()
		l.s.peers = append(l.s.peers, peer{pid, comm, c.RemoteAddr().String()})
		l.s.mu.Unlock()
	}
	return c, err
}

func startTestServer(t *testing.T, root, authorizedKeys string, jump bool) *testServer {
	t.Helper()
	dir := t.TempDir()
	hkPath := filepath.Join(dir, "hk")
	o, err := parseServeFlags([]string{"--root", root, "--host-key", hkPath, "--authorized-keys", authorizedKeys}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	hk, _, err := loadOrCreateHostKey(hkPath)
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{}
	cfg := o.serveConfig(hk, localUser(), slog.New(slog.DiscardHandler))
	if jump {
		cfg.AllowTCPForwarding = func(user, host string, port int) bool {
			s.mu.Lock()
			s.forward = append(s.forward, net.JoinHostPort(host, strconv.Itoa(port)))
			s.mu.Unlock()
			return true
		}
	}
	srv, err := rsftp.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ownerListener{l, s})
	t.Cleanup(func() { srv.Close() })
	s.port = l.Addr().(*net.TCPAddr).Port
	pub, err := os.ReadFile(hkPath + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(pub))
	s.khLine = fmt.Sprintf("[127.0.0.1]:%d %s %s\n", s.port, f[0], f[1])
	return s
}

// jumpRig is a client key, a target server with a file, and an
// ssh_config that names the hosts; jump hosts do not take -o options
// (as with ssh), so everything is in the file.
type jumpRig struct {
	dir, key, root, config, knownHosts string
	target                             *testServer
	blocks                             []string
}

func newJumpRig(t *testing.T) *jumpRig {
	r := &jumpRig{dir: t.TempDir()}
	r.key = sshtest.KeyGen(t, r.dir, "ed25519", 0)
	r.root = filepath.Join(r.dir, "root")
	os.Mkdir(r.root, 0o755)
	r.knownHosts = filepath.Join(r.dir, "known_hosts")
	r.target = startTestServer(t, r.root, r.key+".pub", false)
	r.trust(t, r.target.khLine)
	return r
}

func (r *jumpRig) trust(t *testing.T, line string) {
	f, err := os.OpenFile(r.knownHosts, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(line)
	f.Close()
}

// host adds a Host block.
func (r *jumpRig) host(name string, lines ...string) {
	r.blocks = append(r.blocks, "Host "+name+"\n  "+strings.Join(lines, "\n  ")+"\n")
}

// write writes the config: the Host blocks, then what every host shares.
func (r *jumpRig) write(t *testing.T) {
	r.config = filepath.Join(r.dir, "config")
	all := strings.Join(r.blocks, "") + fmt.Sprintf(`Host *
  IdentityFile %s
  IdentitiesOnly yes
  IdentityAgent none
  UserKnownHostsFile %s
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
`, r.key, r.knownHosts)
	if err := os.WriteFile(r.config, []byte(all), 0o600); err != nil {
		t.Fatal(err)
	}
}

// checkThroughJump fails unless every connection the target accepted
// came from a process named want (this test process for our jump
// servers, "sshd" for OpenSSH's), never from rsftp itself.
func checkThroughJump(t *testing.T, target *testServer, wantPid int, wantComm string, atLeast int) {
	t.Helper()
	ps := target.accepted()
	if len(ps) < atLeast {
		t.Fatalf("the target accepted %d connections, want at least %d", len(ps), atLeast)
	}
	for _, p := range ps {
		if p.pid == -1 {
			t.Logf("/proc does not say who connected; checked the jump hosts' requests only")
			continue
		}
		if p.comm == "rsftp" || (wantPid != 0 && p.pid != wantPid) || (wantComm != "" && p.comm != wantComm) {
			t.Errorf("the target's connection came from pid %d (%s), not from the jump host", p.pid, p.comm)
		}
	}
}

// TestE2EProxyJumpTwoHops: rsftp get and ls reach the target only through
// two of our own servers as jump hosts, given by ProxyJump in the config
// and by -J: every connection the target accepted was made by the second
// jump host (this test process), each jump host was asked for the next
// hop, and a hop whose host key is not known is refused under its own
// name and port.
func TestE2EProxyJumpTwoHops(t *testing.T) {
	r := newJumpRig(t)
	data := e2eRandFile(t, filepath.Join(r.root, "f.bin"), 3<<20+5)
	j1 := startTestServer(t, t.TempDir(), r.key+".pub", true)
	j2 := startTestServer(t, t.TempDir(), r.key+".pub", true)
	r.trust(t, j1.khLine)
	r.trust(t, j2.khLine)
	targetAddr := fmt.Sprintf("127.0.0.1:%d", r.target.port)
	r.host("j1", "HostName 127.0.0.1", fmt.Sprintf("Port %d", j1.port))
	r.host("j2", "HostName 127.0.0.1", fmt.Sprintf("Port %d", j2.port))
	r.host("target", "HostName 127.0.0.1", fmt.Sprintf("Port %d", r.target.port), "ProxyJump j1,j2")
	r.host("plain", "HostName 127.0.0.1", fmt.Sprintf("Port %d", r.target.port))
	empty := filepath.Join(r.dir, "empty_known_hosts")
	os.WriteFile(empty, nil, 0o600)
	r.host("j2-unknown", "HostName 127.0.0.1", fmt.Sprintf("Port %d", j2.port), "UserKnownHostsFile "+empty)
	r.write(t)

	local := filepath.Join(r.dir, "got.bin")
	if res := e2eRun(t, "get", "-F", r.config, "-q", "target:f.bin", local); res.code != 0 {
		t.Fatalf("get through ProxyJump: exit %d\n%s", res.code, res.stderr)
	}
	if got, _ := os.ReadFile(local); !bytes.Equal(got, data) {
		t.Fatal("the file fetched through two jump hosts differs")
	}
	if res := e2eRun(t, "ls", "-F", r.config, "-J", "j1,j2", "plain:"); res.code != 0 || !strings.Contains(res.stdout, "f.bin") {
		t.Fatalf("ls -J j1,j2: exit %d %q\n%s", res.code, res.stdout, res.stderr)
	}
	// With -v, the route is named.
	res := e2eRun(t, "ls", "-F", r.config, "-v", "target:")
	if res.code != 0 || !strings.Contains(res.stderr, "through jump host j2") || !strings.Contains(res.stderr, "through jump host j1") {
		t.Fatalf("ls -v: exit %d\n%s", res.code, res.stderr)
	}
	j2Addr := fmt.Sprintf("127.0.0.1:%d", j2.port)
	for _, f := range j1.forwards() {
		if f != j2Addr {
			t.Errorf("j1 was asked for %s, want only %s (j2)", f, j2Addr)
		}
	}
	for _, f := range j2.forwards() {
		if f != targetAddr {
			t.Errorf("j2 was asked for %s, want only %s (the target)", f, targetAddr)
		}
	}
	if n1, n2 := len(j1.forwards()), len(j2.forwards()); n1 != 3 || n2 != 3 || len(r.target.accepted()) != 3 {
		t.Errorf("three commands: j1 forwarded %d, j2 %d, the target accepted %d", n1, n2, len(r.target.accepted()))
	}
	checkThroughJump(t, r.target, os.Getpid(), "", 3)

	// Each hop's host key is checked under the hop's own name: j2's
	// unknown key is refused, and the target is never reached.
	before := len(r.target.accepted())
	res = e2eRun(t, "ls", "-F", r.config, "-J", "j1,j2-unknown", "plain:")
	if res.code == 0 || !strings.Contains(res.stderr, "jump host j2-unknown") || !strings.Contains(res.stderr, fmt.Sprintf("[127.0.0.1]:%d", j2.port)) {
		t.Fatalf("unknown jump host key: exit %d\n%s", res.code, res.stderr)
	}
	if len(r.target.accepted()) != before {
		t.Error("the target was reached although a jump host's key was refused")
	}
	// A hop that cannot be reached is an error, never a direct
	// connection.
	res = e2eRun(t, "ls", "-F", r.config, "-o", "ConnectTimeout=5", "-J", "127.0.0.1:1", "plain:")
	if res.code == 0 || len(r.target.accepted()) != before {
		t.Fatalf("unreachable jump host: exit %d, target accepted %d (was %d)\n%s", res.code, len(r.target.accepted()), before, res.stderr)
	}
	t.Logf("j1 forwarded %v, j2 %v; the target accepted %v", j1.forwards(), j2.forwards(), r.target.accepted())
}

// TestE2EProxyJumpThroughSshd: Debian's sshd as the jump host (TCP
// forwarding allowed): the target's connections come from sshd.
func TestE2EProxyJumpThroughSshd(t *testing.T) {
	r := newJumpRig(t)
	data := e2eRandFile(t, filepath.Join(r.root, "f.bin"), 1<<20+3)
	pub, _ := os.ReadFile(r.key + ".pub")
	sshd := sshtest.StartSshd(t, string(pub), "AllowTcpForwarding yes")
	hk, _ := os.ReadFile(sshd.HostKey + ".pub")
	f := strings.Fields(string(hk))
	r.trust(t, fmt.Sprintf("[127.0.0.1]:%d %s %s\n", sshd.Port, f[0], f[1]))
	r.host("bastion", "HostName 127.0.0.1", fmt.Sprintf("Port %d", sshd.Port), "User "+sshtest.User(t))
	r.host("target", "HostName 127.0.0.1", fmt.Sprintf("Port %d", r.target.port), "ProxyJump bastion")
	r.write(t)
	local := filepath.Join(r.dir, "got.bin")
	if res := e2eRun(t, "get", "-F", r.config, "-q", "target:f.bin", local); res.code != 0 {
		t.Fatalf("get through sshd: exit %d\n%s\n%s", res.code, res.stderr, sshd.Log())
	}
	if got, _ := os.ReadFile(local); !bytes.Equal(got, data) {
		t.Fatal("the file fetched through sshd differs")
	}
	checkThroughJump(t, r.target, 0, "sshd", 1)
	t.Logf("the target accepted %v", r.target.accepted())
}

// relayMain is the test binary as a ProxyCommand: it connects to
// host:port (args), copies its standard input there and what comes back
// to its standard output, and appends "up N down M end WHY" to countFile
// when the connection ends (WHY: eof, or hup when rsftp ended it with
// SIGHUP, as ssh ends its ProxyCommand). RSFTP_TEST_RELAY_BPS, if set,
// limits what comes back to that many bytes a second.
func relayMain(countFile string, args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "relay: want host port")
		return 2
	}
	var up, down atomic.Int64
	var once sync.Once
	report := func(why string) {
		once.Do(func() {
			f, err := os.OpenFile(countFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
			if err == nil {
				fmt.Fprintf(f, "up %d down %d end %s\n", up.Load(), down.Load(), why)
				f.Close()
			}
		})
	}
	// A write to a closed standard output is then an error to notice,
	// not death by SIGPIPE (a Go program's default on fds 1 and 2).
	signal.Ignore(syscall.SIGPIPE)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		<-hup
		report("hup")
		os.Exit(0)
	}()
	c, err := net.Dial("tcp", net.JoinHostPort(args[0], args[1]))
	if err != nil {
		fmt.Fprintln(os.Stderr, "relay:", err)
		return 1
	}
	bps, _ := strconv.Atoi(os.Getenv("RSFTP_TEST_RELAY_BPS"))
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := os.Stdin.Read(buf)
			if n > 0 {
				if _, werr := c.Write(buf[:n]); werr != nil {
					break
				}
				up.Add(int64(n))
			}
			if err != nil {
				break
			}
		}
		c.(*net.TCPConn).CloseWrite()
	}()
	buf := make([]byte, 32<<10)
	start := time.Now()
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := os.Stdout.Write(buf[:n]); werr != nil {
				break
			}
			d := down.Add(int64(n))
			if bps > 0 {
				if ahead := time.Duration(float64(d)/float64(bps)*float64(time.Second)) - time.Since(start); ahead > 0 {
					time.Sleep(ahead)
				}
			}
		}
		if err != nil {
			break
		}
	}
	// Wait for SIGHUP a moment: rsftp sends it when it closes the
	// connection.
	time.Sleep(500 * time.Millisecond)
	report("eof")
	return 0
}

// relayRuns reads the relay's count file: one (up, down) per run.
func relayRuns(t *testing.T, path string) [][2]int64 {
	b, _ := os.ReadFile(path)
	var out [][2]int64
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var u, d int64
		var why string
		if _, err := fmt.Sscanf(sc.Text(), "up %d down %d end %s", &u, &d, &why); err == nil {
			if why != "hup" {
				t.Errorf("relay run %q: rsftp did not end its ProxyCommand (SIGHUP)", sc.Text())
			}
			out = append(out, [2]int64{u, d})
		}
	}
	return out
}

// TestE2EProxyCommandCarriesTheConnection: the ProxyCommand is this test
// binary as a relay that counts the bytes it carries; a download of 4 MiB
// through it moves at least 4 MiB through the relay, the target's
// connection comes from the relay's process, and the relay ends with the
// transfer. SIGUSR2 in the middle of a second, slower download
// reconnects through a second run of the ProxyCommand, and the session
// resumes.
func TestE2EProxyCommandCarriesTheConnection(t *testing.T) {
	r := newJumpRig(t)
	const size = 4 << 20
	data := e2eRandFile(t, filepath.Join(r.root, "f.bin"), size)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	counts := filepath.Join(r.dir, "relay-counts")
	r.host("target", "HostName 127.0.0.1", fmt.Sprintf("Port %d", r.target.port),
		fmt.Sprintf("ProxyCommand env RSFTP_TEST_RELAY=%s %s %%h %%p", counts, self))
	r.write(t)
	local := filepath.Join(r.dir, "got.bin")
	if res := e2eRun(t, "get", "-F", r.config, "-q", "target:f.bin", local); res.code != 0 {
		t.Fatalf("get through ProxyCommand: exit %d\n%s", res.code, res.stderr)
	}
	if got, _ := os.ReadFile(local); !bytes.Equal(got, data) {
		t.Fatal("the file fetched through the ProxyCommand differs")
	}
	var runs [][2]int64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if runs = relayRuns(t, counts); len(runs) > 0 {
			break
		}
	}
	if len(runs) != 1 || runs[0][1] < size || runs[0][0] == 0 {
		t.Fatalf("relay runs %v: want one that carried at least %d bytes down", runs, size)
	}
	ps := r.target.accepted()
	if len(ps) != 1 || (ps[0].pid != -1 && (ps[0].comm == "rsftp" || ps[0].pid == os.Getpid())) {
		t.Fatalf("the target's connection came from %v, not from the relay", ps)
	}
	t.Logf("relay carried %d bytes up and %d down for a %d-byte file; connection from %v", runs[0][0], runs[0][1], size, ps)

	// A plain session (--no-resume) names the server, not the socket
	// pair, in its events.
	plainEvents := filepath.Join(r.dir, "plain-events")
	if res := e2eRun(t, "ls", "-F", r.config, "--no-resume", "--events", plainEvents, "target:"); res.code != 0 || !strings.Contains(res.stdout, "f.bin") {
		t.Fatalf("ls --no-resume through ProxyCommand: exit %d\n%s", res.code, res.stderr)
	}
	if ev := readEvents(t, plainEvents); len(ev) == 0 || ev[0]["remote"] != fmt.Sprintf("127.0.0.1:%d", r.target.port) {
		t.Errorf("events of a plain session through a ProxyCommand: %v", ev)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && len(relayRuns(t, counts)) < 2; {
		time.Sleep(20 * time.Millisecond) // the ls's relay has written its line
	}

	// A reconnection runs the ProxyCommand again.
	os.Remove(counts)
	const big = 24 << 20
	e2eRandFile(t, filepath.Join(r.root, "big.bin"), big)
	events := filepath.Join(r.dir, "events")
	args := []string{"get", "-F", r.config, "-q", "--events", events, "target:big.bin", filepath.Join(r.dir, "big.bin")}
	cmd := exec.Command(e2eTool(t), args...)
	cmd.Env = append(e2eEnv(t), "RSFTP_TEST_RELAY_BPS="+strconv.Itoa(32<<20))
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if waitSize(filepath.Join(r.dir, "big.bin"), big/4, 30*time.Second) {
		signalReconnect(cmd.Process)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("rsftp get: %v\n%s", err, errb.String())
	}
	e2eSame(t, filepath.Join(r.root, "big.bin"), filepath.Join(r.dir, "big.bin"))
	ev := readEvents(t, events)
	if countEvents(ev, "resumed") < 1 {
		t.Fatalf("no resumption: %v", ev)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if runs = relayRuns(t, counts); len(runs) >= 2 {
			break
		}
	}
	if len(runs) < 2 {
		t.Fatalf("relay runs %v: a reconnection must run the ProxyCommand again", runs)
	}
	for _, p := range r.target.accepted() {
		if p.comm == "rsftp" {
			t.Errorf("a connection to the target came from rsftp itself: %v", r.target.accepted())
		}
	}
	t.Logf("relay runs (up, down): %v", runs)
}

// cutRelay is a TCP relay in front of a jump host, whose connections the
// test can cut at once (a lost link), with an optional rate limit on what
// comes back.
type cutRelay struct {
	port  int
	mu    sync.Mutex
	conns []net.Conn
	n     int
}

func startCutRelay(t *testing.T, to int, bps int) *cutRelay {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	r := &cutRelay{port: l.Addr().(*net.TCPAddr).Port}
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
			r.mu.Lock()
			r.conns = append(r.conns, c, s)
			r.n++
			r.mu.Unlock()
			go func() { io.Copy(s, c); s.Close() }()
			go func() {
				buf := make([]byte, 32<<10)
				var down int64
				start := time.Now()
				for {
					n, err := s.Read(buf)
					if n > 0 {
						if _, err := c.Write(buf[:n]); err != nil {
							break
						}
						down += int64(n)
						if ahead := time.Duration(float64(down)/float64(bps)*float64(time.Second)) - time.Since(start); bps > 0 && ahead > 0 {
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

// cut closes every connection so far, both sides.
func (r *cutRelay) cut() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.Close()
	}
	r.conns = nil
}

func (r *cutRelay) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// TestE2EProxyJumpResumeAfterCut: a download through a jump host whose
// link is cut in the middle (a relay between rsftp and the jump host
// closes both sides): the session resumes through a new connection to the
// jump host and a new direct-tcpip channel, never directly, and the file
// is whole.
func TestE2EProxyJumpResumeAfterCut(t *testing.T) {
	r := newJumpRig(t)
	const size = 48 << 20
	e2eRandFile(t, filepath.Join(r.root, "big.bin"), size)
	j := startTestServer(t, t.TempDir(), r.key+".pub", true)
	r.trust(t, j.khLine)
	relay := startCutRelay(t, j.port, 32<<20)
	// The jump host is reached through the relay; its known_hosts name
	// is the relay's address, so it is trusted under that too.
	f := strings.Fields(j.khLine)
	r.trust(t, fmt.Sprintf("[127.0.0.1]:%d %s %s\n", relay.port, f[1], f[2]))
	r.host("jump", "HostName 127.0.0.1", fmt.Sprintf("Port %d", relay.port))
	r.host("target", "HostName 127.0.0.1", fmt.Sprintf("Port %d", r.target.port), "ProxyJump jump")
	r.write(t)

	local := filepath.Join(r.dir, "big.bin")
	events := filepath.Join(r.dir, "events")
	cmd := exec.Command(e2eTool(t), "get", "-F", r.config, "-q", "--events", events, "target:big.bin", local)
	cmd.Env = e2eEnv(t)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cut := false
	if waitSize(local, size/4, 60*time.Second) {
		relay.cut()
		cut = true
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("rsftp get: %v\n%s", err, errb.String())
	}
	if !cut {
		t.Fatal("the transfer ended before a quarter arrived")
	}
	e2eSame(t, filepath.Join(r.root, "big.bin"), local)
	ev := readEvents(t, events)
	if countEvents(ev, "link_lost") < 1 || countEvents(ev, "resumed") < 1 {
		t.Fatalf("no loss and resumption after the cut: %v", ev)
	}
	if relay.count() < 2 || len(j.forwards()) < 2 {
		t.Fatalf("after the cut: %d connections to the jump host, %d direct-tcpip requests; want a new one of each", relay.count(), len(j.forwards()))
	}
	checkThroughJump(t, r.target, os.Getpid(), "", 2)
	for _, e := range ev {
		if e["event"] == "link_lost" || e["event"] == "resumed" {
			t.Logf("client %v: %v", e["event"], e)
		}
	}
	t.Logf("connections to the jump host %d, direct-tcpip requests %v, target accepted %v", relay.count(), j.forwards(), r.target.accepted())
}

// TestProxyCommandEnds: a ProxyCommand's standard input and output are
// the connection (cat echoes what is written); closing the connection
// ends the command with SIGHUP and reaps it, and one that ignores SIGHUP
// is killed after commandLinger.
func TestProxyCommandEnds(t *testing.T) {
	nc, err := dialCommand("cat")
	if err != nil {
		t.Fatal(err)
	}
	nc.Write([]byte("hello"))
	buf := make([]byte, 5)
	if _, err := io.ReadFull(nc, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("read %q %v", buf, err)
	}
	cc := nc.(*commandConn)
	nc.Close()
	select {
	case <-cc.done:
	case <-time.After(commandLinger / 2):
		t.Fatal("cat still running after its connection closed")
	}
	nc, err = dialCommand(`sh -c 'trap "" HUP; echo trapped; while :; do sleep 0.05; done'`)
	if err != nil {
		t.Fatal(err)
	}
	cc = nc.(*commandConn)
	// The command says when its trap is set: a fixed pause (300 ms
	// here once) was too short on a loaded machine, and the hang-up
	// then ended the shell at once.
	nc.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf = make([]byte, len("trapped\n"))
	if _, err := io.ReadFull(nc, buf); err != nil || string(buf) != "trapped\n" {
		t.Fatalf("the command's first line: %q %v", buf, err)
	}
	start := time.Now()
	nc.Close()
	select {
	case <-cc.done:
		if time.Since(start) < commandLinger/2 {
			t.Errorf("a command that ignores SIGHUP ended after %v", time.Since(start))
		}
	case <-time.After(2 * commandLinger):
		t.Fatal("a command that ignores SIGHUP was not killed")
	}
	// A command that fails says so in the error.
	rt := &route{command: `sh -c "echo proxy failing >&2; exit 3"`, log: &logger{}}
	if _, err := rt.connect(t.Context(), "127.0.0.1:22", &rsftp.ClientConfig{HostKeyCallback: func(string, int, kex.PublicKey) error { return nil }}); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("failing ProxyCommand: %v", err)
	}
}

// TestE2EHostKeyAlias: with HostKeyAlias, known_hosts is searched for the
// alias (without the port), not for the host name and port; a key known
// only under the real name then does not pass.
func TestE2EHostKeyAlias(t *testing.T) {
	r := newJumpRig(t)
	os.WriteFile(filepath.Join(r.root, "f"), []byte("x"), 0o644)
	f := strings.Fields(r.target.khLine)
	aliased := filepath.Join(r.dir, "aliased_known_hosts")
	os.WriteFile(aliased, []byte("storage-alias "+f[1]+" "+f[2]+"\n"), 0o600)
	port := fmt.Sprintf("Port %d", r.target.port)
	r.host("aliased", "HostName 127.0.0.1", port, "HostKeyAlias storage-alias", "UserKnownHostsFile "+aliased)
	r.host("unaliased", "HostName 127.0.0.1", port, "UserKnownHostsFile "+aliased)
	r.host("wrong-alias", "HostName 127.0.0.1", port, "HostKeyAlias other-alias")
	r.write(t)
	if res := e2eRun(t, "ls", "-F", r.config, "aliased:"); res.code != 0 || !strings.Contains(res.stdout, "f") {
		t.Fatalf("HostKeyAlias: exit %d\n%s", res.code, res.stderr)
	}
	for _, h := range []string{"unaliased", "wrong-alias"} {
		if res := e2eRun(t, "ls", "-F", r.config, h+":"); res.code == 0 || !strings.Contains(res.stderr, "Host key verification failed") {
			t.Errorf("%s: exit %d\n%s", h, res.code, res.stderr)
		}
	}
}

// TestE2EBindAddressAndAddressFamily: BindAddress sets the source address
// of the connection; AddressFamily inet6 refuses an IPv4 host name.
func TestE2EBindAddressAndAddressFamily(t *testing.T) {
	r := newJumpRig(t)
	port := fmt.Sprintf("Port %d", r.target.port)
	r.host("bound", "HostName 127.0.0.1", port, "BindAddress 127.0.0.2")
	r.host("v6only", "HostName 127.0.0.1", port, "AddressFamily inet6")
	r.write(t)
	if res := e2eRun(t, "ls", "-F", r.config, "bound:"); res.code != 0 {
		t.Fatalf("BindAddress: exit %d\n%s", res.code, res.stderr)
	}
	if ps := r.target.accepted(); len(ps) != 1 || !strings.HasPrefix(ps[0].addr, "127.0.0.2:") {
		t.Fatalf("BindAddress 127.0.0.2: the server saw %v", ps)
	}
	if res := e2eRun(t, "ls", "-F", r.config, "v6only:"); res.code == 0 || len(r.target.accepted()) != 1 {
		t.Fatalf("AddressFamily inet6 to 127.0.0.1: exit %d, accepted %v\n%s", res.code, r.target.accepted(), res.stderr)
	}
}

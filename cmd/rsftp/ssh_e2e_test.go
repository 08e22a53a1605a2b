package main

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/agenttest"
	"github.com/rsftp/rsftp/internal/sshtest"
	"github.com/rsftp/rsftp/kex"
)

// rsftp ssh run as a program against Debian's sshd (plain SSH, as
// OpenSSH's ssh would be) and against an rsftp server: commands, exit
// statuses, stdin and stdout, and the forwards.

// sshTarget is a server rsftp ssh logs in to: its options for the tool.
type sshTarget struct {
	key, kh string
	port    int
	user    string
}

func (s *sshTarget) args(extra ...string) []string {
	// ResumeHelper=no: against sshd these tests are of plain SSH, as
	// with OpenSSH's client (the helper's own are helper_e2e_test.go's);
	// against rsftp serve it changes nothing (the extension is in band).
	a := []string{"ssh", "-F", "none", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + s.kh, "-i", s.key, "-p", strconv.Itoa(s.port), "-o", "ResumeHelper=no"}
	if s.user != "" {
		a = append(a, "-l", s.user)
	}
	return append(a, extra...)
}

// newSshdTarget starts a private sshd trusting a new key.
func newSshdTarget(t *testing.T, extra ...string) *sshTarget {
	dir := t.TempDir()
	key := sshtest.KeyGen(t, dir, "ed25519", 0)
	pub, _ := os.ReadFile(key + ".pub")
	sshd := sshtest.StartSshd(t, string(pub), extra...)
	hk, _ := os.ReadFile(sshd.HostKey + ".pub")
	f := strings.Fields(string(hk))
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, []byte(fmt.Sprintf("[127.0.0.1]:%d %s %s\n", sshd.Port, f[0], f[1])), 0o600)
	return &sshTarget{key: key, kh: kh, port: sshd.Port, user: sshtest.User(t)}
}

// runSSHTool runs rsftp with args, stdin as given.
func runSSHTool(t *testing.T, stdin string, env []string, args ...string) e2eResult {
	t.Helper()
	cmd := exec.Command(e2eTool(t), args...)
	cmd.Env = append(e2eEnv(t), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running rsftp: %v", err)
	}
	return e2eResult{out.String(), errb.String(), code}
}

// echoServer answers every connection with what it reads.
func echoServer(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// checkEcho sends n random bytes through c and checks that they come
// back, in order; then the half close must come back as EOF.
func checkEcho(t *testing.T, c net.Conn, n int) {
	t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	go func() {
		c.Write(data)
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
	}()
	c.SetReadDeadline(time.Now().Add(60 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the echo: %v (after %d bytes)", err, len(got))
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("echo: %d bytes back of %d, equal %v", len(got), n, bytes.Equal(got, data[:min(len(got), n)]))
	}
}

// dialWhenUp dials addr until it accepts (the forward is set up after
// the login).
func dialWhenUp(t *testing.T, network, addr string, cmd *exec.Cmd, stderr *lockedBuffer) net.Conn {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.Dial(network, addr)
		if err == nil {
			return c
		}
		if time.Now().After(deadline) || (cmd.ProcessState != nil) {
			t.Fatalf("%s never accepted: %v\n%s", addr, err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startSSHTool starts rsftp ssh in the background (forwards), ended when
// the test ends.
func startSSHTool(t *testing.T, env []string, args ...string) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	cmd := exec.Command(e2eTool(t), args...)
	cmd.Env = append(e2eEnv(t), env...)
	errb := &lockedBuffer{}
	cmd.Stderr = errb
	cmd.Stdout = errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("rsftp ssh's output:\n%s", errb.String())
		}
	})
	return cmd, errb
}

// TestE2ESSHCommandsAgainstSshd: commands through rsftp ssh to OpenSSH's
// sshd, as with OpenSSH's ssh: stdout and stderr apart, stdin passed on
// with its EOF, the remote exit status as rsftp's, 255 for a command
// killed by a signal (ssh's), env with SendEnv (a "-pattern" takes back
// the patterns it matches, as ssh's rm_env) and SetEnv, -n, -s.
func TestE2ESSHCommandsAgainstSshd(t *testing.T) {
	tg := newSshdTarget(t)
	r := runSSHTool(t, "", nil, tg.args("127.0.0.1", "echo out; echo err >&2; exit 7")...)
	if r.code != 7 || r.stdout != "out\n" || !strings.Contains(r.stderr, "err\n") {
		t.Fatalf("exit 7: code %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stderr, "Pseudo-terminal") {
		t.Fatalf("a command without -t warned about the terminal: %q", r.stderr)
	}
	// Words after the host are the command, joined by spaces as ssh
	// does; options after the host are options.
	r = runSSHTool(t, "", nil, tg.args("127.0.0.1", "-q", "echo", "a", "b")...)
	if r.code != 0 || r.stdout != "a b\n" {
		t.Fatalf("command words: code %d %q %q", r.code, r.stdout, r.stderr)
	}
	stdin := strings.Repeat("0123456789abcdef", 1<<14) // 256 KiB
	r = runSSHTool(t, stdin, nil, tg.args("127.0.0.1", "cat; echo done")...)
	if r.code != 0 || r.stdout != stdin+"done\n" {
		t.Fatalf("stdin through cat: code %d, %d bytes out, stderr %q", r.code, len(r.stdout), r.stderr)
	}
	r = runSSHTool(t, "never read", nil, tg.args("-n", "127.0.0.1", "cat; echo after")...)
	if r.code != 0 || r.stdout != "after\n" {
		t.Fatalf("-n: code %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = runSSHTool(t, "", nil, tg.args("127.0.0.1", "kill -TERM $$")...)
	if r.code != 255 {
		t.Fatalf("a command killed by SIGTERM: exit %d (ssh's is 255) %q", r.code, r.stderr)
	}
	r = runSSHTool(t, "", []string{"RSFTP_SENT=yes", "RSFTP_NOT=no"},
		tg.args("-o", "SendEnv=RSFTP_SENT RSFTP_NOT", "-o", "SendEnv=-RSFTP_N*", "-o", "SetEnv=LANG=C.UTF-8", "127.0.0.1", "echo $RSFTP_SENT/$RSFTP_NOT/$LANG")...)
	if r.code != 0 || r.stdout != "yes//C.UTF-8\n" {
		t.Fatalf("SendEnv, SetEnv: code %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = runSSHTool(t, "", nil, tg.args("-t", "127.0.0.1", "true")...)
	if r.code != 0 || !strings.Contains(r.stderr, "Pseudo-terminal will not be allocated because stdin is not a terminal.") {
		t.Fatalf("-t without a terminal: code %d %q", r.code, r.stderr)
	}
	// -tt: a pty even so, and nothing here to put in raw mode.
	r = runSSHTool(t, "", nil, tg.args("-tt", "127.0.0.1", "tty")...)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "/dev/pts/") || strings.Contains(r.stderr, "raw mode") {
		t.Fatalf("-tt without a terminal: code %d %q %q", r.code, r.stdout, r.stderr)
	}
	// A subsystem: sftp-server's VERSION in answer to an INIT (stdin
	// stays open until it came: sftp-server, as with ssh, ends at EOF
	// without answering what it had not read yet).
	sub := exec.Command(e2eTool(t), tg.args("-s", "127.0.0.1", "sftp")...)
	sub.Env = e2eEnv(t)
	subIn, _ := sub.StdinPipe()
	subOut, _ := sub.StdoutPipe()
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	subIn.Write([]byte{0, 0, 0, 5, 1, 0, 0, 0, 3})
	var version [9]byte
	if _, err := io.ReadFull(subOut, version[:]); err != nil || version[4] != 2 {
		t.Fatalf("-s sftp: %v %q", err, version)
	}
	subIn.Close()
	io.Copy(io.Discard, subOut)
	if err := sub.Wait(); err != nil {
		t.Fatalf("-s sftp: %v", err)
	}
	// ssh's own failures are 255.
	bad := *tg
	bad.port = e2eFreePort(t)
	if r := runSSHTool(t, "", nil, bad.args("127.0.0.1", "true")...); r.code != 255 || !strings.Contains(r.stderr, "rsftp ssh: ") {
		t.Fatalf("no server: exit %d %q", r.code, r.stderr)
	}
	if r := runSSHTool(t, "", nil, "ssh", "-L", "nonsense", "127.0.0.1"); r.code != 255 || !strings.Contains(r.stderr, "bad local forwarding specification") {
		t.Fatalf("bad -L: exit %d %q", r.code, r.stderr)
	}
}

// TestE2ESSHForwardsAgainstSshd: -L, -D (SOCKS5 and SOCKS4a), -R and -W
// through OpenSSH's sshd, each carrying a stream that checks its bytes,
// and -A: ssh-add -l on the server lists the agent's key through the
// forwarded agent.
func TestE2ESSHForwardsAgainstSshd(t *testing.T) {
	tg := newSshdTarget(t)
	echo := echoServer(t)
	lport, dport, rport := e2eFreePort(t), e2eFreePort(t), e2eFreePort(t)
	cmd, errb := startSSHTool(t, nil, tg.args(
		"-L", fmt.Sprintf("%d:127.0.0.1:%d", lport, echo),
		"-D", fmt.Sprintf("127.0.0.1:%d", dport),
		"-R", fmt.Sprintf("%d:127.0.0.1:%d", rport, echo),
		"-N", "127.0.0.1")...)

	c := dialWhenUp(t, "tcp", fmt.Sprintf("127.0.0.1:%d", lport), cmd, errb)
	checkEcho(t, c, 1<<20)
	c.Close()

	c = dialWhenUp(t, "tcp", fmt.Sprintf("127.0.0.1:%d", dport), cmd, errb)
	socks5Connect(t, c, "127.0.0.1", echo)
	checkEcho(t, c, 200<<10)
	c.Close()
	c = dialWhenUp(t, "tcp", fmt.Sprintf("127.0.0.1:%d", dport), cmd, errb)
	socks4aConnect(t, c, "localhost", echo)
	checkEcho(t, c, 1000)
	c.Close()

	c = dialWhenUp(t, "tcp", fmt.Sprintf("127.0.0.1:%d", rport), cmd, errb)
	checkEcho(t, c, 300<<10)
	c.Close()

	// -W: stdin and stdout to the echo server.
	r := runSSHTool(t, "through -W\n", nil, tg.args("-W", fmt.Sprintf("127.0.0.1:%d", echo), "127.0.0.1")...)
	if r.code != 0 || r.stdout != "through -W\n" {
		t.Fatalf("-W: exit %d %q %q", r.code, r.stdout, r.stderr)
	}

	// -A: the agent's key, listed on the server.
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
	r = runSSHTool(t, "", []string{"SSH_AUTH_SOCK=" + sock}, tg.args("-A", "127.0.0.1", "ssh-add -l")...)
	if r.code != 0 || !strings.Contains(r.stdout, kex.FingerprintSHA256(signer.PublicKey())) {
		t.Fatalf("ssh-add -l through -A: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = runSSHTool(t, "", []string{"SSH_AUTH_SOCK=" + sock}, tg.args("127.0.0.1", "ssh-add -l")...)
	if r.code == 0 {
		t.Fatalf("ssh-add -l without -A found an agent: %q", r.stdout)
	}
}

// socks5Connect asks a SOCKS5 proxy on c for host:port.
func socks5Connect(t *testing.T, c net.Conn, host string, port int) {
	t.Helper()
	c.Write([]byte{5, 1, 0})
	var sel [2]byte
	if _, err := io.ReadFull(c, sel[:]); err != nil || sel != [2]byte{5, 0} {
		t.Fatalf("SOCKS5 method selection: %v %v", sel, err)
	}
	req := []byte{5, 1, 0, 3, byte(len(host))}
	req = append(req, host...)
	req = binary.BigEndian.AppendUint16(req, uint16(port))
	c.Write(req)
	var rep [10]byte
	if _, err := io.ReadFull(c, rep[:]); err != nil || rep[1] != 0 {
		t.Fatalf("SOCKS5 reply: %v %v", rep, err)
	}
}

// socks4aConnect asks a SOCKS4a proxy on c for host:port.
func socks4aConnect(t *testing.T, c net.Conn, host string, port int) {
	t.Helper()
	req := []byte{4, 1}
	req = binary.BigEndian.AppendUint16(req, uint16(port))
	req = append(req, 0, 0, 0, 1)
	req = append(req, "me\x00"...)
	req = append(req, host+"\x00"...)
	c.Write(req)
	var rep [8]byte
	if _, err := io.ReadFull(c, rep[:]); err != nil || rep[1] != 0x5a {
		t.Fatalf("SOCKS4a reply: %v %v", rep, err)
	}
}

// TestE2ESSHHelp: rsftp ssh -h and --help print the usage on stdout and
// exit 0; a mistake on the command line is 255 with one line, as ssh.
func TestE2ESSHHelp(t *testing.T) {
	for _, h := range []string{"-h", "--help"} {
		r := e2eRun(t, "ssh", h)
		if r.code != 0 || r.stderr != "" || !strings.HasPrefix(r.stdout, "usage: rsftp ssh") {
			t.Errorf("rsftp ssh %s: exit %d, stderr %q, stdout %.80q", h, r.code, r.stderr, r.stdout)
		}
	}
	r := e2eRun(t, "ssh", "-p", "x", "host")
	if r.code != 255 || strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, `Bad port "x"`) {
		t.Errorf("rsftp ssh -p x: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestE2ESSHForwardFailure: a -L whose port is taken is a warning, and
// the command runs; with ExitOnForwardFailure it is the end (255), as
// is a -R the server refuses.
func TestE2ESSHForwardFailure(t *testing.T) {
	tg := newSshdTarget(t, "PermitListen 127.0.0.1:1")
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	port := taken.Addr().(*net.TCPAddr).Port
	spec := fmt.Sprintf("127.0.0.1:%d:127.0.0.1:22", port)
	r := runSSHTool(t, "", nil, tg.args("-L", spec, "127.0.0.1", "echo ran")...)
	if r.code != 0 || r.stdout != "ran\n" || !strings.Contains(r.stderr, "address already in use") {
		t.Fatalf("a taken port: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = runSSHTool(t, "", nil, tg.args("-o", "ExitOnForwardFailure=yes", "-L", spec, "127.0.0.1", "echo ran")...)
	if r.code != 255 || r.stdout != "" || !strings.Contains(r.stderr, "ExitOnForwardFailure") {
		t.Fatalf("a taken port with ExitOnForwardFailure: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = runSSHTool(t, "", nil, tg.args("-o", "ExitOnForwardFailure=yes", "-R", fmt.Sprintf("%d:127.0.0.1:22", e2eFreePort(t)), "127.0.0.1", "echo ran")...)
	if r.code != 255 || r.stdout != "" || !strings.Contains(r.stderr, "the server refused") {
		t.Fatalf("a -R sshd refuses, with ExitOnForwardFailure: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
}

// TestE2ESSHUnixForwardsAgainstSshd: the Unix socket forms of -L and -R
// through OpenSSH's sshd, each carrying a stream checked byte for byte:
// a local socket to a TCP port, a TCP port to a socket on the server's
// side, and a socket on the server's side to a local TCP port.
func TestE2ESSHUnixForwardsAgainstSshd(t *testing.T) {
	tg := newSshdTarget(t)
	echo := echoServer(t)
	dir, err := os.MkdirTemp("", "fwd")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	unixEcho := filepath.Join(dir, "echo.sock")
	ul, err := net.Listen("unix", unixEcho)
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	go func() {
		for {
			c, err := ul.Accept()
			if err != nil {
				return
			}
			go func() {
				io.Copy(c, c)
				c.Close()
			}()
		}
	}()
	lsock, rsock := filepath.Join(dir, "l.sock"), filepath.Join(dir, "r.sock")
	lport := e2eFreePort(t)
	cmd, errb := startSSHTool(t, nil, tg.args(
		"-L", fmt.Sprintf("%s:127.0.0.1:%d", lsock, echo),
		"-L", fmt.Sprintf("%d:%s", lport, unixEcho),
		"-R", fmt.Sprintf("%s:127.0.0.1:%d", rsock, echo),
		"-N", "127.0.0.1")...)
	c := dialWhenUp(t, "unix", lsock, cmd, errb)
	checkEcho(t, c, 300<<10)
	c.Close()
	c = dialWhenUp(t, "tcp", fmt.Sprintf("127.0.0.1:%d", lport), cmd, errb)
	checkEcho(t, c, 300<<10)
	c.Close()
	c = dialWhenUp(t, "unix", rsock, cmd, errb)
	checkEcho(t, c, 300<<10)
	c.Close()
}

// TestE2ESSHThroughJump: rsftp ssh -J reaches the target only through
// the jump host (the same way as the file commands: proxy.go), here with
// -W to an echo server the target connects to.
func TestE2ESSHThroughJump(t *testing.T) {
	r := newJumpRig(t)
	j1 := startTestServer(t, t.TempDir(), r.key+".pub", true)
	target := startTestServer(t, t.TempDir(), r.key+".pub", true)
	r.trust(t, j1.khLine)
	r.trust(t, target.khLine)
	r.host("j1", "HostName 127.0.0.1", fmt.Sprintf("Port %d", j1.port))
	r.host("tgt", "HostName 127.0.0.1", fmt.Sprintf("Port %d", target.port))
	r.write(t)
	echo := echoServer(t)
	res := runSSHTool(t, "through the jump host\n", nil, "ssh", "-F", r.config, "-J", "j1", "-W", fmt.Sprintf("127.0.0.1:%d", echo), "tgt")
	if res.code != 0 || res.stdout != "through the jump host\n" {
		t.Fatalf("-J j1 -W: exit %d %q %q", res.code, res.stdout, res.stderr)
	}
	checkThroughJump(t, target, os.Getpid(), "", 1)
}

// TestE2ESSHRemoteDynamicAgainstSshd: -R with a port alone is a SOCKS
// proxy on the server's side: sshd listens, and rsftp ssh reads each
// connection's SOCKS request and connects from here (ssh's remote
// dynamic forwarding).
func TestE2ESSHRemoteDynamicAgainstSshd(t *testing.T) {
	tg := newSshdTarget(t)
	echo := echoServer(t)
	rport := e2eFreePort(t)
	cmd, errb := startSSHTool(t, nil, tg.args("-R", strconv.Itoa(rport), "-N", "127.0.0.1")...)
	c := dialWhenUp(t, "tcp", fmt.Sprintf("127.0.0.1:%d", rport), cmd, errb)
	socks5Connect(t, c, "127.0.0.1", echo)
	checkEcho(t, c, 200<<10)
	c.Close()
	c = dialWhenUp(t, "tcp", fmt.Sprintf("127.0.0.1:%d", rport), cmd, errb)
	socks4aConnect(t, c, "localhost", echo)
	checkEcho(t, c, 1000)
	c.Close()
}

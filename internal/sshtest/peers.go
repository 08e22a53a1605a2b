package sshtest

import (
	"bufio"
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// missing skips the test because a peer is not installed, or fails it
// under CI=true, where .ci/run installs every peer.
func missing(t testing.TB, what, pkg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required under CI=true but was not found (Debian package %s)", what, pkg)
	}
	t.Skipf("%s not found (Debian package %s); skipping interop test", what, pkg)
}

// AsyncSSHPython returns the path of a Python interpreter that can import
// asyncssh: Debian's /usr/bin/python3 with python3-asyncssh. The python3
// first on PATH may be another interpreter (a pyenv shim) that lacks it,
// so only /usr/bin/python3 is tried. It skips the test where asyncssh is
// missing (fails it under CI=true).
func AsyncSSHPython(t testing.TB) string {
	t.Helper()
	const py = "/usr/bin/python3"
	if _, err := os.Stat(py); err == nil {
		cmd := exec.Command(py, "-W", "ignore", "-c", "import asyncssh")
		if err := cmd.Run(); err == nil {
			return py
		}
	}
	missing(t, "asyncssh for "+py, "python3-asyncssh")
	return ""
}

// DropbearBinary returns the path of one of dropbear's programs
// (dropbear, dbclient, dropbearkey), skipping the test if it is missing
// (failing it under CI=true).
func DropbearBinary(t testing.TB, name string) string {
	t.Helper()
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	missing(t, "dropbear's "+name, "dropbear-bin")
	return ""
}

// DropbearSFTPServer is the program dropbear runs for the sftp subsystem
// (its SFTPSERVER_PATH, compiled in): Debian's openssh-sftp-server links
// it to OpenSSH's sftp-server. It skips the test if it is missing (fails
// it under CI=true).
func DropbearSFTPServer(t testing.TB) string {
	t.Helper()
	const p = "/usr/lib/sftp-server"
	if _, err := os.Stat(p); err != nil {
		missing(t, p+" (dropbear's sftp subsystem)", "openssh-sftp-server")
	}
	return p
}

// NSSWrapper returns the path of libnss_wrapper.so, skipping the test if
// it is missing (failing it under CI=true).
func NSSWrapper(t testing.TB) string {
	t.Helper()
	for _, p := range []string{
		"/usr/lib/x86_64-linux-gnu/libnss_wrapper.so", "/usr/lib/aarch64-linux-gnu/libnss_wrapper.so",
		"/usr/lib64/libnss_wrapper.so", "/usr/lib/libnss_wrapper.so", "/usr/local/lib/libnss_wrapper.so",
	} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if m, _ := filepath.Glob("/usr/lib/*/libnss_wrapper.so"); len(m) > 0 {
		return m[0]
	}
	missing(t, "libnss_wrapper.so", "libnss-wrapper")
	return ""
}

// Dropbear is a running dropbear server.
type Dropbear struct {
	Port int
	// Home is the home directory dropbear sees for the current user:
	// .ssh/authorized_keys is there, and commands start there.
	Home string
	// HostKey is the host's public key in authorized_keys format.
	HostKey string
	cmd     *exec.Cmd
	log     *bytes.Buffer
}

// Addr is host:port of the server.
func (d *Dropbear) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(d.Port)) }

// Log returns what dropbear printed so far.
func (d *Dropbear) Log() string {
	mu.Lock()
	defer mu.Unlock()
	return d.log.String()
}

// StartDropbear runs dropbear in the foreground on loopback with a fresh
// ed25519 host key of its own format, letting in the given
// authorized_keys contents for the current user. It is stopped when the
// test ends.
//
// dropbear reads ~/.ssh/authorized_keys from the home directory of the
// user's passwd entry, not from $HOME, and has no option naming another
// file: as root (in CI) that would be /root. So dropbear runs under
// nss_wrapper (Debian's libnss-wrapper), with a passwd file of its own
// that gives the current user a temporary home: nothing outside the
// test's directories is read or written. Its sftp subsystem runs
// DropbearSFTPServer.
func StartDropbear(t testing.TB, authorizedKeys string, extra ...string) *Dropbear {
	t.Helper()
	bin := DropbearBinary(t, "dropbear")
	keygen := DropbearBinary(t, "dropbearkey")
	wrapper := NSSWrapper(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".ssh", "authorized_keys"), []byte(authorizedKeys), 0o600); err != nil {
		t.Fatal(err)
	}
	hk := filepath.Join(dir, "host_key")
	if out, err := exec.Command(keygen, "-t", "ed25519", "-f", hk).CombinedOutput(); err != nil {
		t.Fatalf("dropbearkey: %v\n%s", err, out)
	}
	out, err := exec.Command(keygen, "-y", "-f", hk).Output()
	if err != nil {
		t.Fatalf("dropbearkey -y: %v", err)
	}
	var pub string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "ssh-ed25519 ") {
			pub = strings.TrimSpace(l)
		}
	}
	if pub == "" {
		t.Fatalf("no public key in dropbearkey -y output:\n%s", out)
	}

	user := User(t)
	uid, gid := os.Getuid(), os.Getgid()
	passwd := filepath.Join(dir, "passwd")
	group := filepath.Join(dir, "group")
	pw := user + ":x:" + strconv.Itoa(uid) + ":" + strconv.Itoa(gid) + ":" + user + ":" + home + ":/bin/sh\n"
	if err := os.WriteFile(passwd, []byte(pw), 0o644); err != nil {
		t.Fatal(err)
	}
	grp := user + ":x:" + strconv.Itoa(gid) + ":\n"
	if err := os.WriteFile(group, []byte(grp), 0o644); err != nil {
		t.Fatal(err)
	}

	port := FreePort(t)
	args := append([]string{"-F", "-E", "-s", "-p", "127.0.0.1:" + strconv.Itoa(port), "-r", hk,
		"-P", filepath.Join(dir, "pid")}, extra...)
	log := new(bytes.Buffer)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "LD_PRELOAD="+wrapper, "NSS_WRAPPER_PASSWD="+passwd, "NSS_WRAPPER_GROUP="+group)
	cmd.Stderr = &syncWriter{b: log}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting dropbear: %v", err)
	}
	d := &Dropbear{Port: port, Home: home, HostKey: pub, cmd: cmd, log: log}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("dropbear log:\n%s", d.Log())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", d.Addr(), time.Second)
		if err == nil {
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			bufio.NewReader(c).ReadString('\n')
			c.Close()
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("dropbear did not start listening on %s: %v\n%s", d.Addr(), err, d.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

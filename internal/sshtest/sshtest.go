// Package sshtest starts OpenSSH peers (sshd, ssh, ssh-keygen) for
// interoperability tests, and finds the others (peers.go): asyncssh for
// Debian's python3, and dropbear, which StartDropbear runs. Where a
// binary is missing, tests skip, except under CI (CI=true), where a
// missing peer fails the run; .ci/run installs them all.
package sshtest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Binary returns the path of an OpenSSH program, skipping the test if it is
// missing (failing it under CI=true).
func Binary(t testing.TB, name string) string {
	t.Helper()
	for _, dir := range []string{"/usr/bin", "/usr/sbin", "/usr/lib/openssh", "/usr/libexec/openssh", "/usr/local/bin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("OpenSSH %s is required under CI=true but was not found", name)
	}
	t.Skipf("OpenSSH %s not found; skipping interop test", name)
	return ""
}

// KeyGen makes a key pair with ssh-keygen in dir and returns the private
// key path (the public key is path + ".pub").
func KeyGen(t testing.TB, dir, keyType string, bits int) string {
	t.Helper()
	kg := Binary(t, "ssh-keygen")
	path := filepath.Join(dir, "id_"+keyType+strconv.Itoa(bits))
	args := []string{"-q", "-t", keyType, "-N", "", "-C", "test-" + keyType, "-f", path}
	if bits > 0 {
		args = append(args, "-b", strconv.Itoa(bits))
	}
	if out, err := exec.Command(kg, args...).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen %v: %v\n%s", args, err, out)
	}
	return path
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Sshd is a running OpenSSH server.
type Sshd struct {
	Port    int
	Dir     string
	HostKey string // private host key path
	cmd     *exec.Cmd
	log     *bytes.Buffer
}

// Addr is host:port of the server.
func (s *Sshd) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// Log returns what sshd printed so far.
func (s *Sshd) Log() string {
	mu.Lock()
	defer mu.Unlock()
	return s.log.String()
}

// StartSshd runs sshd -D -e on loopback with a config of its own: the
// given authorized_keys contents, a fresh ed25519 host key, and extra
// config lines. It is stopped when the test ends.
func StartSshd(t testing.TB, authorizedKeys string, extra ...string) *Sshd {
	t.Helper()
	Binary(t, "sshd")
	return StartSshdWithHostKey(t, KeyGen(t, t.TempDir(), "ed25519", 0), authorizedKeys, extra...)
}

// StartSshdWithHostKey is StartSshd with the private host key at hk
// (the recorded key exchanges of testvectors use a known one).
func StartSshdWithHostKey(t testing.TB, hk, authorizedKeys string, extra ...string) *Sshd {
	t.Helper()
	bin := Binary(t, "sshd")
	sftp := Binary(t, "sftp-server")
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil && os.Getenv("CI") == "true" {
		t.Fatalf("creating /run/sshd: %v", err)
	}
	ak := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(ak, []byte(authorizedKeys), 0o600); err != nil {
		t.Fatal(err)
	}
	port := FreePort(t)
	cfg := []string{
		"Port " + strconv.Itoa(port),
		"ListenAddress 127.0.0.1",
		"HostKey " + hk,
		"AuthorizedKeysFile " + ak,
		"PidFile none",
		"UsePAM no",
		"StrictModes no",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"PubkeyAuthentication yes",
		"PermitRootLogin yes",
		"Subsystem sftp " + sftp,
		"LogLevel VERBOSE",
		"AcceptEnv LANG LC_* RSFTP_*",
	}
	cfg = append(cfg, extra...)
	cfgPath := filepath.Join(dir, "sshd_config")
	if err := os.WriteFile(cfgPath, []byte(strings.Join(cfg, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "-t", "-f", cfgPath).CombinedOutput(); err != nil {
		t.Fatalf("sshd -t rejected the config: %v\n%s", err, out)
	}
	log := new(bytes.Buffer)
	cmd := exec.Command(bin, "-D", "-e", "-f", cfgPath)
	cmd.Stderr = &syncWriter{b: log}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting sshd: %v", err)
	}
	s := &Sshd{Port: port, Dir: dir, HostKey: hk, cmd: cmd, log: log}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("sshd log:\n%s", s.Log())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
		if err == nil {
			// Read the banner so sshd does not log a premature close as an error.
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			bufio.NewReader(c).ReadString('\n')
			c.Close()
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not start listening on %s: %v\n%s", s.Addr(), err, s.Log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type syncWriter struct {
	b *bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	mu.Lock()
	defer mu.Unlock()
	return w.b.Write(p)
}

// User returns the name of the current user, as sshd will see it.
func User(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("id", "-un").Output()
	if err != nil {
		t.Fatalf("id -un: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// SSHArgs are options for the OpenSSH client that make it use only what a
// test gives it: no user config, no agent, a throwaway known_hosts.
func SSHArgs(knownHosts string, port int) []string {
	return []string{"-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile=" + knownHosts, "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes", "-o", "IdentityAgent=none",
		"-p", fmt.Sprint(port)}
}

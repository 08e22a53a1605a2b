package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/sshtest"
)

// e2eServeCert starts "rsftp serve" with the given flags (besides
// --listen) and returns its port and a function that returns its log.
func e2eServeCert(t *testing.T, args ...string) (int, func() string) {
	t.Helper()
	port := e2eFreePort(t)
	cmd := exec.Command(e2eTool(t), append([]string{"serve", "--listen", "127.0.0.1:" + strconv.Itoa(port)}, args...)...)
	cmd.Env = e2eEnv(t)
	logb := &lockedBuffer{}
	cmd.Stderr = logb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("rsftp serve log:\n%s", logb.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rsftp serve did not listen:\n%s", logb.String())
		}
	}
	return port, logb.String
}

// TestE2EServeCertificates: rsftp serve with --trusted-user-ca-keys,
// --authorized-principals-file, --revoked-keys (a KRL from ssh-keygen -k)
// and --host-cert, and Debian's sftp: it logs in with a certificate
// ssh-keygen signed, trusting the server by its host certificate through
// an @cert-authority line alone; a revoked certificate, one whose
// principal the principals file does not list, and one whose
// force-command is not SFTP are refused.
func TestE2EServeCertificates(t *testing.T) {
	sftpBin := sshtest.Binary(t, "sftp")
	kg := sshtest.Binary(t, "ssh-keygen")
	me := sshtest.User(t)
	dir := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(kg, args...).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen %v: %v\n%s", args, err, out)
		}
	}
	key := func(name string) string {
		p := filepath.Join(dir, name)
		run("-q", "-t", "ed25519", "-N", "", "-C", name, "-f", p)
		return p
	}
	userCA, hostCA, user, host := key("user_ca"), key("host_ca"), key("user"), key("host")
	run("-q", "-s", hostCA, "-h", "-I", "rsftp-host", "-n", "127.0.0.1,localhost", "-V", "-5m:+1h", host+".pub")
	sign := func(name string, opts ...string) string {
		t.Helper()
		pub, _ := os.ReadFile(user + ".pub")
		p := filepath.Join(dir, name)
		os.WriteFile(p+".pub", pub, 0o644)
		run(append(append([]string{"-q", "-s", userCA}, opts...), p+".pub")...)
		return p + "-cert.pub"
	}
	spec := filepath.Join(dir, "krl.spec")
	os.WriteFile(spec, []byte("serial: 13\n"), 0o644)
	krl := filepath.Join(dir, "krl")
	run("-k", "-f", krl, "-s", userCA+".pub", spec)
	principals := filepath.Join(dir, "principals")
	os.Mkdir(principals, 0o755)
	os.WriteFile(filepath.Join(principals, me), []byte("sftp-users\n"), 0o644)
	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	os.WriteFile(filepath.Join(root, "hello.txt"), []byte("hello\n"), 0o644)

	port, serveLog := e2eServeCert(t, "--root", root, "--host-key", host, "--host-cert", host+"-cert.pub",
		"--trusted-user-ca-keys", userCA+".pub", "--authorized-principals-file", filepath.Join(principals, "%u"),
		"--revoked-keys", krl, "--hold", "0")
	kh := filepath.Join(dir, "known_hosts")
	hostCAPub, _ := os.ReadFile(hostCA + ".pub")
	os.WriteFile(kh, append([]byte("@cert-authority * "), hostCAPub...), 0o644)

	sftp := func(cert string) (string, error) {
		bf := filepath.Join(dir, "batch")
		os.WriteFile(bf, []byte("get hello.txt "+filepath.Join(dir, "got.txt")+"\n"), 0o600)
		os.Remove(filepath.Join(dir, "got.txt"))
		args := []string{"-b", bf, "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
			"-o", "IdentityAgent=none", "-o", "UserKnownHostsFile=" + kh, "-o", "GlobalKnownHostsFile=/dev/null",
			"-o", "StrictHostKeyChecking=yes", "-i", user, "-o", "CertificateFile=" + cert,
			"-P", strconv.Itoa(port), me + "@127.0.0.1"}
		out, err := exec.Command(sftpBin, args...).CombinedOutput()
		return string(out), err
	}
	ok := sign("ok", "-I", "ok", "-n", "sftp-users", "-z", "1", "-V", "-5m:+1h")
	if out, err := sftp(ok); err != nil {
		t.Fatalf("sftp with a certificate: %v\n%s", err, out)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "got.txt")); err != nil || string(got) != "hello\n" {
		t.Fatalf("downloaded %q, %v", got, err)
	}
	sftpOnly := sign("sftp_only", "-I", "sftp-only", "-n", "sftp-users", "-z", "2", "-O", "force-command=internal-sftp")
	if out, err := sftp(sftpOnly); err != nil {
		t.Errorf("force-command internal-sftp: %v\n%s", err, out)
	}
	for _, c := range []struct {
		name, cert, why string
	}{
		{"revoked", sign("revoked", "-I", "revoked", "-n", "sftp-users", "-z", "13"), "revoked"},
		{"principal not in the principals file", sign("user_name", "-I", "user-name", "-n", me, "-z", "3"), "none of its principals"},
		{"force-command not SFTP", sign("shell", "-I", "shell", "-n", "sftp-users", "-z", "4", "-O", "force-command=/bin/sh"), "serves only SFTP"},
	} {
		out, err := sftp(c.cert)
		if err == nil || !strings.Contains(out, "Permission denied") {
			t.Errorf("%s: %v\n%s", c.name, err, out)
		}
		found := false
		for deadline := time.Now().Add(10 * time.Second); !found && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			found = strings.Contains(serveLog(), c.why)
		}
		if !found {
			t.Errorf("%s: the log does not say %q", c.name, c.why)
		}
	}
	if !bytes.Contains([]byte(serveLog()), []byte("host certificate ID \"rsftp-host\"")) {
		t.Errorf("startup does not name the host certificate:\n%s", serveLog())
	}
}

package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/sshtest"
)

// The tool is built once and run as a subprocess, so that exit statuses
// and messages are the real ones.
var (
	e2eOnce sync.Once
	e2eBin  string
	e2eErr  error
)

func e2eTool(t *testing.T) string {
	t.Helper()
	e2eOnce.Do(func() {
		dir, err := os.MkdirTemp("", "rsftp-e2e")
		if err != nil {
			e2eErr = err
			return
		}
		e2eBin = filepath.Join(dir, "rsftp")
		goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
		out, err := exec.Command(goBin, "build", "-o", e2eBin, ".").CombinedOutput()
		if err != nil {
			e2eErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if e2eErr != nil {
		t.Fatal(e2eErr)
	}
	return e2eBin
}

// e2eEnv isolates the tool from the user running the tests.
func e2eEnv(t *testing.T) []string {
	home := t.TempDir()
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "HOME=") || strings.HasPrefix(kv, "SSH_AUTH_SOCK=") {
			continue
		}
		env = append(env, kv)
	}
	// The remote end of a session through sshd (the helper) keeps its
	// files in a directory of the test's, never in the real home of the
	// user sshd runs it as.
	return append(env, "HOME="+home, helperDirEnv+"="+filepath.Join(home, "remote-helper"))
}

type e2eResult struct {
	stdout, stderr string
	code           int
}

func e2eRun(t *testing.T, args ...string) e2eResult {
	t.Helper()
	cmd := exec.Command(e2eTool(t), args...)
	cmd.Env = e2eEnv(t)
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

func e2eFreePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// e2eServe starts "rsftp serve" and returns its port and a known_hosts
// file that trusts it.
func e2eServe(t *testing.T, root, authorizedKeys string) (int, string) {
	t.Helper()
	dir := t.TempDir()
	port := e2eFreePort(t)
	hk := filepath.Join(dir, "hk")
	cmd := exec.Command(e2eTool(t), "serve", "--listen", "127.0.0.1:"+strconv.Itoa(port),
		"--root", root, "--host-key", hk, "--authorized-keys", authorizedKeys)
	cmd.Env = e2eEnv(t)
	var logb bytes.Buffer
	cmd.Stderr = &logb
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
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port)); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rsftp serve did not listen:\n%s", logb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	pub, err := os.ReadFile(hk + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(pub))
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, []byte(fmt.Sprintf("[127.0.0.1]:%d %s %s\n", port, f[0], f[1])), 0o600)
	return port, kh
}

func e2eOpts(key, kh string, port int) []string {
	// ResumeHelper=no: these tests are of sshd's own SFTP server (the
	// helper's have helperRig).
	return []string{"-F", "none", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + kh, "-i", key, "-P", strconv.Itoa(port), "-q", "-o", "ResumeHelper=no"}
}

func e2eRandFile(t *testing.T, path string, n int64) []byte {
	b := make([]byte, n)
	rand.Read(b)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func e2eSame(t *testing.T, a, b string) {
	t.Helper()
	x, err1 := os.ReadFile(a)
	y, err2 := os.ReadFile(b)
	if err1 != nil || err2 != nil || !bytes.Equal(x, y) {
		t.Fatalf("%s and %s differ (%v, %v; %d vs %d bytes)", a, b, err1, err2, len(x), len(y))
	}
}

// Debian's sftp in batch mode against rsftp serve.
func TestE2EOpenSSHSftpAgainstServe(t *testing.T) {
	sftpBin := sshtest.Binary(t, "sftp")
	sshBin := sshtest.Binary(t, "ssh")
	dir := t.TempDir()
	key := sshtest.KeyGen(t, dir, "ed25519", 0)
	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	port, kh := e2eServe(t, root, key+".pub")
	local := filepath.Join(dir, "local")
	os.Mkdir(local, 0o755)
	data := e2eRandFile(t, filepath.Join(local, "data.bin"), 3<<20+7)
	os.WriteFile(filepath.Join(local, "empty"), nil, 0o644)
	batch := fmt.Sprintf(`put %[1]s/data.bin data.bin
put %[1]s/empty empty
mkdir sub
rename data.bin sub/moved.bin
chmod 600 sub/moved.bin
symlink sub/moved.bin link
get sub/moved.bin %[1]s/back.bin
put %[1]s/data.bin gone.bin
rm gone.bin
ls -1
`, local)
	bf := filepath.Join(dir, "batch")
	os.WriteFile(bf, []byte(batch), 0o600)
	args := []string{"-b", bf, "-F", "/dev/null", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
		"-o", "IdentityAgent=none", "-o", "UserKnownHostsFile=" + kh, "-o", "StrictHostKeyChecking=yes",
		"-i", key, "-P", strconv.Itoa(port), "127.0.0.1"}
	out, err := exec.Command(sftpBin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("sftp: %v\n%s", err, out)
	}
	got, err := os.ReadFile(filepath.Join(root, "sub", "moved.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("uploaded file differs (%v)", err)
	}
	e2eSame(t, filepath.Join(local, "back.bin"), filepath.Join(local, "data.bin"))
	if fi, err := os.Stat(filepath.Join(root, "empty")); err != nil || fi.Size() != 0 {
		t.Fatalf("empty file: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(root, "sub", "moved.bin")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("chmod 600: %v %v", fi.Mode(), err)
	}
	if target, err := os.Readlink(filepath.Join(root, "link")); err != nil || !strings.HasSuffix(target, "sub/moved.bin") {
		t.Fatalf("symlink: %q %v", target, err)
	}
	if _, err := os.Stat(filepath.Join(root, "gone.bin")); !os.IsNotExist(err) {
		t.Fatalf("rm: %v", err)
	}
	for _, name := range []string{"sub", "empty", "link"} {
		if !strings.Contains(string(out), name) {
			t.Fatalf("ls does not list %s:\n%s", name, out)
		}
	}
	// No shell, no exec.
	sshArgs := append(sshtest.SSHArgs(kh, port), "-i", key, "127.0.0.1", "echo hi")
	if out, err := exec.Command(sshBin, sshArgs...).CombinedOutput(); err == nil || strings.Contains(string(out), "hi\n") {
		t.Fatalf("exec on rsftp serve succeeded: %s", out)
	}
}

// e2eToolSuite runs get, put, ls, -r, -p and -a against a server whose
// paths are remote(name).
func e2eToolSuite(t *testing.T, opts []string, remote func(string) string, serverPath func(string) string) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.bin")
	e2eRandFile(t, src, 5<<20+3)
	run := func(args ...string) e2eResult {
		t.Helper()
		r := e2eRun(t, append(append([]string{args[0]}, opts...), args[1:]...)...)
		return r
	}
	must := func(args ...string) e2eResult {
		t.Helper()
		r := run(args...)
		if r.code != 0 {
			t.Fatalf("rsftp %v: exit %d\n%s", args, r.code, r.stderr)
		}
		return r
	}
	must("put", src, "127.0.0.1:"+remote("up.bin"))
	e2eSame(t, src, serverPath("up.bin"))
	must("get", "127.0.0.1:"+remote("up.bin"), filepath.Join(dir, "down.bin"))
	e2eSame(t, src, filepath.Join(dir, "down.bin"))
	if r := must("ls", "127.0.0.1:"+remote("")); !strings.Contains(r.stdout, "up.bin") {
		t.Fatalf("ls: %q", r.stdout)
	}
	if r := must("ls", "-l", "127.0.0.1:"+remote("")); !strings.Contains(r.stdout, "up.bin") || !strings.Contains(r.stdout, strconv.Itoa(5<<20+3)) {
		t.Fatalf("ls -l: %q", r.stdout)
	}

	// -r and -p.
	tree := filepath.Join(dir, "tree")
	os.MkdirAll(filepath.Join(tree, "a", "b"), 0o755)
	e2eRandFile(t, filepath.Join(tree, "a", "b", "deep.bin"), 1<<20)
	os.WriteFile(filepath.Join(tree, "top.txt"), []byte("top\n"), 0o640)
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	os.Chtimes(filepath.Join(tree, "top.txt"), old, old)
	must("put", "-rp", tree, "127.0.0.1:"+remote("tree"))
	e2eSame(t, filepath.Join(tree, "a", "b", "deep.bin"), serverPath("tree/a/b/deep.bin"))
	fi, err := os.Stat(serverPath("tree/top.txt"))
	if err != nil || !fi.ModTime().Equal(old) || fi.Mode().Perm() != 0o640 {
		t.Fatalf("put -p: %v %v %v", fi.ModTime(), fi.Mode(), err)
	}
	back := filepath.Join(dir, "tree-back")
	must("get", "-r", "-p", "127.0.0.1:"+remote("tree"), back)
	e2eSame(t, filepath.Join(tree, "a", "b", "deep.bin"), filepath.Join(back, "a", "b", "deep.bin"))
	if fi, err := os.Stat(filepath.Join(back, "top.txt")); err != nil || !fi.ModTime().Equal(old) {
		t.Fatalf("get -p: %v", err)
	}
	if r := run("get", "127.0.0.1:"+remote("tree"), filepath.Join(dir, "x")); r.code == 0 {
		t.Fatal("get of a directory without -r succeeded")
	}

	// -a on download: a good partial copy is completed...
	full, _ := os.ReadFile(src)
	part := filepath.Join(dir, "part.bin")
	os.WriteFile(part, full[:len(full)/2], 0o644)
	must("get", "-a", "127.0.0.1:"+remote("up.bin"), part)
	e2eSame(t, src, part)
	// ...a corrupted one is refused and left alone.
	bad := bytes.Clone(full[:len(full)/2])
	bad[len(bad)-10] ^= 1
	os.WriteFile(part, bad, 0o644)
	r := run("get", "-a", "127.0.0.1:"+remote("up.bin"), part)
	if r.code == 0 || !strings.Contains(r.stderr, "differ") {
		t.Fatalf("get -a over a corrupted partial file: exit %d %q", r.code, r.stderr)
	}
	if now, _ := os.ReadFile(part); !bytes.Equal(now, bad) {
		t.Fatal("refused resume changed the local file")
	}
	// -a on upload, the same two ways.
	os.WriteFile(serverPath("partial-up.bin"), full[:len(full)/3], 0o644)
	must("put", "-a", src, "127.0.0.1:"+remote("partial-up.bin"))
	e2eSame(t, src, serverPath("partial-up.bin"))
	badUp := bytes.Clone(full[:len(full)/3])
	badUp[100] ^= 1
	os.WriteFile(serverPath("partial-up.bin"), badUp, 0o644)
	if r := run("put", "-a", src, "127.0.0.1:"+remote("partial-up.bin")); r.code == 0 || !strings.Contains(r.stderr, "differ") {
		t.Fatalf("put -a over a corrupted remote file: exit %d %q", r.code, r.stderr)
	}
	if now, _ := os.ReadFile(serverPath("partial-up.bin")); !bytes.Equal(now, badUp) {
		t.Fatal("refused resume changed the remote file")
	}
}

func TestE2EToolAgainstSshd(t *testing.T) {
	dir := t.TempDir()
	key := sshtest.KeyGen(t, dir, "ed25519", 0)
	pub, _ := os.ReadFile(key + ".pub")
	sshd := sshtest.StartSshd(t, string(pub))
	hk, _ := os.ReadFile(sshd.HostKey + ".pub")
	f := strings.Fields(string(hk))
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, []byte(fmt.Sprintf("[127.0.0.1]:%d %s %s\n", sshd.Port, f[0], f[1])), 0o600)
	base := filepath.Join(dir, "remote")
	os.Mkdir(base, 0o755)
	opts := append(e2eOpts(key, kh, sshd.Port), "-o", "User="+sshtest.User(t))
	e2eToolSuite(t, opts,
		func(p string) string { return filepath.Join(base, p) },
		func(p string) string { return filepath.Join(base, p) })
}

func TestE2EToolAgainstServe(t *testing.T) {
	dir := t.TempDir()
	key := sshtest.KeyGen(t, dir, "ed25519", 0)
	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	port, kh := e2eServe(t, root, key+".pub")
	e2eToolSuite(t, e2eOpts(key, kh, port),
		func(p string) string { return p },
		func(p string) string { return filepath.Join(root, p) })
}

func TestE2EToolErrors(t *testing.T) {
	dir := t.TempDir()
	key := sshtest.KeyGen(t, dir, "ed25519", 0)
	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	os.WriteFile(filepath.Join(root, "f"), []byte("x"), 0o644)
	os.Symlink("/etc", filepath.Join(root, "etc-link"))
	port, kh := e2eServe(t, root, key+".pub")
	opts := e2eOpts(key, kh, port)
	run := func(args ...string) e2eResult {
		return e2eRun(t, append(append([]string{args[0]}, opts...), args[1:]...)...)
	}
	fail := func(what string, r e2eResult, want string) {
		t.Helper()
		if r.code == 0 || !strings.Contains(r.stderr, want) || strings.Count(strings.TrimSpace(r.stderr), "\n") > 12 {
			t.Fatalf("%s: exit %d, stderr %q (want %q)", what, r.code, r.stderr, want)
		}
	}
	empty := filepath.Join(dir, "empty_known_hosts")
	os.WriteFile(empty, nil, 0o600)
	unknownArgs := append([]string{"ls"}, e2eOpts(key, empty, port)...)
	fail("unknown host key", e2eRun(t, append(unknownArgs, "127.0.0.1:")...), "Host key verification failed")
	fail("missing remote file", run("get", "127.0.0.1:nope", filepath.Join(dir, "nope")), "no such file")
	fail("misspelt option", run("ls", "-o", "Ciphrs=x", "127.0.0.1:"), "Bad configuration option")
	fail("unknown cipher", run("ls", "-c", "des-cbc", "127.0.0.1:"), "cipher")
	if r := run("ls", "-o", "ForwardAgent=yes", "127.0.0.1:"); r.code != 0 || !strings.Contains(r.stdout, "f") {
		t.Fatalf("valid but unsupported option: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	// Confinement, through the tool.
	out := filepath.Join(dir, "passwd")
	for _, p := range []string{"../../../../etc/passwd", "/etc/passwd"} {
		run("get", "127.0.0.1:"+p, out)
		if b, err := os.ReadFile(out); err == nil {
			real, _ := os.ReadFile("/etc/passwd")
			if bytes.Equal(b, real) {
				t.Fatalf("get %s fetched the real /etc/passwd", p)
			}
		}
		os.Remove(out)
	}
	if r := run("ls", "127.0.0.1:etc-link"); r.code == 0 {
		t.Fatalf("ls through a symlink out of the root succeeded: %q", r.stdout)
	}
}

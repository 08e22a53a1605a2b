package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rsftp/rsftp/internal/sshtest"
)

// shellRun runs rsftp sftp with args, stdin from in, in dir.
func shellRun(t *testing.T, dir, in string, args ...string) e2eResult {
	t.Helper()
	cmd := exec.Command(e2eTool(t), args...)
	cmd.Env = e2eEnv(t)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(in)
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

// TestE2EShellBatch runs rsftp sftp -b against rsftp serve: mkdir, put,
// ls, get (a glob too), rename, chmod, rm, with the files checked; a
// failing command prefixed with '-' lets the batch go on, an unprefixed
// one stops it with status 1.
func TestE2EShellBatch(t *testing.T) {
	dir := t.TempDir()
	key := sshtest.KeyGen(t, dir, "ed25519", 0)
	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	port, kh := e2eServe(t, root, key+".pub")
	local := filepath.Join(dir, "local")
	os.MkdirAll(filepath.Join(local, "globbed"), 0o755)
	data := e2eRandFile(t, filepath.Join(local, "data.bin"), 2<<20+5)
	os.WriteFile(filepath.Join(local, "a.txt"), []byte("alpha\n"), 0o644)
	os.WriteFile(filepath.Join(local, "b.txt"), []byte("bravo\n"), 0o644)
	os.WriteFile(filepath.Join(local, "with space"), []byte("space\n"), 0o644)
	opts := append([]string{"sftp"}, e2eOpts(key, kh, port)...)

	batch := `# a comment
mkdir sub
put data.bin sub/data.bin
ls sub
ls -l sub
get sub/data.bin back.bin
rename sub/data.bin sub/moved.bin
chmod 640 sub/moved.bin
-rm sub/nope.bin
put *.txt
put "with space"
@pwd
get *.txt globbed
rm *.txt
ls -1
cd sub
ls -l moved.bin
lpwd
`
	bf := filepath.Join(dir, "batch")
	os.WriteFile(bf, []byte(batch), 0o600)
	r := shellRun(t, local, "", append(opts, "-b", bf, "127.0.0.1")...)
	if r.code != 0 {
		t.Fatalf("batch: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	got, err := os.ReadFile(filepath.Join(root, "sub", "moved.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("uploaded and renamed file differs (%v)", err)
	}
	e2eSame(t, filepath.Join(local, "back.bin"), filepath.Join(local, "data.bin"))
	if fi, err := os.Stat(filepath.Join(root, "sub", "moved.bin")); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("chmod 640: %v %v", fi.Mode(), err)
	}
	for _, n := range []string{"a.txt", "b.txt"} {
		e2eSame(t, filepath.Join(local, n), filepath.Join(local, "globbed", n))
		if _, err := os.Stat(filepath.Join(root, n)); !os.IsNotExist(err) {
			t.Errorf("rm *.txt left %s: %v", n, err)
		}
	}
	e2eSame(t, filepath.Join(local, "with space"), filepath.Join(root, "with space"))
	// Each command echoed as sftp echoes it, but not the one with '@'.
	for _, echo := range []string{"sftp> mkdir sub\n", "sftp> -rm sub/nope.bin\n", "sftp> # a comment\n", "sftp> lpwd\n"} {
		if !strings.Contains(r.stdout, echo) {
			t.Errorf("stdout lacks %q:\n%s", echo, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "pwd\n") && strings.Contains(r.stdout, "sftp> @pwd") {
		t.Errorf("a command with '@' was echoed:\n%s", r.stdout)
	}
	for _, want := range []string{
		"sftp> ls sub\ndata.bin\n",      // the directory's names, as rsftp ls shows them
		"Remote working directory: /\n", // @pwd ran
		"sftp> ls -1\nsub\nwith space\n",
		"Local working directory: " + local + "\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, fmt.Sprint(2<<20+5)) {
		t.Errorf("ls -l shows no size:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "-rw-r-----") || !strings.Contains(r.stdout, "moved.bin\n") {
		t.Errorf("ls -l of one file:\n%s", r.stdout)
	}
	// Batch mode is quiet: no "Fetching" or "Removing" lines.
	if strings.Contains(r.stdout, "Fetching") || strings.Contains(r.stdout, "Removing") {
		t.Errorf("batch mode printed transfer lines:\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, `remote remove "/sub/nope.bin": No such file`) {
		t.Errorf("the ignored failure's message: %q", r.stderr)
	}

	// An unprefixed failure stops the batch with status 1.
	os.WriteFile(bf, []byte("mkdir first\nget nope.bin\nmkdir never\n"), 0o600)
	r = shellRun(t, local, "", append(opts, "-b", bf, "127.0.0.1")...)
	if r.code != 1 {
		t.Fatalf("failing batch: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, `remote stat "/nope.bin": No such file`) || !strings.Contains(r.stderr, "line 2") {
		t.Errorf("failing batch stderr: %q", r.stderr)
	}
	if strings.Contains(r.stdout, "mkdir never") {
		t.Errorf("the batch went on after the failure:\n%s", r.stdout)
	}
	if _, err := os.Stat(filepath.Join(root, "first")); err != nil {
		t.Errorf("the command before the failure did not run: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "never")); !os.IsNotExist(err) {
		t.Errorf("the command after the failure ran: %v", err)
	}
	// A glob that matches nothing is a failure too, and so is an
	// unknown command.
	for _, cmd := range []string{"get *.none", "frobnicate", "cd sub/moved.bin", "ls nothing-here"} {
		os.WriteFile(bf, []byte(cmd+"\n"), 0o600)
		if r := shellRun(t, local, "", append(opts, "-b", bf, "127.0.0.1")...); r.code != 1 || strings.Count(r.stderr, "\n") > 2 {
			t.Errorf("%s: exit %d, stderr %q", cmd, r.code, r.stderr)
		} else {
			t.Logf("%s: %s", cmd, strings.SplitN(r.stderr, "\n", 2)[0])
		}
	}

	// -b - reads stdin; without -b and a terminal, stdin is read as
	// commands too, but failures do not stop it (as sftp).
	r = shellRun(t, local, "pwd\ncd sub\npwd\n", append(opts, "-b", "-", "127.0.0.1")...)
	if r.code != 0 || !strings.Contains(r.stdout, "Remote working directory: /sub\n") {
		t.Errorf("-b -: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	r = shellRun(t, local, "get nope\nmkdir after\n", append(opts, "127.0.0.1")...)
	if r.code != 0 || !strings.Contains(r.stdout, "sftp> get nope\n") || !strings.Contains(r.stderr, "No such file") {
		t.Errorf("stdin without -b: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(root, "after")); err != nil {
		t.Errorf("stdin without -b stopped at a failure: %v", err)
	}

	// host:dir starts there; host:file fetches it and exits.
	r = shellRun(t, local, "pwd\n", append(opts, "127.0.0.1:sub")...)
	if r.code != 0 || !strings.Contains(r.stdout, "Remote working directory: /sub\n") {
		t.Errorf("host:dir: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	os.Remove(filepath.Join(local, "moved.bin"))
	r = shellRun(t, local, "", append(opts, "127.0.0.1:sub/moved.bin")...)
	if r.code != 0 {
		t.Fatalf("host:file: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
	e2eSame(t, filepath.Join(local, "moved.bin"), filepath.Join(local, "data.bin"))
}

// TestE2EShellShorthand: "rsftp user@host" is "rsftp sftp user@host",
// with the options from ~/.ssh/config.
func TestE2EShellShorthand(t *testing.T) {
	dir := t.TempDir()
	key := sshtest.KeyGen(t, dir, "ed25519", 0)
	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	port, kh := e2eServe(t, root, key+".pub")
	home := filepath.Join(dir, "home")
	os.MkdirAll(filepath.Join(home, ".ssh"), 0o700)
	os.WriteFile(filepath.Join(home, ".ssh", "config"), []byte(fmt.Sprintf(`Host shorthand
  HostName 127.0.0.1
  Port %d
  IdentityFile %s
  UserKnownHostsFile %s
  StrictHostKeyChecking yes
  BatchMode yes
`, port, key, kh)), 0o600)
	cmd := exec.Command(e2eTool(t), sshtest.User(t)+"@shorthand")
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "SSH_AUTH_SOCK=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "HOME="+home)
	cmd.Stdin = strings.NewReader("mkdir made-by-shorthand\nversion\n")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SFTP protocol version 3") {
		t.Fatalf("rsftp user@shorthand: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(root, "made-by-shorthand")); err != nil {
		t.Fatal(err)
	}
	// A bare word is not taken for a host.
	if r := e2eRun(t, "shorthand"); r.code != 2 || !strings.Contains(r.stderr, "unknown command") {
		t.Errorf("rsftp shorthand: exit %d %q", r.code, r.stderr)
	}
}

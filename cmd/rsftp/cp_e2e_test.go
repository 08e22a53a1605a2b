package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/sshtest"
)

// cpRig is rsftp serve on a root, with the options that reach it.
type cpRig struct {
	dir, root, key, kh string
	port               int
	opts               []string
}

func newCpRig(t *testing.T) *cpRig {
	t.Helper()
	r := &cpRig{dir: t.TempDir()}
	r.key = sshtest.KeyGen(t, r.dir, "ed25519", 0)
	r.root = filepath.Join(r.dir, "root")
	os.Mkdir(r.root, 0o755)
	r.port, r.kh = e2eServe(t, r.root, r.key+".pub")
	r.opts = e2eOpts(r.key, r.kh, r.port)
	return r
}

// run runs rsftp cmd with the rig's options, then args.
func (r *cpRig) run(t *testing.T, cmd string, args ...string) e2eResult {
	t.Helper()
	return e2eRun(t, append(append([]string{cmd}, r.opts...), args...)...)
}

func (r *cpRig) must(t *testing.T, cmd string, args ...string) e2eResult {
	t.Helper()
	res := r.run(t, cmd, args...)
	if res.code != 0 {
		t.Fatalf("rsftp %s %q: exit %d\n%s", cmd, args, res.code, res.stderr)
	}
	return res
}

func (r *cpRig) fail(t *testing.T, code int, want string, cmd string, args ...string) e2eResult {
	t.Helper()
	res := r.run(t, cmd, args...)
	if res.code != code || !strings.Contains(res.stderr, want) {
		t.Fatalf("rsftp %s %q: exit %d, stderr %q; want exit %d and %q", cmd, args, res.code, res.stderr, code, want)
	}
	return res
}

func (r *cpRig) srv(p string) string { return filepath.Join(r.root, p) }

func writeFiles(t *testing.T, root string, files ...string) {
	t.Helper()
	for _, f := range files {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("contents of "+f+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestE2ECp: scp's syntax against rsftp serve: local to remote, several
// sources into a directory (and the refusal when the target is not
// one), remote wildcards, sftp:// and scp:// URIs with %-encoding, two
// servers through this machine, one server to itself, local to local,
// -p, -l, -X, and scp's options that are refused.
func TestE2ECp(t *testing.T) {
	r := newCpRig(t)
	loc := filepath.Join(r.dir, "local")
	os.Mkdir(loc, 0o755)
	big := e2eRandFile(t, filepath.Join(loc, "big.bin"), 3<<20+11)
	_ = big
	writeFiles(t, loc, "a.txt", "b.txt")
	host := "127.0.0.1:"

	// Local to remote.
	r.must(t, "cp", filepath.Join(loc, "big.bin"), host+"up.bin")
	e2eSame(t, filepath.Join(loc, "big.bin"), r.srv("up.bin"))
	// Several sources into a directory; into a file is refused.
	os.Mkdir(r.srv("dir"), 0o755)
	r.must(t, "cp", filepath.Join(loc, "a.txt"), filepath.Join(loc, "b.txt"), host+"dir")
	e2eSame(t, filepath.Join(loc, "a.txt"), r.srv("dir/a.txt"))
	e2eSame(t, filepath.Join(loc, "b.txt"), r.srv("dir/b.txt"))
	r.fail(t, 1, "Not a directory", "cp", filepath.Join(loc, "a.txt"), filepath.Join(loc, "b.txt"), host+"up.bin")
	r.fail(t, 1, "Not a directory", "cp", host+"dir/a.txt", host+"dir/b.txt", filepath.Join(loc, "a.txt"))
	r.fail(t, 1, "is a directory (use -r)", "cp", loc, host+"dir")

	// Remote wildcards into a local directory; no match is an error.
	writeFiles(t, r.root, "logs/x1.gz", "logs/x2.gz", "logs/keep.txt", "logs/.hidden.gz", "logs/name with space.gz")
	got := filepath.Join(r.dir, "got")
	os.Mkdir(got, 0o755)
	r.must(t, "cp", host+"logs/x*.gz", got)
	names := dirNames(t, got)
	if !slices.Equal(names, []string{"x1.gz", "x2.gz"}) {
		t.Fatalf("cp 'host:logs/x*.gz': %q", names)
	}
	r.fail(t, 1, "127.0.0.1:logs/*.zip: no match", "cp", host+"logs/*.zip", got)
	r.fail(t, 1, "matches 3 paths, but the target", "cp", host+"logs/*.gz", filepath.Join(got, "one-file"))

	// URIs: the path is relative to the login directory, %-decoded; the
	// port is the URI's (the -P of the options is not this server's).
	uri := fmt.Sprintf("sftp://127.0.0.1:%d/logs/name%%20with%%20space.gz", r.port)
	r.must(t, "cp", uri, filepath.Join(got, "spaced"))
	e2eSame(t, r.srv("logs/name with space.gz"), filepath.Join(got, "spaced"))
	noPort := slices.Clone(r.opts)
	noPort[slices.Index(noPort, "-P")+1] = "1" // nothing listens there
	res := e2eRun(t, append(append([]string{"cp"}, noPort...), filepath.Join(loc, "a.txt"), fmt.Sprintf("scp://127.0.0.1:%d//dir/uri.txt", r.port))...)
	if res.code != 0 {
		t.Fatalf("cp to an scp:// URI with an absolute path: exit %d\n%s", res.code, res.stderr)
	}
	e2eSame(t, filepath.Join(loc, "a.txt"), r.srv("dir/uri.txt"))
	r.fail(t, 2, "not a valid sftp:// URI", "cp", "sftp://127.0.0.1:0/x", got)

	// Two servers, through this machine: a file and a tree (-r); one
	// server to itself.
	r2 := newCpRig(t)
	kh := filepath.Join(r.dir, "kh-both")
	k1, _ := os.ReadFile(r.kh)
	k2, _ := os.ReadFile(r2.kh)
	os.WriteFile(kh, append(k1, k2...), 0o600)
	both := slices.Clone(r.opts)
	both[slices.Index(both, "-o")+1] = "BatchMode=yes"
	for i, a := range both {
		if strings.HasPrefix(a, "UserKnownHostsFile=") {
			both[i] = "UserKnownHostsFile=" + kh
		}
	}
	both = append(both, "-i", r2.key)
	writeFiles(t, r.root, "tree/t1.txt", "tree/sub/t2.txt")
	second := fmt.Sprintf("sftp://127.0.0.1:%d/", r2.port)
	for _, args := range [][]string{{host + "up.bin", second + "copy.bin"}, {"-r", host + "tree", second}} {
		if res := e2eRun(t, append(append([]string{"cp"}, both...), args...)...); res.code != 0 {
			t.Fatalf("cp %q between servers: exit %d\n%s", args, res.code, res.stderr)
		}
	}
	e2eSame(t, r.srv("up.bin"), filepath.Join(r2.root, "copy.bin"))
	e2eSame(t, r.srv("tree/sub/t2.txt"), filepath.Join(r2.root, "tree/sub/t2.txt"))
	r.must(t, "cp", host+"up.bin", host+"dir/same-server.bin")
	e2eSame(t, r.srv("up.bin"), r.srv("dir/same-server.bin"))

	// Local to local, as scp does it (cp).
	r.must(t, "cp", filepath.Join(loc, "a.txt"), filepath.Join(loc, "local-copy.txt"))
	e2eSame(t, filepath.Join(loc, "a.txt"), filepath.Join(loc, "local-copy.txt"))

	// -p, -l (the limit is counted in TestRateLimitInCopyLoop; here the
	// copy under it is whole), -X.
	old := time.Date(2021, 5, 6, 7, 8, 9, 0, time.UTC)
	os.Chtimes(filepath.Join(loc, "a.txt"), old, old)
	r.must(t, "cp", "-p", "-l", "100000", "-X", "buffer=8192", "-X", "nrequests=4", filepath.Join(loc, "a.txt"), host+"p.txt")
	if fi, err := os.Stat(r.srv("p.txt")); err != nil || !fi.ModTime().Equal(old) {
		t.Fatalf("cp -p: %v", err)
	}
	r.must(t, "cp", "-l", "50000", host+"up.bin", filepath.Join(got, "limited.bin"))
	e2eSame(t, r.srv("up.bin"), filepath.Join(got, "limited.bin"))

	// Refused: each says why, before connecting.
	r.fail(t, 2, "legacy scp protocol", "cp", "-O", filepath.Join(loc, "a.txt"), host)
	r.fail(t, 2, "through this machine", "cp", "-R", host+"a", second)
	r.fail(t, 2, "invalid limit", "cp", "-l", "0", filepath.Join(loc, "a.txt"), host)
	r.fail(t, 2, "needs a source", "cp", filepath.Join(loc, "a.txt"))
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestE2ECpRecursiveSkips: cp -r goes on past what it cannot copy and
// exits 1 naming each at the end; on upload it follows links, a link
// loop being one of the skipped; on download the server's links too.
// get -r and put -r keep sftp's way: links skipped with a warning.
func TestE2ECpRecursiveSkips(t *testing.T) {
	r := newCpRig(t)
	tree := filepath.Join(r.dir, "tree")
	writeFiles(t, tree, "f.txt", "sub/g.txt", "sub/deep/h.txt")
	os.Symlink("f.txt", filepath.Join(tree, "link-to-file"))
	os.Symlink("../..", filepath.Join(tree, "sub", "deep", "loop"))
	os.Symlink("nowhere", filepath.Join(tree, "dangling"))
	skipped := []string{filepath.Join(tree, "sub", "deep", "loop"), filepath.Join(tree, "dangling")}
	if os.Geteuid() != 0 {
		writeFiles(t, tree, "secret.txt", "locked/x.txt")
		os.Chmod(filepath.Join(tree, "secret.txt"), 0)
		os.Chmod(filepath.Join(tree, "locked"), 0)
		t.Cleanup(func() { os.Chmod(filepath.Join(tree, "locked"), 0o755) })
		skipped = append(skipped, filepath.Join(tree, "secret.txt"), filepath.Join(tree, "locked"))
	}
	res := r.run(t, "cp", "-r", tree, "127.0.0.1:up")
	if res.code != 1 {
		t.Fatalf("cp -r with unreadable entries: exit %d\n%s", res.code, res.stderr)
	}
	for _, p := range skipped {
		if !strings.Contains(res.stderr, "rsftp cp: "+p+": ") && !strings.Contains(res.stderr, "rsftp cp: upload "+p+": ") {
			t.Errorf("stderr does not name %s:\n%s", p, res.stderr)
		}
	}
	if !strings.Contains(res.stderr, "symbolic link loop: it leads back to "+tree) ||
		!strings.Contains(res.stderr, fmt.Sprintf("%d files or directories were not copied", len(skipped))) {
		t.Errorf("stderr:\n%s", res.stderr)
	}
	e2eSame(t, filepath.Join(tree, "sub/deep/h.txt"), r.srv("up/sub/deep/h.txt"))
	e2eSame(t, filepath.Join(tree, "f.txt"), r.srv("up/link-to-file"))
	if fi, err := os.Lstat(r.srv("up/link-to-file")); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("the link was not followed: %v", err)
	}

	// Download: the server's tree holds a loop, a link out of its root
	// (which it refuses) and a dangling link.
	writeFiles(t, r.root, "rtree/a.txt", "rtree/s/b.txt")
	os.Symlink("..", filepath.Join(r.root, "rtree", "s", "back"))
	os.Symlink("/etc", filepath.Join(r.root, "rtree", "escape"))
	os.Symlink("nowhere", filepath.Join(r.root, "rtree", "dangling"))
	got := filepath.Join(r.dir, "got")
	res = r.run(t, "cp", "-r", "127.0.0.1:rtree", got)
	if res.code != 1 {
		t.Fatalf("cp -r from the server: exit %d\n%s", res.code, res.stderr)
	}
	for _, p := range []string{"rtree/s/back", "rtree/escape", "rtree/dangling"} {
		if !strings.Contains(res.stderr, p) {
			t.Errorf("stderr does not name %s:\n%s", p, res.stderr)
		}
	}
	e2eSame(t, r.srv("rtree/s/b.txt"), filepath.Join(got, "s/b.txt"))
	if _, err := os.Stat(filepath.Join(got, "escape")); err == nil {
		t.Fatal("a link out of the server's root was followed")
	}
	// get -r: links are not followed (sftp's way), only warned about.
	res = e2eRun(t, append(append([]string{"get"}, slices.DeleteFunc(slices.Clone(r.opts), func(s string) bool { return s == "-q" })...), "-r", "127.0.0.1:rtree", filepath.Join(r.dir, "got2"))...)
	if res.code != 0 || !strings.Contains(res.stderr, "not a regular file or directory") {
		t.Fatalf("get -r: exit %d\n%s", res.code, res.stderr)
	}
	e2eSame(t, r.srv("rtree/s/b.txt"), filepath.Join(r.dir, "got2/s/b.txt"))
}

// TestE2EGetPutSeveral: several sources for get and put, remote
// wildcards for get, ~ in remote paths, a target that must be a
// directory, and a get whose every source but one worked.
func TestE2EGetPutSeveral(t *testing.T) {
	r := newCpRig(t)
	writeFiles(t, r.root, "a.txt", "b.txt", "logs/1.gz", "logs/2.gz", "logs/3.log")
	got := filepath.Join(r.dir, "got")
	os.Mkdir(got, 0o755)
	r.must(t, "get", "127.0.0.1:a.txt", "127.0.0.1:~/b.txt", "127.0.0.1:logs/*.gz", got)
	if names := dirNames(t, got); !slices.Equal(names, []string{"1.gz", "2.gz", "a.txt", "b.txt"}) {
		t.Fatalf("get of several: %q", names)
	}
	e2eSame(t, r.srv("logs/2.gz"), filepath.Join(got, "2.gz"))
	// Into the current directory when no local path is given.
	cwdRun := func(args ...string) e2eResult {
		cmd := append(append([]string{"get"}, r.opts...), args...)
		wd, _ := os.Getwd()
		defer os.Chdir(wd)
		os.Chdir(got)
		return e2eRun(t, cmd...)
	}
	os.Remove(filepath.Join(got, "3.log"))
	if res := cwdRun("127.0.0.1:logs/*.log"); res.code != 0 {
		t.Fatalf("get into .: %d %s", res.code, res.stderr)
	}
	e2eSame(t, r.srv("logs/3.log"), filepath.Join(got, "3.log"))

	r.fail(t, 1, "Not a directory", "get", "127.0.0.1:a.txt", "127.0.0.1:b.txt", filepath.Join(got, "a.txt"))
	r.fail(t, 1, "127.0.0.1:logs/*.zip: no match", "get", "127.0.0.1:logs/*.zip", got)
	r.fail(t, 1, "cannot expand ~nobody-here", "get", "127.0.0.1:~nobody-here/x", got)
	res := r.fail(t, 1, "1 file or directory was not copied", "get", "127.0.0.1:a.txt", "127.0.0.1:missing.txt", got)
	if !strings.Contains(res.stderr, "127.0.0.1:missing.txt") {
		t.Fatalf("the failed source is not named:\n%s", res.stderr)
	}
	r.fail(t, 2, "is not a remote path", "get", filepath.Join(got, "a.txt"), got)

	// put: several local files into a remote directory (~ expanded).
	os.Mkdir(r.srv("in"), 0o755)
	r.must(t, "put", filepath.Join(got, "a.txt"), filepath.Join(got, "1.gz"), "127.0.0.1:~/in")
	e2eSame(t, filepath.Join(got, "1.gz"), r.srv("in/1.gz"))
	e2eSame(t, filepath.Join(got, "a.txt"), r.srv("in/a.txt"))
	r.fail(t, 1, "Not a directory", "put", filepath.Join(got, "a.txt"), filepath.Join(got, "1.gz"), "127.0.0.1:a.txt")
	r.fail(t, 2, "is a remote path", "put", "127.0.0.1:a.txt", "127.0.0.1:in")
	r.must(t, "put", filepath.Join(got, "b.txt"), fmt.Sprintf("sftp://127.0.0.1:%d/in/from-uri.txt", r.port))
	e2eSame(t, filepath.Join(got, "b.txt"), r.srv("in/from-uri.txt"))
}

// TestE2ELs: ls sorted by name, -S, -t, -r, -1 (output that is not a
// terminal is one name per line anyway), -l of one file laid out as its
// line in the directory's listing (links, owner, group, the year for an
// old file), -a with . and .., and a wildcard.
func TestE2ELs(t *testing.T) {
	r := newCpRig(t)
	now := time.Now()
	for _, f := range []struct {
		name  string
		size  int
		mtime time.Time
	}{
		{"b.txt", 300, now.Add(-3 * time.Hour)},
		{"a.txt", 100, now.Add(-1 * time.Hour)},
		{"C.txt", 200, now.Add(-2 * time.Hour)},
		{"old.txt", 50, time.Date(2020, 1, 2, 3, 4, 5, 0, time.Local)},
		{".hidden", 1, now},
	} {
		p := r.srv(f.name)
		os.WriteFile(p, make([]byte, f.size), 0o644)
		os.Chtimes(p, f.mtime, f.mtime)
	}
	ls := func(args ...string) []string {
		t.Helper()
		res := r.must(t, "ls", args...)
		return strings.Split(strings.TrimRight(res.stdout, "\n"), "\n")
	}
	for _, tc := range []struct {
		flags []string
		want  []string
	}{
		{nil, []string{"C.txt", "a.txt", "b.txt", "old.txt"}},
		{[]string{"-1"}, []string{"C.txt", "a.txt", "b.txt", "old.txt"}},
		{[]string{"-S"}, []string{"b.txt", "C.txt", "a.txt", "old.txt"}},
		{[]string{"-t"}, []string{"a.txt", "C.txt", "b.txt", "old.txt"}},
		{[]string{"-tr"}, []string{"old.txt", "b.txt", "C.txt", "a.txt"}},
		{[]string{"-r"}, []string{"old.txt", "b.txt", "a.txt", "C.txt"}},
		{[]string{"-a"}, []string{".", "..", ".hidden", "C.txt", "a.txt", "b.txt", "old.txt"}},
	} {
		if got := ls(append(tc.flags, "127.0.0.1:")...); !slices.Equal(got, tc.want) {
			t.Errorf("ls %q: %q, want %q", tc.flags, got, tc.want)
		}
	}
	if got := ls("-S", "127.0.0.1:*.txt"); !slices.Equal(got, []string{"b.txt", "C.txt", "a.txt", "old.txt"}) {
		t.Errorf("ls -S '*.txt': %q", got)
	}
	long := ls("-l", "127.0.0.1:")
	var oldLine string
	for _, l := range long {
		if strings.HasSuffix(l, " old.txt") {
			oldLine = l
		}
	}
	single := ls("-l", "127.0.0.1:old.txt")
	if len(single) != 1 || single[0] != oldLine {
		t.Fatalf("ls -l of one file: %q; its line in the listing: %q", single, oldLine)
	}
	re := regexp.MustCompile(`^-rw-r--r-- +1 \S+ +\S+ +50 Jan  2  2020 old\.txt$`)
	if !re.MatchString(oldLine) {
		t.Fatalf("ls -l line %q does not match %v", oldLine, re)
	}
	numeric := ls("-n", "127.0.0.1:old.txt")
	uid := strconv.Itoa(os.Getuid())
	if len(numeric) != 1 || !strings.Contains(numeric[0], " "+uid+" ") {
		t.Fatalf("ls -n: %q", numeric)
	}
	if got := ls("-la", "127.0.0.1:"); len(got) != 7 || !strings.HasPrefix(got[0], "d") || !strings.HasSuffix(got[0], " .") || !strings.HasSuffix(got[1], " ..") {
		t.Fatalf("ls -la: %q", got)
	}
	r.fail(t, 1, "127.0.0.1:*.zip: no match", "ls", "127.0.0.1:*.zip")
}

// TestE2ETildeAgainstSshd: ~user through OpenSSH's sftp-server, which
// expands it with expand-path@openssh.com: the user's home is the login
// directory here, so both list the same names.
func TestE2ETildeAgainstSshd(t *testing.T) {
	dir := t.TempDir()
	key := sshtest.KeyGen(t, dir, "ed25519", 0)
	pub, _ := os.ReadFile(key + ".pub")
	sshd := sshtest.StartSshd(t, string(pub))
	hk, _ := os.ReadFile(sshd.HostKey + ".pub")
	f := strings.Fields(string(hk))
	kh := filepath.Join(dir, "known_hosts")
	os.WriteFile(kh, []byte(fmt.Sprintf("[127.0.0.1]:%d %s %s\n", sshd.Port, f[0], f[1])), 0o600)
	user := sshtest.User(t)
	opts := append(e2eOpts(key, kh, sshd.Port), "-o", "User="+user)
	ls := func(p string) e2eResult {
		return e2eRun(t, append(append([]string{"ls", "-1a"}, opts...), "127.0.0.1:"+p)...)
	}
	home, tilde, tuser := ls(""), ls("~"), ls("~"+user)
	if home.code != 0 || tilde.code != 0 || tuser.code != 0 {
		t.Fatalf("ls: %d %d %d\n%s%s%s", home.code, tilde.code, tuser.code, home.stderr, tilde.stderr, tuser.stderr)
	}
	if home.stdout != tilde.stdout || home.stdout != tuser.stdout || !strings.Contains(home.stdout, "..\n") {
		t.Fatalf("home, ~ and ~%s list differently:\n%s\n--\n%s\n--\n%s", user, home.stdout, tilde.stdout, tuser.stdout)
	}
	if res := ls("~no-such-user-here"); res.code == 0 || !strings.Contains(res.stderr, "cannot expand ~no-such-user-here") {
		t.Fatalf("~ of an unknown user: exit %d %q", res.code, res.stderr)
	}
}

// TestE2ECpThroughJump: cp's -J goes to the same jump handling as get
// and put: both directions reach the target only through the jump host.
func TestE2ECpThroughJump(t *testing.T) {
	r := newJumpRig(t)
	writeFiles(t, r.root, "f.txt")
	j1 := startTestServer(t, t.TempDir(), r.key+".pub", true)
	r.trust(t, j1.khLine)
	r.host("j1", "HostName 127.0.0.1", fmt.Sprintf("Port %d", j1.port))
	r.host("plain", "HostName 127.0.0.1", fmt.Sprintf("Port %d", r.target.port))
	r.write(t)
	local := filepath.Join(r.dir, "got.txt")
	if res := e2eRun(t, "cp", "-F", r.config, "-q", "-J", "j1", "plain:f.txt", local); res.code != 0 {
		t.Fatalf("cp -J from the target: exit %d\n%s", res.code, res.stderr)
	}
	e2eSame(t, filepath.Join(r.root, "f.txt"), local)
	if res := e2eRun(t, "cp", "-F", r.config, "-qJj1", local, "plain:back.txt"); res.code != 0 {
		t.Fatalf("cp -J to the target: exit %d\n%s", res.code, res.stderr)
	}
	e2eSame(t, local, filepath.Join(r.root, "back.txt"))
	if n := len(j1.forwards()); n != 2 {
		t.Fatalf("the jump host forwarded %d connections, want 2", n)
	}
	checkThroughJump(t, r.target, os.Getpid(), "", 2)
}

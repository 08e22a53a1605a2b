package sftp

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeTree writes each file (its contents are its name) under root.
func writeTree(t *testing.T, root string, files ...string) {
	t.Helper()
	for _, f := range files {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, p, []byte(f))
	}
}

func globPaths(t *testing.T, c *Client, pattern string) []string {
	t.Helper()
	ms, err := c.Glob(context.Background(), pattern)
	if err != nil {
		t.Fatalf("Glob(%q): %v", pattern, err)
	}
	var out []string
	for _, m := range ms {
		out = append(out, m.Path)
	}
	return out
}

func TestHasMetaAndEscape(t *testing.T) {
	for _, c := range []struct {
		p    string
		meta bool
	}{{"a/b", false}, {"*.gz", true}, {"a?", true}, {"x[12]", true}, {`a\*b`, false}, {`a\\*`, true}, {"", false}} {
		if got := HasMeta(c.p); got != c.meta {
			t.Errorf("HasMeta(%q) = %v", c.p, got)
		}
	}
	if got := GlobEscape(`/home/a[1]*?\x`); got != `/home/a\[1]\*\?\\x` || HasMeta(got) {
		t.Errorf("GlobEscape = %q", got)
	}
	if got := unescape(`a\*b\\c`); got != `a*b\c` {
		t.Errorf("unescape = %q", got)
	}
}

// TestGlobOurServer expands patterns against a tree on our server, as
// sftp's glob does: per component, hidden names only for a pattern
// that starts with ".", directories only where more components follow,
// sorted, escapes taken literally, and no match an error.
func TestGlobOurServer(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, "logs/a1.gz", "logs/a2.gz", "logs/b.txt", "logs/.h.gz", "logs/sub/c.gz",
		"logs/x*y.gz", "other/a1.gz", "other/deep/d.gz", "top.gz")
	os.Mkdir(filepath.Join(root, "empty"), 0o755)
	os.Symlink("other", filepath.Join(root, "linkdir"))
	c := newOurServerClient(t, root)

	for _, tc := range []struct {
		pattern string
		want    []string
	}{
		{"logs/*.gz", []string{"logs/a1.gz", "logs/a2.gz", "logs/x*y.gz"}},
		{"/logs/a?.gz", []string{"/logs/a1.gz", "/logs/a2.gz"}},
		{"logs/.*.gz", []string{"logs/.h.gz"}},
		{"logs/[ab]*", []string{"logs/a1.gz", "logs/a2.gz", "logs/b.txt"}},
		{`logs/x\*y.gz`, []string{`logs/x\*y.gz`}}, // no wildcard: as written
		{`logs/x\**`, []string{"logs/x*y.gz"}},
		{"*/a1.gz", []string{"linkdir/a1.gz", "logs/a1.gz", "other/a1.gz"}},
		{"*/*/*.gz", []string{"linkdir/deep/d.gz", "logs/sub/c.gz", "other/deep/d.gz"}},
		{"*/", []string{"empty", "linkdir", "logs", "other"}},
		{"l*/sub", []string{"logs/sub"}},
		{"*.gz", []string{"top.gz"}},
	} {
		if got := globPaths(t, c, tc.pattern); !slices.Equal(got, tc.want) {
			t.Errorf("Glob(%q) = %q, want %q", tc.pattern, got, tc.want)
		}
	}
	ms, err := c.Glob(context.Background(), "logs/b.*")
	if err != nil || len(ms) != 1 || ms[0].Attrs.Size != uint64(len("logs/b.txt")) || !strings.Contains(ms[0].Longname, "b.txt") {
		t.Fatalf("Glob's match carries the listing's attributes and longname: %+v %v", ms, err)
	}
	for _, p := range []string{"logs/*.zip", "nodir/*.gz", "empty/*", "l*/nosuch"} {
		_, err := c.Glob(context.Background(), p)
		var nm *NoMatchError
		if !errors.Is(err, ErrNoMatch) || !errors.As(err, &nm) || nm.Pattern != p {
			t.Errorf("Glob(%q): %v, want no match", p, err)
		}
		if p == "nodir/*.gz" && (nm == nil || nm.Cause == nil || !strings.Contains(err.Error(), "no such file")) {
			t.Errorf("Glob(%q) does not say why: %v", p, err)
		}
	}
	if _, err := c.Glob(context.Background(), "logs/[a"); err == nil || !strings.Contains(err.Error(), "bad pattern") {
		t.Errorf("bad pattern: %v", err)
	}
}

// TestTildeOurServer: ~ and ~/x are the login directory (our server
// offers expand-path@openssh.com and has one user: ~bob is an error that
// says so); without the extensions, ~/x is relative and ~bob a clear
// refusal.
func TestTildeOurServer(t *testing.T) {
	root := t.TempDir()
	c := newOurServerClient(t, root)
	for p, want := range map[string]string{"~": "/", "~/a/b": "/a/b", "~//x": "/x", "/abs": "/abs", "rel": "rel"} {
		if got, err := c.ExpandTilde(p); err != nil || got != want {
			t.Errorf("ExpandTilde(%q) = %q, %v; want %q", p, got, err, want)
		}
	}
	if _, err := c.ExpandTilde("~bob/x"); err == nil || !strings.Contains(err.Error(), "cannot expand ~bob") {
		t.Errorf("~bob: %v", err)
	}
	delete(c.exts, extExpandPath)
	delete(c.exts, extHomeDir)
	for p, want := range map[string]string{"~": ".", "~/a/b": "a/b"} {
		if got, err := c.ExpandTilde(p); err != nil || got != want {
			t.Errorf("without expand-path: ExpandTilde(%q) = %q, %v; want %q", p, got, err, want)
		}
	}
	_, err := c.ExpandTilde("~bob")
	if err == nil || !strings.Contains(err.Error(), "offers neither expand-path@openssh.com nor home-directory") {
		t.Errorf("without the extensions, ~bob: %v", err)
	}
	if u, rest, ok := SplitTilde("~alice/a/b"); !ok || u != "alice" || rest != "a/b" {
		t.Errorf("SplitTilde = %q %q %v", u, rest, ok)
	}
}

// TestGlobOpenSSH runs the same expansion against OpenSSH's sftp-server
// (absolute paths: its starting directory is ours).
func TestGlobOpenSSH(t *testing.T) {
	c := newOpenSSHClient(t)
	dir := t.TempDir()
	writeTree(t, dir, "a.log", "b.log", "c.txt", ".d.log", "s/e.log")
	got := globPaths(t, c, dir+"/*.log")
	if want := []string{dir + "/a.log", dir + "/b.log"}; !slices.Equal(got, want) {
		t.Fatalf("Glob = %q, want %q", got, want)
	}
	if got := globPaths(t, c, dir+"/*/*.log"); !slices.Equal(got, []string{dir + "/s/e.log"}) {
		t.Fatalf("Glob */*.log = %q", got)
	}
	home, err := c.TildeHome("")
	if err != nil || home == "" {
		t.Fatalf("TildeHome: %q %v", home, err)
	}
}

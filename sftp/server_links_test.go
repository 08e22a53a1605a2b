package sftp

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rsftp/rsftp/internal/wire"
)

// insideRoot reports whether the host path p is root or under it.
func insideRoot(root, p string) bool {
	return p == root || strings.HasPrefix(p, root+string(filepath.Separator))
}

// TestServerSymlinkResolvedAsKernel: a new link's target is judged the way
// the kernel will resolve it for every other program on the host, from
// the directory the link really lands in and through the links already
// there, not by counting ".." in its text. With x -> "." in the root,
// "x/x/x/../../../etc/passwd" climbs three levels from the root itself.
// Every accepted link must resolve (by the host's own resolution) inside
// the root; every refused one must not exist.
func TestServerSymlinkResolvedAsKernel(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "r")
	outside := filepath.Join(base, "outside")
	mustWrite(t, filepath.Join(outside, "passwd"), []byte("OUTSIDE"))
	mustWrite(t, filepath.Join(root, "f"), []byte("F"))
	mustWrite(t, filepath.Join(root, "etc", "passwd"), []byte("INSIDE"))
	if err := os.MkdirAll(filepath.Join(root, "sub", "deep"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{
		"x":      ".",
		"sub/up": "..",
		"out":    outside,                        // made by someone else: absolute, outside
		"inabs":  filepath.Join(root, "sub"),     // absolute, inside
		"loop":   "loop",                         // never resolves
		"dotdot": "..",                           // at the top: outside
		"fdir":   filepath.Join(root, "f", ".."), // absolute, through a file
	} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		t.Fatal(err)
	}
	h := newSrvHarness(t, &ServerConfig{Root: root})

	for i, c := range []struct {
		target, link string
		ok           bool
		at           string // where the link lands on the host, if not at link
		stored       string // what is stored, if checked
		mkdir        string // made before the link is resolved on the host
		dead         bool   // the host cannot resolve it (ENOTDIR)
	}{
		// The case: x/x/x is the root, then three levels up.
		{target: "x/x/x/../../../etc/passwd", link: "l1"},
		{target: "x/x/x/../f", link: "l2"},
		{target: "x/x/sub/../f", link: "l3", ok: true},
		{target: "sub/up/sub/up/../f", link: "l4"},
		{target: "sub/deep/../../f", link: "l5", ok: true},
		{target: "sub/up/sub/up/f", link: "l6", ok: true},
		// Names that do not exist are taken as written.
		{target: "nosuch/../f", link: "l7", ok: true, mkdir: "nosuch"},
		{target: "nosuch/../../f", link: "l8"},
		{target: "nosuch/a/../../f", link: "l9", ok: true, mkdir: "nosuch/a"},
		{target: "f/../f", link: "l10", ok: true, dead: true},
		// Links made by someone else with absolute targets.
		{target: "out/passwd", link: "l11"},
		{target: "inabs/../f", link: "l12", ok: true},
		{target: "inabs/../../f", link: "l13"},
		{target: "dotdot/r/f", link: "l14"},
		{target: "loop/x", link: "l15"},
		{target: "fdir", link: "l16", ok: true, dead: true},
		// The link's own directory is resolved first: x/x/x is the root,
		// so an absolute target is stored from there and ".." climbs
		// from there.
		{target: "/etc/passwd", link: "x/x/x/l17", ok: true, at: "l17", stored: "etc/passwd"},
		{target: "/f", link: "sub/up/sub/l18", ok: true, at: "sub/l18", stored: "../f"},
		{target: "../f", link: "x/l19"},
		{target: "../f", link: "sub/l20", ok: true},
		{target: "../../f", link: "sub/up/sub/deep/l21", ok: true, at: "sub/deep/l21"},
		{target: "../../../f", link: "sub/up/sub/deep/l22"},
	} {
		code := h.status(typeSymlink, srvStr(c.target), srvStr(c.link))
		at := c.link
		if c.at != "" {
			at = c.at
		}
		hostAt := filepath.Join(realRoot, filepath.FromSlash(at))
		if !c.ok {
			if code == StatusOK {
				resolved, err := filepath.EvalSymlinks(hostAt)
				t.Errorf("%d: link %q -> %q accepted; it resolves to %q (%v)", i, c.link, c.target, resolved, err)
				continue
			}
			wantCode(t, "symlink "+c.target, code, StatusPermissionDenied, StatusNoSuchFile)
			for _, p := range []string{hostAt, filepath.Join(root, filepath.FromSlash(c.link))} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("%d: refused link %q exists at %s", i, c.link, p)
				}
			}
			continue
		}
		if code != StatusOK {
			t.Errorf("%d: link %q -> %q refused: %d", i, c.link, c.target, code)
			continue
		}
		stored, err := os.Readlink(hostAt)
		if err != nil {
			t.Errorf("%d: link %q not at %s: %v", i, c.link, at, err)
			continue
		}
		if c.stored != "" && stored != c.stored {
			t.Errorf("%d: link %q stored %q, want %q", i, c.link, stored, c.stored)
		}
		if c.dead {
			continue
		}
		if c.mkdir != "" {
			os.MkdirAll(filepath.Join(realRoot, c.mkdir), 0o755)
		}
		resolved, err := filepath.EvalSymlinks(hostAt)
		if err != nil || !insideRoot(realRoot, resolved) {
			t.Errorf("%d: accepted link %q -> %q resolves to %q (%v), not inside %s", i, c.link, stored, resolved, err, realRoot)
		}
	}
	if b, err := os.ReadFile(filepath.Join(outside, "passwd")); err != nil || string(b) != "OUTSIDE" {
		t.Errorf("outside file: %q %v", b, err)
	}
}

// TestServerSymlinkMoveKeepsTargetInside: a relative link means something
// else in another directory, so RENAME, posix-rename and hardlink of a
// link to where its target would leave the root are refused; moves that
// keep it inside are not.
func TestServerSymlinkMoveKeepsTargetInside(t *testing.T) {
	root := t.TempDir()
	mustWrite(t, filepath.Join(root, "f"), []byte("F"))
	os.MkdirAll(filepath.Join(root, "a", "b"), 0o755)
	os.MkdirAll(filepath.Join(root, "c", "d"), 0o755)
	h := newSrvHarness(t, &ServerConfig{Root: root})
	wantCode(t, "symlink", h.status(typeSymlink, srvStr("../../f"), srvStr("a/b/l")), StatusOK)
	for _, req := range []struct {
		what   string
		typ    byte
		fields [][]byte
	}{
		{"rename", typeRename, [][]byte{srvStr("a/b/l"), srvStr("l")}},
		{"rename", typeRename, [][]byte{srvStr("a/b/l"), srvStr("a/l")}},
		{"posix-rename", typeExtended, extFields(extPosixRename, srvStr("a/b/l"), srvStr("l"))},
		{"hardlink", typeExtended, extFields(extHardlink, srvStr("a/b/l"), srvStr("a/l"))},
	} {
		wantCode(t, req.what, h.status(req.typ, req.fields...), StatusPermissionDenied)
	}
	for _, p := range []string{"l", "a/l"} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("the link was moved to %s", p)
		}
	}
	wantCode(t, "rename within the depth", h.status(typeRename, srvStr("a/b/l"), srvStr("c/d/l")), StatusOK)
	if b, err := os.ReadFile(filepath.Join(root, "c", "d", "l")); err != nil || string(b) != "F" {
		t.Errorf("moved link reads %q %v", b, err)
	}
}

// TestServerReadlinkNoHostPath: READLINK of a link someone else made with
// an absolute target answers, for a target inside the root (named by the
// root's host path as configured or with its links resolved), the path
// in the client's view, and for a target outside, PERMISSION_DENIED: no
// reply carries a host path. Relative targets come back as stored.
func TestServerReadlinkNoHostPath(t *testing.T) {
	base := t.TempDir()
	real := filepath.Join(base, "real")
	alias := filepath.Join(base, "alias")
	os.MkdirAll(filepath.Join(real, "a", "b"), 0o755)
	if err := os.Symlink("real", alias); err != nil {
		t.Fatal(err)
	}
	links := []struct{ name, target, want string }{
		{"in1", filepath.Join(real, "a", "b"), "/a/b"},
		{"in2", filepath.Join(alias, "a"), "/a"},
		{"in3", real, "/"},
		{"in4", real + "/a/../a//b/", "/a/b"},
		{"in5", filepath.Join(real, "nosuch"), "/nosuch"},
		{"out1", filepath.Join(base, "outside", "x"), ""},
		{"out2", "/etc/passwd", ""},
		{"out3", real + "x/y", ""}, // the root's name as a string prefix
		{"out4", real + "/../outside", ""},
		{"out5", base, ""},
		{"rel", "../x", "../x"},
	}
	for _, l := range links {
		if err := os.Symlink(l.target, filepath.Join(real, l.name)); err != nil {
			t.Fatal(err)
		}
	}
	h := newSrvHarness(t, &ServerConfig{Root: alias})
	for _, l := range links {
		rt, body := request(h, typeReadlink, srvStr(l.name))
		if bytes.Contains(body, []byte(base)) {
			t.Errorf("readlink %s (-> %s): reply reveals the host path: %q", l.name, l.target, body)
		}
		if l.want == "" {
			if code, ok := replyStatus(rt, body); !ok || code != StatusPermissionDenied {
				t.Errorf("readlink %s (-> %s): reply %d %q, want PERMISSION_DENIED", l.name, l.target, rt, body)
			}
			continue
		}
		if rt != typeName {
			t.Errorf("readlink %s (-> %s): reply %d %q", l.name, l.target, rt, body)
			continue
		}
		r := wire.NewReader(body)
		if n, got := r.Uint32(), r.String(); n != 1 || got != l.want {
			t.Errorf("readlink %s (-> %s) = %q, want %q", l.name, l.target, got, l.want)
		}
	}
}

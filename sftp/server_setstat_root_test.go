package sftp

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestServerSetstatRootRefused: SETSTAT, lsetstat and FSETSTAT that would
// change the root directory itself (mode, times, owner, size), under any
// name that reaches it ("/", ".", "..", "d/..", a link to it, a handle on
// it), are refused with PERMISSION_DENIED and leave it as it was. Other
// directories still change.
func TestServerSetstatRootRefused(t *testing.T) {
	root := t.TempDir()
	os.Mkdir(filepath.Join(root, "d"), 0o755)
	os.Symlink(".", filepath.Join(root, "self"))
	os.Symlink("..", filepath.Join(root, "d", "up"))
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chmod(root, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(root, old, old); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(root)
	if err != nil {
		t.Fatal(err)
	}
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	times := append(srvU32(AttrACModTime), append(srvU32(1000000000), srvU32(1000000000)...)...)
	attrs := map[string][]byte{
		"mode":  srvPerm(0o777),
		"times": times,
		"owner": append(srvU32(AttrUIDGID), append(srvU32(uid), srvU32(gid)...)...),
		"size":  append(srvU32(AttrSize), srvU64(0)...),
	}
	h := newSrvHarness(t, &ServerConfig{Root: root, Home: "/d"})
	check := func(what string) {
		t.Helper()
		after, err := os.Stat(root)
		if err != nil || after.Mode() != before.Mode() || !after.ModTime().Equal(before.ModTime()) {
			t.Fatalf("%s changed the root: %v %v, was %v %v (%v)", what, after.Mode(), after.ModTime(), before.Mode(), before.ModTime(), err)
		}
	}
	for an, a := range attrs {
		for _, name := range []string{"/", "..", "/d/..", "/self", "/self/self", "up", "/d/up/.", "up/d/up"} {
			what := "setstat " + an + " " + name
			wantCode(t, what, h.status(typeSetstat, srvStr(name), a), StatusPermissionDenied)
			check(what)
		}
		for _, name := range []string{"/", "..", "/d/.."} {
			what := "lsetstat " + an + " " + name
			wantCode(t, what, h.status(typeExtended, extFields(extLsetstat, srvStr(name), a)...), StatusPermissionDenied)
			check(what)
		}
		for _, open := range []func() (string, uint32){
			func() (string, uint32) { return h.handle(typeOpendir, srvStr("/")) },
			func() (string, uint32) { return h.handle(typeOpendir, srvStr("/self")) },
			func() (string, uint32) { return h.open("/", FlagRead) },
		} {
			hd, code := open()
			if code != StatusOK {
				t.Fatalf("open the root: %d", code)
			}
			what := "fsetstat " + an
			wantCode(t, what, h.status(typeFsetstat, srvStr(hd), a), StatusPermissionDenied)
			check(what)
			wantCode(t, "close", h.status(typeClose, srvStr(hd)), StatusOK)
		}
	}
	// Nothing asked: nothing to refuse.
	wantCode(t, "setstat / no attrs", h.status(typeSetstat, srvStr("/"), srvNoAttrs()), StatusOK)
	// Below the root, and through the link to it, changes still apply.
	wantCode(t, "setstat d", h.status(typeSetstat, srvStr("/self/d"), srvPerm(0o700)), StatusOK)
	if fi, err := os.Stat(filepath.Join(root, "d")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("setstat /self/d: %v %v", fi.Mode(), err)
	}
	// The link itself is not the root: lsetstat may change its owner.
	wantCode(t, "lsetstat self owner", h.status(typeExtended, extFields(extLsetstat, srvStr("/self"), attrs["owner"])...), StatusOK)
	if _, err := os.Lstat(filepath.Join(root, "self")); err != nil || errors.Is(err, fs.ErrNotExist) {
		t.Error(err)
	}
}

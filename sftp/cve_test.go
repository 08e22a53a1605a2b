package sftp

// Regression tests named after the CVEs whose attack classes they cover
// (grep -n CVE_ sftp/). Server side they drive Serve with raw packets
// through srvHarness (server_test.go) and then look at the real file
// system: a root <tmp>/a beside <tmp>/ab (the root's name is a string
// prefix of it) and <tmp>/secret, and nothing beside the root may change
// or be read. Client side the real Client runs against scriptedServer or
// lyingTree below, which answer with whatever bytes a test chooses.
// Older tests of the same defences: TestServerRootEscapes,
// TestServerSymlinkSwap, TestServerMalformed, TestClientMaliciousReaddir.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/wire"
)

// The secrets beside the root. Their lengths are unlike any file, link
// or directory inside it, so an ATTRS carrying one gives it away too.
var (
	abSecret  = strings.Repeat("AB-SECRET ", 400)  // <tmp>/ab/secret, 4000 bytes
	topSecret = strings.Repeat("TOP-SECRET ", 500) // <tmp>/secret, 5500 bytes
)

// escapeFixture is the tree the root-escape tests attack.
type escapeFixture struct {
	t          *testing.T
	base, root string
	outside    string            // outsideState when the fixture was made
	full       string            // treeState, contents included, then
	made       map[string]string // unitState of each part of the root as made
}

// fixtureTime is the modification time of everything in the fixture:
// any write, truncation or change of times moves it.
var fixtureTime = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)

func newEscapeFixture(t *testing.T) *escapeFixture {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links")
	}
	base := t.TempDir()
	f := &escapeFixture{t: t, base: base, root: filepath.Join(base, "a"), made: map[string]string{}}
	mustWrite(t, filepath.Join(base, "ab", "secret"), []byte(abSecret))
	mustWrite(t, filepath.Join(base, "ab", "ab-only-entry"), nil)
	mustWrite(t, filepath.Join(base, "secret"), []byte(topSecret))
	mustWrite(t, filepath.Join(base, "base-only-entry"), nil)
	if err := os.Mkdir(f.root, 0o755); err != nil {
		t.Fatal(err)
	}
	f.rebuild()
	for _, p := range []string{"ab/secret", "ab/ab-only-entry", "secret", "base-only-entry", "ab", "."} {
		os.Chtimes(filepath.Join(base, p), fixtureTime, fixtureTime)
	}
	f.outside = f.outsideState()
	f.full = treeState(t, f.base, f.root)
	t.Cleanup(func() {
		if got := treeState(t, f.base, f.root); got != f.full {
			t.Errorf("what is beside the root changed:\nbefore:\n%s\nafter:\n%s", f.full, got)
		}
	})
	return f
}

// fixtureUnit is one entry of the root and what is under it.
type fixtureUnit struct {
	name  string
	build func(p string)
}

func (f *escapeFixture) units() []fixtureUnit {
	t := f.t
	file := func(content string) func(string) {
		return func(p string) {
			mustWrite(t, p, []byte(content))
			os.Chtimes(p, fixtureTime, fixtureTime)
		}
	}
	link := func(target string) func(string) {
		return func(p string) {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The outside paths, spelled as the client would, name a mirror
	// inside the root.
	mirrorTop := strings.SplitN(strings.TrimPrefix(f.base, "/"), "/", 2)[0]
	units := []fixtureUnit{
		{"inside", file("INSIDE")},
		{"victim", file("VICTIM")},
		{"d", func(p string) {
			file("in d")(filepath.Join(p, "f"))
			link("../toab")(filepath.Join(p, "chain3"))
			link("../../ab/secret")(filepath.Join(p, "up"))
			link("../../ab/nosuch")(filepath.Join(p, "upx")) // as long as up's target
			os.Chtimes(p, fixtureTime, fixtureTime)
		}},
		{mirrorTop, func(string) {
			mirror := filepath.Join(f.root, f.base)
			file("MIRROR of ab")(filepath.Join(mirror, "ab", "secret"))
			file("MIRROR of the top")(filepath.Join(mirror, "secret"))
			for d := filepath.Join(mirror, "ab"); d != f.root; d = filepath.Dir(d) {
				os.Chtimes(d, fixtureTime, fixtureTime)
			}
		}},
	}
	for _, l := range []struct{ name, target string }{
		{"toab", "../ab"},                        // relative, to a directory outside
		{"toababs", filepath.Join(f.base, "ab")}, // absolute, to a directory outside
		{"tosecret", "../secret"},                // relative, to a file outside
		{"tosecretabs", filepath.Join(f.base, "secret")},
		{"dotdot", ".."},
		{"rootabs", f.root}, // the root itself, by its host path
		{"self", "."},
		{"chain1", "chain2"}, // a chain ending in a relative link outside
		{"chain2", "d/chain3"},
		{"chainabs1", "chainabs2"}, // a chain ending in an absolute one
		{"chainabs2", filepath.Join(f.base, "ab")},
		{"loop", "loop"},
	} {
		units = append(units, fixtureUnit{l.name, link(l.target)})
	}
	return units
}

// rebuild makes the root hold the fixture's tree again (not by making
// the root anew: Serve holds it open), remaking the parts that changed.
func (f *escapeFixture) rebuild() {
	t := f.t
	t.Helper()
	ents, err := os.ReadDir(f.root)
	if err != nil {
		t.Fatal(err)
	}
	kept := map[string]bool{}
	for _, e := range ents {
		p := filepath.Join(f.root, e.Name())
		if st, ok := f.made[e.Name()]; ok && unitState(t, p) == st {
			kept[e.Name()] = true
			continue
		}
		if e.Type()&fs.ModeSymlink == 0 {
			os.Chmod(p, 0o755) // not through a link: that would reach outside
		}
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range f.units() {
		if !kept[u.name] {
			p := filepath.Join(f.root, u.name)
			u.build(p)
			f.made[u.name] = unitState(t, p)
		}
	}
	os.Chmod(f.root, 0o755)
}

// unitState describes the tree at p without reading files: types,
// permissions, sizes, modification times and link targets.
func unitState(t *testing.T, p string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", q, err)
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", q, err)
			return nil
		}
		fmt.Fprintf(&b, "%s %v %d %d", q, fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		if fi.Mode()&fs.ModeSymlink != 0 {
			tg, _ := os.Readlink(q)
			b.WriteString(" -> " + tg)
		}
		b.WriteByte('\n')
		return nil
	})
	return b.String()
}

// outsideState describes everything under base but the root, cheaply
// (see unitState); the fixture compares contents too when the test ends.
func (f *escapeFixture) outsideState() string {
	var b strings.Builder
	ents, _ := os.ReadDir(f.base)
	for _, e := range ents {
		if p := filepath.Join(f.base, e.Name()); p != f.root {
			b.WriteString(unitState(f.t, p))
		}
	}
	fi, _ := os.Lstat(f.base)
	fmt.Fprintf(&b, ". %v %d\n", fi.Mode(), fi.ModTime().UnixNano())
	return b.String()
}

// treeState describes the tree at dir, leaving out skip, contents
// included.
func treeState(t *testing.T, dir, skip string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fmt.Fprintf(&b, "%s %v %d %d", rel, fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
		switch {
		case fi.Mode().IsRegular():
			c, _ := os.ReadFile(p)
			fmt.Fprintf(&b, " %x", sha256.Sum256(c))
		case fi.Mode()&fs.ModeSymlink != 0:
			tg, _ := os.Readlink(p)
			fmt.Fprintf(&b, " -> %q", tg)
		}
		b.WriteByte('\n')
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func (f *escapeFixture) checkOutside(what string) {
	f.t.Helper()
	if got := f.outsideState(); got != f.outside {
		f.t.Fatalf("%s changed what is beside the root:\nbefore:\n%s\nafter:\n%s", what, f.outside, got)
	}
}

// request sends a request with a fresh id and returns the reply's type and
// its body after the id, checking the framing on the way.
func request(h *srvHarness, typ byte, fields ...[]byte) (byte, []byte) {
	h.t.Helper()
	h.id++
	h.sendRaw(srvPacket(typ, append([][]byte{srvU32(h.id)}, fields...)...))
	rt, body := h.recvRaw()
	if len(body)+1 > MaxPacket {
		h.t.Fatalf("reply of %d bytes exceeds MaxPacket", len(body)+1)
	}
	if len(body) < 4 || binary.BigEndian.Uint32(body) != h.id {
		h.t.Fatalf("reply (type %d) without the request's id %d", rt, h.id)
	}
	return rt, body[4:]
}

// replyStatus returns a STATUS reply's code, or ok false for another type.
func replyStatus(rt byte, body []byte) (uint32, bool) {
	if rt != typeStatus || len(body) < 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(body), true
}

// attack is one request with a path under test in one of its fields.
type attack struct {
	what    string
	typ     byte
	fields  [][]byte
	replies string // the reply types it may get besides STATUS
	mutates bool   // success changes the root: rebuild after it
	follow  bool   // the request follows the path (a read of it)
}

func extFields(name string, f ...[]byte) [][]byte {
	return append([][]byte{srvStr(name)}, f...)
}

// pathAttacks are every request that takes a path, with p in each path
// field in turn; the other path is an innocent one inside the root.
func pathAttacks(p string) []attack {
	times := append(srvU32(AttrACModTime), append(srvU32(1000000000), srvU32(1000000000)...)...)
	size0 := append(srvU32(AttrSize), srvU64(0)...)
	s := srvStr(p)
	open := func(fl uint32) [][]byte { return [][]byte{s, srvU32(fl), srvNoAttrs()} }
	h, n, a, x := string([]byte{typeHandle}), string([]byte{typeName}), string([]byte{typeAttrs}), string([]byte{typeExtendedReply})
	return []attack{
		{"open read", typeOpen, open(FlagRead), h, false, true},
		{"open read-write", typeOpen, open(FlagRead | FlagWrite), h, true, true},
		{"open create", typeOpen, open(FlagWrite | FlagCreate), h, true, false},
		{"open create-trunc", typeOpen, open(FlagWrite | FlagCreate | FlagTrunc), h, true, false},
		{"open create-excl", typeOpen, open(FlagWrite | FlagCreate | FlagExcl), h, true, false},
		{"open append", typeOpen, open(FlagWrite | FlagAppend), h, true, true},
		{"stat", typeStat, [][]byte{s}, a, false, true},
		{"lstat", typeLstat, [][]byte{s}, a, false, false},
		{"opendir", typeOpendir, [][]byte{s}, h, false, true},
		{"realpath", typeRealpath, [][]byte{s}, n, false, false},
		{"readlink", typeReadlink, [][]byte{s}, n, false, false},
		{"setstat mode", typeSetstat, [][]byte{s, srvPerm(0o777)}, "", true, true},
		{"setstat size", typeSetstat, [][]byte{s, size0}, "", true, true},
		{"setstat times", typeSetstat, [][]byte{s, times}, "", true, true},
		{"lsetstat mode", typeExtended, extFields(extLsetstat, s, srvPerm(0o777)), "", true, false},
		{"lsetstat times", typeExtended, extFields(extLsetstat, s, times), "", true, false},
		{"remove", typeRemove, [][]byte{s}, "", true, false},
		{"rmdir", typeRmdir, [][]byte{s}, "", true, false},
		{"mkdir", typeMkdir, [][]byte{s, srvNoAttrs()}, "", true, false},
		{"rename from", typeRename, [][]byte{s, srvStr("victim2")}, "", true, false},
		{"rename to", typeRename, [][]byte{srvStr("victim"), s}, "", true, false},
		{"posix-rename from", typeExtended, extFields(extPosixRename, s, srvStr("victim2")), "", true, false},
		{"posix-rename to", typeExtended, extFields(extPosixRename, srvStr("victim"), s), "", true, false},
		{"hardlink from", typeExtended, extFields(extHardlink, s, srvStr("victim2")), "", true, false},
		{"hardlink to", typeExtended, extFields(extHardlink, srvStr("victim"), s), "", true, false},
		{"symlink target", typeSymlink, [][]byte{s, srvStr("planted")}, "", true, false},
		{"symlink at", typeSymlink, [][]byte{srvStr("victim"), s}, "", true, false},
		{"statvfs", typeExtended, extFields(extStatVFS, s), x, false, true},
		{"expand-path", typeExtended, extFields(extExpandPath, s), n, false, false},
		{"expand-path ~/", typeExtended, extFields(extExpandPath, srvStr("~/"+p)), n, false, false},
		{"hash-range", typeExtended, extFields(extHashRange, s, srvU64(0), srvU64(64), srvStr("sha256")), x, false, true},
	}
}

// run sends a, follows up on what it opened or planted, checks every
// reply for what lies beside the root and the file system for changes
// there, and returns the first reply's type and body.
func (f *escapeFixture) run(h *srvHarness, p string, a attack) (byte, []byte) {
	t := f.t
	t.Helper()
	what := fmt.Sprintf("%s %q", a.what, p)
	rt, body := request(h, a.typ, a.fields...)
	if rt != typeStatus && strings.IndexByte(a.replies, rt) < 0 {
		t.Fatalf("%s: reply type %d", what, rt)
	}
	f.checkReply(what, p, a, rt, body)
	if rt == typeHandle {
		f.drainHandle(h, what, p, wire.NewReader(body).String(), a.typ == typeOpendir)
	}
	if code, _ := replyStatus(rt, body); rt == typeStatus && code == StatusOK && a.typ == typeSymlink && a.what == "symlink target" {
		// A link to p was made: following it must not leave the root
		// either.
		for _, b := range pathAttacks("planted") {
			if b.follow && !b.mutates {
				f.run(h, "planted", b)
			}
		}
	}
	// Read requests cannot change anything; the fixture compares all of
	// it, contents included, when the test ends.
	if a.mutates || rt != typeStatus {
		f.checkOutside(what)
	}
	if c, _ := replyStatus(rt, body); a.mutates && (rt != typeStatus || c == StatusOK) {
		f.rebuild()
	}
	return rt, body
}

// drainHandle reads or lists what a handle opened (writing a marker
// through it too), checks the replies and closes it.
func (f *escapeFixture) drainHandle(h *srvHarness, what, p, hd string, dir bool) {
	rd := attack{what: what, replies: string([]byte{typeData, typeName, typeAttrs})}
	if dir {
		for range 20 {
			rt, body := request(h, typeReaddir, srvStr(hd))
			f.checkReply(what+" readdir", p, rd, rt, body)
			if rt != typeName {
				break
			}
		}
	} else {
		rt, body := request(h, typeRead, srvStr(hd), srvU64(0), srvU32(1<<16))
		f.checkReply(what+" read", p, rd, rt, body)
		rt, body = request(h, typeFstat, srvStr(hd))
		f.checkReply(what+" fstat", p, rd, rt, body)
		request(h, typeWrite, srvStr(hd), srvU64(0), srvStr("PLANTED"))
	}
	if rt, body := request(h, typeClose, srvStr(hd)); rt != typeStatus {
		f.t.Fatalf("%s: close: reply %d %x", what, rt, body)
	}
}

// checkReply fails the test if a reply carries anything from beside the
// root: contents, names, sizes, digests or the host path of the root.
// Exempt from the last: a probe that spells the host path itself (it is
// a path inside the root, and names it in replies). READLINK of a link an
// administrator made with an absolute target answers the path inside the
// root, or PERMISSION_DENIED for one outside (TestServerReadlinkNoHostPath).
func (f *escapeFixture) checkReply(what, p string, a attack, rt byte, body []byte) {
	t := f.t
	t.Helper()
	for _, s := range []string{"AB-SECRET", "TOP-SECRET", "ab-only-entry", "base-only-entry"} {
		if bytes.Contains(body, []byte(s)) {
			t.Fatalf("%s: reply (type %d) carries %q from beside the root", what, rt, s)
		}
	}
	for _, s := range []string{abSecret, topSecret} {
		d := sha256.Sum256([]byte(s[:64]))
		if bytes.Contains(body, d[:]) {
			t.Fatalf("%s: reply carries the digest of a secret", what)
		}
	}
	if !strings.Contains(p, f.base) && bytes.Contains(body, []byte(f.base)) {
		t.Fatalf("%s: reply (type %d) reveals the host path %q: %q", what, rt, f.base, body)
	}
	r := wire.NewReader(body)
	var attrs []Attrs
	switch rt {
	case typeAttrs:
		attrs = append(attrs, parseAttrs(r))
	case typeName:
		n := r.Uint32()
		for range n {
			r.Bytes()
			r.Bytes()
			attrs = append(attrs, parseAttrs(r))
		}
	case typeStatus:
		r.Uint32()
		if msg := r.String(); strings.Contains(msg, "/") {
			t.Errorf("%s: status message %q may carry a path", what, msg)
		}
	}
	if r.Err() != nil {
		t.Fatalf("%s: malformed reply (type %d): %v", what, rt, r.Err())
	}
	for _, at := range attrs {
		if at.Flags&AttrSize != 0 && (at.Size == uint64(len(abSecret)) || at.Size == uint64(len(topSecret))) {
			t.Fatalf("%s: reply carries the size of a secret (%d)", what, at.Size)
		}
	}
}

// Probes: ways to name what is beside the root.
func traversalProbes(base, root string) []string {
	return []string{
		// ".." in every position.
		"..", "../ab", "../ab/secret", "../secret", "/../ab/secret", "/../../../../../ab/secret",
		"d/../../ab/secret", "./../ab/secret", "d/./../../ab", "/d/..//../ab/secret", "..//ab//secret",
		"../a/../ab/secret", "../ab/secret/", "../ab/secret/.", "/..", "../../..", "d/../..", "d/..",
		".../ab", "..../ab/secret", "ab/../../ab/secret",
		// Encoded, escaped and look-alike forms, which are names like any other.
		"%2e%2e/ab/secret", "..%2fab%2fsecret", "%2e%2e%2fab%2fsecret", "..\\ab\\secret", "..%5cab%5csecret",
		"%252e%252e%252fab", "\u2025/ab/secret", "\uff0e\uff0e/ab/secret", "..%00/ab/secret", ".. /ab/secret",
		"..;/ab/secret", "..\u2215ab\u2215secret", "..\u2044ab", "..%c0%afab",
		// Absolute host paths, and the root's name as a string prefix.
		base + "/ab/secret", base + "/secret", base + "/a/../ab/secret", base + "/ab", root + "/../ab/secret",
		root, root + "b/secret", root + "b", "/" + base + "/ab/secret", base + "/ab/../ab/secret",
	}
}

// nulProbes carry a NUL, at which a C server would cut the name.
var nulProbes = []string{"..\x00/ab/secret", "inside\x00/../../ab/secret", "../ab/secret\x00", "inside\x00", "\x00"}

// linkProbes go through the fixture's links.
var linkProbes = []string{
	"toab", "toab/secret", "toab/ab-only-entry", "toababs", "toababs/secret", "tosecret", "tosecretabs",
	"dotdot", "dotdot/ab/secret", "dotdot/a/inside", "chain1", "chain1/secret", "chainabs1/secret",
	"d/up", "d/chain3/secret", "rootabs", "rootabs/inside", "self/../ab/secret", "toab/../a/inside",
	"d/../toab/secret", "loop",
}

// TestCVE_2026_23942_RootPrefixNotComponent: Erlang/OTP's ssh_sftpd
// checked that a path lay inside the root with a string prefix test, so
// with a root of /home/user1 the sibling /home/user10 passed for inside
// (CVE-2026-23942). Here the root is <tmp>/a and the sibling <tmp>/ab;
// every request that takes a path gets every way we know of naming the
// sibling or <tmp>/secret, in each of its path fields: ".." in every
// position, plain and in encoded and look-alike forms, absolute host
// paths, the root's own path with "b" appended, and links out of the
// root, relative and absolute, chained, to directories with paths
// through them. Each must leave everything beside the root as it was
// and return nothing of it (contents, names, sizes, digests, host
// paths). What the root holds is laid out again after each request that
// succeeded, so every request meets the same tree.
func TestCVE_2026_23942_RootPrefixNotComponent(t *testing.T) {
	t.Parallel()
	f := newEscapeFixture(t)
	h := newSrvHarness(t, &ServerConfig{Root: f.root})
	for _, p := range traversalProbes(f.base, f.root) {
		for _, a := range pathAttacks(p) {
			f.run(h, p, a)
		}
	}
	// Through a link that leaves the root, requests that follow the path
	// fail; with a NUL every request fails, rather than acting on the
	// name before it.
	for _, p := range append(linkProbes, nulProbes...) {
		nul := strings.IndexByte(p, 0) >= 0
		for _, a := range pathAttacks(p) {
			rt, body := f.run(h, p, a)
			if code, ok := replyStatus(rt, body); (a.follow || nul) && (!ok || code == StatusOK) {
				t.Errorf("%s %q: reply type %d (status %d), want an error", a.what, p, rt, code)
			}
		}
	}

	// A host path is a path inside the root.
	for p, want := range map[string]string{
		f.base + "/ab/secret":          "MIRROR of ab",
		f.root + "b/secret":            "MIRROR of ab",
		f.base + "/a/../ab/secret":     "MIRROR of ab",
		"/" + f.base + "/secret":       "MIRROR of the top",
		"/../../" + f.base + "/secret": "MIRROR of the top",
	} {
		hd := h.mustOpen(p, FlagRead)
		rt, body := request(h, typeRead, srvStr(hd), srvU64(0), srvU32(100))
		if got := wire.NewReader(body).String(); rt != typeData || got != want {
			t.Errorf("read %q: type %d %q, want %q", p, rt, got, want)
		}
		request(h, typeClose, srvStr(hd))
	}
	// Encoded names are not decoded: they make entries of that name.
	for _, p := range []string{"..%2fab", "..\\ab", "\u2025", "%2e%2e"} {
		if c := h.status(typeMkdir, srvStr(p), srvNoAttrs()); c != StatusOK {
			t.Errorf("mkdir %q: %d", p, c)
		} else if fi, err := os.Lstat(filepath.Join(f.root, p)); err != nil || !fi.IsDir() {
			t.Errorf("mkdir %q made no such entry in the root: %v", p, err)
		}
	}
	// Links the client plants that point out of the root on the host,
	// by way of a link in the link's own path (the server's check of a
	// relative target is lexical) or by moving a link after making it:
	// other programs on the host may follow them out, but through the
	// server they lead nowhere.
	for _, req := range []struct {
		typ    byte
		fields [][]byte
	}{
		{typeSymlink, [][]byte{srvStr("."), srvStr("/d2")}},
		{typeSymlink, [][]byte{srvStr("../secret"), srvStr("/d2/x")}},
		{typeSymlink, [][]byte{srvStr("/../ab/secret"), srvStr("/d2/y")}},
		{typeMkdir, [][]byte{srvStr("/sub"), srvNoAttrs()}},
		{typeSymlink, [][]byte{srvStr("../secret"), srvStr("/sub/z")}},
		{typeRename, [][]byte{srvStr("/sub/z"), srvStr("/z")}},
		{typeSymlink, [][]byte{srvStr("../../ab"), srvStr("/sub/w")}},
		{typeExtended, extFields(extPosixRename, srvStr("/sub/w"), srvStr("/w"))},
	} {
		h.status(req.typ, req.fields...)
	}
	for _, p := range []string{"x", "y", "z", "w/secret", "d2/x", "d2/y"} {
		for _, a := range pathAttacks(p) {
			if !a.follow {
				continue
			}
			rt, body := f.run(h, p, a)
			if code, ok := replyStatus(rt, body); !ok || code == StatusOK {
				t.Errorf("%s %q through a planted link: reply type %d (status %d), want an error", a.what, p, rt, code)
			}
		}
	}
	f.checkOutside("the whole run")
	if err := h.close(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// TestCVE_2023_35887_NoExistenceOracleOutsideRoot: Apache MINA SSHD's
// rooted file system told a user whether items outside the root existed
// when the path climbed above the root with ".." or went through
// symbolic links (CVE-2023-35887; OTP's REALPATH had the same oracle,
// CVE-2026-53422). Each pair of paths here differs only in naming a file
// (or directory) beside the root that exists or one that does not: every
// request must get the same answer for both, message text included.
func TestCVE_2023_35887_NoExistenceOracleOutsideRoot(t *testing.T) {
	t.Parallel()
	f := newEscapeFixture(t)
	h := newSrvHarness(t, &ServerConfig{Root: f.root})
	type pair struct{ there, missing, token string }
	var pairs []pair
	for _, route := range []string{"..", "/..", "../../..", "d/../..", "/d/../..", "toab", "toababs", "chain1",
		"chainabs1", "dotdot/ab", "d/chain3", "rootabs/..", "rootabs/../ab", "tosecret/..", "dotdot/a/../ab",
		"toab/../ab", "self/..", "../a/.."} {
		pairs = append(pairs, pair{route + "/secret", route + "/nosuch", "nosuch"})
		pairs = append(pairs, pair{route + "/ab", route + "/zz", "zz"})
		pairs = append(pairs, pair{route + "/ab/secret", route + "/zz/secret", "zz"})
		pairs = append(pairs, pair{route + "/secret/x", route + "/nosuch/x", "nosuch"})
	}
	// Links inside the root, to something outside that exists and to
	// something that does not: requests that follow them (not those on
	// the link itself, which is inside and differs by its target).
	linkPair := pair{"d/up", "d/upx", ""}
	replyOf := func(p string, a attack) string {
		rt, body := f.run(h, p, a)
		if rt == typeHandle {
			body = nil // handle strings are counters
		}
		return fmt.Sprintf("type %d %q", rt, body)
	}
	for _, pr := range append(pairs, linkPair) {
		ta, ma := pathAttacks(pr.there), pathAttacks(pr.missing)
		for i := range ta {
			if pr == linkPair && !ta[i].follow {
				continue
			}
			got1 := replyOf(pr.there, ta[i])
			got2 := replyOf(pr.missing, ma[i])
			if pr.token != "" {
				got2 = strings.ReplaceAll(got2, pr.token, map[string]string{"nosuch": "secret", "zz": "ab"}[pr.token])
			}
			if got1 != got2 {
				t.Errorf("%s tells %q (beside the root, exists) from %q (does not):\n  %s\n  %s",
					ta[i].what, pr.there, pr.missing, got1, got2)
			}
		}
	}
}

// TestCVE_2026_32147_HandleOpsActOnOpenFile: OTP's ssh_sftpd kept the
// client's raw path in a handle, so FSETSTAT on it changed the file of
// that name on the real file system, outside the root (CVE-2026-32147).
// Here the client opens <tmp>/ab/secret by its host path, which inside
// the root names a mirror of it, and every request on the handle (after
// the mirror's directory has been replaced by a link to the real one,
// too) must act on the file opened: the real secret keeps its mode,
// times, size and content.
func TestCVE_2026_32147_HandleOpsActOnOpenFile(t *testing.T) {
	f := newEscapeFixture(t)
	h := newSrvHarness(t, &ServerConfig{Root: f.root})
	mirrorDir := filepath.Join(f.root, f.base, "ab")
	p := f.base + "/ab/secret"

	hd := h.mustOpen(p, FlagRead|FlagWrite)
	src := h.mustOpen("inside", FlagRead)
	mt := int64(1000000000)
	for round, swap := range []bool{false, true} {
		if swap {
			// Now the raw path, in the root or out of it, leads to the
			// real secret: the handle must still mean the mirror.
			if err := os.Rename(mirrorDir, mirrorDir+".moved"); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(f.base, "ab"), mirrorDir); err != nil {
				t.Fatal(err)
			}
			mirrorDir += ".moved"
		}
		wantCode(t, "fsetstat size", h.status(typeFsetstat, srvStr(hd), append(srvU32(AttrSize), srvU64(3)...)), StatusOK)
		wantCode(t, "write", h.status(typeWrite, srvStr(hd), srvU64(3), srvStr("W")), StatusOK)
		wantCode(t, "copy-data", h.status(typeExtended, srvStr(extCopyData), srvStr(src), srvU64(0), srvU64(2),
			srvStr(hd), srvU64(4)), StatusOK)
		attrs := append(srvU32(AttrPermissions|AttrACModTime), srvU32(0o600)...)
		attrs = append(attrs, srvU32(uint32(mt))...)
		attrs = append(attrs, srvU32(uint32(mt))...)
		wantCode(t, "fsetstat mode and times", h.status(typeFsetstat, srvStr(hd), attrs), StatusOK)
		wantCode(t, "fsetstat owner", h.status(typeFsetstat, srvStr(hd),
			append(srvU32(AttrUIDGID), append(srvU32(uint32(os.Getuid())), srvU32(uint32(os.Getgid()))...)...)), StatusOK)
		wantCode(t, "fsync", h.status(typeExtended, srvStr(extFsync), srvStr(hd)), StatusOK)
		if rt, body := request(h, typeFstat, srvStr(hd)); rt != typeAttrs || parseAttrs(wire.NewReader(body)).Size != 6 {
			t.Errorf("round %d: fstat: type %d %x", round, rt, body)
		}
		rt, body := request(h, typeRead, srvStr(hd), srvU64(0), srvU32(100))
		if got := wire.NewReader(body).String(); rt != typeData || got != "MIRWIN" {
			t.Errorf("round %d: read back %q (type %d), want %q", round, got, rt, "MIRWIN")
		}
		if rt, _ := request(h, typeExtended, srvStr(extFstatVFS), srvStr(hd)); rt != typeExtendedReply {
			t.Errorf("round %d: fstatvfs: type %d", round, rt)
		}
		fi, err := os.Stat(filepath.Join(mirrorDir, "secret"))
		if err != nil || fi.Mode().Perm() != 0o600 || fi.ModTime().Unix() != mt || fi.Size() != 6 {
			t.Errorf("round %d: the mirror: %v %v", round, fi, err)
		}
		f.checkOutside(fmt.Sprintf("round %d on the handle", round))
		mt += 1000
	}
	h.status(typeClose, srvStr(hd))
	h.status(typeClose, srvStr(src))
}

// TestCVE_2026_48855_NoHostPathInReplies: OTP's ssh_sftpd answered
// READLINK with the link's target on the host, so a link the client made
// to "/" read back as the root's host path (CVE-2026-48855). Links the
// client makes here, to every spelling of the root and of places above
// it, must read back (READLINK, REALPATH, LSTAT, READDIR) without the
// host path of the root or of anything above it, and so must every
// status message. Links an administrator made with an absolute target
// read back as the path inside the root, or not at all for a target
// outside it (TestServerReadlinkNoHostPath).
func TestCVE_2026_48855_NoHostPathInReplies(t *testing.T) {
	f := newEscapeFixture(t)
	h := newSrvHarness(t, &ServerConfig{Root: f.root, Home: "/d"})
	testDir := filepath.Base(filepath.Dir(f.base)) // the test's name and a number
	leaks := func(what string, b []byte) {
		t.Helper()
		for _, s := range []string{f.base, f.root, testDir} {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s: reply reveals %q: %q", what, s, b)
			}
		}
	}
	// Targets spelling a host path are the client's own strings: they
	// come back (as paths inside the root), so for them only the stored
	// form is checked.
	plain := []string{"/", "/..", "/../..", ".", "./", "d/..", "/d/../..", "//", "/./.", "/d/", "inside", "/inside", "d"}
	hostish := []string{f.root, f.base, f.root + "/..", f.root + "/inside", f.base + "/ab", "/../" + f.root}
	for i, tg := range append(plain, hostish...) {
		for _, dir := range []string{"/", "/d/"} {
			link := fmt.Sprintf("%sl%d", dir, i)
			code := h.status(typeSymlink, srvStr(tg), srvStr(link))
			if code != StatusOK {
				continue // refused: fine
			}
			stored, err := os.Readlink(filepath.Join(f.root, link))
			if err != nil || path.IsAbs(stored) {
				t.Errorf("symlink %q at %s stored as %q %v, not relative", tg, link, stored, err)
			}
			for _, typ := range []byte{typeReadlink, typeRealpath, typeLstat, typeStat} {
				rt, body := request(h, typ, srvStr(link))
				if i < len(plain) {
					leaks(fmt.Sprintf("request %d on a link to %q", typ, tg), body)
				}
				if rt == typeName {
					got := wire.NewReader(body[4:]).String()
					if typ == typeReadlink && path.IsAbs(got) {
						t.Errorf("readlink of a link to %q = %q", tg, got)
					}
					if typ == typeRealpath && (!path.IsAbs(got) || strings.Contains(got, "..")) {
						t.Errorf("realpath of a link to %q = %q", tg, got)
					}
				}
			}
		}
	}
	dh, code := h.handle(typeOpendir, srvStr("/"))
	if code != StatusOK {
		t.Fatal(code)
	}
	for {
		rt, body := request(h, typeReaddir, srvStr(dh))
		leaks("readdir", body)
		if rt != typeName {
			break
		}
	}
	for _, req := range []struct {
		typ    byte
		fields [][]byte
	}{
		{typeRealpath, [][]byte{srvStr(".")}}, {typeRealpath, [][]byte{srvStr("../../..")}},
		{typeRealpath, [][]byte{srvStr("rootabs")}}, {typeRealpath, [][]byte{srvStr("toababs/x")}},
		{typeRealpath, [][]byte{srvStr("loop")}}, {typeRealpath, [][]byte{srvStr("inside/x")}},
		{typeExtended, extFields(extHomeDir, srvStr("root"))}, {typeExtended, extFields(extExpandPath, srvStr("~"))},
		{typeExtended, extFields(extExpandPath, srvStr("~root/x"))}, {typeOpen, [][]byte{srvStr("toababs/secret"), srvU32(FlagRead), srvNoAttrs()}},
		{typeOpen, [][]byte{srvStr("nosuch/x"), srvU32(FlagRead), srvNoAttrs()}}, {typeMkdir, [][]byte{srvStr("d"), srvNoAttrs()}},
		{typeRmdir, [][]byte{srvStr("d")}}, {typeRemove, [][]byte{srvStr("d")}}, {typeReadlink, [][]byte{srvStr("inside")}},
		{typeRename, [][]byte{srvStr("inside"), srvStr("victim")}}, {typeSetstat, [][]byte{srvStr("d"), append(srvU32(AttrSize), srvU64(1)...)}},
		{typeExtended, extFields(extHashRange, srvStr("d"), srvU64(0), srvU64(1), srvStr("sha256"))},
		{typeExtended, extFields(extStatVFS, srvStr("rootabs/x"))}, {typeOpendir, [][]byte{srvStr("inside")}},
		{typeStat, [][]byte{srvStr("loop")}}, {typeSymlink, [][]byte{srvStr("../../x"), srvStr("esc")}},
	} {
		rt, body := request(h, req.typ, req.fields...)
		leaks(fmt.Sprintf("request %d %q", req.typ, req.fields), body)
		if rt == typeStatus {
			r := wire.NewReader(body[4:])
			if msg := r.String(); strings.Contains(msg, "/") {
				t.Errorf("request %d %q: status message %q", req.typ, req.fields, msg)
			}
		}
	}
	f.checkOutside("the run")
}

// allocated returns the bytes allocated by the process while f ran.
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// serveStream runs Serve on a fixed input and returns what it wrote, the
// bytes allocated meanwhile and its error.
func serveStream(root string, in []byte) (out []byte, alloc uint64, err error) {
	var buf bytes.Buffer
	alloc = allocated(func() {
		err = Serve(context.Background(), struct {
			io.Reader
			io.Writer
		}{bytes.NewReader(in), &buf}, &ServerConfig{Root: root})
	})
	return buf.Bytes(), alloc, err
}

// TestCVE_2019_3858_PacketLengthZeroAndHuge: libssh2 read out of bounds
// on a crafted SFTP packet from the server (CVE-2019-3858: a zero-byte
// allocation it then read past), and in CVE-2019-3855 a transport
// packet length near 2^32 overflowed the arithmetic sizing a buffer. A
// packet length of 0 to 4 (no room for a type and an id), just above
// MaxPacket or up to 2^32-1 must end the session with a clear error,
// answer nothing, and allocate nothing in proportion to the claim; a
// packet of exactly MaxPacket bytes is served. Both directions: the
// server reading requests, the client reading VERSION and replies.
func TestCVE_2019_3858_PacketLengthZeroAndHuge(t *testing.T) {
	root := t.TempDir()
	initp := srvPacket(typeInit, srvU32(3))
	version, baseAlloc, _ := serveStream(root, initp)
	for _, c := range []struct {
		length uint32
		want   string // in the error
	}{
		{0, "empty packet"}, {1, "no id"}, {2, "no id"}, {4, "no id"},
		{MaxPacket + 1, "packet too large"}, {1 << 31, "packet too large"}, {0xffffffff, "packet too large"},
	} {
		t.Run(fmt.Sprintf("server/%d", c.length), func(t *testing.T) {
			in := binary.BigEndian.AppendUint32(bytes.Clone(initp), c.length)
			// What follows is a READ's type and id, cut to the length.
			in = append(in, []byte{typeRead, 0, 0, 0, 9, 0, 0, 0, 0}[:min(int(c.length), 9)]...)
			out, alloc, err := serveStream(root, in)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Serve = %v, want an error about %q", err, c.want)
			}
			if c.length > MaxPacket && !errors.Is(err, ErrPacketTooLarge) {
				t.Errorf("Serve = %v, not ErrPacketTooLarge", err)
			}
			if !bytes.Equal(out, version) {
				t.Errorf("Serve answered the bad packet: %x", out[len(version):])
			}
			if extra := int64(alloc) - int64(baseAlloc); extra > 1<<20 {
				t.Errorf("a %d-byte claim allocated %d bytes more than a session without it", c.length, extra)
			}
		})
	}

	// A WRITE of exactly MaxPacket bytes is served; one byte more ends
	// the session before anything of it is written.
	for _, extra := range []int{0, 1} {
		open := srvPacket(typeOpen, srvU32(1), srvStr("f"), srvU32(FlagWrite|FlagCreate|FlagTrunc), srvNoAttrs())
		data := bytes.Repeat([]byte{'x'}, MaxPacket-(1+4+8+8+4)+extra)
		write := srvPacket(typeWrite, srvU32(2), srvStr("\x00\x00\x00\x01"), srvU64(0), srvStr(string(data)))
		if got := len(write) - 4; got != MaxPacket+extra {
			t.Fatalf("WRITE of %d bytes", got)
		}
		out, _, err := serveStream(root, append(append(bytes.Clone(initp), open...), write...))
		fi, _ := os.Stat(filepath.Join(root, "f"))
		if extra == 0 {
			r := wire.NewReader(out[len(version):])
			r.Uint32()
			r.Byte()
			r.Uint32()
			r.Bytes() // the HANDLE
			r.Uint32()
			typ, id, code := r.Byte(), r.Uint32(), r.Uint32()
			if err != nil || typ != typeStatus || id != 2 || code != StatusOK || fi.Size() != int64(len(data)) {
				t.Errorf("a MaxPacket WRITE: Serve %v, reply %d %d %d, file %d bytes", err, typ, id, code, fi.Size())
			}
		} else if !errors.Is(err, ErrPacketTooLarge) || fi.Size() != 0 {
			t.Errorf("a WRITE one byte over MaxPacket: Serve %v, file %d bytes", err, fi.Size())
		}
	}

	// The client.
	for _, c := range []struct {
		length uint32
		want   string
	}{
		{0, "0-byte reply packet"}, {1, "1-byte reply packet"}, {4, "4-byte reply packet"},
		{MaxPacket + 1, "packet too large"}, {1 << 31, "packet too large"}, {0xffffffff, "packet too large"},
	} {
		t.Run(fmt.Sprintf("client/%d", c.length), func(t *testing.T) {
			reply := func(typ byte, id uint32, _ []byte) []byte {
				b := binary.BigEndian.AppendUint32(nil, c.length)
				return append(b, typeAttrs, byte(id>>24), byte(id>>16), byte(id>>8), byte(id), 0, 0, 0, 0)
			}
			alloc, newErr, err := runClientCase(t, versionPacket(), reply, func(c *Client) error {
				_, err := c.Stat("/x")
				return err
			})
			if newErr != nil {
				// The first reply answers the limits request sent with
				// INIT: NewClient reads it.
				err = newErr
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Stat = %v, want an error about %q", err, c.want)
			}
			if c.length > MaxPacket && !errors.Is(err, ErrPacketTooLarge) {
				t.Errorf("Stat = %v, not ErrPacketTooLarge", err)
			}
			if alloc > 1<<20 {
				t.Errorf("a %d-byte claim allocated %d bytes", c.length, alloc)
			}
		})
		t.Run(fmt.Sprintf("client-version/%d", c.length), func(t *testing.T) {
			v := append(binary.BigEndian.AppendUint32(nil, c.length), typeVersion, 0, 0, 0, 3)
			alloc, err, _ := runClientCase(t, v, nil, nil)
			if err == nil || c.length > MaxPacket && !errors.Is(err, ErrPacketTooLarge) {
				t.Errorf("NewClient = %v", err)
			}
			if alloc > 1<<20 {
				t.Errorf("a %d-byte VERSION claim allocated %d bytes", c.length, alloc)
			}
		})
	}
	// A reply of exactly MaxPacket bytes is read.
	msg := strings.Repeat("m", MaxPacket-(1+4+4+4+4))
	_, _, err := runClientCase(t, versionPacket(), func(typ byte, id uint32, _ []byte) []byte {
		b := rawPacket(typeStatus, id, srvU32(StatusFailure), srvStr(msg), srvU32(0))
		if len(b)-4 != MaxPacket {
			t.Fatalf("reply of %d bytes", len(b)-4)
		}
		return b
	}, func(c *Client) error {
		_, err := c.Stat("/x")
		return err
	})
	var se *StatusError
	if !errors.As(err, &se) || se.Message != msg {
		t.Errorf("a STATUS of MaxPacket bytes: %.100v", err)
	}
}

// A request template for TestCVE_2019_3860_ServerFieldLengths: fields
// of kind 's' (string), '4' and '8' (integers) and 'a' (attributes).
type reqTemplate struct {
	name   string
	typ    byte
	kinds  string
	fields [][]byte
}

// TestCVE_2019_3860_ServerFieldLengths: libssh2 read out of bounds
// parsing SFTP packets with empty payloads (CVE-2019-3860), the class of
// a parser trusting that a field is there. Every request the server
// knows is sent with an empty payload after its id, and each of its
// fields in turn is given a length of 2^32-1 or one past the packet's
// end, or cut short, or left out; attribute counts claim 2^20 and
// 2^32-1 extended pairs. Each must be answered BAD_MESSAGE with the
// request's id, act on nothing, allocate nothing in proportion to the
// claim, and leave the session working.
func TestCVE_2019_3860_ServerFieldLengths(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	mustWrite(t, filepath.Join(root, "f"), []byte("file"))
	mustWrite(t, filepath.Join(root, "victim"), []byte("victim"))
	os.Mkdir(filepath.Join(root, "d"), 0o755)
	mustWrite(t, filepath.Join(base, "outside"), []byte("outside"))
	h := newSrvHarness(t, &ServerConfig{Root: root})
	fh := h.mustOpen("f", FlagRead|FlagWrite)
	dh, code := h.handle(typeOpendir, srvStr("d"))
	if code != StatusOK {
		t.Fatal(code)
	}
	before := treeState(t, base, "")

	s, u4, u8 := srvStr, srvU32, srvU64
	attrs := append(srvU32(AttrPermissions|AttrSize), append(srvU64(1), srvU32(0o600)...)...)
	ext := func(name, kinds string, f ...[]byte) reqTemplate {
		return reqTemplate{name, typeExtended, "s" + kinds, append([][]byte{s(name)}, f...)}
	}
	templates := []reqTemplate{
		{"open", typeOpen, "s4a", [][]byte{s("new"), u4(FlagWrite | FlagCreate), attrs}},
		{"close", typeClose, "s", [][]byte{s(fh)}},
		{"read", typeRead, "s84", [][]byte{s(fh), u8(0), u4(10)}},
		{"write", typeWrite, "s8s", [][]byte{s(fh), u8(0), s("PLANTED")}},
		{"lstat", typeLstat, "s", [][]byte{s("f")}},
		{"fstat", typeFstat, "s", [][]byte{s(fh)}},
		{"setstat", typeSetstat, "sa", [][]byte{s("f"), attrs}},
		{"fsetstat", typeFsetstat, "sa", [][]byte{s(fh), attrs}},
		{"opendir", typeOpendir, "s", [][]byte{s("d")}},
		{"readdir", typeReaddir, "s", [][]byte{s(dh)}},
		{"remove", typeRemove, "s", [][]byte{s("victim")}},
		{"mkdir", typeMkdir, "sa", [][]byte{s("newdir"), attrs}},
		{"rmdir", typeRmdir, "s", [][]byte{s("d")}},
		{"realpath", typeRealpath, "s", [][]byte{s("f")}},
		{"stat", typeStat, "s", [][]byte{s("f")}},
		{"rename", typeRename, "ss", [][]byte{s("victim"), s("moved")}},
		{"readlink", typeReadlink, "s", [][]byte{s("f")}},
		{"symlink", typeSymlink, "ss", [][]byte{s("f"), s("link")}},
		ext(extPosixRename, "ss", s("victim"), s("moved")),
		ext(extStatVFS, "s", s("f")),
		ext(extFstatVFS, "s", s(fh)),
		ext(extHardlink, "ss", s("victim"), s("hard")),
		ext(extFsync, "s", s(fh)),
		ext(extLsetstat, "sa", s("f"), attrs),
		ext(extExpandPath, "s", s("~/f")),
		ext(extHomeDir, "s", s("me")),
		ext(extUsersGroups, "ss", s(string(u4(0))), s(string(u4(0)))),
		ext(extHashRange, "s88s", s("f"), u8(0), u8(4), s("sha256")),
		ext(extCopyData, "s88s8", s(fh), u8(0), u8(2), s(fh), u8(2)),
		ext(extLimits, ""),
	}
	// badAttrs replace a well-formed attributes field.
	badAttrs := [][]byte{
		nil,            // missing
		{0, 0},         // cut in the flags
		u4(AttrSize),   // a size announced, not there
		u4(0xffffffff), // every flag, nothing after
		append(u4(AttrExtended), u4(1<<20)...),
		append(u4(AttrExtended), u4(0xffffffff)...),
		append(u4(AttrExtended), append(u4(1), u4(0xffffffff)...)...),
		append(u4(AttrExtended|AttrPermissions), append(u4(0o777), append(u4(2), append(s("n"), s("v")...)...)...)...),
	}

	n := 0
	try := func(what string, typ byte, body []byte) {
		t.Helper()
		n++
		var rt byte
		var reply []byte
		alloc := allocated(func() {
			h.id++
			p := append([]byte{0, 0, 0, 0, typ}, srvU32(h.id)...)
			p = append(p, body...)
			binary.BigEndian.PutUint32(p, uint32(len(p)-4))
			h.sendRaw(p)
			rt, reply = h.recvRaw()
		})
		r := wire.NewReader(reply)
		id, code := r.Uint32(), r.Uint32()
		if rt != typeStatus || id != h.id || code != StatusBadMessage {
			t.Errorf("%s: reply type %d id %d (want %d) status %d, want BAD_MESSAGE", what, rt, id, h.id, code)
		}
		if alloc > 256<<10 {
			t.Fatalf("%s: %d bytes allocated", what, alloc)
		}
	}
	for _, tp := range templates {
		try(tp.name+" empty", tp.typ, nil)
		for i, kind := range tp.kinds {
			head := bytes.Join(tp.fields[:i], nil)
			field, tail := tp.fields[i], bytes.Join(tp.fields[i+1:], nil)
			what := fmt.Sprintf("%s field %d", tp.name, i)
			switch kind {
			case 's':
				rest := field[4:]
				huge := append(append(bytes.Clone(head), u4(0xffffffff)...), append(bytes.Clone(rest), tail...)...)
				try(what+" length 2^32-1", tp.typ, huge)
				past := append(bytes.Clone(head), u4(uint32(len(rest)+len(tail)+1))...)
				try(what+" length past the end", tp.typ, append(append(past, rest...), tail...))
				try(what+" cut in its length", tp.typ, append(bytes.Clone(head), field[:2]...))
				if len(rest) > 0 {
					try(what+" cut in its bytes", tp.typ, append(bytes.Clone(head), field[:len(field)-1]...))
				}
			case '4', '8':
				try(what+" cut", tp.typ, append(bytes.Clone(head), field[:1]...))
				try(what+" missing", tp.typ, head)
			case 'a':
				for j, bad := range badAttrs {
					try(fmt.Sprintf("%s bad attributes %d", what, j), tp.typ, append(append(bytes.Clone(head), bad...), tail...))
				}
			}
		}
	}
	t.Logf("%d malformed requests", n)
	if after := treeState(t, base, ""); after != before {
		t.Errorf("malformed requests changed the tree:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// The session still works, its handles too.
	if rt, body := request(h, typeRead, srvStr(fh), srvU64(0), srvU32(10)); rt != typeData || wire.NewReader(body).String() != "file" {
		t.Errorf("read after the malformed requests: %d %q", rt, body)
	}
	if err := h.close(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

// TestCVE_2021_30129_HugeReadBounded: Apache MINA SSHD's SFTP server
// could be made to run out of memory by a client (CVE-2021-30129). The
// length of a READ is the request field that sizes a server buffer
// directly: lengths from just above MaxReadWrite to 2^32-1 get at most
// MaxReadWrite bytes in a reply within MaxPacket, and 64 such READs in
// flight at once allocate nothing in proportion to what they claim.
func TestCVE_2021_30129_HugeReadBounded(t *testing.T) {
	root := t.TempDir()
	data := randBytes(t, 2<<20)
	mustWrite(t, filepath.Join(root, "big"), data)
	h := newSrvHarness(t, &ServerConfig{Root: root})
	hd := h.mustOpen("big", FlagRead)
	for _, n := range []uint32{MaxReadWrite, MaxReadWrite + 1, MaxPacket, MaxPacket + 1, 1 << 31, 0xffffffff} {
		rt, body := request(h, typeRead, srvStr(hd), srvU64(1000), srvU32(n))
		got := wire.NewReader(body).Bytes()
		if rt != typeData || len(got) != min(int(n), MaxReadWrite) || !bytes.Equal(got, data[1000:1000+len(got)]) {
			t.Errorf("READ of %d: type %d, %d bytes", n, rt, len(got))
		}
	}
	// Pipelined: the requests go out from another goroutine, as the
	// server stops reading while its replies are not read.
	const inflight = 64
	buf := make([]byte, MaxPacket+4)
	round := func() {
		errc := make(chan error, 1)
		go func() {
			for i := range inflight {
				p := srvPacket(typeRead, srvU32(uint32(i)), srvStr(hd), srvU64(uint64(i)*1000), srvU32(0xffffffff))
				if _, err := h.cw.Write(p); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
		for i := range inflight {
			if _, err := io.ReadFull(h.cr, buf[:4]); err != nil {
				t.Fatal(err)
			}
			n := binary.BigEndian.Uint32(buf)
			if n > MaxPacket {
				t.Fatalf("reply %d of %d bytes", i, n)
			}
			if _, err := io.ReadFull(h.cr, buf[:n]); err != nil {
				t.Fatal(err)
			}
			if buf[0] != typeData || binary.BigEndian.Uint32(buf[1:]) != uint32(i) || binary.BigEndian.Uint32(buf[5:]) != MaxReadWrite {
				t.Fatalf("reply %d: type %d, %d bytes", i, buf[0], binary.BigEndian.Uint32(buf[5:]))
			}
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	round() // warm up
	if a := allocated(round); a > 4<<20 {
		t.Errorf("%d READs of 2^32-1 bytes in flight allocated %d bytes", inflight, a)
	}
}

// TestCVE_2018_15664_SymlinkSwapRace: Docker's `docker cp` resolved a
// path inside the container and then used it, and a container that
// swapped a directory for a symbolic link in between got the daemon to
// read and write the host (CVE-2018-15664). Here a goroutine keeps
// turning a directory of the root into a link out of it (absolute and
// relative targets) and back, while requests on paths through it run
// and a transfer writes through a handle opened before: no request may
// read or change what is outside, and every byte of the transfer lands
// in the file it opened. The server resolves each path with os.Root, one
// component at a time without following links out (openat with
// O_NOFOLLOW on Linux), so there is no window to win; a server that
// checks a path and then opens it loses within the second.
func TestCVE_2018_15664_SymlinkSwapRace(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links")
	}
	base := t.TempDir()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	const outsideData = "OUTSIDE-FILE-CONTENT, of a length nothing inside has"
	mustWrite(t, filepath.Join(outside, "f"), []byte(outsideData))
	mustWrite(t, filepath.Join(outside, "outside-only-entry"), nil)
	mustWrite(t, filepath.Join(root, "dir.real", "f"), []byte("inside"))
	if err := os.Symlink("dir.real", filepath.Join(root, "dir")); err != nil {
		t.Fatal(err)
	}
	before := treeState(t, outside, "")
	h := newSrvHarness(t, &ServerConfig{Root: root})
	big := h.mustOpen("dir/big", FlagWrite|FlagCreate)

	// "dir" is a link whose target flips between dir.real, inside, and
	// the directory outside, by renaming a prepared link over it: there
	// is no moment without it. Every eighth turn dir.real itself becomes
	// "dir" and is then swapped for a link out, the other shape.
	dir, real := filepath.Join(root, "dir"), filepath.Join(root, "dir.real")
	flip := func(target string) error {
		tmp := filepath.Join(root, ".flip")
		if err := os.Symlink(target, tmp); err != nil {
			return err
		}
		return os.Rename(tmp, dir)
	}
	stop := make(chan struct{})
	var flips int
	done := make(chan error, 1)
	go func() {
		var err error
		defer func() { done <- err }()
		for ; ; flips++ {
			select {
			case <-stop:
				err = flip("dir.real")
				return
			default:
			}
			out := outside
			if flips%2 == 1 {
				out = "../outside"
			}
			if err = flip(out); err != nil {
				return
			}
			if err = flip("dir.real"); err != nil {
				return
			}
			if flips%8 == 0 {
				if err = os.Remove(dir); err != nil {
					return
				}
				if err = os.Rename(real, dir); err != nil {
					return
				}
				runtime.Gosched()
				if err = os.Rename(dir, real); err != nil {
					return
				}
				if err = flip(out); err != nil {
					return
				}
				runtime.Gosched()
			}
		}
	}()

	check := func(what string, rt byte, body []byte) {
		t.Helper()
		if bytes.Contains(body, []byte("OUTSIDE-FILE")) || bytes.Contains(body, []byte("outside-only-entry")) {
			t.Fatalf("%s: reply (type %d) carries what is outside the root", what, rt)
		}
		if rt == typeAttrs {
			if a := parseAttrs(wire.NewReader(body)); a.Size == uint64(len(outsideData)) {
				t.Fatalf("%s: ATTRS of the outside file", what)
			}
		}
	}
	chunk := bytes.Repeat([]byte("T"), 32<<10)
	var written int
	deadline := time.Now().Add(time.Second)
	for i := 0; i < 40 || time.Now().Before(deadline); i++ {
		// The transfer goes on.
		wantCode(t, "transfer write", h.status(typeWrite, srvStr(big), srvU64(uint64(written)), srvStr(string(chunk))), StatusOK)
		written += len(chunk)
		// Requests through the swapped directory.
		for _, fl := range []uint32{FlagRead, FlagRead | FlagWrite, FlagWrite | FlagCreate, FlagWrite | FlagCreate | FlagTrunc} {
			name := "dir/f"
			if fl&FlagCreate != 0 {
				name = fmt.Sprintf("dir/new%d", i)
			}
			rt, body := request(h, typeOpen, srvStr(name), srvU32(fl), srvNoAttrs())
			if rt == typeHandle {
				hd := wire.NewReader(body).String()
				rt, body = request(h, typeRead, srvStr(hd), srvU64(0), srvU32(1000))
				check("read "+name, rt, body)
				rt, body = request(h, typeFstat, srvStr(hd))
				check("fstat "+name, rt, body)
				if fl&FlagWrite != 0 {
					request(h, typeWrite, srvStr(hd), srvU64(0), srvStr("PLANTED"))
				}
				request(h, typeClose, srvStr(hd))
			}
		}
		for _, req := range []struct {
			typ    byte
			fields [][]byte
		}{
			{typeStat, [][]byte{srvStr("dir/f")}},
			{typeLstat, [][]byte{srvStr("dir/f")}},
			{typeRealpath, [][]byte{srvStr("dir/f")}},
			{typeSetstat, [][]byte{srvStr("dir/f"), srvPerm(0o600)}},
			{typeSetstat, [][]byte{srvStr("dir/f"), append(srvU32(AttrSize), srvU64(1)...)}},
			{typeMkdir, [][]byte{srvStr(fmt.Sprintf("dir/sub%d", i)), srvNoAttrs()}},
			{typeRename, [][]byte{srvStr(fmt.Sprintf("dir/new%d", i)), srvStr(fmt.Sprintf("dir/renamed%d", i))}},
			{typeRemove, [][]byte{srvStr(fmt.Sprintf("dir/renamed%d", i))}},
			{typeSymlink, [][]byte{srvStr("f"), srvStr(fmt.Sprintf("dir/link%d", i))}},
			{typeExtended, extFields(extHardlink, srvStr("dir/f"), srvStr(fmt.Sprintf("dir/hard%d", i)))},
			{typeExtended, extFields(extHashRange, srvStr("dir/f"), srvU64(0), srvU64(100), srvStr("sha256"))},
			{typeExtended, extFields(extStatVFS, srvStr("dir/f"))},
		} {
			rt, body := request(h, req.typ, req.fields...)
			check(fmt.Sprintf("request %d", req.typ), rt, body)
			if rt == typeExtendedReply && req.fields[0][4] == 'h' {
				if d := sha256.Sum256([]byte(outsideData)); bytes.Contains(body, d[:]) {
					t.Fatal("hash-range hashed the outside file")
				}
			}
		}
		if dh, code := h.handle(typeOpendir, srvStr("dir")); code == StatusOK {
			for range 10 {
				rt, body := request(h, typeReaddir, srvStr(dh))
				check("readdir", rt, body)
				if rt != typeName {
					break
				}
			}
			request(h, typeClose, srvStr(dh))
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	wantCode(t, "close", h.status(typeClose, srvStr(big)), StatusOK)
	t.Logf("%d swaps, %d bytes transferred", flips, written)
	if after := treeState(t, outside, ""); after != before {
		t.Fatalf("the directory outside changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	got, err := os.ReadFile(filepath.Join(real, "big"))
	if err != nil || len(got) != written || bytes.Count(got, []byte("T")) != written {
		t.Fatalf("the transferred file: %d bytes of %d, %v", len(got), written, err)
	}
}

// replyFunc answers one request: the bytes to send, length prefix
// included (so it may lie), or nil to hang up.
type replyFunc func(typ byte, id uint32, body []byte) []byte

// scriptedServer serves conn: it reads INIT, writes version as it is and
// answers each request with reply's bytes. The channel is closed when it
// has stopped (it closes conn then).
func scriptedServer(conn net.Conn, version []byte, reply replyFunc) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer conn.Close()
		p, err := readPacket(conn, nil)
		if err != nil || p[0] != typeInit {
			return
		}
		if _, err := conn.Write(version); err != nil || reply == nil {
			return
		}
		for {
			p, err := readPacket(conn, nil)
			if err != nil || len(p) < 5 {
				return
			}
			out := reply(p[0], binary.BigEndian.Uint32(p[1:5]), p[5:])
			if out == nil {
				return
			}
			if _, err := conn.Write(out); err != nil {
				return
			}
		}
	}()
	return done
}

// versionPacket is a VERSION 3 offering the extensions, given as name,
// data pairs.
func versionPacket(exts ...string) []byte {
	b := wire.AppendUint32(startPacket(nil, typeVersion), 3)
	for _, e := range exts {
		b = wire.AppendString(b, e)
	}
	return finishPacket(b)
}

// rawPacket is a well-framed reply of type typ to id.
func rawPacket(typ byte, id uint32, fields ...[]byte) []byte {
	b := wire.AppendUint32(startPacket(nil, typ), id)
	for _, f := range fields {
		b = append(b, f...)
	}
	return finishPacket(b)
}

// runClientCase connects a Client to scriptedServer(version, reply) and
// runs op on it when NewClient succeeds, all within a deadline. It
// returns the bytes allocated while they ran and their errors.
func runClientCase(t *testing.T, version []byte, reply replyFunc, op func(*Client) error) (alloc uint64, newErr, opErr error) {
	t.Helper()
	cEnd, sEnd := net.Pipe()
	srvDone := scriptedServer(sEnd, version, reply)
	done := make(chan struct{})
	var c *Client
	go func() {
		defer close(done)
		alloc = allocated(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, newErr = NewClient(ctx, cEnd)
			if newErr == nil && op != nil {
				opErr = op(c)
			}
		})
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cEnd.Close()
		buf := make([]byte, 1<<20)
		t.Fatalf("the client hung:\n%s", buf[:runtime.Stack(buf, true)])
	}
	if c != nil {
		c.Close()
	} else {
		cEnd.Close()
	}
	<-srvDone
	return alloc, newErr, opErr
}

// TestCVE_2019_3860_ClientReplyFieldLengths: CVE-2019-3860 was libssh2,
// a client, reading out of bounds parsing SFTP packets with empty
// payloads from a malicious server; jsch sized an array from an ATTRS
// extended count. Every reply the client parses here is empty after its
// id, or claims more than its packet holds (NAME counts of 2^20 and
// 2^32-1, string lengths of 2^32-1 or one past the end in names,
// handles, data, status messages, extension names and attributes):
// each operation fails with a clear error, promptly, without a panic and
// without allocating in proportion to the claim. Absurd limits are
// clamped.
func TestCVE_2019_3860_ClientReplyFieldLengths(t *testing.T) {
	u4, u8, s := srvU32, srvU64, srvStr
	pad := func(n int) []byte { return make([]byte, n) }
	type replies map[byte]func(id uint32) []byte
	handle := func(id uint32) []byte { return rawPacket(typeHandle, id, s("h")) }
	ok := func(id uint32) []byte { return rawPacket(typeStatus, id, u4(StatusOK), s(""), s("")) }
	realpath := func(c *Client) error { _, err := c.RealPath("."); return err }
	stat := func(c *Client) error { _, err := c.Stat("/x"); return err }
	open := func(c *Client) error {
		f, err := c.Open("/x")
		if err == nil {
			f.Close()
		}
		return err
	}
	readAt := func(n int) func(c *Client) error {
		return func(c *Client) error {
			f, err := c.Open("/x")
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.ReadAt(make([]byte, n), 0)
			return err
		}
	}
	many := []string{}
	for i := range maxExtensions + 1 {
		many = append(many, fmt.Sprint("e", i), "1")
	}
	var closed int
	cases := []struct {
		name    string
		version []byte // default: versionPacket()
		op      func(*Client) error
		replies replies
		want    string // in the error of NewClient or else op
	}{
		{"empty NAME", nil, realpath, replies{typeRealpath: func(id uint32) []byte { return rawPacket(typeName, id) }}, "bad NAME"},
		{"empty ATTRS", nil, stat, replies{typeStat: func(id uint32) []byte { return rawPacket(typeAttrs, id) }}, "bad ATTRS"},
		{"empty HANDLE", nil, open, replies{typeOpen: func(id uint32) []byte { return rawPacket(typeHandle, id) }}, "bad HANDLE"},
		{"empty DATA", nil, readAt(10), replies{typeOpen: handle, typeClose: ok, typeRead: func(id uint32) []byte {
			return rawPacket(typeData, id)
		}}, "bad DATA"},
		{"empty STATUS", nil, stat, replies{typeStat: func(id uint32) []byte { return rawPacket(typeStatus, id) }}, "bad STATUS"},
		{"empty statvfs reply", versionPacket(extStatVFS, "2"), func(c *Client) error { _, err := c.StatVFS("/"); return err },
			replies{typeExtended: func(id uint32) []byte { return rawPacket(typeExtendedReply, id) }}, "bad statvfs reply"},
		{"empty VERSION", finishPacket(startPacket(nil, typeVersion)), nil, nil, "bad VERSION"},
		{"NAME count 2^32-1", nil, realpath, replies{typeRealpath: func(id uint32) []byte {
			return rawPacket(typeName, id, u4(0xffffffff))
		}}, "bad NAME"},
		{"NAME count 2^20", nil, realpath, replies{typeRealpath: func(id uint32) []byte {
			return rawPacket(typeName, id, u4(1<<20), pad(12))
		}}, "bad NAME"},
		{"NAME name length 2^32-1", nil, realpath, replies{typeRealpath: func(id uint32) []byte {
			return rawPacket(typeName, id, u4(1), u4(0xffffffff), pad(20))
		}}, "bad NAME"},
		{"NAME longname past the end", nil, realpath, replies{typeRealpath: func(id uint32) []byte {
			return rawPacket(typeName, id, u4(1), s("n"), u4(100), pad(10))
		}}, "bad NAME"},
		{"NAME attributes 2^32-1 extended", nil, realpath, replies{typeRealpath: func(id uint32) []byte {
			return rawPacket(typeName, id, u4(1), s("n"), s("l"), u4(AttrExtended), u4(0xffffffff), pad(8))
		}}, "bad NAME"},
		{"ATTRS 2^32-1 extended", nil, stat, replies{typeStat: func(id uint32) []byte {
			return rawPacket(typeAttrs, id, u4(AttrExtended), u4(0xffffffff))
		}}, "bad ATTRS"},
		{"ATTRS 2^20 extended", nil, stat, replies{typeStat: func(id uint32) []byte {
			return rawPacket(typeAttrs, id, u4(AttrExtended), u4(1<<20), pad(16))
		}}, "bad ATTRS"},
		{"ATTRS every flag, nothing after", nil, stat, replies{typeStat: func(id uint32) []byte {
			return rawPacket(typeAttrs, id, u4(0xffffffff))
		}}, "bad ATTRS"},
		{"ATTRS second pair past the end", nil, stat, replies{typeStat: func(id uint32) []byte {
			return rawPacket(typeAttrs, id, u4(AttrExtended), u4(2), s("a"), s("b"), u4(0xffffffff), pad(8))
		}}, "bad ATTRS"},
		{"HANDLE length 2^32-1", nil, open, replies{typeOpen: func(id uint32) []byte {
			return rawPacket(typeHandle, id, u4(0xffffffff), []byte("h"))
		}}, "bad HANDLE"},
		{"HANDLE past the end", nil, open, replies{typeOpen: func(id uint32) []byte {
			return rawPacket(typeHandle, id, u4(5), []byte("abc"))
		}}, "bad HANDLE"},
		{"HANDLE of 257 bytes", nil, open, replies{typeOpen: func(id uint32) []byte {
			return rawPacket(typeHandle, id, s(strings.Repeat("h", maxHandleLen+1)))
		}}, "257-byte handle"},
		{"DATA length 2^32-1", nil, readAt(100), replies{typeOpen: handle, typeClose: ok, typeRead: func(id uint32) []byte {
			return rawPacket(typeData, id, u4(0xffffffff), pad(10))
		}}, "bad DATA"},
		{"DATA more than asked", nil, readAt(10), replies{typeOpen: handle, typeClose: ok, typeRead: func(id uint32) []byte {
			return rawPacket(typeData, id, s(strings.Repeat("d", 20)))
		}}, "20 bytes for a 10-byte read"},
		{"STATUS message length 2^32-1", nil, stat, replies{typeStat: func(id uint32) []byte {
			return rawPacket(typeStatus, id, u4(StatusPermissionDenied), u4(0xffffffff), []byte("x"))
		}}, "permission denied"},
		{"STATUS of two bytes", nil, stat, replies{typeStat: func(id uint32) []byte {
			return rawPacket(typeStatus, id, []byte{0, 0})
		}}, "bad STATUS"},
		{"statvfs reply cut", versionPacket(extStatVFS, "2"), func(c *Client) error { _, err := c.StatVFS("/"); return err },
			replies{typeExtended: func(id uint32) []byte { return rawPacket(typeExtendedReply, id, pad(10)) }}, "bad statvfs reply"},
		{"hash-range digest length 2^32-1", versionPacket(extHashRange, "1"),
			func(c *Client) error { _, _, err := c.HashRange("/x", 0, 10); return err },
			replies{typeExtended: func(id uint32) []byte {
				return rawPacket(typeExtendedReply, id, s("sha256"), u8(10), u4(0xffffffff), pad(3))
			}}, "bad hash-range reply"},
		{"READDIR NAME count 2^32-1", nil, func(c *Client) error { _, err := c.ReadDir("/d"); return err },
			replies{typeOpendir: handle, typeClose: func(id uint32) []byte { closed++; return ok(id) }, typeReaddir: func(id uint32) []byte {
				return rawPacket(typeName, id, u4(0xffffffff), pad(8))
			}}, "bad NAME"},
		{"VERSION extension name length 2^32-1", finishPacket(append(wire.AppendUint32(startPacket(nil, typeVersion), 3), append(u4(0xffffffff), 'x')...)),
			nil, nil, "bad VERSION"},
		{"VERSION extension data past the end", finishPacket(append(wire.AppendUint32(startPacket(nil, typeVersion), 3), append(s("a"), append(u4(10), 'b')...)...)),
			nil, nil, "bad VERSION"},
		{"VERSION with too many extensions", versionPacket(many...), nil, nil, "more than 64 extensions"},
		{"VERSION of another version", finishPacket(wire.AppendUint32(startPacket(nil, typeVersion), 4)), nil, nil, "version 4"},
		{"HANDLE for VERSION", rawPacket(typeHandle, 3, s("h")), nil, nil, "expected VERSION"},
		{"limits reply cut", versionPacket(extLimits, "1"), nil,
			replies{typeExtended: func(id uint32) []byte { return rawPacket(typeExtendedReply, id, pad(12)) }}, "limits reply"},
		{"limits of one byte", versionPacket(extLimits, "1"), stat,
			replies{typeExtended: func(id uint32) []byte { return rawPacket(typeExtendedReply, id, u8(1), u8(1), u8(1), u8(1)) }},
			"exceeds the 1-byte packet limit"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			version := c.version
			if version == nil {
				version = versionPacket()
			}
			reply := func(typ byte, id uint32, _ []byte) []byte {
				if f := c.replies[typ]; f != nil {
					return f(id)
				}
				return rawPacket(typeStatus, id, u4(StatusFailure), s("unexpected request"), s(""))
			}
			alloc, newErr, opErr := runClientCase(t, version, reply, c.op)
			err := newErr
			if err == nil {
				err = opErr
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error with %q", err, c.want)
			}
			if alloc > 1<<20 {
				t.Errorf("%d bytes allocated", alloc)
			}
			if c.name == "READDIR NAME count 2^32-1" && closed != 1 {
				t.Errorf("ReadDir closed its handle %d times after a bad NAME", closed)
			}
		})
	}

	// Limits of 2^64-1 are clamped to ours, and cost nothing.
	var lim Limits
	alloc, newErr, opErr := runClientCase(t, versionPacket(extLimits, "1"), func(typ byte, id uint32, _ []byte) []byte {
		if typ == typeExtended {
			m := uint64(1<<64 - 1)
			return rawPacket(typeExtendedReply, id, u8(m), u8(m), u8(m), u8(m))
		}
		a := Attrs{Flags: AttrSize, Size: 1}
		return rawPacket(typeAttrs, id, appendAttrs(nil, &a))
	}, func(c *Client) error {
		lim = c.Limits()
		_, err := c.Stat("/x")
		return err
	})
	if newErr != nil || opErr != nil || lim.MaxPacket != MaxPacket || lim.ReadSize > MaxReadWrite || lim.WriteSize > MaxReadWrite || alloc > 1<<20 {
		t.Errorf("limits of 2^64-1: %v %v %+v, %d bytes allocated", newErr, opErr, lim, alloc)
	}
}

// lyingTree answers a recursive download with listings that say what a
// test wants, names and attributes, over scriptedServer.
type lyingTree struct {
	stat  map[string]Attrs        // STAT and LSTAT by path
	list  map[string][]lyingEntry // READDIR by directory
	data  map[string]string       // file contents
	mu    sync.Mutex
	asked []string // paths of OPEN and OPENDIR requests
	read  map[string]bool
}

type lyingEntry struct {
	name  string
	attrs Attrs
}

func dirAttrs(perm uint32, mtime uint32) Attrs {
	return Attrs{Flags: AttrPermissions | AttrACModTime, Mode: modeDir | perm, Atime: mtime, Mtime: mtime}
}

func fileAttrs(perm uint32, size int) Attrs {
	return Attrs{Flags: AttrSize | AttrPermissions | AttrACModTime, Mode: modeRegular | perm, Size: uint64(size), Atime: 1e9, Mtime: 1e9}
}

func (lt *lyingTree) reply(typ byte, id uint32, body []byte) []byte {
	lt.mu.Lock()
	defer lt.mu.Unlock()
	r := wire.NewReader(body)
	arg := r.String()
	noSuch := rawPacket(typeStatus, id, srvU32(StatusNoSuchFile), srvStr("no such file"), srvStr(""))
	switch typ {
	case typeStat, typeLstat:
		a, ok := lt.stat[arg]
		if !ok {
			return noSuch
		}
		return rawPacket(typeAttrs, id, appendAttrs(nil, &a))
	case typeFstat:
		a, ok := lt.stat[arg[1:]]
		if !ok {
			return noSuch
		}
		return rawPacket(typeAttrs, id, appendAttrs(nil, &a))
	case typeOpendir, typeOpen:
		lt.asked = append(lt.asked, arg)
		if _, ok := lt.stat[arg]; !ok {
			return noSuch
		}
		return rawPacket(typeHandle, id, srvStr("H"+arg))
	case typeReaddir:
		p := arg[1:]
		if lt.read[p] {
			return rawPacket(typeStatus, id, srvU32(StatusEOF), srvStr(""), srvStr(""))
		}
		lt.read[p] = true
		b := srvU32(uint32(len(lt.list[p])))
		for _, e := range lt.list[p] {
			b = wire.AppendString(b, e.name)
			b = wire.AppendString(b, "?--------- 1 u g 0 Jan 1 1970 "+e.name)
			b = appendAttrs(b, &e.attrs)
		}
		return rawPacket(typeName, id, b)
	case typeRead:
		off, n := r.Uint64(), r.Uint32()
		d := lt.data[arg[1:]]
		if off >= uint64(len(d)) {
			return rawPacket(typeStatus, id, srvU32(StatusEOF), srvStr(""), srvStr(""))
		}
		return rawPacket(typeData, id, srvStr(d[off:min(uint64(len(d)), off+uint64(n))]))
	case typeClose:
		return rawPacket(typeStatus, id, srvU32(StatusOK), srvStr(""), srvStr(""))
	}
	return rawPacket(typeStatus, id, srvU32(StatusOpUnsupported), srvStr(""), srvStr(""))
}

// download runs a recursive download from lt of remote to local.
func (lt *lyingTree) download(t *testing.T, remote, local string, opt TransferOptions) error {
	t.Helper()
	lt.read = map[string]bool{}
	var err error
	runClientCase(t, versionPacket(), lt.reply, func(c *Client) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err = c.Download(ctx, remote, local, opt)
		return nil
	})
	return err
}

// localTree lists the paths under dir, relative, with their content.
func localTree(t *testing.T, dir string) []string {
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		if d.Type().IsRegular() {
			b, _ := os.ReadFile(p)
			rel += fmt.Sprintf(" %q", b)
		}
		out = append(out, rel)
		return nil
	})
	sort.Strings(out)
	return out
}

// TestCVE_2019_6111_RecursiveGetUntrustedNames: scp let the server name
// the files of a recursive copy, so a malicious server wrote outside the
// target directory (CVE-2019-6111; OpenSSH's sftp had the same with an
// empty, slash-only or ".." name, CVE-2026-110923). Here a malicious
// server lists, one level down in a recursive download with preserved
// modes, names that are not one path component: empty, slashes only,
// with "..", absolute, with a NUL, as files and as directories. The
// download must refuse the listing before creating anything for that
// directory, naming the culprit, and write nothing outside the
// destination; the target directory and a sentinel beside it keep their
// modes, times and contents. Names that are odd but one component are
// written under exactly that name.
func TestCVE_2019_6111_RecursiveGetUntrustedNames(t *testing.T) {
	t.Parallel()
	refused := []string{"", "/", "//", "..\x00", "\x00", "x\x00y", "../x", "../../x", "a/../../x", "x/", "/etc/x",
		"sub/../../x", strings.Repeat("../", 40) + "no-such-top-level-dir/x", "./x", "x/.", "x/..", "/.."}
	literal := []string{"...", ".hidden", "-rf", `..\..\x`, " ..", ".. ", "x:y", "\u2025", "%2e%2e", "~", "$HOME"}
	for i, name := range append(refused, literal...) {
		t.Run(fmt.Sprintf("%q", name), func(t *testing.T) {
			isDir := i%2 == 1
			hostile := dirAttrs(0o777, 1)
			lt := &lyingTree{
				stat: map[string]Attrs{"/d": dirAttrs(0o750, 1e9), "/d/ok": fileAttrs(0o640, 4), "/d/sub": dirAttrs(0o700, 1e9),
					"/d/sub/good": fileAttrs(0o600, 4)},
				list: map[string][]lyingEntry{
					"/d":     {{".", hostile}, {"..", hostile}, {"ok", fileAttrs(0o640, 4)}, {"sub", dirAttrs(0o700, 1e9)}},
					"/d/sub": {{".", hostile}, {"..", hostile}, {"good", fileAttrs(0o600, 4)}, {name, fileAttrs(0o666, 7)}},
				},
				data: map[string]string{"/d/ok": "fine", "/d/sub/good": "good", "/d/sub/" + name: "payload"},
			}
			// The path as the client would ask for it, too: a client that
			// took the name would get the payload and write it.
			paths := []string{"/d/sub/" + name}
			if clean := path.Join("/d/sub", name); lt.stat[clean].Flags == 0 {
				paths = append(paths, clean) // not a path of the tree itself
			}
			for _, p := range paths {
				lt.stat[p] = fileAttrs(0o666, 7)
				lt.data[p] = "payload"
				if isDir {
					lt.list["/d/sub"][3].attrs = dirAttrs(0o777, 1)
					lt.stat[p] = dirAttrs(0o777, 1)
					lt.list[p] = []lyingEntry{{"pwned", fileAttrs(0o666, 7)}}
					lt.stat[path.Join(p, "pwned")] = fileAttrs(0o666, 7)
					lt.data[path.Join(p, "pwned")] = "payload"
				}
			}
			parent := t.TempDir()
			dst := filepath.Join(parent, "dst")
			os.Mkdir(dst, 0o711)
			os.Chmod(dst, 0o711)
			mustWrite(t, filepath.Join(parent, "sentinel", "file"), []byte("sentinel"))
			old := time.Date(2002, 2, 2, 0, 0, 0, 0, time.UTC)
			os.Chtimes(dst, old, old)
			before := treeState(t, parent, dst)
			dstBefore, _ := os.Stat(dst)

			err := lt.download(t, "/d", dst, TransferOptions{Recursive: true, PreserveTimesAndMode: true})
			got := localTree(t, dst)
			if i < len(refused) {
				if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", name)) {
					t.Errorf("Download = %v, want a refusal naming %q", err, name)
				}
				if want := []string{"d", `d/ok "fine"`}; fmt.Sprint(got) != fmt.Sprint(want) {
					t.Errorf("destination holds %q, want %q", got, want)
				}
			} else {
				last := fmt.Sprintf("d/sub/%s %q", name, "payload")
				if isDir {
					last = "d/sub/" + name
				}
				if err != nil || !contains(got, last) {
					t.Errorf("Download = %v; destination holds %q, want %q among them", err, got, last)
				}
				if st, err := os.Lstat(filepath.Join(dst, "d", "sub", name)); err != nil || st.Mode().Perm() == 0o777 && !isDir {
					t.Errorf("%q: %v %v", name, st, err)
				}
			}
			if after := treeState(t, parent, dst); after != before {
				t.Errorf("beside the destination:\nbefore:\n%s\nafter:\n%s", before, after)
			}
			// (Its time moves on as entries are made in it; it must not be
			// set back.)
			if st, _ := os.Stat(dst); st.Mode() != dstBefore.Mode() || st.ModTime().Before(dstBefore.ModTime()) {
				t.Errorf("the target directory went from %v %v to %v %v", dstBefore.Mode(), dstBefore.ModTime(), st.Mode(), st.ModTime())
			}
			for _, p := range got {
				if strings.Contains(p, "pwned") && i < len(refused) {
					t.Errorf("wrote %s", p)
				}
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TestCVE_2018_20685_TargetDirAttrsUnchanged: scp let a server change
// the permissions of the target directory by sending a directory record
// named "." or "" (CVE-2018-20685). Listings here carry "." and ".."
// entries with mode 0777 and a time of 1970 in every directory of a
// recursive download that preserves modes and times: the directory the
// download goes into keeps its own, and each downloaded directory gets
// those of its own entry (STAT for the top, the parent's listing for the
// rest), never those of a "." or ".." entry.
func TestCVE_2018_20685_TargetDirAttrsUnchanged(t *testing.T) {
	hostile := dirAttrs(0o777, 1)
	t1, t2 := uint32(1100000000), uint32(1200000000)
	lt := &lyingTree{
		stat: map[string]Attrs{"/d": dirAttrs(0o750, t1), "/d/f": fileAttrs(0o640, 1), "/d/sub": dirAttrs(0o700, t2),
			"/d/sub/g": fileAttrs(0o600, 1)},
		list: map[string][]lyingEntry{
			"/d":     {{".", hostile}, {"..", hostile}, {"f", fileAttrs(0o640, 1)}, {"sub", dirAttrs(0o700, t2)}},
			"/d/sub": {{"..", hostile}, {"g", fileAttrs(0o600, 1)}, {".", hostile}},
		},
		data: map[string]string{"/d/f": "f", "/d/sub/g": "g"},
	}
	parent := t.TempDir()
	dst := filepath.Join(parent, "dst")
	os.Mkdir(dst, 0o711)
	os.Chmod(dst, 0o711)
	old := time.Date(2002, 2, 2, 0, 0, 0, 0, time.UTC)
	os.Chtimes(dst, old, old)
	os.Chtimes(parent, old, old)
	before := treeState(t, parent, dst)
	if err := lt.download(t, "/d", dst, TransferOptions{Recursive: true, PreserveTimesAndMode: true}); err != nil {
		t.Fatal(err)
	}
	// The target's time moves on as "d" is made in it; it must not be set
	// back.
	if st, err := os.Stat(dst); err != nil || st.Mode() != fs.ModeDir|0o711 || st.ModTime().Before(old) {
		t.Errorf("the target directory: %v %v %v", st.Mode(), st.ModTime(), err)
	}
	for p, want := range map[string]struct {
		mode  fs.FileMode
		mtime uint32
	}{
		"d":       {fs.ModeDir | 0o750, t1},
		"d/sub":   {fs.ModeDir | 0o700, t2},
		"d/f":     {0o640, 1e9},
		"d/sub/g": {0o600, 1e9},
	} {
		st, err := os.Stat(filepath.Join(dst, p))
		if err != nil || st.Mode() != want.mode || st.ModTime().Unix() != int64(want.mtime) {
			t.Errorf("%q: %v, want mode %v and time %d (%v)", p, st.Mode(), want.mode, want.mtime, err)
		}
	}
	if after := treeState(t, parent, dst); after != before {
		t.Errorf("beside the destination:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

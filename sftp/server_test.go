package sftp

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rsftp/rsftp/internal/sshtest"
	"github.com/rsftp/rsftp/internal/wire"
)

// envServerRoot makes the test binary an SFTP server on stdin/stdout, so
// OpenSSH's sftp can run it with -D. An init function rather than
// TestMain keeps the package free to have its own TestMain.
const envServerRoot = "RSFTP_TEST_SFTP_SERVER_ROOT"

func init() {
	root := os.Getenv(envServerRoot)
	if root == "" {
		return
	}
	rw := struct {
		io.Reader
		io.Writer
	}{os.Stdin, os.Stdout}
	if err := Serve(context.Background(), rw, &ServerConfig{Root: root}); err != nil {
		fmt.Fprintln(os.Stderr, "test sftp server:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// srvHarness drives Serve with raw packets over in-memory pipes.
type srvHarness struct {
	t    testing.TB
	cw   *io.PipeWriter
	cr   *bufio.Reader
	id   uint32
	done chan error
	once sync.Once
	err  error
}

func newSrvHarness(t testing.TB, cfg *ServerConfig) *srvHarness {
	t.Helper()
	sr, cw := io.Pipe()
	cr, sw := io.Pipe()
	h := &srvHarness{t: t, cw: cw, cr: bufio.NewReaderSize(cr, 1<<20), done: make(chan error, 1)}
	go func() {
		err := Serve(context.Background(), struct {
			io.Reader
			io.Writer
		}{sr, sw}, cfg)
		sr.Close()
		sw.Close()
		h.done <- err
	}()
	t.Cleanup(func() { h.close() })
	h.sendRaw(srvPacket(typeInit, srvU32(3)))
	typ, body := h.recvRaw()
	if typ != typeVersion {
		t.Fatalf("reply to INIT is type %d", typ)
	}
	if v := binary.BigEndian.Uint32(body); v != 3 {
		t.Fatalf("VERSION %d", v)
	}
	return h
}

// close ends the session and returns Serve's result.
func (h *srvHarness) close() error {
	h.once.Do(func() {
		h.cw.Close()
		io.Copy(io.Discard, h.cr)
		h.err = <-h.done
	})
	return h.err
}

func srvPacket(typ byte, fields ...[]byte) []byte {
	b := []byte{0, 0, 0, 0, typ}
	for _, f := range fields {
		b = append(b, f...)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func srvU32(v uint32) []byte  { return wire.AppendUint32(nil, v) }
func srvU64(v uint64) []byte  { return wire.AppendUint64(nil, v) }
func srvStr(s string) []byte  { return wire.AppendString(nil, s) }
func srvNoAttrs() []byte      { return srvU32(0) }
func srvPerm(m uint32) []byte { return append(srvU32(AttrPermissions), srvU32(m)...) }

func (h *srvHarness) sendRaw(p []byte) {
	h.t.Helper()
	if _, err := h.cw.Write(p); err != nil {
		h.t.Fatalf("write: %v", err)
	}
}

func (h *srvHarness) recvRaw() (byte, []byte) {
	h.t.Helper()
	var hdr [4]byte
	if _, err := io.ReadFull(h.cr, hdr[:]); err != nil {
		h.t.Fatalf("read reply: %v", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n > MaxPacket+1024 || n < 1 {
		h.t.Fatalf("reply length %d", n)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(h.cr, b); err != nil {
		h.t.Fatalf("read reply: %v", err)
	}
	return b[0], b[1:]
}

// rpc sends a request with a fresh id and returns the reply's type and
// a reader after its id.
func (h *srvHarness) rpc(typ byte, fields ...[]byte) (byte, *wire.Reader) {
	h.t.Helper()
	h.id++
	h.sendRaw(srvPacket(typ, append([][]byte{srvU32(h.id)}, fields...)...))
	rt, body := h.recvRaw()
	r := wire.NewReader(body)
	if got := r.Uint32(); got != h.id {
		h.t.Fatalf("reply id %d, want %d", got, h.id)
	}
	return rt, r
}

// status sends a request expecting a STATUS and returns its code.
func (h *srvHarness) status(typ byte, fields ...[]byte) uint32 {
	h.t.Helper()
	rt, r := h.rpc(typ, fields...)
	if rt != typeStatus {
		h.t.Fatalf("request %d: reply type %d, want STATUS", typ, rt)
	}
	code := r.Uint32()
	msg := r.String()
	if r.Err() != nil {
		h.t.Fatalf("bad STATUS: %v", r.Err())
	}
	if strings.Contains(msg, "/") {
		h.t.Errorf("status message %q may carry a path", msg)
	}
	return code
}

// handle sends a request expecting HANDLE (or STATUS, whose code is
// returned with an empty handle).
func (h *srvHarness) handle(typ byte, fields ...[]byte) (string, uint32) {
	h.t.Helper()
	rt, r := h.rpc(typ, fields...)
	switch rt {
	case typeHandle:
		s := r.String()
		if r.Err() != nil || len(s) == 0 || len(s) > maxHandleLen {
			h.t.Fatalf("bad HANDLE %q %v", s, r.Err())
		}
		return s, StatusOK
	case typeStatus:
		return "", r.Uint32()
	}
	h.t.Fatalf("reply type %d to %d", rt, typ)
	return "", 0
}

func (h *srvHarness) open(name string, pflags uint32) (string, uint32) {
	h.t.Helper()
	return h.handle(typeOpen, srvStr(name), srvU32(pflags), srvNoAttrs())
}

func (h *srvHarness) mustOpen(name string, pflags uint32) string {
	h.t.Helper()
	hd, code := h.open(name, pflags)
	if code != StatusOK {
		h.t.Fatalf("open %q: status %d", name, code)
	}
	return hd
}

// names sends a request expecting NAME and returns the names, or the
// STATUS code.
func (h *srvHarness) names(typ byte, fields ...[]byte) ([]string, uint32) {
	h.t.Helper()
	rt, r := h.rpc(typ, fields...)
	if rt == typeStatus {
		return nil, r.Uint32()
	}
	if rt != typeName {
		h.t.Fatalf("reply type %d to %d", rt, typ)
	}
	n := r.Uint32()
	var out []string
	for range n {
		out = append(out, r.String())
		_ = r.Bytes()
		parseAttrs(r)
	}
	if err := r.Done(); err != nil {
		h.t.Fatalf("bad NAME: %v", err)
	}
	return out, StatusOK
}

func (h *srvHarness) realpath(p string) (string, uint32) {
	h.t.Helper()
	n, code := h.names(typeRealpath, srvStr(p))
	if code != StatusOK {
		return "", code
	}
	if len(n) != 1 {
		h.t.Fatalf("REALPATH gave %d names", len(n))
	}
	return n[0], StatusOK
}

func mustWrite(t testing.TB, name string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func randBytes(t testing.TB, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func wantCode(t *testing.T, what string, got uint32, want ...uint32) {
	t.Helper()
	for _, w := range want {
		if got == w {
			return
		}
	}
	t.Errorf("%s: status %s, want one of %v", what, statusName(got), want)
}

func TestServerBasicOps(t *testing.T) {
	root := t.TempDir()
	h := newSrvHarness(t, &ServerConfig{Root: root})

	// Write, read back, EOF.
	hd := h.mustOpen("/f.txt", FlagWrite|FlagCreate|FlagTrunc)
	if c := h.status(typeWrite, srvStr(hd), srvU64(0), srvStr("hello, ")); c != StatusOK {
		t.Fatalf("write: %d", c)
	}
	if c := h.status(typeWrite, srvStr(hd), srvU64(7), srvStr("world")); c != StatusOK {
		t.Fatalf("write: %d", c)
	}
	if c := h.status(typeClose, srvStr(hd)); c != StatusOK {
		t.Fatalf("close: %d", c)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "f.txt")); string(got) != "hello, world" {
		t.Fatalf("file holds %q", got)
	}
	hd = h.mustOpen("f.txt", FlagRead)
	rt, r := h.rpc(typeRead, srvStr(hd), srvU64(7), srvU32(100))
	if rt != typeData {
		t.Fatalf("READ reply %d", rt)
	}
	if d := r.String(); d != "world" {
		t.Fatalf("READ %q", d)
	}
	if c := h.status(typeRead, srvStr(hd), srvU64(12), srvU32(100)); c != StatusEOF {
		t.Fatalf("READ at EOF: %d", c)
	}
	rt, r = h.rpc(typeFstat, srvStr(hd))
	if rt != typeAttrs {
		t.Fatalf("FSTAT reply %d", rt)
	}
	if a := parseAttrs(r); a.Size != 12 || a.Mode&modeType != modeRegular {
		t.Fatalf("FSTAT attrs %+v", a)
	}
	h.status(typeClose, srvStr(hd))
	if c := h.status(typeClose, srvStr(hd)); c != StatusFailure {
		t.Fatalf("second close: %d", c)
	}

	// Append mode ignores the offset.
	hd = h.mustOpen("f.txt", FlagWrite|FlagAppend)
	h.status(typeWrite, srvStr(hd), srvU64(0), srvStr("!"))
	h.status(typeClose, srvStr(hd))
	if got, _ := os.ReadFile(filepath.Join(root, "f.txt")); string(got) != "hello, world!" {
		t.Fatalf("after append: %q", got)
	}

	// Create with permissions; EXCL on existing fails.
	hd, code := h.handle(typeOpen, srvStr("p"), srvU32(FlagWrite|FlagCreate|FlagExcl), srvPerm(0o600))
	if code != StatusOK {
		t.Fatalf("open p: %d", code)
	}
	h.status(typeClose, srvStr(hd))
	if fi, err := os.Stat(filepath.Join(root, "p")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("p: %v %v", fi, err)
	}
	if _, code := h.handle(typeOpen, srvStr("p"), srvU32(FlagWrite|FlagCreate|FlagExcl), srvNoAttrs()); code != StatusFailure {
		t.Fatalf("exclusive create of existing: %d", code)
	}

	// SETSTAT: size, permissions, times.
	attrs := append(srvU32(AttrSize|AttrPermissions|AttrACModTime), srvU64(5)...)
	attrs = append(attrs, srvU32(0o640)...)
	attrs = append(attrs, srvU32(1000000000)...)
	attrs = append(attrs, srvU32(1200000000)...)
	if c := h.status(typeSetstat, srvStr("f.txt"), attrs); c != StatusOK {
		t.Fatalf("setstat: %d", c)
	}
	fi, err := os.Stat(filepath.Join(root, "f.txt"))
	if err != nil || fi.Size() != 5 || fi.Mode().Perm() != 0o640 || fi.ModTime().Unix() != 1200000000 {
		t.Fatalf("after setstat: %v %v", fi, err)
	}
	// FSETSTAT.
	hd = h.mustOpen("f.txt", FlagWrite)
	attrs = append(srvU32(AttrSize|AttrACModTime), srvU64(2)...)
	attrs = append(attrs, srvU32(1000000000)...)
	attrs = append(attrs, srvU32(1100000000)...)
	if c := h.status(typeFsetstat, srvStr(hd), attrs); c != StatusOK {
		t.Fatalf("fsetstat: %d", c)
	}
	h.status(typeClose, srvStr(hd))
	fi, _ = os.Stat(filepath.Join(root, "f.txt"))
	if fi.Size() != 2 || fi.ModTime().Unix() != 1100000000 {
		t.Fatalf("after fsetstat: size %d mtime %v", fi.Size(), fi.ModTime())
	}

	// Directories.
	if c := h.status(typeMkdir, srvStr("d"), srvPerm(0o750)); c != StatusOK {
		t.Fatalf("mkdir: %d", c)
	}
	if fi, err := os.Stat(filepath.Join(root, "d")); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o750 {
		t.Fatalf("d: %v %v", fi, err)
	}
	if c := h.status(typeMkdir, srvStr("d"), srvNoAttrs()); c != StatusFailure {
		t.Fatalf("mkdir existing: %d", c)
	}
	if c := h.status(typeRemove, srvStr("d")); c == StatusOK {
		t.Fatal("REMOVE removed a directory")
	}
	if c := h.status(typeRmdir, srvStr("f.txt")); c == StatusOK {
		t.Fatal("RMDIR removed a file")
	}
	if c := h.status(typeRmdir, srvStr("d")); c != StatusOK {
		t.Fatalf("rmdir: %d", c)
	}
	if c := h.status(typeRmdir, srvStr("/")); c == StatusOK {
		t.Fatal("RMDIR / succeeded")
	}

	// STAT, LSTAT, symlinks, READLINK.
	if c := h.status(typeSymlink, srvStr("f.txt"), srvStr("l")); c != StatusOK {
		t.Fatalf("symlink: %d", c)
	}
	if tg, err := os.Readlink(filepath.Join(root, "l")); err != nil || tg != "f.txt" {
		t.Fatalf("link: %q %v", tg, err)
	}
	rt, r = h.rpc(typeLstat, srvStr("l"))
	if a := parseAttrs(r); rt != typeAttrs || a.Mode&modeType != modeSymlink {
		t.Fatalf("LSTAT: %d %+v", rt, a)
	}
	rt, r = h.rpc(typeStat, srvStr("l"))
	if a := parseAttrs(r); rt != typeAttrs || a.Mode&modeType != modeRegular || a.Size != 2 {
		t.Fatalf("STAT: %d %+v", rt, a)
	}
	if n, code := h.names(typeReadlink, srvStr("l")); code != StatusOK || len(n) != 1 || n[0] != "f.txt" {
		t.Fatalf("READLINK: %v %d", n, code)
	}
	// An absolute target is stored relative to the link.
	os.Mkdir(filepath.Join(root, "sub"), 0o755)
	if c := h.status(typeSymlink, srvStr("/f.txt"), srvStr("/sub/abs")); c != StatusOK {
		t.Fatalf("symlink: %d", c)
	}
	if tg, _ := os.Readlink(filepath.Join(root, "sub/abs")); tg != "../f.txt" {
		t.Fatalf("absolute target stored as %q", tg)
	}
	if rt, r := h.rpc(typeStat, srvStr("/sub/abs")); rt != typeAttrs || parseAttrs(r).Size != 2 {
		t.Fatalf("STAT through the rewritten link: %d", rt)
	}

	// RENAME refuses to replace; posix-rename replaces.
	mustWrite(t, filepath.Join(root, "a"), []byte("A"))
	mustWrite(t, filepath.Join(root, "b"), []byte("B"))
	if c := h.status(typeRename, srvStr("a"), srvStr("b")); c != StatusFailure {
		t.Fatalf("rename onto existing: %d", c)
	}
	if c := h.status(typeRename, srvStr("a"), srvStr("c")); c != StatusOK {
		t.Fatalf("rename: %d", c)
	}
	if _, err := os.Stat(filepath.Join(root, "a")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a still there: %v", err)
	}
	if c := h.status(typeExtended, srvStr(extPosixRename), srvStr("c"), srvStr("b")); c != StatusOK {
		t.Fatalf("posix-rename: %d", c)
	}
	if got, _ := os.ReadFile(filepath.Join(root, "b")); string(got) != "A" {
		t.Fatalf("b holds %q", got)
	}
	os.Mkdir(filepath.Join(root, "dd"), 0o755)
	if c := h.status(typeRename, srvStr("dd"), srvStr("dd2")); c != StatusOK {
		t.Fatalf("rename dir: %d", c)
	}
	// Hard link.
	if c := h.status(typeExtended, srvStr(extHardlink), srvStr("b"), srvStr("b2")); c != StatusOK {
		t.Fatalf("hardlink: %d", c)
	}
	fa, _ := os.Stat(filepath.Join(root, "b"))
	fb, _ := os.Stat(filepath.Join(root, "b2"))
	if !os.SameFile(fa, fb) {
		t.Fatal("hardlink made a different file")
	}
	if c := h.status(typeRemove, srvStr("b2")); c != StatusOK {
		t.Fatalf("remove: %d", c)
	}
	if c := h.status(typeRemove, srvStr("b2")); c != StatusNoSuchFile {
		t.Fatalf("remove missing: %d", c)
	}

	// Unknown requests and extensions.
	if c := h.status(99); c != StatusOpUnsupported {
		t.Fatalf("unknown type: %d", c)
	}
	if c := h.status(typeExtended, srvStr("nope@example.com")); c != StatusOpUnsupported {
		t.Fatalf("unknown extension: %d", c)
	}

	// fsync, statvfs, fstatvfs.
	hd = h.mustOpen("b", FlagRead)
	if c := h.status(typeExtended, srvStr(extFsync), srvStr(hd)); c != StatusOK {
		t.Fatalf("fsync: %d", c)
	}
	for _, req := range [][]byte{srvStr(extStatVFS), srvStr(extFstatVFS)} {
		arg := srvStr("/")
		if string(req[4:]) == extFstatVFS {
			arg = srvStr(hd)
		}
		rt, r := h.rpc(typeExtended, req, arg)
		if rt != typeExtendedReply {
			t.Fatalf("%s: reply %d", req[4:], rt)
		}
		var v [11]uint64
		for i := range v {
			v[i] = r.Uint64()
		}
		if r.Done() != nil || v[0] == 0 || v[2] == 0 {
			t.Fatalf("%s: %v %v", req[4:], v, r.Done())
		}
	}
	h.status(typeClose, srvStr(hd))

	// home-directory, expand-path.
	if n, code := h.names(typeExtended, srvStr(extHomeDir), srvStr("")); code != StatusOK || n[0] != "/" {
		t.Fatalf("home-directory: %v %d", n, code)
	}
	if n, code := h.names(typeExtended, srvStr(extExpandPath), srvStr("~/sub/x")); code != StatusOK || n[0] != "/sub/x" {
		t.Fatalf("expand-path: %v %d", n, code)
	}

	// users-groups-by-id.
	rt, r = h.rpc(typeExtended, srvStr(extUsersGroups), srvStr(string(srvU32(uint32(os.Getuid())))), srvStr(string(append(srvU32(uint32(os.Getgid())), srvU32(4000000000)...))))
	if rt != typeExtendedReply {
		t.Fatalf("users-groups: %d", rt)
	}
	users, groups := wire.NewReader(r.Bytes()), wire.NewReader(r.Bytes())
	u := users.String()
	g1, g2 := groups.String(), groups.String()
	if users.Done() != nil || groups.Done() != nil || r.Done() != nil || g2 != "" {
		t.Fatalf("users-groups reply: %q %q %q", u, g1, g2)
	}
	t.Logf("uid %d is %q, gid %d is %q", os.Getuid(), u, os.Getgid(), g1)
}

func TestServerRealpath(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "home/u/docs"), 0o755)
	os.Symlink("u/docs", filepath.Join(root, "home/link"))
	os.Symlink("../../../../..", filepath.Join(root, "home/up"))
	os.Symlink("loop", filepath.Join(root, "loop"))
	os.Symlink(root, filepath.Join(root, "abs"))
	mustWrite(t, filepath.Join(root, "file"), nil)
	h := newSrvHarness(t, &ServerConfig{Root: root, Home: "/home/u"})
	for _, c := range []struct {
		in, want string
		code     uint32
	}{
		{".", "/home/u", 0},
		{"", "/home/u", 0},
		{"docs", "/home/u/docs", 0},
		{"/", "/", 0},
		{"/..", "/", 0},
		{"../../../..", "/", 0},
		{"/home/link", "/home/u/docs", 0},
		{"/home/link/new", "/home/u/docs/new", 0},
		{"/home/up", "/", 0},
		{"/home/up/home", "/home", 0},
		{"missing", "/home/u/missing", 0},
		{"missing/deeper", "", StatusNoSuchFile},
		{"/file/x", "", StatusNoSuchFile},
		{"/loop", "", StatusNoSuchFile},
		{"/abs", "/abs", 0},
	} {
		got, code := h.realpath(c.in)
		if got != c.want || code != c.code {
			t.Errorf("REALPATH %q = %q, %d; want %q, %d", c.in, got, code, c.want, c.code)
		}
		if strings.Contains(got, root) {
			t.Errorf("REALPATH %q revealed the root: %q", c.in, got)
		}
	}
}

// TestServerRootEscapes tries to leave the root every way we know.
func TestServerRootEscapes(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "x", "a")
	sibling := filepath.Join(base, "x", "ab")
	outside := filepath.Join(base, "outside")
	mustWrite(t, filepath.Join(sibling, "secret"), []byte("sibling secret"))
	mustWrite(t, filepath.Join(outside, "secret"), []byte("outside secret"))
	mustWrite(t, filepath.Join(root, "inside"), []byte("inside"))
	os.Mkdir(filepath.Join(root, "d"), 0o755)
	os.Symlink(outside, filepath.Join(root, "out"))                 // absolute, outside
	os.Symlink("../../../outside", filepath.Join(root, "rout"))     // relative, outside
	os.Symlink("../../ab/secret", filepath.Join(root, "d", "sibl")) // into the sibling
	os.Chmod(filepath.Join(outside, "secret"), 0o644)
	before := snapshot(t, base)

	h := newSrvHarness(t, &ServerConfig{Root: root})
	denied := []uint32{StatusNoSuchFile, StatusPermissionDenied}

	for _, p := range []string{
		"/../etc/passwd", "../etc/passwd", "a/../../x/ab/secret", "../ab/secret", "/../ab/secret",
		outside + "/secret", sibling + "/secret", "out/secret", "rout/secret", "/d/sibl",
		"out", "rout", "/out/../out/secret",
	} {
		_, code := h.open(p, FlagRead)
		wantCode(t, "open "+p, code, denied...)
		_, code = h.open(p, FlagWrite|FlagCreate)
		wantCode(t, "create "+p, code, denied...)
		if rt, r := h.rpc(typeStat, srvStr(p)); rt != typeStatus {
			t.Errorf("stat %q succeeded", p)
		} else {
			wantCode(t, "stat "+p, r.Uint32(), denied...)
		}
		_, code = h.handle(typeOpendir, srvStr(p))
		wantCode(t, "opendir "+p, code, denied...)
		if got, code := h.realpath(p); code == StatusOK && strings.Contains(got, base) {
			t.Errorf("realpath %q revealed %q", p, got)
		}
		rt, r := h.rpc(typeExtended, srvStr(extHashRange), srvStr(p), srvU64(0), srvU64(100), srvStr("sha256"))
		if rt != typeStatus {
			t.Errorf("hash-range %q succeeded", p)
		} else {
			wantCode(t, "hash-range "+p, r.Uint32(), denied...)
		}
	}
	for _, p := range []string{"out/newdir", "rout/newdir", "out/secret2", "/../x"} {
		code := h.status(typeMkdir, srvStr(p), srvNoAttrs())
		if p == "/../x" {
			// Clamped to /x inside the root: allowed.
			wantCode(t, "mkdir "+p, code, StatusOK)
			continue
		}
		wantCode(t, "mkdir "+p, code, denied...)
	}
	wantCode(t, "remove through link", h.status(typeRemove, srvStr("out/secret")), denied...)
	wantCode(t, "rename through link", h.status(typeRename, srvStr("out/secret"), srvStr("stolen")), denied...)
	wantCode(t, "rename out through link", h.status(typeRename, srvStr("inside"), srvStr("out/planted")), denied...)
	wantCode(t, "posix-rename through link", h.status(typeExtended, srvStr(extPosixRename), srvStr("out/secret"), srvStr("stolen")), denied...)
	wantCode(t, "hardlink through link", h.status(typeExtended, srvStr(extHardlink), srvStr("out/secret"), srvStr("stolen")), denied...)
	wantCode(t, "chmod through link", h.status(typeSetstat, srvStr("out/secret"), srvPerm(0o666)), denied...)
	wantCode(t, "chmod of link", h.status(typeSetstat, srvStr("out"), srvPerm(0o700)), denied...)
	wantCode(t, "truncate through link", h.status(typeSetstat, srvStr("out/secret"), append(srvU32(AttrSize), srvU64(0)...)), denied...)
	wantCode(t, "symlink creation through link", h.status(typeSymlink, srvStr("x"), srvStr("out/planted")), denied...)
	wantCode(t, "symlink target climbing out", h.status(typeSymlink, srvStr("../../outside"), srvStr("evil")), denied...)
	wantCode(t, "symlink target climbing out", h.status(typeSymlink, srvStr("../../outside"), srvStr("d/evil")), denied...)
	wantCode(t, "statvfs through link", h.status(typeExtended, srvStr(extStatVFS), srvStr("out/secret")), denied...)
	// An absolute target names a path in the client's view of the root.
	wantCode(t, "symlink to /etc/passwd", h.status(typeSymlink, srvStr("/etc/passwd"), srvStr("d/pw")), StatusOK)
	if tg, _ := os.Readlink(filepath.Join(root, "d/pw")); tg != "../etc/passwd" {
		t.Errorf("absolute target stored as %q", tg)
	}
	_, code := h.open("d/pw", FlagRead)
	wantCode(t, "open d/pw", code, StatusNoSuchFile)
	// lsetstat on the link itself is no escape, but must not touch the target.
	h.status(typeExtended, srvStr(extLsetstat), srvStr("out"), srvPerm(0o777))

	// READDIR of a link to outside.
	_, code = h.handle(typeOpendir, srvStr("out"))
	wantCode(t, "opendir out", code, denied...)

	// Nothing outside the root changed.
	after := snapshot(t, base)
	for k, v := range before {
		if !strings.HasPrefix(k, "x/a/") && after[k] != v {
			t.Errorf("%s changed: %q -> %q", k, v, after[k])
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok && !strings.HasPrefix(k, "x/a/") {
			t.Errorf("%s appeared outside the root", k)
		}
	}
}

// snapshot maps each path under dir to its mode and content.
func snapshot(t *testing.T, dir string) map[string]string {
	m := map[string]string{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		v := fi.Mode().String()
		if fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			v += " " + string(b)
		}
		m[filepath.ToSlash(rel)+"/"] = v
		return nil
	})
	return m
}

// TestServerSymlinkSwap replaces a directory with a link to outside
// while a file in it is open.
func TestServerSymlinkSwap(t *testing.T) {
	base := t.TempDir()
	root := filepath.Join(base, "root")
	outside := filepath.Join(base, "outside")
	os.MkdirAll(filepath.Join(root, "dir"), 0o755)
	os.MkdirAll(outside, 0o755)
	h := newSrvHarness(t, &ServerConfig{Root: root})

	hd := h.mustOpen("dir/f", FlagWrite|FlagCreate)
	h.status(typeWrite, srvStr(hd), srvU64(0), srvStr("one"))
	if err := os.Rename(filepath.Join(root, "dir"), filepath.Join(root, "dir.old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(root, "dir")); err != nil {
		t.Fatal(err)
	}
	if c := h.status(typeWrite, srvStr(hd), srvU64(3), srvStr("two")); c != StatusOK {
		t.Fatalf("write on open handle: %d", c)
	}
	h.status(typeClose, srvStr(hd))
	_, code := h.open("dir/g", FlagWrite|FlagCreate)
	wantCode(t, "open after swap", code, StatusPermissionDenied, StatusNoSuchFile)
	_, code = h.open("dir/f", FlagWrite|FlagCreate|FlagTrunc)
	wantCode(t, "reopen after swap", code, StatusPermissionDenied, StatusNoSuchFile)
	wantCode(t, "mkdir after swap", h.status(typeMkdir, srvStr("dir/sub"), srvNoAttrs()), StatusPermissionDenied, StatusNoSuchFile)
	if got, _ := os.ReadFile(filepath.Join(root, "dir.old", "f")); string(got) != "onetwo" {
		t.Errorf("original file holds %q", got)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("outside now holds %v", ents)
	}

	// A directory handle opened before a swap keeps listing the
	// original directory, and entries are stat'ed inside the root.
	os.Remove(filepath.Join(root, "dir"))
	os.Mkdir(filepath.Join(root, "dir"), 0o755)
	mustWrite(t, filepath.Join(root, "dir", "inner"), nil)
	mustWrite(t, filepath.Join(outside, "inner"), []byte("outside"))
	dh, code := h.handle(typeOpendir, srvStr("dir"))
	if code != StatusOK {
		t.Fatal(code)
	}
	os.Rename(filepath.Join(root, "dir"), filepath.Join(root, "dir.two"))
	os.Symlink(outside, filepath.Join(root, "dir"))
	rt, r := h.rpc(typeReaddir, srvStr(dh))
	if rt == typeName {
		n := r.Uint32()
		for range n {
			name := r.String()
			_ = r.Bytes()
			a := parseAttrs(r)
			if name == "inner" && a.Size != 0 {
				t.Errorf("READDIR stat'ed outside: size %d", a.Size)
			}
		}
	}
}

func TestServerLimits(t *testing.T) {
	h := newSrvHarness(t, &ServerConfig{Root: t.TempDir(), MaxHandles: 7})
	rt, r := h.rpc(typeExtended, srvStr(extLimits))
	if rt != typeExtendedReply {
		t.Fatalf("reply %d", rt)
	}
	got := [4]uint64{r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64()}
	if r.Done() != nil || got != [4]uint64{MaxPacket, MaxReadWrite, MaxReadWrite, 7} {
		t.Fatalf("limits %v %v", got, r.Done())
	}
}

func TestServerVersionExtensions(t *testing.T) {
	sr, cw := io.Pipe()
	cr, sw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Serve(context.Background(), struct {
			io.Reader
			io.Writer
		}{sr, sw}, &ServerConfig{Root: t.TempDir()})
		sw.Close()
	}()
	go func() { cw.Write(srvPacket(typeInit, srvU32(3))); cw.Close() }()
	all, _ := io.ReadAll(cr)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	r := wire.NewReader(all)
	r.Uint32()
	if r.Byte() != typeVersion || r.Uint32() != 3 {
		t.Fatal("not VERSION 3")
	}
	exts := map[string]string{}
	for r.Len() > 0 {
		k, v := r.String(), r.String()
		exts[k] = v
	}
	for _, want := range []string{extLimits, extPosixRename, extStatVFS, extFstatVFS, extFsync, extHardlink, extExpandPath, extHomeDir, extUsersGroups, extLsetstat, extHashRange} {
		if exts[want] == "" {
			t.Errorf("extension %s not advertised", want)
		}
	}
}

func TestServerReaddirBatching(t *testing.T) {
	root := t.TempDir()
	const n = 1000
	want := map[string]bool{".": true, "..": true}
	for i := range n {
		name := fmt.Sprintf("file-%04d-%s", i, strings.Repeat("x", 150))
		mustWrite(t, filepath.Join(root, "big", name), nil)
		want[name] = true
	}
	h := newSrvHarness(t, &ServerConfig{Root: root})
	dh, code := h.handle(typeOpendir, srvStr("big"))
	if code != StatusOK {
		t.Fatal(code)
	}
	seen := map[string]int{}
	for {
		h.id++
		h.sendRaw(srvPacket(typeReaddir, srvU32(h.id), srvStr(dh)))
		rt, body := h.recvRaw()
		if len(body)+1 >= MaxPacket {
			t.Fatalf("NAME reply of %d bytes", len(body)+1)
		}
		r := wire.NewReader(body[4:])
		if rt == typeStatus {
			if c := r.Uint32(); c != StatusEOF {
				t.Fatalf("READDIR status %d", c)
			}
			break
		}
		cnt := r.Uint32()
		if cnt == 0 || cnt > 100 {
			t.Fatalf("NAME with %d entries", cnt)
		}
		for range cnt {
			name, long := r.String(), r.String()
			parseAttrs(r)
			seen[name]++
			if !strings.HasSuffix(long, " "+name) || !strings.HasPrefix(long, "-") && !strings.HasPrefix(long, "d") {
				t.Fatalf("longname %q", long)
			}
		}
		if err := r.Done(); err != nil {
			t.Fatal(err)
		}
	}
	for name := range want {
		if seen[name] != 1 {
			t.Errorf("%q seen %d times", name, seen[name])
		}
	}
	if len(seen) != len(want) {
		t.Errorf("saw %d names, want %d", len(seen), len(want))
	}
	// READDIR on a file handle, READ on a dir handle.
	mustWrite(t, filepath.Join(root, "f"), []byte("x"))
	fh := h.mustOpen("f", FlagRead)
	if c := h.status(typeReaddir, srvStr(fh)); c != StatusFailure {
		t.Errorf("READDIR of a file handle: %d", c)
	}
	if c := h.status(typeRead, srvStr(dh), srvU64(0), srvU32(10)); c != StatusFailure {
		t.Errorf("READ of a dir handle: %d", c)
	}
}

func TestServerLongname(t *testing.T) {
	var s server
	s.users = map[uint32]string{1000: "alice"}
	s.groups = map[uint32]string{100: "users"}
	for _, c := range []struct {
		mode uint32
		want string
	}{
		{modeRegular | 0o644, "-rw-r--r--"},
		{modeDir | 0o755, "drwxr-xr-x"},
		{modeRegular | 0o4755, "-rwsr-xr-x"},
		{modeRegular | 0o2644, "-rw-r-Sr--"},
		{modeDir | 0o1777, "drwxrwxrwt"},
		{modeSymlink | 0o777, "lrwxrwxrwx"},
	} {
		if got := string(appendModeString(nil, c.mode)); got != c.want {
			t.Errorf("mode %o: %q, want %q", c.mode, got, c.want)
		}
	}
	root := t.TempDir()
	mustWrite(t, filepath.Join(root, "f"), []byte("1234"))
	fi, _ := os.Lstat(filepath.Join(root, "f"))
	a := AttrsFromFileInfo(fi)
	a.UID, a.GID = 1000, 100
	r := wire.NewReader(s.appendLongname(nil, "f", fi, &a, fi.ModTime()))
	long := r.String()
	if !strings.HasPrefix(long, "-rw-r--r--    1 alice    users           4 ") || !strings.HasSuffix(long, " f") {
		t.Errorf("longname %q", long)
	}
}

func TestServerCopyData(t *testing.T) {
	root := t.TempDir()
	data := randBytes(t, 700000)
	mustWrite(t, filepath.Join(root, "src"), data)
	h := newSrvHarness(t, &ServerConfig{Root: root})
	src := h.mustOpen("src", FlagRead)
	dst := h.mustOpen("dst", FlagWrite|FlagCreate)
	if c := h.status(typeExtended, srvStr(extCopyData), srvStr(src), srvU64(0), srvU64(0), srvStr(dst), srvU64(0)); c != StatusOK {
		t.Fatalf("copy-data: %d", c)
	}
	if c := h.status(typeExtended, srvStr(extCopyData), srvStr(src), srvU64(100), srvU64(50), srvStr(dst), srvU64(700000)); c != StatusOK {
		t.Fatalf("copy-data: %d", c)
	}
	got, _ := os.ReadFile(filepath.Join(root, "dst"))
	if want := append(append([]byte{}, data...), data[100:150]...); !bytes.Equal(got, want) {
		t.Fatalf("copy holds %d bytes", len(got))
	}
	rw := h.mustOpen("src", FlagRead|FlagWrite)
	wantCode(t, "overlap", h.status(typeExtended, srvStr(extCopyData), srvStr(rw), srvU64(0), srvU64(100), srvStr(rw), srvU64(50)), StatusFailure)
	wantCode(t, "overlap to EOF", h.status(typeExtended, srvStr(extCopyData), srvStr(rw), srvU64(0), srvU64(0), srvStr(rw), srvU64(50)), StatusFailure)
	wantCode(t, "disjoint", h.status(typeExtended, srvStr(extCopyData), srvStr(rw), srvU64(0), srvU64(100), srvStr(rw), srvU64(100)), StatusOK)
	wantCode(t, "bad handle", h.status(typeExtended, srvStr(extCopyData), srvStr("nope"), srvU64(0), srvU64(0), srvStr(dst), srvU64(0)), StatusFailure)
}

func TestServerHandleCap(t *testing.T) {
	root := t.TempDir()
	mustWrite(t, filepath.Join(root, "f"), []byte("x"))
	h := newSrvHarness(t, &ServerConfig{Root: root, MaxHandles: 4})
	var hs []string
	for range 4 {
		hs = append(hs, h.mustOpen("f", FlagRead))
	}
	if _, code := h.open("f", FlagRead); code != StatusFailure {
		t.Fatalf("fifth open: %d", code)
	}
	if _, code := h.handle(typeOpendir, srvStr("/")); code != StatusFailure {
		t.Fatalf("opendir over the cap: %d", code)
	}
	seen := map[string]bool{}
	for _, x := range hs {
		if seen[x] {
			t.Fatalf("handle %q reused", x)
		}
		seen[x] = true
	}
	h.status(typeClose, srvStr(hs[0]))
	h.mustOpen("f", FlagRead)
	if c := h.status(typeRead, srvStr("bogus"), srvU64(0), srvU32(1)); c != StatusFailure {
		t.Fatalf("read of bogus handle: %d", c)
	}
	if err := h.close(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func TestServerReadOnly(t *testing.T) {
	root := t.TempDir()
	mustWrite(t, filepath.Join(root, "f"), []byte("data"))
	os.Mkdir(filepath.Join(root, "d"), 0o755)
	before := snapshot(t, root)
	h := newSrvHarness(t, &ServerConfig{Root: root, ReadOnly: true})
	hd := h.mustOpen("f", FlagRead)
	if rt, _ := h.rpc(typeRead, srvStr(hd), srvU64(0), srvU32(4)); rt != typeData {
		t.Fatalf("read: %d", rt)
	}
	deny := uint32(StatusPermissionDenied)
	wantCode(t, "write", h.status(typeWrite, srvStr(hd), srvU64(0), srvStr("x")), deny)
	for _, fl := range []uint32{FlagWrite, FlagRead | FlagCreate, FlagRead | FlagTrunc, FlagAppend} {
		_, code := h.open("f", fl)
		wantCode(t, fmt.Sprintf("open %#x", fl), code, deny)
	}
	wantCode(t, "setstat", h.status(typeSetstat, srvStr("f"), srvPerm(0o777)), deny)
	wantCode(t, "fsetstat", h.status(typeFsetstat, srvStr(hd), srvPerm(0o777)), deny)
	wantCode(t, "remove", h.status(typeRemove, srvStr("f")), deny)
	wantCode(t, "mkdir", h.status(typeMkdir, srvStr("e"), srvNoAttrs()), deny)
	wantCode(t, "rmdir", h.status(typeRmdir, srvStr("d")), deny)
	wantCode(t, "rename", h.status(typeRename, srvStr("f"), srvStr("g")), deny)
	wantCode(t, "symlink", h.status(typeSymlink, srvStr("f"), srvStr("l")), deny)
	wantCode(t, "posix-rename", h.status(typeExtended, srvStr(extPosixRename), srvStr("f"), srvStr("g")), deny)
	wantCode(t, "hardlink", h.status(typeExtended, srvStr(extHardlink), srvStr("f"), srvStr("g")), deny)
	wantCode(t, "lsetstat", h.status(typeExtended, srvStr(extLsetstat), srvStr("f"), srvPerm(0o777)), deny)
	after := snapshot(t, root)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("read-only root changed:\n%v\n%v", before, after)
	}
}

func TestServerHashRange(t *testing.T) {
	root := t.TempDir()
	data := randBytes(t, 1<<20+12345)
	mustWrite(t, filepath.Join(root, "f"), data)
	h := newSrvHarness(t, &ServerConfig{Root: root})
	for _, c := range []struct{ off, n uint64 }{
		{0, uint64(len(data))}, {1000, 500000}, {0, 0}, {12345, 1 << 40}, {uint64(len(data)), 10}, {uint64(len(data)) + 5, 10},
	} {
		rt, r := h.rpc(typeExtended, srvStr(extHashRange), srvStr("f"), srvU64(c.off), srvU64(c.n), srvStr("sha256"))
		if rt != typeExtendedReply {
			t.Fatalf("hash-range %v: reply %d", c, rt)
		}
		alg, n, sum := r.String(), r.Uint64(), r.Bytes()
		if r.Done() != nil || alg != "sha256" {
			t.Fatalf("hash-range reply: %q %v", alg, r.Done())
		}
		lo := min(c.off, uint64(len(data)))
		hi := min(c.off+c.n, uint64(len(data)))
		want := sha256.Sum256(data[lo:hi])
		if n != hi-lo || !bytes.Equal(sum, want[:]) {
			t.Errorf("hash-range %v: %d bytes %x, want %d %x", c, n, sum, hi-lo, want)
		}
	}
	wantCode(t, "md5", h.status(typeExtended, srvStr(extHashRange), srvStr("f"), srvU64(0), srvU64(1), srvStr("md5")), StatusOpUnsupported)
	wantCode(t, "missing", h.status(typeExtended, srvStr(extHashRange), srvStr("nope"), srvU64(0), srvU64(1), srvStr("sha256")), StatusNoSuchFile)
	wantCode(t, "truncated", h.status(typeExtended, srvStr(extHashRange), srvStr("f"), srvU64(0)), StatusBadMessage)
	wantCode(t, "dir", h.status(typeExtended, srvStr(extHashRange), srvStr("/"), srvU64(0), srvU64(1), srvStr("sha256")), StatusFailure)
}

func TestServerMalformed(t *testing.T) {
	root := t.TempDir()
	mustWrite(t, filepath.Join(root, "f"), []byte("x"))

	t.Run("bad fields", func(t *testing.T) {
		h := newSrvHarness(t, &ServerConfig{Root: root})
		wantCode(t, "truncated open", h.status(typeOpen, []byte{0, 0, 0, 9, 'a'}), StatusBadMessage)
		wantCode(t, "open without pflags", h.status(typeOpen, srvStr("f")), StatusBadMessage)
		wantCode(t, "huge string", h.status(typeStat, srvU32(0xffffffff)), StatusBadMessage)
		bad := append(srvU32(AttrExtended), srvU32(1000000000)...)
		wantCode(t, "attrs ext count", h.status(typeSetstat, srvStr("f"), bad), StatusBadMessage)
		wantCode(t, "attrs cut", h.status(typeSetstat, srvStr("f"), srvU32(AttrSize), []byte{1, 2}), StatusBadMessage)
		wantCode(t, "read no handle", h.status(typeRead), StatusBadMessage)
		wantCode(t, "extended no name", h.status(typeExtended), StatusBadMessage)
		wantCode(t, "users-groups odd", h.status(typeExtended, srvStr(extUsersGroups), srvStr("abc"), srvStr("")), StatusBadMessage)
		// The session survives all of that.
		h.mustOpen("f", FlagRead)
		if err := h.close(); err != nil {
			t.Fatal(err)
		}
	})

	end := func(name string, stream []byte, wantErr bool) {
		t.Run(name, func(t *testing.T) {
			out := &bytes.Buffer{}
			err := Serve(context.Background(), struct {
				io.Reader
				io.Writer
			}{bytes.NewReader(stream), out}, &ServerConfig{Root: root})
			if (err != nil) != wantErr {
				t.Fatalf("Serve: %v (want error: %v)", err, wantErr)
			}
		})
	}
	initp := srvPacket(typeInit, srvU32(3))
	end("empty", nil, false)
	end("clean", initp, false)
	end("huge length", append(initp, 0xff, 0xff, 0xff, 0xff, typeOpen), true)
	end("zero length", append(initp, 0, 0, 0, 0), true)
	end("truncated packet", append(initp, 0, 0, 0, 20, typeOpen, 0), true)
	end("truncated header", append(initp, 0, 0), true)
	end("no id", append(initp, srvPacket(typeOpen, []byte{0, 0})...), true)
	end("not init first", srvPacket(typeOpen, srvU32(1)), true)
	end("double init", append(initp, initp...), true)
}

func TestServerContextCancel(t *testing.T) {
	sr, cw := io.Pipe()
	cr, sw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	rw := &pipeRW{sr, sw}
	go func() { done <- Serve(ctx, rw, &ServerConfig{Root: t.TempDir()}) }()
	go io.Copy(io.Discard, cr)
	cw.Write(srvPacket(typeInit, srvU32(3)))
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Serve: %v", err)
	}
	cw.Close()
}

type pipeRW struct {
	r *io.PipeReader
	w *io.PipeWriter
}

func (p *pipeRW) Read(b []byte) (int, error)  { return p.r.Read(b) }
func (p *pipeRW) Write(b []byte) (int, error) { return p.w.Write(b) }
func (p *pipeRW) Close() error {
	p.r.Close()
	return p.w.Close()
}

// TestServerOpenSSHClient runs OpenSSH's sftp in batch mode against
// Serve, with this test binary as the server (sftp -D).
func TestServerOpenSSHClient(t *testing.T) {
	sftpBin := sshtest.Binary(t, "sftp")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	root := filepath.Join(base, "root")
	local := filepath.Join(base, "local")
	os.MkdirAll(root, 0o755)
	os.MkdirAll(local, 0o755)
	small := []byte("hello from the local side\n")
	big := randBytes(t, 5<<20+4321)
	mustWrite(t, filepath.Join(local, "small.txt"), small)
	mustWrite(t, filepath.Join(local, "big.bin"), big)
	mustWrite(t, filepath.Join(root, "existing.txt"), []byte("was here"))

	batch := strings.Join([]string{
		"pwd",
		"put big.bin",
		"put small.txt up.txt",
		"get big.bin big.back",
		"get existing.txt existing.back",
		"mkdir dir1",
		"rename up.txt dir1/moved.txt",
		"ls -l dir1",
		"ls -la",
		"chmod 600 dir1/moved.txt",
		"symlink dir1/moved.txt sl",
		"ln dir1/moved.txt hard.txt",
		"put small.txt tmp.txt",
		"rm tmp.txt",
		"mkdir gone",
		"rmdir gone",
		"df -h",
		"-get ../../etc/passwd escaped",
		"-put small.txt ../../escaped.txt",
		"-cd ..",
		"pwd",
	}, "\n") + "\n"
	batchFile := filepath.Join(base, "batch")
	os.WriteFile(batchFile, []byte(batch), 0o644)

	cmd := exec.Command(sftpBin, "-b", batchFile, "-D", exe)
	cmd.Dir = local
	cmd.Env = append(os.Environ(), envServerRoot+"="+root)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("sftp: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String()
	t.Logf("sftp output:\n%s\nstderr:\n%s", out, stderr.String())

	if got, _ := os.ReadFile(filepath.Join(root, "big.bin")); !bytes.Equal(got, big) {
		t.Errorf("uploaded big.bin differs (%d bytes)", len(got))
	}
	if got, _ := os.ReadFile(filepath.Join(local, "big.back")); !bytes.Equal(got, big) {
		t.Errorf("downloaded big.back differs (%d bytes)", len(got))
	}
	if got, _ := os.ReadFile(filepath.Join(local, "existing.back")); string(got) != "was here" {
		t.Errorf("existing.back holds %q", got)
	}
	moved := filepath.Join(root, "dir1", "moved.txt")
	if got, _ := os.ReadFile(moved); !bytes.Equal(got, small) {
		t.Errorf("moved.txt holds %q", got)
	}
	if fi, err := os.Stat(moved); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("moved.txt: %v %v", fi, err)
	}
	fm, _ := os.Stat(moved)
	if fi, err := os.Stat(filepath.Join(root, "sl")); err != nil || !os.SameFile(fi, fm) {
		t.Errorf("symlink sl: %v %v", fi, err)
	}
	if tg, err := os.Readlink(filepath.Join(root, "sl")); err != nil || filepath.IsAbs(tg) {
		t.Errorf("symlink sl -> %q %v", tg, err)
	}
	if fi, err := os.Lstat(filepath.Join(root, "hard.txt")); err != nil || !os.SameFile(fi, fm) {
		t.Errorf("hard link: %v %v", fi, err)
	}
	for _, gone := range []string{"up.txt", "tmp.txt", "gone"} {
		if _, err := os.Lstat(filepath.Join(root, gone)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s still exists: %v", gone, err)
		}
	}
	if !strings.Contains(out, "moved.txt") || !strings.Contains(out, "Size") {
		t.Errorf("ls or df output missing:\n%s", out)
	}
	if strings.Contains(out, root) {
		t.Errorf("output reveals the root path")
	}
	ents, _ := os.ReadDir(base)
	for _, e := range ents {
		if n := e.Name(); n != "root" && n != "local" && n != "batch" {
			t.Errorf("unexpected %s beside the root", n)
		}
	}
	if _, err := os.Stat(filepath.Join(local, "escaped")); err == nil {
		t.Errorf("../../etc/passwd was fetched")
	}
}

// BenchmarkServerRead reads a 256 MiB file through Serve over in-memory
// pipes with 64 pipelined READs of MaxReadWrite bytes, as OpenSSH's
// client does.
func BenchmarkServerRead(b *testing.B) {
	const size = 256 << 20
	root := b.TempDir()
	f, err := os.Create(filepath.Join(root, "big"))
	if err != nil {
		b.Fatal(err)
	}
	chunk := randBytes(b, 1<<20)
	for range size / len(chunk) {
		f.Write(chunk)
	}
	f.Close()

	sr, cw := io.Pipe()
	cr, sw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- Serve(context.Background(), struct {
			io.Reader
			io.Writer
		}{sr, sw}, &ServerConfig{Root: root})
		sw.Close()
	}()
	br := bufio.NewReaderSize(cr, 64<<10)
	buf := make([]byte, MaxPacket+1024)
	recv := func() (byte, []byte) {
		if _, err := io.ReadFull(br, buf[:4]); err != nil {
			b.Fatal(err)
		}
		n := binary.BigEndian.Uint32(buf)
		if n > uint32(len(buf)) {
			b.Fatalf("reply of %d bytes", n)
		}
		if _, err := io.ReadFull(br, buf[:n]); err != nil {
			b.Fatal(err)
		}
		return buf[0], buf[1:n]
	}
	cw.Write(srvPacket(typeInit, srvU32(3)))
	recv()
	cw.Write(srvPacket(typeOpen, srvU32(1), srvStr("big"), srvU32(FlagRead), srvNoAttrs()))
	typ, body := recv()
	if typ != typeHandle {
		b.Fatalf("open: %d", typ)
	}
	handle := string(body[8:])

	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		const inflight = 64
		nreq := (size + MaxReadWrite - 1) / MaxReadWrite
		tokens := make(chan struct{}, inflight)
		sendErr := make(chan error, 1)
		go func() {
			req := srvPacket(typeRead, srvU32(0), srvStr(handle), srvU64(0), srvU32(MaxReadWrite))
			for i := range nreq {
				tokens <- struct{}{}
				binary.BigEndian.PutUint32(req[5:], uint32(i))
				binary.BigEndian.PutUint64(req[len(req)-12:], uint64(i)*MaxReadWrite)
				if _, err := cw.Write(req); err != nil {
					sendErr <- err
					return
				}
			}
			sendErr <- nil
		}()
		var total int
		for i := range nreq {
			typ, body := recv()
			if typ != typeData || binary.BigEndian.Uint32(body) != uint32(i) {
				b.Fatalf("reply %d: type %d", i, typ)
			}
			total += int(binary.BigEndian.Uint32(body[4:]))
			<-tokens
		}
		if err := <-sendErr; err != nil {
			b.Fatal(err)
		}
		if total != size {
			b.Fatalf("read %d bytes", total)
		}
	}
	b.StopTimer()
	cw.Close()
	io.Copy(io.Discard, br)
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}

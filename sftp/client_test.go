package sftp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/sshtest"
	"github.com/rsftp/rsftp/internal/wire"
)

// procRW is the client's end of pipes to an sftp-server subprocess.
type procRW struct {
	w   *os.File // the server's stdin
	r   *os.File // the server's stdout
	cmd *exec.Cmd
	mu  sync.Mutex
	err error
	did bool
}

func (p *procRW) Read(b []byte) (int, error)  { return p.r.Read(b) }
func (p *procRW) Write(b []byte) (int, error) { return p.w.Write(b) }

func (p *procRW) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.did {
		return p.err
	}
	p.did = true
	p.w.Close()
	p.r.Close()
	p.err = p.cmd.Wait()
	return p.err
}

// startSFTPServer runs OpenSSH's sftp-server and returns pipes to it.
func startSFTPServer(t testing.TB) *procRW {
	t.Helper()
	bin := sshtest.Binary(t, "sftp-server")
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-e", "-l", "ERROR")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	inR.Close()
	outW.Close()
	return &procRW{w: inW, r: outR, cmd: cmd}
}

func newOpenSSHClient(t testing.TB, opts ...ClientOption) *Client {
	t.Helper()
	p := startSFTPServer(t)
	c, err := NewClient(context.Background(), p, opts...)
	if err != nil {
		p.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(seed), byte(seed >> 8)})
	r.Read(b)
	return b
}

func writeFile(t testing.TB, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestClientOpenSSHLimits(t *testing.T) {
	c := newOpenSSHClient(t)
	l := c.Limits()
	t.Logf("limits: %+v", l)
	if !c.HasExtension(extLimits) {
		t.Fatal("OpenSSH 9.2's sftp-server offers limits@openssh.com")
	}
	if l.ServerMaxPacket != 256*1024 || l.ServerMaxRead != MaxReadWrite || l.ServerMaxWrite != MaxReadWrite {
		t.Errorf("server limits %+v, want packet 262144, read and write 261120", l)
	}
	if l.ReadSize != MaxReadWrite || l.WriteSize != MaxReadWrite || l.MaxInflight != DefaultMaxInflight {
		t.Errorf("negotiated %+v, want read/write %d and %d in flight", l, MaxReadWrite, DefaultMaxInflight)
	}
	c2 := newOpenSSHClient(t, ReadSize(1<<30), WriteSize(1000), MaxInflight(3))
	if l := c2.Limits(); l.ReadSize != MaxReadWrite || l.WriteSize != 1000 || l.MaxInflight != 3 {
		t.Errorf("with options: %+v", l)
	}
}

func TestClientOpenSSHBasics(t *testing.T) {
	c := newOpenSSHClient(t)
	dir := t.TempDir()

	// Stat, Lstat, errors.
	if _, err := c.Stat(dir + "/nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat of a missing file: %v, want ErrNotExist", err)
	}
	writeFile(t, dir+"/f", []byte("hello, world"))
	a, err := c.Stat(dir + "/f")
	if err != nil {
		t.Fatal(err)
	}
	if a.Size != 12 || !a.FileMode().IsRegular() || a.FileMode().Perm() != 0o644 {
		t.Errorf("Stat: %+v mode %v", a, a.FileMode())
	}

	// Mkdir, MkdirAll.
	if err := c.Mkdir(dir+"/d", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := c.MkdirAll(dir+"/d/x/y/z", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := c.MkdirAll(dir+"/d/x", 0o755); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dir + "/d/x/y/z"); err != nil || !st.IsDir() {
		t.Fatalf("MkdirAll: %v", err)
	}
	if err := c.MkdirAll(dir+"/f/sub", 0o755); err == nil {
		t.Error("MkdirAll under a file succeeded")
	}

	// Symlink and ReadLink: the link must point at the target.
	if err := c.Symlink("f", dir+"/link"); err != nil {
		t.Fatal(err)
	}
	if got, err := os.Readlink(dir + "/link"); err != nil || got != "f" {
		t.Fatalf("local readlink after Symlink(f, link) = %q, %v", got, err)
	}
	if got, err := c.ReadLink(dir + "/link"); err != nil || got != "f" {
		t.Fatalf("ReadLink = %q, %v", got, err)
	}
	if a, err := c.Lstat(dir + "/link"); err != nil || a.FileMode()&fs.ModeSymlink == 0 {
		t.Fatalf("Lstat of link: %v %v", a, err)
	}
	if a, err := c.Stat(dir + "/link"); err != nil || a.Size != 12 {
		t.Fatalf("Stat through link: %v %v", a, err)
	}

	// ReadDir.
	ents, err := c.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name)
		if e.Longname == "" {
			t.Errorf("%s: empty longname", e.Name)
		}
	}
	sort.Strings(names)
	if got := strings.Join(names, ","); got != "d,f,link" {
		t.Errorf("ReadDir = %s", got)
	}
	// A directory big enough for several READDIR replies.
	for i := range 250 {
		writeFile(t, fmt.Sprintf("%s/d/many%03d", dir, i), nil)
	}
	if ents, err := c.ReadDir(dir + "/d"); err != nil || len(ents) != 251 {
		t.Errorf("ReadDir of 251 entries: %d, %v", len(ents), err)
	}

	// Rename, PosixRename, Hardlink.
	writeFile(t, dir+"/g", []byte("gee"))
	if err := c.Rename(dir+"/g", dir+"/f"); err == nil {
		t.Error("plain Rename over an existing file succeeded on OpenSSH")
	}
	if err := c.Rename(dir+"/g", dir+"/g2"); err != nil {
		t.Fatal(err)
	}
	if err := c.PosixRename(dir+"/g2", dir+"/f"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dir + "/f"); string(b) != "gee" {
		t.Errorf("after PosixRename f = %q", b)
	}
	if err := c.Hardlink(dir+"/f", dir+"/hard"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dir + "/hard"); string(b) != "gee" {
		t.Errorf("hard link = %q", b)
	}

	// Setstat family.
	if err := c.Chmod(dir+"/f", 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.Truncate(dir+"/f", 2); err != nil {
		t.Fatal(err)
	}
	mt := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	if err := c.Chtimes(dir+"/f", mt, mt); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir + "/f")
	if err != nil || st.Mode().Perm() != 0o600 || !st.ModTime().Equal(mt) || st.Size() != 2 {
		t.Errorf("after Chmod/Chtimes/Truncate: %v %v %v %v", st.Mode(), st.ModTime(), st.Size(), err)
	}

	// Remove and RemoveDirectory.
	if err := c.Remove(dir + "/hard"); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveDirectory(dir + "/d/x/y/z"); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveDirectory(dir + "/d"); err == nil {
		t.Error("RemoveDirectory of a non-empty directory succeeded")
	}
	if _, err := os.Stat(dir + "/hard"); !errors.Is(err, fs.ErrNotExist) {
		t.Error("Remove left the file")
	}

	// StatVFS, RealPath, HomeDir, ExpandPath.
	vfs, err := c.StatVFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	if vfs.Bsize == 0 || vfs.Namemax == 0 || vfs.TotalSpace() == 0 {
		t.Errorf("StatVFS: %+v", vfs)
	}
	if rp, err := c.RealPath(dir + "/d/../f"); err != nil || rp != mustEval(t, dir)+"/f" {
		t.Errorf("RealPath = %q, %v", rp, err)
	}
	// OpenSSH's server takes "~" to be its starting directory, which
	// sshd makes the home directory; here it is the test's.
	home, err := c.HomeDir()
	if cwd, _ := c.RealPath("."); err != nil || home != cwd {
		t.Errorf("HomeDir = %q, %v; want %q", home, err, cwd)
	}
	if c.HasExtension(extExpandPath) {
		if p, err := c.ExpandPath("~/x"); err != nil || p != path.Join(home, "x") {
			t.Errorf("ExpandPath(~/x) = %q, %v (home %q)", p, err, home)
		}
	}

	// Our extension is absent from OpenSSH.
	if _, _, err := c.HashRange(dir+"/f", 0, 1); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("HashRange on OpenSSH: %v", err)
	}
	var se *StatusError
	if _, _, err := c.HashRange(dir+"/f", 0, 1); !errors.As(err, &se) || se.Code != StatusOpUnsupported {
		t.Errorf("HashRange error %v is not OP_UNSUPPORTED", err)
	}
}

func mustEval(t testing.TB, p string) string {
	t.Helper()
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestClientOpenSSHFileIO(t *testing.T) {
	c := newOpenSSHClient(t)
	dir := t.TempDir()
	data := randomBytes(3*MaxReadWrite+12345, 1)

	f, err := c.OpenFile(dir+"/f", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f.Write(data); err != nil || n != len(data) {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if _, err := c.OpenFile(dir+"/f", os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640); err == nil {
		t.Error("O_EXCL open of an existing file succeeded")
	}
	if a, err := f.Stat(); err != nil || a.Size != uint64(len(data)) || a.FileMode().Perm() != 0o640 {
		t.Fatalf("Stat = %+v, %v", a, err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2*MaxReadWrite)
	if n, err := f.ReadAt(buf, 1000); err != nil || n != len(buf) || !bytes.Equal(buf, data[1000:1000+len(buf)]) {
		t.Fatalf("ReadAt = %d, %v", n, err)
	}
	// ReadAt across the end: short with io.EOF.
	if n, err := f.ReadAt(buf, int64(len(data)-10)); err != io.EOF || n != 10 || !bytes.Equal(buf[:10], data[len(data)-10:]) {
		t.Fatalf("ReadAt at the end = %d, %v", n, err)
	}
	if off, err := f.Seek(-100, io.SeekEnd); err != nil || off != int64(len(data)-100) {
		t.Fatalf("Seek = %d, %v", off, err)
	}
	got, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(got, data[len(data)-100:]) {
		t.Fatalf("ReadAll after Seek: %d bytes, %v", len(got), err)
	}
	if n, err := f.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("Read at EOF = %d, %v", n, err)
	}
	if _, err := f.WriteAt([]byte("XYZ"), 5); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(10); err != nil {
		t.Fatal(err)
	}
	if err := f.Chmod(0o600); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); !errors.Is(err, os.ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	if _, err := f.Read(buf); !errors.Is(err, os.ErrClosed) {
		t.Errorf("Read after Close: %v", err)
	}
	b, _ := os.ReadFile(dir + "/f")
	want := append(append(append([]byte{}, data[:5]...), "XYZ"...), data[8:10]...)
	if !bytes.Equal(b, want) {
		t.Errorf("file = %x, want %x", b, want)
	}
	if st, _ := os.Stat(dir + "/f"); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
	// Append mode.
	af, err := c.OpenFile(dir+"/f", os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := af.Write([]byte("++")); err != nil {
		t.Fatal(err)
	}
	af.Close()
	if b, _ := os.ReadFile(dir + "/f"); string(b[10:]) != "++" {
		t.Errorf("after append: %q", b)
	}
}

// TestClientOpenSSHPipelined uploads and downloads 64 MiB with ReadFrom and
// WriteTo.
func TestClientOpenSSHPipelined(t *testing.T) {
	size := 64 << 20
	if testing.Short() {
		size = 8 << 20
	}
	c := newOpenSSHClient(t)
	dir := t.TempDir()
	data := randomBytes(size+777, 2)
	want := sha256.Sum256(data)

	f, err := c.Create(dir + "/up")
	if err != nil {
		t.Fatal(err)
	}
	n, err := f.ReadFrom(bytes.NewReader(data))
	if err != nil || n != int64(len(data)) {
		t.Fatalf("ReadFrom = %d, %v", n, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(dir + "/up")
	if err != nil || sha256.Sum256(b) != want {
		t.Fatalf("uploaded file differs (%d bytes, %v)", len(b), err)
	}

	f, err = c.Open(dir + "/up")
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	n, err = f.WriteTo(h)
	if err != nil || n != int64(len(data)) {
		t.Fatalf("WriteTo = %d, %v", n, err)
	}
	if !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("downloaded data differs")
	}
	// From an offset, via io.Copy.
	if _, err := f.Seek(1<<20+3, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if n, err := io.Copy(&out, f); err != nil || n != int64(len(data)-(1<<20+3)) || !bytes.Equal(out.Bytes(), data[1<<20+3:]) {
		t.Fatalf("io.Copy from an offset = %d, %v", n, err)
	}
	f.Close()

	// Small and empty files.
	for _, sz := range []int{0, 1, 100} {
		writeFile(t, dir+"/small", data[:sz])
		f, err := c.Open(dir + "/small")
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		if n, err := f.WriteTo(&out); err != nil || n != int64(sz) || !bytes.Equal(out.Bytes(), data[:sz]) {
			t.Errorf("WriteTo of %d bytes = %d, %v", sz, n, err)
		}
		f.Close()
	}
}

func TestClientCloseUnblocks(t *testing.T) {
	cEnd, sEnd := net.Pipe()
	fs := newFakeServer(t, sEnd)
	fs.hang = true
	c, err := NewClient(context.Background(), cEnd)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, err := c.Stat("/x")
		done <- err
	}()
	<-fs.hung
	c.Close()
	if err := <-done; !errors.Is(err, ErrClientClosed) {
		t.Fatalf("Stat after Close: %v", err)
	}
	if _, err := c.Stat("/x"); !errors.Is(err, ErrClientClosed) {
		t.Fatalf("Stat on a closed client: %v", err)
	}
}

// TestClientShortReads reads through a server that returns fewer bytes
// than asked.
func TestClientShortReads(t *testing.T) {
	data := randomBytes(5*MaxReadWrite+99, 3)
	cEnd, sEnd := net.Pipe()
	srv := newFakeServer(t, sEnd)
	srv.files["/f"] = &fakeFile{data: data}
	srv.maxRead = 7000
	f := openOverFake(t, cEnd, "/f", ReadSize(32768), MaxInflight(8))
	var out bytes.Buffer
	n, err := f.WriteTo(&out)
	if err != nil || n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("WriteTo = %d, %v (equal %v)", n, err, bytes.Equal(out.Bytes(), data))
	}
	buf := make([]byte, 100000)
	if n, err := f.ReadAt(buf, 12345); err != nil || n != len(buf) || !bytes.Equal(buf, data[12345:12345+len(buf)]) {
		t.Fatalf("ReadAt = %d, %v", n, err)
	}
	f.Close()
}

// TestDownloadEndsAtSize: a download asks for no READ past the end of
// a file whose size it read: a short read that reaches it is the end
// (issue 17: a round trip less per file).
func TestDownloadEndsAtSize(t *testing.T) {
	for _, sz := range []int{3, 32768, 2*32768 + 5} {
		data := randomBytes(sz, 4)
		cEnd, sEnd := net.Pipe()
		srv := newFakeServer(t, sEnd)
		srv.files["/f"] = &fakeFile{data: data}
		c, err := NewClient(context.Background(), cEnd, ReadSize(32768))
		if err != nil {
			t.Fatal(err)
		}
		local := filepath.Join(t.TempDir(), "f")
		if err := c.Download(context.Background(), "/f", local, TransferOptions{}); err != nil {
			t.Fatal(err)
		}
		if got, err := os.ReadFile(local); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: downloaded %d bytes, %v", sz, len(got), err)
		}
		srv.mu.Lock()
		reads := srv.readReqs
		srv.mu.Unlock()
		// A file of whole READs ends with one answered EOF; a short
		// last READ is the end by itself.
		want := (sz + 32767) / 32768
		if sz%32768 == 0 {
			want++
		}
		if reads != want {
			t.Errorf("%d bytes: %d READs, want %d", sz, reads, want)
		}
		c.Close()
	}
}

// TestDownloadDoesNotWaitForClose: a download's CLOSE goes out, and the
// download returns without its reply (issue 17).
func TestDownloadDoesNotWaitForClose(t *testing.T) {
	cEnd, sEnd := net.Pipe()
	srv := newFakeServer(t, sEnd)
	srv.files["/f"] = &fakeFile{data: []byte("hi\n")}
	srv.holdCloses = true
	c, err := NewClient(context.Background(), cEnd)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	local := filepath.Join(t.TempDir(), "f")
	if err := c.Download(context.Background(), "/f", local, TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	// Requests are answered in order: once a later one is, the CLOSE
	// was received.
	if _, err := c.Stat("/f"); err != nil {
		t.Fatal(err)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.closes != 1 {
		t.Errorf("the server received %d CLOSEs, want 1", srv.closes)
	}
}

// uploadToFake connects a client to a fake server whose WRITE at failAt
// fails, and creates /up there for an upload in WRITEs of ws bytes.
func uploadToFake(t *testing.T, cEnd, sEnd io.ReadWriteCloser, failAt int64, ws int) (*fakeServer, *File) {
	t.Helper()
	srv := newFakeServer(t, sEnd)
	srv.failWriteAt = failAt
	c, err := NewClient(context.Background(), cEnd, WriteSize(ws), MaxInflight(16))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	f, err := c.Create("/up")
	if err != nil {
		t.Fatal(err)
	}
	return srv, f
}

// TestClientUploadErrorNoHoles fails one WRITE in the middle of ReadFrom:
// the count must be the acknowledged prefix and the remote file must end
// there.
func TestClientUploadErrorNoHoles(t *testing.T) {
	const ws = 32768
	data := randomBytes(40*ws+5, 4)
	for _, failAt := range []int64{0, 3 * ws, 17 * ws, 39 * ws, 40 * ws} {
		t.Run(fmt.Sprint(failAt), func(t *testing.T) {
			cEnd, sEnd := net.Pipe()
			srv, f := uploadToFake(t, cEnd, sEnd, failAt, ws)
			n, err := f.ReadFrom(bytes.NewReader(data))
			if err == nil {
				t.Fatal("ReadFrom succeeded despite a failed write")
			}
			if n != failAt {
				t.Fatalf("ReadFrom = %d, want %d (%v)", n, failAt, err)
			}
			if !strings.Contains(err.Error(), "disk on fire") {
				t.Errorf("error %v does not carry the server's", err)
			}
			f.Close()
			got := srv.file("/up")
			if !bytes.Equal(got, data[:failAt]) {
				t.Fatalf("remote file is %d bytes (prefix equal: %v), want the %d acknowledged", len(got), bytes.HasPrefix(data, got), failAt)
			}
		})
	}
}

// TestClientMaliciousReaddir: a recursive download must refuse names
// that are not single path components and write nothing outside.
func TestClientMaliciousReaddir(t *testing.T) {
	for _, bad := range []string{"../evil", "a/b", "", "x\x00y", "/abs", "../../../../../../tmp/evil"} {
		t.Run(fmt.Sprintf("%q", bad), func(t *testing.T) {
			cEnd, sEnd := net.Pipe()
			srv := newFakeServer(t, sEnd)
			srv.files["/d"] = &fakeFile{dir: true, names: []string{".", "ok", bad}}
			srv.files["/d/ok"] = &fakeFile{data: []byte("fine")}
			srv.files["/d/"+bad] = &fakeFile{data: []byte("evil")}
			c, err := NewClient(context.Background(), cEnd)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			base := t.TempDir()
			err = c.Download(context.Background(), "/d", base+"/target/out", TransferOptions{Recursive: true})
			if err == nil {
				// The missing parent makes any download fail; retry
				// into an existing parent.
				t.Fatal("download into a missing parent succeeded")
			}
			if err := os.Mkdir(base+"/target", 0o755); err != nil {
				t.Fatal(err)
			}
			err = c.Download(context.Background(), "/d", base+"/target/out", TransferOptions{Recursive: true})
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%q", bad)) {
				t.Fatalf("Download = %v, want a refusal naming %q", err, bad)
			}
			var found []string
			filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
				if p != base {
					found = append(found, strings.TrimPrefix(p, base))
				}
				return nil
			})
			if strings.Join(found, ",") != "/target" {
				t.Errorf("files written: %v", found)
			}
		})
	}
	// "." and ".." in a listing are ignored, not followed.
	cEnd, sEnd := net.Pipe()
	srv := newFakeServer(t, sEnd)
	srv.files["/d"] = &fakeFile{dir: true, names: []string{".", "ok", ".."}}
	srv.files["/d/ok"] = &fakeFile{data: []byte("fine")}
	c, err := NewClient(context.Background(), cEnd)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	base := t.TempDir()
	if err := c.Download(context.Background(), "/d", base+"/out", TransferOptions{Recursive: true}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(base + "/out/ok"); err != nil || string(b) != "fine" {
		t.Fatalf("out/ok = %q, %v", b, err)
	}
	if ents, _ := os.ReadDir(base); len(ents) != 1 {
		t.Errorf("%d entries in the base directory", len(ents))
	}
}

func TestValidName(t *testing.T) {
	for name, want := range map[string]bool{
		"a": true, "a.b": true, ".hidden": true, "...": true,
		"": false, ".": false, "..": false, "a/b": false, "/a": false, "a/": false, "a\x00": false,
	} {
		if got := ValidName(name); got != want {
			t.Errorf("ValidName(%q) = %v", name, got)
		}
	}
}

// makeTree builds a small tree under root and returns its files' contents
// by relative path.
func makeTree(t *testing.T, root string) map[string][]byte {
	files := map[string][]byte{
		"a.txt":         []byte("alpha"),
		"empty":         nil,
		"sub/b.bin":     randomBytes(700000, 5),
		"sub/deep/c":    []byte("charlie"),
		"sub/deep/more": randomBytes(3000, 6),
		"other/d":       []byte("delta"),
	}
	mt := time.Date(2010, 1, 2, 3, 4, 5, 0, time.UTC)
	for rel, b := range files {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, p, b)
		os.Chmod(p, 0o640)
		os.Chtimes(p, mt, mt)
	}
	os.Mkdir(filepath.Join(root, "emptydir"), 0o700)
	os.Symlink("a.txt", filepath.Join(root, "link"))
	os.Chmod(filepath.Join(root, "sub"), 0o750)
	for _, d := range []string{"sub/deep", "sub", "other", "emptydir", "."} {
		os.Chtimes(filepath.Join(root, d), mt, mt)
	}
	return files
}

func checkTree(t *testing.T, root string, files map[string][]byte, preserved bool) {
	t.Helper()
	mt := time.Date(2010, 1, 2, 3, 4, 5, 0, time.UTC)
	for rel, want := range files {
		p := filepath.Join(root, rel)
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: %d bytes, %v", rel, len(got), err)
			continue
		}
		st, _ := os.Stat(p)
		if preserved && (st.Mode().Perm() != 0o640 || !st.ModTime().Equal(mt)) {
			t.Errorf("%s: mode %v mtime %v not preserved", rel, st.Mode(), st.ModTime())
		}
	}
	if st, err := os.Stat(filepath.Join(root, "emptydir")); err != nil || !st.IsDir() {
		t.Errorf("emptydir: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(root, "link")); err == nil {
		t.Error("symbolic link was transferred")
	}
	if preserved {
		for _, d := range []string{"sub", "sub/deep", "."} {
			st, _ := os.Stat(filepath.Join(root, d))
			if !st.ModTime().Equal(mt) {
				t.Errorf("dir %s: mtime %v", d, st.ModTime())
			}
		}
		if st, _ := os.Stat(filepath.Join(root, "sub")); st.Mode().Perm() != 0o750 {
			t.Errorf("sub: mode %v", st.Mode())
		}
	}
}

func TestClientOpenSSHRecursive(t *testing.T) {
	c := newOpenSSHClient(t)
	for _, preserve := range []bool{false, true} {
		t.Run(fmt.Sprint("preserve=", preserve), func(t *testing.T) {
			src, mid, dst := t.TempDir(), t.TempDir(), t.TempDir()
			files := makeTree(t, src)
			var warnings []string
			opt := TransferOptions{Recursive: true, PreserveTimesAndMode: preserve, Progress: func(ev ProgressEvent) {
				if ev.Warning != "" {
					warnings = append(warnings, ev.Warning)
				}
			}}
			// Upload local src to "remote" mid/tree, download to dst/tree.
			if err := c.Upload(context.Background(), src, mid+"/tree", opt); err != nil {
				t.Fatal(err)
			}
			checkTree(t, mid+"/tree", files, preserve)
			if err := c.Download(context.Background(), mid+"/tree", dst+"/tree", opt); err != nil {
				t.Fatal(err)
			}
			checkTree(t, dst+"/tree", files, preserve)
			if len(warnings) != 1 || !strings.Contains(warnings[0], "link") {
				t.Errorf("warnings: %q", warnings)
			}
			// Into an existing directory: goes under the base name.
			if err := c.Download(context.Background(), mid+"/tree/sub/deep/c", dst, opt); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(dst + "/c"); string(b) != "charlie" {
				t.Errorf("download into a directory: %q", b)
			}
			if err := c.Download(context.Background(), mid+"/tree", dst+"/x", TransferOptions{}); err == nil {
				t.Error("non-recursive download of a directory succeeded")
			}
		})
	}
}

func TestClientOpenSSHResume(t *testing.T) {
	c := newOpenSSHClient(t)
	dir := t.TempDir()
	data := randomBytes(3<<20+5, 7)
	writeFile(t, dir+"/remote", data)

	var warned bool
	opt := TransferOptions{Resume: true, Progress: func(ev ProgressEvent) {
		if strings.Contains(ev.Warning, "cannot hash") {
			warned = true
		}
	}}
	// The local prefix matches: it is appended to.
	writeFile(t, dir+"/local", data[:2<<20+17])
	if err := c.Download(context.Background(), dir+"/remote", dir+"/local", opt); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dir + "/local"); !bytes.Equal(b, data) {
		t.Fatalf("resumed download differs (%d bytes)", len(b))
	}
	// Without hash-range a prefix this short is compared whole: no
	// warning about sampling.
	if warned {
		t.Error("warned about sampling although the whole prefix was compared")
	}
	// The local prefix differs in the checked tail: an error and the file
	// stays as it was.
	bad := bytes.Clone(data[:2<<20])
	bad[len(bad)-10] ^= 1
	writeFile(t, dir+"/local2", bad)
	err := c.Download(context.Background(), dir+"/remote", dir+"/local2", opt)
	if err == nil || !strings.Contains(err.Error(), "differs from the remote in its first 2097152 bytes") {
		t.Fatalf("Download = %v", err)
	}
	if b, _ := os.ReadFile(dir + "/local2"); !bytes.Equal(b, bad) {
		t.Fatal("the mismatching local file was changed")
	}
	// Without Resume the file is replaced.
	if err := c.Download(context.Background(), dir+"/remote", dir+"/local2", TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dir + "/local2"); !bytes.Equal(b, data) {
		t.Fatal("download differs")
	}

	// Upload resume, both ways.
	writeFile(t, dir+"/up", data[:1<<20+3])
	if err := c.Upload(context.Background(), dir+"/remote", dir+"/up", opt); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dir + "/up"); !bytes.Equal(b, data) {
		t.Fatalf("resumed upload differs (%d bytes)", len(b))
	}
	writeFile(t, dir+"/up2", bad)
	if err := c.Upload(context.Background(), dir+"/remote", dir+"/up2", opt); err == nil || !strings.Contains(err.Error(), "differs") {
		t.Fatalf("Upload over a differing prefix = %v", err)
	}
	if b, _ := os.ReadFile(dir + "/up2"); !bytes.Equal(b, bad) {
		t.Fatal("the mismatching remote file was changed")
	}
}

// TestClientHashRangeResume checks the verified path against a fake
// server offering hash-range@rsftp.
func TestClientHashRangeResume(t *testing.T) {
	data := randomBytes(1<<20+9, 8)
	cEnd, sEnd := net.Pipe()
	srv := newFakeServer(t, sEnd)
	srv.hashRange = true
	srv.files["/r"] = &fakeFile{data: data}
	c, err := NewClient(context.Background(), cEnd)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dir := t.TempDir()
	var warned bool
	opt := TransferOptions{Resume: true, Progress: func(ev ProgressEvent) { warned = warned || ev.Warning != "" }}
	writeFile(t, dir+"/l", data[:1000])
	if err := c.Download(context.Background(), "/r", dir+"/l", opt); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dir + "/l"); !bytes.Equal(b, data) || warned {
		t.Fatalf("verified resume: equal %v, warned %v", bytes.Equal(b, data), warned)
	}
	// A difference far from the end is caught by the hash.
	bad := bytes.Clone(data[:900000])
	bad[3] ^= 1
	writeFile(t, dir+"/l2", bad)
	if err := c.Download(context.Background(), "/r", dir+"/l2", opt); err == nil || !strings.Contains(err.Error(), "first 900000 bytes") {
		t.Fatalf("Download = %v", err)
	}
	if b, _ := os.ReadFile(dir + "/l2"); !bytes.Equal(b, bad) {
		t.Fatal("local file changed")
	}
}

// BenchmarkClientDownload downloads 256 MiB from OpenSSH's sftp-server
// with WriteTo into io.Discard.
func BenchmarkClientDownload(b *testing.B) {
	const size = 256 << 20
	dir := b.TempDir()
	f, err := os.Create(dir + "/big")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.Write(randomBytes(size, 9)); err != nil {
		b.Fatal(err)
	}
	f.Close()
	c := newOpenSSHClient(b)
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		rf, err := c.Open(dir + "/big")
		if err != nil {
			b.Fatal(err)
		}
		n, err := rf.WriteTo(io.Discard)
		if err != nil || n != size {
			b.Fatalf("WriteTo = %d, %v", n, err)
		}
		rf.Close()
	}
}

// BenchmarkClientUpload uploads 256 MiB to OpenSSH's sftp-server with
// ReadFrom.
func BenchmarkClientUpload(b *testing.B) {
	const size = 256 << 20
	dir := b.TempDir()
	data := randomBytes(size, 10)
	c := newOpenSSHClient(b)
	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		f, err := c.Create(dir + "/big")
		if err != nil {
			b.Fatal(err)
		}
		if n, err := f.ReadFrom(bytes.NewReader(data)); err != nil || n != size {
			b.Fatalf("ReadFrom = %d, %v", n, err)
		}
		f.Close()
	}
}

// fakeServer is a minimal in-memory SFTP server for misbehaviour the real
// one cannot be made to show.
type fakeServer struct {
	t             testing.TB
	rw            io.ReadWriteCloser
	mu            sync.Mutex
	files         map[string]*fakeFile
	handles       map[string]string
	nextHandle    int
	dirDone       map[string]bool
	maxRead       int   // if > 0, READ returns at most this many bytes
	failWriteAt   int64 // the WRITE at this offset fails (-1: none)
	failRead      int   // if > 0, the READ with this number (from 1) fails
	reads         int
	readReqs      int // every READ, those answered EOF included
	hashRange     bool
	limits        []uint64 // if set, offer limits@openssh.com with these
	maxOpen       int      // most handles open at once
	hang          bool     // never answer requests after VERSION (and limits@openssh.com, sent with INIT)
	holdWrites    int      // answer no WRITE until this many have come
	holdOpens     int      // answer no OPEN (of a file) until this many have come
	holdCloses    bool     // never answer CLOSE
	writesAtClose bool     // answer WRITEs only when a CLOSE comes
	closes        int      // CLOSEs received
	hung          chan struct{}
}

type fakeFile struct {
	dir   bool
	data  []byte
	names []string // a directory's listing, as sent
}

func newFakeServer(t testing.TB, rw io.ReadWriteCloser) *fakeServer {
	s := &fakeServer{t: t, rw: rw, files: map[string]*fakeFile{}, handles: map[string]string{},
		dirDone: map[string]bool{}, failWriteAt: -1, hung: make(chan struct{})}
	go s.serve()
	t.Cleanup(func() { rw.Close() })
	return s
}

func (s *fakeServer) file(p string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f := s.files[p]; f != nil {
		return bytes.Clone(f.data)
	}
	return nil
}

func (s *fakeServer) serve() {
	var buf, held []byte
	p, err := readPacket(s.rw, buf)
	if err != nil || p[0] != typeInit {
		return
	}
	out := startPacket(nil, typeVersion)
	out = wire.AppendUint32(out, 3)
	if s.hashRange {
		out = wire.AppendString(out, extHashRange)
		out = wire.AppendString(out, "1")
	}
	if s.limits != nil {
		out = wire.AppendString(out, extLimits)
		out = wire.AppendString(out, "1")
	}
	if _, err := s.rw.Write(finishPacket(out)); err != nil {
		return
	}
	for {
		p, err := readPacket(s.rw, buf)
		if err != nil {
			return
		}
		if s.hang && !(p[0] == typeExtended && binary.BigEndian.Uint32(p[1:5]) == limitsID) {
			close(s.hung)
			io.Copy(io.Discard, s.rw)
			return
		}
		buf = p
		r := wire.NewReader(p[1:])
		id := r.Uint32()
		s.mu.Lock()
		reply := finishPacket(s.handle(p[0], id, r))
		s.mu.Unlock()
		if p[0] == typeClose {
			s.mu.Lock()
			s.closes++
			hold := s.holdCloses
			s.mu.Unlock()
			if hold {
				continue
			}
		}
		s.mu.Lock()
		atClose := s.writesAtClose
		s.mu.Unlock()
		if atClose && p[0] == typeWrite {
			held = append(held, reply...)
			continue
		}
		if atClose && p[0] == typeClose {
			reply, held = append(held, reply...), nil
		}
		s.mu.Lock()
		holdOpen, opensToCome := p[0] == typeOpen && s.holdOpens > 0, 0
		if holdOpen {
			s.holdOpens--
			opensToCome = s.holdOpens
		}
		s.mu.Unlock()
		if holdOpen {
			held = append(held, reply...)
			if opensToCome > 0 {
				continue
			}
			reply, held = held, nil
		}
		if p[0] == typeWrite && s.holdWrites > 0 {
			held = append(held, reply...)
			if s.holdWrites--; s.holdWrites > 0 {
				continue
			}
			reply = held
		}
		if _, err := s.rw.Write(reply); err != nil {
			return
		}
	}
}

func fakeStatus(id, code uint32, msg string) []byte {
	b := startPacket(nil, typeStatus)
	b = wire.AppendUint32(b, id)
	b = wire.AppendUint32(b, code)
	b = wire.AppendString(b, msg)
	return wire.AppendString(b, "")
}

func (f *fakeFile) attrs() Attrs {
	if f.dir {
		return Attrs{Flags: AttrSize | AttrPermissions | AttrACModTime, Mode: modeDir | 0o755}
	}
	return Attrs{Flags: AttrSize | AttrPermissions | AttrACModTime, Mode: modeRegular | 0o644, Size: uint64(len(f.data))}
}

func (s *fakeServer) handle(typ byte, id uint32, r *wire.Reader) []byte {
	reply := func(t byte) []byte { return wire.AppendUint32(startPacket(nil, t), id) }
	byHandle := func() (string, *fakeFile) {
		h := r.String()
		p := s.handles[h]
		return p, s.files[p]
	}
	switch typ {
	case typeStat, typeLstat, typeFstat:
		var f *fakeFile
		if typ == typeFstat {
			_, f = byHandle()
		} else {
			f = s.files[r.String()]
		}
		if f == nil {
			return fakeStatus(id, StatusNoSuchFile, "no such file")
		}
		a := f.attrs()
		return appendAttrs(reply(typeAttrs), &a)
	case typeOpen, typeOpendir:
		p := r.String()
		if typ == typeOpen {
			flags := r.Uint32()
			if s.files[p] == nil && flags&FlagCreate != 0 {
				s.files[p] = &fakeFile{}
			}
			if flags&FlagTrunc != 0 && s.files[p] != nil {
				s.files[p].data = nil
			}
		}
		if s.files[p] == nil {
			return fakeStatus(id, StatusNoSuchFile, "no such file")
		}
		s.nextHandle++
		h := fmt.Sprint(s.nextHandle)
		s.handles[h] = p
		s.maxOpen = max(s.maxOpen, len(s.handles))
		return wire.AppendString(reply(typeHandle), h)
	case typeClose:
		delete(s.handles, r.String())
		return fakeStatus(id, StatusOK, "")
	case typeMkdir:
		p := r.String()
		if s.files[p] != nil {
			return fakeStatus(id, StatusFailure, "exists")
		}
		s.files[p] = &fakeFile{dir: true}
		return fakeStatus(id, StatusOK, "")
	case typeReaddir:
		h := r.String()
		p, f := s.handles[h], s.files[s.handles[h]]
		if f == nil || !f.dir {
			return fakeStatus(id, StatusFailure, "not a directory")
		}
		if s.dirDone[h] {
			return fakeStatus(id, StatusEOF, "")
		}
		s.dirDone[h] = true
		b := wire.AppendUint32(reply(typeName), uint32(len(f.names)))
		for _, n := range f.names {
			a := Attrs{Flags: AttrPermissions, Mode: modeRegular | 0o644}
			if c := s.files[path.Join(p, n)]; c != nil && n != "." {
				a = c.attrs()
			} else if n == "." {
				a = f.attrs()
			}
			b = wire.AppendString(b, n)
			b = wire.AppendString(b, "-rw-r--r-- 1 u g 0 Jan 1 00:00 "+n)
			b = appendAttrs(b, &a)
		}
		return b
	case typeRead:
		s.readReqs++
		_, f := byHandle()
		off, n := r.Uint64(), int(r.Uint32())
		if f == nil {
			return fakeStatus(id, StatusFailure, "bad handle")
		}
		if off >= uint64(len(f.data)) {
			return fakeStatus(id, StatusEOF, "")
		}
		if s.reads++; s.reads == s.failRead {
			return fakeStatus(id, StatusFailure, "disk on fire")
		}
		if s.maxRead > 0 {
			n = min(n, 1+rand.IntN(s.maxRead))
		}
		end := min(int(off)+n, len(f.data))
		return wire.AppendBytes(reply(typeData), f.data[off:end])
	case typeWrite:
		_, f := byHandle()
		off, data := int64(r.Uint64()), r.Bytes()
		if f == nil {
			return fakeStatus(id, StatusFailure, "bad handle")
		}
		if off == s.failWriteAt {
			return fakeStatus(id, StatusFailure, "disk on fire")
		}
		if need := int(off) + len(data); need > len(f.data) {
			f.data = append(f.data, make([]byte, need-len(f.data))...)
		}
		copy(f.data[off:], data)
		return fakeStatus(id, StatusOK, "")
	case typeSetstat, typeFsetstat:
		var f *fakeFile
		if typ == typeSetstat {
			f = s.files[r.String()]
		} else {
			_, f = byHandle()
		}
		a := parseAttrs(r)
		if f == nil {
			return fakeStatus(id, StatusFailure, "bad handle")
		}
		if a.Flags&AttrSize != 0 && a.Size <= uint64(len(f.data)) {
			f.data = f.data[:a.Size]
		}
		return fakeStatus(id, StatusOK, "")
	case typeExtended:
		name := r.String()
		if name == extLimits && s.limits != nil {
			b := reply(typeExtendedReply)
			for _, v := range s.limits {
				b = wire.AppendUint64(b, v)
			}
			return b
		}
		if name == extHashRange && s.hashRange {
			f := s.files[r.String()]
			off, n, alg := r.Uint64(), r.Uint64(), r.String()
			if f == nil || alg != "sha256" {
				return fakeStatus(id, StatusNoSuchFile, "")
			}
			// Hash at most 100000 bytes per request, as a server
			// bounding its work may.
			end := min(off+min(n, 100000), uint64(len(f.data)))
			sum := sha256.Sum256(f.data[min(off, end):end])
			b := wire.AppendString(reply(typeExtendedReply), "sha256")
			b = wire.AppendUint64(b, end-min(off, end))
			return wire.AppendBytes(b, sum[:])
		}
	}
	return fakeStatus(id, StatusOpUnsupported, "unsupported")
}

// newOurServerClient connects a client to this package's server over an
// in-memory pipe, serving root.
func newOurServerClient(t testing.TB, root string) *Client {
	t.Helper()
	cEnd, sEnd := net.Pipe()
	return ourServerClientOver(t, cEnd, sEnd, root)
}

// ourServerClientOver serves root on sEnd and connects a client on cEnd;
// the test's cleanup ends both.
func ourServerClientOver(t testing.TB, cEnd, sEnd io.ReadWriteCloser, root string) *Client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, sEnd, &ServerConfig{Root: root}) }()
	c, err := NewClient(context.Background(), cEnd)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		cancel()
		<-done
	})
	return c
}

func TestClientOurServer(t *testing.T) {
	root := t.TempDir()
	c := newOurServerClient(t, root)
	if !c.HasExtension(extHashRange) {
		t.Fatal("our server does not offer hash-range@rsftp")
	}
	t.Logf("limits: %+v", c.Limits())

	if err := c.MkdirAll("/a/b", 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, root+"/a/f", []byte("data"))
	if err := c.Symlink("f", "/a/link"); err != nil {
		t.Fatal(err)
	}
	if got, err := os.Readlink(root + "/a/link"); err != nil || got != "f" {
		t.Fatalf("Symlink made %q, %v", got, err)
	}
	if got, err := c.ReadLink("/a/link"); err != nil || got != "f" {
		t.Fatalf("ReadLink = %q, %v", got, err)
	}
	if err := c.Hardlink("/a/f", "/a/h"); err != nil {
		t.Fatal(err)
	}
	if err := c.PosixRename("/a/h", "/a/b/h"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(root + "/a/b/h"); string(b) != "data" {
		t.Errorf("after Hardlink and PosixRename: %q", b)
	}
	if home, err := c.HomeDir(); err != nil || home != "/" {
		t.Errorf("HomeDir = %q, %v", home, err)
	}
	if _, err := c.StatVFS("/"); err != nil {
		t.Error(err)
	}
	d, hashed, err := c.HashRange("/a/f", 1, 100)
	if want := sha256.Sum256([]byte("ata")); err != nil || hashed != 3 || !bytes.Equal(d, want[:]) {
		t.Errorf("HashRange = %x, %d, %v", d, hashed, err)
	}

	// Pipelined both ways.
	data := randomBytes(8<<20+3, 11)
	f, err := c.Create("/big")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f.ReadFrom(bytes.NewReader(data)); err != nil || n != int64(len(data)) {
		t.Fatalf("ReadFrom = %d, %v", n, err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	f, err = c.Open("/big")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if n, err := f.WriteTo(&out); err != nil || n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("WriteTo = %d, %v", n, err)
	}
	f.Close()

	// Recursive with preserve, through our server.
	src, dst := t.TempDir(), t.TempDir()
	files := makeTree(t, src)
	opt := TransferOptions{Recursive: true, PreserveTimesAndMode: true}
	if err := c.Upload(context.Background(), src, "/tree", opt); err != nil {
		t.Fatal(err)
	}
	checkTree(t, root+"/tree", files, true)
	if err := c.Download(context.Background(), "/tree", dst+"/tree", opt); err != nil {
		t.Fatal(err)
	}
	checkTree(t, dst+"/tree", files, true)

	// Verified resume: a difference at the start is caught, which the
	// tail comparison would miss.
	var warned bool
	ropt := TransferOptions{Resume: true, Progress: func(ev ProgressEvent) { warned = warned || ev.Warning != "" }}
	local := t.TempDir() + "/l"
	writeFile(t, local, data[:5<<20])
	if err := c.Download(context.Background(), "/big", local, ropt); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(local); !bytes.Equal(b, data) {
		t.Fatal("resumed download differs")
	}
	bad := bytes.Clone(data[:5<<20])
	bad[0] ^= 1
	writeFile(t, local, bad)
	if err := c.Download(context.Background(), "/big", local, ropt); err == nil || !strings.Contains(err.Error(), "differs") {
		t.Fatalf("Download over a bad prefix = %v", err)
	}
	if err := c.Upload(context.Background(), local, "/big", ropt); err == nil || !strings.Contains(err.Error(), "larger") {
		// local (5 MiB) is shorter than remote (8 MiB): refused.
		t.Fatalf("Upload resume onto a larger remote = %v", err)
	}
	writeFile(t, root+"/part", data[:3<<20])
	writeFile(t, local, data)
	if err := c.Upload(context.Background(), local, "/part", ropt); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(root + "/part"); !bytes.Equal(b, data) {
		t.Fatal("resumed upload differs")
	}
	if warned {
		t.Error("warned although the server can hash")
	}
}

// TestClientSteadyStateAllocs checks that a warm download allocates a
// bounded amount per transfer, not per request.
func TestClientSteadyStateAllocs(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	c := newOpenSSHClient(t)
	dir := t.TempDir()
	const size = 128 * MaxReadWrite // 128 READs
	writeFile(t, dir+"/f", randomBytes(size, 12))
	download := func() {
		f, err := c.Open(dir + "/f")
		if err != nil {
			t.Fatal(err)
		}
		if n, err := f.WriteTo(io.Discard); err != nil || n != size {
			t.Fatalf("WriteTo = %d, %v", n, err)
		}
		f.Close()
	}
	download() // warm the buffers
	a := testing.AllocsPerRun(5, download)
	t.Logf("%.0f allocations per 128-request download", a)
	if a > 40 {
		t.Errorf("%.0f allocations per 128-request download", a)
	}
	data := randomBytes(size, 13)
	upload := func() {
		f, err := c.Create(dir + "/g")
		if err != nil {
			t.Fatal(err)
		}
		if n, err := f.ReadFrom(bytes.NewReader(data)); err != nil || n != size {
			t.Fatalf("ReadFrom = %d, %v", n, err)
		}
		f.Close()
	}
	upload()
	a = testing.AllocsPerRun(5, upload)
	t.Logf("%.0f allocations per 128-request upload", a)
	if a > 40 {
		t.Errorf("%.0f allocations per 128-request upload", a)
	}
}

// TestClientHandleLimit: with max-open-handles 2 a third Open waits for a
// Close instead of exceeding the server's limit.
func TestClientHandleLimit(t *testing.T) {
	cEnd, sEnd := net.Pipe()
	srv := newFakeServer(t, sEnd)
	srv.limits = []uint64{64 << 10, 20000, 10000, 2}
	for _, n := range []string{"/a", "/b", "/c"} {
		srv.files[n] = &fakeFile{data: []byte(n)}
	}
	c, err := NewClient(context.Background(), cEnd)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if l := c.Limits(); l.ReadSize != 20000 || l.WriteSize != 10000 || l.MaxPacket != 64<<10 {
		t.Errorf("limits %+v", l)
	}
	fa, err := c.Open("/a")
	if err != nil {
		t.Fatal(err)
	}
	fb, err := c.Open("/b")
	if err != nil {
		t.Fatal(err)
	}
	third := make(chan error)
	go func() {
		f, err := c.Open("/c")
		if err == nil {
			err = f.Close()
		}
		third <- err
	}()
	fa.Close()
	if err := <-third; err != nil {
		t.Fatal(err)
	}
	fb.Close()
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if srv.maxOpen != 2 {
		t.Errorf("server saw %d handles open at once", srv.maxOpen)
	}
	// A request over the server's packet limit is refused locally.
	if _, err := c.Stat(strings.Repeat("x", 70000)); err == nil || !strings.Contains(err.Error(), "packet limit") {
		t.Errorf("oversized Stat: %v", err)
	}
}

// TestClientCancelDownload: a canceled context stops a transfer.
func TestClientCancelDownload(t *testing.T) {
	c := newOpenSSHClient(t)
	dir := t.TempDir()
	writeFile(t, dir+"/f", randomBytes(8<<20, 14))
	ctx, cancel := context.WithCancel(context.Background())
	opt := TransferOptions{Progress: func(ev ProgressEvent) {
		if ev.Done > 1<<20 {
			cancel()
		}
	}}
	err := c.Download(ctx, dir+"/f", dir+"/out", opt)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Download = %v, want context.Canceled", err)
	}
	// The client still works.
	if _, err := c.Stat(dir + "/f"); err != nil {
		t.Fatal(err)
	}
}

// TestClientUploadPartial: a failed upload reports the bytes safely on
// the server, and the remote file holds exactly those.
func TestClientUploadPartial(t *testing.T) {
	cEnd, sEnd := net.Pipe()
	srv := newFakeServer(t, sEnd)
	srv.failWriteAt = 5 * 32768
	srv.files["/"] = &fakeFile{dir: true}
	c, err := NewClient(context.Background(), cEnd)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	data := randomBytes(20*32768+1, 15)
	local := t.TempDir() + "/src"
	writeFile(t, local, data)
	err = c.Upload(context.Background(), local, "/dst", TransferOptions{})
	var pe *PartialError
	if !errors.As(err, &pe) || pe.Done != 5*32768 || pe.Dst != "/dst" {
		t.Fatalf("Upload = %v", err)
	}
	if !strings.Contains(err.Error(), "disk on fire") || !strings.Contains(err.Error(), "163840 bytes") {
		t.Errorf("error text: %v", err)
	}
	if got := srv.file("/dst"); !bytes.Equal(got, data[:pe.Done]) {
		t.Errorf("remote holds %d bytes, want the %d reported", len(got), pe.Done)
	}
}

// TestUploadClosesBehindLastWrite: an upload's CLOSE (and FSETSTAT for
// -p) goes right behind its last WRITE, before the WRITEs are answered: a
// server that answers them only when the CLOSE comes completes it
// (issue 17).
func TestUploadClosesBehindLastWrite(t *testing.T) {
	for _, preserve := range []bool{false, true} {
		cEnd, sEnd := net.Pipe()
		srv := newFakeServer(t, sEnd)
		srv.files["/"] = &fakeFile{dir: true}
		srv.writesAtClose = true
		c, err := NewClient(context.Background(), cEnd)
		if err != nil {
			t.Fatal(err)
		}
		data := randomBytes(3*32768+5, 16)
		local := t.TempDir() + "/src"
		writeFile(t, local, data)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err = c.Upload(ctx, local, "/dst", TransferOptions{PreserveTimesAndMode: preserve})
		cancel()
		if err != nil {
			t.Fatalf("preserve %v: Upload = %v (a client that waits for its WRITEs before CLOSE never gets them)", preserve, err)
		}
		if got := srv.file("/dst"); !bytes.Equal(got, data) {
			t.Errorf("preserve %v: remote holds %d bytes", preserve, len(got))
		}
		c.Close()
	}
}

// TestRecursiveFilesAtOnce: the files of a recursive download and upload
// move several at once (the server sees many handles open), or one at a
// time with Concurrency 1; every byte arrives either way.
func TestRecursiveFilesAtOnce(t *testing.T) {
	for _, conc := range []int{0, 1} {
		cEnd, sEnd := net.Pipe()
		srv := newFakeServer(t, sEnd)
		tree := &fakeFile{dir: true}
		srv.files["/t"] = tree
		want := map[string][]byte{}
		for i := range 40 {
			n := fmt.Sprintf("f%02d", i)
			tree.names = append(tree.names, n)
			want[n] = randomBytes(100+i*1000, uint64(i))
			srv.files["/t/"+n] = &fakeFile{data: want[n]}
		}
		c, err := NewClient(context.Background(), cEnd)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(t.TempDir(), "out")
		opt := TransferOptions{Recursive: true, Concurrency: conc}
		// With several files at once, the server answers the first OPENs
		// only once two have come: a second file must open before the
		// first is done, whatever the scheduling (small files on a busy
		// machine could otherwise each finish before the next opened).
		// One at a time, that would never answer.
		holdOpens := 0
		if conc != 1 {
			holdOpens = 2
		}
		srv.mu.Lock()
		srv.holdOpens = holdOpens
		srv.mu.Unlock()
		// A client that opened one file at a time would wait forever for
		// the held OPEN: the deadline turns that into a failure.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Download(ctx, "/t", dst, opt); err != nil {
			t.Fatal(err)
		}
		for n, data := range want {
			if got, err := os.ReadFile(filepath.Join(dst, n)); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("concurrency %d: %s: %d bytes, %v", conc, n, len(got), err)
			}
		}
		srv.mu.Lock()
		opened := srv.maxOpen
		srv.maxOpen = 0
		srv.mu.Unlock()
		if conc == 1 && opened != 1 || conc == 0 && opened < 2 {
			t.Errorf("concurrency %d: the download had %d files open at once", conc, opened)
		}
		srv.mu.Lock()
		srv.holdOpens = holdOpens
		srv.mu.Unlock()
		if err := c.Upload(ctx, dst, "/up", opt); err != nil {
			t.Fatal(err)
		}
		for n, data := range want {
			if got := srv.file("/up/" + n); !bytes.Equal(got, data) {
				t.Fatalf("concurrency %d: uploaded %s: %d bytes", conc, n, len(got))
			}
		}
		srv.mu.Lock()
		opened = srv.maxOpen
		srv.mu.Unlock()
		if conc == 1 && opened != 1 || conc == 0 && opened < 2 {
			t.Errorf("concurrency %d: the upload had %d files open at once", conc, opened)
		}
		c.Close()
	}
}

// TestStatusErrorSaysItOnce: a server's message that repeats the status
// code's name (OpenSSH's "No such file") is not said twice.
func TestStatusErrorSaysItOnce(t *testing.T) {
	for _, c := range []struct {
		err  StatusError
		want string
	}{
		{StatusError{Code: StatusNoSuchFile, Message: "No such file"}, "sftp: no such file"},
		{StatusError{Code: StatusNoSuchFile, Message: "no such file "}, "sftp: no such file"},
		{StatusError{Code: StatusNoSuchFile}, "sftp: no such file"},
		{StatusError{Code: StatusNoSuchFile, Message: "no such file or directory"}, "sftp: no such file"},
		{StatusError{Code: StatusPermissionDenied, Message: "quota exceeded on /home"}, "sftp: permission denied: quota exceeded on /home"},
	} {
		if got := c.err.Error(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.err, got, c.want)
		}
	}
}

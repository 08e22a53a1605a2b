package sftp

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// skips collects what a transfer's Skip was told.
type skips struct {
	mu    sync.Mutex
	paths []string
	errs  []error
}

func (s *skips) skip(p string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paths = append(s.paths, p)
	s.errs = append(s.errs, err)
}

func (s *skips) sorted() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.paths)
	sort.Strings(out)
	return out
}

func (s *skips) errFor(p string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, q := range s.paths {
		if q == p {
			return s.errs[i]
		}
	}
	return nil
}

func mustSame(t *testing.T, a, b string) {
	t.Helper()
	x, err1 := os.ReadFile(a)
	y, err2 := os.ReadFile(b)
	if err1 != nil || err2 != nil || !bytes.Equal(x, y) {
		t.Fatalf("%s and %s differ (%v, %v)", a, b, err1, err2)
	}
}

// TestUploadFollowLinks: with FollowLinks (scp's way) links to files
// and directories are copied as what they point to; a link back to a
// directory on its own path and a dangling one are handed to Skip (by
// their own paths) while the rest is copied; without Skip the first of
// them ends the upload; without FollowLinks links are skipped with a
// warning as before.
func TestUploadFollowLinks(t *testing.T) {
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	writeTree(t, tree, "f.txt", "sub/g.txt", "sub/deeper/h.txt")
	writeTree(t, dir, "outside/o.txt")
	os.Symlink("f.txt", filepath.Join(tree, "linkfile"))
	os.Symlink("..", filepath.Join(tree, "sub", "loop"))
	os.Symlink(".", filepath.Join(tree, "sub", "deeper", "self"))
	os.Symlink("../../..", filepath.Join(tree, "sub", "deeper", "up3")) // dir, the parent of the top: not on the path
	os.Symlink("nowhere", filepath.Join(tree, "dangling"))
	os.Symlink(filepath.Join(dir, "outside"), filepath.Join(tree, "outlink"))
	// up3 leads to dir, which holds tree: tree is then on the path again.
	root := t.TempDir()
	c := newOurServerClient(t, root)

	var sk skips
	var warned []string
	err := c.Upload(context.Background(), tree, "/tree", TransferOptions{Recursive: true, FollowLinks: true, Skip: sk.skip,
		Progress: func(ev ProgressEvent) {
			if ev.Warning != "" {
				warned = append(warned, ev.Warning)
			}
		}})
	if err != nil {
		t.Fatalf("Upload: %v", err)
	}
	mustSame(t, filepath.Join(tree, "f.txt"), filepath.Join(root, "tree", "linkfile"))
	mustSame(t, filepath.Join(tree, "sub/deeper/h.txt"), filepath.Join(root, "tree/sub/deeper/h.txt"))
	mustSame(t, filepath.Join(dir, "outside/o.txt"), filepath.Join(root, "tree/outlink/o.txt"))
	mustSame(t, filepath.Join(dir, "outside/o.txt"), filepath.Join(root, "tree/sub/deeper/up3/outside/o.txt"))
	if fi, err := os.Lstat(filepath.Join(root, "tree", "linkfile")); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("the link to a file is not a regular file on the server: %v", err)
	}
	want := []string{
		filepath.Join(tree, "dangling"),
		filepath.Join(tree, "sub", "deeper", "self"),
		filepath.Join(tree, "sub", "deeper", "up3", "tree"),
		filepath.Join(tree, "sub", "loop"),
	}
	if got := sk.sorted(); !slices.Equal(got, want) {
		t.Fatalf("skipped %q, want %q", got, want)
	}
	if err := sk.errFor(filepath.Join(tree, "sub", "loop")); err == nil || !strings.Contains(err.Error(), "symbolic link loop") || !strings.Contains(err.Error(), "leads back to "+tree) {
		t.Fatalf("loop: %v", err)
	}
	if err := sk.errFor(filepath.Join(tree, "dangling")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("dangling: %v", err)
	}
	if len(warned) != 0 {
		t.Fatalf("warnings: %q", warned)
	}

	// Without Skip the first problem ends the upload.
	if err := c.Upload(context.Background(), tree, "/tree2", TransferOptions{Recursive: true, FollowLinks: true}); err == nil {
		t.Fatal("Upload without Skip went past a dangling link")
	}
	// Without FollowLinks: links are skipped with warnings.
	warned = nil
	sk = skips{}
	if err := c.Upload(context.Background(), tree, "/tree3", TransferOptions{Recursive: true, Skip: sk.skip,
		Progress: func(ev ProgressEvent) {
			if ev.Warning != "" {
				warned = append(warned, ev.Warning)
			}
		}}); err != nil {
		t.Fatal(err)
	}
	if len(warned) != 6 || len(sk.paths) != 0 {
		t.Fatalf("without FollowLinks: warnings %q, skipped %q", warned, sk.paths)
	}
	if _, err := os.Lstat(filepath.Join(root, "tree3", "linkfile")); !os.IsNotExist(err) {
		t.Fatalf("a link was copied without FollowLinks: %v", err)
	}
}

// TestDownloadFollowLinksAndSkip: a recursive download that follows the
// server's links finds loops by REALPATH, and goes on past entries it
// cannot read or write locally, handing each to Skip.
func TestDownloadFollowLinksAndSkip(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, "tree/a.txt", "tree/sub/b.txt", "tree/blocked.txt", "other/o.txt")
	os.Symlink(".", filepath.Join(root, "tree", "self"))
	os.Symlink("../..", filepath.Join(root, "tree", "sub", "up")) // the root, then tree again inside it
	os.Symlink("../other", filepath.Join(root, "tree", "olink"))
	os.Symlink("nowhere", filepath.Join(root, "tree", "dangling"))
	c := newOurServerClient(t, root)
	// Into the existing directory got, as got/tree, where a directory
	// stands where the download needs a file: that file cannot be
	// written.
	got := t.TempDir()
	local := filepath.Join(got, "tree")
	os.MkdirAll(filepath.Join(local, "blocked.txt"), 0o755)

	var sk skips
	if err := c.Download(context.Background(), "/tree", got, TransferOptions{Recursive: true, FollowLinks: true, Skip: sk.skip}); err != nil {
		t.Fatalf("Download: %v", err)
	}
	mustSame(t, filepath.Join(root, "tree/sub/b.txt"), filepath.Join(local, "sub/b.txt"))
	mustSame(t, filepath.Join(root, "other/o.txt"), filepath.Join(local, "olink/o.txt"))
	mustSame(t, filepath.Join(root, "other/o.txt"), filepath.Join(local, "sub/up/other/o.txt"))
	want := []string{"/tree/blocked.txt", "/tree/dangling", "/tree/self", "/tree/sub/up/tree"}
	if got := sk.sorted(); !slices.Equal(got, want) {
		t.Fatalf("skipped %q, want %q", got, want)
	}
	if err := sk.errFor("/tree/self"); err == nil || !strings.Contains(err.Error(), "symbolic link loop") {
		t.Fatalf("self: %v", err)
	}

	// get -r's way (no FollowLinks, no Skip): links skipped with a
	// warning, the unwritable file ends the download.
	if err := c.Download(context.Background(), "/tree", got, TransferOptions{Recursive: true}); err == nil {
		t.Fatal("Download without Skip went past a file it could not write")
	}
}

// TestTransferThrottleCounts: Throttle is told of every byte of every
// file, in the copy loop, for downloads, uploads and copies between
// servers; its error ends the transfer, even with Skip.
func TestTransferThrottleCounts(t *testing.T) {
	root := t.TempDir()
	sizes := map[string]int{"d/a": 1<<20 + 17, "d/b": 0, "d/c": 3 * 32768, "d/e/f": 100}
	total := 0
	for p, n := range sizes {
		os.MkdirAll(filepath.Join(root, filepath.Dir(p)), 0o755)
		writeFile(t, filepath.Join(root, p), randomBytes(n, uint64(n)))
		total += n
	}
	c := newOurServerClient(t, root)
	var mu sync.Mutex
	counted, calls := 0, 0
	opt := TransferOptions{Recursive: true, Throttle: func(ctx context.Context, n int) error {
		mu.Lock()
		defer mu.Unlock()
		if n <= 0 {
			t.Errorf("Throttle(%d)", n)
		}
		counted += n
		calls++
		return nil
	}}
	reset := func() { mu.Lock(); counted, calls = 0, 0; mu.Unlock() }
	local := filepath.Join(t.TempDir(), "d")
	if err := c.Download(context.Background(), "/d", local, opt); err != nil {
		t.Fatal(err)
	}
	if counted != total || calls == 0 {
		t.Fatalf("download: throttled %d bytes in %d calls, want %d", counted, calls, total)
	}
	reset()
	if err := c.Upload(context.Background(), local, "/up", opt); err != nil {
		t.Fatal(err)
	}
	if counted != total {
		t.Fatalf("upload: throttled %d bytes, want %d", counted, total)
	}
	mustSame(t, filepath.Join(root, "d/a"), filepath.Join(root, "up/a"))
	reset()
	if err := Crossload(context.Background(), c, "/d", c, "/cross", opt); err != nil {
		t.Fatal(err)
	}
	if counted != total {
		t.Fatalf("crossload: throttled %d bytes, want %d", counted, total)
	}
	mustSame(t, filepath.Join(root, "d/a"), filepath.Join(root, "cross/a"))

	stop := errors.New("over the limit")
	var sk skips
	bad := TransferOptions{Recursive: true, Skip: sk.skip, Throttle: func(context.Context, int) error { return stop }}
	for name, run := range map[string]func() error{
		"download":  func() error { return c.Download(context.Background(), "/d", filepath.Join(t.TempDir(), "x"), bad) },
		"upload":    func() error { return c.Upload(context.Background(), local, "/up2", bad) },
		"crossload": func() error { return Crossload(context.Background(), c, "/d", c, "/cross2", bad) },
	} {
		if err := run(); !errors.Is(err, stop) {
			t.Errorf("%s with a failing Throttle: %v", name, err)
		}
	}
	if len(sk.paths) != 0 {
		t.Fatalf("a Throttle error was skipped: %q", sk.paths)
	}
}

// TestCrossload copies between two servers: a file, a file into a
// directory, a tree with -p, and refuses resume and a directory without
// Recursive.
func TestCrossload(t *testing.T) {
	r1, r2 := t.TempDir(), t.TempDir()
	writeTree(t, r1, "tree/a.bin", "tree/s/b.bin")
	big := randomBytes(5<<20+3, 7)
	writeFile(t, filepath.Join(r1, "tree", "big.bin"), big)
	old := time.Date(2019, 3, 4, 5, 6, 7, 0, time.UTC)
	os.Chmod(filepath.Join(r1, "tree", "a.bin"), 0o640)
	os.Chtimes(filepath.Join(r1, "tree", "a.bin"), old, old)
	os.Chtimes(filepath.Join(r1, "tree", "s"), old, old)
	c1, c2 := newOurServerClient(t, r1), newOurServerClient(t, r2)
	ctx := context.Background()

	var done []ProgressEvent
	if err := Crossload(ctx, c1, "/tree/big.bin", c2, "/copy.bin", TransferOptions{Progress: func(ev ProgressEvent) {
		if ev.Finished {
			done = append(done, ev)
		}
	}}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(r2, "copy.bin")); !bytes.Equal(got, big) {
		t.Fatal("copy differs")
	}
	if len(done) != 1 || done[0].Done != int64(len(big)) || done[0].Path != "/tree/big.bin" {
		t.Fatalf("progress: %+v", done)
	}
	os.Mkdir(filepath.Join(r2, "into"), 0o755)
	if err := Crossload(ctx, c1, "/tree/a.bin", c2, "/into", TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	mustSame(t, filepath.Join(r1, "tree/a.bin"), filepath.Join(r2, "into/a.bin"))
	if err := Crossload(ctx, c1, "/tree", c2, "/t", TransferOptions{}); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("directory without Recursive: %v", err)
	}
	if err := Crossload(ctx, c1, "/tree/a.bin", c2, "/r", TransferOptions{Resume: true}); err == nil {
		t.Fatal("resume between servers accepted")
	}
	if err := Crossload(ctx, c1, "/tree", c2, "/t", TransferOptions{Recursive: true, PreserveTimesAndMode: true}); err != nil {
		t.Fatal(err)
	}
	mustSame(t, filepath.Join(r1, "tree/s/b.bin"), filepath.Join(r2, "t/s/b.bin"))
	mustSame(t, filepath.Join(r1, "tree/big.bin"), filepath.Join(r2, "t/big.bin"))
	fi, err := os.Stat(filepath.Join(r2, "t", "a.bin"))
	if err != nil || !fi.ModTime().Equal(old) || fi.Mode().Perm() != 0o640 {
		t.Fatalf("-p on a file: %v %v %v", fi.ModTime(), fi.Mode(), err)
	}
	if fi, err := os.Stat(filepath.Join(r2, "t", "s")); err != nil || !fi.ModTime().Equal(old) {
		t.Fatalf("-p on a directory: %v", err)
	}
	// Within one server, with one client.
	if err := Crossload(ctx, c1, "/tree/big.bin", c1, "/same.bin", TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	mustSame(t, filepath.Join(r1, "tree/big.bin"), filepath.Join(r1, "same.bin"))
	// A missing source, and an interruption.
	if err := Crossload(ctx, c1, "/nope", c2, "/x", TransferOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing source: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := Crossload(cctx, c1, "/tree/big.bin", c2, "/y", TransferOptions{}); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("canceled: %v", err)
	}
}

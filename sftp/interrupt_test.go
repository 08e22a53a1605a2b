package sftp

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rsftp/rsftp/channel"
)

// stallConn is a memConn whose sending can stall: while stalled, what it
// is given to send is held, as a link that stopped holds it, and release
// delivers it, in order, as a link that came back (or a resumed session)
// does.
type stallConn struct {
	*memConn
	mu      sync.Mutex
	stalled bool
	held    [][]byte
}

func (s *stallConn) WritePacket(b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stalled {
		s.held = append(s.held, bytes.Clone(b))
		return nil
	}
	return s.memConn.WritePacket(b)
}

func (s *stallConn) stall() {
	s.mu.Lock()
	s.stalled = true
	s.mu.Unlock()
}

func (s *stallConn) isStalled() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stalled
}

func (s *stallConn) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stalled = false
	for _, p := range s.held {
		s.memConn.WritePacket(p)
	}
	s.held = nil
}

// stallPair opens a channel between two multiplexers over stallConns:
// up (client to server) and down (server to client). serverWindow is the
// server's receive window, what the client may send unread (0: the
// default).
func stallPair(t *testing.T, serverWindow uint32) (client, server *channel.Channel, up, down *stallConn) {
	t.Helper()
	a2b, b2a := newPacketQueue(), newPacketQueue()
	up = &stallConn{memConn: &memConn{in: b2a, out: a2b}}
	down = &stallConn{memConn: &memConn{in: a2b, out: b2a}}
	ma := channel.NewMux(channel.PlainConn(up), &channel.Config{MaxPacket: 32 << 10})
	mb := channel.NewMux(channel.PlainConn(down), &channel.Config{MaxPacket: 32 << 10, WindowSize: serverWindow})
	t.Cleanup(func() {
		up.release()
		down.release()
		ma.Close()
		mb.Close()
	})
	nch := mb.HandleChannelOpen("session")
	acc := make(chan *channel.Channel, 1)
	go func() {
		c, err := (<-nch).Accept()
		if err != nil {
			t.Error(err)
		}
		acc <- c
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	client, err := ma.OpenChannel(ctx, "session", nil)
	if err != nil {
		t.Fatal(err)
	}
	return client, <-acc, up, down
}

// interruptGuard is how long a test waits for an interrupted transfer
// before it calls it hung: a bound against hanging, not a measure of
// speed.
const interruptGuard = 10 * time.Second

// runGuarded runs fn and returns its error, or fails the test if fn has
// not returned within interruptGuard.
func runGuarded(t *testing.T, what string, fn func() error) error {
	t.Helper()
	res := make(chan error, 1)
	go func() { res <- fn() }()
	select {
	case err := <-res:
		return err
	case <-time.After(interruptGuard):
		t.Fatalf("%s did not return within %v of its cancellation on a stalled link", what, interruptGuard)
		return nil
	}
}

// checkInterrupted checks that err is an interrupted transfer's
// PartialError that does not read "context canceled".
func checkInterrupted(t *testing.T, err error) *PartialError {
	t.Helper()
	var pe *PartialError
	if !errors.As(err, &pe) || !errors.Is(err, ErrInterrupted) || !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v (%T): want a PartialError matching ErrInterrupted and context.Canceled", err, err)
	}
	if strings.Contains(err.Error(), "context canceled") || !strings.Contains(err.Error(), "interrupted") {
		t.Errorf("error text %q: want it to say interrupted, not context canceled", err)
	}
	return pe
}

// TestDownloadInterruptedOnStalledLink: a download whose link stalls in
// both directions, then whose context is canceled, returns (it used to
// wait in waitFront until the link came back) with an interrupted
// PartialError, and the local file holds exactly the Done bytes received
// in order. When the link comes back, the replies to the abandoned READs
// land nowhere: the file stays that prefix, the client still works, and
// a resumed download completes the file.
func TestDownloadInterruptedOnStalledLink(t *testing.T) {
	data := randomBytes(16<<20+123, 21)
	cc, sc, up, down := stallPair(t, 0)
	srv := newFakeServer(t, sc)
	srv.files["/f"] = &fakeFile{data: data}
	srv.hashRange = true
	c, err := NewClient(context.Background(), cc, ReadSize(32768))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.via == nil {
		t.Fatal("the client does not read replies in place over a channel; the test means to cover that path")
	}
	lp := filepath.Join(t.TempDir(), "f")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var once sync.Once
	opt := TransferOptions{Progress: func(ev ProgressEvent) {
		if ev.Done >= 2<<20 {
			once.Do(func() {
				up.stall()
				down.stall()
				// Cancel once the download waits on the dead link.
				time.AfterFunc(100*time.Millisecond, cancel)
			})
		}
	}}
	err = runGuarded(t, "Download", func() error { return c.Download(ctx, "/f", lp, opt) })
	pe := checkInterrupted(t, err)
	got, _ := os.ReadFile(lp)
	if pe.Done < 2<<20 || int64(len(got)) != pe.Done || !bytes.Equal(got, data[:len(got)]) {
		t.Fatalf("Done %d; local file %d bytes, a prefix of the source: %v", pe.Done, len(got), bytes.HasPrefix(data, got))
	}

	// The link comes back: the late replies must not touch the file.
	up.release()
	down.release()
	if _, err := c.Stat("/f"); err != nil { // answered after every late reply
		t.Fatalf("the client no longer works after an interrupted download: %v", err)
	}
	got, _ = os.ReadFile(lp)
	if int64(len(got)) != pe.Done || !bytes.Equal(got, data[:len(got)]) {
		t.Fatalf("late replies changed the local file: %d bytes (prefix %v), want the %d kept", len(got), bytes.HasPrefix(data, got), pe.Done)
	}
	if err := c.Download(context.Background(), "/f", lp, TransferOptions{Resume: true}); err != nil {
		t.Fatalf("resumed download: %v", err)
	}
	if got, _ = os.ReadFile(lp); !bytes.Equal(got, data) {
		t.Fatalf("resumed download: %d bytes, equal %v", len(got), bytes.Equal(got, data))
	}
}

// TestDownloadInterruptedBeforeData: cancellation while the first
// request (STAT) waits on a stalled link ends Download too.
func TestDownloadInterruptedBeforeData(t *testing.T) {
	cc, sc, up, _ := stallPair(t, 0)
	srv := newFakeServer(t, sc)
	srv.files["/f"] = &fakeFile{data: []byte("x")}
	c, err := NewClient(context.Background(), cc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	up.stall()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	lp := filepath.Join(t.TempDir(), "f")
	err = runGuarded(t, "Download", func() error { return c.Download(ctx, "/f", lp, TransferOptions{}) })
	if !errors.Is(err, ErrInterrupted) || !errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("Download = %v, want the interruption", err)
	}
	if _, err := os.Stat(lp); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("local file created before any data: %v", err)
	}
}

// TestUploadInterruptedOnStalledLink: an upload whose link stalls
// towards the server, then whose context is canceled, returns with an
// interrupted PartialError, whether it waits for replies (a large
// window) or for window room (a small one, where the write itself is
// held). The server holds exactly the source's first bytes, at least the
// Done acknowledged; with the large window the client still works once
// the link is back, the WRITEs that were in flight land in order, and a
// resumed upload completes the file.
func TestUploadInterruptedOnStalledLink(t *testing.T) {
	for _, tc := range []struct {
		name   string
		window uint32
	}{{"replies", 0}, {"window", 256 << 10}} {
		t.Run(tc.name, func(t *testing.T) {
			data := randomBytes(24<<20+5, 22)
			lp := filepath.Join(t.TempDir(), "src")
			writeFile(t, lp, data)
			cc, sc, up, _ := stallPair(t, tc.window)
			srv := newFakeServer(t, sc)
			srv.files["/"] = &fakeFile{dir: true}
			srv.hashRange = true
			c, err := NewClient(context.Background(), cc, WriteSize(32768))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var once sync.Once
			opt := TransferOptions{Progress: func(ev ProgressEvent) {
				if ev.Done >= 4<<20 {
					once.Do(func() {
						up.stall()
						time.AfterFunc(100*time.Millisecond, cancel)
					})
				}
			}}
			err = runGuarded(t, "Upload", func() error { return c.Upload(ctx, lp, "/up", opt) })
			pe := checkInterrupted(t, err)
			got := srv.file("/up")
			if pe.Done <= 0 || int64(len(got)) < pe.Done || !bytes.Equal(got, data[:len(got)]) {
				t.Fatalf("Done %d; remote file %d bytes, a prefix of the source: %v", pe.Done, len(got), bytes.HasPrefix(data, got))
			}
			if tc.window != 0 {
				// The write was held for window room: only failing the
				// client freed it.
				if c.Err() == nil {
					t.Errorf("the upload was not held in a write (the client still works); the case tests nothing")
				}
				return
			}
			up.release()
			if _, err := c.Stat("/up"); err != nil {
				t.Fatalf("the client no longer works after an interrupted upload: %v", err)
			}
			if got := srv.file("/up"); !bytes.Equal(got, data[:len(got)]) {
				t.Fatalf("after the link came back the remote file is %d bytes and not a prefix of the source", len(got))
			}
			if err := c.Upload(context.Background(), lp, "/up", TransferOptions{Resume: true}); err != nil {
				t.Fatalf("resumed upload: %v", err)
			}
			if got := srv.file("/up"); !bytes.Equal(got, data) {
				t.Fatalf("resumed upload: %d bytes, equal %v", len(got), bytes.Equal(got, data))
			}
		})
	}
}

// TestDownloadToWritesNothingAfterInterrupt: after an interrupted
// downloadTo returns, replies to its abandoned READs that arrive later
// write nothing to the local file, even while it is still open (the
// caller cuts it back to the bytes received in order, and readLoop must
// not write past that afterwards).
func TestDownloadToWritesNothingAfterInterrupt(t *testing.T) {
	data := randomBytes(16<<20, 23)
	cc, sc, up, down := stallPair(t, 0)
	srv := newFakeServer(t, sc)
	srv.files["/f"] = &fakeFile{data: data}
	c, err := NewClient(context.Background(), cc, ReadSize(32768))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rf, err := c.Open("/f")
	if err != nil {
		t.Fatal(err)
	}
	lf, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var done int64
	err = runGuarded(t, "downloadTo", func() error {
		_, err := rf.downloadTo(ctx, lf, 0, -1, func(n int) error {
			if done += int64(n); done >= 2<<20 && !down.isStalled() {
				up.stall()
				down.stall()
				time.AfterFunc(100*time.Millisecond, cancel)
			}
			return nil
		})
		return err
	})
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("downloadTo = %v, want the interruption", err)
	}
	if err := lf.Truncate(done); err != nil {
		t.Fatal(err)
	}
	up.release()
	down.release()
	if _, err := c.Stat("/f"); err != nil { // answered after every late reply
		t.Fatal(err)
	}
	if st, err := lf.Stat(); err != nil || st.Size() != done {
		t.Fatalf("local file is %d bytes after the late replies (%v), want the %d received in order", st.Size(), err, done)
	}
}

package sftp

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// streamRig serves a directory with this package's server over a pipe
// per session, as sessions of one connection would: the first made by
// client, the others by its WithStreams opener. Each session's client
// side counts the bytes it sent. failAt[i] makes session i's server stop
// reading once it has read that many bytes (what it read is served,
// then the session ends, as when a server's SFTP process dies);
// refuseFrom refuses the opener's sessions from that one on (1 is the
// first extra one). With hold set, no session sends more than its first
// 64 KiB until hold sessions each sent as much (or one with failAt
// failed), so that each has data to carry.
type streamRig struct {
	t          *testing.T
	root       string
	failAt     map[int]int64
	refuseFrom int
	hold       int

	mu      sync.Mutex
	opened  int
	joined  int
	sent    []*atomic.Int64
	allIn   chan struct{}
	allOnce sync.Once
}

type countingConn struct {
	net.Conn
	sent   *atomic.Int64
	gate   <-chan struct{} // closed when the session may send past its first 64 KiB
	joined func()          // called once the session sent 64 KiB or failed
	once   sync.Once
}

func (c *countingConn) Write(p []byte) (int, error) {
	if c.gate != nil && c.sent.Load() > 64<<10 {
		<-c.gate
	}
	n, err := c.Conn.Write(p)
	if c.sent.Add(int64(n)) > 64<<10 || err != nil {
		if c.joined != nil {
			c.once.Do(c.joined)
		}
	}
	return n, err
}

// cutReader ends its reader after limit bytes.
type cutReader struct {
	net.Conn
	left int64
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.Conn.Read(p)
	c.left -= int64(n)
	return n, err
}

func (r *streamRig) session(ctx context.Context, opts ...ClientOption) (*Client, error) {
	r.mu.Lock()
	i := r.opened
	r.opened++
	if r.refuseFrom > 0 && i >= r.refuseFrom {
		r.mu.Unlock()
		return nil, errors.New("open failed: administratively prohibited (the test's MaxSessions)")
	}
	if r.allIn == nil {
		r.allIn = make(chan struct{})
	}
	sent := new(atomic.Int64)
	r.sent = append(r.sent, sent)
	r.mu.Unlock()
	conn := &countingConn{sent: sent}
	if r.hold > 1 {
		conn.gate = r.allIn
		if _, failing := r.failAt[i]; failing {
			// Once it fails the others stop taking ranges: let them
			// go on.
			conn.joined = func() { r.allOnce.Do(func() { close(r.allIn) }) }
		} else {
			conn.joined = func() {
				r.mu.Lock()
				r.joined++
				all := r.joined >= r.hold
				r.mu.Unlock()
				if all {
					r.allOnce.Do(func() { close(r.allIn) })
				}
			}
		}
	}
	cEnd, sEnd := net.Pipe()
	conn.Conn = cEnd
	var srw io.ReadWriter = sEnd
	if n, ok := r.failAt[i]; ok {
		srw = &cutReader{Conn: sEnd, left: n}
	}
	go func() {
		Serve(context.Background(), srw, &ServerConfig{Root: r.root})
		sEnd.Close()
	}()
	r.t.Cleanup(func() { cEnd.Close(); sEnd.Close() })
	return NewClient(ctx, conn, opts...)
}

func (r *streamRig) client() *Client {
	c, err := r.session(context.Background(), WithStreams(r.session), WriteSize(16<<10), MaxInflight(8))
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { c.Close() })
	return c
}

func smallStreamChunks(t *testing.T) {
	oldMin, oldChunk := minStreamUpload, streamChunk
	minStreamUpload, streamChunk = 1, 64<<10
	t.Cleanup(func() { minStreamUpload, streamChunk = oldMin, oldChunk })
}

// TestUploadStreams: a large upload spreads its byte ranges over several
// sessions, each writing its ranges in place, and the file comes out
// whole; with Streams 1 only the first session carries data.
func TestUploadStreams(t *testing.T) {
	smallStreamChunks(t)
	data := randomBytes(3<<20+12345, 7)
	local := filepath.Join(t.TempDir(), "src")
	writeFile(t, local, data)
	for _, streams := range []int{1, 4} {
		r := &streamRig{t: t, root: t.TempDir(), hold: streams}
		c := r.client()
		if err := c.Upload(context.Background(), local, "/dst", TransferOptions{Streams: streams}); err != nil {
			t.Fatalf("Streams %d: %v", streams, err)
		}
		got, err := os.ReadFile(filepath.Join(r.root, "dst"))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("Streams %d: the remote file is %d bytes (equal: %v, %v), want the %d sent", streams, len(got), bytes.Equal(got, data), err, len(data))
		}
		r.mu.Lock()
		carried := 0
		for _, s := range r.sent {
			if s.Load() > 64<<10 {
				carried++
			}
		}
		n := len(r.sent)
		r.mu.Unlock()
		if n != streams || carried != streams {
			t.Errorf("Streams %d: %d sessions opened, %d carried data; want %d and %d", streams, n, carried, streams, streams)
		}
	}
}

// TestUploadStreamsFailure: when one session fails in the middle, the
// upload fails as one, reports only a prefix every byte of which was
// acknowledged, and leaves the remote file exactly that prefix (what the
// other sessions wrote past it is cut); a resumed upload then completes
// the file.
func TestUploadStreamsFailure(t *testing.T) {
	smallStreamChunks(t)
	data := randomBytes(4<<20+777, 8)
	local := filepath.Join(t.TempDir(), "src")
	writeFile(t, local, data)
	for _, failing := range []int{0, 2} {
		r := &streamRig{t: t, root: t.TempDir(), failAt: map[int]int64{failing: 40 << 10}, hold: 4}
		c := r.client()
		err := c.Upload(context.Background(), local, "/dst", TransferOptions{Streams: 4})
		var pe *PartialError
		if !errors.As(err, &pe) {
			t.Fatalf("session %d failing: Upload = %v, want a *PartialError", failing, err)
		}
		if pe.Done >= int64(len(data)) {
			t.Fatalf("session %d failing: reported %d bytes written of %d", failing, pe.Done, len(data))
		}
		if failing == 0 {
			// The first session carries the truncation: with it gone
			// nothing can be cut, and the report still stands.
			continue
		}
		got, rerr := os.ReadFile(filepath.Join(r.root, "dst"))
		if rerr != nil || !bytes.Equal(got, data[:pe.Done]) {
			t.Fatalf("session %d failing: the remote file is %d bytes (a prefix of the source: %v), want exactly the %d reported (%v)",
				failing, len(got), bytes.HasPrefix(data, got), pe.Done, err)
		}
		if pe.Done == 0 {
			t.Errorf("session %d failing: nothing reported written, though the other sessions wrote on", failing)
		}
		// A resume over fresh sessions completes it.
		r2 := &streamRig{t: t, root: r.root}
		if err := r2.client().Upload(context.Background(), local, "/dst", TransferOptions{Streams: 4, Resume: true}); err != nil {
			t.Fatalf("resuming after session %d failed: %v", failing, err)
		}
		if got, _ := os.ReadFile(filepath.Join(r.root, "dst")); !bytes.Equal(got, data) {
			t.Fatalf("after the resume the remote file is %d bytes (equal: false), want %d", len(got), len(data))
		}
	}
}

// TestUploadStreamsRefused: a server that refuses more sessions gets the
// upload over those it took, and is not asked again.
func TestUploadStreamsRefused(t *testing.T) {
	smallStreamChunks(t)
	data := randomBytes(2<<20, 9)
	local := filepath.Join(t.TempDir(), "src")
	writeFile(t, local, data)
	r := &streamRig{t: t, root: t.TempDir(), refuseFrom: 2}
	c := r.client()
	for i := range 2 {
		if err := c.Upload(context.Background(), local, "/dst", TransferOptions{Streams: 6}); err != nil {
			t.Fatalf("upload %d: %v", i, err)
		}
		if got, _ := os.ReadFile(filepath.Join(r.root, "dst")); !bytes.Equal(got, data) {
			t.Fatalf("upload %d: the remote file is %d bytes, not the %d sent", i, len(got), len(data))
		}
	}
	// Opens still under way when the first upload ended come to the
	// pool; wait for them.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		c.streams.mu.Lock()
		n := c.streams.opening
		c.streams.mu.Unlock()
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d session opens still under way after 5 s", n)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// The first upload asked for 5 more (1 taken, 4 refused); the
	// second reused the one and asked nothing.
	if r.opened != 6 || len(r.sent) != 2 {
		t.Errorf("%d sessions asked for, %d taken; want 6 and 2", r.opened, len(r.sent))
	}
}

// TestUploadStreamsInterrupted: an upload over several sessions whose
// context ends returns the interruption with the acknowledged prefix,
// and the remote file is cut back to that prefix (the other sessions'
// WRITEs in flight answered first).
func TestUploadStreamsInterrupted(t *testing.T) {
	smallStreamChunks(t)
	data := randomBytes(8<<20, 10)
	local := filepath.Join(t.TempDir(), "src")
	writeFile(t, local, data)
	r := &streamRig{t: t, root: t.TempDir(), hold: 4}
	c := r.client()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	opt := TransferOptions{Streams: 4, Progress: func(ev ProgressEvent) {
		if ev.Done > 1<<20 {
			cancel()
		}
	}}
	err := c.Upload(ctx, local, "/dst", opt)
	var pe *PartialError
	if !errors.Is(err, ErrInterrupted) || !errors.As(err, &pe) {
		t.Fatalf("Upload = %v, want an interruption as a *PartialError", err)
	}
	if pe.Done < 1<<20 || pe.Done >= int64(len(data)) {
		t.Fatalf("reported %d bytes written, want at least 1 MiB and less than %d", pe.Done, len(data))
	}
	got, rerr := os.ReadFile(filepath.Join(r.root, "dst"))
	if rerr != nil || !bytes.Equal(got, data[:pe.Done]) {
		t.Fatalf("the remote file is %d bytes (a prefix of the source: %v), want exactly the %d reported", len(got), bytes.HasPrefix(data, got), pe.Done)
	}
}

// peerWindowRW is a connection whose peer grants w bytes of window, as a
// channel to sshd (2 MiB) reports it.
type peerWindowRW struct {
	io.ReadWriteCloser
	w uint32
}

func (p peerWindowRW) PeerWindow() uint32 { return p.w }

// TestStreamCountByRoundTrip: the automatic choice spreads an upload to a
// server with small windows only when the round trip (the OPEN's time)
// makes one session's window the bound: near, one session; far, enough
// sessions for 32 MiB of window, at most DefaultStreams; a server with a
// large window, one; an explicit count, as asked.
func TestStreamCountByRoundTrip(t *testing.T) {
	sshd := &Client{rw: peerWindowRW{w: 2 << 20}, streams: &streamPool{}}
	ours := &Client{rw: peerWindowRW{w: 16 << 20}, streams: &streamPool{}}
	big := int64(1 << 30)
	for _, tc := range []struct {
		c    *Client
		opt  TransferOptions
		n    int64
		rtt  time.Duration
		want int
	}{
		{sshd, TransferOptions{}, big, 100 * time.Microsecond, 1},
		{sshd, TransferOptions{}, big, streamMinRTT - time.Microsecond, 1},
		{sshd, TransferOptions{}, big, streamMinRTT, DefaultStreams},
		{sshd, TransferOptions{}, big, 100 * time.Millisecond, DefaultStreams},
		{sshd, TransferOptions{}, minStreamUpload - 1, 100 * time.Millisecond, 1},
		{ours, TransferOptions{}, big, 100 * time.Millisecond, 1},
		{sshd, TransferOptions{Streams: 4}, big, 100 * time.Microsecond, 4},
		{sshd, TransferOptions{Streams: 1}, big, 100 * time.Millisecond, 1},
	} {
		if got := tc.c.streamCount(&tc.opt, tc.n, tc.rtt); got != tc.want {
			t.Errorf("window %d, %+v, %d bytes, OPEN in %v: %d sessions, want %d",
				tc.c.rw.(peerWindowRW).w, tc.opt, tc.n, tc.rtt, got, tc.want)
		}
	}
}

package sftp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/netsim"
)

// TestWaitFrontOrder completes the calls of a ring in every order the
// test tries and checks that waitFront still hands them out front first,
// each once.
func TestWaitFrontOrder(t *testing.T) {
	orders := [][]int{{0, 1, 2, 3, 4}, {4, 3, 2, 1, 0}, {2, 0, 4, 1, 3}, {1, 2, 3, 4, 0}}
	for _, order := range orders {
		for batch := 1; batch <= 6; batch++ {
			q := newRing(5)
			calls := make([]*call, 5)
			for i := range calls {
				calls[i] = &call{done: make(chan struct{}, 1)}
				q.pushBack(inflight{rc: calls[i], off: int64(i)})
			}
			go func() {
				for _, i := range order {
					calls[i].typ = byte(10 + i)
					calls[i].done <- struct{}{}
				}
			}()
			for i := range calls {
				x := q.waitFront(batch)
				if x.rc != calls[i] || x.off != int64(i) {
					t.Fatalf("order %v batch %d: got call %d at position %d", order, batch, x.off, i)
				}
				if typ, _, err := x.rc.reply(); typ != byte(10+i) || err != nil {
					t.Fatalf("order %v batch %d: reply %d, %v", order, batch, typ, err)
				}
				select {
				case <-x.rc.done:
					t.Fatalf("order %v batch %d: call %d completed twice", order, batch, i)
				default:
				}
			}
			if q.n != 0 {
				t.Fatalf("%d left in the ring", q.n)
			}
		}
	}
}

// openOverFake starts a client over rw (to a fake server) and opens p;
// the client is closed when the test ends.
func openOverFake(t *testing.T, rw io.ReadWriteCloser, p string, opts ...ClientOption) *File {
	t.Helper()
	c, err := NewClient(context.Background(), rw, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	f, err := c.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// countingRW counts the SFTP packets in each write.
type countingRW struct {
	io.ReadWriteCloser
	mu     sync.Mutex
	writes []int // packets per write
}

func (c *countingRW) Write(b []byte) (int, error) {
	n := 0
	for p := b; len(p) >= 4; {
		l := int(binary.BigEndian.Uint32(p))
		n++
		p = p[min(len(p), 4+l):]
	}
	c.mu.Lock()
	c.writes = append(c.writes, n)
	c.mu.Unlock()
	return c.ReadWriteCloser.Write(b)
}

// TestLimitsWithInit: the limits@openssh.com request goes in the same
// write as INIT (issue 17), and its answer is used when VERSION listed
// the extension, ignored when it did not.
func TestLimitsWithInit(t *testing.T) {
	for _, offered := range []bool{true, false} {
		cEnd, sEnd := net.Pipe()
		srv := newFakeServer(t, sEnd)
		if offered {
			srv.limits = []uint64{64 << 10, 16 << 10, 8 << 10, 5}
		}
		rw := &countingRW{ReadWriteCloser: cEnd}
		c, err := NewClient(context.Background(), rw)
		if err != nil {
			t.Fatal(err)
		}
		rw.mu.Lock()
		writes := slices.Clone(rw.writes)
		rw.mu.Unlock()
		if len(writes) != 1 || writes[0] != 2 {
			t.Errorf("offered %v: NewClient wrote %v packets per write, want [2]", offered, writes)
		}
		l := c.Limits()
		if offered && (l.ServerMaxRead != 16<<10 || l.ReadSize != 16<<10 || l.WriteSize != 8<<10 || l.ServerMaxOpenHandles != 5) {
			t.Errorf("limits %+v", l)
		}
		if !offered && (l.ServerMaxPacket != 0 || l.ReadSize != defaultReadWrite) {
			t.Errorf("no limits offered: %+v", l)
		}
		if _, err := c.Stat("/"); err == nil {
			t.Error("Stat of a missing path succeeded") // a request after them works
		} else if !errors.Is(err, fs.ErrNotExist) {
			t.Error(err)
		}
		c.Close()
	}
}

// TestStatAhead: StatAhead's STAT goes in the same write as INIT, and the
// first Stat of its path takes the answer without a request; a request
// sent first (anything may change the path) or a Stat of another path
// makes it ask. A missing path's error is Stat's own.
func TestStatAhead(t *testing.T) {
	for _, c := range []struct {
		name   string
		path   string
		before func(c *Client) // requests before the Stat
		asks   bool            // the Stat sends a request
	}{
		{"file", "/f", nil, false},
		{"missing", "/nope", nil, false},
		{"another request first", "/f", func(c *Client) { c.Lstat("/f") }, true},
		{"another path first", "/f", func(c *Client) { c.Stat("/g") }, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			cEnd, sEnd := net.Pipe()
			srv := newFakeServer(t, sEnd)
			srv.files["/f"] = &fakeFile{data: []byte("abc")}
			srv.files["/g"] = &fakeFile{data: []byte("x")}
			rw := &countingRW{ReadWriteCloser: cEnd}
			cl, err := NewClient(context.Background(), rw, StatAhead(c.path))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			if c.before != nil {
				c.before(cl)
			}
			rw.mu.Lock()
			if len(rw.writes) == 0 || rw.writes[0] != 3 {
				t.Errorf("NewClient's write held %v packets, want INIT, limits and STAT", rw.writes)
			}
			n := len(rw.writes)
			rw.mu.Unlock()
			a, err := cl.Stat(c.path)
			rw.mu.Lock()
			asked := len(rw.writes) > n
			rw.mu.Unlock()
			if asked != c.asks {
				t.Errorf("Stat sent a request: %v, want %v", asked, c.asks)
			}
			switch {
			case c.path == "/nope" && !errors.Is(err, fs.ErrNotExist):
				t.Errorf("Stat of a missing path: %v", err)
			case c.path == "/nope":
				var pe *fs.PathError
				if !errors.As(err, &pe) || pe.Op != "stat" || pe.Path != "/nope" {
					t.Errorf("error %#v, want Stat's own", err)
				}
			case err != nil || a.Size != 3:
				t.Errorf("Stat = %+v, %v", a, err)
			}
			// Used once.
			if _, err := cl.Stat(c.path); c.path == "/f" && err != nil {
				t.Error(err)
			}
			rw.mu.Lock()
			defer rw.mu.Unlock()
			if len(rw.writes) == n {
				t.Error("a second Stat took the answer again")
			}
		})
	}
}

// TestDownloadBatchesRequests checks that a download sends its READs in
// groups: the whole window first, then a batch at a time, and never
// more than MaxInflight outstanding (the fake server would not notice,
// so the groups' sizes are checked instead).
func TestDownloadBatchesRequests(t *testing.T) {
	data := randomBytes(300*1024+17, 9)
	cEnd, sEnd := net.Pipe()
	srv := newFakeServer(t, sEnd)
	srv.files["/f"] = &fakeFile{data: data}
	rw := &countingRW{ReadWriteCloser: cEnd}
	f := openOverFake(t, rw, "/f", ReadSize(4096), MaxInflight(16))
	rw.mu.Lock()
	before := len(rw.writes)
	rw.mu.Unlock()
	var out bytes.Buffer
	if n, err := f.WriteTo(&out); err != nil || n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("WriteTo = %d, %v (equal %v)", n, err, bytes.Equal(out.Bytes(), data))
	}
	rw.mu.Lock()
	w := rw.writes[before:]
	rw.mu.Unlock()
	// The FSTAT for the size hint goes alone; then the window of 16.
	if len(w) < 3 || w[0] != 1 || w[1] != 16 {
		t.Fatalf("writes of the download: %v", w)
	}
	reads := 0
	for _, n := range w[1:] {
		if n > 16 {
			t.Fatalf("a write of %d requests with 16 in flight: %v", n, w)
		}
		reads += n
	}
	if want := (len(data) + 4095) / 4096; reads < want {
		t.Fatalf("%d READs for %d blocks", reads, want)
	}
	if len(w)-1 > reads/2+2 {
		t.Fatalf("%d writes for %d READs: not batched (%v)", len(w)-1, reads, w)
	}
}

// simulatedLink returns the two ends of a connection over the simulator
// with latency each way.
func simulatedLink(t *testing.T, latency time.Duration) (client, server net.Conn) {
	t.Helper()
	n := netsim.New(netsim.WithLatency(latency), netsim.WithBufferSize(16<<20))
	t.Cleanup(func() { n.Close() })
	l, err := n.Listen("198.18.0.1:22")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	client, err = n.Dial(context.Background(), "198.18.0.1:22")
	if err != nil {
		t.Fatal(err)
	}
	return client, <-accepted
}

// TestDownloadGrowsInflight downloads over a link with a 30 ms round
// trip, where 64 READs of 4 KiB are one window per round trip: the
// pipeline must grow (and the data arrive intact), and it must not when
// MaxInflight fixed the number.
func TestDownloadGrowsInflight(t *testing.T) {
	data := randomBytes(8<<20, 11)
	for _, fixed := range []bool{false, true} {
		cEnd, sEnd := simulatedLink(t, 15*time.Millisecond)
		srv := newFakeServer(t, sEnd)
		srv.files["/f"] = &fakeFile{data: data}
		opts := []ClientOption{ReadSize(4096)}
		if fixed {
			opts = append(opts, MaxInflight(DefaultMaxInflight))
		}
		f := openOverFake(t, cEnd, "/f", opts...)
		var out bytes.Buffer
		if n, err := f.WriteTo(&out); err != nil || n != int64(len(data)) || !bytes.Equal(out.Bytes(), data) {
			t.Fatalf("fixed %v: WriteTo = %d, %v (equal %v)", fixed, n, err, bytes.Equal(out.Bytes(), data))
		}
		grown := f.c.grown.Load()
		lim := f.c.Limits()
		switch {
		case fixed && (grown != 0 || lim.GrowInflight != 0):
			t.Errorf("MaxInflight set: grew to %d (GrowInflight %d)", grown, lim.GrowInflight)
		case !fixed && grown < 4*DefaultMaxInflight:
			t.Errorf("in flight grew to %d of %d allowed, want at least %d", grown, lim.GrowInflight, 4*DefaultMaxInflight)
		case !fixed && grown > int64(lim.GrowInflight):
			t.Errorf("in flight grew to %d past the cap %d", grown, lim.GrowInflight)
		}
		t.Logf("fixed %v: grew to %d (cap %d)", fixed, grown, lim.GrowInflight)
	}
}

// TestUploadFillsWindow checks that an upload keeps MaxInflight WRITEs
// in flight, not a batch fewer: the fake server answers none of them
// until 16 have come, so an upload that stops short of 16 hangs.
func TestUploadFillsWindow(t *testing.T) {
	cEnd, sEnd := net.Pipe()
	srv := newFakeServer(t, sEnd)
	srv.holdWrites = 16
	c, err := NewClient(context.Background(), cEnd, WriteSize(4096), MaxInflight(16))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	f, err := c.Create("/up")
	if err != nil {
		t.Fatal(err)
	}
	data := randomBytes(40*4096+5, 12)
	done := make(chan error, 1)
	go func() {
		_, err := f.ReadFrom(bytes.NewReader(data))
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		c.Close()
		t.Fatal("upload stalled: fewer than 16 WRITEs went out before the first reply")
	}
	if got := srv.file("/up"); !bytes.Equal(got, data) {
		t.Fatalf("uploaded %d bytes, equal %v", len(got), bytes.Equal(got, data))
	}
}

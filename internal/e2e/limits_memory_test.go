package e2e

// Issue 14 item 2: the memory a peer can make the server hold is counted
// where it is held. Each test drives one pattern against a real server on
// loopback with resume on and a small budget, and compares the growth of
// the process's live heap with what the server accounts for: it must stay
// within twice the accounted bytes (plus slack for the rest of the
// process) and under the configured caps. The figures are logged (go
// test -v -run TestMemory .).
//
// Heap figures are the smallest HeapAlloc of three samples, each after a
// runtime.GC, taken once the heap has stopped growing; the slack (8 MiB)
// covers sessions, goroutines' bookkeeping and what other tests of the
// package leave behind.

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/channel"
	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/kex"
	"github.com/rsftp/rsftp/resume"
	"github.com/rsftp/rsftp/sftp"
	"github.com/rsftp/rsftp/transport"
)

const (
	memBudget   = 16 << 20 // the server-wide budget of these tests
	memSlack    = 8 << 20
	memFloor    = channel.DefaultMaxPacket
	memRetained = 8 << 20 // MaxRetainedPerSession
)

// memRig is a resumable server on loopback whose budgets count its
// channel windows (Server.WindowBudget, chb) and what its sessions retain
// (Server.RetentionBudget).
type memRig struct {
	addr             string
	root             string
	hostKey, userKey kex.Signer
	srv              *rsftp.Server
	chb              *resume.Budget
}

func newMemRig(t *testing.T) *memRig {
	t.Helper()
	r := &memRig{root: t.TempDir(), hostKey: signer(t), userKey: signer(t)}
	cfg := testServerConfig(r.hostKey, r.userKey, &sftp.ServerConfig{Root: r.root})
	cfg.Logf = func(string, ...any) {}
	cfg.Resume = &rsftp.ResumeServerConfig{Hold: time.Minute, IdleTimeout: time.Minute,
		MaxRetainedBytes: memBudget, MaxRetainedPerSession: memRetained}
	cfg.MaxWindowBytes = memBudget
	srv, err := rsftp.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.srv = srv
	r.chb = srv.WindowBudget()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = l.Addr().String()
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return r
}

// accounted is what the server counts as held for its peers.
func (r *memRig) accounted() int64 { return r.chb.Used() + r.srv.RetentionBudget().Used() }

// caps is the most the configured limits let peers make it hold: the
// window budget, which each channel may pass by one MaxPacket (its
// smallest window), and the retention budget, which each session may pass
// by resume.ControlAllowance.
func (r *memRig) caps(channels int) int64 {
	return r.chb.Limit + int64(channels)*memFloor + memBudget + resume.ControlAllowance
}

// liveHeap is the smallest HeapAlloc of three samples, each after a GC.
func liveHeap() int64 {
	best := int64(-1)
	for range 3 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if h := int64(ms.HeapAlloc); best < 0 || h < best {
			best = h
		}
	}
	return best
}

// settledHeap samples the live heap until two samples in a row differ
// by less than 256 KiB (or 5 s have passed) and returns the last.
func settledHeap(stable func() bool) int64 {
	deadline := time.Now().Add(5 * time.Second)
	prev, calm := liveHeap(), 0
	for calm < 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
		h := liveHeap()
		if d := h - prev; d < 256<<10 && d > -256<<10 && (stable == nil || stable()) {
			calm++
		} else {
			calm = 0
		}
		prev = h
	}
	return prev
}

// checkHeap logs and checks the heap growth against the accounted bytes
// and the caps.
func (r *memRig) checkHeap(t *testing.T, what string, before, after int64, channels int) {
	t.Helper()
	growth, acc, caps := after-before, r.accounted(), r.caps(channels)
	st := r.srv.ResumeStats()
	t.Logf("%s: heap growth %.1f MiB, accounted %.1f MiB (channel windows %.1f MiB, retained %.1f MiB), caps %.1f MiB",
		what, mib(growth), mib(acc), mib(r.chb.Used()), mib(st.RetainedBytes), mib(caps))
	if growth > 2*acc+memSlack {
		t.Errorf("%s: heap grew by %.1f MiB, more than twice the %.1f MiB accounted + %d MiB", what, mib(growth), mib(acc), memSlack>>20)
	}
	if acc > caps {
		t.Errorf("%s: %.1f MiB accounted, over the caps' %.1f MiB", what, mib(acc), mib(caps))
	}
	if growth > caps+memSlack {
		t.Errorf("%s: heap grew by %.1f MiB, over the caps' %.1f MiB + %d MiB", what, mib(growth), mib(caps), memSlack>>20)
	}
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// TestMemoryIdleSessionChannelsCounted: session channels that never
// start a command, each filled with data up to the window the server
// granted, make the server hold no more than it accounts for. Before the
// windows were charged, 8 channels grew the heap by 128 MiB with nothing
// accounted (16 MiB windows, uncounted).
func TestMemoryIdleSessionChannelsCounted(t *testing.T) {
	for _, n := range []int{8, 32} {
		t.Run(fmt.Sprintf("%d-channels", n), func(t *testing.T) {
			r := newMemRig(t)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cfg := r.clientConfig()
			cfg.Resume = &rsftp.ResumeConfig{NoNetworkWatch: true}
			c, err := rsftp.Dial(ctx, "tcp", r.addr, cfg)
			if err != nil {
				t.Fatal(err)
			}
			src := make([]byte, channel.DefaultWindowSize)
			before := liveHeap()

			var chans []*channel.Channel
			var granted int64
			var wg sync.WaitGroup
			for range n {
				s, err := c.NewSession(ctx)
				if err != nil {
					t.Fatal(err)
				}
				ch := s.Channel()
				_, w := ch.Windows()
				granted += int64(w)
				chans = append(chans, ch)
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						if _, err := ch.Write(src); err != nil {
							return
						}
					}
				}()
			}
			defer wg.Wait()
			defer c.Close()
			// Every window spent: the server holds what it granted.
			for i, ch := range chans {
				for {
					if _, w := ch.Windows(); w == 0 {
						break
					}
					if ctx.Err() != nil {
						t.Fatalf("channel %d: its window was never filled", i)
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			after := settledHeap(nil)
			t.Logf("%d idle session channels: %.1f MiB of windows granted and filled", n, mib(granted))
			r.checkHeap(t, fmt.Sprintf("%d idle session channels", n), before, after, n)
		})
	}
}

func (r *memRig) clientConfig() *rsftp.ClientConfig {
	lr := &limitRig{hostKey: r.hostKey, userKey: r.userKey}
	return lr.clientConfig("alice")
}

// ackDropConn is a client's transport that drops the resume ACKs the
// client sends: the server can never let go of what it retains.
type ackDropConn struct {
	*transport.Conn
	dropped atomic.Int64
}

func (c *ackDropConn) drop(p []byte) bool {
	if len(p) > 0 && p[0] == resume.MsgAck {
		c.dropped.Add(1)
		return true
	}
	return false
}

func (c *ackDropConn) WritePacket(p []byte) error {
	if c.drop(p) {
		return nil
	}
	return c.Conn.WritePacket(p)
}

func (c *ackDropConn) WritePacketBackground(p []byte) error {
	if c.drop(p) {
		return nil
	}
	return c.Conn.WritePacketBackground(p)
}

// dialNoAck logs in with resume on over a ackDropConn and starts the sftp
// subsystem on a session.
func (r *memRig) dialNoAck(t *testing.T) (*ackDropConn, *channel.Channel) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	nc, err := net.Dial("tcp", r.addr)
	if err != nil {
		t.Fatal(err)
	}
	cc := r.clientConfig()
	conn, err := transport.NewClientConn(ctx, nc, &transport.Config{Extensions: resumeExtensions,
		HostKeyCallback: func(k kex.PublicKey) error { return cc.HostKeyCallback("", 0, k) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if err := auth.Authenticate(ctx, conn, &auth.ClientConfig{User: cc.User, Methods: cc.Auth, ServerSigAlgs: conn.ServerSigAlgs}); err != nil {
		t.Fatal(err)
	}
	conn.SetAuthenticated()
	if !conn.Negotiated(resume.ClientKexName) {
		t.Fatal("resume not negotiated")
	}
	p, err := conn.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	na := &ackDropConn{Conn: conn}
	rs, err := resume.EnableClient(na, rawKey(t, conn), p)
	if err != nil {
		t.Fatal(err)
	}
	if rs.Hold() == 0 {
		t.Fatal("the server did not make the session resumable")
	}
	m := channel.NewMux(rs, nil)
	t.Cleanup(func() { m.Close() })
	s, err := m.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Subsystem(ctx, "sftp"); err != nil {
		t.Fatal(err)
	}
	return na, s.Channel()
}

// sftpReads sends READ requests and reads their replies on its own
// goroutines, counting the replies; it never acknowledges them at the
// resume layer (ackDropConn).
type sftpReads struct {
	ch      *channel.Channel
	br      *bufio.Reader
	id      uint32
	replies atomic.Int64
	data    atomic.Int64 // bytes of reply messages
	wmu     sync.Mutex
}

func (s *sftpReads) send(msg []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_, err := s.ch.Write(append(wire.AppendUint32(nil, uint32(len(msg))), msg...))
	return err
}

func (s *sftpReads) recv() ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(s.br, hdr[:]); err != nil {
		return nil, err
	}
	msg := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	_, err := io.ReadFull(s.br, msg)
	return msg, err
}

// open opens path for reading and returns its handle.
func (s *sftpReads) open(t *testing.T, path string) string {
	t.Helper()
	s.id++
	body := wire.AppendString(wire.AppendUint32([]byte{sftpOpen}, s.id), path)
	body = wire.AppendUint32(wire.AppendUint32(body, sftp.FlagRead), 0)
	if err := s.send(body); err != nil {
		t.Fatal(err)
	}
	p, err := s.recv()
	if err != nil {
		t.Fatal(err)
	}
	rd := wire.NewReader(p)
	if typ, id := rd.Byte(), rd.Uint32(); typ != sftpHandle || id != s.id {
		t.Fatalf("OPEN %s answered with type %d id %d", path, typ, id)
	}
	return rd.String()
}

// drain reads and drops replies until the channel ends.
func (s *sftpReads) drain() {
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(s.br, hdr[:]); err != nil {
			return
		}
		n := int64(binary.BigEndian.Uint32(hdr[:]))
		if _, err := s.br.Discard(int(n)); err != nil {
			return
		}
		s.replies.Add(1)
		s.data.Add(n + 4)
	}
}

// reads sends n READs of length each on handle, at offset step*i; it
// returns at once, the requests going out on their own goroutine (the
// server may stop reading them).
func (s *sftpReads) reads(handle string, n int, length uint32, step uint64) <-chan error {
	done := make(chan error, 1)
	go func() {
		for i := range n {
			s.id++
			body := wire.AppendString(wire.AppendUint32([]byte{5}, s.id), handle) // SSH_FXP_READ
			body = wire.AppendUint32(wire.AppendUint64(body, uint64(i)*step), length)
			if err := s.send(body); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	return done
}

// TestMemoryUnackedSFTPReadsCounted: a client that never acknowledges
// sends many READs over a resumable session, first of 256 KiB on a
// 1-byte file (tiny replies that once pinned a 320 KiB buffer each: 2,000
// grew the heap by 625 MiB while 46 KB were counted), then of 32 KiB on a
// large sparse file (full replies, which retention must bound). The heap
// grows no more than the server accounts for, and stays under the caps.
func TestMemoryUnackedSFTPReadsCounted(t *testing.T) {
	r := newMemRig(t)
	if err := os.WriteFile(filepath.Join(r.root, "one"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(r.root, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(4 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()

	na, ch := r.dialNoAck(t)
	s := &sftpReads{ch: ch, br: bufio.NewReaderSize(ch, 64<<10)}
	if err := s.send(wire.AppendUint32([]byte{1}, 3)); err != nil { // INIT
		t.Fatal(err)
	}
	if p, err := s.recv(); err != nil || p[0] != 2 {
		t.Fatalf("INIT: %v", err)
	}
	one, sparse := s.open(t, "/one"), s.open(t, "/sparse")
	go s.drain()
	before := liveHeap()

	// stable: no reply came since the last call.
	var seen int64 = -1
	stable := func() bool {
		n := s.replies.Load()
		ok := n == seen
		seen = n
		return ok
	}
	phase := func(what, handle string, n int, length uint32, step uint64) {
		t.Helper()
		sent := s.reads(handle, n, length, step)
		// Until every reply came, or the server stopped answering.
		deadline := time.Now().Add(8 * time.Second)
		for s.replies.Load() < int64(n) && time.Now().Before(deadline) {
			k := s.replies.Load()
			time.Sleep(300 * time.Millisecond)
			if s.replies.Load() == k {
				break
			}
		}
		after := settledHeap(stable)
		t.Logf("%s: %d replies (%.1f MiB) received, %d ACKs dropped", what, s.replies.Load(), mib(s.data.Load()), na.dropped.Load())
		r.checkHeap(t, what, before, after, 1)
		// The session channel's window holds only requests, which the
		// server reads (a few KB if it stops): what grows is what the
		// session retains, and that alone must account for it.
		if growth, ret := after-before, r.srv.ResumeStats().RetainedBytes; growth > 2*ret+memSlack {
			t.Errorf("%s: heap grew by %.1f MiB, more than twice the %.1f MiB retained + %d MiB", what, mib(growth), mib(ret), memSlack>>20)
		}
		select {
		case err := <-sent:
			if err != nil {
				t.Fatalf("%s: sending: %v", what, err)
			}
		default:
		}
	}
	phase("2000 READs of 256 KiB on a 1-byte file", one, 2000, 256<<10, 0)
	s.replies.Store(0)
	phase("2400 READs of 32 KiB on a sparse file", sparse, 2400, 32<<10, 32<<10)
}

package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/channel"
	"github.com/rsftp/rsftp/internal/netsim"
	"github.com/rsftp/rsftp/kex"
	"github.com/rsftp/rsftp/resume"
	"github.com/rsftp/rsftp/sftp"
	"github.com/rsftp/rsftp/transport"
)

// Issue 14 item 1: a full retention buffer must never block a
// resumption. Several transfers in one session, on a link that stops
// delivering but still takes writes (a large buffer in flight), fill the
// sender's retention; then the link is cut. The session must resume and
// every byte arrive once.

// stallNet is a simulated network whose links take 256 MiB in flight per
// direction: a blackholed link keeps taking writes, as a socket does
// until its buffers fill, so retention fills before writes block.
func stallNet() netsim.Option { return netsim.WithBufferSize(256 << 20) }

// cutWhenAllPast blackholes every link once each of n transfers has
// moved at least mark bytes.
type cutWhenAllPast struct {
	net  *netsim.Network
	mark int64
	mu   sync.Mutex
	seen map[int]int64
	n    int
	once sync.Once
	cut  chan struct{}
}

func newCutWhenAllPast(nw *netsim.Network, n int, mark int64) *cutWhenAllPast {
	return &cutWhenAllPast{net: nw, mark: mark, n: n, seen: map[int]int64{}, cut: make(chan struct{})}
}

func (c *cutWhenAllPast) progress(i int, n int64) {
	c.mu.Lock()
	c.seen[i] = n
	all := len(c.seen) == c.n
	for _, v := range c.seen {
		all = all && v >= c.mark
	}
	c.mu.Unlock()
	if all {
		c.once.Do(func() {
			c.net.CutAll(netsim.Blackhole)
			close(c.cut)
		})
	}
}

// TestResumeWithFullRetentionServer: eight downloads, each on its own
// channel with 512 READs of 32 KiB in flight, over a 600 ms round trip
// that keeps what the server sent unacknowledged while READs asking for
// more arrive: the server's retention fills; then the link stops
// delivering. The session resumes and every file arrives intact (before:
// the server's writers waited for room holding the lock the resend
// needs, and the transfers stuck).
func TestResumeWithFullRetentionServer(t *testing.T) {
	const files, size = 8, 16 << 20
	r := newRig(t, time.Minute, func(cfg *rsftp.ServerConfig) { cfg.Resume.IdleTimeout = 5 * time.Second },
		stallNet(), netsim.WithLatency(300*time.Millisecond))
	var want [files][32]byte
	for i := range files {
		want[i] = randomFile(t, filepath.Join(r.root, fmt.Sprint("f", i)), size)
	}
	c := r.dial(func(cfg *rsftp.ClientConfig) { cfg.Resume.AliveInterval = 500 * time.Millisecond })
	// Each transfer on its own channel (a 16 MiB window) with 512
	// requests of 32 KiB in flight, as a download whose round trip grew
	// them: five fill the 64 MiB a session retains.
	var scs [files]*sftp.Client
	for i := range files {
		scs[i], _ = openSFTP(t, c, sftp.MaxInflight(512))
	}
	// Cut once the server retains nearly all its 64 MiB allow (polled for
	// at most 20 s; without a cut the test fails below): the limit counts
	// memory, 40 KiB for each packet of 32 KiB, so about 51 MiB of
	// messages.
	cut := make(chan struct{})
	go func() {
		for range 4000 {
			if r.srv.ResumeStats().RetainedBytes >= 48<<20 {
				r.net.CutAll(netsim.Blackhole)
				close(cut)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	errs := make(chan error, files)
	for i := range files {
		go func() {
			f, err := scs[i].Open(fmt.Sprint("f", i))
			if err != nil {
				errs <- err
				return
			}
			defer f.Close()
			h := sha256.New()
			n, err := f.WriteTo(h)
			switch {
			case err != nil:
				errs <- fmt.Errorf("download %d: %d bytes, %w", i, n, err)
			case [32]byte(h.Sum(nil)) != want[i]:
				errs <- fmt.Errorf("download %d: SHA-256 differs", i)
			default:
				errs <- nil
			}
		}()
	}
	waitTransfers(t, r, errs, files, cut)
}

func TestResumeWithFullRetentionClient(t *testing.T) {
	const files, size = 5, 24 << 20
	r := newRig(t, time.Minute, nil, stallNet())
	src := t.TempDir()
	var want [files][32]byte
	for i := range files {
		want[i] = randomFile(t, filepath.Join(src, fmt.Sprint("f", i)), size)
	}
	c := r.dial(nil)
	// Each transfer on its own channel (a 16 MiB window) with 512
	// requests of 32 KiB in flight, as a download whose round trip grew
	// them: five fill the 64 MiB a session retains.
	var scs [files]*sftp.Client
	for i := range files {
		scs[i], _ = openSFTP(t, c, sftp.MaxInflight(512))
	}
	cut := newCutWhenAllPast(r.net, files, 1<<20)
	errs := make(chan error, files)
	for i := range files {
		go func() {
			in, err := os.Open(filepath.Join(src, fmt.Sprint("f", i)))
			if err != nil {
				errs <- err
				return
			}
			defer in.Close()
			f, err := scs[i].Create(fmt.Sprint("up", i))
			if err != nil {
				errs <- err
				return
			}
			pr := &progressReader{r: in, at: func(n int64) { cut.progress(i, n) }}
			if n, err := f.ReadFrom(pr); err != nil || n != size {
				errs <- fmt.Errorf("upload %d: %d bytes, %v", i, n, err)
				return
			}
			if err := f.Close(); err != nil {
				errs <- fmt.Errorf("upload %d: close: %w", i, err)
				return
			}
			if got := fileHash(t, filepath.Join(r.root, fmt.Sprint("up", i))); got != want[i] {
				errs <- fmt.Errorf("upload %d: SHA-256 differs", i)
				return
			}
			errs <- nil
		}()
	}
	waitTransfers(t, r, errs, files, cut.cut)
}

// waitTransfers waits for n transfers, the cut among them, and a
// resumption after it.
func waitTransfers(t *testing.T, r *rig, errs chan error, n int, cut chan struct{}) {
	t.Helper()
	deadline := time.After(60 * time.Second)
	for range n {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
		case <-deadline:
			t.Fatal("transfers stuck: the session did not resume with its retention full")
		}
	}
	select {
	case <-cut:
	default:
		t.Fatal("the transfers finished before the cut")
	}
	if r.clientCount(rsftp.EventResumed) < 1 {
		t.Fatal("no resumed event")
	}
}

// noAckConn is a client transport that never sends the resume layer's
// ACKs: the peer of a hostile user who wants the server to hold what it
// sends.
type noAckConn struct{ *transport.Conn }

func (c noAckConn) WritePacket(p []byte) error {
	if len(p) > 0 && p[0] == resume.MsgAck {
		return nil
	}
	return c.Conn.WritePacket(p)
}

func (c noAckConn) WritePacketBackground(p []byte) error { return c.WritePacket(p) }

// sftpPacket frames an SFTP message.
func sftpPacket(typ byte, body ...[]byte) []byte {
	n := 1
	for _, b := range body {
		n += len(b)
	}
	p := binary.BigEndian.AppendUint32(nil, uint32(n))
	p = append(p, typ)
	for _, b := range body {
		p = append(p, b...)
	}
	return p
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
func sshString(s []byte) []byte {
	return append(u32(uint32(len(s))), s...)
}

// TestResumeHostileFullRetentionKeepsServerOpen: an authenticated user
// grants a 1 GiB window, asks for 2,400 READs of 32 KiB of a sparse file
// and never acknowledges; then cuts and sends as many valid resumption
// requests as the server has unauthenticated slots, none of which reads
// its answer. The server must still accept and serve new connections.
func TestResumeHostileFullRetentionKeepsServerOpen(t *testing.T) {
	const slots = 4
	r := newRig(t, time.Minute, func(cfg *rsftp.ServerConfig) {
		cfg.MaxUnauthConns = slots
		cfg.LoginGraceTime = time.Minute
	}, stallNet())
	const reads, readLen = 2400, 32 << 10
	f, err := os.Create(filepath.Join(r.root, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(reads * readLen)
	f.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, err := r.net.Dial(ctx, r.addr)
	if err != nil {
		t.Fatal(err)
	}
	cfg := r.clientConfig(nil)
	tcfg := transport.Config{Extensions: resumeExtensions}
	tcfg.HostKeyCallback = func(k kex.PublicKey) error { return cfg.HostKeyCallback("198.18.0.1", 22, k) }
	conn, err := transport.NewClientConn(ctx, nc, &tcfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := auth.Authenticate(ctx, conn, &auth.ClientConfig{User: cfg.User, Methods: cfg.Auth}); err != nil {
		t.Fatal(err)
	}
	conn.SetAuthenticated()
	p, err := conn.ReadPacket()
	if err != nil {
		t.Fatal(err)
	}
	rk := rawKey(t, conn)
	rs, err := resume.EnableClient(noAckConn{conn}, rk, p)
	if err != nil {
		t.Fatal(err)
	}
	mux := channel.NewMux(rs, &channel.Config{WindowSize: 1 << 30})
	sess, err := mux.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Subsystem(ctx, "sftp"); err != nil {
		t.Fatal(err)
	}
	ch := sess.Channel()
	ch.Write(sftpPacket(1, u32(3)))
	ch.Write(sftpPacket(3, u32(1), sshString([]byte("sparse")), u32(1), u32(0)))
	// VERSION, then HANDLE.
	var handle []byte
	for handle == nil {
		var hdr [5]byte
		if _, err := io.ReadFull(ch, hdr[:]); err != nil {
			t.Fatal(err)
		}
		body := make([]byte, binary.BigEndian.Uint32(hdr[:4])-1)
		if _, err := io.ReadFull(ch, body); err != nil {
			t.Fatal(err)
		}
		if hdr[4] == 102 {
			handle = body[8 : 8+binary.BigEndian.Uint32(body[4:8])]
		}
	}
	var batch []byte
	for i := range reads {
		batch = append(batch, sftpPacket(5, u32(uint32(10+i)), sshString(handle), u64(uint64(i)*readLen), u32(readLen))...)
	}
	if _, err := ch.Write(batch); err != nil {
		t.Fatal(err)
	}
	// Let the server fill what it retains for us; we read nothing more.
	time.Sleep(2 * time.Second)
	handleID := rs.Handle()
	received := rs.Stats().Received
	r.net.CutAll(netsim.Blackhole)

	// Valid resumption requests, one per unauthenticated slot, none
	// reading its answer.
	for range slots {
		nc, err := r.net.Dial(ctx, r.addr)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := transport.NewClientConn(ctx, nc, &tcfg)
		if err != nil {
			t.Fatal(err)
		}
		req := &resume.Request{Handle: handleID, Received: received, MAC: resume.RequestMAC(rk, c2.SessionID(), handleID, received)}
		if err := c2.WritePacket(req.Marshal()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c2.Abort() })
	}
	// A new user still gets in and is served.
	time.Sleep(500 * time.Millisecond)
	done := make(chan error, 1)
	go func() {
		c := r.dial(func(cfg *rsftp.ClientConfig) { cfg.Resume = nil })
		sc := r.sftp(c)
		_, err := sc.Stat("sparse")
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the server accepts no new connection while the hostile session's resumptions hang")
	}
}

// TestResumeReconnectPinsHostKey: a client whose host key callback
// accepts any key (StrictHostKeyChecking=no, say) must still resume only
// with the server it first met: a man in the middle with another key
// could otherwise answer RESUME_FAILURE and make it abandon its session.
// While reconnections reach an impostor, the session stays detached; once
// they reach the real server again, it resumes.
func TestResumeReconnectPinsHostKey(t *testing.T) {
	r := newRig(t, time.Minute, nil)
	// The impostor: another server, another host key, resumable too,
	// which knows no session (it would answer "unknown session").
	imp := newRig(t, time.Minute, nil)
	var toImpostor atomic.Bool
	c := r.dial(func(cfg *rsftp.ClientConfig) {
		cfg.HostKeyCallback = func(string, int, kex.PublicKey) error { return nil }
		cfg.Resume.Redial = func(ctx context.Context) (net.Conn, error) {
			if toImpostor.Load() {
				return imp.net.Dial(ctx, imp.addr)
			}
			return r.net.Dial(ctx, r.addr)
		}
	})
	out, err := sessionOutput(c, "before")
	if err != nil || out != "before" {
		t.Fatalf("echo: %q, %v", out, err)
	}
	toImpostor.Store(true)
	r.net.CutAll(netsim.Reset)
	deadline := time.Now().Add(10 * time.Second)
	for r.clientCount(rsftp.EventResumeFailed) < 3 {
		if rs := resumeStatus(t, c); rs.State == resume.Closed {
			t.Fatalf("the client abandoned its session after meeting another host key: %v", rs.Err)
		}
		if time.Now().After(deadline) {
			t.Fatal("no failed attempts against the impostor")
		}
		time.Sleep(10 * time.Millisecond)
	}
	toImpostor.Store(false)
	r.waitResumed(1, 10*time.Second)
	if out, err := sessionOutput(c, "after"); err != nil || out != "after" {
		t.Fatalf("echo after resuming: %q, %v", out, err)
	}
}

package rsftp_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/rsftp/rsftp/channel"
	"github.com/rsftp/rsftp/internal/sshtest"
	"github.com/rsftp/rsftp/sftp"
)

// lagRelay forwards TCP connections to target, each byte delivered d
// after it arrived, both ways: a link with a round trip of 2d.
func lagRelay(t *testing.T, target string, d time.Duration) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			a, err := l.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", target)
			if err != nil {
				a.Close()
				continue
			}
			wg.Add(2)
			go func() { defer wg.Done(); lagCopy(b, a, d) }()
			go func() { defer wg.Done(); lagCopy(a, b, d) }()
		}
	}()
	return l.Addr().String()
}

// lagCopy copies src to dst, each chunk written d after it was read, and
// closes both at the end.
func lagCopy(dst, src net.Conn, d time.Duration) {
	type chunk struct {
		b  []byte
		at time.Time
	}
	q := make(chan chunk, 1<<14)
	go func() {
		defer close(q)
		for {
			b := make([]byte, 256<<10)
			n, err := src.Read(b)
			if n > 0 {
				q <- chunk{b[:n], time.Now().Add(d)}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range q {
		time.Sleep(time.Until(c.at))
		if _, err := dst.Write(c.b); err != nil {
			break
		}
	}
	dst.Close()
	src.Close()
	for range q {
	}
}

// TestInteropGrownWindowFromSshd downloads from OpenSSH's sshd and
// sftp-server through a relay with a 200 ms round trip, where the first
// 64 READs are one window per round trip: the download must grow its
// READs in flight and its channel's window (WINDOW_ADJUSTs past the
// 16 MiB it opened with), and the file must arrive intact.
func TestInteropGrownWindowFromSshd(t *testing.T) {
	dir := t.TempDir()
	kp := sshtest.KeyGen(t, dir, "ed25519", 0)
	pub, _ := os.ReadFile(kp + ".pub")
	sshd := sshtest.StartSshd(t, string(pub))
	key := loadSigner(t, kp)
	addr := lagRelay(t, sshd.Addr(), 100*time.Millisecond)
	c := dialAddr(t, addr, loadSigner(t, sshd.HostKey).PublicKey(), key)

	remote := filepath.Join(dir, "big")
	data := make([]byte, 96<<20)
	rand.Read(data)
	if err := os.WriteFile(remote, data, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sess, err := c.NewSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Subsystem(ctx, "sftp"); err != nil {
		t.Fatal(err)
	}
	sc, err := sftp.NewClient(ctx, sess.Channel())
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	start := sc.ReadsInFlight()
	local := filepath.Join(t.TempDir(), "dl")
	if err := sc.Download(ctx, remote, local, sftp.TransferOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(local)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("downloaded %d bytes, equal %v, %v", len(got), bytes.Equal(got, data), err)
	}
	grown := sc.ReadsInFlight()
	rx, _ := sess.Channel().Windows()
	t.Logf("READs in flight %d -> %d (cap %d, %d-byte READs); receive window now %d", start, grown, sc.Limits().GrowInflight, sc.Limits().ReadSize, rx)
	if grown <= start {
		t.Fatalf("READs in flight stayed at %d over a 200 ms round trip", start)
	}
	// What is left of the window after the last adjust; without growth
	// it can never pass the size the channel opened with.
	if rx <= channel.DefaultWindowSize {
		t.Fatalf("receive window %d: it did not grow past %d", rx, channel.DefaultWindowSize)
	}
}

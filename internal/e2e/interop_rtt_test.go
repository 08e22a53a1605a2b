package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/channel"
	"github.com/rsftp/rsftp/internal/netsim"
	"github.com/rsftp/rsftp/internal/sshtest"
	"github.com/rsftp/rsftp/sftp"
)

// TestInteropGrownWindowFromSshd downloads from OpenSSH's sshd and
// sftp-server over the simulator with a 200 ms round trip (its far end
// forwards to sshd over loopback), where the first 64 READs are one
// window per round trip: the download must grow its READs in flight and
// its channel's window (WINDOW_ADJUSTs past the 16 MiB it opened with),
// and the file must arrive intact.
func TestInteropGrownWindowFromSshd(t *testing.T) {
	dir := t.TempDir()
	kp := sshtest.KeyGen(t, dir, "ed25519", 0)
	pub, _ := os.ReadFile(kp + ".pub")
	sshd := sshtest.StartSshd(t, string(pub))
	key := loadSigner(t, kp)
	n := netsim.New(netsim.WithLatency(100*time.Millisecond), netsim.WithBufferSize(256<<20))
	t.Cleanup(func() { n.Close() })
	const addr = "198.18.0.1:22"
	l, err := n.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			a, err := l.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", sshd.Addr())
			if err != nil {
				a.Close()
				continue
			}
			go func() { io.Copy(a, b); a.Close() }()
			go func() { io.Copy(b, a); b.Close() }()
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nc, err := n.Dial(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := rsftp.NewClient(ctx, nc, addr, clientConfigFor(t, loadSigner(t, sshd.HostKey).PublicKey(), key, nil))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	remote := filepath.Join(dir, "big")
	data := make([]byte, 96<<20)
	rand.Read(data)
	if err := os.WriteFile(remote, data, 0o600); err != nil {
		t.Fatal(err)
	}
	sc, sess := openSFTP(t, c)
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

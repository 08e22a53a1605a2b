package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/sshtest"
	"github.com/rsftp/rsftp/sftp"
)

// TestUploadStreamsToSshd: a large upload to Debian's sshd spreads over
// more SFTP sessions of the connection (sshd grants each a 2 MiB window),
// as many as its MaxSessions allows (the rest are refused, and the
// upload goes on without them); the file comes out whole, and a resumed
// upload of a cut-back copy completes it.
func TestUploadStreamsToSshd(t *testing.T) {
	dir := t.TempDir()
	kp := sshtest.KeyGen(t, dir, "ed25519", 0)
	pub, _ := os.ReadFile(kp + ".pub")
	sshd := sshtest.StartSshd(t, string(pub), "MaxSessions 4")
	c := dialSshd(t, sshd, loadSigner(t, kp), nil)
	ctx := context.Background()
	sc, err := c.SFTP(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()

	data := make([]byte, 40<<20+4321)
	rand.Read(data)
	local := filepath.Join(dir, "src")
	if err := os.WriteFile(local, data, 0o644); err != nil {
		t.Fatal(err)
	}
	remote := filepath.Join(dir, "dst")
	// Streams 10, as an automatic choice makes it for sshd's 2 MiB
	// windows over a distant link (on loopback the automatic choice is
	// one session: TestStreamCountByRoundTrip).
	if err := sc.Upload(ctx, local, remote, sftp.TransferOptions{Streams: sftp.DefaultStreams}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(remote); !bytes.Equal(got, data) {
		t.Fatalf("the uploaded file is %d bytes (equal: false), want %d", len(got), len(data))
	}
	// MaxSessions 4: the client's own session and three more (those
	// still opening when the upload ended come to the client after).
	waitStreams(t, sc, 3)

	// Cut the copy back and resume: the sessions are reused.
	if err := os.Truncate(remote, 5<<20+17); err != nil {
		t.Fatal(err)
	}
	if err := sc.Upload(ctx, local, remote, sftp.TransferOptions{Resume: true, Streams: sftp.DefaultStreams}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(remote); !bytes.Equal(got, data) {
		t.Fatalf("after the resume the file is %d bytes (equal: false), want %d", len(got), len(data))
	}
	if n := sc.Streams(); n != 3 {
		t.Errorf("the client holds %d more sessions after the resume, want the same 3", n)
	}
}

// waitStreams waits up to 10 s for sc to hold n more sessions.
func waitStreams(t *testing.T, sc *sftp.Client, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); sc.Streams() != n; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the client holds %d more sessions, want %d", sc.Streams(), n)
		}
	}
}

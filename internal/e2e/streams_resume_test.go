package e2e

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/rsftp/rsftp/internal/netsim"
	"github.com/rsftp/rsftp/sftp"
)

// TestResumeUploadStreamsAcrossCuts: an upload spread over four SFTP
// sessions of a resumable connection, with the link cut three times:
// every session survives each cut and the file arrives exactly (equal
// SHA-256).
func TestResumeUploadStreamsAcrossCuts(t *testing.T) {
	const size = 40 << 20
	r := newRig(t, time.Minute, nil, netsim.WithLatency(2*time.Millisecond))
	local := filepath.Join(t.TempDir(), "src")
	want := randomFile(t, local, size)
	c := r.dial(nil)
	if !c.Resumable() {
		t.Fatal("session not resumable")
	}
	sc, err := c.SFTP(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	cut := &cutter{net: r.net, r: r, marks: []int64{size / 4, size / 2, 3 * size / 4},
		modes: []netsim.CutMode{netsim.Reset, netsim.Blackhole}}
	opt := sftp.TransferOptions{Streams: 4, Progress: func(ev sftp.ProgressEvent) { cut.at(ev.Done) }}
	if err := sc.Upload(context.Background(), local, "up", opt); err != nil {
		t.Fatal(err)
	}
	if got := fileHash(t, filepath.Join(r.root, "up")); got != want {
		t.Fatal("upload: SHA-256 differs")
	}
	if cut.done() != 3 {
		t.Fatalf("%d cuts, want 3", cut.done())
	}
	r.waitResumed(cut.done(), 10*time.Second)
	waitStreams(t, sc, 3)
}

package e2e

import (
	"crypto/sha256"
	"path/filepath"
	"testing"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/internal/netsim"
	"github.com/rsftp/rsftp/kex"
)

// TestResumeWithEachKexMethod: a session resumes whatever key exchange
// its first connection used, the resume key taking that method's hash
// (SHA-512 for sntrup761x25519: a 64-byte RK, docs/PROTOCOL.resume.md
// section 4.1), and its reconnections may use it too.
func TestResumeWithEachKexMethod(t *testing.T) {
	for _, method := range kex.SupportedMethods() {
		t.Run(method, func(t *testing.T) {
			const size = 8 << 20
			r := newRig(t, time.Minute, nil, netsim.WithLatency(2*time.Millisecond))
			want := randomFile(t, filepath.Join(r.root, "f"), size)
			c := r.dial(func(cfg *rsftp.ClientConfig) { cfg.Transport.KexAlgorithms = []string{method} })
			if !c.Resumable() {
				t.Fatal("session not resumable")
			}
			if got := c.Transport().Algorithms().Kex; got != method {
				t.Fatalf("negotiated %s", got)
			}
			sc := r.sftp(c)
			cut := &cutter{net: r.net, r: r, marks: []int64{size / 3, 2 * size / 3}, modes: []netsim.CutMode{netsim.Reset}}
			h := sha256.New()
			f, err := sc.Open("f")
			if err != nil {
				t.Fatal(err)
			}
			if n, err := f.WriteTo(&progressWriter{h: h, at: cut.at}); err != nil || n != size {
				t.Fatalf("download: %d bytes, %v", n, err)
			}
			f.Close()
			if [32]byte(h.Sum(nil)) != want {
				t.Fatal("download: SHA-256 differs")
			}
			// The second cut waits for the first resumption: a fast
			// transfer may end before it.
			if cut.done() < 1 {
				t.Fatal("no cut made")
			}
			r.waitResumed(cut.done(), 10*time.Second)
		})
	}
}

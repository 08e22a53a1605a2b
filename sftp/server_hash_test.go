package sftp

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rsftp/rsftp/internal/wire"
)

// TestServerHashRangeBoundedPerRequest: one hash-range request (70 bytes)
// hashes at most 256 MiB, about a second of a core, however much it asks
// for, and says how much in its count; the rest is had by asking again
// from there. (The bound was 64 GiB: some 200 s of a core.)
func TestServerHashRangeBoundedPerRequest(t *testing.T) {
	const perRequest = 256 << 20
	if maxHashRange > perRequest {
		t.Fatalf("maxHashRange is %d bytes, above %d", maxHashRange, perRequest)
	}
	root := t.TempDir()
	const extra = 1 << 20
	size := int64(4*perRequest + extra)
	f, err := os.Create(filepath.Join(root, "sparse"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	h := newSrvHarness(t, &ServerConfig{Root: root})
	zeros := make([]byte, 1<<20)
	hashZeros := func(n int) []byte {
		d := sha256.New()
		for ; n > 0; n -= len(zeros) {
			d.Write(zeros[:min(n, len(zeros))])
		}
		return d.Sum(nil)
	}
	for _, c := range []struct{ off, n, want uint64 }{
		{0, 1 << 62, maxHashRange},
		{uint64(size) - extra, 1 << 62, extra},
	} {
		rt, r := h.rpc(typeExtended, srvStr(extHashRange), srvStr("sparse"), srvU64(c.off), srvU64(c.n), srvStr("sha256"))
		if rt != typeExtendedReply {
			t.Fatalf("hash-range %+v: reply %d", c, rt)
		}
		alg, n, sum := r.String(), r.Uint64(), r.Bytes()
		if r.Done() != nil || alg != "sha256" {
			t.Fatalf("hash-range reply: %q %v", alg, r.Done())
		}
		if n != c.want {
			t.Errorf("hash-range %+v hashed %d bytes, want %d", c, n, c.want)
			continue
		}
		if !bytes.Equal(sum, hashZeros(int(n))) {
			t.Errorf("hash-range %+v: wrong digest", c)
		}
	}
}

// TestClientResumeOverHashBound: the client's resume check asks for the
// whole prefix and follows the server's short counts, so a prefix many
// times the server's per-request bound is verified (and a difference past
// the first range found).
func TestClientResumeOverHashBound(t *testing.T) {
	root, dst := t.TempDir(), t.TempDir()
	data := randBytes(t, 300<<10)
	mustWrite(t, filepath.Join(root, "f"), data)
	cEnd, sEnd := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, sEnd, &ServerConfig{Root: root, maxHash: 32 << 10}) }()
	c, err := NewClient(context.Background(), cEnd)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		cancel()
		<-done
	})
	local := filepath.Join(dst, "f")
	mustWrite(t, local, data[:200<<10])
	if err := c.Download(context.Background(), "/f", local, TransferOptions{Resume: true}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(local); !bytes.Equal(got, data) {
		t.Fatal("resumed download differs")
	}
	bad := bytes.Clone(data[:200<<10])
	bad[150<<10] ^= 1
	mustWrite(t, local, bad)
	if err := c.Download(context.Background(), "/f", local, TransferOptions{Resume: true}); err == nil || !strings.Contains(err.Error(), "differs") {
		t.Fatalf("resume over a differing prefix: %v", err)
	}
}

// TestServerHashRangeSharesSlots: hash-range requests of all sessions
// share a few slots (hashSlots, half the cores), so cheap requests from
// many sessions cannot occupy every core. With the slots taken, a request
// waits and hashes nothing until one is free.
func TestServerHashRangeSharesSlots(t *testing.T) {
	root := t.TempDir()
	data := randBytes(t, 4096)
	mustWrite(t, filepath.Join(root, "f"), data)
	gate := make(chan struct{}, 1)
	gate <- struct{}{} // another session hashing
	waiting := make(chan struct{}, 1)
	h := newSrvHarness(t, &ServerConfig{Root: root, hashGate: gate, hashWait: func() { waiting <- struct{}{} }})
	h.id++
	h.sendRaw(srvPacket(typeExtended, srvU32(h.id), srvStr(extHashRange), srvStr("f"), srvU64(0), srvU64(4096), srvStr("sha256")))
	type reply struct {
		b   []byte
		err error
	}
	replies := make(chan reply, 1)
	go func() {
		var hdr [4]byte
		if _, err := io.ReadFull(h.cr, hdr[:]); err != nil {
			replies <- reply{err: err}
			return
		}
		n := binary.BigEndian.Uint32(hdr[:])
		if n > MaxPacket {
			replies <- reply{err: errors.New("reply too long")}
			return
		}
		b := make([]byte, n)
		_, err := io.ReadFull(h.cr, b)
		replies <- reply{b, err}
	}()
	select {
	case r := <-replies:
		t.Fatalf("hash-range answered while every slot was taken: %x %v", r.b, r.err)
	case <-waiting:
	}
	<-gate // the other session is done
	r := <-replies
	if r.err != nil {
		t.Fatal(r.err)
	}
	if len(r.b) < 5 || r.b[0] != typeExtendedReply {
		t.Fatalf("reply %x", r.b)
	}
	rd := wire.NewReader(r.b[5:])
	alg, n, sum := rd.String(), rd.Uint64(), rd.Bytes()
	want := sha256.Sum256(data)
	if rd.Done() != nil || alg != "sha256" || n != 4096 || !bytes.Equal(sum, want[:]) {
		t.Fatalf("hash-range after the wait: %q %d %x %v", alg, n, sum, rd.Done())
	}
	if len(gate) != 0 {
		t.Errorf("the request kept its slot: %d taken", len(gate))
	}
}

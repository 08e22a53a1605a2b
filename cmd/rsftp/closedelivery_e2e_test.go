//go:build unix

package main

import (
	"bytes"
	"context"
	"crypto"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rsftp/rsftp"
	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/internal/sshtest"
	"github.com/rsftp/rsftp/kex"
)

// TestHelperConnCloseDelivers: what was written to a helper's exec
// channel before a graceful close (CloseWrite, then Close, as the inner
// connection ends with its DISCONNECT) reaches the remote command, even
// when the command has not read it yet when Close is called. sshd drops
// the channel data it still holds for the command when the client's
// DISCONNECT follows, so Close waits for the command's output to end
// first; without that wait the command here got 64 KiB of 256.
func TestHelperConnCloseDelivers(t *testing.T) {
	dir := t.TempDir()
	key := sshtest.KeyGen(t, dir, "ed25519", 0)
	pub, _ := os.ReadFile(key + ".pub")
	sshd := sshtest.StartSshd(t, string(pub))
	data, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	k, _, err := auth.ParsePrivateKey(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, err := net.Dial("tcp", sshd.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c, err := rsftp.NewClient(ctx, nc, sshd.Addr(), &rsftp.ClientConfig{User: sshtest.User(t),
		Auth:            []auth.Method{auth.PublicKeys(k.(crypto.Signer))},
		HostKeyCallback: func(string, int, kex.PublicKey) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out := filepath.Join(dir, "out")
	// The command reads nothing for a moment: sshd holds what comes
	// meanwhile beyond the pipe's 64 KiB.
	hc, err := execConn(ctx, c, "sleep 0.2; cat > "+out)
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte("delivered "), 256<<10/10)
	if _, err := hc.Write(want); err != nil {
		t.Fatal(err)
	}
	hc.CloseWrite()
	hc.Close()
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the command got %d bytes of %d (%v)", len(got), len(want), err)
	}
}

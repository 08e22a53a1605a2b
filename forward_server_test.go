package rsftp

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/kex"
)

func internalSigner(t *testing.T) kex.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := kex.NewSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestServerPendingForwardsBounded: connections to a remote forward
// whose channels the client has not answered are at most
// MaxPendingForwardsPerConn; the others wait in the backlog and come
// through, every one, as the client accepts.
func TestServerPendingForwardsBounded(t *testing.T) {
	const limit, conns = 2, 6
	ctx := context.Background()
	hostKey, userKey := internalSigner(t), internalSigner(t)
	srv, err := NewServer(&ServerConfig{
		HostKeys: []kex.Signer{hostKey},
		Auth: auth.ServerConfig{PublicKeyCallback: func(string, kex.PublicKey) (*auth.Permissions, error) {
			return &auth.Permissions{}, nil
		}},
		AllowRemoteForwarding:     func(string, string, int) bool { return true },
		MaxPendingForwardsPerConn: limit,
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	c, err := Dial(ctx, "tcp", ln.Addr().String(), &ClientConfig{
		User: "u",
		Auth: []auth.Method{auth.PublicKeySigners(userKey)},
		HostKeyCallback: func(_ string, _ int, k kex.PublicKey) error {
			if !bytes.Equal(k.Marshal(), hostKey.PublicKey().Marshal()) {
				return errors.New("host key mismatch")
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	l, err := c.ListenTCP(ctx, "127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	fl := l.(*forwardListener)
	var outer []net.Conn
	for range conns {
		tc, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer tc.Close()
		outer = append(outer, tc)
	}
	for got := 0; got < conns; {
		// The client holds, unanswered, what the server has opened.
		deadline := time.Now().Add(10 * time.Second)
		for len(fl.queue) < min(limit, conns-got) {
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d connections came through", got, conns)
			}
			time.Sleep(2 * time.Millisecond)
		}
		if n := len(fl.queue); n > limit {
			t.Fatalf("%d channel opens pending, more than the limit %d", n, limit)
		}
		fc, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		fc.Close()
		got++
	}
}

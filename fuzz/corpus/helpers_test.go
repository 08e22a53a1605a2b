package corpus

import (
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net"
	"testing"

	"github.com/rsftp/rsftp/kex"
)

// The few helpers the recorder shares with the end-to-end tests
// (internal/e2e), copied rather than exported from there.

// signer makes a fresh ed25519 host or user key.
func signer(t testing.TB) kex.Signer {
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

// forwardTarget is a loopback TCP echo service for direct-tcpip channels;
// it returns its port.
func forwardTarget(t *testing.T) int {
	return serveLoopbackTCP(t, func(c net.Conn) { io.Copy(c, c) })
}

// serveLoopbackTCP listens on a loopback port until the test ends and
// runs handle on each connection it accepts, closing it afterwards.
func serveLoopbackTCP(t *testing.T, handle func(net.Conn)) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

//go:build unix

package transport

import (
	"net"
	"testing"
)

// countingConn is a caller's wrapper of a TCP connection: embedding the
// *net.TCPConn gives it SyscallConn as well as its own Read.
type countingConn struct {
	*net.TCPConn
	read int
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.TCPConn.Read(p)
	c.read += n
	return n, err
}

// TestRawConnOnlyOwnSockets: the descriptor is used directly only for
// the standard library's sockets, never for a wrapper whose Read and
// Write would be bypassed.
func TestRawConnOnlyOwnSockets(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if rawConn(c) == nil {
		t.Error("a *net.TCPConn got no descriptor")
	}
	if rawConn(&countingConn{TCPConn: c.(*net.TCPConn)}) != nil {
		t.Error("a wrapper embedding a *net.TCPConn got its descriptor: its Read would be bypassed")
	}
}

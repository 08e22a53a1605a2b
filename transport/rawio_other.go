//go:build !unix

package transport

import (
	"io"
	"net"
	"syscall"
)

// rawConn returns nil: every background write goes through writeLoop and
// every read through the net.Conn.
func rawConn(net.Conn) syscall.RawConn { return nil }

// writeNow writes nothing (rawConn gives it no descriptor).
func writeNow(syscall.RawConn, []byte) (int, error) { return 0, errWouldBlock }

// rawReader returns nil.
func rawReader(net.Conn, syscall.RawConn) io.Reader { return nil }

//go:build unix && !linux

package transport

import (
	"io"
	"net"
	"syscall"
)

// writeFd writes p to the non-blocking fd once.
func writeFd(fd uintptr, p []byte) (int, syscall.Errno) {
	n, err := syscall.Write(int(fd), p)
	if err != nil {
		if errno, ok := err.(syscall.Errno); ok {
			return 0, errno
		}
		return 0, syscall.EIO
	}
	return n, 0
}

// rawReader returns nil: the connection is read through its net.Conn
// (Linux reads it without entering a system call in the runtime's
// sense, rawio_linux.go).
func rawReader(net.Conn, syscall.RawConn) io.Reader { return nil }

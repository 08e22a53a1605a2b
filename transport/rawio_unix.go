//go:build unix

package transport

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// rawConn returns nc's descriptor for writeNow and readNow, or nil where
// nc has none (pipes, wrappers: every background write then goes through
// writeLoop, every read through nc) or it is not non-blocking (a
// descriptor Go's runtime does not poll, which a write or read here
// could block on). Only the standard library's own sockets qualify: a
// caller's type that embeds a *net.TCPConn has its SyscallConn too, and
// reading or writing its descriptor would go around what its own Read
// and Write add (a count, a rate limit, a record of the bytes).
func rawConn(nc net.Conn) syscall.RawConn {
	var sc syscall.Conn
	switch c := nc.(type) {
	case *net.TCPConn:
		sc = c
	case *net.UnixConn:
		sc = c
	default:
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	nonblock := false
	if rc.Control(func(fd uintptr) {
		fl, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
		nonblock = err == nil && fl&unix.O_NONBLOCK != 0
	}) != nil || !nonblock {
		return nil
	}
	return rc
}

// writeNow writes as much of p as the socket under rc takes without
// waiting: one write(2) on the non-blocking descriptor Go's runtime
// keeps, never parked in the poller. It returns errWouldBlock when the
// socket took less than p (n bytes went) or could not be written now
// (closed, or its deadline passed: a blocking write says which).
func writeNow(rc syscall.RawConn, p []byte) (n int, err error) {
	var errno syscall.Errno
	if rc.Write(func(fd uintptr) bool {
		for {
			n, errno = writeFd(fd, p)
			if errno != syscall.EINTR {
				return true
			}
		}
	}) != nil {
		return 0, errWouldBlock
	}
	switch {
	case errno == syscall.EAGAIN:
		return 0, errWouldBlock
	case errno != 0:
		return 0, errno
	case n < len(p):
		return n, errWouldBlock
	}
	return n, nil
}

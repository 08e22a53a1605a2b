//go:build unix

package tlsresume

import (
	"errors"
	"syscall"
)

// writeNow writes as much of p as the socket under rc takes without
// waiting: one write(2) on the non-blocking descriptor Go's runtime keeps.
// errWouldBlock says the socket took no more (n bytes went).
func writeNow(rc syscall.RawConn, p []byte) (n int, err error) {
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		for {
			n, werr = syscall.Write(int(fd), p)
			if werr != syscall.EINTR {
				return true
			}
		}
	})
	n = max(n, 0)
	switch {
	case err != nil:
		// The descriptor is closed, or its write deadline passed: the
		// writer goroutine's write says which.
		return 0, errWouldBlock
	case errors.Is(werr, syscall.EAGAIN):
		return n, errWouldBlock
	}
	return n, werr
}

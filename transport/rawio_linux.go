package transport

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// writeFd writes p to the non-blocking fd once. On Linux it does so
// without telling the runtime it entered a system call, as
// ptyMaster's readNoWait in the module root reads a terminal: such a
// write never waits for room (EAGAIN), and it spares the wake-up of the
// runtime's monitor thread that every system call entered while it sleeps
// costs (entersyscall wakes it, and it then polls every 20 µs to 10 ms).
func writeFd(fd uintptr, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), 0
}

// rawReader returns a reader of rc's non-blocking socket that reads as
// writeFd writes, without entering a system call in the runtime's sense,
// and waits in the runtime's poller when nothing is there: the goroutine
// that reads a connection wakes the runtime's monitor no more. Measured
// on rsftp ssh receiving a terminal's output (128 MiB, issue 18): the
// client's futex calls fell from about 4,300 to 360 and its nanosleeps
// from 5,500 to 360, nearly all of them the monitor's.
// Its errors are nc's own (a *net.OpError around the system call's).
func rawReader(nc net.Conn, rc syscall.RawConn) io.Reader { return rawRead{nc, rc} }

type rawRead struct {
	nc net.Conn
	rc syscall.RawConn
}

func (r rawRead) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	var n int
	var errno syscall.Errno
	err := r.rc.Read(func(fd uintptr) bool {
		for {
			k, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
			switch e {
			case syscall.EINTR:
				continue
			case syscall.EAGAIN:
				return false // wait in the poller
			}
			n, errno = int(k), e
			return true
		}
	})
	switch {
	case err != nil:
		// Closed (net.ErrClosed), or the read deadline passed
		// (os.ErrDeadlineExceeded).
	case errno != 0:
		err = os.NewSyscallError("read", errno)
	case n == 0:
		return 0, io.EOF
	default:
		return n, nil
	}
	return 0, &net.OpError{Op: "read", Net: r.nc.LocalAddr().Network(), Source: r.nc.LocalAddr(), Addr: r.nc.RemoteAddr(), Err: err}
}

package transport

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// unacked returns how many bytes written to nc the peer has not yet
// acknowledged (Linux's SIOCOUTQ: unsent plus in flight, a FIN counting
// one), and false when nc cannot tell.
func unacked(nc net.Conn) (int, bool) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return 0, false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false
	}
	n, ioErr := 0, error(nil)
	if err := rc.Control(func(fd uintptr) { n, ioErr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ) }); err != nil || ioErr != nil {
		return 0, false
	}
	return n, true
}

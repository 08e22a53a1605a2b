//go:build darwin || (freebsd && (amd64 || arm64 || riscv64))

package netwatch

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// New starts watching a routing socket (PF_ROUTE) for address, route and
// interface changes: RTM_NEWADDR, RTM_DELADDR, RTM_IFINFO (and freebsd's
// RTM_IFANNOUNCE), RTM_ADD, RTM_DELETE, RTM_CHANGE. The messages are
// decoded and reduced in rtmsg.go, with this system's sysDialect
// (netwatch_darwin.go, netwatch_freebsd.go).
func New() (*Watcher, error) {
	// As the net package does where a socket cannot be created
	// close-on-exec: no fork between creating and marking it.
	syscall.ForkLock.RLock()
	fd, err := unix.Socket(unix.AF_ROUTE, unix.SOCK_RAW, unix.AF_UNSPEC)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("netwatch: routing socket: %w", err)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("netwatch: routing socket: %w", err)
	}
	reportOverflow(fd)
	// The non-blocking fd is registered with the runtime poller (kqueue),
	// so a read waits without holding a thread and f.Close unblocks it.
	f := os.NewFile(uintptr(fd), "route")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("netwatch: %w", err)
	}
	w := &Watcher{
		changes: make(chan struct{}, 1),
		done:    make(chan struct{}),
		stop:    f.Close,
	}
	go w.run(rc)
	return w, nil
}

// run reads messages until the socket is closed. A routing socket
// returns one message per read; the largest (an rt_msghdr and eight
// sockaddrs) is well under the buffer.
func (w *Watcher) run(rc syscall.RawConn) {
	defer close(w.done)
	buf := make([]byte, 16<<10)
	for {
		var (
			n    int
			rerr error
		)
		err := rc.Read(func(fd uintptr) bool {
			n, rerr = unix.Read(int(fd), buf)
			return rerr != unix.EAGAIN
		})
		switch {
		case err != nil:
			return // closed by Close
		case rerr == unix.EINTR:
			continue
		case rerr == unix.ENOBUFS:
			// The socket's buffer overflowed and messages were lost:
			// assume something changed.
			w.notify()
			continue
		case rerr != nil || n == 0:
			return // unexpected socket error: stop watching
		}
		// A message that cannot be decoded in full still counts for
		// what its type says (rtmsg.go); one whose length is wrong,
		// only for the messages read before it.
		if c, _ := rtChanges(sysDialect, buf[:n]); c != 0 {
			w.notify()
		}
	}
}

package netwatch

import (
	"fmt"
	"os"
	"syscall"
)

// Legacy rtnetlink multicast group bits from <linux/rtnetlink.h>
// (RTMGRP_x == 1 << (RTNLGRP_x - 1)); the syscall package lacks them.
const (
	rtmgrpLink       = 0x1
	rtmgrpIPv4IfAddr = 0x10
	rtmgrpIPv4Route  = 0x40
	rtmgrpIPv6IfAddr = 0x100
	rtmgrpIPv6Route  = 0x400
)

// groups are the rtnetlink multicast groups the watcher joins: address and
// route changes for IPv4 and IPv6, and link state changes.
const groups = rtmgrpLink |
	rtmgrpIPv4IfAddr | rtmgrpIPv6IfAddr |
	rtmgrpIPv4Route | rtmgrpIPv6Route

// New starts watching rtnetlink for address, route and link changes.
func New() (*Watcher, error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK,
		syscall.SOCK_RAW|syscall.SOCK_CLOEXEC|syscall.SOCK_NONBLOCK, syscall.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netwatch: netlink socket: %w", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK, Groups: groups}); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("netwatch: netlink bind: %w", err)
	}
	// The non-blocking fd is registered with the runtime poller, so a read
	// waits without holding a thread and f.Close unblocks it at once. The
	// os.File also owns the fd, so it is never closed under a pending read.
	f := os.NewFile(uintptr(fd), "netlink-route")
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

// run reads notifications until the socket is closed. It is the watcher's
// only goroutine and reuses a single buffer.
func (w *Watcher) run(rc syscall.RawConn) {
	defer close(w.done)
	buf := make([]byte, 64<<10)
	for {
		var (
			n    int
			from syscall.Sockaddr
			rerr error
		)
		err := rc.Read(func(fd uintptr) bool {
			n, from, rerr = syscall.Recvfrom(int(fd), buf, 0)
			// Returning false makes the poller wait for readability.
			return rerr != syscall.EAGAIN
		})
		if err != nil {
			return // closed by Close
		}
		switch {
		case rerr == syscall.EINTR:
			continue
		case rerr == syscall.ENOBUFS:
			// The receive buffer overflowed and notifications were lost:
			// assume something changed.
			w.notify()
			continue
		case rerr != nil:
			return // unexpected socket error: stop watching
		}
		// Only the kernel (port id 0) speaks for the routing tables.
		if sa, ok := from.(*syscall.SockaddrNetlink); !ok || sa.Pid != 0 {
			continue
		}
		if netlinkChange(buf[:n]) != 0 {
			w.notify()
		}
	}
}

// netlinkChange reduces a netlink datagram to the changes its messages
// report: an address added or removed, a route added or removed, a link
// that appeared, went away or changed. Malformed input reports nothing.
func netlinkChange(b []byte) change {
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return 0
	}
	var c change
	for _, m := range msgs {
		switch m.Header.Type {
		case syscall.RTM_NEWADDR:
			c |= changeAddrAdded
		case syscall.RTM_DELADDR:
			c |= changeAddrRemoved
		case syscall.RTM_NEWROUTE, syscall.RTM_DELROUTE:
			c |= changeRoute
		case syscall.RTM_NEWLINK, syscall.RTM_DELLINK:
			c |= changeLink
		}
	}
	return c
}

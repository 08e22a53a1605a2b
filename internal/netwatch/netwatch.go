// Package netwatch tells an SSH client that the network path to its server
// may have changed, so that it can reconnect at once.
//
// When a laptop moves from one network to another (Wi-Fi to Ethernet, a VPN
// going up or down, a DHCP lease renewed with a new address), an established
// TCP connection usually does not fail: its packets are silently dropped
// because the local address they leave from is gone or no longer routed. The
// client would only notice after its keepalive or liveness timeouts expire,
// which can take tens of seconds. Instead, a client can watch for address,
// route and link changes (Watcher), and on each change ask whether its
// connection would now leave from another local address (PathChanged). If
// so, the old connection is dead in all but name and the client reconnects
// right away.
//
// Watcher is implemented on Linux (rtnetlink: netwatch_linux.go), macOS and
// 64-bit FreeBSD (a PF_ROUTE routing socket: netwatch_bsd.go, with the
// messages decoded in rtmsg.go) and Windows (iphlpapi's
// NotifyIpInterfaceChange, NotifyUnicastIpAddressChange and
// NotifyRouteChange2: netwatch_windows.go, reduced in mibnotify.go); each
// system's notifications come down to the same few changes (an address
// appeared or went away, a link or a route changed). Elsewhere New returns
// ErrUnsupported. The decoding is free of system calls, so that every
// system's is tested and fuzzed on any. SourceFor and PathChanged (a UDP
// socket connected to the peer, its local address read) work on every
// system.
package netwatch

import (
	"errors"
	"fmt"
	"net"
	"sync"
)

// ErrUnsupported is returned by New on systems where change notifications
// are not implemented. It wraps errors.ErrUnsupported.
var ErrUnsupported = fmt.Errorf("netwatch: change notifications: %w", errors.ErrUnsupported)

// Watcher reports network changes that may affect a route.
//
// A nil *Watcher is valid: Changes returns a nil channel (which never
// delivers) and Close does nothing, so callers may keep going when New fails.
type Watcher struct {
	changes chan struct{} // capacity 1: pending notifications coalesce
	done    chan struct{} // closed when the reader goroutine has exited
	stop    func() error  // platform hook: makes the reader goroutine exit

	closeOnce sync.Once
	closeErr  error
}

// Changes delivers a value after each batch of notifications that add or
// remove an address or route or change a link's state. Deliveries coalesce:
// if the previous value has not been received yet, no new one is queued.
// The channel is never closed; after Close returns it delivers nothing.
func (w *Watcher) Changes() <-chan struct{} {
	if w == nil {
		return nil
	}
	return w.changes
}

// Close stops the watcher and waits for its goroutine to exit. It is safe to
// call more than once and from several goroutines; later calls return the
// result of the first.
func (w *Watcher) Close() error {
	if w == nil {
		return nil
	}
	w.closeOnce.Do(func() {
		w.closeErr = w.stop()
		<-w.done
		// Drop a notification still queued so that nothing is delivered
		// after Close returns.
		select {
		case <-w.changes:
		default:
		}
	})
	return w.closeErr
}

// change is what a notification says happened, reduced to what may move
// a connection's path. Each system's decoder (netlink on Linux, routing
// messages on the BSDs and macOS in rtmsg.go, Windows' notification types
// in mibnotify.go) yields these and nothing else, and the Watcher
// delivers a value on Changes for any of them.
type change uint8

const (
	changeAddrAdded   change = 1 << iota // a local address appeared or changed
	changeAddrRemoved                    // a local address went away
	changeLink                           // an interface appeared, went away or changed state
	changeRoute                          // a route was added, removed or changed
)

func (c change) String() string {
	if c == 0 {
		return "none"
	}
	var s string
	for i, name := range []string{"addr-added", "addr-removed", "link", "route"} {
		if c&(1<<i) != 0 {
			if s != "" {
				s += "|"
			}
			s += name
		}
	}
	if c >= 1<<4 {
		s += fmt.Sprintf("|%#x", uint8(c&^0xf))
	}
	return s
}

// notify queues a notification unless one is already pending.
func (w *Watcher) notify() {
	select {
	case w.changes <- struct{}{}:
	default:
	}
}

// SourceFor returns the local address the kernel would use now to reach dst.
// It connects a UDP socket to dst, which selects a route and a source
// address but sends no packet, and reads the socket's local address. An
// error means dst is currently unreachable (or not a valid address).
func SourceFor(dst net.IP) (net.IP, error) {
	return sourceFor(dst, "")
}

// sourceFor is SourceFor with an IPv6 zone, needed for link-local addresses.
func sourceFor(dst net.IP, zone string) (net.IP, error) {
	if dst == nil || dst.IsUnspecified() {
		return nil, fmt.Errorf("netwatch: invalid destination %v", dst)
	}
	// The port is irrelevant for route selection but must be non-zero on
	// some systems.
	c, err := net.DialUDP("udp", nil, &net.UDPAddr{IP: dst, Port: 9, Zone: zone})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	la, ok := c.LocalAddr().(*net.UDPAddr)
	if !ok || la.IP == nil {
		return nil, fmt.Errorf("netwatch: no local address for %v", dst)
	}
	return la.IP, nil
}

// PathChanged reports whether a connection from local to remote would now
// leave from another address: SourceFor(remote) differs from local, or
// remote has become unreachable. Both addresses would typically come from
// net.Conn's LocalAddr and RemoteAddr. It returns false when either address
// carries no IP (for example a Unix socket), since nothing can be decided.
func PathChanged(local, remote net.Addr) bool {
	lip, _ := ipOf(local)
	rip, zone := ipOf(remote)
	if lip == nil || rip == nil {
		return false
	}
	src, err := sourceFor(rip, zone)
	if err != nil {
		return true
	}
	// Equal treats an IPv4 address and its IPv4-in-IPv6 form as equal.
	return !src.Equal(lip)
}

// ipOf extracts the IP address and IPv6 zone of a network address, or
// returns nil if it has none.
func ipOf(a net.Addr) (net.IP, string) {
	switch a := a.(type) {
	case nil:
		return nil, ""
	case *net.TCPAddr:
		if a == nil {
			return nil, ""
		}
		return a.IP, a.Zone
	case *net.UDPAddr:
		if a == nil {
			return nil, ""
		}
		return a.IP, a.Zone
	case *net.IPAddr:
		if a == nil {
			return nil, ""
		}
		return a.IP, a.Zone
	}
	// Other implementations: try "host:port", then a bare host.
	s := a.String()
	if h, _, err := net.SplitHostPort(s); err == nil {
		s = h
	}
	host, zone, _ := cutZone(s)
	return net.ParseIP(host), zone
}

// cutZone splits "fe80::1%eth0" into host and zone.
func cutZone(s string) (host, zone string, found bool) {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '%' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

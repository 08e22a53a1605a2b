package netwatch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// The decoding of BSD routing socket (PF_ROUTE) messages, kept free of
// system calls and of any system's x/sys/unix so that it is tested and
// fuzzed on every system: netwatch_bsd.go only reads the socket and hands
// each message here with its system's rtDialect.
//
// Every message begins as <net/route.h>'s rt_msghdr, ifa_msghdr,
// if_msghdr and if_announcemsghdr do:
//
//	u_short msglen; u_char version; u_char type;
//
// in the machine's byte order (little-endian on every system Go's darwin
// and freebsd ports run on). Route, address and interface messages then
// carry their flags at offset 8; a route message its rtm_errno at 24. After
// the fixed header (whose size depends on the message type and the system)
// come the sockaddrs that the header's address bitmask names, in RTAX_
// order, each padded to the dialect's alignment.

// rtDialect is what differs between systems' routing messages.
type rtDialect struct {
	name    string
	version byte // RTM_VERSION
	align   int  // sockaddrs are padded to a multiple of this (4 on darwin, sizeof(long) on freebsd)

	afInet, afInet6 byte

	// Message types (RTM_*); ifAnnounce is 0 where the system has none.
	add, delete, chg, newAddr, delAddr, ifInfo, ifAnnounce byte

	// Fixed header sizes (sizeof rt_msghdr, ifa_msghdr, if_msghdr,
	// if_announcemsghdr): where the sockaddrs begin.
	sizeRt, sizeIfa, sizeIf, sizeIfAnnounce int

	// Route flags that mark a message about a neighbour's link-layer entry
	// (RTF_LLINFO) or a host route cloned on demand from a route already
	// there (RTF_WASCLONED, darwin's only; 0 elsewhere): neither moves a
	// path.
	rtfLLInfo, rtfWasCloned uint32
}

// The numbers of each dialect, from the systems' <net/route.h> and
// <sys/socket.h> as golang.org/x/sys/unix's zerrors_* and ztypes_* give
// them; netwatch_darwin.go and netwatch_freebsd.go check each against
// x/sys/unix at compile time.
const (
	rtmVersion = 5

	rtmAdd     = 0x1
	rtmDelete  = 0x2
	rtmChange  = 0x3
	rtmNewAddr = 0xc
	rtmDelAddr = 0xd
	rtmIfInfo  = 0xe

	freebsdRTMIfAnnounce = 0x11

	afInet         = 0x2
	darwinAFInet6  = 0x1e
	freebsdAFInet6 = 0x1c

	rtfLLInfo          = 0x400
	darwinRTFWasCloned = 0x20000

	darwinSizeofRtMsghdr  = 0x5c
	darwinSizeofIfaMsghdr = 0x14
	darwinSizeofIfMsghdr  = 0x70

	// freebsd/amd64 and freebsd/arm64 alike.
	freebsdSizeofRtMsghdr         = 0x98
	freebsdSizeofIfaMsghdr        = 0x14
	freebsdSizeofIfMsghdr         = 0xa8
	freebsdSizeofIfAnnounceMsghdr = 0x18

	// RTAX_* indices of the sockaddrs a message may carry.
	rtaxDst     = 0
	rtaxGateway = 1
	rtaxNetmask = 2
	rtaxGenmask = 3
	rtaxIfp     = 4
	rtaxIfa     = 5
	rtaxAuthor  = 6
	rtaxBrd     = 7
	rtaxMax     = 8

	// if_announcemsghdr's ifan_what.
	ifanArrival   = 0
	ifanDeparture = 1
)

// darwinDialect is macOS's (and iOS's), 64-bit.
var darwinDialect = rtDialect{
	name: "darwin", version: rtmVersion, align: 4,
	afInet: afInet, afInet6: darwinAFInet6,
	add: rtmAdd, delete: rtmDelete, chg: rtmChange,
	newAddr: rtmNewAddr, delAddr: rtmDelAddr, ifInfo: rtmIfInfo,
	sizeRt: darwinSizeofRtMsghdr, sizeIfa: darwinSizeofIfaMsghdr, sizeIf: darwinSizeofIfMsghdr,
	rtfLLInfo: rtfLLInfo, rtfWasCloned: darwinRTFWasCloned,
}

// freebsdDialect is FreeBSD's (10 and later), 64-bit.
var freebsdDialect = rtDialect{
	name: "freebsd", version: rtmVersion, align: 8,
	afInet: afInet, afInet6: freebsdAFInet6,
	add: rtmAdd, delete: rtmDelete, chg: rtmChange,
	newAddr: rtmNewAddr, delAddr: rtmDelAddr, ifInfo: rtmIfInfo, ifAnnounce: freebsdRTMIfAnnounce,
	sizeRt: freebsdSizeofRtMsghdr, sizeIfa: freebsdSizeofIfaMsghdr, sizeIf: freebsdSizeofIfMsghdr,
	sizeIfAnnounce: freebsdSizeofIfAnnounceMsghdr,
	rtfLLInfo:      rtfLLInfo,
}

var (
	errRtShort   = errors.New("routing message shorter than its header")
	errRtLength  = errors.New("routing message length out of bounds")
	errRtSockLen = errors.New("routing message sockaddr runs past its message")
)

// rtMsg is one routing message, decoded as far as the watcher needs.
type rtMsg struct {
	version, typ byte
	flags        uint32 // rtm_flags, ifam_flags or ifm_flags
	errno        int32  // rtm_errno (route messages)
	what         uint16 // ifan_what (interface announcements)
	// Of each sockaddr the header names: its family (0 when absent or too
	// short to have one) and, for an IPv4 or IPv6 one long enough, its
	// address.
	family [rtaxMax]byte
	addr   [rtaxMax]netip.Addr
	// addrsErr is set when the sockaddrs could not all be read; family
	// and addr then hold those read before.
	addrsErr error
}

// Kinds of message by their fixed header.
const (
	rtKindOther    = iota // not decoded
	rtKindRoute           // rt_msghdr
	rtKindAddr            // ifa_msghdr
	rtKindIf              // if_msghdr
	rtKindAnnounce        // if_announcemsghdr
)

// kind returns a message type's kind and the size of its fixed header.
func (d *rtDialect) kind(typ byte) (int, int) {
	switch {
	case typ == d.add || typ == d.delete || typ == d.chg:
		return rtKindRoute, d.sizeRt
	case typ == d.newAddr || typ == d.delAddr:
		return rtKindAddr, d.sizeIfa
	case typ == d.ifInfo:
		return rtKindIf, d.sizeIf
	case d.ifAnnounce != 0 && typ == d.ifAnnounce:
		return rtKindAnnounce, d.sizeIfAnnounce
	}
	return rtKindOther, 0
}

// parseRtMsgs splits b, what one read of a routing socket returned, into
// messages and decodes those of the types the watcher looks at (others
// come back with only version and type). Messages of another RTM_VERSION
// are returned undecoded too. It stops at the first message whose length
// is wrong, returning those before it and the error.
func parseRtMsgs(d *rtDialect, b []byte) ([]rtMsg, error) {
	var out []rtMsg
	for len(b) > 0 {
		if len(b) < 4 {
			return out, errRtShort
		}
		n := int(binary.LittleEndian.Uint16(b[0:2]))
		if n < 4 || n > len(b) {
			return out, fmt.Errorf("%w: %d of %d bytes", errRtLength, n, len(b))
		}
		m, err := parseRtMsg(d, b[:n])
		if err != nil {
			return out, err
		}
		out = append(out, m)
		b = b[n:]
	}
	return out, nil
}

// parseRtMsg decodes one message of exactly len(b) bytes.
func parseRtMsg(d *rtDialect, b []byte) (rtMsg, error) {
	m := rtMsg{version: b[2], typ: b[3]}
	if m.version != d.version {
		return m, nil
	}
	kind, hs := d.kind(m.typ)
	if kind == rtKindOther {
		return m, nil
	}
	if len(b) < hs {
		return m, fmt.Errorf("%w: type %#x, %d bytes, header %d", errRtShort, m.typ, len(b), hs)
	}
	le := binary.LittleEndian
	var addrs uint32
	switch kind {
	case rtKindRoute:
		// rt_msghdr: u_short index at 4, (pad), int flags at 8, int addrs
		// at 12, pid at 16, seq at 20, errno at 24.
		m.flags = le.Uint32(b[8:12])
		addrs = le.Uint32(b[12:16])
		m.errno = int32(le.Uint32(b[24:28]))
	case rtKindAddr, rtKindIf:
		// ifa_msghdr and if_msghdr: int addrs at 4, int flags at 8.
		addrs = le.Uint32(b[4:8])
		m.flags = le.Uint32(b[8:12])
	case rtKindAnnounce:
		// if_announcemsghdr: index at 4, name[16] at 6, what at 22.
		m.what = le.Uint16(b[22:24])
		return m, nil
	}
	m.addrsErr = m.parseAddrs(d, addrs, b[hs:])
	return m, nil
}

// parseAddrs reads the sockaddrs that the bitmask addrs names from b.
func (m *rtMsg) parseAddrs(d *rtDialect, addrs uint32, b []byte) error {
	for i := 0; i < rtaxMax; i++ {
		if addrs&(1<<i) == 0 {
			continue
		}
		if len(b) == 0 {
			return fmt.Errorf("%w: RTAX %d missing", errRtSockLen, i)
		}
		l := int(b[0])
		if l > len(b) {
			return fmt.Errorf("%w: RTAX %d of %d bytes, %d left", errRtSockLen, i, l, len(b))
		}
		sa := b[:l]
		if l >= 2 {
			m.family[i] = sa[1]
		}
		switch {
		case m.family[i] == d.afInet && l >= 8:
			m.addr[i] = netip.AddrFrom4([4]byte(sa[4:8]))
		case m.family[i] == d.afInet6 && l >= 24:
			m.addr[i] = netip.AddrFrom16([16]byte(sa[8:24]))
		}
		// A zero-length sockaddr still takes one alignment unit; the
		// last one may lack its padding.
		step := d.roundup(l)
		if step > len(b) {
			step = len(b)
		}
		b = b[step:]
	}
	return nil
}

// roundup is the space a sockaddr of length l takes in a message: the
// kernels' ROUNDUP (darwin) and SA_SIZE (freebsd).
func (d *rtDialect) roundup(l int) int {
	if l == 0 {
		return d.align
	}
	return 1 + ((l - 1) | (d.align - 1))
}

// isInet reports whether family is IPv4 or IPv6 in this dialect.
func (d *rtDialect) isInet(family byte) bool {
	return family == d.afInet || family == d.afInet6
}

// reduce reduces a decoded message to what it may mean for a
// connection's path, the same set of changes the Linux watcher reports.
// What a message cannot change is left out: a request another process
// made that failed (rtm_errno), a neighbour's link-layer entry, a host
// route cloned from one already there, a route to or an address of a
// family other than IPv4 and IPv6 (the interface's link-layer address).
// Where the sockaddr that would tell could not be read, the message
// counts: missing a change costs a reconnection seconds late, reporting
// one only a check of the path.
func (d *rtDialect) reduce(m *rtMsg) change {
	if m.version != d.version {
		return 0
	}
	kind, _ := d.kind(m.typ)
	switch kind {
	case rtKindRoute:
		if m.errno != 0 || m.flags&d.rtfLLInfo != 0 || (d.rtfWasCloned != 0 && m.flags&d.rtfWasCloned != 0) {
			return 0
		}
		if f := m.family[rtaxDst]; f != 0 && !d.isInet(f) {
			return 0
		}
		return changeRoute
	case rtKindAddr:
		if f := m.family[rtaxIfa]; f != 0 && !d.isInet(f) {
			return 0
		}
		if m.typ == d.newAddr {
			return changeAddrAdded
		}
		return changeAddrRemoved
	case rtKindIf, rtKindAnnounce:
		return changeLink
	}
	return 0
}

// rtChanges decodes what one read of a routing socket returned and
// reduces it to the changes it reports. A message whose length is wrong
// ends the decoding; its error is returned beside the changes of the
// messages before it.
func rtChanges(d *rtDialect, b []byte) (change, error) {
	msgs, err := parseRtMsgs(d, b)
	var c change
	for i := range msgs {
		c |= d.reduce(&msgs[i])
	}
	return c, err
}

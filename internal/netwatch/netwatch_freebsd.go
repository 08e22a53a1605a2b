//go:build amd64 || arm64 || riscv64

package netwatch

import "golang.org/x/sys/unix"

// sysDialect is how this system lays out its routing messages (64-bit;
// 32-bit freebsd's headers differ and get netwatch_other.go).
var sysDialect = &freebsdDialect

// reportOverflow asks for ENOBUFS on a read after messages were dropped
// for want of room (SO_RERROR, FreeBSD 13 and later); without it, as on
// older systems, they are lost without a word.
func reportOverflow(fd int) {
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RERROR, 1)
}

// rtmsg.go's numbers for freebsd against x/sys/unix's: each line fails to
// compile (an index out of range, or negative) if the two differ.
var (
	_ = [1]struct{}{}[unix.RTM_VERSION-rtmVersion]
	_ = [1]struct{}{}[unix.RTM_ADD-rtmAdd]
	_ = [1]struct{}{}[unix.RTM_DELETE-rtmDelete]
	_ = [1]struct{}{}[unix.RTM_CHANGE-rtmChange]
	_ = [1]struct{}{}[unix.RTM_NEWADDR-rtmNewAddr]
	_ = [1]struct{}{}[unix.RTM_DELADDR-rtmDelAddr]
	_ = [1]struct{}{}[unix.RTM_IFINFO-rtmIfInfo]
	_ = [1]struct{}{}[unix.RTM_IFANNOUNCE-freebsdRTMIfAnnounce]
	_ = [1]struct{}{}[unix.AF_INET-afInet]
	_ = [1]struct{}{}[unix.AF_INET6-freebsdAFInet6]
	_ = [1]struct{}{}[unix.RTF_LLINFO-rtfLLInfo]
	_ = [1]struct{}{}[unix.SizeofRtMsghdr-freebsdSizeofRtMsghdr]
	_ = [1]struct{}{}[unix.SizeofIfaMsghdr-freebsdSizeofIfaMsghdr]
	_ = [1]struct{}{}[unix.SizeofIfMsghdr-freebsdSizeofIfMsghdr]
	_ = [1]struct{}{}[unix.SizeofIfAnnounceMsghdr-freebsdSizeofIfAnnounceMsghdr]
	_ = [1]struct{}{}[unix.IFAN_ARRIVAL-ifanArrival]
	_ = [1]struct{}{}[unix.IFAN_DEPARTURE-ifanDeparture]
	_ = [1]struct{}{}[unix.RTAX_DST-rtaxDst]
	_ = [1]struct{}{}[unix.RTAX_IFA-rtaxIfa]
	_ = [1]struct{}{}[unix.RTAX_MAX-rtaxMax]
)

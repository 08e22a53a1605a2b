package netwatch

import "golang.org/x/sys/unix"

// sysDialect is how this system lays out its routing messages.
var sysDialect = &darwinDialect

// reportOverflow does nothing: darwin's routing sockets have no
// SO_RERROR. A burst of messages that overflows the socket's buffer is
// lost without a word; the next message notifies.
func reportOverflow(int) {}

// rtmsg.go's numbers for darwin against x/sys/unix's: each line fails to
// compile (an index out of range, or negative) if the two differ.
var (
	_ = [1]struct{}{}[unix.RTM_VERSION-rtmVersion]
	_ = [1]struct{}{}[unix.RTM_ADD-rtmAdd]
	_ = [1]struct{}{}[unix.RTM_DELETE-rtmDelete]
	_ = [1]struct{}{}[unix.RTM_CHANGE-rtmChange]
	_ = [1]struct{}{}[unix.RTM_NEWADDR-rtmNewAddr]
	_ = [1]struct{}{}[unix.RTM_DELADDR-rtmDelAddr]
	_ = [1]struct{}{}[unix.RTM_IFINFO-rtmIfInfo]
	_ = [1]struct{}{}[unix.AF_INET-afInet]
	_ = [1]struct{}{}[unix.AF_INET6-darwinAFInet6]
	_ = [1]struct{}{}[unix.RTF_LLINFO-rtfLLInfo]
	_ = [1]struct{}{}[unix.RTF_WASCLONED-darwinRTFWasCloned]
	_ = [1]struct{}{}[unix.SizeofRtMsghdr-darwinSizeofRtMsghdr]
	_ = [1]struct{}{}[unix.SizeofIfaMsghdr-darwinSizeofIfaMsghdr]
	_ = [1]struct{}{}[unix.SizeofIfMsghdr-darwinSizeofIfMsghdr]
	_ = [1]struct{}{}[unix.RTAX_DST-rtaxDst]
	_ = [1]struct{}{}[unix.RTAX_IFA-rtaxIfa]
	_ = [1]struct{}{}[unix.RTAX_MAX-rtaxMax]
)

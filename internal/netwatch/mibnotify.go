package netwatch

// Windows' change notifications, reduced in code free of system calls so
// that it is tested and fuzzed on every system. netwatch_windows.go
// registers three callbacks with iphlpapi.dll and hands each call here
// with the registration it came through and the call's
// MIB_NOTIFICATION_TYPE. The rows the callbacks are given are not read:
// Windows fills in only their key fields for a notification (the
// interface's LUID and index, an address's family and value), nothing
// that would tell a change that matters from one that does not.

// mibSource is the registration a notification came through.
type mibSource uint8

const (
	mibInterface mibSource = iota // NotifyIpInterfaceChange (MIB_IPINTERFACE_ROW)
	mibAddress                    // NotifyUnicastIpAddressChange (MIB_UNICASTIPADDRESS_ROW)
	mibRoute                      // NotifyRouteChange2 (MIB_IPFORWARD_ROW2)
	mibSources
)

// MIB_NOTIFICATION_TYPE, from netioapi.h.
const (
	mibParameterNotification = 0 // a row's parameters changed
	mibAddInstance           = 1 // a row was added
	mibDeleteInstance        = 2 // a row was deleted
	mibInitialNotification   = 3 // the call made at registration when asked for (never: we pass false)
)

// mibChange reduces one notification to the changes it reports, the
// same set the Linux watcher reports: an address added (or its
// parameters changed: its duplicate address detection done, its lifetime
// renewed) or deleted; an interface added, deleted or changed (connected,
// disconnected, its MTU or metric); a route added, deleted or changed.
// The initial notification reports nothing; a notification type Windows
// may add later counts as a change of its source's kind.
func mibChange(src mibSource, typ uint32) change {
	if typ == mibInitialNotification {
		return 0
	}
	switch src {
	case mibAddress:
		if typ == mibDeleteInstance {
			return changeAddrRemoved
		}
		return changeAddrAdded
	case mibInterface:
		return changeLink
	case mibRoute:
		return changeRoute
	}
	return 0
}

//go:build !linux && !darwin && !windows && !(freebsd && (amd64 || arm64 || riscv64))

package netwatch

// New returns ErrUnsupported: change notifications are implemented on
// Linux (netlink), macOS and 64-bit FreeBSD (routing sockets) and
// Windows (iphlpapi notifications) only.
// SourceFor and PathChanged still work, so a caller can poll them.
func New() (*Watcher, error) {
	return nil, ErrUnsupported
}

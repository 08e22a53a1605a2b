//go:build !linux

package netwatch

// New returns ErrUnsupported: change notifications are only implemented on
// Linux. SourceFor and PathChanged still work, so a caller can poll them.
func New() (*Watcher, error) {
	return nil, ErrUnsupported
}

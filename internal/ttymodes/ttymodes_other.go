//go:build !linux && !darwin && !freebsd && !netbsd && !openbsd

package ttymodes

import "github.com/rsftp/rsftp/internal/connmsg"

// FromFd returns Default: this system has no termios to read (a Windows
// console's modes do not map onto it).
func FromFd(fd int) ([]connmsg.TerminalMode, error) { return Default(), nil }

// ApplyFd fails: this system has no termios.
func ApplyFd(fd int, modes []connmsg.TerminalMode) error { return ErrUnsupported }

//go:build darwin || freebsd || netbsd || openbsd

package channel

import "golang.org/x/sys/unix"

// ioctlGetTermiosForTest reads a terminal's settings.
const ioctlGetTermiosForTest = unix.TIOCGETA

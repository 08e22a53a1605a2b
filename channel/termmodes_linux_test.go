package channel

import "golang.org/x/sys/unix"

// ioctlGetTermiosForTest reads a terminal's settings.
const ioctlGetTermiosForTest = unix.TCGETS

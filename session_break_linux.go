package rsftp

import (
	"os"

	"golang.org/x/sys/unix"
)

// sendBreak is tcsendbreak(fd, 0) on the terminal, as sshd's break
// (Linux's TCSBRK with 0; its length is the driver's, so ms is not used).
func sendBreak(master *os.File, ms uint32) error {
	return control(master, func(fd int) error { return unix.IoctlSetInt(fd, unix.TCSBRK, 0) })
}

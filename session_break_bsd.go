//go:build darwin || freebsd || netbsd || openbsd

package rsftp

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// maxBreak bounds a break's length: the client chooses it.
const maxBreak = 3 * time.Second

// sendBreak holds a break on the terminal for ms milliseconds (at most
// maxBreak): TIOCSBRK now, TIOCCBRK later.
func sendBreak(master *os.File, ms uint32) error {
	if err := control(master, func(fd int) error { return unix.IoctlSetInt(fd, unix.TIOCSBRK, 0) }); err != nil {
		return err
	}
	d := min(time.Duration(ms)*time.Millisecond, maxBreak)
	time.AfterFunc(d, func() {
		control(master, func(fd int) error { return unix.IoctlSetInt(fd, unix.TIOCCBRK, 0) })
	})
	return nil
}

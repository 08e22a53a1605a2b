//go:build unix && !linux

package rsftp

import "golang.org/x/sys/unix"

// readNoWait reads the non-blocking master fd once.
func readNoWait(fd int, buf []byte) (int, error) {
	n, err := unix.Read(fd, buf)
	if n < 0 {
		n = 0
	}
	return n, err
}

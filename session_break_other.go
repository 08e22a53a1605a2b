//go:build unix && !linux && !darwin && !freebsd && !netbsd && !openbsd

package rsftp

import (
	"errors"
	"os"
)

// sendBreak: this system's terminals take no break from here.
func sendBreak(master *os.File, ms uint32) error {
	return errors.New("break is not supported on this system")
}

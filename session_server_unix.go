//go:build unix

package rsftp

import "syscall"

// USR1 and USR2 are Unix's: Windows' syscall package has no such signals.
func init() {
	signalNames[syscall.SIGUSR1] = "USR1"
	signalNames[syscall.SIGUSR2] = "USR2"
}

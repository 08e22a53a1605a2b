//go:build unix

package main

import (
	"os"
	"syscall"
)

// signalReconnect asks the rsftp process p to reconnect at once.
func signalReconnect(p *os.Process) error { return p.Signal(syscall.SIGUSR2) }

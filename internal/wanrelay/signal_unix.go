//go:build unix

package main

import (
	"os"
	"os/signal"
	"syscall"
)

// notifyCut calls cut at each SIGUSR1: every connection is reset.
func notifyCut(cut func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	go func() {
		for range sig {
			cut()
		}
	}()
}

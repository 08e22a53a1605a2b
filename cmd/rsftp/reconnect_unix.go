//go:build unix

package main

import (
	"os"
	"os/signal"
	"syscall"
)

// onReconnectRequest calls reconnect on each SIGUSR2 until stop is
// called.
func onReconnectRequest(reconnect func(), _ *logger) (stop func()) {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR2)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-sig:
				reconnect()
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(sig); close(done) }
}

// requestReconnect sends SIGUSR2 to pid.
func requestReconnect(pid int) error {
	return syscall.Kill(pid, syscall.SIGUSR2)
}

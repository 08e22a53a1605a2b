//go:build unix

package main

import (
	"context"
	"net"
	"syscall"
)

// suspendSelf stops rsftp as the terminal's ^Z would (~^Z): the caller
// put the terminal back first, and takes it again when the shell
// continues rsftp.
func suspendSelf() error {
	return syscall.Kill(syscall.Getpid(), syscall.SIGTSTP)
}

// dialAgent connects to the local agent whose socket -A forwards.
func dialAgent(ctx context.Context, sock string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", sock)
}

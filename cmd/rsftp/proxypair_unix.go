//go:build unix

package main

import (
	"fmt"
	"net"
	"os"
	"syscall"
)

// commandPair makes the connection to a ProxyCommand: a socket pair,
// ours as a net.Conn, theirs for its standard input and output.
func commandPair() (net.Conn, *os.File, error) {
	// As the net package does where sockets cannot be created
	// close-on-exec: no fork between creating them and marking them.
	syscall.ForkLock.RLock()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fds[0])
		syscall.CloseOnExec(fds[1])
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, nil, fmt.Errorf("ProxyCommand: %w", err)
	}
	ours := os.NewFile(uintptr(fds[0]), "proxy")
	defer ours.Close()
	theirs := os.NewFile(uintptr(fds[1]), "proxy-command")
	c, err := net.FileConn(ours)
	if err != nil {
		theirs.Close()
		return nil, nil, fmt.Errorf("ProxyCommand: %w", err)
	}
	return c, theirs, nil
}

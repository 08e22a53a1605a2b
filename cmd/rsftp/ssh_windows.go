//go:build windows

package main

import (
	"context"
	"errors"
	"net"
	"strings"

	"github.com/rsftp/rsftp/internal/winpipe"
)

// suspendSelf: Windows has no job control.
func suspendSelf() error {
	return errors.New("Windows has no job control to suspend rsftp with")
}

// dialAgent connects to the local agent whose socket -A forwards: a
// named pipe (\\.\pipe\openssh-ssh-agent by default), or an AF_UNIX
// socket's path.
func dialAgent(ctx context.Context, sock string) (net.Conn, error) {
	if strings.HasPrefix(sock, `\\.\pipe\`) {
		return winpipe.Dial(ctx, sock)
	}
	var d net.Dialer
	return d.DialContext(ctx, "unix", sock)
}

//go:build !unix

package main

import (
	"context"
	"errors"
)

// The remote end of a session through sshd (helper_unix.go) needs Unix
// sockets and POSIX file modes for its private socket; a client on this
// system still starts helpers on Unix servers (helper_client.go).

func runHelper(context.Context, []string) error {
	return errors.New("rsftp helper runs on Unix systems only")
}

func runAttach([]string) error {
	return errors.New("rsftp attach runs on Unix systems only")
}

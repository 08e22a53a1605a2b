package main

import (
	"fmt"
	"net"
	"os"

	"github.com/rsftp/rsftp/internal/winpipe"
)

// commandPair makes the connection to a ProxyCommand: a local named
// pipe (Windows has no socket pair for a child's standard handles),
// ours overlapped as a net.Conn, theirs for its standard input and
// output.
func commandPair() (net.Conn, *os.File, error) {
	ours, theirs, err := winpipe.Pair()
	if err != nil {
		return nil, nil, fmt.Errorf("ProxyCommand: %w", err)
	}
	return ours, theirs, nil
}

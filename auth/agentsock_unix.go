//go:build !windows

package auth

import (
	"context"
	"io"
	"net"
	"os"
)

// DefaultAgentSocket is where ssh finds its agent when IdentityAgent does
// not say: $SSH_AUTH_SOCK (on macOS the socket launchd gives, which
// reaches the keychain-backed agent), or "" when it is unset.
func DefaultAgentSocket() string { return os.Getenv("SSH_AUTH_SOCK") }

// dialAgentSocket connects to an agent's Unix socket.
func dialAgentSocket(ctx context.Context, sock string) (io.ReadWriteCloser, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", sock)
}

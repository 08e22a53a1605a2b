package auth

import (
	"context"
	"io"
	"net"
	"os"
	"strings"

	"github.com/rsftp/rsftp/internal/winpipe"
)

// OpenSSHAgentPipe is where OpenSSH for Windows' ssh-agent service
// listens.
const OpenSSHAgentPipe = `\\.\pipe\openssh-ssh-agent`

// DefaultAgentSocket is where ssh finds its agent when IdentityAgent does
// not say: $SSH_AUTH_SOCK, else OpenSSH for Windows' agent pipe, as
// OpenSSH for Windows' ssh looks for it.
func DefaultAgentSocket() string {
	if s := os.Getenv("SSH_AUTH_SOCK"); s != "" {
		return s
	}
	return OpenSSHAgentPipe
}

// isPipePath reports whether sock names a named pipe (\\.\pipe\name, or
// //./pipe/name as Windows also spells it).
func isPipePath(sock string) bool {
	return strings.HasPrefix(strings.ReplaceAll(strings.ToLower(sock), `/`, `\`), `\\.\pipe\`)
}

// dialAgentSocket connects to an agent: a named pipe, or else a Unix
// socket (AF_UNIX, which Windows 10 has and some agents use).
func dialAgentSocket(ctx context.Context, sock string) (io.ReadWriteCloser, error) {
	if isPipePath(sock) {
		return winpipe.Dial(ctx, sock)
	}
	var d net.Dialer
	return d.DialContext(ctx, "unix", sock)
}

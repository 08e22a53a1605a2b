package channel

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/rsftp/rsftp/internal/connmsg"
)

// DialUnix opens a direct-streamlocal@openssh.com channel (OpenSSH's
// PROTOCOL section 2.4): the server connects to the Unix socket at path
// and the channel carries that connection.
func (m *Mux) DialUnix(ctx context.Context, path string) (net.Conn, error) {
	d := &connmsg.DirectStreamLocal{Path: path}
	if _, err := connmsg.ParseDirectStreamLocal(d.Marshal()); err != nil {
		return nil, err
	}
	c, err := m.OpenChannel(ctx, connmsg.ChanDirectStreamLocal, d.Marshal())
	if err != nil {
		return nil, err
	}
	return c.NetConn(&net.UnixAddr{Name: "@", Net: "unix"}, &net.UnixAddr{Name: path, Net: "unix"}), nil
}

// DirectStreamLocal returns the socket path a direct-streamlocal open
// asks the server to connect to, for a handler to check before
// ServeDirectStreamLocal. It fails on malformed extra data (an empty
// path, one past 256 bytes or holding a NUL, trailing bytes).
func (n *NewChannel) DirectStreamLocal() (path string, err error) {
	d, err := connmsg.ParseDirectStreamLocal(n.extra)
	if err != nil {
		return "", err
	}
	return d.Path, nil
}

// ServeDirectStreamLocal serves a direct-streamlocal open on the server
// side: it connects to the Unix socket at path, refuses the channel with
// ConnectFailed if that fails, and otherwise copies both ways until both
// directions end.
func ServeDirectStreamLocal(ctx context.Context, nc *NewChannel, path string) error {
	dctx, cancel := context.WithTimeout(ctx, DirectTCPIPDialTimeout)
	defer cancel()
	var d net.Dialer
	uc, err := d.DialContext(dctx, "unix", path)
	if err != nil {
		nc.Reject(ConnectFailed, fmt.Sprintf("connect to %s failed", path))
		return err
	}
	c, err := nc.Accept()
	if err != nil {
		uc.Close()
		return err
	}
	return Splice(ctx, c, uc)
}

// NetConn makes the channel a net.Conn with the given addresses (a
// forwarded connection's): Read and Write carry its data, Close closes
// it, CloseWrite sends EOF, and the deadlines are the channel's.
func (c *Channel) NetConn(laddr, raddr net.Addr) net.Conn {
	return &conn{Channel: c, laddr: laddr, raddr: raddr}
}

// conn's deadlines and CloseWrite are Channel's.
var _ interface {
	net.Conn
	CloseWrite() error
	SetDeadline(time.Time) error
} = (*conn)(nil)

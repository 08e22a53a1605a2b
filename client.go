// Package rsftp is an SSH client and server stack written from scratch,
// built so that sessions can survive the network (see the resume package).
//
// A client:
//
//	cfg := &rsftp.ClientConfig{
//		User:            "alice",
//		Auth:            []auth.Method{auth.PublicKeys(signer)},
//		HostKeyCallback: auth.HostKeyCallback(knownHostsFiles, auth.StrictYes, false),
//	}
//	c, err := rsftp.Dial(ctx, "tcp", "example.org:22", cfg)
//	sess, err := c.NewSession(ctx)
//	out, err := sess.Output("uname -a")
//
// A server: see ServerConfig and Server.Serve.
package rsftp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"

	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/channel"
	"github.com/rsftp/rsftp/kex"
	"github.com/rsftp/rsftp/transport"
)

// HostKeyCallback decides whether to trust a server's host key. host and
// port are as dialled.
type HostKeyCallback func(host string, port int, key kex.PublicKey) error

// ClientConfig configures a client connection.
type ClientConfig struct {
	// User is the name to log in as.
	User string
	// Auth lists the authentication methods to try, in order.
	Auth []auth.Method
	// HostKeyCallback is required: it decides whether the server's host
	// key is the expected one (see auth.HostKeyCallback for known_hosts).
	HostKeyCallback HostKeyCallback
	// Banner, if set, receives the server's authentication banner.
	Banner func(msg string)
	// Transport tunes algorithms and rekeying; HostKeyCallback there is
	// ignored.
	Transport transport.Config
	// Channel tunes windows and packet sizes.
	Channel channel.Config
}

// Client is an authenticated SSH client connection.
type Client struct {
	conn *transport.Conn
	mux  *channel.Mux
}

// Dial connects to addr, runs the key exchange, verifies the host key,
// authenticates and returns a Client. ctx bounds all of that; once Dial
// returns, cancelling ctx has no effect on the connection.
func Dial(ctx context.Context, network, addr string, cfg *ClientConfig) (*Client, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("ssh: dial %s: %w", addr, err)
	}
	c, err := NewClient(ctx, nc, addr, cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return c, nil
}

// NewClient runs the SSH handshake and authentication over an existing
// connection. addr names the server for the host key check.
func NewClient(ctx context.Context, nc net.Conn, addr string, cfg *ClientConfig) (*Client, error) {
	if cfg.HostKeyCallback == nil {
		return nil, errors.New("ssh: ClientConfig.HostKeyCallback is nil: refusing to connect without a way to check the host key")
	}
	host, port := splitHostPort(addr)
	tc := cfg.Transport
	tc.HostKeyCallback = func(key kex.PublicKey) error { return cfg.HostKeyCallback(host, port, key) }
	conn, err := transport.NewClientConn(ctx, nc, &tc)
	if err != nil {
		return nil, fmt.Errorf("ssh: handshake with %s: %w", addr, err)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	err = auth.Authenticate(ctx, conn, &auth.ClientConfig{
		User:    cfg.User,
		Methods: cfg.Auth,
		Banner:  cfg.Banner,
		ServerSigAlgs: func() []string {
			return conn.ServerSigAlgs()
		},
	})
	if !stop() {
		conn.Close()
		return nil, fmt.Errorf("ssh: authenticating to %s: %w", addr, ctx.Err())
	}
	if err != nil {
		var de *auth.DisconnectError
		if errors.As(err, &de) {
			conn.Disconnect(de.Reason, de.Message)
		} else {
			conn.Close()
		}
		return nil, fmt.Errorf("ssh: %s: %w", addr, err)
	}
	conn.SetAuthenticated()
	return &Client{conn: conn, mux: channel.NewMux(conn, &cfg.Channel)}, nil
}

func splitHostPort(addr string) (string, int) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 22
	}
	port, err := strconv.Atoi(ps)
	if err != nil {
		return host, 22
	}
	return host, port
}

// Transport exposes the transport connection (sequence numbers,
// algorithms, rekeying).
func (c *Client) Transport() *transport.Conn { return c.conn }

// Mux exposes the channel multiplexer.
func (c *Client) Mux() *channel.Mux { return c.mux }

// NewSession opens a session channel.
func (c *Client) NewSession(ctx context.Context) (*channel.Session, error) {
	return c.mux.NewSession(ctx)
}

// DialTCP opens a direct-tcpip channel to host:port as seen from the
// server (local port forwarding).
func (c *Client) DialTCP(ctx context.Context, host string, port int) (net.Conn, error) {
	return c.mux.DialTCP(ctx, host, port)
}

// Close closes the connection.
func (c *Client) Close() error {
	c.mux.Close()
	return c.conn.Close()
}

// Wait blocks until the connection ends and returns why.
func (c *Client) Wait() error { return c.mux.Wait() }

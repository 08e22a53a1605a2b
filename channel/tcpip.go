package channel

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/rsftp/rsftp/internal/connmsg"
)

// DialTCP opens a direct-tcpip channel (RFC 4254 section 7.2): the server
// connects to host:port and the channel carries that connection.
func (m *Mux) DialTCP(ctx context.Context, host string, port int) (net.Conn, error) {
	if port < 0 || port > 65535 {
		return nil, fmt.Errorf("channel: port %d out of range", port)
	}
	d := &connmsg.DirectTCPIP{Host: host, Port: uint32(port), OriginAddr: "127.0.0.1", OriginPort: 0}
	c, err := m.OpenChannel(ctx, "direct-tcpip", d.Marshal())
	if err != nil {
		return nil, err
	}
	return &conn{
		Channel: c,
		laddr:   &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)},
		raddr:   addrOf(host, port),
	}, nil
}

type hostPortAddr string

func (a hostPortAddr) Network() string { return "tcp" }
func (a hostPortAddr) String() string  { return string(a) }

func addrOf(host string, port int) net.Addr {
	if ip := net.ParseIP(host); ip != nil {
		return &net.TCPAddr{IP: ip, Port: port}
	}
	return hostPortAddr(net.JoinHostPort(host, strconv.Itoa(port)))
}

// DirectTCPIP returns the host and port a direct-tcpip open (RFC 4254
// section 7.2) asks the server to connect to, from its extra data, for a
// handler to check before ServeDirectTCPIP. It fails on malformed extra
// data: a name past 256 bytes, a port past 65535, trailing bytes.
func (n *NewChannel) DirectTCPIP() (host string, port int, err error) {
	d, err := connmsg.ParseDirectTCPIP(n.extra)
	if err != nil {
		return "", 0, err
	}
	return d.Host, int(d.Port), nil
}

// DirectTCPIPDialTimeout bounds the server's connection attempt.
const DirectTCPIPDialTimeout = 10 * time.Second

// ServeDirectTCPIP serves a direct-tcpip open on the server side: it
// connects to host:port, refuses the channel with ConnectFailed if that
// fails, and otherwise copies both ways until both directions end.
func ServeDirectTCPIP(ctx context.Context, nc *NewChannel, host string, port int) error {
	dctx, cancel := context.WithTimeout(ctx, DirectTCPIPDialTimeout)
	defer cancel()
	var d net.Dialer
	tc, err := d.DialContext(dctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		nc.Reject(ConnectFailed, fmt.Sprintf("connect to %s port %d failed", host, port))
		return err
	}
	c, err := nc.Accept()
	if err != nil {
		tc.Close()
		return err
	}
	return Splice(ctx, c, tc)
}

// Splice copies between a channel and a connection until both directions
// are done, passing EOF along each way, then closes both.
func Splice(ctx context.Context, c *Channel, tc net.Conn) error {
	stop := context.AfterFunc(ctx, func() { c.Close(); tc.Close() })
	defer stop()
	var wg sync.WaitGroup
	var errOut, errIn error
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, errOut = io.Copy(c, tc)
		c.CloseWrite()
	}()
	go func() {
		defer wg.Done()
		_, errIn = io.Copy(tc, c)
		if cw, ok := tc.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			tc.Close()
		}
	}()
	wg.Wait()
	c.Close()
	tc.Close()
	if errOut != nil {
		return errOut
	}
	return errIn
}

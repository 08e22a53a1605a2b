package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rsftp/rsftp"
)

// route is the way to a destination's SSH server: a TCP connection
// (AddressFamily, BindAddress), a ProxyCommand's standard input and
// output, or a direct-tcpip channel through jump hosts (ProxyJump, -J),
// each of them authenticated and its host key checked against known_hosts
// under its own name and port, as a server of its own. A route is resolved
// once (configuration, Match exec, keys) and dialled for the first
// connection and for every reconnection of a resumable session: a
// reconnection goes the same way, never straight to the server.
type route struct {
	hc  *hostConfig
	log *logger
	// command is the ProxyCommand, its tokens expanded.
	command string
	// hop is the route to the last jump host, hopCfg its client
	// configuration and hopAddr its host and port.
	hop     *route
	hopCfg  *rsftp.ClientConfig
	hopAddr string
	hopName string // as the ProxyJump names it
}

// maxJumpDepth bounds jump hosts behind one another, counting those that
// jump hosts' own ProxyJump add (a loop in the configuration).
const maxJumpDepth = 8

// newRoute resolves the way to hc's server. A ProxyJump of hops h1,...,hn
// is, as in ssh, a connection to hn through h1,...,hn-1, from which a
// direct-tcpip channel reaches the server: hn's own ProxyJump and
// ProxyCommand do not apply (the list says how to reach it), while h1,
// reached first, is resolved as any destination, its own ProxyJump or
// ProxyCommand included. Each hop reads the configuration for its own
// name (-F's file if given), with the user and port the list gives; the
// command line's -o, -i and -P are the server's, not the hops'.
func newRoute(ctx context.Context, hc *hostConfig, log *logger, depth int) (*route, error) {
	r := &route{hc: hc, log: log}
	switch {
	case hc.proxyCommand != "":
		cmd, err := expandWith(hc.proxyCommand, hc.tokens(), proxyTokens, false)
		if err != nil {
			return nil, fmt.Errorf("ProxyCommand %q: %w", hc.proxyCommand, err)
		}
		r.command = cmd
	case hc.jump != "":
		if depth >= maxJumpDepth {
			return nil, fmt.Errorf("more than %d jump hosts on the way to %s: a ProxyJump loop?", maxJumpDepth, hc.hostname)
		}
		spec, err := expandWith(hc.jump, hc.tokens(), proxyTokens, false)
		if err != nil {
			return nil, fmt.Errorf("ProxyJump %q: %w", hc.jump, err)
		}
		hops, err := parseJumpList(spec, false)
		if err != nil {
			return nil, fmt.Errorf("ProxyJump %q: %w", spec, err)
		}
		last := hops[len(hops)-1]
		var before []string
		for _, h := range hops[:len(hops)-1] {
			before = append(before, h.String())
		}
		hop, err := resolveHost(lookupRequest{
			hostArg: last.host, user: last.user, port: last.port, jump: strings.Join(before, ","),
			configFile: hc.req.configFile, logLevel: hc.req.logLevel,
		}, hc.env)
		if err != nil {
			return nil, fmt.Errorf("jump host %s: %w", last, err)
		}
		if hop.hostname == hc.hostname && hop.port == hc.port && hop.user == hc.user {
			return nil, fmt.Errorf("jump host loop via %s", last)
		}
		for _, w := range hop.cfg.warnings {
			log.warnf("%s", w)
		}
		for _, d := range hop.cfg.debug {
			log.debugf("%s", d)
		}
		if r.hopCfg, err = clientConfig(ctx, hop, log); err != nil {
			return nil, fmt.Errorf("jump host %s: %w", last, err)
		}
		if r.hop, err = newRoute(ctx, hop, log, depth+1); err != nil {
			return nil, err
		}
		r.hopAddr = net.JoinHostPort(hop.hostname, strconv.Itoa(hop.port))
		r.hopName = last.String()
	}
	return r, nil
}

// describe says how the route goes, for -v.
func (r *route) describe() string {
	switch {
	case r.command != "":
		return fmt.Sprintf(" through ProxyCommand %q", r.command)
	case r.hop != nil:
		return fmt.Sprintf(" through jump host %s (%s as %s)%s", r.hopName, r.hopAddr, r.hopCfg.User, r.hop.describe())
	}
	return ""
}

// dial opens the byte stream to the server that SSH then runs over.
func (r *route) dial(ctx context.Context) (net.Conn, error) {
	if r.command != "" {
		nc, err := dialCommand(r.command)
		if err == nil && r.hc != nil {
			nc.(*commandConn).raddr = proxiedAddr(net.JoinHostPort(r.hc.hostname, strconv.Itoa(r.hc.port)))
		}
		return nc, err
	}
	addr := net.JoinHostPort(r.hc.hostname, strconv.Itoa(r.hc.port))
	if r.hop != nil {
		r.log.debugf("Connecting to jump host %s (%s)", r.hopName, r.hopAddr)
		// The jump host's own ConnectTimeout bounds its connection and
		// handshake, as it bounds ssh's for the hop (each hop is an ssh
		// of its own there); the server's bounds the whole way.
		hctx := ctx
		if d := connectTimeout(r.hop.hc); d > 0 {
			var cancel context.CancelFunc
			hctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		jc, err := r.hop.connect(hctx, r.hopAddr, r.hopCfg)
		if err != nil {
			hop := &connectError{host: r.hopName, user: r.hopCfg.User, jump: true, err: err}
			if _, p, perr := net.SplitHostPort(r.hopAddr); perr == nil {
				hop.port, _ = strconv.Atoi(p)
			}
			return nil, hop
		}
		nc, err := jc.DialTCP(ctx, r.hc.hostname, r.hc.port)
		if err != nil {
			jc.Close()
			return nil, fmt.Errorf("jump host %s could not connect to %s: %w", r.hopName, addr, err)
		}
		return &hopConn{Conn: nc, client: jc}, nil
	}
	var d net.Dialer
	network := "tcp"
	switch strings.ToLower(r.hc.cfg.getDefault("addressfamily", "any")) {
	case "inet":
		network = "tcp4"
	case "inet6":
		network = "tcp6"
	}
	if b, ok := r.hc.cfg.get("bindaddress"); ok {
		ip, err := net.ResolveIPAddr("ip", b)
		if err != nil {
			return nil, fmt.Errorf("BindAddress %s: %w", b, err)
		}
		d.LocalAddr = &net.TCPAddr{IP: ip.IP, Zone: ip.Zone}
	}
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("ssh: dial %s: %w", addr, err)
	}
	return nc, nil
}

// connect dials the route and runs SSH to addr over it.
func (r *route) connect(ctx context.Context, addr string, cfg *rsftp.ClientConfig) (*rsftp.Client, error) {
	nc, err := r.dial(ctx)
	if err != nil {
		return nil, err
	}
	c, err := rsftp.NewClient(ctx, nc, addr, cfg)
	if err != nil {
		if cc, ok := nc.(*commandConn); ok {
			if why := cc.exited(100 * time.Millisecond); why != "" {
				err = fmt.Errorf("%w (ProxyCommand %s)", err, why)
			}
		}
		nc.Close()
		return nil, err
	}
	return c, nil
}

// hopConn is a direct-tcpip channel through a jump host: closing it
// closes the jump host's connection too.
type hopConn struct {
	net.Conn
	client *rsftp.Client
	once   sync.Once
}

// LocalAddr and RemoteAddr are those of the connection to the first
// jump host: the link that is ours, whose path a network change moves
// (the supervisor's PathChanged asks about it), not the channel's.
func (c *hopConn) LocalAddr() net.Addr  { return c.client.Transport().LocalAddr() }
func (c *hopConn) RemoteAddr() net.Addr { return c.client.Transport().RemoteAddr() }

func (c *hopConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.client.Close() })
	return err
}

// commandConn is a ProxyCommand's standard input and output, one end of
// a socket pair (on Windows a named pipe: proxypair_windows.go) whose
// other end the command holds as both. Closing it ends the command
// (SIGHUP, as ssh does, where there is one; killed if it lingers) and
// reaps it.
type commandConn struct {
	net.Conn
	raddr   net.Addr // the server's host and port, if known
	cmd     *exec.Cmd
	command string
	done    chan struct{} // closed when the command has exited
	werr    error
	once    sync.Once
}

// commandLinger is how long a ProxyCommand may take to exit after its
// connection closed and it got SIGHUP.
const commandLinger = 2 * time.Second

// dialCommand runs a ProxyCommand as ssh does: "exec command" with the
// user's shell and -c (on Windows cmd.exe /c: proxyCommand), its standard
// input and output the connection (commandPair), its standard error ours.
func dialCommand(command string) (net.Conn, error) {
	ours, theirs, err := commandPair()
	if err != nil {
		return nil, err
	}
	cmd := proxyCommand(command)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = theirs, theirs, os.Stderr
	err = cmd.Start()
	theirs.Close()
	if err != nil {
		ours.Close()
		return nil, fmt.Errorf("ProxyCommand %q: %w", command, err)
	}
	c := &commandConn{Conn: ours, cmd: cmd, command: command, done: make(chan struct{})}
	go func() {
		c.werr = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// proxiedAddr is the address of a server reached through a
// ProxyCommand: its host and port as configured (not an IP address, so
// that no network change is taken to move its path).
type proxiedAddr string

func (a proxiedAddr) Network() string { return "proxycommand" }
func (a proxiedAddr) String() string  { return string(a) }

// RemoteAddr is the server's host and port, not the socket pair's.
func (c *commandConn) RemoteAddr() net.Addr {
	if c.raddr != nil {
		return c.raddr
	}
	return c.Conn.RemoteAddr()
}

func (c *commandConn) Close() error {
	err := c.Conn.Close()
	c.stop()
	return err
}

// stop ends the command and reaps it, without making Close wait.
func (c *commandConn) stop() {
	c.once.Do(func() {
		select {
		case <-c.done:
			return
		default:
		}
		hangUp(c.cmd.Process)
		go func() {
			t := time.NewTimer(commandLinger)
			defer t.Stop()
			select {
			case <-c.done:
			case <-t.C:
				c.cmd.Process.Kill()
			}
		}()
	})
}

// exited says how the command ended if it did within wait, else "".
func (c *commandConn) exited(wait time.Duration) string {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
		return ""
	}
	var ee *exec.ExitError
	switch {
	case c.werr == nil:
		return fmt.Sprintf("%q exited", c.command)
	case errors.As(c.werr, &ee):
		return fmt.Sprintf("%q exited: %v", c.command, ee)
	}
	return fmt.Sprintf("%q: %v", c.command, c.werr)
}

// connectTimeout is hc's ConnectTimeout, 0 for none.
func connectTimeout(hc *hostConfig) time.Duration {
	if hc == nil {
		return 0
	}
	n, err := strconv.Atoi(hc.cfg.getDefault("connecttimeout", "none"))
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

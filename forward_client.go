package rsftp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/rsftp/rsftp/channel"
	"github.com/rsftp/rsftp/internal/connmsg"
)

// The client's side of forwarding: remote TCP and Unix socket listeners
// (the server listens, each connection comes back as a channel that
// Accept returns) and agent forwarding (the server opens a channel for
// each program that reaches the agent socket it made, and the client
// connects it to the local agent). Like every channel they ride on the
// resumable session: while the link is away they wait, and carry on,
// every byte once, when it is back.

// Bounds on what a server can make the client hold.
const (
	// maxAcceptQueue bounds the connections a forward holds for Accept;
	// more are refused with resource-shortage.
	maxAcceptQueue = 64
	// maxParked bounds forwarded-tcpip opens that arrive while a
	// ListenTCP for port 0 waits for its reply and match no forward yet.
	maxParked = 16
	// maxAgentDials bounds agent connections being dialled at once.
	maxAgentDials = 16
)

type tcpForwardKey struct {
	host string
	port int
}

// clientForwards routes the server's forwarded-tcpip,
// forwarded-streamlocal and auth-agent channels to the listeners and the
// agent that asked for them; any other is refused.
type clientForwards struct {
	mux                 *channel.Mux
	tcpCh, unixCh, agCh <-chan *channel.NewChannel
	ctx                 context.Context
	cancel              context.CancelFunc

	mu          sync.Mutex
	tcp         map[tcpForwardKey]*forwardListener
	unix        map[string]*forwardListener
	pendingZero int                   // ListenTCP(port 0) waiting for replies
	parked      []*channel.NewChannel // forwarded-tcpip opens waiting for them
	agentDial   func(context.Context) (net.Conn, error)
	agentDials  int // being dialled
	// Sessions granted agent forwarding, and asking for it: while both
	// are 0 the server's agent channels are refused.
	agentGranted, agentAsking int
}

// register is the multiplexer's setup (channel.NewMux): the forwarding
// channel types are registered before the first packet is read.
func (f *clientForwards) register(m *channel.Mux) {
	f.tcpCh = m.HandleChannelOpen(connmsg.ChanForwardedTCPIP)
	f.unixCh = m.HandleChannelOpen(connmsg.ChanForwardedStreamLocal)
	f.agCh = m.HandleChannelOpen(connmsg.ChanAgent)
}

// newClientForwards returns the forwarding state of a client; start it
// once the multiplexer exists.
func newClientForwards() *clientForwards {
	f := &clientForwards{tcp: map[tcpForwardKey]*forwardListener{}, unix: map[string]*forwardListener{}}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	return f
}

// start serves the registered channel types until the multiplexer ends,
// then closes every listener.
func (f *clientForwards) start(m *channel.Mux) {
	f.mux = m
	go f.loop()
}

func (f *clientForwards) loop() {
	defer f.shutdown()
	tcpCh, unixCh, agCh := f.tcpCh, f.unixCh, f.agCh
	for tcpCh != nil || unixCh != nil || agCh != nil {
		select {
		case nc, ok := <-tcpCh:
			if !ok {
				tcpCh = nil
				continue
			}
			f.routeTCP(nc)
		case nc, ok := <-unixCh:
			if !ok {
				unixCh = nil
				continue
			}
			f.routeUnix(nc)
		case nc, ok := <-agCh:
			if !ok {
				agCh = nil
				continue
			}
			f.serveAgent(nc)
		}
	}
}

func (f *clientForwards) shutdown() {
	f.cancel()
	f.mu.Lock()
	var ls []*forwardListener
	for _, l := range f.tcp {
		ls = append(ls, l)
	}
	for _, l := range f.unix {
		ls = append(ls, l)
	}
	f.tcp, f.unix = map[tcpForwardKey]*forwardListener{}, map[string]*forwardListener{}
	parked := f.parked
	f.parked = nil
	f.mu.Unlock()
	for _, l := range ls {
		l.stop()
	}
	for _, nc := range parked {
		nc.Reject(channel.ConnectFailed, "connection closing")
	}
}

// routeTCP hands a forwarded-tcpip open to its listener.
func (f *clientForwards) routeTCP(nc *channel.NewChannel) {
	m, err := connmsg.ParseForwardedTCPIP(nc.ExtraData())
	if err != nil {
		nc.Reject(channel.ConnectFailed, "malformed forwarded-tcpip open")
		return
	}
	f.mu.Lock()
	l := f.matchTCPLocked(m.Host, int(m.Port))
	if l == nil {
		if f.pendingZero > 0 && len(f.parked) < maxParked {
			// Its forward may be the one a ListenTCP for port 0 is
			// about to learn the number of.
			f.parked = append(f.parked, nc)
			f.mu.Unlock()
			return
		}
		f.mu.Unlock()
		nc.Reject(channel.ConnectFailed, fmt.Sprintf("no forwarding for %s port %d", m.Host, m.Port))
		return
	}
	f.mu.Unlock()
	l.deliver(nc, forwardTCPAddr(m.OriginAddr, int(m.OriginPort)))
}

// matchTCPLocked finds the forward of host and port: by both as the
// client asked, else by the port alone if one forward has it (a server
// may name the address it bound rather than the one asked for).
func (f *clientForwards) matchTCPLocked(host string, port int) *forwardListener {
	if l := f.tcp[tcpForwardKey{host, port}]; l != nil {
		return l
	}
	var found *forwardListener
	for k, l := range f.tcp {
		if k.port == port {
			if found != nil {
				return nil
			}
			found = l
		}
	}
	return found
}

// reroute retries the parked opens once a ListenTCP for port 0 has its
// answer; those that still match nothing are refused when no other such
// ListenTCP waits.
func (f *clientForwards) reroute() {
	f.mu.Lock()
	parked := f.parked
	f.parked = nil
	f.mu.Unlock()
	for _, nc := range parked {
		f.routeTCP(nc)
	}
}

func (f *clientForwards) routeUnix(nc *channel.NewChannel) {
	m, err := connmsg.ParseForwardedStreamLocal(nc.ExtraData())
	if err != nil {
		nc.Reject(channel.ConnectFailed, "malformed forwarded-streamlocal open")
		return
	}
	f.mu.Lock()
	l := f.unix[m.Path]
	f.mu.Unlock()
	if l == nil {
		nc.Reject(channel.ConnectFailed, "no forwarding for "+m.Path)
		return
	}
	l.deliver(nc, &net.UnixAddr{Name: "@", Net: "unix"})
}

// serveAgent connects an auth-agent@openssh.com channel to the local
// agent, if agent forwarding was asked for on this connection; a server
// that opens one unasked is refused, as OpenSSH's ssh refuses it.
func (f *clientForwards) serveAgent(nc *channel.NewChannel) {
	f.mu.Lock()
	dial := f.agentDial
	busy := f.agentDials >= maxAgentDials
	if dial != nil && !busy {
		f.agentDials++
	}
	f.mu.Unlock()
	switch {
	case dial == nil:
		nc.Reject(channel.Prohibited, "agent forwarding was not requested")
		return
	case busy:
		nc.Reject(channel.ResourceShortage, "too many agent connections being opened")
		return
	}
	go func() {
		ac, err := dial(f.ctx)
		f.mu.Lock()
		f.agentDials--
		f.mu.Unlock()
		if err != nil {
			nc.Reject(channel.ConnectFailed, "cannot reach the agent")
			return
		}
		c, err := nc.Accept()
		if err != nil {
			ac.Close()
			return
		}
		channel.Splice(f.ctx, c, ac)
	}()
}

// forwardTCPAddr is host:port as a net.Addr: a *net.TCPAddr for an address.
func forwardTCPAddr(host string, port int) net.Addr {
	if ip := net.ParseIP(host); ip != nil {
		return &net.TCPAddr{IP: ip, Port: port}
	}
	return forwardAddr{"tcp", net.JoinHostPort(host, strconv.Itoa(port))}
}

// forwardAddr is an address that is not an IP address (a name such as
// "localhost", or "" for all addresses).
type forwardAddr struct{ net, s string }

func (a forwardAddr) Network() string { return a.net }
func (a forwardAddr) String() string  { return a.s }

// forwardListener is a net.Listener for a forward the server listens
// on: Accept returns its connections, Close cancels it.
type forwardListener struct {
	f      *clientForwards
	addr   net.Addr
	key    tcpForwardKey // for TCP
	path   string        // for a Unix socket ("" for TCP)
	queue  chan accepted
	done   chan struct{}
	once   sync.Once
	closed bool // under f.mu: no longer in f's maps
}

type accepted struct {
	nc     *channel.NewChannel
	origin net.Addr
}

func newForwardListener(f *clientForwards) *forwardListener {
	return &forwardListener{f: f, queue: make(chan accepted, maxAcceptQueue), done: make(chan struct{})}
}

func (l *forwardListener) deliver(nc *channel.NewChannel, origin net.Addr) {
	select {
	case <-l.done:
		nc.Reject(channel.ConnectFailed, "forwarding cancelled")
		return
	default:
	}
	select {
	case l.queue <- accepted{nc, origin}:
	default:
		nc.Reject(channel.ResourceShortage, "too many connections waiting to be accepted")
	}
}

// Accept waits for the next connection to the forward and opens its
// channel. After Close it returns net.ErrClosed.
func (l *forwardListener) Accept() (net.Conn, error) {
	for {
		select {
		case a := <-l.queue:
			c, err := a.nc.Accept()
			if err != nil {
				if errors.Is(err, channel.ErrClosed) {
					return nil, fmt.Errorf("rsftp: accept on forward %s: %w", l.addr, net.ErrClosed)
				}
				continue // this one could not be opened; wait for the next
			}
			return c.NetConn(l.addr, a.origin), nil
		case <-l.done:
			return nil, fmt.Errorf("rsftp: accept on forward %s: %w", l.addr, net.ErrClosed)
		}
	}
}

// Addr is the address the server listens on: for TCP the address as
// asked for with the port it bound, for a Unix socket its path.
func (l *forwardListener) Addr() net.Addr { return l.addr }

// Close cancels the forward (cancel-tcpip-forward or
// cancel-streamlocal-forward: the server stops listening) and refuses
// the connections not yet accepted; those accepted go on.
func (l *forwardListener) Close() error {
	f := l.f
	f.mu.Lock()
	was := !l.closed
	l.closed = true
	if l.path != "" {
		if f.unix[l.path] == l {
			delete(f.unix, l.path)
		}
	} else if f.tcp[l.key] == l {
		delete(f.tcp, l.key)
	}
	f.mu.Unlock()
	l.stop()
	if !was {
		return nil
	}
	select {
	case <-f.mux.Done():
		return nil
	default:
	}
	var err error
	if l.path != "" {
		_, _, err = f.mux.SendRequest(f.ctx, connmsg.ReqCancelStreamLocalForward, false, (&connmsg.StreamLocalForward{Path: l.path}).Marshal())
	} else {
		_, _, err = f.mux.SendRequest(f.ctx, connmsg.ReqCancelTCPIPForward, false, (&connmsg.TCPIPForward{Host: l.key.host, Port: uint32(l.key.port)}).Marshal())
	}
	if err != nil && !errors.Is(err, channel.ErrClosed) {
		return fmt.Errorf("rsftp: cancelling forward %s: %w", l.addr, err)
	}
	return nil
}

// stop ends Accept and refuses what waits in the queue.
func (l *forwardListener) stop() {
	l.once.Do(func() { close(l.done) })
	for {
		select {
		case a := <-l.queue:
			a.nc.Reject(channel.ConnectFailed, "forwarding cancelled")
		default:
			return
		}
	}
}

// ListenTCP asks the server to listen on host:port and forward each
// connection back (remote forwarding, tcpip-forward; ssh -R). host is
// the address to bind as ssh sends it: "localhost" (ssh's default) or ""
// for all addresses, an address; servers bind the loopback addresses
// only unless configured otherwise (sshd's GatewayPorts). Port 0 asks
// the server to pick one: the listener's Addr has it. Accept returns
// each connection with the originator's address as RemoteAddr; Close
// cancels the forward (cancel-tcpip-forward). If ctx ends before the
// server answers, a forward it may still grant is cancelled (for a
// fixed port) or left unused (port 0).
func (c *Client) ListenTCP(ctx context.Context, host string, port int) (net.Listener, error) {
	if port < 0 || port > 65535 {
		return nil, fmt.Errorf("rsftp: remote forward port %d out of range", port)
	}
	f := c.fwd
	l := newForwardListener(f)
	key := tcpForwardKey{host, port}
	f.mu.Lock()
	if port != 0 {
		if f.tcp[key] != nil {
			f.mu.Unlock()
			return nil, fmt.Errorf("rsftp: already forwarding %s", net.JoinHostPort(host, strconv.Itoa(port)))
		}
		l.key = key
		f.tcp[key] = l
	} else {
		f.pendingZero++
	}
	f.mu.Unlock()
	req := (&connmsg.TCPIPForward{Host: host, Port: uint32(port)}).Marshal()
	ok, reply, err := c.mux.SendRequest(ctx, connmsg.ReqTCPIPForward, true, req)
	if err == nil && !ok {
		err = fmt.Errorf("the server refused to listen on %s", net.JoinHostPort(host, strconv.Itoa(port)))
	}
	if err == nil && port == 0 {
		var r *connmsg.TCPIPForwardReply
		if r, err = connmsg.ParseTCPIPForwardReply(reply); err == nil {
			key.port = int(r.Port)
		}
	}
	var cancel []byte // a forward the server holds that we do not use
	f.mu.Lock()
	if port == 0 {
		f.pendingZero--
		if err == nil {
			if f.tcp[key] != nil {
				err = fmt.Errorf("the server allocated port %d, which another forward has", key.port)
				cancel = (&connmsg.TCPIPForward{Host: host, Port: uint32(key.port)}).Marshal()
			} else {
				l.key = key
				f.tcp[key] = l
			}
		}
	} else if err != nil {
		delete(f.tcp, key)
		if ctx.Err() != nil {
			// The request went out: a forward granted after we
			// stopped waiting is cancelled.
			cancel = req
		}
	}
	if err != nil {
		l.closed = true
	}
	f.mu.Unlock()
	f.reroute()
	if err != nil {
		l.stop()
		if cancel != nil {
			c.mux.SendRequest(f.ctx, connmsg.ReqCancelTCPIPForward, false, cancel)
		}
		return nil, fmt.Errorf("rsftp: remote forward: %w", err)
	}
	l.addr = forwardTCPAddr(host, key.port)
	return l, nil
}

// ListenUnix asks the server to listen on a Unix socket at path and
// forward each connection back (streamlocal-forward@openssh.com; ssh -R
// with a path). Accept returns the connections; Close cancels the
// forward, and the server removes the socket.
func (c *Client) ListenUnix(ctx context.Context, path string) (net.Listener, error) {
	req := (&connmsg.StreamLocalForward{Path: path}).Marshal()
	if _, err := connmsg.ParseStreamLocalForward(req); err != nil {
		return nil, fmt.Errorf("rsftp: remote forward of %q: %w", path, err)
	}
	f := c.fwd
	l := newForwardListener(f)
	l.path = path
	l.addr = &net.UnixAddr{Name: path, Net: "unix"}
	f.mu.Lock()
	if f.unix[path] != nil {
		f.mu.Unlock()
		return nil, fmt.Errorf("rsftp: already forwarding %s", path)
	}
	f.unix[path] = l
	f.mu.Unlock()
	ok, _, err := c.mux.SendRequest(ctx, connmsg.ReqStreamLocalForward, true, req)
	if err == nil && !ok {
		err = fmt.Errorf("the server refused to listen on %s", path)
	}
	if err != nil {
		f.mu.Lock()
		if f.unix[path] == l {
			delete(f.unix, path)
		}
		l.closed = true
		f.mu.Unlock()
		l.stop()
		if ctx.Err() != nil {
			c.mux.SendRequest(f.ctx, connmsg.ReqCancelStreamLocalForward, false, req)
		}
		return nil, fmt.Errorf("rsftp: remote forward: %w", err)
	}
	return l, nil
}

// DialUnix opens a connection to the Unix socket at path on the server's
// side (direct-streamlocal@openssh.com; ssh -L with a socket path).
func (c *Client) DialUnix(ctx context.Context, path string) (net.Conn, error) {
	return c.mux.DialUnix(ctx, path)
}

// ForwardAgent asks the server to forward an agent for the session s
// (auth-agent-req@openssh.com; ssh -A): call it before the session's
// shell or command. The server then makes a socket for the session's
// programs (their SSH_AUTH_SOCK) and opens an auth-agent@openssh.com
// channel for each connection to it, which the client connects to the
// agent that dial reaches (auth.DefaultAgentSocket's, say). Until a
// session asks, such channels are refused. It fails if the server
// refuses.
func (c *Client) ForwardAgent(ctx context.Context, s *channel.Session, dial func(ctx context.Context) (net.Conn, error)) error {
	if dial == nil {
		return errors.New("rsftp: ForwardAgent needs a way to reach the agent")
	}
	f := c.fwd
	// The dialer is in place before the request goes: the server may
	// open its first agent channel right behind its reply.
	f.mu.Lock()
	f.agentDial = dial
	f.agentAsking++
	f.mu.Unlock()
	ok, err := s.Channel().SendRequest(ctx, connmsg.ReqAgentForward, true, nil)
	if err == nil && !ok {
		err = errors.New("the server refused agent forwarding")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.agentAsking--
	if err != nil {
		// Without a session that has agent forwarding the server
		// must not reach the agent.
		if f.agentGranted == 0 && f.agentAsking == 0 {
			f.agentDial = nil
		}
		return fmt.Errorf("rsftp: agent forwarding: %w", err)
	}
	f.agentGranted++
	return nil
}

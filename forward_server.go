package rsftp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/rsftp/rsftp/auth"
	"github.com/rsftp/rsftp/channel"
	"github.com/rsftp/rsftp/internal/connmsg"
)

// The server's side of forwarding: remote TCP forwarding (tcpip-forward,
// forwarded-tcpip), Unix sockets (streamlocal-forward,
// forwarded-streamlocal, direct-streamlocal) and agent forwarding
// (auth-agent-req, auth-agent channels), each checked as sshd checks it:
// the authorized_keys line's or certificate's options
// (auth.Permissions.KeyOptions: no-port-forwarding and restrict,
// permitopen, permitlisten, no-agent-forwarding), the server's lists
// (PermitOpen, PermitListen) and its callbacks, which refuse when nil.
//
// A connection's listeners belong to its session: a resumable session
// that is only detached keeps them, and connections accepted meanwhile
// open their channels, which wait for the client's answer until it is
// back; they close when the session ends for good.

// Defaults of the forwarding limits.
const (
	DefaultMaxForwardsPerConn        = 64
	DefaultMaxPendingForwardsPerConn = 64
)

// serverForwards holds one connection's listeners.
type serverForwards struct {
	sc      *serverConn
	pending chan struct{} // a token per forwarded connection awaiting its open's answer

	mu     sync.Mutex
	tcp    map[tcpForwardKey]*serverListener
	unix   map[string]*serverListener
	agents map[*serverListener]struct{}
	closed bool
}

// serverListener is one forward's listening sockets.
type serverListener struct {
	lns     []net.Listener
	done    chan struct{}
	once    sync.Once
	cleanup func() // after the sockets closed (an agent's directory)
}

func (l *serverListener) close() {
	l.once.Do(func() {
		close(l.done)
		for _, ln := range l.lns {
			ln.Close()
		}
		if l.cleanup != nil {
			l.cleanup()
		}
	})
}

func newServerForwards(sc *serverConn) *serverForwards {
	n := sc.s.cfg.MaxPendingForwardsPerConn
	if n <= 0 {
		n = DefaultMaxPendingForwardsPerConn
	}
	return &serverForwards{sc: sc, pending: make(chan struct{}, n),
		tcp: map[tcpForwardKey]*serverListener{}, unix: map[string]*serverListener{}, agents: map[*serverListener]struct{}{}}
}

// closeAll closes every listener: the session has ended.
func (sf *serverForwards) closeAll() {
	sf.mu.Lock()
	sf.closed = true
	var ls []*serverListener
	for _, l := range sf.tcp {
		ls = append(ls, l)
	}
	for _, l := range sf.unix {
		ls = append(ls, l)
	}
	for l := range sf.agents {
		ls = append(ls, l)
	}
	sf.tcp, sf.unix, sf.agents = nil, nil, nil
	sf.mu.Unlock()
	for _, l := range ls {
		l.close()
	}
}

// countLocked is the number of listeners held.
func (sf *serverForwards) countLocked() int { return len(sf.tcp) + len(sf.unix) + len(sf.agents) }

func (sf *serverForwards) maxListeners() int {
	if n := sf.sc.s.cfg.MaxForwardsPerConn; n > 0 {
		return n
	}
	return DefaultMaxForwardsPerConn
}

// add registers a listener with register, which runs under sf.mu and
// reports false if the forward is taken: an error then, or if the
// connection ended or holds its maximum of listeners.
func (sf *serverForwards) add(register func() bool) error {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	switch {
	case sf.closed:
		return errors.New("connection closing")
	case sf.countLocked() >= sf.maxListeners():
		return fmt.Errorf("%d forwards (the limit)", sf.countLocked())
	case !register():
		return errors.New("already forwarded")
	}
	return nil
}

// serve accepts connections on ln until l closes and opens a channel of
// type typ with the extra data open gives for each. Connections whose
// channel awaits the client's answer are bounded by the pending tokens:
// beyond them, new ones wait in the listen backlog.
func (sf *serverForwards) serve(l *serverListener, ln net.Listener, typ string, extra func(net.Conn) []byte) {
	ctx := sf.sc.ctx
	var delay time.Duration
	for {
		select {
		case sf.pending <- struct{}{}:
		case <-l.done:
			return
		case <-ctx.Done():
			return
		}
		tc, err := ln.Accept()
		if err != nil {
			<-sf.pending
			select {
			case <-l.done:
				return
			case <-ctx.Done():
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of descriptors, say: wait and try again.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			time.Sleep(delay)
			continue
		}
		delay = 0
		go func() {
			c, err := sf.sc.mux.OpenChannel(ctx, typ, extra(tc))
			<-sf.pending
			if err != nil {
				tc.Close()
				return
			}
			channel.Splice(ctx, c, tc)
		}()
	}
}

// globalRequest answers a global request: the forwarding ones, and a
// failure to anything else (keepalive@openssh.com among them).
func (sc *serverConn) globalRequest(r *channel.Request) {
	switch r.Type {
	case connmsg.ReqTCPIPForward:
		sc.remoteForward(r)
	case connmsg.ReqCancelTCPIPForward:
		m, err := connmsg.ParseTCPIPForward(r.Payload)
		ok := err == nil && sc.fwd.cancel(func() *serverListener {
			k := tcpForwardKey{m.Host, int(m.Port)}
			l := sc.fwd.tcp[k]
			delete(sc.fwd.tcp, k)
			return l
		})
		r.Reply(ok, nil)
	case connmsg.ReqStreamLocalForward:
		sc.streamLocalForward(r)
	case connmsg.ReqCancelStreamLocalForward:
		m, err := connmsg.ParseStreamLocalForward(r.Payload)
		ok := err == nil && sc.fwd.cancel(func() *serverListener {
			p := sc.localPath(m.Path)
			l := sc.fwd.unix[p]
			delete(sc.fwd.unix, p)
			return l
		})
		r.Reply(ok, nil)
	default:
		r.Reply(false, nil)
	}
}

// cancel closes the listener take removes from the maps (under sf.mu).
func (sf *serverForwards) cancel(take func() *serverListener) bool {
	sf.mu.Lock()
	var l *serverListener
	if !sf.closed {
		l = take()
	}
	sf.mu.Unlock()
	if l == nil {
		return false
	}
	l.close()
	return true
}

// refuse logs a refused forwarding request.
func (sc *serverConn) refuse(what string, err error) {
	sc.s.logConn(sc.remote, slog.LevelInfo, "forwarding refused", []any{"user", sc.user, "request", what, "err", err},
		"%s refused for %q: %v", what, sc.user, err)
}

// errProhibited says a request was refused by the options or the
// configuration.
var errProhibited = errors.New("not permitted")

// portForwardingAllowed is the key's or certificate's word on port
// forwarding (no-port-forwarding, restrict; a certificate without
// permit-port-forwarding): sshd's auth_opts->permit_port_forwarding_flag.
func (sc *serverConn) portForwardingAllowed() bool {
	return sc.perms == nil || sc.perms.KeyOptions == nil || sc.perms.KeyOptions.PortForwarding
}

// allowDirectTCPIP decides a direct-tcpip open (ssh -L): the key's
// options and permitopen, PermitOpen, then AllowTCPForwarding.
func (sc *serverConn) allowDirectTCPIP(host string, port int) bool {
	cfg := &sc.s.cfg
	if !sc.portForwardingAllowed() || cfg.AllowTCPForwarding == nil {
		return false
	}
	if ko := sc.keyOptions(); ko != nil && !permitOpen(ko.PermitOpen, host, port) {
		return false
	}
	return permitOpen(cfg.PermitOpen, host, port) && cfg.AllowTCPForwarding(sc.user, host, port)
}

func (sc *serverConn) keyOptions() *auth.KeyPermissions {
	if sc.perms == nil {
		return nil
	}
	return sc.perms.KeyOptions
}

// remoteForward serves tcpip-forward: the checks, the listening sockets
// (GatewayPorts decides their addresses; port 0 takes one port free on
// all of them), the reply (with the port for port 0), then the accept
// loops, which start after the reply so that no forwarded-tcpip open
// comes before it.
func (sc *serverConn) remoteForward(r *channel.Request) {
	m, err := connmsg.ParseTCPIPForward(r.Payload)
	if err != nil {
		sc.refuse("tcpip-forward", err)
		r.Reply(false, nil)
		return
	}
	host, port := m.Host, int(m.Port)
	cfg := &sc.s.cfg
	ok := sc.portForwardingAllowed() && cfg.AllowRemoteForwarding != nil
	if ko := sc.keyOptions(); ok && ko != nil {
		ok = permitListen(ko.PermitListen, host, port)
	}
	ok = ok && permitListen(cfg.PermitListen, host, port) && cfg.AllowRemoteForwarding(sc.user, host, port)
	if !ok {
		sc.refuse("tcpip-forward "+listenAddr(host, port), errProhibited)
		r.Reply(false, nil)
		return
	}
	l := &serverListener{done: make(chan struct{})}
	bound := port
	var firstErr error
	for _, a := range bindAddrs(host, cfg.GatewayPorts) {
		ln, err := net.Listen("tcp", listenAddr(a, bound))
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		l.lns = append(l.lns, ln)
		if bound == 0 {
			bound = ln.Addr().(*net.TCPAddr).Port
		}
	}
	if len(l.lns) == 0 {
		sc.refuse("tcpip-forward "+listenAddr(host, port), firstErr)
		r.Reply(false, nil)
		return
	}
	key := tcpForwardKey{host, bound}
	err = sc.fwd.add(func() bool {
		if sc.fwd.tcp[key] != nil {
			return false
		}
		sc.fwd.tcp[key] = l
		return true
	})
	if err != nil {
		l.close()
		sc.refuse("tcpip-forward "+listenAddr(host, port), err)
		r.Reply(false, nil)
		return
	}
	var reply []byte
	if port == 0 {
		reply = (&connmsg.TCPIPForwardReply{Port: uint32(bound)}).Marshal()
	}
	r.Reply(true, reply)
	for _, ln := range l.lns {
		go sc.fwd.serve(l, ln, connmsg.ChanForwardedTCPIP, func(tc net.Conn) []byte {
			m := &connmsg.ForwardedTCPIP{Host: host, Port: uint32(bound)}
			if a, ok := tc.RemoteAddr().(*net.TCPAddr); ok {
				m.OriginAddr, m.OriginPort = a.IP.String(), uint32(a.Port)
			}
			return m.Marshal()
		})
	}
}

// localPath makes a socket path a client gave absolute: relative to the
// home directory, where sshd's sessions start.
func (sc *serverConn) localPath(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return p
	}
	return filepath.Join(home, p)
}

// allowStreamLocal decides Unix socket forwarding: the key's options
// (no-port-forwarding covers sockets, as in sshd), then
// AllowStreamLocalForwarding.
func (sc *serverConn) allowStreamLocal(path string, listen bool) bool {
	f := sc.s.cfg.AllowStreamLocalForwarding
	return sc.portForwardingAllowed() && f != nil && f(sc.user, path, listen)
}

// streamLocalForward serves streamlocal-forward@openssh.com: a socket
// at the path, which must not exist yet, readable by the user alone
// (sshd's StreamLocalBindMask 0177), removed when the forward ends.
func (sc *serverConn) streamLocalForward(r *channel.Request) {
	m, err := connmsg.ParseStreamLocalForward(r.Payload)
	if err != nil {
		sc.refuse("streamlocal-forward", err)
		r.Reply(false, nil)
		return
	}
	path := sc.localPath(m.Path)
	if !sc.allowStreamLocal(path, true) {
		sc.refuse("streamlocal-forward "+path, errProhibited)
		r.Reply(false, nil)
		return
	}
	ln, err := listenUnixPrivate(path, sc.s.cfg.StreamLocalBindUnlink)
	if err != nil {
		sc.refuse("streamlocal-forward "+path, err)
		r.Reply(false, nil)
		return
	}
	l := &serverListener{lns: []net.Listener{ln}, done: make(chan struct{})}
	err = sc.fwd.add(func() bool {
		if sc.fwd.unix[path] != nil {
			return false
		}
		sc.fwd.unix[path] = l
		return true
	})
	if err != nil {
		l.close()
		sc.refuse("streamlocal-forward "+path, err)
		r.Reply(false, nil)
		return
	}
	r.Reply(true, nil)
	// The path as the client asked for it names the forward.
	extra := (&connmsg.ForwardedStreamLocal{Path: m.Path}).Marshal()
	go sc.fwd.serve(l, ln, connmsg.ChanForwardedStreamLocal, func(net.Conn) []byte { return extra })
}

// listenUnixPrivate listens on a Unix socket at path with mode 0600: it
// is made in a private directory beside path and moved there, so that it
// is never reachable by others, and the move fails if path exists; with
// unlink, a socket at path is removed first (a file of another kind
// stays, and the move fails).
func listenUnixPrivate(path string, unlink bool) (net.Listener, error) {
	dir, err := os.MkdirTemp(filepath.Dir(path), ".rsftp-sock-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	tmp := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", tmp)
	if err != nil {
		return nil, err
	}
	ul := ln.(*net.UnixListener)
	ul.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err != nil {
		ul.Close()
		return nil, err
	}
	if fi, err := os.Lstat(path); unlink && err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(path)
	}
	// A hard link fails if path exists, as bind would (rename would
	// replace it).
	if err := os.Link(tmp, path); err != nil {
		ul.Close()
		return nil, err
	}
	return &unlinkingListener{UnixListener: ul, path: path}, nil
}

// unlinkingListener removes its socket at path when closed.
type unlinkingListener struct {
	*net.UnixListener
	path string
	once sync.Once
}

func (l *unlinkingListener) Addr() net.Addr { return &net.UnixAddr{Name: l.path, Net: "unix"} }

func (l *unlinkingListener) Close() error {
	err := l.UnixListener.Close()
	l.once.Do(func() { os.Remove(l.path) })
	return err
}

// directStreamLocal serves a direct-streamlocal@openssh.com open.
func (sc *serverConn) directStreamLocal(nc *channel.NewChannel) {
	p, err := nc.DirectStreamLocal()
	if err != nil {
		nc.Reject(channel.ConnectFailed, "malformed direct-streamlocal open")
		return
	}
	path := sc.localPath(p)
	if !sc.allowStreamLocal(path, false) {
		sc.refuse("direct-streamlocal "+path, errProhibited)
		nc.Reject(channel.Prohibited, "unix socket forwarding is disabled")
		return
	}
	go channel.ServeDirectStreamLocal(sc.ctx, nc, path)
}

// forwardAgent grants an auth-agent-req@openssh.com on sess: a private
// directory (0700) with a socket in it, sess.AgentSocket set to its
// path, and an auth-agent@openssh.com channel to the client for each
// connection to it. stop removes socket and directory; the end of the
// connection does too.
func (sc *serverConn) forwardAgent(sess *ServerSession) (stop func(), err error) {
	if sess.AgentSocket != "" {
		return nil, errors.New("agent forwarding already on for this session")
	}
	f := sc.s.cfg.AllowAgentForwarding
	if ko := sc.keyOptions(); (ko != nil && !ko.AgentForwarding) || f == nil || !f(sc.user) {
		return nil, errProhibited
	}
	dir, err := os.MkdirTemp("", "rsftp-agent-")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "agent."+strconv.Itoa(os.Getpid()))
	ln, err := net.Listen("unix", path)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	l := &serverListener{lns: []net.Listener{ln}, done: make(chan struct{}), cleanup: func() { os.RemoveAll(dir) }}
	err = sc.fwd.add(func() bool {
		sc.fwd.agents[l] = struct{}{}
		return true
	})
	if err != nil {
		l.close()
		return nil, err
	}
	go sc.fwd.serve(l, ln, connmsg.ChanAgent, func(net.Conn) []byte { return nil })
	sess.AgentSocket = path
	return func() {
		sc.fwd.cancel(func() *serverListener {
			delete(sc.fwd.agents, l)
			return l
		})
		l.close()
	}, nil
}

// agentRequest answers an auth-agent-req@openssh.com on a session
// (serveSession's case); the returned stop, if not nil, ends the
// forwarding with the session.
func (sc *serverConn) agentRequest(r *channel.Request, sess *ServerSession) (stop func()) {
	stop, err := sc.forwardAgent(sess)
	if err != nil {
		sc.refuse("auth-agent-req", err)
		r.Reply(false, nil)
		return nil
	}
	r.Reply(true, nil)
	return stop
}

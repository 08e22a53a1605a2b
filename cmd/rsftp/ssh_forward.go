package main

// The local side of rsftp ssh's forwards: the listeners of -L and -D on
// this machine, the server's listeners of -R (Client.ListenTCP,
// ListenUnix) whose connections this side completes, and the forwarded
// connections in flight, which ~# lists. Each forwarded connection is a
// channel of the session, so it survives a lost link with it.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rsftp/rsftp"
)

// forwarder runs a session's forwards.
type forwarder struct {
	ctx     context.Context
	client  *rsftp.Client
	log     *logger
	gateway bool // GatewayPorts: -L and -D listen on every address by default

	mu        sync.Mutex
	listeners []*fwdListener
	conns     map[int]*fwdConn
	next      int
	stopped   bool
	idle      chan struct{} // closed and replaced when the last connection ends
	wg        sync.WaitGroup
}

type fwdListener struct {
	spec forwardSpec
	lns  []net.Listener
	// where says where it listens ("127.0.0.1:8080, [::1]:8080", or
	// the port the server allocated).
	where string
}

type fwdConn struct {
	id     int
	spec   forwardSpec
	from   string
	to     string
	since  time.Time
	closer io.Closer
}

func newForwarder(ctx context.Context, c *rsftp.Client, log *logger, gateway bool) *forwarder {
	return &forwarder{ctx: ctx, client: c, log: log, gateway: gateway, conns: map[int]*fwdConn{}, idle: make(chan struct{})}
}

// forwardListenAddrs are the addresses a -L or -D listens on: the bind address
// given ("" and "*" every address, "localhost" the loopback ones), or
// without one the loopback addresses (every address with GatewayPorts).
func forwardListenAddrs(f forwardSpec, gateway bool) []string {
	port := strconv.Itoa(f.listenPort)
	host := f.bindHost
	if !f.bindSet {
		host = "localhost"
		if gateway {
			host = "*"
		}
	}
	switch host {
	case "", "*":
		return []string{":" + port}
	case "localhost":
		return []string{"127.0.0.1:" + port, "[::1]:" + port}
	}
	return []string{net.JoinHostPort(host, port)}
}

// start sets up one forward. An error means it could not listen at all
// (or the server refused a -R): ssh's "forwarding failed", fatal with
// ExitOnForwardFailure.
func (fw *forwarder) start(f forwardSpec) error {
	l := &fwdListener{spec: f}
	switch f.kind {
	case 'L', 'D':
		if f.listenPath != "" {
			ln, err := net.Listen("unix", f.listenPath)
			if err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			l.lns, l.where = []net.Listener{ln}, f.listenPath
			break
		}
		var errs []error
		var where []string
		for _, a := range forwardListenAddrs(f, fw.gateway) {
			ln, err := net.Listen("tcp", a)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			l.lns = append(l.lns, ln)
			where = append(where, ln.Addr().String())
		}
		if len(l.lns) == 0 {
			return fmt.Errorf("%s: %w", f, errors.Join(errs...))
		}
		for _, err := range errs {
			fw.log.debugf("%s: %v", f, err) // ::1 on a machine without IPv6
		}
		l.where = strings.Join(where, ", ")
	case 'R':
		var ln net.Listener
		var err error
		if f.listenPath != "" {
			ln, err = fw.client.ListenUnix(fw.ctx, f.listenPath)
		} else {
			host := f.bindHost
			switch {
			case !f.bindSet:
				host = "localhost"
			case host == "*":
				host = ""
			}
			ln, err = fw.client.ListenTCP(fw.ctx, host, f.listenPort)
		}
		if err != nil {
			return fmt.Errorf("%s: the server refused: %w", f, err)
		}
		l.lns, l.where = []net.Listener{ln}, ln.Addr().String()
		if f.listenPath == "" && f.listenPort == 0 {
			if a, ok := ln.Addr().(*net.TCPAddr); ok {
				fw.log.infof("Allocated port %d for remote forward to %s", a.Port, f.connectString())
			}
		}
	}
	fw.mu.Lock()
	if fw.stopped {
		fw.mu.Unlock()
		for _, ln := range l.lns {
			ln.Close()
		}
		return errors.New("forwarding stopped")
	}
	fw.listeners = append(fw.listeners, l)
	fw.mu.Unlock()
	fw.log.debugf("%s listening on %s", f, l.where)
	for _, ln := range l.lns {
		fw.wg.Add(1)
		go fw.accept(l, ln)
	}
	return nil
}

func (fw *forwarder) accept(l *fwdListener, ln net.Listener) {
	defer fw.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		go fw.serve(l.spec, c)
	}
}

// track records a forwarded connection for ~#; untrack ends it.
func (fw *forwarder) track(f forwardSpec, from, to string, c io.Closer) (id int, ok bool) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.stopped && f.kind != 'R' {
		return 0, false
	}
	fw.next++
	fw.conns[fw.next] = &fwdConn{id: fw.next, spec: f, from: from, to: to, since: time.Now(), closer: c}
	return fw.next, true
}

func (fw *forwarder) untrack(id int) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	delete(fw.conns, id)
	if len(fw.conns) == 0 {
		close(fw.idle)
		fw.idle = make(chan struct{})
	}
}

// serve completes one accepted connection: through a channel (-L, -D)
// or to this side's target (-R).
func (fw *forwarder) serve(f forwardSpec, c net.Conn) {
	from := c.RemoteAddr().String()
	if from == "" || from == "@" {
		from = "a local socket"
	}
	id, ok := fw.track(f, from, f.connectString(), c)
	if !ok {
		c.Close()
		return
	}
	defer fw.untrack(id)
	defer c.Close()
	ctx := fw.ctx
	var extra []byte
	var reply func(bool) error
	var host string
	var port int
	if f.dynamic() {
		req, rep, ex, err := socksHandshake(c)
		if err != nil {
			fw.log.warnf("%s: connection from %s: %v", f, from, err)
			return
		}
		reply, extra, host, port = rep, ex, req.host, req.port
		fw.mu.Lock()
		if fc := fw.conns[id]; fc != nil {
			fc.to = req.target()
		}
		fw.mu.Unlock()
	} else {
		host, port = f.connectHost, f.connectPort
	}
	var peer net.Conn
	var err error
	switch {
	case f.kind == 'R' && f.connectPath != "":
		var d net.Dialer
		peer, err = d.DialContext(ctx, "unix", f.connectPath)
	case f.kind == 'R':
		var d net.Dialer
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		peer, err = d.DialContext(dctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		cancel()
	case f.connectPath != "":
		peer, err = fw.client.DialUnix(ctx, f.connectPath)
	default:
		peer, err = fw.client.DialTCP(ctx, host, port)
	}
	if err != nil {
		if reply != nil {
			reply(false)
		}
		target := hostPort(host, port)
		if f.connectPath != "" {
			target = f.connectPath
		}
		where := "the server"
		if f.kind == 'R' {
			where = "this side"
		}
		fw.log.warnf("%s: connection from %s to %s (from %s) failed: %v", f, from, target, where, err)
		return
	}
	defer peer.Close()
	if reply != nil {
		if err := reply(true); err != nil {
			return
		}
	}
	if len(extra) > 0 {
		if _, err := peer.Write(extra); err != nil {
			return
		}
	}
	splice(c, peer)
}

// splice copies both ways until both directions end, passing each EOF on
// as a half close where the connection has one.
func splice(a, b net.Conn) {
	done := make(chan struct{}, 2)
	half := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			dst.Close()
		}
		done <- struct{}{}
	}
	go half(a, b)
	go half(b, a)
	<-done
	<-done
}

// stopListening closes every listener: no new forwarded connections
// (~&, and the end of the session).
func (fw *forwarder) stopListening() {
	fw.mu.Lock()
	fw.stopped = true
	ls := fw.listeners
	fw.listeners = nil
	fw.mu.Unlock()
	for _, l := range ls {
		for _, ln := range l.lns {
			ln.Close()
		}
	}
}

// active is the number of forwarded connections open, and a channel
// closed when that number next drops to zero.
func (fw *forwarder) active() (int, <-chan struct{}) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	return len(fw.conns), fw.idle
}

// close ends every listener and forwarded connection.
func (fw *forwarder) close() {
	fw.stopListening()
	fw.mu.Lock()
	var cs []io.Closer
	for _, c := range fw.conns {
		cs = append(cs, c.closer)
	}
	fw.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
}

// list is what ~# prints: the listeners and the forwarded connections
// open, one a line (CR LF: the terminal may be raw).
func (fw *forwarder) list(now time.Time) string {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	var b strings.Builder
	if len(fw.listeners) == 0 && len(fw.conns) == 0 {
		b.WriteString("No forwards and no forwarded connections.\r\n")
		return b.String()
	}
	if len(fw.listeners) > 0 {
		b.WriteString("Forwards:\r\n")
		for _, l := range fw.listeners {
			fmt.Fprintf(&b, "  %s (listening on %s)\r\n", l.spec, l.where)
		}
	}
	if len(fw.conns) == 0 {
		b.WriteString("No forwarded connections open.\r\n")
		return b.String()
	}
	b.WriteString("The following forwarded connections are open:\r\n")
	ids := make([]int, 0, len(fw.conns))
	for id := range fw.conns {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	for _, id := range ids {
		c := fw.conns[id]
		kind := map[byte]string{'L': "local", 'R': "remote", 'D': "dynamic"}[c.spec.kind]
		fmt.Fprintf(&b, "  #%d %s forward %s: from %s to %s, open %s\r\n", c.id, kind, c.spec.listenString(), c.from, c.to,
			shortDuration(now.Sub(c.since).Truncate(time.Second)))
	}
	return b.String()
}

// cancel ends the forward of kind that listens on spec, [bind:]port or
// a socket path as it was given (-KL, -KR, -KD of ~C): its listener
// closes (for -R, the server's: cancel-tcpip-forward); connections it
// already forwarded go on.
func (fw *forwarder) cancel(kind byte, spec string) error {
	host, port, path := "", -1, ""
	bindSet := false
	if strings.Contains(spec, "/") {
		path = spec
	} else {
		h, p, err := net.SplitHostPort(spec)
		if err != nil {
			h, p = "", spec
		} else {
			bindSet = true
		}
		host = h
		if port = parsePort(p); port < 0 {
			return fmt.Errorf("bad forwarding specification %q", spec)
		}
	}
	fw.mu.Lock()
	var found *fwdListener
	for i, l := range fw.listeners {
		f := l.spec
		if f.kind != kind || f.listenPath != path || (path == "" && f.listenPort != port && !(kind == 'R' && f.listenPort == 0 && strings.HasSuffix(l.where, ":"+strconv.Itoa(port)))) {
			continue
		}
		if bindSet && f.bindHost != host {
			continue
		}
		found = l
		fw.listeners = append(fw.listeners[:i], fw.listeners[i+1:]...)
		break
	}
	fw.mu.Unlock()
	if found == nil {
		return fmt.Errorf("Unknown port forwarding %q.", spec)
	}
	for _, ln := range found.lns {
		ln.Close()
	}
	return nil
}

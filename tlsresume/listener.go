package tlsresume

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/rsftp/rsftp/resume"
)

// Listener accepts TLS connections on an inner listener. Accept returns
// new sessions only: a *Conn for a client of the resumable mode, a
// *tls.Conn (handshake done) for any other TLS client. A connection that
// resumes a session is absorbed: the session's *Conn, returned before,
// goes on over it.
type Listener struct {
	inner net.Listener
	conf  *tls.Config
	cfg   *Config
	reg   *resume.Registry

	conns  chan net.Conn
	slots  chan struct{}
	closed chan struct{}
	once   sync.Once
	err    error

	mu       sync.Mutex
	live     map[*resume.Session]*Conn
	byHandle map[string]*Conn // the same Conns by their sessions' handles
}

// NewListener makes a Listener over inner with the server's TLS config
// (its NextProtos are the application's; GetConfigForClient, if set, is
// called first and its result used likewise).
func NewListener(inner net.Listener, tlsConf *tls.Config, cfg *Config) *Listener {
	cfg = cfg.get()
	ln := &Listener{inner: inner, cfg: cfg, conns: make(chan net.Conn), closed: make(chan struct{}),
		live: map[*resume.Session]*Conn{}, byHandle: map[string]*Conn{}}
	n := cfg.MaxHandshakes
	if n <= 0 {
		n = 256
	}
	ln.slots = make(chan struct{}, n)
	ln.reg = &resume.Registry{Hold: cfg.Hold, MaxSessions: cfg.MaxSessions, MaxDetachedPerUser: cfg.MaxDetachedPerClient,
		MaxRetainedBytes: cfg.MaxRetainedBytes, MaxRetainedPerSession: cfg.RetentionLimit, Budget: cfg.Budget,
		IdleTimeout: cfg.IdleTimeout, Events: cfg.Events}
	base := tlsConf.Clone()
	if base == nil {
		base = &tls.Config{}
	}
	ln.conf = &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		c := base
		if base.GetConfigForClient != nil {
			got, err := base.GetConfigForClient(h)
			if err != nil {
				return nil, err
			}
			if got != nil {
				c = got
			}
		}
		c = c.Clone()
		c.GetConfigForClient = nil
		if !cfg.Disable && allows13(c) && offers13(h) {
			c.NextProtos = serverProtos(c.NextProtos)
		}
		return c, nil
	}}
	go ln.serve()
	return ln
}

// Listen listens on a TCP address; see NewListener.
func Listen(network, addr string, tlsConf *tls.Config, cfg *Config) (*Listener, error) {
	inner, err := net.Listen(network, addr)
	if err != nil {
		return nil, err
	}
	return NewListener(inner, tlsConf, cfg), nil
}

// Accept returns the next new session or plain TLS connection.
func (ln *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-ln.conns:
		return c, nil
	case <-ln.closed:
		return nil, ln.err
	}
}

// ErrListenerClosed ends a server session that lost its connection
// after its Listener was closed: nothing can resume it any more.
var ErrListenerClosed = errors.New("tlsresume: the listener is closed; the session cannot resume")

// Close stops accepting connections and reconnections. Sessions already
// accepted go on while their connections last; those detached now, or
// once they detach, end (no session can resume here from then on, and
// their retained data would be held for nothing until the hold time).
func (ln *Listener) Close() error {
	var err error
	ln.once.Do(func() {
		ln.err = net.ErrClosed
		close(ln.closed)
		err = ln.inner.Close()
		ln.mu.Lock()
		var detached []*resume.Session
		for s := range ln.live {
			if s.State() == resume.Detached {
				detached = append(detached, s)
			}
		}
		ln.mu.Unlock()
		for _, s := range detached {
			s.CloseWithError(ErrListenerClosed)
		}
	})
	return err
}

func (ln *Listener) isClosed() bool {
	select {
	case <-ln.closed:
		return true
	default:
		return false
	}
}

// Addr is the inner listener's address.
func (ln *Listener) Addr() net.Addr { return ln.inner.Addr() }

// Registry is the server's table of sessions (statistics, Close to end
// them all).
func (ln *Listener) Registry() *resume.Registry { return ln.reg }

func (ln *Listener) serve() {
	for {
		raw, err := ln.inner.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			ln.once.Do(func() {
				ln.err = err
				close(ln.closed)
			})
			return
		}
		select {
		case ln.slots <- struct{}{}:
		case <-ln.closed:
			raw.Close()
			return
		}
		go func() {
			defer func() { <-ln.slots }()
			ln.handshake(raw)
		}()
	}
}

func (ln *Listener) timeout() time.Duration {
	if ln.cfg.HandshakeTimeout > 0 {
		return ln.cfg.HandshakeTimeout
	}
	return 10 * time.Second
}

// handshake runs a new connection's TLS handshake and, in the resumable
// mode, its first record: HELLO makes a session, REQUEST resumes one.
func (ln *Listener) handshake(raw net.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), ln.timeout())
	defer cancel()
	raw.SetDeadline(time.Now().Add(ln.timeout()))
	bc := &batchConn{Conn: raw}
	tc := tls.Server(bc, ln.conf)
	if err := tc.HandshakeContext(ctx); err != nil {
		raw.Close()
		return
	}
	st := tc.ConnectionState()
	if _, ok := splitALPN(st.NegotiatedProtocol); !ok {
		raw.SetDeadline(time.Time{})
		ln.deliver(tc)
		return
	}
	l, err := newLink(tc, bc)
	if err != nil {
		raw.Close()
		return
	}
	p, err := l.readRecord(true)
	if err != nil {
		l.Abort()
		return
	}
	raw.SetDeadline(time.Time{})
	switch p[0] {
	case RecHello:
		ln.newSession(l, &st)
	case RecRequest:
		// The session's Conn reads and writes through l as soon as the
		// registry attaches it: l takes the Conn's settings first.
		if req, err := resume.ParseRequest(p); err == nil {
			ln.mu.Lock()
			c := ln.byHandle[string(req.Handle)]
			ln.mu.Unlock()
			if c != nil {
				c.adopt(l)
			}
		}
		s, err := ln.reg.Resume(l, p)
		if err != nil {
			return // answered and dropped by the registry
		}
		ln.mu.Lock()
		c := ln.live[s]
		ln.mu.Unlock()
		if c != nil {
			c.attached(l)
		}
	default:
		l.Disconnect(ReasonProtocolError, fmt.Sprintf("%s as the first record", typeName(p[0])))
	}
}

// newSession starts the session a HELLO asked for on l and hands its
// Conn to Accept.
func (ln *Listener) newSession(l *link, st *tls.ConnectionState) {
	rk, err := resumeKey(st)
	if err != nil {
		l.Disconnect(ReasonProtocolError, err.Error())
		return
	}
	o := resume.Owner{ID: clientID(st, l.RemoteAddr())}
	o.Name = o.ID
	s, err := ln.reg.Offer(l, rk, o)
	if err != nil {
		if errors.Is(err, resume.ErrTooManySessions) {
			// Told with a hold of 0: the client gives up this mode.
			l.Close()
		} else {
			l.Abort()
		}
		return
	}
	c := newConn(s, l, ln.cfg)
	c.budget = ln.reg.RetainedBudget()
	ln.mu.Lock()
	ln.live[s] = c
	ln.byHandle[string(s.Handle())] = c
	ln.mu.Unlock()
	s.Observe(func(st resume.State) {
		switch {
		case st == resume.Closed:
			ln.mu.Lock()
			delete(ln.live, s)
			delete(ln.byHandle, string(s.Handle()))
			ln.mu.Unlock()
		case st == resume.Detached && ln.isClosed():
			go s.CloseWithError(ErrListenerClosed)
		}
	})
	if !ln.deliver(c) {
		s.Close()
	}
}

// deliver hands c to Accept, or reports that the listener closed.
func (ln *Listener) deliver(c net.Conn) bool {
	select {
	case ln.conns <- c:
		return true
	case <-ln.closed:
		c.Close()
		return false
	}
}

// clientID names a client for the per-client limits: its certificate's
// public key if it showed one, else its IP address.
func clientID(st *tls.ConnectionState, remote net.Addr) string {
	if len(st.PeerCertificates) > 0 {
		h := sha256.Sum256(st.PeerCertificates[0].RawSubjectPublicKeyInfo)
		return "key:" + hex.EncodeToString(h[:])
	}
	if ta, ok := remote.(*net.TCPAddr); ok {
		return "ip:" + ta.IP.String()
	}
	if remote == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(remote.String())
	if err != nil {
		return "addr:" + remote.String()
	}
	return "ip:" + host
}

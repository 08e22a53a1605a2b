package rsftp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/rsftp/rsftp/internal/netwatch"
	"github.com/rsftp/rsftp/resume"
	"github.com/rsftp/rsftp/transport"
)

// ResumeConfig turns on session resumption for a client
// (docs/PROTOCOL.resume.md). With a server that does not offer it the
// connection is plain SSH.
type ResumeConfig struct {
	// Redial opens a new connection to the server for a reconnection
	// attempt. If nil, the client dials the address it was given again,
	// resolving the name anew (a DNS change is followed).
	Redial func(ctx context.Context) (net.Conn, error)
	// AliveInterval and AliveCountMax detect a dead link that gives no
	// error (a blackhole): after AliveInterval without a packet from the
	// server the client pings it, and after AliveCountMax such intervals
	// it drops the connection and reconnects. Defaults 1 s and 3.
	AliveInterval time.Duration
	AliveCountMax int
	// MinBackoff and MaxBackoff bound the wait between attempts, which
	// doubles from MinBackoff with 25 % jitter. Defaults 50 ms and 5 s.
	MinBackoff, MaxBackoff time.Duration
	// AttemptTimeout bounds one attempt (connect, key exchange, resume).
	// Default 10 s.
	AttemptTimeout time.Duration
	// NoNetworkWatch turns off watching the system's addresses and routes
	// (Linux netlink): by default a change that moves the route to the
	// server to another source address reconnects at once, and one that
	// happens while detached retries at once.
	NoNetworkWatch bool
	// Events, if set, receives each change of the session's connection.
	// It is called from the client's goroutine and must not block.
	Events func(Event)
}

// ErrHoldExpired ends a client's session when the server's hold time ran
// out before a reconnection succeeded.
var ErrHoldExpired = resume.ErrHoldExpired

// supervise starts the resume.Supervisor of the client's session: the
// policy of rc, and a Redial that dials the server again (rc.Redial, or
// network and addr, resolving the name anew) and runs the key exchange
// with tc, whose host key callback accepts only the first connection's
// key.
func (c *Client) supervise(rc *ResumeConfig, tc transport.Config, network, addr string) *resume.Supervisor {
	dial := rc.Redial
	if dial == nil {
		dial = func(ctx context.Context) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		}
	}
	cfg := resume.SupervisorConfig{
		Redial: func(ctx context.Context) (resume.Transport, error) {
			nc, err := dial(ctx)
			if err != nil {
				return nil, fmt.Errorf("connect: %w", err)
			}
			conn, err := transport.NewClientConn(ctx, nc, &tc)
			if err != nil {
				nc.Close()
				return nil, fmt.Errorf("handshake: %w", err)
			}
			if !conn.Negotiated(resume.ClientKexName) {
				conn.Close()
				return nil, errors.New("the server no longer offers session resumption")
			}
			return conn, nil
		},
		Attached: func(t resume.Transport) {
			conn := t.(*transport.Conn)
			conn.SetAuthenticated()
			c.setConn(conn)
		},
		AliveInterval:  rc.AliveInterval,
		AliveCountMax:  rc.AliveCountMax,
		Probe:          func(t resume.Transport) { c.probe(t.(*transport.Conn), rc) },
		MinBackoff:     rc.MinBackoff,
		MaxBackoff:     rc.MaxBackoff,
		AttemptTimeout: rc.AttemptTimeout,
		Remote:         addr,
		Events:         rc.Events,
	}
	var watcher *netwatch.Watcher
	if !rc.NoNetworkWatch {
		if w, err := netwatch.New(); err == nil {
			watcher = w
			cfg.PathChanges = w.Changes()
			cfg.PathChanged = func(t resume.Transport) bool {
				conn := t.(*transport.Conn)
				return netwatch.PathChanged(conn.LocalAddr(), conn.RemoteAddr())
			}
		}
	}
	sv := resume.Supervise(c.rs, c.Transport(), cfg)
	if watcher != nil {
		go func() {
			<-sv.Done()
			watcher.Close()
		}()
	}
	return sv
}

// probe asks the server for an answer: ping@openssh.com where it offers
// it, else a keepalive@openssh.com global request with want-reply, which
// every server answers (with REQUEST_FAILURE if it does not know it). A
// server that does not advertise ping would otherwise hear nothing from
// an idle client, which would take its silence for a dead link every few
// seconds. The request is a connection-layer message, counted and
// resent like any other; probe waits for its reply (bounded), so that
// one is outstanding at a time.
func (c *Client) probe(conn *transport.Conn, rc *ResumeConfig) {
	if _, ok := conn.ExtInfo("ping@openssh.com"); ok {
		conn.SendPing(nil)
		return
	}
	interval, count := rc.AliveInterval, rc.AliveCountMax
	if interval <= 0 {
		interval = time.Second
	}
	if count <= 0 {
		count = 3
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(count+1)*interval)
	defer cancel()
	c.mux.SendRequest(ctx, "keepalive@openssh.com", true, nil)
}

package rsftp

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
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

func (rc *ResumeConfig) withDefaults() ResumeConfig {
	c := *rc
	if c.AliveInterval <= 0 {
		c.AliveInterval = time.Second
	}
	if c.AliveCountMax <= 0 {
		c.AliveCountMax = 3
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 50 * time.Millisecond
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(5*time.Second, c.MinBackoff)
	}
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = 10 * time.Second
	}
	return c
}

// ErrHoldExpired ends a client's session when the server's hold time ran
// out before a reconnection succeeded.
var ErrHoldExpired = errors.New("ssh: the server's hold time passed before the connection came back")

// resumer is the client's supervisor of a resumable session: it watches
// the link, and when the session detaches it reconnects until the hold
// time runs out.
type resumer struct {
	c       *Client
	cfg     ResumeConfig
	rs      *resume.Session
	redial  func(ctx context.Context) (net.Conn, error)
	tcfg    transport.Config // with the host key callback
	addr    string
	kick    chan struct{} // a manual or network trigger
	watcher *netwatch.Watcher
	done    chan struct{} // closed when run returns
}

func (r *resumer) emit(e Event) {
	if r.cfg.Events != nil {
		e.Time = time.Now()
		r.cfg.Events(e)
	}
}

// trigger asks for a reconnection now.
func (r *resumer) trigger() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *resumer) run() {
	defer close(r.done)
	if !r.cfg.NoNetworkWatch {
		if w, err := netwatch.New(); err == nil {
			r.watcher = w
			defer w.Close()
		}
	}
	r.emit(Event{Kind: EventConnected, Hold: r.rs.Hold(), Remote: r.addr})
	for {
		det, why := r.rs.Detached()
		stop := make(chan struct{})
		go r.liveness(r.c.Transport(), stop)
		select {
		case <-r.rs.Done():
			close(stop)
			r.emit(Event{Kind: EventClosed, Err: r.rs.Err(), Remote: r.addr})
			return
		case <-det:
		}
		close(stop)
		if !r.reconnect(why()) {
			r.emit(Event{Kind: EventClosed, Err: r.rs.Err(), Remote: r.addr})
			return
		}
	}
}

// liveness watches one attached connection until stop: silence from the
// server (a resume.Watchdog: AliveInterval, then AliveCountMax probes),
// a manual trigger, and netlink path changes.
func (r *resumer) liveness(conn *transport.Conn, stop <-chan struct{}) {
	wd := resume.NewWatchdog(packetCounter{conn}, resume.WatchdogConfig{
		Interval: r.cfg.AliveInterval,
		Probes:   r.cfg.AliveCountMax,
		Probe:    func() { r.probe(conn) },
		Lost: func(silent time.Duration) {
			r.rs.DetachTransport(conn, fmt.Errorf("no packet from the server for %v", silent.Round(time.Millisecond)))
		},
	})
	defer wd.Stop()
	var changes <-chan struct{}
	if r.watcher != nil {
		changes = r.watcher.Changes()
	}
	for {
		select {
		case <-stop:
			return
		case <-r.kick:
			r.rs.Detach(errors.New("reconnection requested"))
			return
		case <-changes:
			if netwatch.PathChanged(conn.LocalAddr(), conn.RemoteAddr()) {
				r.rs.Detach(errors.New("the network path to the server changed"))
				return
			}
		}
	}
}

// packetCounter reads a connection's count of packets received, its own
// (PONG, IGNORE) included, for a resume.Watchdog.
type packetCounter struct{ *transport.Conn }

func (c packetCounter) PacketsReceived() uint64 { return c.Seq().InTotal }

// probe asks the server for an answer: ping@openssh.com where it offers
// it, else a keepalive@openssh.com global request with want-reply, which
// every server answers (with REQUEST_FAILURE if it does not know it). A
// server that does not advertise ping would otherwise hear nothing from
// an idle client, which would take its silence for a dead link every few
// seconds. The request is a connection-layer message, counted and
// resent like any other; probe waits for its reply (bounded), so that
// one is outstanding at a time.
func (r *resumer) probe(conn *transport.Conn) {
	if _, ok := conn.ExtInfo("ping@openssh.com"); ok {
		conn.SendPing(nil)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(r.cfg.AliveCountMax+1)*r.cfg.AliveInterval)
	defer cancel()
	r.c.mux.SendRequest(ctx, "keepalive@openssh.com", true, nil)
}

// reconnect runs attempts until one succeeds (true) or the session is
// over (false).
func (r *resumer) reconnect(cause error) bool {
	lost := time.Now()
	hold := r.rs.Hold()
	deadline := lost.Add(hold)
	r.emit(Event{Kind: EventLinkLost, Err: cause, Hold: hold, HoldLeft: hold, Remote: r.addr})
	backoff := r.cfg.MinBackoff
	for attempt := 1; ; attempt++ {
		if r.rs.State() == resume.Closed {
			return false
		}
		left := time.Until(deadline)
		if left <= 0 {
			r.rs.CloseWithError(ErrHoldExpired)
			return false
		}
		r.emit(Event{Kind: EventReconnecting, Attempt: attempt, Hold: hold, HoldLeft: left, Remote: r.addr})
		start := time.Now()
		before := r.rs.Stats().ResentBytes
		err := r.attempt(min(r.cfg.AttemptTimeout, left))
		if err == nil {
			now := time.Now()
			r.emit(Event{Kind: EventResumed, Attempt: attempt, Offline: now.Sub(lost), Handshake: now.Sub(start),
				Retransmitted: r.rs.Stats().ResentBytes - before, Hold: r.rs.Hold(), Remote: r.addr})
			return true
		}
		r.emit(Event{Kind: EventResumeFailed, Attempt: attempt, Err: err, Hold: hold, HoldLeft: time.Until(deadline), Remote: r.addr})
		var f *resume.Failure
		if errors.As(err, &f) && (f.Reason == resume.ReasonSessionUnknown || f.Reason == resume.ReasonSessionClosed) {
			// Said on a connection whose host key we checked: the
			// server no longer has the session (section 2.4).
			r.rs.CloseWithError(fmt.Errorf("ssh: the server no longer holds the session: %w", err))
			return false
		}
		// Wait with jitter, or less if the network changes or someone
		// asks.
		wait := backoff + time.Duration(rand.Int64N(int64(backoff)/2+1)) - backoff/4
		backoff = min(2*backoff, r.cfg.MaxBackoff)
		timer := time.NewTimer(min(wait, max(time.Until(deadline), 0)))
		var changes <-chan struct{}
		if r.watcher != nil {
			changes = r.watcher.Changes()
		}
		select {
		case <-timer.C:
		case <-r.kick:
			backoff = r.cfg.MinBackoff
		case <-changes:
			backoff = r.cfg.MinBackoff
		case <-r.rs.Done():
			timer.Stop()
			return false
		}
		timer.Stop()
	}
}

// attempt is one reconnection: new TCP connection, key exchange with the
// host key checked as for the first connection, resume exchange.
func (r *resumer) attempt(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	go func() {
		// The session ending (Close) abandons the attempt.
		select {
		case <-r.rs.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	nc, err := r.redial(ctx)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	conn, err := transport.NewClientConn(ctx, nc, &r.tcfg)
	if err != nil {
		nc.Close()
		return fmt.Errorf("handshake: %w", err)
	}
	if !conn.Negotiated(resume.ClientKexName) {
		conn.Close()
		return errors.New("the server no longer offers session resumption")
	}
	if err := r.rs.Resume(ctx, conn); err != nil {
		return err
	}
	conn.SetAuthenticated()
	r.c.setConn(conn)
	return nil
}

package resume

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// ErrHoldExpired ends a client's session when the server's hold time ran
// out before a reconnection succeeded.
var ErrHoldExpired = errors.New("ssh: the server's hold time passed before the connection came back")

// SupervisorConfig is the client's policy for keeping a session attached:
// how it notices a dead link, and how it reconnects. Only Redial is
// required; it is what ties the supervisor to a kind of connection (SSH
// over TCP, through a relay, over TLS).
type SupervisorConfig struct {
	// Redial makes a new connection for one reconnection attempt: connected,
	// its key exchange done with the first connection's host key, and the
	// extension negotiated (else an error). ctx bounds the attempt.
	Redial func(ctx context.Context) (Transport, error)
	// Attached is called with each connection the session resumed on,
	// before anything else is sent on it by the supervisor.
	Attached func(t Transport)
	// AliveInterval and AliveCountMax detect a dead link that gives no
	// error (a blackhole): after AliveInterval without a packet the
	// supervisor probes (Probe), and after AliveCountMax unanswered probes
	// it detaches and reconnects. Defaults 1 s and 3. Liveness is watched
	// only on connections that count their packets (PacketCounter).
	AliveInterval time.Duration
	AliveCountMax int
	// Probe asks the peer for an answer on t (ping@openssh.com, or a
	// keepalive global request). It may block; one runs at a time.
	Probe func(t Transport)
	// MinBackoff and MaxBackoff bound the wait between attempts, which
	// doubles from MinBackoff with 25 % jitter. Defaults 50 ms and 5 s.
	MinBackoff, MaxBackoff time.Duration
	// AttemptTimeout bounds one attempt. Default 10 s.
	AttemptTimeout time.Duration
	// PathChanges, if set, delivers a notice when the system's addresses
	// or routes change: an attached connection whose path PathChanged
	// says moved is given up at once, and a wait between attempts ends.
	PathChanges <-chan struct{}
	PathChanged func(t Transport) bool
	// Remote names the peer in events.
	Remote string
	// Events, if set, receives each change of the session's connection,
	// from the supervisor's goroutine; it must not block.
	Events func(Event)
}

func (c *SupervisorConfig) withDefaults() {
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
}

// Supervisor is the client's supervisor of a resumable session: it
// watches the attached connection, and when the session detaches it
// reconnects until the server's hold time runs out. It runs one
// goroutine, from Supervise until the session ends.
type Supervisor struct {
	cfg  SupervisorConfig
	rs   *Session
	cur  Transport     // the attached connection; the supervisor's goroutine's own
	kick chan struct{} // a manual trigger
	done chan struct{}
}

// Supervise starts supervising the client session s, attached to t.
func Supervise(s *Session, t Transport, cfg SupervisorConfig) *Supervisor {
	cfg.withDefaults()
	sv := &Supervisor{cfg: cfg, rs: s, cur: t, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go sv.run()
	return sv
}

// Trigger asks for a reconnection now (the tool's SIGUSR2): an attached
// connection is given up, a wait between attempts ends.
func (sv *Supervisor) Trigger() {
	select {
	case sv.kick <- struct{}{}:
	default:
	}
}

// Done is closed once the session ended and the supervisor's last event
// is out.
func (sv *Supervisor) Done() <-chan struct{} { return sv.done }

func (sv *Supervisor) emit(e Event) {
	if sv.cfg.Events != nil {
		e.Time = time.Now()
		e.Remote = sv.cfg.Remote
		sv.cfg.Events(e)
	}
}

func (sv *Supervisor) run() {
	defer close(sv.done)
	sv.emit(Event{Kind: EventConnected, Hold: sv.rs.Hold()})
	for {
		det, why := sv.rs.Detached()
		stop := make(chan struct{})
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			sv.watch(sv.cur, stop)
		}()
		select {
		case <-sv.rs.Done():
			close(stop)
			<-watched
			sv.emit(Event{Kind: EventClosed, Err: sv.rs.Err()})
			return
		case <-det:
		}
		close(stop)
		<-watched
		if !sv.reconnect(why()) {
			sv.emit(Event{Kind: EventClosed, Err: sv.rs.Err()})
			return
		}
	}
}

// watch watches one attached connection until stop: silence (a
// Watchdog: AliveInterval, then AliveCountMax probes), a manual trigger,
// and path changes.
func (sv *Supervisor) watch(t Transport, stop <-chan struct{}) {
	if pc, ok := t.(PacketCounter); ok {
		var probe func()
		if sv.cfg.Probe != nil {
			probe = func() { sv.cfg.Probe(t) }
		}
		wd := NewWatchdog(pc, WatchdogConfig{
			Interval: sv.cfg.AliveInterval,
			Probes:   sv.cfg.AliveCountMax,
			Probe:    probe,
			Lost: func(silent time.Duration) {
				sv.rs.DetachTransport(t, fmt.Errorf("no packet from the server for %v", silent.Round(time.Millisecond)))
			},
		})
		defer wd.Stop()
	}
	for {
		select {
		case <-stop:
			return
		case <-sv.kick:
			sv.rs.Detach(errors.New("reconnection requested"))
			return
		case <-sv.cfg.PathChanges:
			if sv.cfg.PathChanged != nil && sv.cfg.PathChanged(t) {
				sv.rs.Detach(errors.New("the network path to the server changed"))
				return
			}
		}
	}
}

// reconnect runs attempts until one succeeds (true) or the session is
// over (false).
func (sv *Supervisor) reconnect(cause error) bool {
	lost := time.Now()
	hold := sv.rs.Hold()
	deadline := lost.Add(hold)
	sv.emit(Event{Kind: EventLinkLost, Err: cause, Hold: hold, HoldLeft: hold})
	backoff := sv.cfg.MinBackoff
	for attempt := 1; ; attempt++ {
		if sv.rs.State() == Closed {
			return false
		}
		left := time.Until(deadline)
		if left <= 0 {
			sv.rs.CloseWithError(ErrHoldExpired)
			return false
		}
		sv.emit(Event{Kind: EventReconnecting, Attempt: attempt, Hold: hold, HoldLeft: left})
		start := time.Now()
		before := sv.rs.Stats().ResentBytes
		err := sv.attempt(min(sv.cfg.AttemptTimeout, left))
		if err == nil {
			now := time.Now()
			sv.emit(Event{Kind: EventResumed, Attempt: attempt, Offline: now.Sub(lost), Handshake: now.Sub(start),
				Retransmitted: sv.rs.Stats().ResentBytes - before, Hold: sv.rs.Hold()})
			return true
		}
		sv.emit(Event{Kind: EventResumeFailed, Attempt: attempt, Err: err, Hold: hold, HoldLeft: time.Until(deadline)})
		var f *Failure
		if errors.As(err, &f) && (f.Reason == ReasonSessionUnknown || f.Reason == ReasonSessionClosed) {
			// Said on a connection whose host key was checked: the
			// server no longer has the session (section 6.5).
			sv.rs.CloseWithError(fmt.Errorf("ssh: the server no longer holds the session: %w", err))
			return false
		}
		// Wait with jitter, or less if the network changes or someone
		// asks.
		wait := backoff + time.Duration(rand.Int64N(int64(backoff)/2+1)) - backoff/4
		backoff = min(2*backoff, sv.cfg.MaxBackoff)
		timer := time.NewTimer(min(wait, max(time.Until(deadline), 0)))
		select {
		case <-timer.C:
		case <-sv.kick:
			backoff = sv.cfg.MinBackoff
		case <-sv.cfg.PathChanges:
			backoff = sv.cfg.MinBackoff
		case <-sv.rs.Done():
			timer.Stop()
			return false
		}
		timer.Stop()
	}
}

// attempt is one reconnection: Redial, then the resume exchange.
func (sv *Supervisor) attempt(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	// The session ending (Close) abandons the attempt.
	go func() {
		select {
		case <-sv.rs.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	t, err := sv.cfg.Redial(ctx)
	if err != nil {
		return err
	}
	if err := sv.rs.Resume(ctx, t); err != nil {
		return err
	}
	sv.cur = t
	if sv.cfg.Attached != nil {
		sv.cfg.Attached(t)
	}
	return nil
}

package resume

import (
	"fmt"
	"sync"
	"time"
)

// Timer policy, all in one place, in the manner of wireguard-go's
// device/timers.go: the events that concern a connection's liveness, each
// arming or disarming one timer, and one handler per expiry. There is no
// goroutine and no ticker: a Watchdog that is stopped (a detached session,
// an ended connection) holds no timer, and a running one wakes at most
// once per Interval whatever the traffic.
//
// Events:
//   - start: a connection is attached (or a plain one authenticated):
//     arm the silence timer for Interval.
//   - packet received: counted by the connection itself
//     (PacketsReceived), read when the timer expires; nothing is done per
//     packet.
//   - silence expired: if packets arrived since the last expiry, re-arm
//     for Interval and forget the probes; else, while fewer than Probes
//     probes went unanswered, send one (Probe) and re-arm; else the
//     connection is lost (Lost).
//   - stop: the connection is detached or ended: disarm.
//
// Users: the client's liveness of a resumable session (Interval 1 s,
// Probes 3: ping@openssh.com or keepalive@openssh.com), the server's idle
// timeout of a resumable connection (Interval 60 s, Probes 0: detach),
// and the server's ClientAliveInterval on plain connections (keepalive,
// then close), and the tool's ServerAliveInterval.

// PacketCounter is implemented by transports that count every packet
// they receive, their own (PONG, IGNORE, replies to keepalives) included:
// transport.Conn.
type PacketCounter interface{ PacketsReceived() uint64 }

// WatchdogConfig is the policy of a Watchdog.
type WatchdogConfig struct {
	// Interval is the silence after which the watchdog probes (or, with
	// Probes 0, gives up).
	Interval time.Duration
	// Probes is how many probes in a row may go unanswered: the
	// connection is lost at the expiry after the last one.
	Probes int
	// Probe sends one probe (it may block: it runs on its own goroutine,
	// one at a time). Nil sends none.
	Probe func()
	// Lost is called once, when the connection is given up, with how
	// long it was silent.
	Lost func(silent time.Duration)
}

// Watchdog watches one connection for silence.
type Watchdog struct {
	cfg     WatchdogConfig
	counter PacketCounter

	mu      sync.Mutex
	timer   *time.Timer
	last    uint64    // packets received at the last expiry
	since   time.Time // when the silence began
	missed  int       // probes sent since the last packet
	probing bool      // a Probe call is running
	stopped bool
}

// NewWatchdog starts watching c (the 'start' event).
func NewWatchdog(c PacketCounter, cfg WatchdogConfig) *Watchdog {
	if cfg.Interval <= 0 {
		panic(fmt.Sprintf("resume: watchdog interval %v", cfg.Interval))
	}
	w := &Watchdog{cfg: cfg, counter: c, last: c.PacketsReceived(), since: time.Now()}
	w.mu.Lock() // expired must not see w.timer before it is set
	w.timer = time.AfterFunc(cfg.Interval, w.expired)
	w.mu.Unlock()
	return w
}

// Stop disarms the watchdog (the 'stop' event); Lost is not called after
// it returns.
func (w *Watchdog) Stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	w.timer.Stop()
}

// expired is the 'silence expired' handler.
func (w *Watchdog) expired() {
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		return
	}
	now := time.Now()
	if n := w.counter.PacketsReceived(); n != w.last {
		w.last, w.missed, w.since = n, 0, now
		w.timer.Reset(w.cfg.Interval)
		w.mu.Unlock()
		return
	}
	if w.missed >= w.cfg.Probes {
		w.stopped = true
		silent := now.Sub(w.since)
		w.mu.Unlock()
		if w.cfg.Lost != nil {
			w.cfg.Lost(silent)
		}
		return
	}
	w.missed++
	send := w.cfg.Probe != nil && !w.probing
	w.probing = w.probing || send
	w.timer.Reset(w.cfg.Interval)
	w.mu.Unlock()
	if send {
		// A probe may block on a dead link with full buffers; the
		// detach that Lost causes unblocks it.
		go func() {
			w.cfg.Probe()
			w.mu.Lock()
			w.probing = false
			w.mu.Unlock()
		}()
	}
}

package resume

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rsftp/rsftp/internal/wire"
)

// Registry is the server's table of resumable sessions: it issues them
// after authentication, finds them for RESUME_REQUEST, and discards
// detached ones after the hold time. It runs no goroutine and polls
// nothing: each session tells it when it detaches, comes back or ends
// (Session.Observe), and a detached session's hold is one timer.
type Registry struct {
	// Hold is how long a detached session is kept (DefaultHold if 0).
	// The timer starts again at each detach.
	Hold time.Duration
	// MaxSessions bounds the sessions kept, attached or not (default
	// 4096). Past it a new session may evict a detached session of the
	// owner with the most sessions, only if that owner has more than the
	// new session's own; otherwise the new session is not resumable.
	MaxSessions int
	// MaxDetachedPerUser bounds the detached sessions of one owner
	// (default 16); past it, that owner's oldest detached session is
	// discarded.
	MaxDetachedPerUser int
	// MaxRetainedBytes bounds the memory that the unacknowledged messages
	// of all sessions, attached or detached, occupy (default 1 GiB): the
	// Budget's limit if Budget is nil. Writers of channel data wait for
	// room. When a writer finds it full, or a session detaches with it
	// nearly full, the owner holding the most (attached and detached) loses
	// its largest detached session, if it holds more than its share (the
	// limit divided among the owners holding anything).
	MaxRetainedBytes int64
	// MaxRetainedPerSession bounds one session's unacknowledged messages
	// (default DefaultRetention).
	MaxRetainedPerSession int
	// Budget, if set, is charged with what sessions retain (it may be
	// shared with other holders of peer-controlled memory, such as
	// channel windows); else the Registry makes one of MaxRetainedBytes.
	Budget *Budget
	// IdleTimeout detaches a session whose connection brought no packet
	// for that long (DefaultIdleTimeout if 0): a client that vanished
	// without a FIN or RST then starts the hold timer. Watched on
	// connections that count their packets (PacketCounter).
	IdleTimeout time.Duration
	// Events, if set, receives each change of a session: connected,
	// link_lost, resumed, resume_failed, closed. It is called with no
	// lock held and must not block.
	Events func(Event)

	mu        sync.Mutex
	sessions  map[string]*entry
	budget    *Budget
	closed    bool // Close was called: no new sessions
	relieving atomic.Bool
}

// Owner is who a session belongs to, as authentication established it.
type Owner struct {
	// ID is the authenticated identity the per-owner limits key on (for
	// a public key, its fingerprint): never a name the client chose
	// freely.
	ID string
	// Name is the user name, for events.
	Name string
	// Recheck, if set, is called when a resumption has authenticated,
	// before anything changes, with the new connection's remote address
	// (nil if the transport has none): an error (the key was removed from
	// authorized_keys, expired, or may not be used from there) refuses
	// the resumption and ends the session.
	Recheck func(remote net.Addr) error
}

type entry struct {
	s        *Session
	owner    Owner
	resuming bool
	detached time.Time   // zero while attached
	timer    *time.Timer // the hold timer, while detached
	idle     *Watchdog   // the idle timeout, while attached
}

// DefaultHold is the server's default hold time.
const DefaultHold = time.Hour

// DefaultIdleTimeout is the server's default idle timeout; section 10.2
// of the specification requires at least 30 s.
const DefaultIdleTimeout = 60 * time.Second

func (r *Registry) emit(e Event) {
	if r.Events != nil {
		e.Time = time.Now()
		r.Events(e)
	}
}

// shortHandle is the start of a handle in hex, as events name sessions.
func shortHandle(h []byte) string { return hex.EncodeToString(h[:min(8, len(h))]) }

func remoteOf(t Transport) string {
	if ra, ok := t.(interface{ RemoteAddr() net.Addr }); ok && ra.RemoteAddr() != nil {
		return ra.RemoteAddr().String()
	}
	return ""
}

// watchIdleLocked starts the idle timeout of e's session on t: four
// silent quarters of IdleTimeout (between one and one and a quarter
// timeouts of silence) detach it. Nothing is sent: a resumable client
// probes on its own.
func (r *Registry) watchIdleLocked(e *entry, t Transport) {
	if e.idle != nil {
		e.idle.Stop()
		e.idle = nil
	}
	pc, ok := t.(PacketCounter)
	if !ok {
		return
	}
	idle := r.IdleTimeout
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	s := e.s
	e.idle = NewWatchdog(pc, WatchdogConfig{
		Interval: max(idle/4, time.Millisecond),
		Probes:   3,
		Lost: func(silent time.Duration) {
			s.DetachTransport(t, fmt.Errorf("no packet from the client for %v", silent.Round(time.Second)))
		},
	})
}

// ErrExpired ends sessions detached for longer than the hold time.
var ErrExpired = errors.New("resume: session expired (detached for longer than the hold time)")

func (r *Registry) hold() time.Duration {
	if r.Hold > 0 {
		return r.Hold
	}
	return DefaultHold
}

func (r *Registry) max() int {
	if r.MaxSessions > 0 {
		return r.MaxSessions
	}
	return 4096
}

func (r *Registry) maxPerOwner() int {
	if r.MaxDetachedPerUser > 0 {
		return r.MaxDetachedPerUser
	}
	return 16
}

// budgetLocked is the budget sessions are charged to.
func (r *Registry) budgetLocked() *Budget {
	if r.budget == nil {
		r.budget = r.Budget
		if r.budget == nil {
			limit := r.MaxRetainedBytes
			if limit <= 0 {
				limit = 1 << 30
			}
			r.budget = &Budget{Limit: limit}
		}
		if r.budget.Short == nil {
			r.budget.Short = r.short
		}
	}
	return r.budget
}

// short runs when a writer finds the budget full: detached sessions of
// an owner holding more than its share give way.
func (r *Registry) short() {
	if !r.relieving.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer r.relieving.Store(false)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.relieveLocked()
	}()
}

// relieveLocked discards detached sessions while the budget is full and
// some owner holds more than its share of it (the limit divided among the
// owners holding anything, attached or detached): the largest detached
// session of the owner holding the most goes first. An owner within its
// share loses nothing; when nobody is over it, writers wait for ACKs.
func (r *Registry) relieveLocked() {
	b := r.budgetLocked()
	for b.Limit > 0 && b.Used() >= b.Limit*15/16 {
		held := map[string]int64{}
		for _, e := range r.sessions {
			if h := int64(e.s.Stats().HeldBytes); h > 0 {
				held[e.owner.ID] += h
			}
		}
		if len(held) == 0 {
			return
		}
		var heaviest string
		for o, h := range held {
			if _, ok := held[heaviest]; !ok || h > held[heaviest] || (h == held[heaviest] && o < heaviest) {
				heaviest = o
			}
		}
		if held[heaviest] <= b.Limit/int64(len(held)) {
			return
		}
		if !r.discardLargestLocked(heaviest, fmt.Sprintf("its owner holds more than a fair share of the %d bytes kept for resending", b.Limit)) {
			return
		}
	}
}

// discardLargestLocked discards the detached session of owner id that
// holds the most, and counts what it held as released at once.
func (r *Registry) discardLargestLocked(id, why string) bool {
	var victim *entry
	var most int
	for _, e := range r.sessions {
		if e.owner.ID != id || e.detached.IsZero() || e.resuming {
			continue
		}
		if h := e.s.Stats().HeldBytes; victim == nil || h > most {
			victim, most = e, h
		}
	}
	if victim == nil {
		return false
	}
	r.discardLocked(victim, why)
	// The session releases its share when it closes, in the background:
	// count it as gone now.
	victim.s.mu.Lock()
	victim.s.charged -= int64(most)
	victim.s.mu.Unlock()
	r.budgetLocked().Release(int64(most))
	return true
}

// RetainedBudget is the budget the Registry charges.
func (r *Registry) RetainedBudget() *Budget {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.budgetLocked()
}

// Enable starts a session on a newly authenticated connection (sending
// RESUME_ENABLE) and keeps it for resumption.
func (r *Registry) Enable(t Transport, rk []byte) (*Session, error) {
	return r.EnableOwned(t, rk, Owner{})
}

// EnableFor is Enable for a session of the named user (for the
// per-owner caps).
func (r *Registry) EnableFor(t Transport, rk []byte, user string) (*Session, error) {
	return r.EnableOwned(t, rk, Owner{ID: user})
}

// EnableOwned is Enable for a session of owner o.
func (r *Registry) EnableOwned(t Transport, rk []byte, o Owner) (*Session, error) {
	// Made before taking the lock (it reads the system's random source:
	// a system call, which under load can keep a goroutine off the CPU
	// while every resumption waits for the lock).
	s, enable, err := newServerSession(t, rk, r.hold())
	if err != nil {
		return nil, err
	}
	s.send.Limit = r.MaxRetainedPerSession
	r.mu.Lock()
	if r.sessions == nil {
		r.sessions = map[string]*entry{}
	}
	s.budget = r.budgetLocked()
	if r.closed {
		r.mu.Unlock()
		return nil, ErrRegistryClosed
	}
	if len(r.sessions) >= r.max() && !r.evictForLocked(o.ID) {
		r.mu.Unlock()
		return nil, ErrTooManySessions
	}
	// Kept before RESUME_ENABLE goes out: a client that hears of its
	// handle may ask to resume at once (its liveness check can give up
	// on a slow server within a second), and must find it.
	e := &entry{s: s, owner: o}
	r.sessions[string(s.handle)] = e
	r.mu.Unlock()
	s.Observe(func(st State) { r.changed(e, st) })
	if err := t.WritePacket(enable); err != nil {
		r.mu.Lock()
		delete(r.sessions, string(s.handle))
		r.mu.Unlock()
		return nil, err
	}
	r.mu.Lock()
	if r.sessions[string(s.handle)] == e && s.State() == Attached {
		r.watchIdleLocked(e, t)
	}
	r.mu.Unlock()
	r.emit(Event{Kind: EventConnected, Hold: s.hold, Remote: remoteOf(t), User: o.Name, Session: shortHandle(s.handle)})
	return s, nil
}

// ErrRegistryClosed ends the sessions of a registry that Close ended
// (the server shuts down), and refuses new ones.
var ErrRegistryClosed = errors.New("resume: the server is shutting down")

// Close ends every session the registry keeps, an attached one with a
// DISCONNECT (by application) on its connection, so that its client
// learns the session is over instead of reconnecting to a server that
// has gone, and refuses sessions from then on. It returns once every
// session is closed; their connections' closes run side by side.
func (r *Registry) Close() {
	r.mu.Lock()
	r.closed = true
	ss := make([]*Session, 0, len(r.sessions))
	for _, e := range r.sessions {
		ss = append(ss, e.s)
	}
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range ss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.closeWith(ErrRegistryClosed)
		}()
	}
	wg.Wait()
}

// ErrTooManySessions is EnableOwned's refusal when the registry keeps
// MaxSessions sessions and none may make room.
var ErrTooManySessions = errors.New("resume: too many sessions")

// Offer starts the session of a newly authenticated connection t, as
// EnableOwned does, or, when the registry keeps no more sessions, says
// so to the client with a RESUME_ENABLE whose hold time is 0 (section
// 4.2): the connection is then plain SSH, and Offer returns no session
// and an error that wraps ErrTooManySessions. Any other error is t's.
func (r *Registry) Offer(t Transport, rk []byte, o Owner) (*Session, error) {
	s, err := r.EnableOwned(t, rk, o)
	if !errors.Is(err, ErrTooManySessions) {
		return s, err
	}
	handle := make([]byte, HandleLen)
	rand.Read(handle)
	if werr := t.WritePacket((&Enable{Handle: handle}).Marshal()); werr != nil {
		return nil, werr
	}
	return nil, fmt.Errorf("session not resumable: %w", err)
}

// discardLocked forgets e and ends its session (outside the lock).
func (r *Registry) discardLocked(e *entry, why string) {
	delete(r.sessions, string(e.s.handle))
	if e.timer != nil {
		e.timer.Stop()
	}
	go e.s.closeWith(fmt.Errorf("resume: session discarded: %s (server limit)", why))
}

// evictForLocked makes room for a new session of owner id by discarding
// a detached session: one of the owner with the most sessions that has a
// detached one, only if that owner has more sessions than id (an owner
// at its share evicts only its own). The oldest detached session of that
// owner goes: any frees one slot.
func (r *Registry) evictForLocked(id string) bool {
	count := map[string]int{}
	for _, e := range r.sessions {
		count[e.owner.ID]++
	}
	var victim *entry
	for _, e := range r.sessions {
		if e.detached.IsZero() || e.resuming {
			continue
		}
		c := count[e.owner.ID]
		if e.owner.ID != id && c <= count[id] {
			continue
		}
		if victim == nil {
			victim = e
			continue
		}
		vc := count[victim.owner.ID]
		if c > vc || (c == vc && e.detached.Before(victim.detached)) {
			victim = e
		}
	}
	if victim == nil {
		return false
	}
	r.discardLocked(victim, "a newer session needed its place")
	return true
}

// enforceLocked applies the caps on detached sessions after one of
// owner id's sessions detached: that owner's oldest past its count, then
// relieveLocked.
func (r *Registry) enforceLocked(id string) {
	var mine []*entry
	for _, e := range r.sessions {
		if e.owner.ID == id && !e.detached.IsZero() && !e.resuming {
			mine = append(mine, e)
		}
	}
	for n := len(mine); n > r.maxPerOwner(); n-- {
		oldest := 0
		for i, e := range mine {
			if e.detached.Before(mine[oldest].detached) {
				oldest = i
			}
		}
		r.discardLocked(mine[oldest], fmt.Sprintf("more than %d detached sessions of this user", r.maxPerOwner()))
		mine = append(mine[:oldest], mine[oldest+1:]...)
	}
	r.relieveLocked()
}

// changed follows a session's state: the hold timer runs while it is
// detached, and a closed session is forgotten.
func (r *Registry) changed(e *entry, st State) {
	s := e.s
	s.mu.Lock()
	gen, now, cur, why, err := s.gen, s.state, s.cur, s.detachErr, s.err
	s.mu.Unlock()
	ev := Event{User: e.owner.Name, Session: shortHandle(s.handle), Hold: s.hold}
	r.mu.Lock()
	if e.idle != nil {
		e.idle.Stop()
		e.idle = nil
	}
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	kept := r.sessions[string(s.handle)] == e
	switch {
	case now == Closed:
		if kept {
			delete(r.sessions, string(s.handle))
		}
		ev.Kind, ev.Err, ev.Hold = EventClosed, err, 0
	case !kept:
		// Discarded: its close follows.
	case now == Detached:
		e.detached = time.Now()
		e.timer = time.AfterFunc(r.hold(), func() {
			s.mu.Lock()
			expired := s.state == Detached && s.gen == gen
			s.mu.Unlock()
			if expired {
				s.closeWith(ErrExpired)
			}
		})
		r.enforceLocked(e.owner.ID)
		ev.Kind, ev.Err, ev.HoldLeft = EventLinkLost, why, s.hold
	case now == Attached:
		e.detached = time.Time{}
		if cur != nil {
			r.watchIdleLocked(e, cur)
		}
	}
	r.mu.Unlock()
	if ev.Kind != "" {
		r.emit(ev)
	}
}

// RegistryStats is a snapshot of a Registry.
type RegistryStats struct {
	Sessions int // kept, attached or detached
	Detached int
	// RetainedBytes is what all sessions retain for resending;
	// DetachedRetainedBytes the part of it held by detached sessions
	// (bounded by MaxRetainedBytes).
	RetainedBytes, DetachedRetainedBytes int64
}

// Stats returns the registry's current counts.
func (r *Registry) Stats() RegistryStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := RegistryStats{Sessions: len(r.sessions)}
	for _, e := range r.sessions {
		n := int64(e.s.Stats().RetainedBytes)
		st.RetainedBytes += n
		if !e.detached.IsZero() {
			st.Detached++
			st.DetachedRetainedBytes += n
		}
	}
	return st
}

// Len is the number of sessions kept.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sessions)
}

// Resume handles a RESUME_REQUEST (payload p, the first message after
// NEWKEYS) that arrived on t. Its checks come first and change nothing:
// the session must exist, the request must authenticate, then be
// consistent (count in range), then no other attempt may be in progress
// (BUSY is said only to a client that authenticated), then the owner's
// key must still be authorized (Owner.Recheck). Only then does the
// session leave its old connection (if any) and move to t, with
// RESUME_ACCEPT and the messages the client lacks sent in the background.
// On failure it answers RESUME_FAILURE, closes t without DISCONNECT
// (section 7: a DISCONNECT on a connection a session is not attached to
// ends nothing, and a client may not know that), and returns the error.
func (r *Registry) Resume(t Transport, p []byte) (*Session, error) {
	s, resend, err := r.Answer(t, p)
	if err != nil {
		return nil, err
	}
	go resend()
	return s, nil
}

// Answer is Resume with no goroutine: on success it returns, besides the
// session now attached to t, the writes of RESUME_ACCEPT and of the
// messages the client lacks, as a function the caller must call once
// (the session's writes wait until it returns). A test or a fuzzer
// drives it between two transport.Engines; a server uses Resume.
func (r *Registry) Answer(t Transport, p []byte) (*Session, func() error, error) {
	start := time.Now()
	s, resend, err := r.resume(t, p)
	if err != nil {
		r.emit(Event{Kind: EventResumeFailed, Remote: remoteOf(t), Err: err})
		return nil, nil, err
	}
	st := s.Stats()
	r.emit(Event{Kind: EventResumed, Remote: remoteOf(t), Session: shortHandle(s.handle), Handshake: time.Since(start),
		Offline: st.LastOffline, Retransmitted: st.LastResentBytes, Hold: s.hold})
	return s, resend, nil
}

func (r *Registry) resume(t Transport, p []byte) (*Session, func() error, error) {
	// claimed is set while this attempt holds the session's BUSY mark;
	// release drops the mark once (a later attempt may hold it by then).
	var e *entry
	claimed := false
	release := func() {
		if claimed {
			claimed = false
			r.mu.Lock()
			e.resuming = false
			r.mu.Unlock()
		}
	}
	refuse := func(reason uint32, format string, args ...any) (*Session, func() error, error) {
		release()
		f := &Failure{Reason: reason, Description: fmt.Sprintf(format, args...)}
		t.WritePacket(f.Marshal())
		t.Abort()
		return nil, nil, f
	}
	req, err := ParseRequest(p)
	if err != nil {
		// A malformed message is a protocol error (section 2); the
		// connection carries no session, so the DISCONNECT ends none.
		t.Disconnect(wire.DisconnectProtocolError, err.Error())
		return nil, nil, err
	}
	r.mu.Lock()
	e = r.sessions[string(req.Handle)]
	r.mu.Unlock()
	if e == nil {
		return refuse(ReasonSessionUnknown, "no such session")
	}
	s := e.s
	newH := t.SessionID()
	s.mu.Lock()
	state := s.state
	ok := state != Closed && hmac.Equal(req.MAC, RequestMAC(s.rk, newH, s.handle, req.Received))
	acked, sent := s.send.Acked(), s.send.Sent()
	s.mu.Unlock()
	switch {
	case state == Closed:
		// Its keys are gone: the request cannot be authenticated, and
		// SESSION_CLOSED is said only to one that was (section 6.2).
		return refuse(ReasonSessionUnknown, "no such session")
	case !ok:
		return refuse(ReasonAuthFailed, "request does not authenticate")
	case !CountInRange(req.Received, acked, sent):
		// The request authenticated: the counts may be told.
		return refuse(ReasonCountOutOfRange, "received count %d out of range: %d acknowledged, %d sent", req.Received, acked, sent)
	}
	r.mu.Lock()
	if r.sessions[string(req.Handle)] != e {
		r.mu.Unlock()
		return refuse(ReasonSessionClosed, "session closed")
	}
	if e.resuming {
		r.mu.Unlock()
		return refuse(ReasonBusy, "a resumption of this session is in progress")
	}
	e.resuming = true
	claimed = true
	r.mu.Unlock()
	if e.owner.Recheck != nil {
		var remote net.Addr
		if ra, ok := t.(interface{ RemoteAddr() net.Addr }); ok {
			remote = ra.RemoteAddr()
		}
		if err := e.owner.Recheck(remote); err != nil {
			release()
			s.closeWith(fmt.Errorf("resume: the session's key is no longer authorized: %w", err))
			return refuse(ReasonSessionClosed, "session closed: the key that authenticated it is no longer authorized")
		}
	}
	// Stop the old connection (a writer may be blocked on it, holding
	// what the resend needs), in one step with a last check of the count:
	// an ACK read from the old connection since the check above may have
	// moved it. Nothing is refused after this but a session that closed
	// meanwhile.
	if err := s.detachFor(req.Received, errors.New("resume: superseded by a new connection")); err != nil {
		if errors.Is(err, s.Err()) {
			return refuse(ReasonSessionClosed, "session closed")
		}
		return refuse(ReasonCountOutOfRange, "%v", err)
	}
	// The attempt is decided: a newer one may supersede it from here on.
	release()
	hold := holdSeconds(s.hold)
	accept := func(received uint64) []byte {
		return (&Accept{Received: received, HoldSeconds: hold,
			MAC: AcceptMAC(s.rk, newH, s.handle, received, req.Received)}).Marshal()
	}
	resend, err := s.attach(t, accept, req.Received)
	if err != nil {
		// Only a session that closed meanwhile: the count cannot have
		// left its range while detached.
		return refuse(ReasonSessionClosed, "session closed")
	}
	return s, resend, nil
}

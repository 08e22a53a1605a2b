package resume

import (
	"crypto/hmac"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Registry is the server's table of resumable sessions: it issues them
// after authentication, finds them for RESUME_REQUEST, and discards
// detached ones after the hold time.
type Registry struct {
	// Hold is how long a detached session is kept (DefaultHold if 0).
	Hold time.Duration
	// MaxSessions bounds the sessions kept, attached or not (default
	// 4096); past it, the oldest detached session is discarded first.
	MaxSessions int
	// MaxDetachedPerUser bounds the detached sessions of one user
	// (default 16); past it, that user's oldest detached session is
	// discarded.
	MaxDetachedPerUser int
	// MaxRetainedBytes bounds the bytes retained by detached sessions
	// in total (default 1 GiB); past it, the oldest detached sessions are
	// discarded.
	MaxRetainedBytes int64

	mu       sync.Mutex
	sessions map[string]*entry
}

type entry struct {
	s        *Session
	user     string
	resuming bool
	detached time.Time // zero while attached
}

// DefaultHold is the server's default hold time.
const DefaultHold = time.Hour

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

// Enable starts a session on a newly authenticated connection (sending
// RESUME_ENABLE) and keeps it for resumption.
func (r *Registry) Enable(t Transport, rk []byte) (*Session, error) {
	return r.EnableFor(t, rk, "")
}

// EnableFor is Enable for a session of the named user (for the per-user
// cap).
func (r *Registry) EnableFor(t Transport, rk []byte, user string) (*Session, error) {
	// Made before taking the lock (it reads the system's random source:
	// a system call, which under load can keep a goroutine off the CPU
	// while every resumption waits for the lock).
	s, enable, err := newServerSession(t, rk, r.hold())
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if r.sessions == nil {
		r.sessions = map[string]*entry{}
	}
	if len(r.sessions) >= r.max() && !r.evictLocked() {
		r.mu.Unlock()
		return nil, errors.New("resume: too many sessions")
	}
	// Kept before RESUME_ENABLE goes out: a client that hears of its
	// handle may ask to resume at once (its liveness check can give up
	// on a slow server within a second), and must find it.
	r.sessions[string(s.handle)] = &entry{s: s, user: user}
	r.mu.Unlock()
	if err := t.WritePacket(enable); err != nil {
		r.mu.Lock()
		delete(r.sessions, string(s.handle))
		r.mu.Unlock()
		return nil, err
	}
	go r.watch(s)
	return s, nil
}

// evictLocked discards the longest-detached session, if any.
func (r *Registry) evictLocked() bool {
	var oldest *entry
	for _, e := range r.sessions {
		if !e.detached.IsZero() && !e.resuming && (oldest == nil || e.detached.Before(oldest.detached)) {
			oldest = e
		}
	}
	if oldest == nil {
		return false
	}
	delete(r.sessions, string(oldest.s.handle))
	go oldest.s.closeWith(errors.New("resume: session discarded for a newer one (server limit)"))
	return true
}

// enforceLocked applies the caps on detached sessions after one of
// user's sessions detached: oldest first.
func (r *Registry) enforceLocked(user string) {
	maxUser := r.MaxDetachedPerUser
	if maxUser <= 0 {
		maxUser = 16
	}
	maxBytes := r.MaxRetainedBytes
	if maxBytes <= 0 {
		maxBytes = 1 << 30
	}
	for {
		var oldest, oldestUser *entry
		n, total := 0, int64(0)
		for _, e := range r.sessions {
			if e.detached.IsZero() || e.resuming {
				continue
			}
			total += int64(e.s.Stats().RetainedBytes)
			if oldest == nil || e.detached.Before(oldest.detached) {
				oldest = e
			}
			if e.user == user {
				n++
				if oldestUser == nil || e.detached.Before(oldestUser.detached) {
					oldestUser = e
				}
			}
		}
		var victim *entry
		var why string
		switch {
		case n > maxUser:
			victim, why = oldestUser, fmt.Sprintf("more than %d detached sessions of this user", maxUser)
		case total > maxBytes:
			victim, why = oldest, fmt.Sprintf("detached sessions retain more than %d bytes", maxBytes)
		}
		if victim == nil {
			return
		}
		delete(r.sessions, string(victim.s.handle))
		go victim.s.closeWith(fmt.Errorf("resume: session discarded: %s (server limit)", why))
	}
}

// watch runs the hold timer of a session and forgets it when it closes.
func (r *Registry) watch(s *Session) {
	defer func() {
		r.mu.Lock()
		if e := r.sessions[string(s.handle)]; e != nil && e.s == s {
			delete(r.sessions, string(s.handle))
		}
		r.mu.Unlock()
	}()
	for {
		det, _ := s.Detached()
		select {
		case <-s.Done():
			return
		case <-det:
		}
		s.mu.Lock()
		gen := s.gen
		s.mu.Unlock()
		r.mu.Lock()
		if e := r.sessions[string(s.handle)]; e != nil {
			e.detached = time.Now()
			r.enforceLocked(e.user)
		}
		r.mu.Unlock()
		timer := time.NewTimer(r.hold())
		for {
			select {
			case <-s.Done():
				timer.Stop()
				return
			case <-timer.C:
				s.mu.Lock()
				expired := s.state == Detached && s.gen == gen
				s.mu.Unlock()
				if expired {
					s.closeWith(ErrExpired)
					return
				}
			case <-time.After(50 * time.Millisecond):
				s.mu.Lock()
				back := s.gen != gen
				s.mu.Unlock()
				if !back {
					continue
				}
			}
			break
		}
		timer.Stop()
		r.mu.Lock()
		if e := r.sessions[string(s.handle)]; e != nil {
			e.detached = time.Time{}
		}
		r.mu.Unlock()
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
// NEWKEYS) that arrived on t. It changes nothing unless the request
// authenticates and its count is in range; then the session moves to t,
// the old connection (if any) is closed, and RESUME_ACCEPT and the
// messages the client lacks go out. On failure it answers RESUME_FAILURE,
// closes t and returns the error.
func (r *Registry) Resume(t Transport, p []byte) (*Session, error) {
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
	refuse := func(reason uint32, format string, args ...any) (*Session, error) {
		release()
		f := &Failure{Reason: reason, Description: fmt.Sprintf(format, args...)}
		t.WritePacket(f.Marshal())
		t.Close()
		return nil, f
	}
	req, err := ParseRequest(p)
	if err != nil {
		t.Close()
		return nil, err
	}
	r.mu.Lock()
	e = r.sessions[string(req.Handle)]
	if e == nil {
		r.mu.Unlock()
		return refuse(ReasonSessionUnknown, "no such session")
	}
	if e.resuming {
		r.mu.Unlock()
		return refuse(ReasonBusy, "a resumption of this session is in progress")
	}
	e.resuming = true
	claimed = true
	s := e.s
	r.mu.Unlock()

	newH := t.SessionID()
	s.mu.Lock()
	state := s.state
	ok := state != Closed && hmac.Equal(req.MAC, RequestMAC(s.rk, newH, s.handle, req.Received))
	acked, sent := s.send.Acked(), s.send.Sent()
	inRange := CountInRange(req.Received, acked, sent)
	received := s.recv.Received()
	var accept []byte
	if ok {
		accept = (&Accept{Received: received, HoldSeconds: holdSeconds(s.hold),
			MAC: AcceptMAC(s.rk, newH, s.handle, received, req.Received)}).Marshal()
	}
	s.mu.Unlock()
	switch {
	case state == Closed:
		return refuse(ReasonSessionClosed, "session closed")
	case !ok:
		return refuse(ReasonAuthFailed, "request does not authenticate")
	case !inRange:
		// The request authenticated: the counts may be told.
		return refuse(ReasonCountOutOfRange, "received count %d out of range: %d acknowledged, %d sent", req.Received, acked, sent)
	}
	// Stop the old connection first so that its reader cannot count
	// more messages after we told the client our count.
	s.Detach(errors.New("resume: superseded by a new connection"))
	s.mu.Lock()
	if s.recv.Received() != received || !CountInRange(req.Received, s.send.Acked(), s.send.Sent()) {
		s.mu.Unlock()
		return refuse(ReasonBusy, "the session moved on; retry")
	}
	s.mu.Unlock()
	// The attempt is decided: a newer one may supersede it from here on
	// (the resend below can block on a connection that died at once,
	// and must not keep the session BUSY for good).
	release()
	if err := s.attach(t, accept, req.Received); err != nil {
		return refuse(ReasonSessionClosed, "session closed")
	}
	return s, nil
}

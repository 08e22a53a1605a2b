package rsftp

import (
	"crypto/rand"

	"encoding/hex"
	"errors"
	"fmt"
	"github.com/rsftp/rsftp/auth"
	"time"

	"github.com/rsftp/rsftp/resume"
	"github.com/rsftp/rsftp/transport"
)

// ResumeServerConfig turns on session resumption for a server.
type ResumeServerConfig struct {
	// Hold is how long a session whose connection was lost is kept for
	// its client to resume it (default resume.DefaultHold, one hour).
	Hold time.Duration
	// MaxSessions bounds resumable sessions, attached or not (default
	// 4096). Past it a new session may take the place of a detached
	// session of the owner with the most sessions, if that owner has
	// more than the new session's own; else the new session is plain SSH.
	MaxSessions int
	// MaxDetachedPerUser bounds the detached sessions of one owner (the
	// authenticated identity, auth.Permissions.Identity: for a key, its
	// fingerprint) (default 16); past it the owner's oldest goes.
	MaxDetachedPerUser int
	// MaxRetainedBytes bounds the memory that peers can make the server
	// hold, across all connections (default 1 GiB): what sessions,
	// attached or detached, retain for resending, and the channels'
	// receive windows. Writers of channel data wait for room; an owner
	// holding more than its share loses its largest detached sessions
	// first (resume.Registry).
	MaxRetainedBytes int64
	// MaxRetainedPerSession bounds what one session retains
	// (default resume.DefaultRetention, 64 MiB).
	MaxRetainedPerSession int
	// IdleTimeout detaches a session whose connection brought nothing
	// for that long (default 60 s): a client that vanished without a
	// FIN or RST then starts the hold timer. rsftp clients ping once a
	// second when they hear nothing, so a live one is never idle.
	IdleTimeout time.Duration
	// Events, if set, receives each change of a resumable session:
	// connected, link_lost, resumed, resume_failed, closed. It must not
	// block.
	Events func(Event)
}

// firstPacket hands a packet read ahead back to the next reader: the
// server reads the client's first message after the key exchange to tell
// a resumption from a new login.
type firstPacket struct {
	*transport.Conn
	p []byte
}

func (f *firstPacket) ReadPacket() ([]byte, error) {
	if p := f.p; p != nil {
		f.p = nil
		return p, nil
	}
	return f.Conn.ReadPacket()
}

func (s *Server) emit(e Event) {
	if s.cfg.Resume != nil && s.cfg.Resume.Events != nil {
		e.Time = time.Now()
		s.cfg.Resume.Events(e)
	}
}

// ResumeStats reports the server's resumable sessions: how many are
// kept, how many are detached, and the bytes they retain for resending.
// It is zero when resume is off.
func (s *Server) ResumeStats() resume.RegistryStats {
	if s.resumes == nil {
		return resume.RegistryStats{}
	}
	return s.resumes.Stats()
}

func shortHandle(rs *resume.Session) string {
	h := rs.Handle()
	return hex.EncodeToString(h[:min(8, len(h))])
}

// enableResume makes a newly authenticated connection's session
// resumable. If the server keeps no more sessions it says so with a hold
// time of 0 and returns nil: the connection is plain SSH.
func (s *Server) enableResume(conn *transport.Conn, user string, perms *auth.Permissions) (*resume.Session, error) {
	owner := resume.Owner{ID: "user:" + user}
	if perms != nil {
		if perms.Identity != "" {
			owner.ID = perms.Identity
		}
		owner.Recheck = perms.Recheck
	}
	rk, err := resume.Key(conn)
	if err != nil {
		return nil, err
	}
	rs, err := s.resumes.EnableOwned(conn, rk, owner)
	if err != nil {
		s.cfg.Logf("ssh: %v: session not resumable: %v", conn.RemoteAddr(), err)
		handle := make([]byte, resume.HandleLen)
		rand.Read(handle)
		return nil, conn.WritePacket((&resume.Enable{Handle: handle}).Marshal())
	}
	remote := conn.RemoteAddr().String()
	s.emit(Event{Kind: EventConnected, Hold: rs.Hold(), Remote: remote, User: user, Session: shortHandle(rs)})
	s.observeSession(rs, user)
	go s.watchIdle(conn, rs)
	return rs, nil
}

// watchIdle detaches rs from conn when conn has been silent for the idle
// timeout (a resume.Watchdog of four quarters: detached after between
// one and one and a quarter idle timeouts of silence); the watchdog
// stops once rs leaves conn.
func (s *Server) watchIdle(conn *transport.Conn, rs *resume.Session) {
	idle := s.cfg.Resume.IdleTimeout
	if idle <= 0 {
		idle = 60 * time.Second
	}
	wd := resume.NewWatchdog(conn, resume.WatchdogConfig{
		Interval: max(idle/4, time.Millisecond),
		Probes:   3, // silent quarters, with nothing sent: a resumable client pings on its own
		Lost: func(silent time.Duration) {
			rs.DetachTransport(conn, fmt.Errorf("no packet from the client for %v", silent.Round(time.Second)))
		},
	})
	det, _ := rs.Detached()
	select {
	case <-det:
	case <-rs.Done():
	}
	wd.Stop()
}

// observeSession reports a session's detachments and its end, as they
// happen (no goroutine waits for them).
func (s *Server) observeSession(rs *resume.Session, user string) {
	handle := shortHandle(rs)
	rs.Observe(func(st resume.State) {
		switch st {
		case resume.Closed:
			s.emit(Event{Kind: EventClosed, User: user, Session: handle, Err: rs.Err()})
		case resume.Detached:
			_, why := rs.Detached()
			s.emit(Event{Kind: EventLinkLost, User: user, Session: handle, Hold: rs.Hold(), HoldLeft: rs.Hold(), Err: why()})
		}
	})
}

// resume handles a RESUME_REQUEST that arrived as the first message of a
// new connection.
func (s *Server) resume(conn *transport.Conn, p []byte) (*resume.Session, error) {
	start := time.Now()
	remote := conn.RemoteAddr().String()
	rs, err := s.resumes.Resume(conn, p)
	if err != nil {
		s.emit(Event{Kind: EventResumeFailed, Remote: remote, Err: err})
		var f *resume.Failure
		if errors.As(err, &f) {
			return nil, fmt.Errorf("resume refused: %w", err)
		}
		return nil, fmt.Errorf("resume: %w", err)
	}
	conn.SetAuthenticated()
	go s.watchIdle(conn, rs)
	st := rs.Stats()
	s.emit(Event{Kind: EventResumed, Remote: remote, Session: shortHandle(rs), Handshake: time.Since(start),
		Offline: st.LastOffline, Retransmitted: st.LastResentBytes, Hold: rs.Hold()})
	return rs, nil
}

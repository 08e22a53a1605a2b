package rsftp

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/rsftp/rsftp/auth"
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

// ResumeStats reports the server's resumable sessions: how many are
// kept, how many are detached, and the bytes they retain for resending.
// It is zero when resume is off.
func (s *Server) ResumeStats() resume.RegistryStats {
	if s.resumes == nil {
		return resume.RegistryStats{}
	}
	return s.resumes.Stats()
}

// enableResume makes a newly authenticated connection's session
// resumable. If the server keeps no more sessions it says so with a hold
// time of 0 and returns nil: the connection is plain SSH.
func (s *Server) enableResume(conn *transport.Conn, user string, perms *auth.Permissions) (*resume.Session, error) {
	owner := resume.Owner{ID: "user:" + user, Name: user}
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
		s.logConn(conn.RemoteAddr(), slog.LevelInfo, "session not resumable", []any{"err", err}, "session not resumable: %v", err)
		handle := make([]byte, resume.HandleLen)
		rand.Read(handle)
		return nil, conn.WritePacket((&resume.Enable{Handle: handle}).Marshal())
	}
	return rs, nil
}

// resume handles a RESUME_REQUEST that arrived as the first message of a
// new connection.
func (s *Server) resume(conn *transport.Conn, p []byte) (*resume.Session, error) {
	rs, err := s.resumes.Resume(conn, p)
	if err != nil {
		var f *resume.Failure
		if errors.As(err, &f) {
			return nil, fmt.Errorf("resume refused: %w", err)
		}
		return nil, fmt.Errorf("resume: %w", err)
	}
	conn.SetAuthenticated()
	return rs, nil
}

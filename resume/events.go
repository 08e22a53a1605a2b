package resume

import (
	"encoding/json"
	"time"
)

// EventKind names what happened to a resumable session.
type EventKind string

// The kinds of Event, as written by rsftp --events.
const (
	EventConnected    EventKind = "connected"     // a session began
	EventLinkLost     EventKind = "link_lost"     // its connection was lost; the session is detached
	EventReconnecting EventKind = "reconnecting"  // an attempt to resume starts (client)
	EventResumed      EventKind = "resumed"       // the session runs on a new connection
	EventResumeFailed EventKind = "resume_failed" // an attempt failed; the session is unchanged
	EventClosed       EventKind = "closed"        // the session ended for good
)

// Event reports a change of a resumable session's connection, for
// progress displays and for logs (its JSON form is one line of
// rsftp --events).
type Event struct {
	Time time.Time
	Kind EventKind
	// Attempt numbers the reconnection attempts since the link was lost
	// (from 1).
	Attempt int
	// Offline is how long the session had no connection (resumed).
	Offline time.Duration
	// Handshake is how long the successful attempt took: TCP connect,
	// key exchange and the resume exchange (resumed).
	Handshake time.Duration
	// Retransmitted counts the bytes of counted messages this side sent
	// again after the resume (resumed).
	Retransmitted uint64
	// Hold is the server's hold time; HoldLeft how much of it remains
	// (link_lost, reconnecting, resume_failed).
	Hold, HoldLeft time.Duration
	// Remote is the peer's address; User the user (server events).
	Remote string
	User   string
	// Session is the start of the session handle in hex (server events).
	Session string
	// Err says why (link_lost, resume_failed, closed).
	Err error
}

// MarshalJSON writes the event as rsftp --events does: time in RFC 3339,
// durations in milliseconds (hold in seconds), absent fields omitted.
func (e Event) MarshalJSON() ([]byte, error) {
	type out struct {
		Time          string `json:"time"`
		Event         string `json:"event"`
		Attempt       int    `json:"attempt,omitempty"`
		OfflineMS     *int64 `json:"offline_ms,omitempty"`
		HandshakeMS   *int64 `json:"handshake_ms,omitempty"`
		Retransmitted *int64 `json:"retransmitted_bytes,omitempty"`
		HoldS         *int64 `json:"hold_s,omitempty"`
		HoldLeftS     *int64 `json:"hold_left_s,omitempty"`
		Remote        string `json:"remote,omitempty"`
		User          string `json:"user,omitempty"`
		Session       string `json:"session,omitempty"`
		Error         string `json:"error,omitempty"`
	}
	ms := func(d time.Duration) *int64 { v := d.Milliseconds(); return &v }
	o := out{Time: e.Time.Format(time.RFC3339Nano), Event: string(e.Kind), Attempt: e.Attempt,
		Remote: e.Remote, User: e.User, Session: e.Session}
	if e.Kind == EventResumed {
		o.OfflineMS, o.HandshakeMS = ms(e.Offline), ms(e.Handshake)
		v := int64(e.Retransmitted)
		o.Retransmitted = &v
	}
	if e.Hold > 0 {
		v := int64(e.Hold / time.Second)
		o.HoldS = &v
	}
	if e.HoldLeft > 0 {
		v := int64(e.HoldLeft / time.Second)
		o.HoldLeftS = &v
	}
	if e.Err != nil {
		o.Error = e.Err.Error()
	}
	return json.Marshal(o)
}

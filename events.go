package rsftp

import "github.com/rsftp/rsftp/resume"

// Event reports a change of a resumable session's connection (see
// resume.Event); EventKind names it.
type (
	Event     = resume.Event
	EventKind = resume.EventKind
)

// The kinds of Event, as written by rsftp --events.
const (
	EventConnected    = resume.EventConnected
	EventLinkLost     = resume.EventLinkLost
	EventReconnecting = resume.EventReconnecting
	EventResumed      = resume.EventResumed
	EventResumeFailed = resume.EventResumeFailed
	EventClosed       = resume.EventClosed
)

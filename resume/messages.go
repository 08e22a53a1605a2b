// Package resume is the session resumption extension specified in
// docs/PROTOCOL.resume.md: negotiation names, message formats, the resume
// key and the MACs of a reconnection. Each message has its struct with
// Marshal and Parse side by side; parsers check every length before use.
package resume

import (
	"fmt"
	"unicode/utf8"

	"github.com/rsftp/rsftp/internal/wire"
)

// Negotiation names for the first KEXINIT's kex_algorithms.
const (
	ClientKexName = "resume-c-v00@rsftp.org"
	ServerKexName = "resume-s-v00@rsftp.org"
)

// Message numbers (local extension range).
const (
	MsgEnable  = 200
	MsgRequest = 201
	MsgAccept  = 202
	MsgFailure = 203
	MsgAck     = 204
)

// Failure reason codes.
const (
	ReasonSessionUnknown   = 1
	ReasonAuthFailed       = 2
	ReasonCountOutOfRange  = 3
	ReasonSessionClosed    = 4
	ReasonResourceShortage = 5
	ReasonBusy             = 6
)

// Field limits.
const (
	HandleLen        = 32 // what we issue
	MinHandleLen     = 16
	MaxHandleLen     = 64
	MACLen           = 32 // HMAC-SHA256
	MaxFailureText   = 256
	maxMessageLength = 1 + 4 + MaxHandleLen + 8 + 4 + MACLen // the largest valid message
)

// IsResumeMessage reports whether a message number belongs to this layer.
func IsResumeMessage(m byte) bool { return m >= MsgEnable && m <= MsgAck }

func start(p []byte, want byte, name string) (*wire.Reader, error) {
	if len(p) == 0 || p[0] != want {
		return nil, fmt.Errorf("resume: not a %s message", name)
	}
	if len(p) > maxMessageLength+MaxFailureText {
		return nil, fmt.Errorf("resume: %s of %d bytes", name, len(p))
	}
	return wire.NewReader(p[1:]), nil
}

func finish(r *wire.Reader, name string) error {
	if err := r.Done(); err != nil {
		return fmt.Errorf("resume: malformed %s: %w", name, err)
	}
	return nil
}

func handle(r *wire.Reader) []byte {
	h := r.Bytes()
	if r.Err() == nil && (len(h) < MinHandleLen || len(h) > MaxHandleLen) {
		r.Failf("session handle of %d bytes", len(h))
		return nil
	}
	return h
}

func mac(r *wire.Reader) []byte {
	m := r.Bytes()
	if r.Err() == nil && len(m) != MACLen {
		r.Failf("MAC of %d bytes", len(m))
		return nil
	}
	return m
}

// Enable is RESUME_ENABLE: the server names the session and its hold
// time right after USERAUTH_SUCCESS.
type Enable struct {
	Handle      []byte
	HoldSeconds uint32
	Flags       uint32
}

func (m *Enable) Marshal() []byte {
	b := []byte{MsgEnable}
	b = wire.AppendBytes(b, m.Handle)
	b = wire.AppendUint32(b, m.HoldSeconds)
	return wire.AppendUint32(b, m.Flags)
}

func ParseEnable(p []byte) (*Enable, error) {
	r, err := start(p, MsgEnable, "RESUME_ENABLE")
	if err != nil {
		return nil, err
	}
	m := &Enable{Handle: handle(r), HoldSeconds: r.Uint32(), Flags: r.Uint32()}
	return m, finish(r, "RESUME_ENABLE")
}

// Request is RESUME_REQUEST: the client's claim to a session on a new
// connection.
type Request struct {
	Handle   []byte
	Received uint64 // counted messages the client has received
	MAC      []byte
}

func (m *Request) Marshal() []byte {
	b := []byte{MsgRequest}
	b = wire.AppendBytes(b, m.Handle)
	b = wire.AppendUint64(b, m.Received)
	return wire.AppendBytes(b, m.MAC)
}

func ParseRequest(p []byte) (*Request, error) {
	r, err := start(p, MsgRequest, "RESUME_REQUEST")
	if err != nil {
		return nil, err
	}
	m := &Request{Handle: handle(r), Received: r.Uint64(), MAC: mac(r)}
	return m, finish(r, "RESUME_REQUEST")
}

// Accept is RESUME_ACCEPT: the server's authenticated answer.
type Accept struct {
	Received    uint64 // counted messages the server has received
	HoldSeconds uint32
	MAC         []byte
}

func (m *Accept) Marshal() []byte {
	b := []byte{MsgAccept}
	b = wire.AppendUint64(b, m.Received)
	b = wire.AppendUint32(b, m.HoldSeconds)
	return wire.AppendBytes(b, m.MAC)
}

func ParseAccept(p []byte) (*Accept, error) {
	r, err := start(p, MsgAccept, "RESUME_ACCEPT")
	if err != nil {
		return nil, err
	}
	m := &Accept{Received: r.Uint64(), HoldSeconds: r.Uint32(), MAC: mac(r)}
	return m, finish(r, "RESUME_ACCEPT")
}

// Failure is RESUME_FAILURE (unauthenticated: see the specification).
type Failure struct {
	Reason      uint32
	Description string
}

func (m *Failure) Marshal() []byte {
	b := []byte{MsgFailure}
	b = wire.AppendUint32(b, m.Reason)
	d := m.Description
	if len(d) > MaxFailureText {
		d = d[:MaxFailureText]
	}
	return wire.AppendString(b, d)
}

func ParseFailure(p []byte) (*Failure, error) {
	r, err := start(p, MsgFailure, "RESUME_FAILURE")
	if err != nil {
		return nil, err
	}
	m := &Failure{Reason: r.Uint32()}
	d := r.Bytes()
	if r.Err() == nil && (len(d) > MaxFailureText || !utf8.Valid(d)) {
		r.Failf("description of %d bytes or not UTF-8", len(d))
	}
	m.Description = string(d)
	return m, finish(r, "RESUME_FAILURE")
}

func (m *Failure) Error() string {
	return fmt.Sprintf("resume: server refused the session (%s): %s", reasonName(m.Reason), printable(m.Description))
}

func reasonName(r uint32) string {
	switch r {
	case ReasonSessionUnknown:
		return "unknown session"
	case ReasonAuthFailed:
		return "authentication failed"
	case ReasonCountOutOfRange:
		return "count out of range"
	case ReasonSessionClosed:
		return "session closed"
	case ReasonResourceShortage:
		return "resource shortage"
	case ReasonBusy:
		return "busy"
	}
	return fmt.Sprintf("reason %d", r)
}

func printable(s string) string {
	out := []rune{}
	for _, c := range s {
		if c < 0x20 || c == 0x7f {
			c = '?'
		}
		out = append(out, c)
	}
	return string(out)
}

// Ack is ACK: the count of counted messages received.
type Ack struct{ Received uint64 }

func (m *Ack) Marshal() []byte {
	return wire.AppendUint64([]byte{MsgAck}, m.Received)
}

func ParseAck(p []byte) (*Ack, error) {
	r, err := start(p, MsgAck, "ACK")
	if err != nil {
		return nil, err
	}
	m := &Ack{Received: r.Uint64()}
	return m, finish(r, "ACK")
}

package tlsresume

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/rsftp/rsftp/internal/wire"
	"github.com/rsftp/rsftp/resume"
)

// Record types (docs/PROTOCOL.tlsresume.md section 3). DATA and the
// resume messages take the numbers of the SSH extension's channel data,
// channel EOF and resume messages, whose counting, retention and resume
// exchange the package shares with it (resume.Session): DATA and EOF are
// counted, the others are not.
const (
	RecHello   = 1                 // client: a new session
	RecClose   = 2                 // either: the session ends (not a lost link)
	RecPing    = 3                 // either: answer with PONG
	RecPong    = 4                 // either: the answer to PING
	RecData    = 94                // either: application bytes (counted)
	RecEOF     = 96                // either: the end of the sender's bytes (counted)
	RecEnable  = resume.MsgEnable  // 200, server: the session's handle and hold time
	RecRequest = resume.MsgRequest // 201, client: resume a session
	RecAccept  = resume.MsgAccept  // 202, server: resumption accepted
	RecFailure = resume.MsgFailure // 203, server: resumption refused
	RecAck     = resume.MsgAck     // 204, either: DATA records received
)

// Limits of the record layer.
const (
	// MaxData is the most application bytes one DATA record carries: a
	// full record with its length and type is 32 KiB, two TLS records.
	MaxData = 32<<10 - headerLen - 1
	// MaxRecord is the largest record: a DATA record's type and data.
	MaxRecord = 1 + MaxData
	// MaxCloseText is the longest description a CLOSE carries.
	MaxCloseText = 256
	// headerLen is the record length field.
	headerLen = 4
)

// Close reasons (the SSH disconnect codes of RFC 4250 section 4.2.2 the
// protocol uses).
const (
	ReasonProtocolError = wire.DisconnectProtocolError
	ReasonByApplication = wire.DisconnectByApplication
)

// ErrRecord wraps every malformed record or stream.
var ErrRecord = errors.New("tlsresume: malformed record")

// ReadRecord reads one record from r into buf (of at least MaxRecord
// bytes) and returns it: its type byte and body. The length is checked
// before anything is read into buf.
func ReadRecord(r io.Reader, buf []byte) ([]byte, error) {
	if len(buf) < headerLen {
		return nil, fmt.Errorf("%w: buffer of %d bytes", ErrRecord, len(buf))
	}
	// The header is read into buf (a local array would escape to the
	// heap through the io.Reader: an allocation per record).
	hdr := buf[:headerLen]
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, err
	}
	n, err := ParseHeader(hdr)
	if err != nil {
		return nil, err
	}
	if len(buf) < n {
		return nil, fmt.Errorf("%w: buffer of %d bytes for a record of %d", ErrRecord, len(buf), n)
	}
	if _, err := io.ReadFull(r, buf[:n]); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf[:n], nil
}

// ParseHeader returns the length a record header announces: at least 1
// (the type) and at most MaxRecord.
func ParseHeader(hdr []byte) (int, error) {
	if len(hdr) < headerLen {
		return 0, fmt.Errorf("%w: header of %d bytes", ErrRecord, len(hdr))
	}
	n := binary.BigEndian.Uint32(hdr)
	if n == 0 || n > MaxRecord {
		return 0, fmt.Errorf("%w: record of %d bytes (1 to %d allowed)", ErrRecord, n, MaxRecord)
	}
	return int(n), nil
}

// AppendRecord appends the framed record p (type and body) to b.
func AppendRecord(b, p []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(p)))
	return append(b, p...)
}

// CheckRecord checks the body of record p against its type's syntax
// (section 3): unknown types, empty DATA, PING and PONG with a body, and
// malformed HELLO, CLOSE and resume messages are errors.
func CheckRecord(p []byte) error {
	if len(p) == 0 || len(p) > MaxRecord {
		return fmt.Errorf("%w: record of %d bytes", ErrRecord, len(p))
	}
	var err error
	switch p[0] {
	case RecHello:
		_, err = ParseHello(p)
	case RecClose:
		_, err = ParseClose(p)
	case RecPing, RecPong, RecEOF:
		if len(p) != 1 {
			err = fmt.Errorf("%w: %s with a body of %d bytes", ErrRecord, typeName(p[0]), len(p)-1)
		}
	case RecData:
		if len(p) == 1 {
			err = fmt.Errorf("%w: empty DATA", ErrRecord)
		}
	case RecEnable:
		_, err = resume.ParseEnable(p)
	case RecRequest:
		_, err = resume.ParseRequest(p)
	case RecAccept:
		_, err = resume.ParseAccept(p)
	case RecFailure:
		_, err = resume.ParseFailure(p)
	case RecAck:
		_, err = resume.ParseAck(p)
	default:
		err = fmt.Errorf("%w: unknown record type %d", ErrRecord, p[0])
	}
	return err
}

func typeName(t byte) string {
	switch t {
	case RecHello:
		return "HELLO"
	case RecClose:
		return "CLOSE"
	case RecPing:
		return "PING"
	case RecPong:
		return "PONG"
	case RecData:
		return "DATA"
	case RecEOF:
		return "EOF"
	case RecEnable:
		return "ENABLE"
	case RecRequest:
		return "REQUEST"
	case RecAccept:
		return "ACCEPT"
	case RecFailure:
		return "FAILURE"
	case RecAck:
		return "ACK"
	}
	return fmt.Sprintf("type %d", t)
}

// Hello is HELLO, the client's first record on the first connection of a
// session: it asks for a new session.
type Hello struct {
	// Flags are reserved: sent as 0, ignored when received.
	Flags uint32
}

func (m *Hello) Marshal() []byte { return wire.AppendUint32([]byte{RecHello}, m.Flags) }

// ParseHello parses a HELLO record.
func ParseHello(p []byte) (*Hello, error) {
	if len(p) == 0 || p[0] != RecHello {
		return nil, fmt.Errorf("%w: not a HELLO", ErrRecord)
	}
	r := wire.NewReader(p[1:])
	m := &Hello{Flags: r.Uint32()}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: HELLO: %v", ErrRecord, err)
	}
	return m, nil
}

// Close is CLOSE: the sender ends the session. A connection that ends
// without it is a lost link, and the session waits to be resumed.
type Close struct {
	Reason      uint32
	Description string
}

func (m *Close) Marshal() []byte {
	b := wire.AppendUint32([]byte{RecClose}, m.Reason)
	d := m.Description
	if len(d) > MaxCloseText {
		d = d[:MaxCloseText]
		for !utf8.ValidString(d) {
			d = d[:len(d)-1]
		}
	}
	return wire.AppendString(b, d)
}

// ParseClose parses a CLOSE record.
func ParseClose(p []byte) (*Close, error) {
	if len(p) == 0 || p[0] != RecClose {
		return nil, fmt.Errorf("%w: not a CLOSE", ErrRecord)
	}
	r := wire.NewReader(p[1:])
	m := &Close{Reason: r.Uint32()}
	d := r.Bytes()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("%w: CLOSE: %v", ErrRecord, err)
	}
	if len(d) > MaxCloseText {
		return nil, fmt.Errorf("%w: CLOSE description of %d bytes", ErrRecord, len(d))
	}
	if !utf8.Valid(d) {
		return nil, fmt.Errorf("%w: CLOSE description is not UTF-8", ErrRecord)
	}
	m.Description = string(d)
	return m, nil
}

// ClosedError is the error a session ends with when the peer sent CLOSE
// (or its TLS close_notify): the end of the session, not a lost link.
type ClosedError struct {
	Reason      uint32
	Description string
}

func (e *ClosedError) Error() string {
	return fmt.Sprintf("tlsresume: the peer closed the session (reason %d): %s", e.Reason, printable(e.Description))
}

// SessionEnded tells resume.Session that this ends the session.
func (e *ClosedError) SessionEnded() bool { return true }

func printable(s string) string {
	b := []rune{}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			r = '?'
		}
		b = append(b, r)
	}
	return string(b)
}

// Package connmsg holds the SSH connection protocol's messages (RFC 4254),
// each as a struct with its Marshal and, beside it, its Parse<Name>:
// ChannelOpen and ParseChannelOpen, Data and ParseData, and so on for
// every message from GLOBAL_REQUEST to CHANNEL_FAILURE, plus the extra
// data of a direct-tcpip open (DirectTCPIP, ParseDirectTCPIP). forward.go
// has forwarding's payloads the same way: tcpip-forward and its reply,
// forwarded-tcpip, and OpenSSH's streamlocal requests and opens, with the
// names of forwarding's requests and channel types (ReqTCPIPForward,
// ChanAgent...).
//
// Marshal returns a payload (message number first) ready for
// channel.PacketConn's WritePacket; Parse<Name> takes one as read.
// Parsing is bounded: a parser checks every length against the payload
// before use, fails on any other message number and on trailing bytes,
// and bounds names (channel types, request names, host names) to 256
// bytes. Byte slices of a parsed message alias the payload it was parsed
// from: copy them to keep them past the payload's lifetime.
//
// Package channel's multiplexer builds and parses every message with
// these; the fuzz targets (fuzz's FuzzChannelMessages, channel's
// FuzzMuxPackets) and the tests that speak the protocol by hand use them
// too. The server reaches the direct-tcpip parser through
// channel.NewChannel.DirectTCPIP. Errors begin with "channel:", as they
// did when the messages lived in package channel: the multiplexer passes
// them to the peer in its DISCONNECT.
package connmsg

import (
	"fmt"

	"github.com/rsftp/rsftp/internal/wire"
)

// ExtendedDataStderr is the data type code of stderr (RFC 4254 section
// 5.2), Data.Code of CHANNEL_EXTENDED_DATA.
const ExtendedDataStderr uint32 = 1

// maxNameLen bounds channel, request and global request type names.
const maxNameLen = 256

// Name returns a connection-protocol message number's name without its
// SSH_MSG_ prefix (CHANNEL_DATA for wire.MsgChannelData), or "message N"
// for a number outside RFC 4254, for errors.
func Name(m byte) string {
	switch m {
	case wire.MsgGlobalRequest:
		return "GLOBAL_REQUEST"
	case wire.MsgRequestSuccess:
		return "REQUEST_SUCCESS"
	case wire.MsgRequestFailure:
		return "REQUEST_FAILURE"
	case wire.MsgChannelOpen:
		return "CHANNEL_OPEN"
	case wire.MsgChannelOpenConfirm:
		return "CHANNEL_OPEN_CONFIRMATION"
	case wire.MsgChannelOpenFailure:
		return "CHANNEL_OPEN_FAILURE"
	case wire.MsgChannelWindowAdjust:
		return "CHANNEL_WINDOW_ADJUST"
	case wire.MsgChannelData:
		return "CHANNEL_DATA"
	case wire.MsgChannelExtendedData:
		return "CHANNEL_EXTENDED_DATA"
	case wire.MsgChannelEOF:
		return "CHANNEL_EOF"
	case wire.MsgChannelClose:
		return "CHANNEL_CLOSE"
	case wire.MsgChannelRequest:
		return "CHANNEL_REQUEST"
	case wire.MsgChannelSuccess:
		return "CHANNEL_SUCCESS"
	case wire.MsgChannelFailure:
		return "CHANNEL_FAILURE"
	}
	return fmt.Sprintf("message %d", m)
}

func newReader(p []byte, want byte) (*wire.Reader, error) {
	if len(p) == 0 || p[0] != want {
		return nil, fmt.Errorf("channel: not a %s message", Name(want))
	}
	return wire.NewReader(p[1:]), nil
}

func done(r *wire.Reader, m byte) error {
	if err := r.Done(); err != nil {
		return fmt.Errorf("channel: malformed %s: %w", Name(m), err)
	}
	return nil
}

func name(r *wire.Reader, what string) string {
	b := r.Bytes()
	if len(b) > maxNameLen {
		r.Failf("%s of %d bytes", what, len(b))
		return ""
	}
	return string(b)
}

// GlobalRequest is SSH_MSG_GLOBAL_REQUEST.
type GlobalRequest struct {
	// Name is the request name, such as "keepalive@openssh.com" or
	// "tcpip-forward".
	Name string
	// WantReply asks for REQUEST_SUCCESS or REQUEST_FAILURE.
	WantReply bool
	// Payload is the request-specific data after the name and flag.
	Payload []byte
}

// Marshal encodes the message as a payload for WritePacket.
func (m *GlobalRequest) Marshal() []byte {
	b := []byte{wire.MsgGlobalRequest}
	b = wire.AppendString(b, m.Name)
	b = wire.AppendBool(b, m.WantReply)
	return append(b, m.Payload...)
}

// ParseGlobalRequest parses a GLOBAL_REQUEST payload. Payload aliases p.
func ParseGlobalRequest(p []byte) (*GlobalRequest, error) {
	r, err := newReader(p, wire.MsgGlobalRequest)
	if err != nil {
		return nil, err
	}
	m := &GlobalRequest{Name: name(r, "request name"), WantReply: r.Bool()}
	m.Payload = r.Rest()
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("channel: malformed GLOBAL_REQUEST: %w", err)
	}
	return m, nil
}

// RequestSuccess is SSH_MSG_REQUEST_SUCCESS; its payload is specific to
// the request it answers.
type RequestSuccess struct {
	// Payload is the data after the message number (such as the port a
	// "tcpip-forward" request bound); often empty.
	Payload []byte
}

// Marshal encodes the message as a payload for WritePacket.
func (m *RequestSuccess) Marshal() []byte {
	return append([]byte{wire.MsgRequestSuccess}, m.Payload...)
}

// ParseRequestSuccess parses a REQUEST_SUCCESS payload; any data after the
// message number is the answer's own. Payload aliases p.
func ParseRequestSuccess(p []byte) (*RequestSuccess, error) {
	if len(p) == 0 || p[0] != wire.MsgRequestSuccess {
		return nil, fmt.Errorf("channel: not a REQUEST_SUCCESS message")
	}
	return &RequestSuccess{Payload: p[1:]}, nil
}

// ChannelOpen is SSH_MSG_CHANNEL_OPEN.
type ChannelOpen struct {
	// Type is the channel type, such as "session" or "direct-tcpip".
	Type string
	// Sender is the opener's number for the channel: the recipient of
	// the messages the other side sends on it.
	Sender uint32
	// Window is the opener's initial receive window in bytes.
	Window uint32
	// MaxPacket is the largest data payload the opener accepts in one
	// message.
	MaxPacket uint32
	// Extra is the type-specific data (for direct-tcpip, DirectTCPIP).
	Extra []byte
}

// Marshal encodes the message as a payload for WritePacket.
func (m *ChannelOpen) Marshal() []byte {
	b := []byte{wire.MsgChannelOpen}
	b = wire.AppendString(b, m.Type)
	b = wire.AppendUint32(b, m.Sender)
	b = wire.AppendUint32(b, m.Window)
	b = wire.AppendUint32(b, m.MaxPacket)
	return append(b, m.Extra...)
}

// ParseChannelOpen parses a CHANNEL_OPEN payload. Extra aliases p. The
// window and packet size are not checked here (the multiplexer refuses a
// maximum packet size of 0).
func ParseChannelOpen(p []byte) (*ChannelOpen, error) {
	r, err := newReader(p, wire.MsgChannelOpen)
	if err != nil {
		return nil, err
	}
	m := &ChannelOpen{Type: name(r, "channel type"), Sender: r.Uint32(), Window: r.Uint32(), MaxPacket: r.Uint32()}
	m.Extra = r.Rest()
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("channel: malformed CHANNEL_OPEN: %w", err)
	}
	return m, nil
}

// OpenConfirm is SSH_MSG_CHANNEL_OPEN_CONFIRMATION.
type OpenConfirm struct {
	// Recipient is the opener's number for the channel (its Sender).
	Recipient uint32
	// Sender is the confirming side's number for the channel.
	Sender uint32
	// Window is the confirming side's initial receive window in bytes.
	Window uint32
	// MaxPacket is the largest data payload the confirming side accepts
	// in one message.
	MaxPacket uint32
	// Extra is type-specific data; empty for the types RFC 4254 defines.
	Extra []byte
}

// Marshal encodes the message as a payload for WritePacket.
func (m *OpenConfirm) Marshal() []byte {
	b := []byte{wire.MsgChannelOpenConfirm}
	b = wire.AppendUint32(b, m.Recipient)
	b = wire.AppendUint32(b, m.Sender)
	b = wire.AppendUint32(b, m.Window)
	b = wire.AppendUint32(b, m.MaxPacket)
	return append(b, m.Extra...)
}

// ParseOpenConfirm parses a CHANNEL_OPEN_CONFIRMATION payload. Extra
// aliases p.
func ParseOpenConfirm(p []byte) (*OpenConfirm, error) {
	r, err := newReader(p, wire.MsgChannelOpenConfirm)
	if err != nil {
		return nil, err
	}
	m := &OpenConfirm{Recipient: r.Uint32(), Sender: r.Uint32(), Window: r.Uint32(), MaxPacket: r.Uint32()}
	m.Extra = r.Rest()
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("channel: malformed CHANNEL_OPEN_CONFIRMATION: %w", err)
	}
	return m, nil
}

// OpenFailure is SSH_MSG_CHANNEL_OPEN_FAILURE.
type OpenFailure struct {
	// Recipient is the opener's number for the channel (its Sender).
	Recipient uint32
	// Reason is a reason code of RFC 4254 section 5.1 (channel's
	// Prohibited, ConnectFailed, UnknownChannelType, ResourceShortage).
	Reason uint32
	// Message is a human-readable description, possibly empty.
	Message string
	// Language is the RFC 3066 language tag of Message, usually empty.
	Language string
}

// Marshal encodes the message as a payload for WritePacket.
func (m *OpenFailure) Marshal() []byte {
	b := []byte{wire.MsgChannelOpenFailure}
	b = wire.AppendUint32(b, m.Recipient)
	b = wire.AppendUint32(b, m.Reason)
	b = wire.AppendString(b, m.Message)
	return wire.AppendString(b, m.Language)
}

// ParseOpenFailure parses a CHANNEL_OPEN_FAILURE payload. A missing
// language tag, which some old implementations omit, is accepted as empty.
func ParseOpenFailure(p []byte) (*OpenFailure, error) {
	r, err := newReader(p, wire.MsgChannelOpenFailure)
	if err != nil {
		return nil, err
	}
	m := &OpenFailure{Recipient: r.Uint32(), Reason: r.Uint32(), Message: r.String()}
	// Some old implementations omit the language tag.
	if r.Len() > 0 {
		m.Language = r.String()
	}
	return m, done(r, wire.MsgChannelOpenFailure)
}

// WindowAdjust is SSH_MSG_CHANNEL_WINDOW_ADJUST.
type WindowAdjust struct {
	// Recipient is the receiving side's number for the channel.
	Recipient uint32
	// Bytes is how many more bytes the sender of the message may be
	// sent. A window that would pass 2^32-1 is a protocol error (the
	// multiplexer checks it).
	Bytes uint32
}

// Marshal encodes the message as a payload for WritePacket.
func (m *WindowAdjust) Marshal() []byte {
	b := make([]byte, 0, 9)
	b = append(b, wire.MsgChannelWindowAdjust)
	b = wire.AppendUint32(b, m.Recipient)
	return wire.AppendUint32(b, m.Bytes)
}

// ParseWindowAdjust parses a CHANNEL_WINDOW_ADJUST payload.
func ParseWindowAdjust(p []byte) (*WindowAdjust, error) {
	r, err := newReader(p, wire.MsgChannelWindowAdjust)
	if err != nil {
		return nil, err
	}
	m := &WindowAdjust{Recipient: r.Uint32(), Bytes: r.Uint32()}
	return m, done(r, wire.MsgChannelWindowAdjust)
}

// Data is SSH_MSG_CHANNEL_DATA, or SSH_MSG_CHANNEL_EXTENDED_DATA when
// Extended is set. Data aliases the parsed packet.
type Data struct {
	// Recipient is the receiving side's number for the channel.
	Recipient uint32
	// Extended selects CHANNEL_EXTENDED_DATA, with Code.
	Extended bool
	Code     uint32 // extended data type code (ExtendedDataStderr)
	// Data is the bytes carried; at most the receiver's maximum packet
	// size and its remaining window (the multiplexer checks both).
	Data []byte
}

// DataHeaderLen is the size of the header AppendMarshal writes before the
// bytes of a CHANNEL_DATA (message number, recipient, length); extended
// data has 4 more. The multiplexer lays out its frames with it.
const DataHeaderLen = 1 + 4 + 4

// Marshal encodes the message as a payload for WritePacket; AppendMarshal
// does the same into a buffer of the caller's.
func (m *Data) Marshal() []byte {
	return m.AppendMarshal(nil)
}

// AppendMarshal appends the message to b.
func (m *Data) AppendMarshal(b []byte) []byte {
	if m.Extended {
		b = append(b, wire.MsgChannelExtendedData)
		b = wire.AppendUint32(b, m.Recipient)
		b = wire.AppendUint32(b, m.Code)
	} else {
		b = append(b, wire.MsgChannelData)
		b = wire.AppendUint32(b, m.Recipient)
	}
	return wire.AppendBytes(b, m.Data)
}

// ParseData parses CHANNEL_DATA or CHANNEL_EXTENDED_DATA without copying.
func ParseData(p []byte) (Data, error) {
	var m Data
	if len(p) == 0 || (p[0] != wire.MsgChannelData && p[0] != wire.MsgChannelExtendedData) {
		return m, fmt.Errorf("channel: not a data message")
	}
	r := wire.NewReader(p[1:])
	m.Recipient = r.Uint32()
	if p[0] == wire.MsgChannelExtendedData {
		m.Extended = true
		m.Code = r.Uint32()
	}
	m.Data = r.Bytes()
	return m, done(r, p[0])
}

// EOF is SSH_MSG_CHANNEL_EOF: its sender sends no more data on the
// channel (it may still receive).
type EOF struct {
	// Recipient is the receiving side's number for the channel.
	Recipient uint32
}

// Close is SSH_MSG_CHANNEL_CLOSE: its sender is done with the channel;
// the channel number is free once both sides have sent one.
type Close struct {
	// Recipient is the receiving side's number for the channel.
	Recipient uint32
}

// Marshal encodes the message as a payload for WritePacket.
func (m *EOF) Marshal() []byte { return recipientOnly(wire.MsgChannelEOF, m.Recipient) }

// Marshal encodes the message as a payload for WritePacket.
func (m *Close) Marshal() []byte { return recipientOnly(wire.MsgChannelClose, m.Recipient) }

// ParseEOF parses a CHANNEL_EOF payload.
func ParseEOF(p []byte) (*EOF, error) {
	id, err := parseRecipientOnly(p, wire.MsgChannelEOF)
	return &EOF{id}, err
}

// ParseClose parses a CHANNEL_CLOSE payload.
func ParseClose(p []byte) (*Close, error) {
	id, err := parseRecipientOnly(p, wire.MsgChannelClose)
	return &Close{id}, err
}

// ChannelSuccess is SSH_MSG_CHANNEL_SUCCESS, the positive answer to a
// CHANNEL_REQUEST that wanted a reply. Answers come in the order of the
// requests.
type ChannelSuccess struct {
	// Recipient is the requesting side's number for the channel.
	Recipient uint32
}

// ChannelFailure is SSH_MSG_CHANNEL_FAILURE, the negative answer to a
// CHANNEL_REQUEST that wanted a reply (also the answer to a request type
// the receiver does not know).
type ChannelFailure struct {
	// Recipient is the requesting side's number for the channel.
	Recipient uint32
}

// Marshal encodes the message as a payload for WritePacket.
func (m *ChannelSuccess) Marshal() []byte {
	return recipientOnly(wire.MsgChannelSuccess, m.Recipient)
}

// Marshal encodes the message as a payload for WritePacket.
func (m *ChannelFailure) Marshal() []byte {
	return recipientOnly(wire.MsgChannelFailure, m.Recipient)
}

// ParseChannelSuccess parses a CHANNEL_SUCCESS payload.
func ParseChannelSuccess(p []byte) (*ChannelSuccess, error) {
	id, err := parseRecipientOnly(p, wire.MsgChannelSuccess)
	return &ChannelSuccess{id}, err
}

// ParseChannelFailure parses a CHANNEL_FAILURE payload.
func ParseChannelFailure(p []byte) (*ChannelFailure, error) {
	id, err := parseRecipientOnly(p, wire.MsgChannelFailure)
	return &ChannelFailure{id}, err
}

func recipientOnly(m byte, id uint32) []byte {
	return wire.AppendUint32([]byte{m}, id)
}

func parseRecipientOnly(p []byte, m byte) (uint32, error) {
	r, err := newReader(p, m)
	if err != nil {
		return 0, err
	}
	id := r.Uint32()
	return id, done(r, m)
}

// ChannelRequest is SSH_MSG_CHANNEL_REQUEST.
type ChannelRequest struct {
	// Recipient is the receiving side's number for the channel.
	Recipient uint32
	// Type is the request type, such as "exec", "subsystem" or
	// "exit-status".
	Type string
	// WantReply asks for CHANNEL_SUCCESS or CHANNEL_FAILURE.
	WantReply bool
	// Payload is the type-specific data after the type and flag.
	Payload []byte
}

// Marshal encodes the message as a payload for WritePacket.
func (m *ChannelRequest) Marshal() []byte {
	b := []byte{wire.MsgChannelRequest}
	b = wire.AppendUint32(b, m.Recipient)
	b = wire.AppendString(b, m.Type)
	b = wire.AppendBool(b, m.WantReply)
	return append(b, m.Payload...)
}

// ParseChannelRequest parses a CHANNEL_REQUEST payload. Payload aliases p.
func ParseChannelRequest(p []byte) (*ChannelRequest, error) {
	r, err := newReader(p, wire.MsgChannelRequest)
	if err != nil {
		return nil, err
	}
	m := &ChannelRequest{Recipient: r.Uint32(), Type: name(r, "request type"), WantReply: r.Bool()}
	m.Payload = r.Rest()
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("channel: malformed CHANNEL_REQUEST: %w", err)
	}
	return m, nil
}

// DirectTCPIP is the extra data of a "direct-tcpip" CHANNEL_OPEN (RFC 4254
// section 7.2).
type DirectTCPIP struct {
	// Host is where the server is asked to connect, as the client wrote
	// it (a name or an address).
	Host string
	// Port is the port on Host, at most 65535.
	Port uint32
	// OriginAddr is the address the forwarded connection came from on
	// the client's side, for the server's logs.
	OriginAddr string
	// OriginPort is the port it came from, at most 65535.
	OriginPort uint32
}

// Marshal encodes the data for ChannelOpen.Extra (it has no message
// number of its own).
func (d *DirectTCPIP) Marshal() []byte {
	b := wire.AppendString(nil, d.Host)
	b = wire.AppendUint32(b, d.Port)
	b = wire.AppendString(b, d.OriginAddr)
	return wire.AppendUint32(b, d.OriginPort)
}

// ParseDirectTCPIP parses the extra data of a direct-tcpip
// CHANNEL_OPEN. Ports past 65535 are refused.
func ParseDirectTCPIP(extra []byte) (*DirectTCPIP, error) {
	r := wire.NewReader(extra)
	d := &DirectTCPIP{Host: name(r, "host"), Port: r.Uint32(), OriginAddr: name(r, "originator address"), OriginPort: r.Uint32()}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("channel: malformed direct-tcpip open: %w", err)
	}
	if d.Port > 65535 || d.OriginPort > 65535 {
		return nil, fmt.Errorf("channel: direct-tcpip port out of range")
	}
	return d, nil
}

package connmsg

import (
	"fmt"

	"github.com/rsftp/rsftp/internal/wire"
)

// The payloads of forwarding's global requests and the extra data of its
// channel opens: remote TCP forwarding (RFC 4254 section 7.1), OpenSSH's
// Unix socket forwarding (PROTOCOL section 2.4, "streamlocal") and agent
// forwarding (no payload: "auth-agent-req@openssh.com" is a session
// request and "auth-agent@openssh.com" a channel with no extra data).
// Like DirectTCPIP they carry no message number: each is what follows
// the request name and want-reply flag, or a CHANNEL_OPEN's fixed fields.

// Global request and channel type names of forwarding.
const (
	ReqTCPIPForward             = "tcpip-forward"
	ReqCancelTCPIPForward       = "cancel-tcpip-forward"
	ReqStreamLocalForward       = "streamlocal-forward@openssh.com"
	ReqCancelStreamLocalForward = "cancel-streamlocal-forward@openssh.com"
	ReqAgentForward             = "auth-agent-req@openssh.com"

	ChanForwardedTCPIP       = "forwarded-tcpip"
	ChanDirectStreamLocal    = "direct-streamlocal@openssh.com"
	ChanForwardedStreamLocal = "forwarded-streamlocal@openssh.com"
	ChanAgent                = "auth-agent@openssh.com"
)

// maxPathLen bounds a Unix socket path: no system's sun_path holds more
// than 108 bytes, so 256 refuses nothing usable.
const maxPathLen = 256

// TCPIPForward is the payload of a "tcpip-forward" or
// "cancel-tcpip-forward" global request: the address and port the server
// is asked to listen on (port 0: one the server picks, whose number
// comes back in TCPIPForwardReply).
type TCPIPForward struct {
	// Host is the address to bind as the client wrote it: "" for all
	// addresses, "localhost", an address.
	Host string
	// Port is the port to listen on, at most 65535.
	Port uint32
}

// Marshal encodes the request's payload (GlobalRequest.Payload).
func (m *TCPIPForward) Marshal() []byte {
	b := wire.AppendString(nil, m.Host)
	return wire.AppendUint32(b, m.Port)
}

// ParseTCPIPForward parses a tcpip-forward or cancel-tcpip-forward
// payload. Ports past 65535 are refused.
func ParseTCPIPForward(p []byte) (*TCPIPForward, error) {
	r := wire.NewReader(p)
	m := &TCPIPForward{Host: name(r, "address to bind"), Port: r.Uint32()}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("channel: malformed tcpip-forward request: %w", err)
	}
	if m.Port > 65535 {
		return nil, fmt.Errorf("channel: tcpip-forward port %d out of range", m.Port)
	}
	return m, nil
}

// TCPIPForwardReply is the payload of the REQUEST_SUCCESS answering a
// tcpip-forward for port 0: the port the server allocated.
type TCPIPForwardReply struct {
	Port uint32
}

// Marshal encodes the reply's payload (RequestSuccess.Payload).
func (m *TCPIPForwardReply) Marshal() []byte { return wire.AppendUint32(nil, m.Port) }

// ParseTCPIPForwardReply parses the payload of a REQUEST_SUCCESS to a
// tcpip-forward for port 0. A port of 0 or past 65535 is refused.
func ParseTCPIPForwardReply(p []byte) (*TCPIPForwardReply, error) {
	r := wire.NewReader(p)
	m := &TCPIPForwardReply{Port: r.Uint32()}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("channel: malformed tcpip-forward reply: %w", err)
	}
	if m.Port == 0 || m.Port > 65535 {
		return nil, fmt.Errorf("channel: tcpip-forward reply names port %d", m.Port)
	}
	return m, nil
}

// ForwardedTCPIP is the extra data of a "forwarded-tcpip" CHANNEL_OPEN
// (RFC 4254 section 7.2): a connection arrived at a port the client had
// the server listen on.
type ForwardedTCPIP struct {
	// Host and Port name the forwarding as the client asked for it
	// (Host as written in its tcpip-forward; Port the allocated one
	// if it asked for 0).
	Host string
	Port uint32
	// OriginAddr and OriginPort are where the connection came from.
	OriginAddr string
	OriginPort uint32
}

// Marshal encodes the data for ChannelOpen.Extra.
func (m *ForwardedTCPIP) Marshal() []byte {
	b := wire.AppendString(nil, m.Host)
	b = wire.AppendUint32(b, m.Port)
	b = wire.AppendString(b, m.OriginAddr)
	return wire.AppendUint32(b, m.OriginPort)
}

// ParseForwardedTCPIP parses the extra data of a forwarded-tcpip
// CHANNEL_OPEN. Ports past 65535 are refused.
func ParseForwardedTCPIP(extra []byte) (*ForwardedTCPIP, error) {
	r := wire.NewReader(extra)
	m := &ForwardedTCPIP{Host: name(r, "address"), Port: r.Uint32(), OriginAddr: name(r, "originator address"), OriginPort: r.Uint32()}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("channel: malformed forwarded-tcpip open: %w", err)
	}
	if m.Port > 65535 || m.OriginPort > 65535 {
		return nil, fmt.Errorf("channel: forwarded-tcpip port out of range")
	}
	return m, nil
}

// StreamLocalForward is the payload of a
// "streamlocal-forward@openssh.com" or
// "cancel-streamlocal-forward@openssh.com" global request: the path of
// the Unix socket the server is asked to listen on.
type StreamLocalForward struct {
	Path string
}

// Marshal encodes the request's payload.
func (m *StreamLocalForward) Marshal() []byte { return wire.AppendString(nil, m.Path) }

// ParseStreamLocalForward parses a streamlocal-forward or
// cancel-streamlocal-forward payload. An empty path, a path past 256
// bytes or one holding a NUL byte is refused.
func ParseStreamLocalForward(p []byte) (*StreamLocalForward, error) {
	r := wire.NewReader(p)
	m := &StreamLocalForward{Path: socketPath(r)}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("channel: malformed streamlocal-forward request: %w", err)
	}
	return m, nil
}

// socketPath reads a Unix socket path: not empty, at most maxPathLen
// bytes, no NUL.
func socketPath(r *wire.Reader) string {
	b := r.Bytes()
	switch {
	case r.Err() != nil:
		return ""
	case len(b) == 0:
		r.Failf("empty socket path")
	case len(b) > maxPathLen:
		r.Failf("socket path of %d bytes", len(b))
	default:
		for _, c := range b {
			if c == 0 {
				r.Failf("socket path holds a NUL byte")
				return ""
			}
		}
	}
	return string(b)
}

// DirectStreamLocal is the extra data of a
// "direct-streamlocal@openssh.com" CHANNEL_OPEN: the server is asked to
// connect to the Unix socket at Path. The two reserved fields (a string
// and a uint32, which OpenSSH's ssh sends empty and 0) are kept as read.
type DirectStreamLocal struct {
	Path      string
	Reserved  string
	Reserved2 uint32
}

// Marshal encodes the data for ChannelOpen.Extra.
func (m *DirectStreamLocal) Marshal() []byte {
	b := wire.AppendString(nil, m.Path)
	b = wire.AppendString(b, m.Reserved)
	return wire.AppendUint32(b, m.Reserved2)
}

// ParseDirectStreamLocal parses the extra data of a direct-streamlocal
// CHANNEL_OPEN (the path as ParseStreamLocalForward checks it).
func ParseDirectStreamLocal(extra []byte) (*DirectStreamLocal, error) {
	r := wire.NewReader(extra)
	m := &DirectStreamLocal{Path: socketPath(r), Reserved: name(r, "reserved field"), Reserved2: r.Uint32()}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("channel: malformed direct-streamlocal open: %w", err)
	}
	return m, nil
}

// ForwardedStreamLocal is the extra data of a
// "forwarded-streamlocal@openssh.com" CHANNEL_OPEN: a connection arrived
// at the socket the client had the server listen on (Path, as the client
// asked for it). Reserved is sent empty and ignored.
type ForwardedStreamLocal struct {
	Path     string
	Reserved string
}

// Marshal encodes the data for ChannelOpen.Extra.
func (m *ForwardedStreamLocal) Marshal() []byte {
	b := wire.AppendString(nil, m.Path)
	return wire.AppendString(b, m.Reserved)
}

// ParseForwardedStreamLocal parses the extra data of a
// forwarded-streamlocal CHANNEL_OPEN.
func ParseForwardedStreamLocal(extra []byte) (*ForwardedStreamLocal, error) {
	r := wire.NewReader(extra)
	m := &ForwardedStreamLocal{Path: socketPath(r), Reserved: name(r, "reserved field")}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("channel: malformed forwarded-streamlocal open: %w", err)
	}
	return m, nil
}

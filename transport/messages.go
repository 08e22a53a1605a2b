package transport

import (
	"fmt"
	"strings"

	"github.com/rsftp/rsftp/internal/wire"
)

// DisconnectError is a DISCONNECT message, received from the peer or sent
// by us before closing.
type DisconnectError struct {
	Reason  uint32
	Message string
	// FromPeer is true when the peer sent the DISCONNECT.
	FromPeer bool
}

// SessionEnded reports that this error ends an SSH session for good
// (an explicit DISCONNECT), as opposed to a lost connection. The resume
// layer detects it through this method.
func (e *DisconnectError) SessionEnded() bool { return true }

func (e *DisconnectError) Error() string {
	who := "we disconnected"
	if e.FromPeer {
		who = "peer disconnected"
	}
	return fmt.Sprintf("ssh: %s: %s (reason %d: %s)", who, e.Message, e.Reason, reasonName(e.Reason))
}

func reasonName(r uint32) string {
	names := [...]string{"", "host not allowed to connect", "protocol error", "key exchange failed",
		"reserved", "MAC error", "compression error", "service not available",
		"protocol version not supported", "host key not verifiable", "connection lost",
		"by application", "too many connections", "auth cancelled by user",
		"no more auth methods available", "illegal user name"}
	if int(r) < len(names) && r > 0 {
		return names[r]
	}
	return "unknown reason"
}

func marshalDisconnect(reason uint32, msg string) []byte {
	b := []byte{wire.MsgDisconnect}
	b = wire.AppendUint32(b, reason)
	b = wire.AppendString(b, msg)
	return wire.AppendString(b, "")
}

func parseDisconnect(p []byte) (*DisconnectError, error) {
	r := wire.NewReader(p[1:])
	reason := r.Uint32()
	msg := r.Bytes()
	r.Bytes() // language tag
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("transport: malformed DISCONNECT: %w", err)
	}
	return &DisconnectError{Reason: reason, Message: sanitize(msg), FromPeer: true}, nil
}

// sanitize makes a peer's text safe to print: at most 512 bytes, no
// control characters (terminal escape injection).
func sanitize(b []byte) string {
	if len(b) > 512 {
		b = b[:512]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 && r != '\t' || r == 0x7f || r == 0xfffd {
			return '?'
		}
		return r
	}, string(b))
}

func marshalUnimplemented(seq uint32) []byte {
	return wire.AppendUint32([]byte{wire.MsgUnimplemented}, seq)
}

func parseUnimplemented(p []byte) (uint32, error) {
	r := wire.NewReader(p[1:])
	seq := r.Uint32()
	if err := r.Err(); err != nil {
		return 0, fmt.Errorf("transport: malformed UNIMPLEMENTED: %w", err)
	}
	return seq, nil
}

func parseDebug(p []byte) (display bool, msg string, err error) {
	r := wire.NewReader(p[1:])
	display = r.Bool()
	m := r.Bytes()
	r.Bytes()
	if err := r.Err(); err != nil {
		return false, "", fmt.Errorf("transport: malformed DEBUG: %w", err)
	}
	return display, sanitize(m), nil
}

// marshalExtInfo builds SSH_MSG_EXT_INFO (RFC 8308 section 2.3).
func marshalExtInfo(exts [][2]string) []byte {
	b := []byte{wire.MsgExtInfo}
	b = wire.AppendUint32(b, uint32(len(exts)))
	for _, e := range exts {
		b = wire.AppendString(b, e[0])
		b = wire.AppendString(b, e[1])
	}
	return b
}

// parseExtInfo parses EXT_INFO. The count is checked against the bytes
// that remain (each extension takes at least 8) before anything is
// allocated for it.
func parseExtInfo(p []byte) (map[string]string, error) {
	r := wire.NewReader(p[1:])
	n := r.Uint32()
	if r.Err() == nil && uint64(n)*8 > uint64(r.Len()) {
		return nil, fmt.Errorf("transport: EXT_INFO claims %d extensions in %d bytes", n, r.Len())
	}
	exts := make(map[string]string, n)
	for i := uint32(0); i < n; i++ {
		name := r.String()
		val := r.String()
		exts[name] = val
	}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("transport: malformed EXT_INFO: %w", err)
	}
	return exts, nil
}

func marshalPing(msgType byte, data []byte) []byte {
	return wire.AppendBytes([]byte{msgType}, data)
}

func parsePing(p []byte) ([]byte, error) {
	r := wire.NewReader(p[1:])
	d := r.Bytes()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("transport: malformed PING/PONG: %w", err)
	}
	return d, nil
}

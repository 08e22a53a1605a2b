package connmsg

import (
	"fmt"

	"github.com/rsftp/rsftp/internal/wire"
)

// The type-specific data of a session channel's requests (RFC 4254
// section 6): each Marshal returns what follows the request type and
// want-reply flag in ChannelRequest.Payload, and each Parse<Name> takes
// that payload and fails on trailing bytes.

// maxTermLen bounds a pty-req's terminal type (TERM), as the other names.
const maxTermLen = maxNameLen

// maxEnvNameLen and maxEnvValueLen bound an env request: OpenSSH's ssh
// sends what the user's environment holds, so a value may be long, but
// never longer than the packet.
const (
	maxEnvNameLen  = maxNameLen
	maxEnvValueLen = 32 << 10
)

// TerminalMode is one encoded terminal mode of a pty-req (RFC 4254
// section 8): an opcode from 1 to 159 and its argument.
type TerminalMode struct {
	Opcode uint8
	Value  uint32
}

// Terminal mode opcodes that end or bound the encoding (RFC 4254 section
// 8).
const (
	// TTYOpEnd ends the encoded modes.
	TTYOpEnd = 0
	// TTYOpFirstUndefined is the first opcode with no defined argument:
	// it and all after it stop parsing.
	TTYOpFirstUndefined = 160
)

// AppendTerminalModes appends the encoded modes, TTY_OP_END included.
// Modes whose opcode is 0 or 160 and above are left out: they cannot be
// encoded with an argument.
func AppendTerminalModes(b []byte, modes []TerminalMode) []byte {
	for _, m := range modes {
		if m.Opcode == TTYOpEnd || m.Opcode >= TTYOpFirstUndefined {
			continue
		}
		b = append(b, m.Opcode)
		b = wire.AppendUint32(b, m.Value)
	}
	return append(b, TTYOpEnd)
}

// MaxTerminalModes bounds the modes of one pty-req: the RFC defines 58
// opcodes, so a client has no use for more, even repeating some.
const MaxTerminalModes = 256

// ParseTerminalModes decodes encoded terminal modes. It stops at
// TTY_OP_END, at an opcode of 160 or above (RFC 4254: they "cause
// parsing to stop"), or at the end of the data, as OpenSSH's sshd does;
// an argument cut short, or more than MaxTerminalModes modes, is an
// error.
func ParseTerminalModes(b []byte) ([]TerminalMode, error) {
	var modes []TerminalMode
	for i := 0; i < len(b); {
		op := b[i]
		if op == TTYOpEnd || op >= TTYOpFirstUndefined {
			break
		}
		if len(modes) == MaxTerminalModes {
			return nil, fmt.Errorf("channel: more than %d terminal modes", MaxTerminalModes)
		}
		if len(b)-i < 5 {
			return nil, fmt.Errorf("channel: terminal mode %d cut short", op)
		}
		modes = append(modes, TerminalMode{Opcode: op, Value: uint32(b[i+1])<<24 | uint32(b[i+2])<<16 | uint32(b[i+3])<<8 | uint32(b[i+4])})
		i += 5
	}
	return modes, nil
}

// PtyRequest is the data of a "pty-req" request (RFC 4254 section 6.2).
type PtyRequest struct {
	// Term is the TERM environment variable's value, such as "xterm".
	Term string
	// Cols and Rows are the size in characters; WidthPx and HeightPx
	// in pixels (0 when unknown).
	Cols, Rows, WidthPx, HeightPx uint32
	// Modes are the terminal modes, in the order sent.
	Modes []TerminalMode
}

// Marshal encodes the request's data.
func (m *PtyRequest) Marshal() []byte {
	b := wire.AppendString(nil, m.Term)
	b = wire.AppendUint32(b, m.Cols)
	b = wire.AppendUint32(b, m.Rows)
	b = wire.AppendUint32(b, m.WidthPx)
	b = wire.AppendUint32(b, m.HeightPx)
	return wire.AppendBytes(b, AppendTerminalModes(nil, m.Modes))
}

// ParsePtyRequest parses a pty-req's data.
func ParsePtyRequest(p []byte) (*PtyRequest, error) {
	r := wire.NewReader(p)
	m := &PtyRequest{Term: name(r, "terminal type"), Cols: r.Uint32(), Rows: r.Uint32(), WidthPx: r.Uint32(), HeightPx: r.Uint32()}
	modes := r.Bytes()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("channel: malformed pty-req: %w", err)
	}
	var err error
	if m.Modes, err = ParseTerminalModes(modes); err != nil {
		return nil, fmt.Errorf("channel: malformed pty-req: %w", err)
	}
	return m, nil
}

// WindowChange is the data of a "window-change" request (RFC 4254
// section 6.7).
type WindowChange struct {
	Cols, Rows, WidthPx, HeightPx uint32
}

// Marshal encodes the request's data.
func (m *WindowChange) Marshal() []byte {
	b := wire.AppendUint32(nil, m.Cols)
	b = wire.AppendUint32(b, m.Rows)
	b = wire.AppendUint32(b, m.WidthPx)
	return wire.AppendUint32(b, m.HeightPx)
}

// ParseWindowChange parses a window-change's data.
func ParseWindowChange(p []byte) (*WindowChange, error) {
	r := wire.NewReader(p)
	m := &WindowChange{Cols: r.Uint32(), Rows: r.Uint32(), WidthPx: r.Uint32(), HeightPx: r.Uint32()}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("channel: malformed window-change: %w", err)
	}
	return m, nil
}

// Env is the data of an "env" request (RFC 4254 section 6.4).
type Env struct {
	Name, Value string
}

// Marshal encodes the request's data.
func (m *Env) Marshal() []byte {
	return wire.AppendString(wire.AppendString(nil, m.Name), m.Value)
}

// ParseEnv parses an env request's data. The name must not be empty nor
// hold '=' or NUL, and neither may be longer than the server keeps.
func ParseEnv(p []byte) (*Env, error) {
	r := wire.NewReader(p)
	m := &Env{Name: name(r, "variable name")}
	v := r.Bytes()
	if len(v) > maxEnvValueLen {
		r.Failf("value of %d bytes", len(v))
	}
	m.Value = string(v)
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("channel: malformed env: %w", err)
	}
	if m.Name == "" {
		return nil, fmt.Errorf("channel: env request with an empty name")
	}
	for i := 0; i < len(m.Name); i++ {
		if m.Name[i] == '=' || m.Name[i] == 0 {
			return nil, fmt.Errorf("channel: env request with a name holding %q", m.Name[i])
		}
	}
	for i := 0; i < len(m.Value); i++ {
		if m.Value[i] == 0 {
			return nil, fmt.Errorf("channel: env request %s with a NUL in its value", m.Name)
		}
	}
	return m, nil
}

// ExitStatus is the data of an "exit-status" request (RFC 4254 section
// 6.10).
type ExitStatus struct {
	Status uint32
}

// Marshal encodes the request's data.
func (m *ExitStatus) Marshal() []byte { return wire.AppendUint32(nil, m.Status) }

// ParseExitStatus parses an exit-status's data.
func ParseExitStatus(p []byte) (*ExitStatus, error) {
	r := wire.NewReader(p)
	m := &ExitStatus{Status: r.Uint32()}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("channel: malformed exit-status: %w", err)
	}
	return m, nil
}

// maxExitMessageLen bounds an exit-signal's message.
const maxExitMessageLen = 1024

// ExitSignal is the data of an "exit-signal" request (RFC 4254 section
// 6.10).
type ExitSignal struct {
	// Signal is the signal's name without "SIG", such as "TERM".
	Signal     string
	CoreDumped bool
	// Message describes the signal; Language is its RFC 3066 tag.
	Message, Language string
}

// Marshal encodes the request's data.
func (m *ExitSignal) Marshal() []byte {
	b := wire.AppendString(nil, m.Signal)
	b = wire.AppendBool(b, m.CoreDumped)
	b = wire.AppendString(b, m.Message)
	return wire.AppendString(b, m.Language)
}

// ParseExitSignal parses an exit-signal's data.
func ParseExitSignal(p []byte) (*ExitSignal, error) {
	r := wire.NewReader(p)
	m := &ExitSignal{Signal: name(r, "signal name"), CoreDumped: r.Bool()}
	msg := r.Bytes()
	if len(msg) > maxExitMessageLen {
		r.Failf("message of %d bytes", len(msg))
	}
	m.Message = string(msg)
	m.Language = name(r, "language tag")
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("channel: malformed exit-signal: %w", err)
	}
	return m, nil
}

// Signal is the data of a "signal" request (RFC 4254 section 6.9).
type Signal struct {
	// Name is the signal's name without "SIG", such as "INT".
	Name string
}

// Marshal encodes the request's data.
func (m *Signal) Marshal() []byte { return wire.AppendString(nil, m.Name) }

// ParseSignal parses a signal request's data.
func ParseSignal(p []byte) (*Signal, error) {
	r := wire.NewReader(p)
	m := &Signal{Name: name(r, "signal name")}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("channel: malformed signal: %w", err)
	}
	return m, nil
}

// Break is the data of a "break" request (RFC 4335).
type Break struct {
	// Millis is the break's length in milliseconds.
	Millis uint32
}

// Marshal encodes the request's data.
func (m *Break) Marshal() []byte { return wire.AppendUint32(nil, m.Millis) }

// ParseBreak parses a break request's data.
func ParseBreak(p []byte) (*Break, error) {
	r := wire.NewReader(p)
	m := &Break{Millis: r.Uint32()}
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("channel: malformed break: %w", err)
	}
	return m, nil
}

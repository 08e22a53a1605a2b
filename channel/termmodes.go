package channel

import (
	"github.com/rsftp/rsftp/internal/connmsg"
	"github.com/rsftp/rsftp/internal/ttymodes"
)

// TerminalMode is one terminal mode of a pty-req (RFC 4254 section 8):
// an opcode from 1 to 159 (ECHO is 53, VINTR 1, TTY_OP_OSPEED 129) and
// its argument, a flag's 0 or 1, a control character, or a speed.
type TerminalMode struct {
	Opcode uint8
	Value  uint32
}

// TerminalModes is the ordered list of terminal modes a client sends
// with RequestPty; a server applies them in order, so a later mode wins.
type TerminalModes []TerminalMode

// TerminalModesFromFd encodes the settings of the local terminal open on
// fd as OpenSSH's ssh does for its pty-req: the line speeds, the control
// characters (a disabled one as 255) and the flags the RFC names that
// this system has. On Linux and the BSDs (macOS included) it reads them
// with termios; on Windows, whose console has no termios, it returns a
// fixed set: a sane UTF-8 terminal with ^? as erase and ^C as interrupt.
func TerminalModesFromFd(fd int) (TerminalModes, error) {
	m, err := ttymodes.FromFd(fd)
	if err != nil {
		return nil, err
	}
	return fromConnmsgModes(m), nil
}

func fromConnmsgModes(m []connmsg.TerminalMode) TerminalModes {
	if m == nil {
		return nil
	}
	out := make(TerminalModes, len(m))
	for i, x := range m {
		out[i] = TerminalMode{Opcode: x.Opcode, Value: x.Value}
	}
	return out
}

func (t TerminalModes) connmsg() []connmsg.TerminalMode {
	out := make([]connmsg.TerminalMode, len(t))
	for i, x := range t {
		out[i] = connmsg.TerminalMode{Opcode: x.Opcode, Value: x.Value}
	}
	return out
}

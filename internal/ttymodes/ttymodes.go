// Package ttymodes turns a terminal's termios settings into the terminal
// modes of a pty-req (RFC 4254 section 8) and back, as OpenSSH's
// ttymodes.c does: the client encodes its own terminal's settings
// (FromFd), the server applies what the client sent to the
// pseudo-terminal it allocates (ApplyFd).
//
// Opcodes and the encoding are the RFC's and RFC 8160's (IUTF8); the
// mapping onto each system's termios lives in files per system:
// termios_linux.go, termios_bsd.go (macOS and the BSDs, with their
// differences in termios_darwin.go and the like), and
// ttymodes_other.go, where no termios exists (Windows: FromFd gives a
// fixed set, ApplyFd fails).
package ttymodes

import (
	"errors"

	"github.com/rsftp/rsftp/internal/connmsg"
)

// The opcodes of RFC 4254 section 8 and RFC 8160.
const (
	VINTR    = 1
	VQUIT    = 2
	VERASE   = 3
	VKILL    = 4
	VEOF     = 5
	VEOL     = 6
	VEOL2    = 7
	VSTART   = 8
	VSTOP    = 9
	VSUSP    = 10
	VDSUSP   = 11
	VREPRINT = 12
	VWERASE  = 13
	VLNEXT   = 14
	VFLUSH   = 15
	VSWTCH   = 16
	VSTATUS  = 17
	VDISCARD = 18
	IGNPAR   = 30
	PARMRK   = 31
	INPCK    = 32
	ISTRIP   = 33
	INLCR    = 34
	IGNCR    = 35
	ICRNL    = 36
	IUCLC    = 37
	IXON     = 38
	IXANY    = 39
	IXOFF    = 40
	IMAXBEL  = 41
	IUTF8    = 42
	ISIG     = 50
	ICANON   = 51
	XCASE    = 52
	ECHO     = 53
	ECHOE    = 54
	ECHOK    = 55
	ECHONL   = 56
	NOFLSH   = 57
	TOSTOP   = 58
	IEXTEN   = 59
	ECHOCTL  = 60
	ECHOKE   = 61
	PENDIN   = 62
	OPOST    = 70
	OLCUC    = 71
	ONLCR    = 72
	OCRNL    = 73
	ONOCR    = 74
	ONLRET   = 75
	CS7      = 90
	CS8      = 91
	PARENB   = 92
	PARODD   = 93
	ISPEED   = 128
	OSPEED   = 129
)

// charDisabled is how a disabled control character (the system's
// _POSIX_VDISABLE) is encoded, as OpenSSH encodes it.
const charDisabled = 255

// ErrUnsupported is ApplyFd's error (and FromFd's, for a descriptor)
// where the system has no termios.
var ErrUnsupported = errors.New("ttymodes: terminal modes are not supported on this system")

// speeds are the line speeds carried by ISPEED and OSPEED that a
// terminal is set to: others are ignored (a pseudo-terminal has no line,
// and the numbers only inform programs).
var speeds = []uint32{0, 50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400,
	57600, 115200, 230400, 460800, 921600}

func knownSpeed(v uint32) bool {
	for _, s := range speeds {
		if s == v {
			return true
		}
	}
	return false
}

// Default is a sensible set of modes for a terminal whose settings
// cannot be read (a Windows console): what a Unix terminal has after
// "stty sane" with UTF-8, ^? as erase.
func Default() []connmsg.TerminalMode {
	return []connmsg.TerminalMode{
		{Opcode: ISPEED, Value: 38400}, {Opcode: OSPEED, Value: 38400},
		{Opcode: VINTR, Value: 3}, {Opcode: VQUIT, Value: 28}, {Opcode: VERASE, Value: 127},
		{Opcode: VKILL, Value: 21}, {Opcode: VEOF, Value: 4}, {Opcode: VEOL, Value: charDisabled},
		{Opcode: VEOL2, Value: charDisabled}, {Opcode: VSTART, Value: 17}, {Opcode: VSTOP, Value: 19},
		{Opcode: VSUSP, Value: 26}, {Opcode: VREPRINT, Value: 18}, {Opcode: VWERASE, Value: 23},
		{Opcode: VLNEXT, Value: 22}, {Opcode: VDISCARD, Value: 15},
		{Opcode: IGNPAR, Value: 0}, {Opcode: PARMRK, Value: 0}, {Opcode: INPCK, Value: 0},
		{Opcode: ISTRIP, Value: 0}, {Opcode: INLCR, Value: 0}, {Opcode: IGNCR, Value: 0},
		{Opcode: ICRNL, Value: 1}, {Opcode: IXON, Value: 1}, {Opcode: IXANY, Value: 0},
		{Opcode: IXOFF, Value: 0}, {Opcode: IMAXBEL, Value: 1}, {Opcode: IUTF8, Value: 1},
		{Opcode: ISIG, Value: 1}, {Opcode: ICANON, Value: 1}, {Opcode: ECHO, Value: 1},
		{Opcode: ECHOE, Value: 1}, {Opcode: ECHOK, Value: 1}, {Opcode: ECHONL, Value: 0},
		{Opcode: NOFLSH, Value: 0}, {Opcode: TOSTOP, Value: 0}, {Opcode: IEXTEN, Value: 1},
		{Opcode: ECHOCTL, Value: 1}, {Opcode: ECHOKE, Value: 1}, {Opcode: PENDIN, Value: 0},
		{Opcode: OPOST, Value: 1}, {Opcode: ONLCR, Value: 1}, {Opcode: OCRNL, Value: 0},
		{Opcode: ONOCR, Value: 0}, {Opcode: ONLRET, Value: 0},
		{Opcode: CS7, Value: 0}, {Opcode: CS8, Value: 1}, {Opcode: PARENB, Value: 0}, {Opcode: PARODD, Value: 0},
	}
}

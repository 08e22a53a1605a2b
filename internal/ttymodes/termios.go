//go:build linux || darwin || freebsd || netbsd || openbsd

package ttymodes

import (
	"github.com/rsftp/rsftp/internal/connmsg"
	"golang.org/x/sys/unix"
)

// The termios flag words a flag mode lives in.
const (
	iflag = iota
	oflag
	cflag
	lflag
)

// A flagMode is an opcode whose argument says whether bits are set in a
// flag word; a charMode one whose argument is a control character.
type flagMode struct {
	op   uint8
	word int
	bits tcflag
}

type charMode struct {
	op    uint8
	index int
}

// commonChars and commonFlags are in every system's termios; each
// system's file adds its own (sysChars, sysFlags).
var commonChars = []charMode{
	{VINTR, unix.VINTR}, {VQUIT, unix.VQUIT}, {VERASE, unix.VERASE}, {VKILL, unix.VKILL},
	{VEOF, unix.VEOF}, {VEOL, unix.VEOL}, {VEOL2, unix.VEOL2}, {VSTART, unix.VSTART},
	{VSTOP, unix.VSTOP}, {VSUSP, unix.VSUSP}, {VREPRINT, unix.VREPRINT}, {VWERASE, unix.VWERASE},
	{VLNEXT, unix.VLNEXT}, {VDISCARD, unix.VDISCARD},
}

var commonFlags = []flagMode{
	{IGNPAR, iflag, unix.IGNPAR}, {PARMRK, iflag, unix.PARMRK}, {INPCK, iflag, unix.INPCK},
	{ISTRIP, iflag, unix.ISTRIP}, {INLCR, iflag, unix.INLCR}, {IGNCR, iflag, unix.IGNCR},
	{ICRNL, iflag, unix.ICRNL}, {IXON, iflag, unix.IXON}, {IXANY, iflag, unix.IXANY},
	{IXOFF, iflag, unix.IXOFF}, {IMAXBEL, iflag, unix.IMAXBEL},
	{ISIG, lflag, unix.ISIG}, {ICANON, lflag, unix.ICANON}, {ECHO, lflag, unix.ECHO},
	{ECHOE, lflag, unix.ECHOE}, {ECHOK, lflag, unix.ECHOK}, {ECHONL, lflag, unix.ECHONL},
	{NOFLSH, lflag, unix.NOFLSH}, {TOSTOP, lflag, unix.TOSTOP}, {IEXTEN, lflag, unix.IEXTEN},
	{ECHOCTL, lflag, unix.ECHOCTL}, {ECHOKE, lflag, unix.ECHOKE}, {PENDIN, lflag, unix.PENDIN},
	{OPOST, oflag, unix.OPOST}, {ONLCR, oflag, unix.ONLCR}, {OCRNL, oflag, unix.OCRNL},
	{ONOCR, oflag, unix.ONOCR}, {ONLRET, oflag, unix.ONLRET},
	{PARENB, cflag, unix.PARENB}, {PARODD, cflag, unix.PARODD},
}

func flagWord(t *unix.Termios, w int) *tcflag {
	switch w {
	case iflag:
		return &t.Iflag
	case oflag:
		return &t.Oflag
	case cflag:
		return &t.Cflag
	}
	return &t.Lflag
}

// FromFd reads the settings of the terminal open on fd and encodes
// them: the line speeds first, then the control characters and flags in
// opcode order.
func FromFd(fd int) ([]connmsg.TerminalMode, error) {
	t, err := unix.IoctlGetTermios(fd, ioctlGetTermios)
	if err != nil {
		return nil, err
	}
	return FromTermios(t), nil
}

// FromTermios encodes t.
func FromTermios(t *unix.Termios) []connmsg.TerminalMode {
	in, out := getSpeed(t)
	modes := []connmsg.TerminalMode{{Opcode: ISPEED, Value: in}, {Opcode: OSPEED, Value: out}}
	for _, tab := range [][]charMode{commonChars, sysChars} {
		for _, c := range tab {
			v := uint32(t.Cc[c.index])
			if t.Cc[c.index] == vdisable {
				v = charDisabled
			}
			modes = append(modes, connmsg.TerminalMode{Opcode: c.op, Value: v})
		}
	}
	for _, tab := range [][]flagMode{commonFlags, sysFlags} {
		for _, f := range tab {
			v := uint32(0)
			if *flagWord(t, f.word)&f.bits == f.bits {
				v = 1
			}
			modes = append(modes, connmsg.TerminalMode{Opcode: f.op, Value: v})
		}
	}
	size := t.Cflag & unix.CSIZE
	modes = append(modes, connmsg.TerminalMode{Opcode: CS7, Value: b2u(size == unix.CS7)},
		connmsg.TerminalMode{Opcode: CS8, Value: b2u(size == unix.CS8)})
	sortModes(modes)
	return modes
}

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// sortModes puts the speeds first, then the others by opcode (insertion
// sort: the list is short and nearly sorted).
func sortModes(m []connmsg.TerminalMode) {
	key := func(op uint8) int {
		if op >= ISPEED {
			return int(op) - 256
		}
		return int(op)
	}
	for i := 1; i < len(m); i++ {
		for j := i; j > 0 && key(m[j].Opcode) < key(m[j-1].Opcode); j-- {
			m[j], m[j-1] = m[j-1], m[j]
		}
	}
}

// Apply sets what modes say in t, in their order; opcodes this system
// has no setting for, and values out of range, are ignored, as sshd
// ignores them.
func Apply(t *unix.Termios, modes []connmsg.TerminalMode) {
	for _, m := range modes {
		switch m.Opcode {
		case ISPEED, OSPEED:
			if knownSpeed(m.Value) {
				setSpeed(t, m.Opcode == ISPEED, m.Value)
			}
			continue
		case CS7, CS8:
			if m.Value != 0 {
				size := tcflag(unix.CS7)
				if m.Opcode == CS8 {
					size = unix.CS8
				}
				t.Cflag = t.Cflag&^unix.CSIZE | size
			}
			continue
		}
		if c, ok := findChar(m.Opcode); ok {
			switch {
			case m.Value == charDisabled:
				t.Cc[c.index] = vdisable
			case m.Value < 256:
				t.Cc[c.index] = uint8(m.Value)
			}
			continue
		}
		if f, ok := findFlag(m.Opcode); ok {
			w := flagWord(t, f.word)
			if m.Value != 0 {
				*w |= f.bits
			} else {
				*w &^= f.bits
			}
		}
	}
}

func findChar(op uint8) (charMode, bool) {
	for _, tab := range [][]charMode{commonChars, sysChars} {
		for _, c := range tab {
			if c.op == op {
				return c, true
			}
		}
	}
	return charMode{}, false
}

func findFlag(op uint8) (flagMode, bool) {
	for _, tab := range [][]flagMode{commonFlags, sysFlags} {
		for _, f := range tab {
			if f.op == op {
				return f, true
			}
		}
	}
	return flagMode{}, false
}

// ApplyFd applies modes to the terminal open on fd (a pseudo-terminal's
// either side).
func ApplyFd(fd int, modes []connmsg.TerminalMode) error {
	t, err := unix.IoctlGetTermios(fd, ioctlGetTermios)
	if err != nil {
		return err
	}
	Apply(t, modes)
	return unix.IoctlSetTermios(fd, ioctlSetTermios, t)
}

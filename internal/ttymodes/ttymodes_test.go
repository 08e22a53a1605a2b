//go:build linux || darwin || freebsd || netbsd || openbsd

package ttymodes

import (
	"testing"

	"github.com/rsftp/rsftp/internal/connmsg"
	"golang.org/x/sys/unix"
)

// TestApplyThenEncode: the modes of Default applied to a termios encode
// back to the same values, and the encoding starts with the speeds.
func TestApplyThenEncode(t *testing.T) {
	var tio unix.Termios
	Apply(&tio, Default())
	got := map[uint8]uint32{}
	enc := FromTermios(&tio)
	for _, m := range enc {
		got[m.Opcode] = m.Value
	}
	if enc[0].Opcode != ISPEED || enc[1].Opcode != OSPEED {
		t.Errorf("encoding starts with %v, want the speeds", enc[:2])
	}
	for _, m := range Default() {
		if _, ok := findChar(m.Opcode); !ok && m.Opcode < CS7 {
			if _, ok := findFlag(m.Opcode); !ok {
				continue // not on this system
			}
		}
		if v, ok := got[m.Opcode]; !ok || v != m.Value {
			t.Errorf("opcode %d: encoded %d (present %v), applied %d", m.Opcode, v, ok, m.Value)
		}
	}
}

// TestApplyOrderAndRange: later modes win, and values a termios cannot
// hold are ignored.
func TestApplyOrderAndRange(t *testing.T) {
	var tio unix.Termios
	Apply(&tio, []connmsg.TerminalMode{{Opcode: ECHO, Value: 1}, {Opcode: ECHO, Value: 0},
		{Opcode: VINTR, Value: 3}, {Opcode: VINTR, Value: 300}, {Opcode: VQUIT, Value: charDisabled},
		{Opcode: OSPEED, Value: 9600}, {Opcode: OSPEED, Value: 12345}, {Opcode: CS7, Value: 1}, {Opcode: CS8, Value: 1}})
	if tio.Lflag&unix.ECHO != 0 {
		t.Error("ECHO set, though the last mode cleared it")
	}
	if tio.Cc[unix.VINTR] != 3 {
		t.Errorf("VINTR %d, want 3 (300 ignored)", tio.Cc[unix.VINTR])
	}
	if tio.Cc[unix.VQUIT] != vdisable {
		t.Errorf("VQUIT %d, want disabled", tio.Cc[unix.VQUIT])
	}
	if _, out := getSpeed(&tio); out != 9600 {
		t.Errorf("output speed %d, want 9600", out)
	}
	if tio.Cflag&unix.CSIZE != unix.CS8 {
		t.Errorf("character size %#x, want CS8", tio.Cflag&unix.CSIZE)
	}
}

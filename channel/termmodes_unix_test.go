//go:build linux || darwin || freebsd || netbsd || openbsd

package channel

import (
	"os"
	"testing"

	"github.com/creack/pty"
	"github.com/rsftp/rsftp/internal/ttymodes"
	"golang.org/x/sys/unix"
)

// TestTerminalModesFromFd: the modes read from a real terminal are its
// settings, and applied to another terminal they give it the same ones.
func TestTerminalModesFromFd(t *testing.T) {
	m, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer m.Close()
	defer tty.Close()
	// Echo off, ^X as interrupt, erase disabled.
	if err := ttymodes.ApplyFd(int(tty.Fd()), TerminalModes{{53, 0}, {1, 0x18}, {3, 255}}.connmsg()); err != nil {
		t.Fatal(err)
	}
	modes, err := TerminalModesFromFd(int(tty.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint8]uint32{}
	for _, x := range modes {
		got[x.Opcode] = x.Value
	}
	if got[53] != 0 || got[1] != 0x18 || got[3] != 255 || got[50] != 1 {
		t.Errorf("ECHO %d, VINTR %#x, VERASE %d, ISIG %d; want 0, 0x18, 255 (disabled), 1", got[53], got[1], got[3], got[50])
	}
	if modes[0].Opcode != 128 || modes[1].Opcode != 129 {
		t.Errorf("modes start with %v, want the speeds", modes[:2])
	}

	m2, tty2, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	defer tty2.Close()
	if err := ttymodes.ApplyFd(int(tty2.Fd()), modes.connmsg()); err != nil {
		t.Fatal(err)
	}
	a, _ := unix.IoctlGetTermios(int(tty.Fd()), ioctlGetTermiosForTest)
	b, _ := unix.IoctlGetTermios(int(tty2.Fd()), ioctlGetTermiosForTest)
	if a.Iflag != b.Iflag || a.Oflag != b.Oflag || a.Lflag != b.Lflag || a.Cc != b.Cc {
		t.Errorf("terminal given the modes read differs:\n%+v\n%+v", a, b)
	}

	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := TerminalModesFromFd(int(f.Fd())); err == nil {
		t.Error("modes read from /dev/null")
	}
}

package ttymodes

import "golang.org/x/sys/unix"

type tcflag = uint32

const (
	ioctlGetTermios = unix.TCGETS
	ioctlSetTermios = unix.TCSETS
	vdisable        = 0 // _POSIX_VDISABLE
)

var sysChars = []charMode{{VSWTCH, unix.VSWTC}}

var sysFlags = []flagMode{
	{IUCLC, iflag, unix.IUCLC}, {IUTF8, iflag, unix.IUTF8}, {XCASE, lflag, unix.XCASE},
	{OLCUC, oflag, unix.OLCUC},
}

// linuxSpeeds maps the speeds to the codes Linux keeps in c_cflag's CBAUD
// bits (TCGETS leaves c_ispeed and c_ospeed alone).
var linuxSpeeds = []struct {
	baud uint32
	code tcflag
}{
	{0, unix.B0}, {50, unix.B50}, {75, unix.B75}, {110, unix.B110}, {134, unix.B134}, {150, unix.B150},
	{200, unix.B200}, {300, unix.B300}, {600, unix.B600}, {1200, unix.B1200}, {1800, unix.B1800},
	{2400, unix.B2400}, {4800, unix.B4800}, {9600, unix.B9600}, {19200, unix.B19200},
	{38400, unix.B38400}, {57600, unix.B57600}, {115200, unix.B115200}, {230400, unix.B230400},
	{460800, unix.B460800}, {921600, unix.B921600},
}

// getSpeed returns the line speeds; the input speed is the output speed
// unless CIBAUD sets another.
func getSpeed(t *unix.Termios) (in, out uint32) {
	out = codeSpeed(t.Cflag & unix.CBAUD)
	in = out
	if ib := (t.Cflag & unix.CIBAUD) >> ibshift; ib != 0 {
		in = codeSpeed(ib)
	}
	return in, out
}

// ibshift is how far CIBAUD lies above CBAUD (IBSHIFT).
const ibshift = 16

func codeSpeed(code tcflag) uint32 {
	for _, s := range linuxSpeeds {
		if s.code == code {
			return s.baud
		}
	}
	return 38400
}

func setSpeed(t *unix.Termios, input bool, baud uint32) {
	for _, s := range linuxSpeeds {
		if s.baud != baud {
			continue
		}
		if input {
			t.Cflag = t.Cflag&^unix.CIBAUD | s.code<<ibshift
		} else {
			t.Cflag = t.Cflag&^unix.CBAUD | s.code
		}
		return
	}
}

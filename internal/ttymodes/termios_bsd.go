//go:build darwin || freebsd || netbsd || openbsd

package ttymodes

import "golang.org/x/sys/unix"

const (
	ioctlGetTermios = unix.TIOCGETA
	ioctlSetTermios = unix.TIOCSETA
	vdisable        = 0xff // _POSIX_VDISABLE
)

// getSpeed returns the line speeds, which the BSDs keep as numbers.
func getSpeed(t *unix.Termios) (in, out uint32) {
	return uint32(t.Ispeed), uint32(t.Ospeed)
}

func setSpeed(t *unix.Termios, input bool, baud uint32) {
	if input {
		setNum(&t.Ispeed, baud)
	} else {
		setNum(&t.Ospeed, baud)
	}
}

// setNum stores v in a speed field, whose type differs between systems.
func setNum[T ~int32 | ~uint32 | ~uint64](p *T, v uint32) { *p = T(v) }

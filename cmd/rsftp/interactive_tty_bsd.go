//go:build darwin || dragonfly || freebsd || netbsd || openbsd

package main

import "golang.org/x/sys/unix"

// rawInput puts the terminal's input in raw mode for the line editor, as
// term.MakeRaw does, but leaves output processing on: messages that
// arrive while a line is typed (a lost connection, its resumption) still
// begin their lines at the left margin. The BSDs' (and macOS's) termios
// ioctls are TIOCGETA and TIOCSETA where Linux has TCGETS and TCSETS.
func rawInput(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TIOCGETA)
	if err != nil {
		return err
	}
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	return unix.IoctlSetTermios(fd, unix.TIOCSETA, t)
}

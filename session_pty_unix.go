//go:build unix

package rsftp

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"

	"github.com/creack/pty"
	"github.com/rsftp/rsftp/internal/connmsg"
	"github.com/rsftp/rsftp/internal/ttymodes"
	"golang.org/x/sys/unix"
)

// ptyFiles is a pseudo-terminal: the master side the server reads and
// writes, the terminal the program gets (nil once given).
type ptyFiles struct {
	master, tty *os.File
}

func (p *ptyFiles) name() string { return p.tty.Name() }

func (p *ptyFiles) close() {
	p.master.Close()
	if p.tty != nil {
		p.tty.Close()
	}
}

// openPty allocates a pseudo-terminal with req's modes and size. A mode
// the system cannot apply is skipped, as sshd skips it.
func openPty(req *PtyRequest) (*ptyFiles, error) {
	m, t, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("allocating a pseudo-terminal: %w", err)
	}
	master, err := pollable(m)
	if err != nil {
		m.Close()
		t.Close()
		return nil, fmt.Errorf("allocating a pseudo-terminal: %w", err)
	}
	p := &ptyFiles{master: master, tty: t}
	modes := make([]connmsg.TerminalMode, len(req.Modes))
	for i, x := range req.Modes {
		modes[i] = connmsg.TerminalMode{Opcode: x.Opcode, Value: x.Value}
	}
	if err := ttymodes.ApplyFd(int(t.Fd()), modes); err != nil && err != ttymodes.ErrUnsupported {
		p.close()
		return nil, fmt.Errorf("setting the terminal's modes: %w", err)
	}
	if err := setWinsize(master, req.Window); err != nil {
		p.close()
		return nil, fmt.Errorf("setting the terminal's size: %w", err)
	}
	return p, nil
}

// pollable replaces f, which pty.Open leaves blocking, with a
// non-blocking copy that Go's poller serves: reads then take deadlines
// (the drain after the program exits) and Close interrupts them.
func pollable(f *os.File) (*os.File, error) {
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		return nil, err
	}
	unix.CloseOnExec(fd)
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, err
	}
	f.Close()
	return os.NewFile(uintptr(fd), "pty master"), nil
}

// setWinsize sets the terminal's size (TIOCSWINSZ; the kernel sends
// SIGWINCH to its foreground group). Dimensions past 65535 are cut.
func setWinsize(master *os.File, w Window) error {
	ws := &unix.Winsize{Col: dim16(w.Cols), Row: dim16(w.Rows), Xpixel: dim16(w.WidthPx), Ypixel: dim16(w.HeightPx)}
	return control(master, func(fd int) error { return unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, ws) })
}

func dim16(v uint32) uint16 { return uint16(min(v, 65535)) }

// control runs f on f's descriptor without making it blocking (as Fd
// would): the master's reads keep their deadlines.
func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// ptyDrainQuiet is how long the terminal is read after the program
// exited once nothing more comes: what a process left behind holding it
// writes later is not waited for (sshd closes the terminal once its
// program is gone and the output read).
const ptyDrainQuiet = 100 * time.Millisecond

// ptyBuffers is how many 32 KiB buffers of a terminal's output may wait
// for the channel.
const ptyBuffers = 4

// runPty runs cmd on the pseudo-terminal p.
func (s *ServerSession) runPty(ctx context.Context, cmd *exec.Cmd, p *ptyFiles) int {
	setSession(cmd, true)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = p.tty, p.tty, p.tty
	err := cmd.Start()
	// Only the program holds the terminal now: the master reads EIO
	// once it (and whatever it started) closed it.
	p.tty.Close()
	p.tty = nil
	if err != nil {
		p.master.Close()
		return s.startFailed(err)
	}
	proc := cmd.Process
	s.Notify(SessionRequests{
		WindowChange: func(w Window) { setWinsize(p.master, w) },
		Signal:       func(name string) error { return signalGroup(proc, name) },
		Break:        func(ms uint32) error { return sendBreak(p.master, ms) },
	})
	// A window-change between pty-req and now.
	setWinsize(p.master, s.Window())
	go func() {
		// The client's EOF is not passed on: a terminal has none (the
		// user types ^D), as with sshd.
		io.CopyBuffer(p.master, struct{ io.Reader }{s.Channel}, make([]byte, 32<<10))
	}()
	exited := make(chan struct{})
	copied := make(chan struct{})
	// The terminal is read by one goroutine and the channel written by
	// another, with a few buffers between them, as sshd's buffers
	// decouple them: while a write waits for the channel, the terminal
	// is still drained and the program does not stop on a full
	// terminal.
	free, full := make(chan []byte, ptyBuffers), make(chan []byte, ptyBuffers)
	for range ptyBuffers {
		free <- make([]byte, 32<<10)
	}
	writeFailed := make(chan struct{})
	go func() {
		defer close(copied)
		failed := false
		for b := range full {
			if !failed {
				if _, err := s.Channel.Write(b); err != nil {
					failed = true
					close(writeFailed)
				}
			}
			free <- b[:cap(b)]
		}
	}()
	go func() {
		defer close(full)
		for {
			select {
			case <-exited:
				p.master.SetReadDeadline(time.Now().Add(ptyDrainQuiet))
			default:
			}
			var buf []byte
			select {
			case buf = <-free:
			case <-writeFailed:
				return
			}
			n, err := readAvailable(p.master, buf)
			if n > 0 {
				full <- buf[:n]
			} else {
				free <- buf
			}
			if err != nil {
				return // EIO: nobody holds the terminal; or the deadline
			}
		}
	}()
	stop := s.hangUpWhenDone(ctx, proc, func() { p.master.Close() })
	err = cmd.Wait()
	stop()
	close(exited)
	p.master.SetReadDeadline(time.Now().Add(ptyDrainQuiet))
	<-copied
	p.master.Close()
	return s.exitStatus(err)
}

// readAvailable reads what the terminal has, as much of it as fits in
// buf, waiting (through the runtime's poller, deadlines included) only
// while there is nothing: a terminal hands out at most a few KiB a read,
// and a program that prints fast would otherwise cost a channel packet,
// and all that goes with one, per few KiB (bulk output through a pty ran
// at 0.8x sshd's). It returns an error only with nothing read.
func readAvailable(f *os.File, buf []byte) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return f.Read(buf)
	}
	n := 0
	var rerr error
	err = rc.Read(func(fd uintptr) bool {
		for n < len(buf) {
			m, err := unix.Read(int(fd), buf[n:])
			if m > 0 {
				n += m
				continue
			}
			if err == unix.EINTR {
				continue
			}
			if err == unix.EAGAIN {
				return n > 0 // nothing yet: wait for the poller
			}
			if err == nil {
				err = io.EOF
			}
			if n == 0 {
				rerr = err
			}
			return true
		}
		return true
	})
	if n > 0 {
		return n, nil
	}
	if rerr != nil {
		return 0, rerr
	}
	return 0, err
}

//go:build unix

package rsftp

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/creack/pty"
	"github.com/rsftp/rsftp/internal/connmsg"
	"github.com/rsftp/rsftp/internal/ttymodes"
	"golang.org/x/sys/unix"
)

// ptyFiles is a pseudo-terminal: the master side the server reads and
// writes, the terminal the program gets (nil once given).
type ptyFiles struct {
	master *ptyMaster
	tty    *os.File
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
	master, err := newPtyMaster(m)
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
	if err := setWinsize(master.f, req.Window); err != nil {
		p.close()
		return nil, fmt.Errorf("setting the terminal's size: %w", err)
	}
	return p, nil
}

// ptyMaster is a pseudo-terminal's master side, read and written with
// non-blocking system calls that wait in poll(2), as sshd waits for its
// terminal, and not through Go's runtime poller (issue 18's bulk row).
//
// Linux's terminal hands out at most 4 KiB a read (the line discipline's
// buffer), which a kernel worker refills as the reader drains it; its
// poll, and its reads that find the buffer empty, first wait for that
// worker to finish (flush_work). With the master in the runtime's epoll
// set, every epoll_wait of the program's threads that found it ready
// (the scheduler's non-blocking looks included, about one per 4 KiB)
// waited for the worker too, and the thread blocked in the poller woke
// for output nobody was waiting for yet.
//
// Nothing may call f.Fd, which would make the descriptor blocking: Linux's
// readNoWait reads it without letting the runtime know of the system call.
type ptyMaster struct {
	f  *os.File        // non-blocking, not registered with the runtime's poller
	rc syscall.RawConn // f's, taken once: each Read and Write runs on it

	// wake is a pipe whose read end a waiting Read polls beside the
	// terminal: a byte in it says that the deadline changed or that the
	// master was closed.
	wake [2]int

	mu       sync.Mutex
	deadline time.Time
	closed   bool
	users    int // Reads and Writes under way: wake[0] stays open for them
}

// newPtyMaster takes over m, which pty.Open leaves blocking.
func newPtyMaster(m *os.File) (*ptyMaster, error) {
	fd, err := unix.Dup(int(m.Fd()))
	if err != nil {
		return nil, err
	}
	unix.CloseOnExec(fd)
	// Still blocking here, so that os.NewFile leaves it out of the
	// runtime's poller; non-blocking from the next line on.
	f := os.NewFile(uintptr(fd), "pty master")
	if err := unix.SetNonblock(fd, true); err != nil {
		f.Close()
		return nil, err
	}
	var wake [2]int
	if err := unix.Pipe(wake[:]); err != nil {
		f.Close()
		return nil, err
	}
	for _, w := range wake {
		unix.CloseOnExec(w)
		unix.SetNonblock(w, true)
	}
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		unix.Close(wake[0])
		unix.Close(wake[1])
		return nil, err
	}
	m.Close()
	return &ptyMaster{f: f, rc: rc, wake: wake}, nil
}

// begin counts a Read or Write in, or says that the master is closed.
func (m *ptyMaster) begin() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return os.ErrClosed
	}
	m.users++
	return nil
}

func (m *ptyMaster) end() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.users--
	if m.closed && m.users == 0 {
		unix.Close(m.wake[0])
	}
}

// nudgeLocked wakes a Read waiting in poll; m.mu is held. A full pipe is
// awake already.
func (m *ptyMaster) nudgeLocked() {
	unix.Write(m.wake[1], []byte{0})
}

// SetReadDeadline sets the time after which a Read that finds nothing
// returns os.ErrDeadlineExceeded; the zero time waits forever.
func (m *ptyMaster) SetReadDeadline(t time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.deadline = t
	m.nudgeLocked()
}

// Close closes the master, ending a Read or Write under way with
// os.ErrClosed. The terminal's descriptor is closed once they return.
func (m *ptyMaster) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.nudgeLocked()
	unix.Close(m.wake[1])
	if m.users == 0 {
		unix.Close(m.wake[0])
	}
	m.mu.Unlock()
	// The file is not the poller's: its Close does not wait for Control's
	// callbacks, and the close(2) happens once they have returned.
	return m.f.Close()
}

// Read reads what the terminal has, as much of it as fits in buf,
// waiting only while there is nothing: a program that prints fast then
// costs a channel packet per 32 KiB, not per 4 KiB. It returns an error
// only with nothing read: EIO (Linux) or EOF once nobody holds the
// terminal, os.ErrDeadlineExceeded, os.ErrClosed.
func (m *ptyMaster) Read(buf []byte) (int, error) {
	if len(buf) == 0 {
		return 0, nil
	}
	if err := m.begin(); err != nil {
		return 0, err
	}
	defer m.end()
	rc := m.rc
	n := 0
	var rerr error
	if err := rc.Control(func(fd uintptr) { n, rerr = m.read(int(fd), buf) }); err != nil {
		return 0, err
	}
	return n, rerr
}

func (m *ptyMaster) read(fd int, buf []byte) (int, error) {
	n := 0
	for {
		for n < len(buf) {
			k, err := readNoWait(fd, buf[n:])
			if k > 0 {
				n += k
				continue
			}
			if err == unix.EINTR {
				continue
			}
			if err == unix.EAGAIN {
				break
			}
			if n > 0 {
				return n, nil // the error comes again at the next read
			}
			if err == nil {
				err = io.EOF
			}
			return 0, err
		}
		if n > 0 {
			return n, nil
		}
		m.mu.Lock()
		closed, deadline := m.closed, m.deadline
		m.mu.Unlock()
		if closed {
			return 0, os.ErrClosed
		}
		timeout := -1
		if !deadline.IsZero() {
			d := time.Until(deadline)
			if d <= 0 {
				return 0, os.ErrDeadlineExceeded
			}
			timeout = int((d + time.Millisecond - 1) / time.Millisecond)
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(m.wake[0]), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, timeout); err != nil && err != unix.EINTR {
			return 0, fmt.Errorf("waiting for the terminal: %w", err)
		}
		if fds[1].Revents != 0 {
			// Empty the pipe; the loop looks at the deadline and at
			// Close again.
			var b [64]byte
			for {
				if k, _ := unix.Read(m.wake[0], b[:]); k < len(b) {
					break
				}
			}
		}
	}
}

// ptyWritePoll is how long a Write waiting for room in the terminal's
// input sleeps before it looks whether the master was closed.
const ptyWritePoll = 100 * time.Millisecond

// Write writes all of p to the terminal, waiting while its input is full.
func (m *ptyMaster) Write(p []byte) (int, error) {
	if err := m.begin(); err != nil {
		return 0, err
	}
	defer m.end()
	rc := m.rc
	n := 0
	var werr error
	cerr := rc.Control(func(fd uintptr) {
		for n < len(p) {
			k, err := unix.Write(int(fd), p[n:])
			if k > 0 {
				n += k
				continue
			}
			if err == unix.EINTR {
				continue
			}
			if err != unix.EAGAIN {
				if err == nil {
					err = io.ErrShortWrite
				}
				werr = err
				return
			}
			m.mu.Lock()
			closed := m.closed
			m.mu.Unlock()
			if closed {
				werr = os.ErrClosed
				return
			}
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
			if _, err := unix.Poll(fds, int(ptyWritePoll/time.Millisecond)); err != nil && err != unix.EINTR {
				werr = fmt.Errorf("waiting for the terminal: %w", err)
				return
			}
		}
	})
	if werr == nil {
		werr = cerr
	}
	return n, werr
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
		WindowChange: func(w Window) { setWinsize(p.master.f, w) },
		Signal:       func(name string) error { return signalGroup(proc, name) },
		Break:        func(ms uint32) error { return sendBreak(p.master.f, ms) },
	})
	// A window-change between pty-req and now.
	setWinsize(p.master.f, s.Window())
	go func() {
		// The client's EOF is not passed on: a terminal has none (the
		// user types ^D), as with sshd.
		io.CopyBuffer(p.master, struct{ io.Reader }{s.Channel}, make([]byte, 32<<10))
	}()
	exited := make(chan struct{})
	copied := make(chan struct{})
	// One goroutine reads the terminal and, while the channel takes the
	// output at once, writes it too (Channel.TryWrite), as sshd does from
	// its one loop: a buffer handed to another goroutine costs a wake-up
	// on another thread, and that, not the bytes, bounded a pty's
	// output (issue 18's bulk row). When the peer's window is shut or a
	// write is under way, buffers go to a writer goroutine that waits,
	// and the terminal is still drained into the spare ones meanwhile, as
	// sshd's buffers decouple its terminal from the connection; queued
	// counts them, and while any is queued the reader queues behind it,
	// so that the output keeps its order.
	free, full := make(chan []byte, ptyBuffers), make(chan []byte, ptyBuffers)
	for range ptyBuffers {
		free <- make([]byte, 32<<10)
	}
	var queued atomic.Int32
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
			// Counted out before the buffer is freed: a reader that
			// finds queued at 0 finds every queued write done.
			queued.Add(-1)
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
			n, err := p.master.Read(buf)
			switch {
			case n == 0:
				free <- buf
			case queued.Load() == 0:
				ok, werr := s.Channel.TryWrite(buf[:n])
				if werr != nil {
					return
				}
				if ok {
					free <- buf
					break
				}
				fallthrough
			default:
				queued.Add(1)
				full <- buf[:n]
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

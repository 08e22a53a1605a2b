//go:build unix

package rsftp

import (
	"context"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// USR1 and USR2 are Unix's: Windows' syscall package has no such signals.
func init() {
	signalNames[syscall.SIGUSR1] = "USR1"
	signalNames[syscall.SIGUSR2] = "USR2"
}

// setSession makes cmd's process the leader of a session of its own
// (setsid), and, with ctty, makes its stdin (the terminal) the session's
// controlling terminal: its process group is then the terminal's
// foreground group, which gets SIGINT for ^C and SIGWINCH.
func setSession(cmd *exec.Cmd, ctty bool) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid = true
	cmd.SysProcAttr.Setpgid = false
	cmd.SysProcAttr.Setctty = ctty
	cmd.SysProcAttr.Ctty = 0 // the child's fd 0
}

// signalGroup sends the signal RFC 4254 calls name to p's process group
// (p leads its own session, so the group is its pid).
func signalGroup(p *os.Process, name string) error {
	sig, ok := signalByName(name)
	if !ok {
		return errUnknownSignal(name)
	}
	return syscall.Kill(-p.Pid, sig)
}

// hangUpWhenDone watches the session for p: when the channel closes,
// p's group gets SIGHUP and hup runs (it closes the terminal); when ctx
// ends, the same and, shutdownGrace later, SIGKILL. stop ends the watch,
// once p has been waited for.
func (s *ServerSession) hangUpWhenDone(ctx context.Context, p *os.Process, hup func()) (stop func()) {
	stopc := make(chan struct{})
	go func() {
		hangUp := func() {
			syscall.Kill(-p.Pid, syscall.SIGHUP)
			if hup != nil {
				hup()
			}
		}
		select {
		case <-stopc:
			return
		case <-s.Done():
			hangUp()
			select {
			case <-stopc:
				return
			case <-ctx.Done():
			}
		case <-ctx.Done():
			hangUp()
		}
		t := time.NewTimer(shutdownGrace)
		defer t.Stop()
		select {
		case <-stopc:
		case <-t.C:
			syscall.Kill(-p.Pid, syscall.SIGKILL)
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(stopc) }) }
}

//go:build !unix

package rsftp

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"sync"
)

// ptyFiles: this system has no pseudo-terminals (Windows' ConPTY is not
// used), so pty-req is refused and there is never one.
type ptyFiles struct{}

func (p *ptyFiles) close() {}

func (p *ptyFiles) name() string { return "" }

func openPty(req *PtyRequest) (*ptyFiles, error) {
	return nil, errors.New("pseudo-terminals are not supported on this system")
}

func (s *ServerSession) runPty(ctx context.Context, cmd *exec.Cmd, p *ptyFiles) int {
	return s.runPipes(ctx, cmd)
}

// setSession: no sessions here.
func setSession(cmd *exec.Cmd, ctty bool) {}

// signalGroup can only kill: this system has no other signals.
func signalGroup(p *os.Process, name string) error {
	if name == "KILL" {
		return p.Kill()
	}
	return errUnknownSignal(name)
}

// hangUpWhenDone kills p when the channel closes or ctx ends (there is
// no SIGHUP to send first).
func (s *ServerSession) hangUpWhenDone(ctx context.Context, p *os.Process, hup func()) (stop func()) {
	stopc := make(chan struct{})
	go func() {
		select {
		case <-stopc:
			return
		case <-s.Done():
		case <-ctx.Done():
		}
		if hup != nil {
			hup()
		}
		p.Kill()
	}()
	var once sync.Once
	return func() { once.Do(func() { close(stopc) }) }
}

//go:build unix

package main

import (
	"context"
	"errors"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// suspendSelf stops rsftp as the terminal's ^Z would (~^Z) and returns
// once the shell continues it: the caller put the terminal back first,
// and takes it again after (with the window size, which may have changed
// meanwhile).
//
// kill(2) of our own process can return before the stop takes hold: the
// kernel may hand the signal to another of the runtime's threads, and the
// caller's next steps (raw mode again, the window size) then ran before
// the stop instead of after it, so that a size changed while stopped
// never reached the server (TestE2ESSHPTYSuspend). So it waits for the
// SIGCONT that continues it. A stop that the kernel discards (a process
// group with no parent in its session, that is no shell with job control
// to return to) brings none: after suspendWait it says so.
func suspendSelf() error {
	cont := make(chan os.Signal, 1)
	signal.Notify(cont, syscall.SIGCONT)
	defer signal.Stop(cont)
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTSTP); err != nil {
		return err
	}
	t := time.NewTimer(suspendWait)
	defer t.Stop()
	select {
	case <-cont:
		return nil
	case <-t.C:
		// Stopped and continued the moment the timer fired (it does
		// not run while stopped), or never stopped.
		select {
		case <-cont:
			return nil
		case <-time.After(50 * time.Millisecond):
			return errors.New("not stopped: no shell with job control started rsftp")
		}
	}
}

// suspendWait is how long ~^Z waits for the stop it asked for before it
// takes the stop as discarded.
const suspendWait = time.Second

// dialAgent connects to the local agent whose socket -A forwards.
func dialAgent(ctx context.Context, sock string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "unix", sock)
}

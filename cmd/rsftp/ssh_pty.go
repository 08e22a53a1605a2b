package main

import (
	"context"
	"os"

	"github.com/rsftp/rsftp/channel"
)

// requestPTY asks for a pseudo-terminal of the local terminal's type
// ($TERM), size and modes, as ssh's pty-req.
func (r *sshRun) requestPTY(ctx context.Context, sess *channel.Session) error {
	cols, rows := localTermSize()
	modes, err := channel.TerminalModesFromFd(int(os.Stdin.Fd()))
	if err != nil {
		r.log.debugf("reading the terminal's modes: %v", err)
		modes = nil
	}
	return sess.RequestPty(ctx, os.Getenv("TERM"), cols, rows, modes)
}

// sendWindowSize sends the terminal's size (window-change).
func (r *sshRun) sendWindowSize(sess *channel.Session) {
	if !r.havePTY {
		return
	}
	cols, rows := localTermSize()
	if err := sess.WindowChange(cols, rows); err != nil {
		r.log.debugf("window-change: %v", err)
	}
}

// sendBreak sends a BREAK of a second (~B), as ssh does.
func sendBreak(sess *channel.Session) error { return sess.Break(1000) }

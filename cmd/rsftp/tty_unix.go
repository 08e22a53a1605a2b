//go:build unix

package main

import (
	"os"
	"os/signal"
	"syscall"
)

// terminal is where prompts are asked: the controlling terminal,
// /dev/tty, read and written.
type terminal struct{ *os.File }

// Fd is the descriptor term.ReadPassword reads without echo.
func (t terminal) Fd() uintptr { return t.File.Fd() }

// openTerminal opens the controlling terminal, if there is one.
func openTerminal() (terminal, error) {
	f, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	return terminal{f}, err
}

// sigResize is what a change of the terminal's size sends the shell.
var sigResize os.Signal = syscall.SIGWINCH

// notifyResize sends sigResize on c when the terminal's size changes.
func notifyResize(c chan<- os.Signal, _ int) (stop func()) {
	signal.Notify(c, syscall.SIGWINCH)
	return func() {}
}

//go:build unix

package e2e

import "syscall"

// newSession starts a child in a session of its own, away from the
// test's terminal.
func newSession() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setsid: true} }

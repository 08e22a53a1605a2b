package e2e

import "syscall"

// newSession: Windows has no sessions of that kind; a child gets the
// default attributes (the tests that start one skip without their peer).
func newSession() *syscall.SysProcAttr { return nil }

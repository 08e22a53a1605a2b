package main

import "syscall"

// newSession: a child without a console, so that it has no terminal to
// ask on, as a Unix child in a session of its own.
func newSession() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{CreationFlags: 0x08000000} // CREATE_NO_WINDOW
}

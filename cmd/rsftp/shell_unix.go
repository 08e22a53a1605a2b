//go:build unix

package main

import (
	"os"
	"os/exec"
	"syscall"
)

// shellCommand runs a command line as ssh does (ProxyCommand, Match
// exec) and sftp's ! does: the user's shell ($SHELL, else /bin/sh) with
// -c.
func shellCommand(line string) *exec.Cmd {
	return exec.Command(userShell(), "-c", line)
}

// proxyCommand runs a ProxyCommand as ssh does: "exec command", so that
// the shell does not stay between rsftp and the command.
func proxyCommand(command string) *exec.Cmd {
	return shellCommand("exec " + command)
}

// interactiveShell is sftp's ! with nothing after it.
func interactiveShell() *exec.Cmd { return exec.Command(userShell()) }

// localListing is sftp's lls: ls(1) with the rest of the line.
func localListing(rest string) string { return "ls " + rest }

// setUmask is lumask's umask(2).
func setUmask(mask int) error {
	syscall.Umask(mask)
	return nil
}

// hangUp tells a ProxyCommand that its connection is gone, as ssh
// does: SIGHUP.
func hangUp(p *os.Process) { p.Signal(syscall.SIGHUP) }

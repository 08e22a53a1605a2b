package main

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// comSpec is the command interpreter, cmd.exe, which OpenSSH for Windows
// also runs a ProxyCommand with.
func comSpec() string {
	if c := os.Getenv("ComSpec"); c != "" {
		return c
	}
	return `C:\Windows\System32\cmd.exe`
}

// shellCommand runs a command line with cmd.exe /c (ProxyCommand, Match
// exec, the interactive mode's !). The line goes to cmd.exe as written,
// with cmd.exe's quoting (/s: the outer quotes removed, nothing else).
func shellCommand(line string) *exec.Cmd {
	c := exec.Command(comSpec())
	c.SysProcAttr = &syscall.SysProcAttr{CmdLine: syscall.EscapeArg(comSpec()) + ` /d /s /c "` + line + `"`}
	return c
}

// proxyCommand runs a ProxyCommand: cmd.exe has no exec, and stays
// between rsftp and the command.
func proxyCommand(command string) *exec.Cmd { return shellCommand(command) }

// interactiveShell is sftp's ! with nothing after it: cmd.exe.
func interactiveShell() *exec.Cmd { return exec.Command(comSpec()) }

// localListing is sftp's lls: cmd.exe's dir, with the rest of the line
// (dir's options, not ls's).
func localListing(rest string) string { return "dir " + rest }

// setUmask refuses: Windows has no umask; a new file's permissions come
// from its directory's ACL.
func setUmask(int) error {
	return errors.New("lumask: Windows has no umask (new files take their permissions from the directory's ACL)")
}

// hangUp has no SIGHUP to send on Windows: the ProxyCommand sees its
// input end, and is killed if it lingers.
func hangUp(*os.Process) {}

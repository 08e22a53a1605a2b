//go:build unix

package main

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// checkConfigPerm refuses, as ssh does, a configuration file that is not
// owned by the user or root, or that others may write: it can run
// commands (ProxyCommand, Match exec). As Debian's ssh, a file writable
// by a group of its own (the user's private group) passes.
func checkConfigPerm(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return nil // reading it says what is wrong
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	bad := st.Uid != 0 && int(st.Uid) != os.Getuid()
	if fi.Mode().Perm()&0o002 != 0 {
		bad = true
	}
	if fi.Mode().Perm()&0o020 != 0 && !privateGroup(st.Gid) {
		bad = true
	}
	if bad {
		return fmt.Errorf("Bad owner or permissions on %s", path)
	}
	return nil
}

func privateGroup(gid uint32) bool {
	u, err := user.Current()
	if err != nil || u.Gid != strconv.Itoa(int(gid)) {
		return false
	}
	g, err := user.LookupGroupId(u.Gid)
	return err == nil && g.Name == u.Username
}

// localUser is the user's login name: %u, Match localuser, and the
// default remote user.
func localUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return os.Getenv("USER")
}

// loginName is the login name of an account as os/user names it: the
// same on Unix.
func loginName(account string) string { return account }

//go:build !windows

package auth

// SystemSSHDir is where ssh's system-wide files are: ssh_config,
// ssh_known_hosts (GlobalKnownHostsFile's default).
func SystemSSHDir() string { return "/etc/ssh" }

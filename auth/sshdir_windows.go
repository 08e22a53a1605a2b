package auth

import (
	"os"
	"path/filepath"
)

// SystemSSHDir is where ssh's system-wide files are: OpenSSH for
// Windows' %ProgramData%\ssh (ssh_config, ssh_known_hosts).
func SystemSSHDir() string {
	pd := os.Getenv("ProgramData")
	if pd == "" {
		pd = `C:\ProgramData`
	}
	return filepath.Join(pd, "ssh")
}

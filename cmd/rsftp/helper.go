package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"strings"
)

// The resume helper (docs/PROTOCOL.helper.md): against a server that does
// not speak the resume extension itself (OpenSSH's sshd), the client
// starts "rsftp helper" over an exec channel and runs SSH with the resume
// extension end to end with it, inside the outer connection; after a lost
// link it runs "rsftp attach SESSION" over a new outer connection, which
// splices that channel onto the helper's Unix socket.
//
// This file holds what both ends agree on; helper_unix.go is the remote
// end (helper and attach), helper_client.go the client's.

// helperProtocol is the version of the helper's command line and layout
// (this file's names and the flags of "rsftp helper" and "rsftp attach").
// "rsftp helper --probe" prints it as "rsftp-helper <n> <release>"; a
// client uses an rsftp found on the server's PATH only if n is its own.
const helperProtocol = 1

// helperProbeWord starts the line "rsftp helper --probe" prints.
const helperProbeWord = "rsftp-helper"

// defaultHelperDir is where, under the remote user's home, the helper
// keeps its binaries (<version>-<sha256>/rsftp) and sockets (run/).
const defaultHelperDir = ".cache/rsftp"

// helperDirEnv, set on the client, names the remote directory to use
// instead of ~/.cache/rsftp (tests point it at a temporary directory).
// The client passes it on the remote command lines as --dir; the remote
// end reads no environment for it (sshd passes little).
const helperDirEnv = "RSFTP_HELPER_DIR"

// helperRunDir is the directory (mode 0700) under the helper directory
// that holds one directory per live helper, named by its session.
const helperRunDir = "run"

// helperSocketName is the socket's name (mode 0600) inside a session's
// directory.
const helperSocketName = "sock"

// sessionIDLen is the length of a session's name: the first 8 bytes of
// its resume handle in hex, as rsftp.ResumeStatus.Session and the
// events name it.
const sessionIDLen = 16

// checkSessionID refuses anything but sessionIDLen lower-case hex digits:
// the name becomes a path element.
func checkSessionID(id string) error {
	if len(id) != sessionIDLen {
		return fmt.Errorf("session %q: a session is named by %d hex digits", id, sessionIDLen)
	}
	if _, err := hex.DecodeString(id); err != nil || strings.ToLower(id) != id {
		return fmt.Errorf("session %q: a session is named by %d lower-case hex digits", id, sessionIDLen)
	}
	return nil
}

// helperSocketPath is the socket of session id under the helper directory
// dir.
func helperSocketPath(dir, id string) string {
	return path.Join(dir, helperRunDir, id, helperSocketName)
}

// parseProbe reads the line "rsftp helper --probe" printed: the helper
// protocol and the release.
func parseProbe(line string) (proto int, release string, err error) {
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != helperProbeWord {
		return 0, "", errors.New("not an rsftp helper's probe line")
	}
	if _, err := fmt.Sscanf(f[1], "%d", &proto); err != nil || proto <= 0 {
		return 0, "", fmt.Errorf("bad helper protocol %q", f[1])
	}
	return proto, strings.Join(f[2:], " "), nil
}

// releaseName is the first line of --version without "rsftp ".
func releaseName() string {
	s, _, _ := strings.Cut(versionText(), "\n")
	return strings.TrimPrefix(strings.TrimSpace(s), "rsftp ")
}

package main

import (
	"fmt"
	"strconv"
)

const reconnectUsage = `usage: rsftp reconnect pid

The rsftp client running as process pid reconnects its resumable session at
once, as after a network change, without waiting for the link to be found
dead. On Unix this sends it SIGUSR2 (kill -USR2 pid does the same); on
Windows, which has no such signal, it signals the event
Local\rsftp-reconnect-PID that the session waits on, as any program may.
`

// rsftp reconnect PID asks a running rsftp client to reconnect its
// resumable session at once, as after a network change: SIGUSR2 on Unix
// (kill -USR2 PID does the same), the named event
// Local\rsftp-reconnect-PID on Windows, which has no such signal
// (reconnect_unix.go, reconnect_windows.go).
func runReconnect(args []string) error {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Print(reconnectUsage)
		return nil
	}
	if len(args) != 1 {
		return usageErr("reconnect: usage: rsftp reconnect pid")
	}
	pid, err := strconv.Atoi(args[0])
	if err != nil || pid <= 0 {
		return usageErr("reconnect: %q is not a process id", args[0])
	}
	if err := requestReconnect(pid); err != nil {
		return fmt.Errorf("process %d: %w", pid, err)
	}
	return nil
}

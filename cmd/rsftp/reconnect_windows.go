package main

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/windows"
)

// Windows has no SIGUSR2: a resumable session waits instead on an
// auto-reset event named Local\rsftp-reconnect-PID, in the session's
// namespace, with the default security of the process's token (its user,
// SYSTEM and the administrators may signal it). rsftp reconnect PID, or
// any program that opens the event and calls SetEvent, asks for a
// reconnection.

func reconnectEventName(pid int) string {
	return fmt.Sprintf(`Local\rsftp-reconnect-%d`, pid)
}

// onReconnectRequest calls reconnect each time the event is signalled,
// until stop is called. If the event cannot be made, or another process
// made one of that name first (which rsftp will not trust), it says so
// and rsftp goes on without: network changes and lost links still
// reconnect.
func onReconnectRequest(reconnect func(), log *logger) (stop func()) {
	name, err := windows.UTF16PtrFromString(reconnectEventName(os.Getpid()))
	if err != nil {
		return func() {}
	}
	ev, err := windows.CreateEvent(nil, 0, 0, name)
	if err != nil {
		if ev != 0 {
			windows.CloseHandle(ev)
		}
		if errors.Is(err, windows.ERROR_ALREADY_EXISTS) {
			err = errors.New("another process already made it")
		}
		log.warnf("no manual reconnection (event %s: %v)", reconnectEventName(os.Getpid()), err)
		return func() {}
	}
	quit, err := windows.CreateEvent(nil, 1, 0, nil)
	if err != nil {
		windows.CloseHandle(ev)
		log.warnf("no manual reconnection: %v", err)
		return func() {}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			i, err := windows.WaitForMultipleObjects([]windows.Handle{ev, quit}, false, windows.INFINITE)
			if err != nil || i != windows.WAIT_OBJECT_0 {
				return
			}
			reconnect()
		}
	})
	return func() {
		windows.SetEvent(quit)
		wg.Wait()
		windows.CloseHandle(ev)
		windows.CloseHandle(quit)
	}
}

// requestReconnect signals the event of process pid.
func requestReconnect(pid int) error {
	name, err := windows.UTF16PtrFromString(reconnectEventName(pid))
	if err != nil {
		return err
	}
	ev, err := windows.OpenEvent(windows.EVENT_MODIFY_STATE, false, name)
	if err != nil {
		if errors.Is(err, windows.ERROR_FILE_NOT_FOUND) {
			return errors.New("no rsftp session there waits for reconnect requests (not running, or not resumable)")
		}
		return fmt.Errorf("opening %s: %w", reconnectEventName(pid), err)
	}
	defer windows.CloseHandle(ev)
	return windows.SetEvent(ev)
}

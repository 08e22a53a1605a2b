package main

import (
	"os"
	"testing"
)

// signalReconnect asks the rsftp process p to reconnect at once.
func signalReconnect(p *os.Process) error { return requestReconnect(p.Pid) }

// TestReconnectEventGone: once the session ends its event is gone, and
// rsftp reconnect says there is nobody to ask.
func TestReconnectEventGone(t *testing.T) {
	stop := onReconnectRequest(func() {}, &logger{})
	if err := requestReconnect(os.Getpid()); err != nil {
		t.Fatal(err)
	}
	stop()
	if err := requestReconnect(os.Getpid()); err == nil {
		t.Fatal("event still there after stop")
	} else {
		t.Log(err)
	}
}

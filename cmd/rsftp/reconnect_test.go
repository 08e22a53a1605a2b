package main

import (
	"os"
	"strconv"
	"testing"
	"time"
)

// TestReconnectRequest asks this very process for a reconnection, the
// way rsftp reconnect PID does: SIGUSR2 on Unix, the named event on
// Windows.
func TestReconnectRequest(t *testing.T) {
	got := make(chan struct{}, 4)
	stop := onReconnectRequest(func() { got <- struct{}{} }, &logger{})
	for i := range 2 {
		if err := runReconnect([]string{strconv.Itoa(os.Getpid())}); err != nil {
			t.Fatal(err)
		}
		select {
		case <-got:
		case <-time.After(10 * time.Second):
			t.Fatalf("request %d: no reconnection", i+1)
		}
	}
	stop()
	if err := runReconnect([]string{"-h"}); err != nil {
		t.Errorf("rsftp reconnect -h: %v", err)
	}
	for _, bad := range [][]string{nil, {"0"}, {"x"}, {"1", "2"}} {
		if err := runReconnect(bad); err == nil {
			t.Errorf("rsftp reconnect %q: no error", bad)
		} else if ee, ok := err.(*exitError); !ok || ee.code != 2 {
			t.Errorf("rsftp reconnect %q: %v, want a usage error", bad, err)
		}
	}
}

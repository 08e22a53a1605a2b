package netwatch

import "testing"

// TestWindowsWatchersShare checks the bookkeeping of the shared
// registrations and what a callback delivers, calling the callbacks' Go
// side directly: no test here can make Windows change an address.
func TestWindowsWatchersShare(t *testing.T) {
	w1, err := New()
	if err != nil {
		t.Fatal(err)
	}
	w2, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if !mibRegistered {
		t.Fatal("registrations not made")
	}
	mibCallback(mibAddress)(0, 0, mibAddInstance)
	for i, w := range []*Watcher{w1, w2} {
		select {
		case <-w.Changes():
		default:
			t.Errorf("watcher %d: no change delivered", i+1)
		}
	}
	// The initial notification reports nothing.
	mibCallback(mibRoute)(0, 0, mibInitialNotification)
	select {
	case <-w1.Changes():
		t.Error("initial notification delivered")
	default:
	}
	if err := w1.Close(); err != nil {
		t.Fatal(err)
	}
	if !mibRegistered {
		t.Fatal("registrations cancelled while a watcher is open")
	}
	mibCallback(mibRoute)(0, 0, mibDeleteInstance)
	select {
	case <-w1.Changes():
		t.Error("change delivered to a closed watcher")
	default:
	}
	select {
	case <-w2.Changes():
	default:
		t.Error("open watcher: no change delivered")
	}
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	if mibRegistered {
		t.Error("registrations not cancelled")
	}
	// And again from nothing.
	w3, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if err := w3.Close(); err != nil {
		t.Fatal(err)
	}
}

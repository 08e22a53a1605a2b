package resume

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestSupervisorRedialsAfterDetach: the supervisor needs nothing of a
// connection but Redial: over in-memory transports, a session that
// detaches is resumed on a new one, with the events in order, and data
// flows again.
func TestSupervisorRedialsAfterDetach(t *testing.T) {
	reg := &Registry{Hold: time.Minute}
	cs, ss, c := pair(t, reg)
	var mu sync.Mutex
	var kinds []EventKind
	attached := make(chan Transport, 4)
	sv := Supervise(cs, c, SupervisorConfig{
		Redial: func(ctx context.Context) (Transport, error) {
			nc, ns := fakePair()
			go func() {
				if p, err := ns.ReadPacket(); err == nil {
					reg.Resume(ns, p)
				}
			}()
			return nc, nil
		},
		Attached:   func(t Transport) { attached <- t },
		MinBackoff: time.Millisecond,
		Events: func(e Event) {
			mu.Lock()
			kinds = append(kinds, e.Kind)
			mu.Unlock()
		},
	})
	cs.Detach(errCut)
	select {
	case <-attached:
	case <-time.After(5 * time.Second):
		t.Fatal("the supervisor did not resume the session")
	}
	go drainSession(cs)
	if err := ss.WritePacket(dataMsg(1, 10)); err != nil {
		t.Fatal(err)
	}
	if err := cs.WritePacket(dataMsg(2, 10)); err != nil {
		t.Fatal(err)
	}
	p, err := ss.ReadPacket()
	if err != nil || p[0] != 94 {
		t.Fatalf("after resuming, the server read %x, %v", p, err)
	}
	cs.Close()
	select {
	case <-sv.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the supervisor did not end with the session")
	}
	mu.Lock()
	defer mu.Unlock()
	want := []EventKind{EventConnected, EventLinkLost, EventReconnecting, EventResumed, EventClosed}
	if len(kinds) != len(want) {
		t.Fatalf("events %v, want %v", kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("events %v, want %v", kinds, want)
		}
	}
}

// TestSupervisorGivesUpOnUnknownSession: a server that no longer knows
// the session (said on a connection whose host key was checked) ends it.
func TestSupervisorGivesUpOnUnknownSession(t *testing.T) {
	reg := &Registry{Hold: time.Minute}
	cs, _, c := pair(t, reg)
	other := &Registry{Hold: time.Minute} // knows no session
	sv := Supervise(cs, c, SupervisorConfig{
		Redial: func(ctx context.Context) (Transport, error) {
			nc, ns := fakePair()
			go func() {
				if p, err := ns.ReadPacket(); err == nil {
					other.Resume(ns, p)
				}
			}()
			return nc, nil
		},
		MinBackoff: time.Millisecond,
	})
	cs.Detach(errCut)
	select {
	case <-sv.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the supervisor kept trying a server that does not know the session")
	}
	if cs.State() != Closed {
		t.Fatalf("session %v, want closed", cs.State())
	}
}

// countedConn is a fake connection that counts the packets it reads.
type countedConn struct {
	*fakeConn
	n atomic.Uint64
}

func (c *countedConn) ReadPacket() ([]byte, error) {
	p, err := c.fakeConn.ReadPacket()
	if err == nil {
		c.n.Add(1)
	}
	return p, err
}

func (c *countedConn) PacketsReceived() uint64 { return c.n.Load() }

// TestRegistryIdleTimeoutAndEvents: the server's policy lives on the
// Registry: a connection silent for IdleTimeout detaches its session
// (with no goroutine of the caller's), and the events say so.
func TestRegistryIdleTimeoutAndEvents(t *testing.T) {
	var mu sync.Mutex
	var events []Event
	reg := &Registry{Hold: time.Minute, IdleTimeout: 40 * time.Millisecond, Events: func(e Event) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}}
	c, s := fakePair()
	rk := make([]byte, 32)
	ss, err := reg.EnableOwned(&countedConn{fakeConn: s}, rk, Owner{ID: "key", Name: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadPacket(); err != nil { // RESUME_ENABLE; then silence
		t.Fatal(err)
	}
	det, why := ss.Detached()
	select {
	case <-det:
	case <-time.After(5 * time.Second):
		t.Fatal("a silent connection was not detached")
	}
	if err := why(); err == nil {
		t.Fatal("detached without a reason")
	}
	// Detached is closed before the observers hear of the detach (they
	// are called with no lock held): link_lost may come a moment later,
	// and after closed if the session were closed at once.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		mu.Lock()
		n := len(events)
		mu.Unlock()
		if n >= 2 {
			break
		}
	}
	ss.Close()
	want := []EventKind{EventConnected, EventLinkLost, EventClosed}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != len(want) {
		t.Fatalf("%d events, want %v", len(events), want)
	}
	for i, e := range events {
		if e.Kind != want[i] || e.User != "alice" || e.Session == "" {
			t.Fatalf("event %d: %+v, want %s for alice", i, e, want[i])
		}
	}
}

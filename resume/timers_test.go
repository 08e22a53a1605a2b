package resume

import (
	"sync/atomic"
	"testing"
	"time"
)

type countingConn struct{ n atomic.Uint64 }

func (c *countingConn) PacketsReceived() uint64 { return c.n.Load() }

// A silent connection is probed Probes times, then lost, once; probes run
// one at a time.
func TestWatchdogProbesThenLost(t *testing.T) {
	c := &countingConn{}
	var probes atomic.Int32
	lost := make(chan time.Duration, 2)
	w := NewWatchdog(c, WatchdogConfig{Interval: 5 * time.Millisecond, Probes: 3,
		Probe: func() { probes.Add(1) },
		Lost:  func(d time.Duration) { lost <- d }})
	defer w.Stop()
	select {
	case d := <-lost:
		if d <= 0 {
			t.Fatalf("lost after %v of silence", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a silent connection was never given up")
	}
	time.Sleep(30 * time.Millisecond)
	if p := probes.Load(); p != 3 {
		t.Fatalf("%d probes, want 3", p)
	}
	select {
	case <-lost:
		t.Fatal("Lost called twice")
	default:
	}
}

// Packets keep a connection alive, however few: one per interval.
func TestWatchdogPacketsKeepAlive(t *testing.T) {
	c := &countingConn{}
	lost := make(chan struct{}, 1)
	w := NewWatchdog(c, WatchdogConfig{Interval: 20 * time.Millisecond, Probes: 0,
		Lost: func(time.Duration) { lost <- struct{}{} }})
	defer w.Stop()
	for range 20 {
		c.n.Add(1)
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case <-lost:
		t.Fatal("a connection that received packets was given up")
	default:
	}
	// Then silence: lost (Probes 0: at the first silent expiry).
	select {
	case <-lost:
	case <-time.After(5 * time.Second):
		t.Fatal("never given up after the packets stopped")
	}
}

// After Stop nothing fires.
func TestWatchdogStop(t *testing.T) {
	c := &countingConn{}
	var fired atomic.Bool
	w := NewWatchdog(c, WatchdogConfig{Interval: 5 * time.Millisecond,
		Probe: func() { fired.Store(true) }, Lost: func(time.Duration) { fired.Store(true) }})
	w.Stop()
	time.Sleep(50 * time.Millisecond)
	if fired.Load() {
		t.Fatal("a stopped watchdog probed or gave up")
	}
}

package channel

import (
	"context"
	"io"
	"testing"
	"time"
)

// autoGrowRun sends n bytes over a channel of a link with 20 ms round
// trips and no rate limit (so the window alone bounds the sender), and
// returns the receiver's window size at the end.
func autoGrowRun(t *testing.T, cfg *Config, n int) uint32 {
	t.Helper()
	pa, pb := delayPair(10 * time.Millisecond)
	ma, mb := NewMux(PlainConn(pa), &Config{}), NewMux(PlainConn(pb), cfg)
	t.Cleanup(func() { ma.Close(); mb.Close() })
	h := mb.HandleChannelOpen("x")
	acc := make(chan *Channel, 1)
	go func() {
		c, _ := (<-h).Accept()
		acc <- c
	}()
	ca, err := ma.OpenChannel(context.Background(), "x", nil)
	if err != nil {
		t.Fatal(err)
	}
	cb := <-acc
	done := make(chan int64)
	go func() {
		got, _ := io.Copy(io.Discard, cb)
		done <- got
	}()
	buf := make([]byte, 256<<10)
	for sent := 0; sent < n; sent += len(buf) {
		if _, err := ca.Write(buf); err != nil {
			t.Fatal(err)
		}
	}
	ca.CloseWrite()
	if got := <-done; got != int64(n) {
		t.Fatalf("received %d bytes of %d", got, n)
	}
	cb.mu.Lock()
	defer cb.mu.Unlock()
	return cb.in.size
}

// TestAutoGrowWindow: a receive window that bounds a sender over a long
// round trip grows, within MaxWindowTotal and the Budget; NoAutoGrow
// keeps it as granted.
func TestAutoGrowWindow(t *testing.T) {
	const w = 256 << 10
	b := &countingBudget{limit: 2 << 20}
	size := autoGrowRun(t, &Config{WindowSize: w, MaxWindowTotal: 1 << 30, Budget: b}, 24<<20)
	if size <= w || size > 2<<20 {
		t.Errorf("window bounded by a budget of 2 MiB: grew to %d bytes, want more than %d and at most 2 MiB", size, w)
	}
	if used := b.used.Load(); used > 2<<20 {
		t.Errorf("budget charged %d bytes, past its limit", used)
	}
	if size := autoGrowRun(t, &Config{WindowSize: w, MaxWindowTotal: 1 << 20}, 16<<20); size <= w || size > 1<<20 {
		t.Errorf("window under a MaxWindowTotal of 1 MiB: grew to %d bytes, want more than %d and at most 1 MiB", size, w)
	}
	if size := autoGrowRun(t, &Config{WindowSize: w, NoAutoGrow: true}, 8<<20); size != w {
		t.Errorf("NoAutoGrow: the window is %d bytes, want %d as granted", size, w)
	}
}

package resume

import (
	"sync"
	"sync/atomic"
)

// Budget counts memory that peers can make a process hold, across many
// sessions: the messages sessions retain for resending, and (through
// channel.Config.Budget) the receive windows a server grants. A session
// charges what it holds, at the size it occupies, when it takes it and
// releases it when it lets go. Data that can wait (channel data to send)
// is admitted only while the budget has room (TryCharge); what cannot wait
// (a control message, the smallest window a channel needs) is charged
// anyway (Charge), so Used may pass Limit by that much.
//
// A nil *Budget counts nothing and always has room.
type Budget struct {
	// Limit is the most TryCharge admits; 0 means no limit.
	Limit int64
	// Short, if set, is called (without locks held; it must not block)
	// when TryCharge refuses: the owner of the budget may free some (a
	// server discards detached sessions of whoever holds more than a fair
	// share).
	Short func()

	used atomic.Int64
	mu   sync.Mutex
	// freed is closed (and replaced) when charges are released while
	// someone waits for room.
	freed chan struct{}
}

// Used is what is charged now.
func (b *Budget) Used() int64 {
	if b == nil {
		return 0
	}
	return b.used.Load()
}

// TryCharge charges n bytes if that keeps Used within Limit.
func (b *Budget) TryCharge(n int64) bool {
	if b == nil || n <= 0 {
		return true
	}
	for {
		u := b.used.Load()
		if b.Limit > 0 && u+n > b.Limit {
			if b.Short != nil {
				b.Short()
			}
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

// Charge charges n bytes whatever the limit (a negative n releases).
func (b *Budget) Charge(n int64) {
	if b == nil || n == 0 {
		return
	}
	if n < 0 {
		b.Release(-n)
		return
	}
	b.used.Add(n)
}

// Release gives back n bytes charged before, and wakes those waiting for
// room.
func (b *Budget) Release(n int64) {
	if b == nil || n <= 0 {
		return
	}
	b.used.Add(-n)
	b.mu.Lock()
	if b.freed != nil {
		close(b.freed)
		b.freed = nil
	}
	b.mu.Unlock()
}

// Freed returns a channel closed at the next Release (nil for a nil
// Budget: no wait ends through it).
func (b *Budget) Freed() <-chan struct{} {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.freed == nil {
		b.freed = make(chan struct{})
	}
	return b.freed
}

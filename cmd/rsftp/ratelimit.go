package main

// scp's -l: a bandwidth limit in Kbit/s on the file data a command
// moves, as a token bucket in the copy loop (sftp.TransferOptions'
// Throttle).

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"
)

// maxLimitKbps is scp's bound on -l (100 Gbit/s).
const maxLimitKbps = 100 * 1024 * 1024

// parseLimit reads -l's value as scp does: Kbit/s from 1 to 104857600,
// where one Kbit is 1024 bits. It returns bytes per second.
func parseLimit(s string) (float64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n < 1 || n > maxLimitKbps {
		return 0, fmt.Errorf("invalid limit %q: -l takes Kbit/s, from 1 to %d", s, maxLimitKbps)
	}
	return float64(n) * 1024 / 8, nil
}

// rateLimiter is a token bucket: rate bytes a second, up to burst saved
// up. Bytes are paid for after they moved (the bucket may go into debt),
// and wait sleeps off the debt, so a transfer of N bytes takes at least
// (N-burst)/rate seconds whatever its chunks. One limiter is shared by
// every transfer of a command, as scp's applies to the whole copy.
type rateLimiter struct {
	rate  float64 // bytes per second
	burst float64

	mu     sync.Mutex
	tokens float64
	last   time.Time
	paid   int64 // bytes counted so far (tests)

	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
}

// newRateLimiter limits to rate bytes a second, with a tenth of a
// second's worth (at least 1 byte) as its burst.
func newRateLimiter(rate float64) *rateLimiter {
	burst := max(rate/10, 1)
	return &rateLimiter{rate: rate, burst: burst, tokens: burst, now: time.Now, sleep: sleepCtx}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wait counts n bytes that moved and sleeps while the bucket is in debt.
func (l *rateLimiter) wait(ctx context.Context, n int) error {
	if l == nil || n <= 0 {
		return nil
	}
	l.mu.Lock()
	now := l.now()
	if !l.last.IsZero() {
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	}
	l.last = now
	l.tokens -= float64(n)
	l.paid += int64(n)
	debt := -l.tokens
	l.mu.Unlock()
	if debt <= 0 {
		return nil
	}
	return l.sleep(ctx, time.Duration(debt/l.rate*float64(time.Second)))
}

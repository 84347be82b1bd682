package agent

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/drago-wg/drago/server/api"
)

// backoff yields exponential delays with full jitter (AWS architecture blog,
// "Exponential Backoff And Jitter"): attempt n waits a uniform random time in
// [0, min(max, base*2^n)].
type backoff struct {
	base, max time.Duration
	attempt   int
	jitter    func(time.Duration) time.Duration
}

// next returns the delay before the next attempt.
func (b *backoff) next() time.Duration {
	d := b.base
	for i := 0; i < b.attempt && d < b.max; i++ {
		d *= 2
	}
	d = min(d, b.max)
	b.attempt++
	return b.jitter(d)
}

// reset starts over after a success.
func (b *backoff) reset() { b.attempt = 0 }

// fullJitter returns a uniform random duration in [0, d].
func fullJitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d + 1)
}

// sleep waits for d and reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// sleepOrWake waits for d, or less when wake fires during the wait (a
// signal from before the wait is dropped).
func sleepOrWake(ctx context.Context, d time.Duration, wake <-chan struct{}) {
	select {
	case <-wake:
	default:
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	case <-wake:
	}
}

// wakeIfUnreachable returns wake when err says the server could not be
// reached, which the other loop's next success disproves; an error the server
// answered with keeps its full backoff (nil channel: never fires).
func wakeIfUnreachable(err error, wake <-chan struct{}) <-chan struct{} {
	if api.StatusOf(err) != 0 {
		return nil
	}
	return wake
}

// signal wakes a sleepOrWake without blocking.
func signal(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

package state

import (
	"sync"
	"time"
)

// liveness counts an agent's blocking queries as signs of life: a host
// whose query is in flight is seen now, and one whose query ended was seen
// then. Heartbeats can then be rare (they carry the counters), while a
// stopped or crashed agent, whose connection closes, still turns "down"
// one heartbeat grace after its query ends. It has its own lock, so that
// queries mark it under s.mu's read lock or none.
type liveness struct {
	mu    sync.Mutex
	polls map[string]int       // host id -> queries in flight
	ended map[string]time.Time // host id -> when its last query ended
}

func (l *liveness) begin(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.polls == nil {
		l.polls, l.ended = map[string]int{}, map[string]time.Time{}
	}
	l.polls[host]++
}

func (l *liveness) end(host string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.polls[host]--; l.polls[host] <= 0 {
		delete(l.polls, host)
	}
	l.ended[host] = now
}

// saw notes a status report of the host.
func (l *liveness) saw(host string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.polls == nil {
		l.polls, l.ended = map[string]int{}, map[string]time.Time{}
	}
	if now.After(l.ended[host]) {
		l.ended[host] = now
	}
}

// seen returns when the host's queries last showed it alive: now while
// one is in flight.
func (l *liveness) seen(host string, now time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.polls[host] > 0 {
		return now, true
	}
	t, ok := l.ended[host]
	return t, ok
}

// forget drops a deleted host.
func (l *liveness) forget(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.polls, host)
	delete(l.ended, host)
}

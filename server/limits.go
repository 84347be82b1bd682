package server

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// bodyTimeout bounds the reading of a request body: a client that
// trickles its body is cut off instead of holding a handler (tests lower it).
var bodyTimeout = 30 * time.Second

// Limits on what one caller may hold of the server.
const ( // maxPollsPerHost and maxPollsPerToken bound the blocking queries one
	// credential holds at once: an agent needs one (two while it moves to
	// another server), dashboards and CLIs share a management token.
	maxPollsPerHost  = 4
	maxPollsPerToken = 64
	// Failed authentications per client address: a burst of authBurst,
	// then one every authRefill; further attempts get 429 until then.
	authBurst  = 20
	authRefill = 3 * time.Second
	// maxTrackedClients bounds the failed-authentication table.
	maxTrackedClients = 10000
)

// pollLimiter counts the blocking queries each credential holds.
type pollLimiter struct {
	mu sync.Mutex
	n  map[string]int
}

// acquire takes a slot for key, or reports false when key holds max.
func (p *pollLimiter) acquire(key string, max int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n[key] >= max {
		return false
	}
	if p.n == nil {
		p.n = map[string]int{}
	}
	p.n[key]++
	return true
}

func (p *pollLimiter) release(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n[key]--; p.n[key] <= 0 {
		delete(p.n, key)
	}
}

// authLimiter rate-limits failed authentications per client address with
// a token bucket each.
type authLimiter struct {
	mu      sync.Mutex
	now     func() time.Time
	clients map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// refill brings b up to t and returns its tokens.
func (b *bucket) refill(t time.Time) float64 {
	b.tokens = min(authBurst, b.tokens+float64(t.Sub(b.last))/float64(authRefill))
	b.last = t
	return b.tokens
}

// blocked reports how long ip must wait before it may try again, or 0.
func (l *authLimiter) blocked(ip string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.clients[ip]
	if !ok {
		return 0
	}
	if tokens := b.refill(l.now()); tokens < 1 {
		return time.Duration((1 - tokens) * float64(authRefill))
	}
	return 0
}

// failed counts a failed authentication from ip and reports whether ip
// has now used up its allowance (the moment worth a log line).
func (l *authLimiter) failed(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.now()
	if l.clients == nil {
		l.clients = map[string]*bucket{}
	}
	b, ok := l.clients[ip]
	if !ok {
		if len(l.clients) >= maxTrackedClients {
			l.prune(t)
		}
		b = &bucket{tokens: authBurst, last: t}
		l.clients[ip] = b
	}
	b.refill(t)
	b.tokens = max(0, b.tokens-1)
	return b.tokens < 1
}

// prune forgets the clients whose allowance is whole again, or all of them
// when none is (a flood from many addresses must not grow the table).
func (l *authLimiter) prune(t time.Time) {
	for ip, b := range l.clients {
		if b.refill(t) >= authBurst {
			delete(l.clients, ip)
		}
	}
	if len(l.clients) >= maxTrackedClients {
		clear(l.clients)
	}
}

// tooMany is the answer to a client over a limit.
func tooMany(retry time.Duration, message string) error {
	return &apiError{status: http.StatusTooManyRequests, message: message, retryAfter: strconv.Itoa(int(retry.Seconds()) + 1)}
}

// Package ipam allocates interface addresses from a network's range. A Pool
// tracks the reserved addresses of an IPv4 or IPv6 prefix and finds the
// lowest free usable one.
package ipam

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
)

var (
	// ErrFull is returned by Next when no usable address is free.
	ErrFull = errors.New("address range full")
	// ErrOutOfRange is returned for an address outside the prefix or not
	// usable in it (IPv4 network and broadcast, IPv6 subnet-router anycast).
	ErrOutOfRange = errors.New("address out of range")
	// ErrInUse is returned by Reserve for an address already in use.
	ErrInUse = errors.New("address in use")
)

// Longest prefixes a Pool accepts; longer ones have no room for peers.
const (
	maxBits4 = 30
	maxBits6 = 126
)

// Pool tracks the used addresses of one prefix. It is safe for concurrent use.
//
// Finding a free address is amortized O(log n): every usable address below
// the frontier next is either used or in the holes heap, so the lowest free
// address is the top of holes or, if holes is empty, the first unused one
// from next. Reserve moves the frontier past used addresses, so each address
// is passed over by it at most once. Addresses a caller holds apart (Next's
// taken) cost a scan of the holes.
type Pool struct {
	prefix      netip.Prefix
	first, last netip.Addr // usable range, inclusive

	mu     sync.Mutex
	used   map[netip.Addr]struct{}
	next   netip.Addr // frontier; invalid once it passed last
	holes  addrHeap   // free addresses below next, and stale reserved ones
	inHole map[netip.Addr]struct{}
}

// New returns an empty Pool for prefix, which must be masked and leave room
// for at least two hosts: IPv4 up to /30, IPv6 up to /126.
func New(prefix netip.Prefix) (*Pool, error) {
	if err := CheckPrefix(prefix); err != nil {
		return nil, err
	}
	first, last := Usable(prefix)
	return &Pool{
		prefix: prefix,
		first:  first,
		last:   last,
		used:   map[netip.Addr]struct{}{},
		next:   first,
		inHole: map[netip.Addr]struct{}{},
	}, nil
}

// CheckPrefix returns an error unless prefix can back a Pool.
func CheckPrefix(prefix netip.Prefix) error {
	switch {
	case !prefix.IsValid():
		return fmt.Errorf("invalid prefix %s", prefix)
	case prefix.Addr().Is4In6():
		return fmt.Errorf("prefix %s is IPv4-mapped IPv6: use an IPv4 prefix", prefix)
	case prefix != prefix.Masked():
		return fmt.Errorf("prefix %s has host bits set: did you mean %s?", prefix, prefix.Masked())
	case prefix.Addr().Is4() && prefix.Bits() > maxBits4:
		return fmt.Errorf("prefix %s is longer than /%d: no room for peers", prefix, maxBits4)
	case prefix.Addr().Is6() && prefix.Bits() > maxBits6:
		return fmt.Errorf("prefix %s is longer than /%d: no room for peers", prefix, maxBits6)
	}
	return nil
}

// Usable returns the first and last usable address of a prefix that
// passed CheckPrefix.
func Usable(prefix netip.Prefix) (first, last netip.Addr) {
	network := prefix.Addr()
	last = lastAddr(prefix)
	if network.Is4() {
		last = last.Prev() // broadcast
	}
	return network.Next(), last
}

// lastAddr returns the highest address of prefix (all host bits set).
func lastAddr(prefix netip.Prefix) netip.Addr {
	b := prefix.Addr().AsSlice()
	for i := prefix.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// unusable returns why a is not usable in prefix, or "" if it is.
func unusable(prefix netip.Prefix, a netip.Addr) string {
	switch {
	case !prefix.Contains(a):
		return "outside " + prefix.String()
	case a == prefix.Addr() && a.Is4():
		return "network address of " + prefix.String()
	case a == prefix.Addr():
		return "subnet-router anycast address of " + prefix.String()
	case a.Is4() && a == lastAddr(prefix):
		return "broadcast address of " + prefix.String()
	}
	return ""
}

// After returns the address after a in a range that ends at last, or the
// zero Addr when a is last.
func After(a, last netip.Addr) netip.Addr {
	if a == last {
		return netip.Addr{}
	}
	return a.Next()
}

// Prefix returns the prefix the Pool allocates from.
func (p *Pool) Prefix() netip.Prefix { return p.prefix }

// Next returns the lowest free usable address that taken (nil: none)
// does not report, or an error wrapping ErrFull. It marks nothing used: a
// write picks addresses with Next, holds them as its own until it commits,
// and Reserve marks them used then.
func (p *Pool) Next(taken func(netip.Addr) bool) (netip.Addr, error) {
	free := func(a netip.Addr) bool { return !p.isUsed(a) && (taken == nil || !taken(a)) }
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.holes.Len() > 0 { // drop holes reserved since they were released
		if !p.isUsed(p.holes[0]) {
			break
		}
		delete(p.inHole, p.holes.pop())
	}
	if p.holes.Len() > 0 && free(p.holes[0]) {
		return p.holes[0], nil
	}
	var best netip.Addr // every hole is below the frontier
	for _, a := range p.holes {
		if free(a) && (!best.IsValid() || a.Less(best)) {
			best = a
		}
	}
	if best.IsValid() {
		return best, nil
	}
	for a := p.next; a.IsValid(); a = After(a, p.last) {
		if free(a) {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("allocating from %s: %w", p.prefix, ErrFull)
}

// Check returns the error Reserve would return for a, without reserving it.
func (p *Pool) Check(a netip.Addr) error {
	if why := unusable(p.prefix, a); why != "" {
		return fmt.Errorf("reserving %s: %s: %w", a, why, ErrOutOfRange)
	}
	if p.InUse(a) {
		return fmt.Errorf("reserving %s: %w", a, ErrInUse)
	}
	return nil
}

// Reserve marks a used. It returns an error wrapping ErrOutOfRange if a is
// not usable in the prefix, or ErrInUse if a is already used.
func (p *Pool) Reserve(a netip.Addr) error {
	if why := unusable(p.prefix, a); why != "" {
		return fmt.Errorf("reserving %s: %s: %w", a, why, ErrOutOfRange)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isUsed(a) {
		return fmt.Errorf("reserving %s: %w", a, ErrInUse)
	}
	p.used[a] = struct{}{}                     // if a is in holes, Next drops it
	for p.next.IsValid() && p.isUsed(p.next) { // move the frontier past used addresses
		p.next = After(p.next, p.last)
	}
	return nil
}

// Release marks a free. Releasing an address that is not used does nothing.
func (p *Pool) Release(a netip.Addr) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.used[a]; !ok {
		return
	}
	delete(p.used, a)
	if p.next.IsValid() && !a.Less(p.next) {
		return // the frontier will reach it
	}
	if _, ok := p.inHole[a]; !ok {
		p.inHole[a] = struct{}{}
		p.holes.push(a)
	}
}

// InUse reports whether a is reserved.
func (p *Pool) InUse(a netip.Addr) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.isUsed(a)
}

// isUsed reports whether a is reserved; the caller holds p.mu.
func (p *Pool) isUsed(a netip.Addr) bool {
	_, ok := p.used[a]
	return ok
}

// Used returns the number of reserved addresses.
func (p *Pool) Used() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.used)
}

// Fits returns an error naming the first of addrs that is not usable in
// prefix, wrapping ErrOutOfRange, or an error if prefix cannot back a Pool.
// It checks that a network's addresses survive a change of its range.
func Fits(prefix netip.Prefix, addrs []netip.Addr) error {
	if err := CheckPrefix(prefix); err != nil {
		return err
	}
	for _, a := range addrs {
		if why := unusable(prefix, a); why != "" {
			return fmt.Errorf("address %s does not fit: %s: %w", a, why, ErrOutOfRange)
		}
	}
	return nil
}

// addrHeap is a binary min-heap of addresses.
type addrHeap []netip.Addr

func (h addrHeap) Len() int { return len(h) }

func (h *addrHeap) push(a netip.Addr) {
	*h = append(*h, a)
	s := *h
	for i := len(s) - 1; i > 0; {
		parent := (i - 1) / 2
		if !s[i].Less(s[parent]) {
			break
		}
		s[i], s[parent] = s[parent], s[i]
		i = parent
	}
}

func (h *addrHeap) pop() netip.Addr {
	s := *h
	top, n := s[0], len(s)-1
	s[0] = s[n]
	s = s[:n]
	for i := 0; ; {
		least, l, r := i, 2*i+1, 2*i+2
		if l < n && s[l].Less(s[least]) {
			least = l
		}
		if r < n && s[r].Less(s[least]) {
			least = r
		}
		if least == i {
			break
		}
		s[i], s[least] = s[least], s[i]
		i = least
	}
	*h = s
	return top
}

package ipam

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var (
	mustPrefix = netip.MustParsePrefix
	mustAddr   = netip.MustParseAddr
)

func newPool(t testing.TB, prefix string) *Pool {
	t.Helper()
	p, err := New(mustPrefix(prefix))
	if err != nil {
		t.Fatalf("New(%s): %v", prefix, err)
	}
	return p
}

func TestNew(t *testing.T) {
	tests := []struct {
		prefix  netip.Prefix
		wantErr string
	}{
		{mustPrefix("10.8.0.0/24"), ""},
		{mustPrefix("10.0.0.0/8"), ""},
		{mustPrefix("10.8.0.0/30"), ""},
		{mustPrefix("fd00::/64"), ""},
		{mustPrefix("fd00::/48"), ""},
		{mustPrefix("fd00::/126"), ""},
		{netip.Prefix{}, "invalid prefix"},
		{netip.PrefixFrom(mustAddr("10.8.0.0"), 33), "invalid prefix"},
		{mustPrefix("10.8.0.1/24"), "prefix 10.8.0.1/24 has host bits set: did you mean 10.8.0.0/24?"},
		{mustPrefix("fd00::1/64"), "did you mean fd00::/64?"},
		{mustPrefix("10.8.0.0/31"), "prefix 10.8.0.0/31 is longer than /30"},
		{mustPrefix("10.8.0.1/32"), "longer than /30"},
		{mustPrefix("fd00::/127"), "prefix fd00::/127 is longer than /126"},
		{mustPrefix("fd00::1/128"), "longer than /126"},
		{mustPrefix("::ffff:10.8.0.0/120"), "IPv4-mapped IPv6"},
	}
	for _, tc := range tests {
		t.Run(tc.prefix.String(), func(t *testing.T) {
			p, err := New(tc.prefix)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if p.Prefix() != tc.prefix || p.Used() != 0 {
					t.Errorf("New = prefix %s, %d used; want %s, 0 used", p.Prefix(), p.Used(), tc.prefix)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("New error = %v, want one containing %q", err, tc.wantErr)
			}
			if fitsErr := Fits(tc.prefix, nil); fmt.Sprint(fitsErr) != fmt.Sprint(err) {
				t.Errorf("Fits error = %v, want New's", fitsErr)
			}
		})
	}
}

// allocate reserves the lowest free address, as a committed write does.
func allocate(p *Pool) (netip.Addr, error) {
	a, err := p.Next(nil)
	if err != nil {
		return a, err
	}
	return a, p.Reserve(a)
}

// allocateAll allocates until the pool is full, returning the addresses
// and the error that ended it.
func allocateAll(p *Pool) ([]string, error) {
	var got []string
	for {
		a, err := allocate(p)
		if err != nil {
			return got, err
		}
		got = append(got, a.String())
	}
}

func TestAllocateUntilFull(t *testing.T) {
	tests := []struct {
		prefix string
		want   []string
	}{
		{"10.8.0.0/30", []string{"10.8.0.1", "10.8.0.2"}},
		{"10.8.0.8/29", []string{"10.8.0.9", "10.8.0.10", "10.8.0.11", "10.8.0.12", "10.8.0.13", "10.8.0.14"}},
		{"fd00::/126", []string{"fd00::1", "fd00::2", "fd00::3"}},
		{"fd00::8/125", []string{"fd00::9", "fd00::a", "fd00::b", "fd00::c", "fd00::d", "fd00::e", "fd00::f"}},
		{"255.255.255.252/30", []string{"255.255.255.253", "255.255.255.254"}},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffc/126", []string{
			"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffd", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe",
			"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}},
	}
	for _, tc := range tests {
		t.Run(tc.prefix, func(t *testing.T) {
			p := newPool(t, tc.prefix)
			got, err := allocateAll(p)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("allocations (-want +got):\n%s", diff)
			}
			if !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), tc.prefix) {
				t.Errorf("allocate of a full pool = %v, want ErrFull naming %s", err, tc.prefix)
			}
			if p.Used() != len(tc.want) {
				t.Errorf("Used = %d, want %d", p.Used(), len(tc.want))
			}
			// Freed addresses come back lowest first, and the pool fills again.
			for _, i := range []int{len(tc.want) - 1, 0} {
				p.Release(mustAddr(tc.want[i]))
			}
			got, err = allocateAll(p)
			want := []string{tc.want[0], tc.want[len(tc.want)-1]}
			if diff := cmp.Diff(want, got); diff != "" || !errors.Is(err, ErrFull) {
				t.Errorf("allocations after Release (-want +got):\n%s\nerror %v", diff, err)
			}
		})
	}
}

func TestReserve(t *testing.T) {
	tests := []struct {
		prefix  string
		addr    netip.Addr
		wantErr error
		wantMsg string
	}{
		{"10.8.0.0/24", mustAddr("10.8.0.7"), nil, ""},
		{"10.8.0.0/24", mustAddr("10.8.0.1"), ErrInUse, "reserving 10.8.0.1: address in use"},
		{"10.8.0.0/24", mustAddr("10.8.0.0"), ErrOutOfRange, "reserving 10.8.0.0: network address of 10.8.0.0/24: address out of range"},
		{"10.8.0.0/24", mustAddr("10.8.0.255"), ErrOutOfRange, "reserving 10.8.0.255: broadcast address of 10.8.0.0/24"},
		{"10.8.0.0/24", mustAddr("10.8.1.1"), ErrOutOfRange, "reserving 10.8.1.1: outside 10.8.0.0/24"},
		{"10.8.0.0/24", mustAddr("::ffff:10.8.0.9"), ErrOutOfRange, "outside"},
		{"10.8.0.0/24", mustAddr("fd00::9"), ErrOutOfRange, "outside"},
		{"10.8.0.0/24", netip.Addr{}, ErrOutOfRange, "outside"},
		{"fd00::/64", mustAddr("fd00::ffff:ffff:ffff:ffff"), nil, ""},
		{"fd00::/64", mustAddr("fd00::"), ErrOutOfRange, "reserving fd00::: subnet-router anycast address of fd00::/64"},
		{"fd00::/64", mustAddr("fd00:0:0:1::1"), ErrOutOfRange, "outside fd00::/64"},
		{"fd00::/64", mustAddr("fd00::9%eth0"), ErrOutOfRange, "outside"},
		{"fd00::/64", mustAddr("10.8.0.9"), ErrOutOfRange, "outside"},
	}
	for _, tc := range tests {
		t.Run(tc.prefix+"/"+tc.addr.String(), func(t *testing.T) {
			p := newPool(t, tc.prefix)
			if _, err := allocate(p); err != nil { // takes the first address
				t.Fatal(err)
			}
			err := p.Reserve(tc.addr)
			if !errors.Is(err, tc.wantErr) || (err != nil && !strings.Contains(err.Error(), tc.wantMsg)) {
				t.Fatalf("Reserve = %v, want %v containing %q", err, tc.wantErr, tc.wantMsg)
			}
			wantUsed := 1
			if tc.wantErr == nil {
				wantUsed = 2
			}
			if got := p.Used(); got != wantUsed {
				t.Errorf("Used = %d, want %d", got, wantUsed)
			}
			if got := p.InUse(tc.addr); got != (tc.wantErr != ErrOutOfRange) {
				t.Errorf("InUse = %v after Reserve error %v", got, err)
			}
		})
	}
}

func TestReserveThenAllocate(t *testing.T) {
	p := newPool(t, "10.8.0.0/29")
	for _, a := range []string{"10.8.0.1", "10.8.0.3", "10.8.0.4"} {
		if err := p.Reserve(mustAddr(a)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := allocateAll(p)
	if diff := cmp.Diff([]string{"10.8.0.2", "10.8.0.5", "10.8.0.6"}, got); diff != "" {
		t.Errorf("allocations around reservations (-want +got):\n%s", diff)
	}
	if !errors.Is(err, ErrFull) {
		t.Errorf("allocate = %v, want ErrFull", err)
	}
	// A released address reserved again before allocation is skipped.
	p.Release(mustAddr("10.8.0.2"))
	p.Release(mustAddr("10.8.0.5"))
	if err := p.Reserve(mustAddr("10.8.0.2")); err != nil {
		t.Fatal(err)
	}
	if a, err := allocate(p); a != mustAddr("10.8.0.5") || err != nil {
		t.Errorf("allocate = %v, %v; want 10.8.0.5", a, err)
	}
	p.Release(mustAddr("10.8.0.9")) // outside: no effect
	p.Release(mustAddr("10.8.0.7")) // broadcast: no effect
	if p.Used() != 6 {
		t.Errorf("Used = %d, want 6", p.Used())
	}
}

func TestFits(t *testing.T) {
	addrs := func(s ...string) []netip.Addr {
		var as []netip.Addr
		for _, a := range s {
			as = append(as, mustAddr(a))
		}
		return as
	}
	tests := []struct {
		name    string
		prefix  string
		addrs   []netip.Addr
		wantErr string
	}{
		{"none", "10.8.0.0/24", nil, ""},
		{"all fit", "10.8.0.0/23", addrs("10.8.0.1", "10.8.0.255", "10.8.1.0", "10.8.1.254"), ""},
		{"shrunk", "10.8.0.0/25", addrs("10.8.0.1", "10.8.0.200", "10.8.0.201"),
			"address 10.8.0.200 does not fit: outside 10.8.0.0/25: address out of range"},
		{"now broadcast", "10.8.0.0/24", addrs("10.8.0.1", "10.8.0.255"),
			"address 10.8.0.255 does not fit: broadcast address of 10.8.0.0/24"},
		{"now network", "10.8.1.0/24", addrs("10.8.1.0"), "address 10.8.1.0 does not fit: network address"},
		{"moved", "10.9.0.0/24", addrs("10.8.0.1"), "address 10.8.0.1 does not fit: outside 10.9.0.0/24"},
		{"ipv6", "fd00::/120", addrs("fd00::1", "fd00::ff"), ""},
		{"ipv6 shrunk", "fd00::/121", addrs("fd00::1", "fd00::ff"), "address fd00::ff does not fit: outside fd00::/121"},
		{"ipv6 anycast", "fd00::/120", addrs("fd00::"), "subnet-router anycast address"},
		{"other family", "fd00::/64", addrs("10.8.0.1"), "address 10.8.0.1 does not fit: outside fd00::/64"},
		{"bad prefix", "10.8.0.1/24", nil, "has host bits set"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Fits(mustPrefix(tc.prefix), tc.addrs)
			if tc.wantErr == "" {
				if err != nil {
					t.Errorf("Fits = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Fits = %v, want an error containing %q", err, tc.wantErr)
			}
			if tc.addrs != nil && !errors.Is(err, ErrOutOfRange) {
				t.Errorf("Fits = %v, want ErrOutOfRange", err)
			}
		})
	}
}

// poolCase is a prefix with its usable range written out independently of
// the code under test.
type poolCase struct {
	prefix      string
	first, last string
	size        int    // usable addresses; 0 if too many to fill
	window      uint64 // addresses from the network address that random ops pick
}

var poolCases = []poolCase{
	{"10.8.0.8/29", "10.8.0.9", "10.8.0.14", 6, 10},
	{"192.168.7.0/24", "192.168.7.1", "192.168.7.254", 254, 258},
	{"fd00:1::100/120", "fd00:1::101", "fd00:1::1ff", 255, 258},
	{"fd00:2::/64", "fd00:2::1", "fd00:2::ffff:ffff:ffff:ffff", 0, 300},
}

const (
	opAllocate = iota
	opReserve
	opRelease
	opCount
)

type op struct {
	kind int
	addr netip.Addr
}

// model is the obviously correct pool the real one is checked against.
type model struct {
	prefix      netip.Prefix
	first, last netip.Addr
	used        map[netip.Addr]bool
}

func newModel(c poolCase) *model {
	return &model{prefix: mustPrefix(c.prefix), first: mustAddr(c.first), last: mustAddr(c.last),
		used: map[netip.Addr]bool{}}
}

func (m *model) usable(a netip.Addr) bool {
	return m.prefix.Contains(a) && !a.Less(m.first) && !m.last.Less(a)
}

// lowestFree returns the lowest unused address other than skip.
func (m *model) lowestFree(skip netip.Addr) (netip.Addr, bool) {
	for a := m.first; ; a = a.Next() {
		if !m.used[a] && a != skip {
			return a, true
		}
		if a == m.last {
			return netip.Addr{}, false
		}
	}
}

// addrAt returns the address off places after the network address of c,
// counting down from it for a negative off.
func addrAt(c poolCase, off int64) netip.Addr {
	a := mustPrefix(c.prefix).Addr()
	for ; off > 0; off-- {
		a = a.Next()
	}
	for ; off < 0; off++ {
		a = a.Prev()
	}
	return a
}

// randomOps returns n operations on addresses around the usable range of c,
// with a few far away and in the other family.
func randomOps(r *rand.Rand, c poolCase, n int) []op {
	ops := make([]op, n)
	for i := range ops {
		kind := opAllocate // allocate as often as reserve and release together
		if r.IntN(2) == 0 {
			kind = 1 + r.IntN(opCount-1)
		}
		var a netip.Addr
		switch x := r.IntN(20); {
		case x == 0:
			a = addrAt(c, -1)
		case x == 1 && c.size == 0: // far into a huge range
			b := mustPrefix(c.prefix).Addr().As16()
			for j := 8; j < 16; j++ {
				b[j] = byte(r.UintN(256))
			}
			a = netip.AddrFrom16(b)
		case x == 1:
			a = mustAddr("fd99::1")
			if mustPrefix(c.prefix).Addr().Is6() {
				a = mustAddr("10.99.0.1")
			}
		default:
			a = addrAt(c, int64(r.Uint64N(c.window)))
		}
		ops[i] = op{kind, a}
	}
	return ops
}

// run applies ops to a new pool and to the model, failing t at the first
// difference, and returns a log of the pool's results.
func run(t testing.TB, c poolCase, ops []op) []string {
	t.Helper()
	p := newPool(t, c.prefix)
	m := newModel(c)
	var log []string
	for i, o := range ops {
		switch o.kind {
		case opAllocate:
			want, ok := m.lowestFree(netip.Addr{})
			if ok { // an address the caller holds apart is passed over
				got, err := p.Next(func(a netip.Addr) bool { return a == want })
				if want2, ok2 := m.lowestFree(want); ok2 != (err == nil) || (ok2 && got != want2) {
					t.Fatalf("op %d: Next skipping %v = %v, %v; want %v (free: %v)", i, want, got, err, want2, ok2)
				}
			}
			got, err := allocate(p)
			if !ok {
				if !errors.Is(err, ErrFull) {
					t.Fatalf("op %d: allocate of a full pool = %v, %v; want ErrFull", i, got, err)
				}
			} else if err != nil || got != want {
				t.Fatalf("op %d: allocate = %v, %v; want %v", i, got, err, want)
			} else {
				m.used[got] = true
			}
			log = append(log, fmt.Sprintf("allocate %v %v", got, err))
		case opReserve:
			err := p.Reserve(o.addr)
			var want error
			switch {
			case !m.usable(o.addr):
				want = ErrOutOfRange
			case m.used[o.addr]:
				want = ErrInUse
			default:
				m.used[o.addr] = true
			}
			if !errors.Is(err, want) || (want == nil && err != nil) {
				t.Fatalf("op %d: Reserve(%v) = %v, want %v", i, o.addr, err, want)
			}
			log = append(log, fmt.Sprintf("reserve %v %v", o.addr, err))
		case opRelease:
			p.Release(o.addr)
			delete(m.used, o.addr)
			log = append(log, fmt.Sprintf("release %v", o.addr))
		}
		if got, want := p.Used(), len(m.used); got != want {
			t.Fatalf("op %d: Used = %d, want %d", i, got, want)
		}
		if got, want := p.InUse(o.addr), m.used[o.addr]; got != want {
			t.Fatalf("op %d: InUse(%v) = %v, want %v", i, o.addr, got, want)
		}
	}
	for a := range m.used {
		if !p.InUse(a) {
			t.Fatalf("InUse(%v) = false at the end, want true", a)
		}
	}
	return log
}

// TestPoolModel checks random sequences of operations against the model:
// allocation is always the lowest free usable address, never a duplicate or
// a reserved address, and fails with ErrFull exactly when the model is full.
func TestPoolModel(t *testing.T) {
	sequences, length := 1000, 200
	if testing.Short() {
		sequences = 100
	}
	for _, c := range poolCases {
		t.Run(c.prefix, func(t *testing.T) {
			t.Parallel()
			r := rand.New(rand.NewPCG(1, 2))
			for range sequences {
				run(t, c, randomOps(r, c, length))
			}
		})
	}
}

func TestPoolDeterministic(t *testing.T) {
	for _, c := range poolCases {
		t.Run(c.prefix, func(t *testing.T) {
			ops := randomOps(rand.New(rand.NewPCG(3, 4)), c, 2000)
			if diff := cmp.Diff(run(t, c, ops), run(t, c, ops)); diff != "" {
				t.Errorf("second run differs (-first +second):\n%s", diff)
			}
		})
	}
}

// TestAllocateFillsLargeRange fills a /16 and checks every address once.
func TestAllocateFillsLargeRange(t *testing.T) {
	p := newPool(t, "10.20.0.0/16")
	want := mustAddr("10.20.0.1")
	for {
		a, err := allocate(p)
		if errors.Is(err, ErrFull) {
			break
		}
		if err != nil || a != want {
			t.Fatalf("allocate = %v, %v; want %v", a, err, want)
		}
		want = want.Next()
	}
	if want != mustAddr("10.20.255.255") || p.Used() != 65534 {
		t.Errorf("filled up to %v with %d used, want up to 10.20.255.255 with 65534", want, p.Used())
	}
}

// FuzzPool runs fuzzed operations on small prefixes against the model. Each
// pair of bytes is an operation and the offset of its address from the
// network address, starting one below it.
func FuzzPool(f *testing.F) {
	cases := []poolCase{
		{"10.8.0.0/30", "10.8.0.1", "10.8.0.2", 2, 6},
		{"10.8.0.8/29", "10.8.0.9", "10.8.0.14", 6, 10},
		{"fd00::/126", "fd00::1", "fd00::3", 3, 6},
		{"fd00::10/124", "fd00::11", "fd00::1f", 15, 18},
	}
	f.Add(byte(0), []byte{0, 0, 0, 0, 0, 0})
	f.Add(byte(1), []byte{1, 3, 0, 0, 2, 3, 0, 0, 1, 0, 1, 8})
	f.Add(byte(2), []byte{0, 0, 0, 0, 0, 0, 0, 0, 2, 2, 0, 0})
	f.Add(byte(3), []byte{1, 1, 1, 17, 1, 16, 0, 0, 2, 1, 1, 1, 0, 0})
	f.Fuzz(func(t *testing.T, sel byte, data []byte) {
		c := cases[int(sel)%len(cases)]
		var ops []op
		for i := 0; i+1 < len(data); i += 2 {
			off := int64(data[i+1])%int64(c.window+1) - 1
			ops = append(ops, op{int(data[i]) % opCount, addrAt(c, off)})
		}
		run(t, c, ops)
	})
}

// BenchmarkAllocate10k allocates 10,000 addresses from a new /16.
func BenchmarkAllocate10k(b *testing.B) {
	for b.Loop() {
		p := newPool(b, "10.20.0.0/16")
		for range 10_000 {
			if _, err := allocate(p); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkChurn releases a random address of a /16 with 50,000 in use and
// allocates again.
func BenchmarkChurn(b *testing.B) {
	for _, prefix := range []string{"10.20.0.0/16", "fd00::/64"} {
		b.Run(prefix, func(b *testing.B) {
			p := newPool(b, prefix)
			addrs := make([]netip.Addr, 50_000)
			for i := range addrs {
				a, err := allocate(p)
				if err != nil {
					b.Fatal(err)
				}
				addrs[i] = a
			}
			r := rand.New(rand.NewPCG(1, 2))
			for b.Loop() {
				i := r.IntN(len(addrs))
				p.Release(addrs[i])
				a, err := allocate(p)
				if err != nil || a != addrs[i] {
					b.Fatalf("allocate = %v, %v; want %v", a, err, addrs[i])
				}
			}
		})
	}
}

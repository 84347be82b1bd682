package platform

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables"
)

func TestRangesRoundTrip(t *testing.T) {
	tests := []struct {
		name     string
		prefixes []string
		want     []string // first-last
	}{
		{"merged and adjacent", []string{"10.0.0.0/25", "10.0.0.128/25", "10.0.0.5/32", "10.0.2.1/32"}, []string{"10.0.0.0-10.0.0.255", "10.0.2.1-10.0.2.1"}},
		{"to the last address", []string{"255.255.255.0/24", "0.0.0.0/1"}, []string{"0.0.0.0-127.255.255.255", "255.255.255.0-255.255.255.255"}},
		{"everything", []string{"0.0.0.0/0", "10.0.0.0/8"}, []string{"0.0.0.0-255.255.255.255"}},
		{"ipv6", []string{"fd00::/64", "fd00:0:0:1::/64"}, []string{"fd00::-fd00::1:ffff:ffff:ffff:ffff"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ps []netip.Prefix
			for _, s := range tt.prefixes {
				ps = append(ps, netip.MustParsePrefix(s))
			}
			slices.SortFunc(ps, ComparePrefixes)
			v4, v6 := splitRanges(ps)
			rs := append(v4, v6...)
			var got []string
			for _, r := range rs {
				got = append(got, r.first.String()+"-"+r.last.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ranges (-want +got):\n%s", diff)
			}
			back, ok := parseRanges(rangeElements(rs), len(v6) > 0)
			if !ok || !slices.Equal(back, rs) {
				t.Errorf("parseRanges(rangeElements(r)) = %v, %v; want %v", back, ok, rs)
			}
		})
	}
}

func TestParseRangesRefusesForeignShapes(t *testing.T) {
	a := func(s string) []byte { return netip.MustParseAddr(s).AsSlice() }
	tests := map[string][]nftables.SetElement{
		"two starts":     {{Key: a("10.0.0.1")}, {Key: a("10.0.0.5")}, {Key: a("10.0.0.9"), IntervalEnd: true}},
		"end first":      {{Key: a("10.0.0.1"), IntervalEnd: true}},
		"other family":   {{Key: a("fd00::1")}, {Key: a("fd00::2"), IntervalEnd: true}},
		"empty interval": {{Key: a("10.0.0.1")}, {Key: a("10.0.0.1"), IntervalEnd: true}, {Key: a("10.0.0.1")}},
	}
	for name, elems := range tests {
		if got, ok := parseRanges(elems, false); ok {
			t.Errorf("%s: parsed as %v", name, got)
		}
	}
	// nft adds adjacent addresses as adjacent ranges: an end and a start
	// on one key.
	adj := []nftables.SetElement{{Key: a("10.0.0.3")}, {Key: a("10.0.0.3"), IntervalEnd: true}, {Key: a("10.0.0.4"), IntervalEnd: true}, {Key: a("10.0.0.2")}}
	if got, ok := parseRanges(adj, false); !ok || len(got) != 2 {
		t.Errorf("adjacent ranges: %v, %v", got, ok)
	}
}

func TestCommonSubsequence(t *testing.T) {
	tests := []struct {
		a, b []string
		want []int
	}{
		{nil, []string{"x"}, nil},
		{[]string{"a", "b", "c"}, []string{"a", "b", "c"}, []int{0, 1, 2}},
		{[]string{"a", "c"}, []string{"a", "b", "c"}, []int{0, 2}},
		{[]string{"a", "x", "c"}, []string{"a", "c"}, []int{0, -1, 1}},
		{[]string{"e", "a", "b", "d"}, []string{"a", "b", "c", "d"}, []int{-1, 0, 1, 3}},
		{[]string{"b", "a"}, []string{"a", "b"}, []int{-1, 0}},
	}
	for _, tt := range tests {
		got := commonSubsequence(tt.a, tt.b)
		if len(tt.want) == 0 && len(got) == 0 {
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("commonSubsequence(%v, %v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestPlanApplyOnItsOwnResult: planning against the kernel state the
// ruleset itself describes changes nothing.
func TestPlanApplyOnItsOwnResult(t *testing.T) {
	p, err := ParseFirewall(webDBPolicy())
	if err != nil {
		t.Fatal(err)
	}
	want := compileFirewall("dg-x", p)
	have := &nftState{table: true, chains: map[string]*nftables.Chain{}, rules: map[string][]*nftables.Rule{},
		sets: map[string]*nftables.Set{}, elems: map[string][]nftables.SetElement{}}
	for i, s := range want.sets {
		have.sets[s.name] = s.kernel(uint32(i + 1))
		have.elems[s.name] = rangeElements(s.ranges)
	}
	handle := uint64(1)
	for _, ch := range want.chains {
		have.chains[ch.name] = ch.kernel()
		for _, r := range ch.rules {
			have.rules[ch.name] = append(have.rules[ch.name], &nftables.Rule{Handle: handle, Exprs: r.exprs, UserData: ruleUserData(r.comment)})
			handle++
		}
	}
	if b := planApply(want, have); b.ops.Total() != 0 || len(b.steps) != 0 {
		t.Errorf("plan against its own result: %+v", b.ops)
	}
	empty := &nftState{chains: map[string]*nftables.Chain{}, rules: map[string][]*nftables.Rule{},
		sets: map[string]*nftables.Set{}, elems: map[string][]nftables.SetElement{}}
	b := planApply(want, empty)
	if b.ops.Tables != 1 || b.ops.Chains != 3 || b.ops.Sets != 4 || b.ops.Rules != len(have.rules["dg-x-policy"])+2 {
		t.Errorf("plan from nothing: %+v", b.ops)
	}
}

func TestObjectOwners(t *testing.T) {
	for _, tt := range []struct {
		name, iface string
		set         bool
	}{
		{"dg-a-policy", "dg-a", false},
		{"dg-a-b-forward", "dg-a-b", false},
		{"dg-a-nat", "dg-a", false},
		{"sneaky", "", false},
		{"dg-a-" + "0123456789ab-4", "dg-a", true},
		{"dg-a-b-masq-6", "dg-a-b", true},
		{"dg-a-0123-4", "", true},
		{"extra", "", true},
		{"dg-a-masq-5", "", true},
	} {
		got, ok := chainInterface(tt.name)
		if tt.set {
			got, ok = setInterface(tt.name)
		}
		if got != tt.iface || ok != (tt.iface != "") {
			t.Errorf("owner of %q (set %v) = %q, %v; want %q", tt.name, tt.set, got, ok, tt.iface)
		}
	}
}

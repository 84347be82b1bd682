package platform

import (
	"errors"
	"net/netip"
	"os"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCheckMTU(t *testing.T) {
	for _, tt := range []struct {
		mtu int
		ok  bool
	}{{10, false}, {575, false}, {576, true}, {1280, true}, {1420, true}, {65535, true}, {65536, false}} {
		if err := CheckMTU(tt.mtu); (err == nil) != tt.ok {
			t.Errorf("CheckMTU(%d) = %v, want ok %v", tt.mtu, err, tt.ok)
		}
	}
}

func TestCheckRoutePrefix(t *testing.T) {
	for _, tt := range []struct {
		p  netip.Prefix
		ok bool
	}{
		{netip.MustParsePrefix("10.10.0.0/16"), true},
		{netip.MustParsePrefix("0.0.0.0/0"), true},
		{netip.MustParsePrefix("fd10::/64"), true},
		{netip.MustParsePrefix("10.10.0.1/32"), true},
		{netip.MustParsePrefix("10.10.0.1/16"), false},
		{netip.MustParsePrefix("fd10::1/64"), false},
		{netip.Prefix{}, false},
	} {
		if err := CheckRoutePrefix(tt.p); (err == nil) != tt.ok {
			t.Errorf("CheckRoutePrefix(%s) = %v, want ok %v", tt.p, err, tt.ok)
		}
	}
}

func TestComparePrefixes(t *testing.T) {
	in := prefixes("fd10::/64", "10.10.0.1/32", "10.10.0.0/24", "10.10.0.0/16", "10.9.0.0/16", "::/0", "0.0.0.0/0")
	want := []string{"0.0.0.0/0", "10.9.0.0/16", "10.10.0.0/16", "10.10.0.0/24", "10.10.0.1/32", "::/0", "fd10::/64"}
	slices.SortFunc(in, ComparePrefixes)
	if diff := cmp.Diff(want, prefixStrings(in)); diff != "" {
		t.Errorf("sorted by ComparePrefixes (-want +got):\n%s", diff)
	}
}

func TestAssignedAddresses(t *testing.T) {
	have := []netip.Prefix{
		netip.MustParsePrefix("fd10::1/64"),
		netip.MustParsePrefix("fe80::1c2f:3aff:fe4b:8d2e/64"),
		netip.MustParsePrefix("169.254.12.1/16"),
		netip.PrefixFrom(netip.MustParseAddr("::ffff:10.10.0.1"), 24),
		netip.MustParsePrefix("10.10.0.1/24"),
		{},
	}
	want := []string{"10.10.0.1/24", "fd10::1/64"}
	if diff := cmp.Diff(want, prefixStrings(assignedAddresses(have))); diff != "" {
		t.Errorf("assignedAddresses (-want +got):\n%s", diff)
	}
}

func TestCheckNewAddress(t *testing.T) {
	have := prefixes("10.10.0.1/24", "fd10::2/128")
	for _, tt := range []struct {
		p       string
		present bool
		exist   bool
	}{
		{"10.10.0.1/24", true, false},
		{"10.10.0.2/24", false, false},
		{"10.10.0.1/32", false, true},
		{"fd10::2/64", false, true},
		{"fd10::3/64", false, false},
	} {
		present, err := checkNewAddress(have, netip.MustParsePrefix(tt.p))
		if present != tt.present || errors.Is(err, os.ErrExist) != tt.exist || (err != nil) != tt.exist {
			t.Errorf("checkNewAddress(%s) = %v, %v; want present %v, os.ErrExist %v", tt.p, present, err, tt.present, tt.exist)
		}
	}
	if _, err := checkNewAddress(have, netip.Prefix{}); err == nil {
		t.Errorf("checkNewAddress(invalid) = nil error, want one")
	}
}

package platform

import (
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCheckName(t *testing.T) {
	for _, name := range []string{"wg0", "dg-office", "a.b_c=d", strings.Repeat("x", 15)} {
		if err := checkName(name); err != nil {
			t.Errorf("checkName(%q) = %v, want nil", name, err)
		}
	}
	for _, name := range []string{"", ".", "..", "bad/name", "wg%d", "a:b", "a b", "é", strings.Repeat("x", 16), "a-name-too-long-for-linux"} {
		if err := checkName(name); err == nil {
			t.Errorf("checkName(%q) = nil, want an error", name)
		}
	}
}

func TestCheckMTU(t *testing.T) {
	for _, tt := range []struct {
		mtu int
		ok  bool
	}{{10, false}, {575, false}, {576, true}, {1280, true}, {1420, true}, {65535, true}, {65536, false}} {
		if err := checkMTU(tt.mtu); (err == nil) != tt.ok {
			t.Errorf("checkMTU(%d) = %v, want ok %v", tt.mtu, err, tt.ok)
		}
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

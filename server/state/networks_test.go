package state

import (
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/store"
)

// TestNetworkRangeChanges: a range change gives the interfaces' addresses
// its prefix length, a new IPv6 range gives each interface an address in
// order, and a change that would strand an address is refused naming the
// range, changing nothing. Another network's range may not overlap.
func TestNetworkRangeChanges(t *testing.T) {
	s := openState(t, store.NewMem())
	n := must(s.CreateNetwork(api.Network{Name: "n", IPv4Range: "10.0.0.0/24"}))
	jt := must(s.CreateJoinToken(Trusted, api.JoinToken{Networks: []string{n.ID}}))
	_, joinID, _, _ := splitSecret(jt.Secret)
	var ids []string
	for _, name := range []string{"a", "b", "c"} {
		reg := must(s.Register(joinID, api.RegisterRequest{Name: name}, ""))
		ifs := must(s.Interfaces(Filter{Host: reg.HostID}, false))
		ids = append(ids, ifs.Items[0].ID)
	}
	// IPv4 addresses went in the order of joining; a new IPv6 range's go
	// in the order of the interfaces' ids.
	slices.Sort(ids)
	v4 := map[string]string{}
	for _, id := range ids {
		v4[id] = must(s.Interface(id)).Addresses[0]
	}
	addrs := func() [][]string {
		var out [][]string
		for _, id := range ids {
			out = append(out, must(s.Interface(id)).Addresses)
		}
		return out
	}
	want := func(bits4 string, v6 ...string) [][]string {
		var out [][]string
		for k, id := range ids {
			a := []string{strings.Replace(v4[id], "/24", bits4, 1)}
			if len(v6) > 0 {
				a = append(a, v6[k])
			}
			out = append(out, a)
		}
		return out
	}
	update := func(edit func(*api.Network)) error {
		_, err := s.UpdateNetwork("n", func(n *api.Network) error { edit(n); return nil })
		return err
	}
	check := func(want [][]string) {
		t.Helper()
		if got := addrs(); !slices.EqualFunc(got, want, slices.Equal) {
			t.Errorf("addresses %v, want %v", got, want)
		}
	}
	if got := slices.Sorted(maps.Values(v4)); !slices.Equal(got, []string{"10.0.0.1/24", "10.0.0.2/24", "10.0.0.3/24"}) {
		t.Fatalf("addresses %v", got)
	}

	if err := update(func(n *api.Network) { n.IPv4Range = "10.0.0.0/23" }); err != nil {
		t.Fatal(err)
	}
	check(want("/23"))

	if err := update(func(n *api.Network) { n.IPv6Range = "fd00::/64" }); err != nil {
		t.Fatal(err)
	}
	check(want("/23", "fd00::1/64", "fd00::2/64", "fd00::3/64"))

	if err := update(func(n *api.Network) { n.IPv6Range = "fd00::/112" }); err != nil {
		t.Fatal(err)
	}
	check(want("/23", "fd00::1/112", "fd00::2/112", "fd00::3/112"))

	o := must(s.CreateNetwork(api.Network{Name: "o", IPv4Range: "10.1.0.0/24"}))
	refused := []struct {
		name  string
		edit  func(*api.Network)
		class error
		field string
	}{
		{"address outside the new range", func(n *api.Network) { n.IPv4Range = "10.0.0.0/31" }, ErrInvalid, "ipv4_range"},
		{"address outside the new range", func(n *api.Network) { n.IPv4Range = "10.0.0.0/30" }, ErrConflict, "ipv4_range"},
		{"range removed under addresses", func(n *api.Network) { n.IPv6Range = "" }, ErrConflict, "ipv6_range"},
		{"overlaps another network", func(n *api.Network) { n.IPv4Range = "10.0.0.0/15" }, ErrConflict, "ipv4_range"},
	}
	for _, tc := range refused {
		err := update(tc.edit)
		var e *Error
		if !errors.As(err, &e) || !errors.Is(err, tc.class) || e.Field != tc.field {
			t.Errorf("%s: %v, want %v naming %s", tc.name, err, tc.class, tc.field)
		}
	}
	check(want("/23", "fd00::1/112", "fd00::2/112", "fd00::3/112"))
	if got := must(s.Network("n")); got.IPv4Range != "10.0.0.0/23" || got.IPv6Range != "fd00::/112" {
		t.Errorf("refused changes changed the network: %+v", got)
	}
	if _, err := s.UpdateNetwork(o.ID, func(n *api.Network) error { n.IPv6Range = "fd00::/48"; return nil }); !errors.Is(err, ErrConflict) {
		t.Errorf("IPv6 range over another network's: %v, want a conflict", err)
	}

	// Too small for the interfaces: a /126 has three usable addresses.
	m := must(s.CreateNetwork(api.Network{Name: "m", IPv4Range: "10.2.0.0/24"}))
	jt = must(s.CreateJoinToken(Trusted, api.JoinToken{Networks: []string{m.ID}}))
	_, joinID, _, _ = splitSecret(jt.Secret)
	for _, name := range []string{"d", "e", "f", "g"} {
		must(s.Register(joinID, api.RegisterRequest{Name: name}, ""))
	}
	_, err := s.UpdateNetwork("m", func(n *api.Network) error { n.IPv6Range = "fd02::/126"; return nil })
	var e *Error
	if !errors.As(err, &e) || e.Field != "ipv6_range" || !errors.Is(err, ErrConflict) {
		t.Errorf("IPv6 range too small: %v, want a conflict naming ipv6_range", err)
	}
	if got := must(s.Network("m")); got.IPv6Range != "" {
		t.Errorf("refused IPv6 range stored: %q", got.IPv6Range)
	}
}

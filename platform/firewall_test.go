package platform_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/drago-wg/drago/platform"
	"github.com/drago-wg/drago/server/api"
)

func TestParseFirewall(t *testing.T) {
	p, err := platform.ParseFirewall(&api.DesiredFirewall{
		DefaultAction: api.ActionDrop,
		Sets:          []api.FirewallSet{{Name: "web", Addresses: []string{"10.0.0.9/24", "fd00::1", "10.0.0.0/24"}}},
		Rules:         []api.FirewallRule{{Action: api.ActionAccept, From: "web", Protocol: api.ProtocolTCP, Ports: []api.PortRange{{First: 22, Last: 22}}}},
		Masquerade:    []string{"192.168.1.0/24"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := &platform.FirewallPolicy{
		Sets:       map[string][]netip.Prefix{"web": {netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("fd00::1/128")}},
		Rules:      []platform.FirewallRule{{Accept: true, From: "web", Protocol: api.ProtocolTCP, Ports: []api.PortRange{{First: 22, Last: 22}}}},
		Masquerade: []netip.Prefix{netip.MustParsePrefix("192.168.1.0/24")},
	}
	if diff := cmp.Diff(want, p, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if p, err := platform.ParseFirewall(nil); p != nil || err != nil {
		t.Errorf("ParseFirewall(nil) = %v, %v; want no policy", p, err)
	}
}

func TestParseFirewallRefusesBadInput(t *testing.T) {
	ok := func() *api.DesiredFirewall {
		return &api.DesiredFirewall{DefaultAction: api.ActionDrop,
			Sets:  []api.FirewallSet{{Name: "web", Addresses: []string{"10.0.0.1"}}},
			Rules: []api.FirewallRule{{Action: api.ActionAccept, From: "web", Protocol: api.ProtocolTCP, Ports: []api.PortRange{{First: 80, Last: 80}}}}}
	}
	tests := []struct {
		name   string
		change func(d *api.DesiredFirewall)
		field  string
	}{
		{"default action", func(d *api.DesiredFirewall) { d.DefaultAction = "reject" }, "default_action"},
		{"empty set name", func(d *api.DesiredFirewall) { d.Sets[0].Name = "" }, "sets[0].name"},
		{"set twice", func(d *api.DesiredFirewall) { d.Sets = append(d.Sets, d.Sets[0]) }, "sets[1].name"},
		{"bad address", func(d *api.DesiredFirewall) { d.Sets[0].Addresses = []string{"10.0.0.300"} }, "sets[0] (web).addresses"},
		{"mapped address", func(d *api.DesiredFirewall) { d.Sets[0].Addresses = []string{"::ffff:10.0.0.1/128"} }, "IPv4-mapped"},
		{"action", func(d *api.DesiredFirewall) { d.Rules[0].Action = "allow" }, "rules[0].action"},
		{"unknown set", func(d *api.DesiredFirewall) { d.Rules[0].To = "db" }, "rules[0].to"},
		{"protocol", func(d *api.DesiredFirewall) { d.Rules[0].Protocol = "sctp" }, "rules[0].protocol"},
		{"ports on icmp", func(d *api.DesiredFirewall) { d.Rules[0].Protocol = api.ProtocolICMP }, "rules[0].ports"},
		{"port zero", func(d *api.DesiredFirewall) { d.Rules[0].Ports[0].First = 0 }, "rules[0].ports[0]"},
		{"reversed range", func(d *api.DesiredFirewall) { d.Rules[0].Ports[0] = api.PortRange{First: 90, Last: 80} }, "rules[0].ports[0]"},
		{"masquerade", func(d *api.DesiredFirewall) { d.Masquerade = []string{"lan"} }, "masquerade"},
		{"too many rules", func(d *api.DesiredFirewall) { d.Rules = make([]api.FirewallRule, 10001) }, "firewall rules"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := ok()
			tt.change(d)
			_, err := platform.ParseFirewall(d)
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("err = %v, want one naming %q", err, tt.field)
			}
		})
	}
}

package platformtest

import (
	"net/netip"
	"testing"

	"github.com/drago-wg/drago/platform"
)

func TestFirewallCountsLikeTheKernel(t *testing.T) {
	fw := NewFirewall()
	web := []netip.Prefix{netip.MustParsePrefix("10.0.0.2/32")}
	p := &platform.FirewallPolicy{Sets: map[string][]netip.Prefix{"web": web},
		Rules: []platform.FirewallRule{{Accept: true, From: "web", Protocol: "tcp"}}}
	if ops, _ := fw.Apply("dg-a", p); ops.Tables != 1 || ops.Rules != 3 || ops.Sets != 1 || ops.Elements != 1 {
		t.Errorf("first apply: %+v", ops)
	}
	joined := &platform.FirewallPolicy{Sets: map[string][]netip.Prefix{"web": append(web, netip.MustParsePrefix("10.0.0.3/32"))}, Rules: p.Rules}
	if ops, _ := fw.Apply("dg-a", joined); ops != (platform.FirewallOps{Elements: 1}) {
		t.Errorf("a host joining: %+v, want one element", ops)
	}
	if ops, _ := fw.Apply("dg-a", joined); ops.Total() != 0 || fw.Changes() != 2 {
		t.Errorf("same policy: %+v, %d changes", ops, fw.Changes())
	}
}

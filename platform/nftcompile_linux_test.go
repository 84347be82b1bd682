package platform

import (
	"encoding/hex"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/nftables/expr"

	"github.com/drago-wg/drago/server/api"
)

var update = flag.Bool("update", false, "rewrite testdata/firewall/*.golden")

// TestCompileFirewallGolden compiles policies and compares the nftables
// objects and expressions with testdata/firewall/<name>.golden, written in
// the notation of `nft --debug=netlink`. Run with -update to rewrite them.
func TestCompileFirewallGolden(t *testing.T) {
	web := api.FirewallSet{Name: "role=web", Addresses: []string{"10.1.0.2/32", "10.1.0.3/32", "fd00:1::2/128"}}
	db := api.FirewallSet{Name: "role=db", Addresses: []string{"10.1.0.10", "10.1.0.0/30"}}
	tcp := func(ports ...api.PortRange) api.FirewallRule {
		return api.FirewallRule{Action: api.ActionAccept, From: "role=web", To: "role=db", Protocol: api.ProtocolTCP, Ports: ports}
	}
	tests := []struct {
		name string
		fw   api.DesiredFirewall
	}{
		{"default-accept", api.DesiredFirewall{DefaultAction: api.ActionAccept}},
		{"default-drop", api.DesiredFirewall{DefaultAction: api.ActionDrop}},
		{"sets-and-ports", api.DesiredFirewall{DefaultAction: api.ActionDrop,
			Sets:  []api.FirewallSet{web, db},
			Rules: []api.FirewallRule{tcp(api.PortRange{First: 5432, Last: 5432}, api.PortRange{First: 8000, Last: 8100})}}},
		{"any-and-icmp", api.DesiredFirewall{DefaultAction: api.ActionDrop,
			Sets: []api.FirewallSet{web},
			Rules: []api.FirewallRule{
				{Action: api.ActionAccept, Protocol: api.ProtocolICMP},
				{Action: api.ActionDrop, From: "role=web", Protocol: api.ProtocolAny},
				{Action: api.ActionAccept, Protocol: api.ProtocolUDP, Ports: []api.PortRange{{First: 53, Last: 53}}},
				{Action: api.ActionAccept, Protocol: api.ProtocolAny},
			}}},
		{"masquerade", api.DesiredFirewall{DefaultAction: api.ActionAccept,
			Masquerade: []string{"192.168.10.0/24", "192.168.11.0/24", "fd10::/64"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParseFirewall(&tt.fw)
			if err != nil {
				t.Fatal(err)
			}
			got := renderRuleset(compileFirewall("dg-test", p))
			path := filepath.Join("testdata", "firewall", tt.name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
			}
		})
	}
}

// renderRuleset writes rs as `nft --debug=netlink` prints rules.
func renderRuleset(rs nftRuleset) string {
	var b strings.Builder
	for _, s := range rs.sets {
		fmt.Fprintf(&b, "set %s %s interval # %s\n", s.name, s.keyType().Name, s.comment)
		for _, e := range rangeElements(s.ranges) {
			a, _ := netip.AddrFromSlice(e.Key)
			flag := "start"
			if e.IntervalEnd {
				flag = "end"
			}
			fmt.Fprintf(&b, "\t%s %s\n", flag, a)
		}
	}
	for _, ch := range rs.chains {
		kc := ch.kernel()
		fmt.Fprintf(&b, "\nchain %s", ch.name)
		if kc.Hooknum != nil {
			fmt.Fprintf(&b, " { type %s hook %d priority %d; policy accept; }", kc.Type, *kc.Hooknum, *kc.Priority)
		}
		b.WriteString("\n")
		for _, r := range ch.rules {
			fmt.Fprintf(&b, "  # %s\n", r.comment)
			for _, e := range r.exprs {
				fmt.Fprintf(&b, "  [ %s ]\n", renderExpr(e))
			}
		}
	}
	return b.String()
}

func renderExpr(e expr.Any) string {
	switch e := e.(type) {
	case *expr.Meta:
		return fmt.Sprintf("meta load %s => reg %d", metaKeys[e.Key], e.Register)
	case *expr.Cmp:
		return fmt.Sprintf("cmp %s reg %d %s", cmpOps[e.Op], e.Register, renderData(e.Data))
	case *expr.Range:
		return fmt.Sprintf("range %s reg %d %s %s", cmpOps[e.Op], e.Register, renderData(e.FromData), renderData(e.ToData))
	case *expr.Payload:
		base := map[expr.PayloadBase]string{expr.PayloadBaseNetworkHeader: "network", expr.PayloadBaseTransportHeader: "transport"}[e.Base]
		return fmt.Sprintf("payload load %db @ %s header + %d => reg %d", e.Len, base, e.Offset, e.DestRegister)
	case *expr.Lookup:
		return fmt.Sprintf("lookup reg %d set %s", e.SourceRegister, e.SetName)
	case *expr.Ct:
		return fmt.Sprintf("ct load state => reg %d", e.Register)
	case *expr.Bitwise:
		return fmt.Sprintf("bitwise reg %d = ( reg %d & %s ) ^ %s", e.DestRegister, e.SourceRegister, renderData(e.Mask), renderData(e.Xor))
	case *expr.Verdict:
		kind := map[expr.VerdictKind]string{expr.VerdictAccept: "accept", expr.VerdictDrop: "drop", expr.VerdictJump: "jump"}[e.Kind]
		if e.Chain != "" {
			return fmt.Sprintf("immediate reg 0 %s -> %s", kind, e.Chain)
		}
		return "immediate reg 0 " + kind
	case *expr.Masq:
		return "masq"
	}
	return fmt.Sprintf("unknown %T", e)
}

var (
	metaKeys = map[expr.MetaKey]string{expr.MetaKeyIIFNAME: "iifname", expr.MetaKeyOIFNAME: "oifname", expr.MetaKeyNFPROTO: "nfproto", expr.MetaKeyL4PROTO: "l4proto"}
	cmpOps   = map[expr.CmpOp]string{expr.CmpOpEq: "eq", expr.CmpOpNeq: "neq"}
)

// renderData prints data as hex; a NUL-padded name also as text.
func renderData(d []byte) string {
	s := "0x" + hex.EncodeToString(d)
	if name := strings.TrimRight(string(d), "\x00"); len(name) > 1 && strings.Trim(name, "abcdefghijklmnopqrstuvwxyz0123456789-") == "" {
		s += fmt.Sprintf(" (%q)", name)
	}
	return s
}

// webDBPolicy is default drop, and role=web reaches role=db on tcp/5432.
func webDBPolicy() *api.DesiredFirewall {
	return &api.DesiredFirewall{DefaultAction: api.ActionDrop,
		Sets: []api.FirewallSet{{Name: "role=web", Addresses: []string{"10.1.0.2/32"}}, {Name: "role=db", Addresses: []string{"10.1.0.10/32", "fd00::10/128"}}},
		Rules: []api.FirewallRule{{Action: api.ActionAccept, From: "role=web", To: "role=db", Protocol: api.ProtocolTCP,
			Ports: []api.PortRange{{First: 5432, Last: 5432}}}}}
}

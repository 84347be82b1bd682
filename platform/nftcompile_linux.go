//go:build linux

package platform

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"

	"github.com/drago-wg/drago/server/api"
)

// nftTable is drago's table. It holds only drago's chains and sets, so
// that drago never touches a rule of ufw, firewalld, Docker or the admin.
var nftTable = &nftables.Table{Name: "drago", Family: nftables.TableFamilyINet}

// Chains of one interface, named "<iface>-<suffix>". The base chains pass
// the traffic arriving through the interface to its policy chain.
const (
	chainPolicy  = "policy"  // regular chain: the rules, then the default
	chainInput   = "input"   // filter input: traffic to the host itself
	chainForward = "forward" // filter forward: traffic to its routed subnets
	chainNAT     = "nat"     // nat postrouting: masquerade, only when asked
)

// nftRuleset is what one interface's policy compiles to: its sets, then
// its chains (the policy chain first: base chains jump to it), each with
// its rules in order.
type nftRuleset struct {
	sets   []nftSet
	chains []nftChain
}

// nftSet is an interval set of addresses of one family.
type nftSet struct {
	name    string
	comment string // the set name the server gave
	v6      bool
	ranges  []addrRange // sorted, disjoint, not adjacent
}

// addrRange is an inclusive range of addresses of one family.
type addrRange struct{ first, last netip.Addr }

// nftChain is a chain with its rules; hook is nil for a regular chain.
type nftChain struct {
	name     string
	typ      nftables.ChainType
	hook     *nftables.ChainHook
	priority *nftables.ChainPriority
	rules    []nftRule
}

// nftRule is one rule's expressions and comment.
type nftRule struct {
	exprs   []expr.Any
	comment string
}

func chainName(iface, suffix string) string { return iface + "-" + suffix }

// setName names the kernel set of one family for the policy's set name:
// a digest, since the server's names may hold characters nft does not
// print bare; the set's comment keeps the name.
func setName(iface, name string, v6 bool) string {
	sum := sha256.Sum256([]byte(name))
	return iface + "-" + hex.EncodeToString(sum[:6]) + familySuffix(v6)
}

// masqSetName names the kernel set of masqueraded subnets of one family.
func masqSetName(iface string, v6 bool) string { return iface + "-masq" + familySuffix(v6) }

func familySuffix(v6 bool) string {
	if v6 {
		return "-6"
	}
	return "-4"
}

// setInterface returns the interface a set named name belongs to, or false
// when drago writes no set of that name.
func setInterface(name string) (string, bool) {
	rest, ok := strings.CutSuffix(name, "-4")
	if !ok {
		if rest, ok = strings.CutSuffix(name, "-6"); !ok {
			return "", false
		}
	}
	i := strings.LastIndexByte(rest, '-')
	if i < 0 {
		return "", false
	}
	iface, tag := rest[:i], rest[i+1:]
	if _, err := hex.DecodeString(tag); (err != nil || len(tag) != 12) && tag != "masq" {
		return "", false
	}
	return iface, api.CheckInterfaceName(iface) == nil
}

// chainInterface returns the interface a chain named name belongs to, or
// false when drago writes no chain of that name.
func chainInterface(name string) (string, bool) {
	for _, suffix := range []string{chainPolicy, chainInput, chainForward, chainNAT} {
		if iface, ok := strings.CutSuffix(name, "-"+suffix); ok && api.CheckInterfaceName(iface) == nil {
			return iface, true
		}
	}
	return "", false
}

// compileFirewall compiles iface's policy. Every policy set becomes two
// kernel sets, IPv4 and IPv6, even when one is empty, so that a host
// joining with an address of the other family changes elements only.
func compileFirewall(iface string, p *FirewallPolicy) nftRuleset {
	var rs nftRuleset
	for _, name := range slices.Sorted(maps.Keys(p.Sets)) {
		v4, v6 := splitRanges(p.Sets[name])
		rs.sets = append(rs.sets,
			nftSet{name: setName(iface, name, false), comment: name, ranges: v4},
			nftSet{name: setName(iface, name, true), comment: name, v6: true, ranges: v6})
	}

	policy := nftChain{name: chainName(iface, chainPolicy)}
	policy.rules = append(policy.rules, nftRule{comment: "established", exprs: []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(expr.CtStateBitESTABLISHED | expr.CtStateBitRELATED),
			Xor:  binaryutil.NativeEndian.PutUint32(0)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0, 0, 0, 0}},
		&expr.Verdict{Kind: expr.VerdictAccept},
	}})
	for _, r := range p.Rules {
		policy.rules = append(policy.rules, compileRule(iface, r)...)
	}
	def := nftRule{comment: "default drop", exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}}
	if p.DefaultAccept {
		def = nftRule{comment: "default accept", exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictAccept}}}
	}
	policy.rules = append(policy.rules, def)

	jump := &expr.Verdict{Kind: expr.VerdictJump, Chain: policy.name}
	input := nftRule{comment: "arriving through " + iface, exprs: append(matchIIF(iface), jump)}
	// Traffic relayed back out of the interface (a hub between its
	// spokes) is not for this host: its destination enforces the policy.
	forward := nftRule{comment: "arriving through " + iface + ", not relayed back to it", exprs: append(matchIIF(iface),
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: ifname(iface)},
		jump)}
	rs.chains = append(rs.chains, policy,
		nftChain{name: chainName(iface, chainInput), typ: nftables.ChainTypeFilter,
			hook: nftables.ChainHookInput, priority: nftables.ChainPriorityFilter, rules: []nftRule{input}},
		nftChain{name: chainName(iface, chainForward), typ: nftables.ChainTypeFilter,
			hook: nftables.ChainHookForward, priority: nftables.ChainPriorityFilter, rules: []nftRule{forward}})

	if len(p.Masquerade) > 0 {
		v4, v6 := splitRanges(p.Masquerade)
		rs.sets = append(rs.sets,
			nftSet{name: masqSetName(iface, false), comment: "masquerade", ranges: v4},
			nftSet{name: masqSetName(iface, true), comment: "masquerade", v6: true, ranges: v6})
		nat := nftChain{name: chainName(iface, chainNAT), typ: nftables.ChainTypeNAT,
			hook: nftables.ChainHookPostrouting, priority: nftables.ChainPriorityNATSource}
		for _, v6 := range []bool{false, true} {
			e := append(matchIIF(iface), matchFamily(v6)...)
			e = append(e, matchAddr(masqSetName(iface, v6), v6, true)...)
			nat.rules = append(nat.rules, nftRule{comment: "masquerade to routed subnets", exprs: append(e, &expr.Masq{})})
		}
		rs.chains = append(rs.chains, nat)
	}
	return rs
}

// compileRule compiles one rule into kernel rules: one per address family
// when it names a set or ICMP (ICMP and ICMPv6 differ), times one per
// port range.
func compileRule(iface string, r FirewallRule) []nftRule {
	verdict := &expr.Verdict{Kind: expr.VerdictDrop}
	action := api.ActionDrop
	if r.Accept {
		verdict.Kind, action = expr.VerdictAccept, api.ActionAccept
	}
	comment := describeRule(action, r)
	// Each entry: IPv6 or not, and whether to match the family.
	families := []struct{ v6, match bool }{{false, false}}
	if r.From != "" || r.To != "" || r.Protocol == api.ProtocolICMP {
		families = []struct{ v6, match bool }{{false, true}, {true, true}}
	}
	var out []nftRule
	for _, fam := range families {
		var base []expr.Any
		v6 := fam.v6
		if fam.match {
			base = append(base, matchFamily(v6)...)
		}
		switch r.Protocol {
		case api.ProtocolTCP:
			base = append(base, matchL4(unix.IPPROTO_TCP)...)
		case api.ProtocolUDP:
			base = append(base, matchL4(unix.IPPROTO_UDP)...)
		case api.ProtocolICMP:
			if v6 {
				base = append(base, matchL4(unix.IPPROTO_ICMPV6)...)
			} else {
				base = append(base, matchL4(unix.IPPROTO_ICMP)...)
			}
		}
		if r.From != "" {
			base = append(base, matchAddr(setName(iface, r.From, v6), v6, false)...)
		}
		if r.To != "" {
			base = append(base, matchAddr(setName(iface, r.To, v6), v6, true)...)
		}
		if len(r.Ports) == 0 {
			out = append(out, nftRule{comment: comment, exprs: append(base, verdict)})
			continue
		}
		for _, pr := range r.Ports {
			e := append(base[:len(base):len(base)], &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2})
			if pr.First == pr.Last {
				e = append(e, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(pr.First)})
			} else {
				e = append(e, &expr.Range{Op: expr.CmpOpEq, Register: 1,
					FromData: binaryutil.BigEndian.PutUint16(pr.First), ToData: binaryutil.BigEndian.PutUint16(pr.Last)})
			}
			out = append(out, nftRule{comment: comment, exprs: append(e, verdict)})
		}
	}
	return out
}

// describeRule is a rule's comment: what it does, without its position,
// so that moving other rules leaves it as it is.
func describeRule(action string, r FirewallRule) string {
	from, to := r.From, r.To
	if from == "" {
		from = "*"
	}
	if to == "" {
		to = "*"
	}
	s := action + " " + r.Protocol
	for k, pr := range r.Ports {
		sep := " "
		if k > 0 {
			sep = ","
		}
		s += sep + strconv.Itoa(int(pr.First))
		if pr.Last != pr.First {
			s += "-" + strconv.Itoa(int(pr.Last))
		}
	}
	return fmt.Sprintf("%s from %s to %s", s, from, to)
}

// matchIIF matches packets that arrived through iface.
func matchIIF(iface string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifname(iface)},
	}
}

// ifname is an interface name as the kernel compares it: NUL-padded.
func ifname(iface string) []byte {
	name := make([]byte, unix.IFNAMSIZ)
	copy(name, iface)
	return name
}

func matchFamily(v6 bool) []expr.Any {
	proto := byte(unix.NFPROTO_IPV4)
	if v6 {
		proto = unix.NFPROTO_IPV6
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
	}
}

func matchL4(proto byte) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
	}
}

// matchAddr matches the source (or, when dst, destination) address in set.
func matchAddr(set string, v6, dst bool) []expr.Any {
	offset, n := uint32(12), uint32(4) // IPv4 saddr
	if v6 {
		offset, n = 8, 16
	}
	if dst {
		offset += n
	}
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: n},
		&expr.Lookup{SourceRegister: 1, SetName: set},
	}
}

// ruleUserData is a rule's comment as nft stores it (and prints it), cut
// to fit the one-byte length of its TLV.
func ruleUserData(comment string) []byte {
	if len(comment) > maxComment {
		comment = comment[:maxComment-3] + "..."
	}
	return userdata.AppendString(nil, userdata.TypeComment, comment)
}

// maxComment bounds comments, which nft stores with a one-byte length.
const maxComment = 128

// splitRanges turns sorted prefixes into disjoint, non-adjacent ranges,
// IPv4 and IPv6 apart.
func splitRanges(ps []netip.Prefix) (v4, v6 []addrRange) {
	for _, p := range ps {
		r := addrRange{p.Masked().Addr(), lastAddr(p)}
		list := &v4
		if r.first.Is6() {
			list = &v6
		}
		if n := len(*list); n > 0 {
			prev := &(*list)[n-1]
			if next := prev.last.Next(); !next.IsValid() || r.first.Compare(next) <= 0 {
				if r.last.Compare(prev.last) > 0 {
					prev.last = r.last
				}
				continue
			}
		}
		*list = append(*list, r)
	}
	return v4, v6
}

// lastAddr is the last address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// rangeElements is the kernel's form of ranges in an interval set: a start
// element, and an end element one past the range unless it reaches the
// last address.
func rangeElements(rs []addrRange) []nftables.SetElement {
	out := make([]nftables.SetElement, 0, 2*len(rs))
	for _, r := range rs {
		out = append(out, nftables.SetElement{Key: r.first.AsSlice()})
		if next := r.last.Next(); next.IsValid() {
			out = append(out, nftables.SetElement{Key: next.AsSlice(), IntervalEnd: true})
		}
	}
	return out
}

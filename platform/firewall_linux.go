//go:build linux

package platform

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/drago-wg/drago/server/api"
)

// nftFirewall is the Linux Firewall: nf_tables through netlink, in the
// table "inet drago" (nftTable). Each interface has a policy chain holding
// its rules, base chains on the input and forward hooks that jump to it
// for traffic arriving through the interface, an interval set per address
// family for each set of its policy, and, for masquerade, a nat chain on
// the postrouting hook. Apply reads what the kernel holds, and sends the
// differences as one nf_tables transaction.
type nftFirewall struct {
	conn *nftables.Conn
	log  *slog.Logger
}

var _ Firewall = (*nftFirewall)(nil)

// NewFirewall returns the host's firewall: nf_tables, in the network
// namespace of the calling thread. It fails, matching
// ErrFirewallUnsupported, when the kernel has no nf_tables or drago may
// not use it. log may be nil.
func NewFirewall(log *slog.Logger) (Firewall, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	conn, err := nftables.New(nftables.AsLasting())
	if err != nil {
		return nil, fmt.Errorf("%w: nf_tables not available: %w", ErrFirewallUnsupported, err)
	}
	if _, err := conn.ListTablesOfFamily(nftables.TableFamilyINet); err != nil {
		conn.CloseLasting()
		return nil, fmt.Errorf("%w: nf_tables not available: %w", ErrFirewallUnsupported, err)
	}
	return &nftFirewall{conn: conn, log: log.With("subsystem", "firewall")}, nil
}

func (f *nftFirewall) Close() error { return f.conn.CloseLasting() }

// nftState is what the kernel holds of one interface: its chains, their
// rules and its sets with their elements; and what drago's table holds that
// drago never writes (added by hand), to delete.
type nftState struct {
	table  bool                        // the table exists
	others bool                        // it has chains of other interfaces
	chains map[string]*nftables.Chain  // by name
	rules  map[string][]*nftables.Rule // by chain name, in order
	sets   map[string]*nftables.Set    // by name
	elems  map[string][]nftables.SetElement

	strayChains map[string]*nftables.Chain
	straySets   []*nftables.Set
}

// read reads the kernel's objects of iface.
func (f *nftFirewall) read(iface string) (*nftState, error) {
	st := &nftState{chains: map[string]*nftables.Chain{}, rules: map[string][]*nftables.Rule{},
		sets: map[string]*nftables.Set{}, elems: map[string][]nftables.SetElement{}, strayChains: map[string]*nftables.Chain{}}
	tables, err := f.conn.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("listing tables: %w", err)
	}
	if !slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == nftTable.Name }) {
		return st, nil
	}
	st.table = true
	chains, err := f.conn.ListChainsOfTableFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("listing chains: %w", err)
	}
	for _, c := range chains {
		if c.Table.Name != nftTable.Name {
			continue
		}
		c.Table = nftTable
		owner, ok := chainInterface(c.Name)
		switch {
		case !ok:
			st.strayChains[c.Name] = c
			continue
		case owner != iface:
			st.others = true
			continue
		}
		st.chains[c.Name] = c
		if st.rules[c.Name], err = f.conn.GetRules(nftTable, c); err != nil {
			return nil, fmt.Errorf("listing rules of chain %s: %w", c.Name, err)
		}
	}
	sets, err := f.conn.GetSets(nftTable)
	if err != nil {
		return nil, fmt.Errorf("listing sets: %w", err)
	}
	for _, s := range sets {
		s.Table = nftTable
		owner, ok := setInterface(s.Name)
		switch {
		case s.Anonymous:
			continue // bound to a rule: it goes with the rule
		case !ok:
			st.straySets = append(st.straySets, s)
			continue
		case owner != iface:
			continue
		}
		st.sets[s.Name] = s
		if st.elems[s.Name], err = f.conn.GetSetElements(s); err != nil {
			return nil, fmt.Errorf("listing elements of set %s: %w", s.Name, err)
		}
	}
	return st, nil
}

// nftBatch is one transaction in the making: the changes, queued on the
// connection when run, and their count.
type nftBatch struct {
	ops   FirewallOps
	steps []func(c *nftables.Conn) error
	setID uint32 // the last set id given in the batch
}

func (b *nftBatch) add(step func(c *nftables.Conn) error) { b.steps = append(b.steps, step) }

// run queues the batch on conn and sends it as one transaction.
func (b *nftBatch) run(conn *nftables.Conn) error {
	if len(b.steps) == 0 {
		return nil
	}
	for _, step := range b.steps {
		if err := step(conn); err != nil {
			return err
		}
	}
	return conn.Flush()
}

func (f *nftFirewall) Apply(iface string, p *FirewallPolicy) (FirewallOps, error) {
	if err := api.CheckInterfaceName(iface); err != nil {
		return FirewallOps{}, err
	}
	if p == nil {
		return f.Remove(iface)
	}
	have, err := f.read(iface)
	if err != nil {
		return FirewallOps{}, err
	}
	b := planApply(compileFirewall(iface, p), have)
	if err := b.run(f.conn); err != nil {
		return FirewallOps{}, fmt.Errorf("applying the firewall of %s: %w", iface, err)
	}
	return b.ops, nil
}

func (f *nftFirewall) Remove(iface string) (FirewallOps, error) {
	if err := api.CheckInterfaceName(iface); err != nil {
		return FirewallOps{}, err
	}
	have, err := f.read(iface)
	if err != nil {
		return FirewallOps{}, err
	}
	var b nftBatch
	if have.table && !have.others {
		b.ops.Tables++
		b.add(func(c *nftables.Conn) error { c.DelTable(nftTable); return nil })
	} else {
		b.deleteAll(have)
	}
	if err := b.run(f.conn); err != nil {
		return FirewallOps{}, fmt.Errorf("removing the firewall of %s: %w", iface, err)
	}
	return b.ops, nil
}

func (f *nftFirewall) RemoveAll() error {
	tables, err := f.conn.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return fmt.Errorf("listing tables: %w", err)
	}
	if !slices.ContainsFunc(tables, func(t *nftables.Table) bool { return t.Name == nftTable.Name }) {
		return nil
	}
	f.conn.DelTable(nftTable)
	if err := f.conn.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("deleting table inet %s: %w", nftTable.Name, err)
	}
	return nil
}

// planApply plans the changes that bring have to want. Objects that match
// are left alone; rules are compared by their expressions and comment, and
// kept in place when they match; set elements are diffed range by range.
// A chain or set of the wrong kind (a hook, type or key changed by hand)
// cannot be changed in place: the interface is then rebuilt, in the same
// transaction.
func planApply(want nftRuleset, have *nftState) *nftBatch {
	b := &nftBatch{}
	if !have.table {
		b.ops.Tables++
		b.add(func(c *nftables.Conn) error { c.AddTable(nftTable); return nil })
	} else if !sameKinds(want, have) {
		b.deleteAll(have)
		have = &nftState{table: true, strayChains: have.strayChains, straySets: have.straySets}
	}

	for _, s := range want.sets {
		b.planSet(s, have.sets[s.name], have.elems[s.name])
	}
	for _, ch := range want.chains {
		if have.chains[ch.name] == nil {
			b.ops.Chains++
			kc := ch.kernel()
			b.add(func(c *nftables.Conn) error { c.AddChain(kc); return nil })
		}
		b.planRules(ch, have.rules[ch.name])
	}

	// Chains and sets no longer wanted go last, after the rules that
	// referred to them: the chains (base chains before the policy chain
	// they jump to), then the sets.
	wantChains := map[string]bool{}
	for _, ch := range want.chains {
		wantChains[ch.name] = true
	}
	wantSets := map[string]bool{}
	for _, s := range want.sets {
		wantSets[s.name] = true
	}
	// What was added by hand to drago's table goes first: it may jump to
	// a chain that goes, or use a set that does.
	b.deleteChains(&nftState{chains: have.strayChains}, func(string) bool { return true })
	b.deleteChains(have, func(name string) bool { return !wantChains[name] })
	for _, name := range sortedKeys(have.sets) {
		if !wantSets[name] {
			b.deleteSet(have.sets[name])
		}
	}
	for _, s := range have.straySets {
		b.deleteSet(s)
	}
	return b
}

// sameKinds reports whether each chain and set have holds of want is of
// the kind want says (hook, type, priority, policy; key type, interval).
func sameKinds(want nftRuleset, have *nftState) bool {
	for _, ch := range want.chains {
		hc := have.chains[ch.name]
		if hc == nil {
			continue
		}
		if (hc.Hooknum == nil) != (ch.hook == nil) {
			return false
		}
		if ch.hook != nil && (*hc.Hooknum != *ch.hook || hc.Priority == nil || *hc.Priority != *ch.priority ||
			hc.Type != ch.typ || hc.Policy == nil || *hc.Policy != nftables.ChainPolicyAccept) {
			return false
		}
	}
	for _, s := range want.sets {
		hs := have.sets[s.name]
		if hs == nil {
			continue
		}
		if hs.KeyType.Name != s.keyType().Name || !hs.Interval || hs.IsMap || hs.Anonymous || hs.Constant || hs.HasTimeout {
			return false
		}
	}
	return true
}

// deleteAll deletes every chain and set of have.
func (b *nftBatch) deleteAll(have *nftState) {
	b.deleteChains(have, func(string) bool { return true })
	for _, name := range sortedKeys(have.sets) {
		b.deleteSet(have.sets[name])
	}
}

// deleteChains deletes the chains of have that del selects, base chains
// first: the policy chain can go once nothing jumps to it. Each is flushed
// first, since a chain holding rules cannot be deleted.
func (b *nftBatch) deleteChains(have *nftState, del func(name string) bool) {
	names := sortedKeys(have.chains)
	slices.SortStableFunc(names, func(x, y string) int {
		return boolInt(have.chains[x].Hooknum == nil) - boolInt(have.chains[y].Hooknum == nil)
	})
	for _, name := range names {
		if !del(name) {
			continue
		}
		ch := have.chains[name]
		b.ops.Chains++
		b.add(func(c *nftables.Conn) error { c.FlushChain(ch); c.DelChain(ch); return nil })
	}
}

func (b *nftBatch) deleteSet(s *nftables.Set) {
	b.ops.Sets++
	b.add(func(c *nftables.Conn) error { c.DelSet(s); return nil })
}

func boolInt(v bool) int {
	if v {
		return 1
	}
	return 0
}

// planSet plans set s given the kernel's set (nil when missing) and its
// elements.
func (b *nftBatch) planSet(s nftSet, hs *nftables.Set, helems []nftables.SetElement) {
	b.setID++
	if hs == nil {
		ks := s.kernel(b.setID)
		elems := rangeElements(s.ranges)
		b.ops.Sets++
		b.ops.Elements += len(s.ranges)
		b.add(func(c *nftables.Conn) error { return c.AddSet(ks, elems) })
		return
	}
	ks := s.kernel(hs.ID)
	have, ok := parseRanges(helems, s.v6)
	if !ok {
		// Elements no drago wrote (overlapping, or of the other family):
		// start the set over.
		elems := rangeElements(s.ranges)
		b.ops.Sets++
		b.ops.Elements += len(s.ranges)
		b.add(func(c *nftables.Conn) error {
			c.FlushSet(ks)
			if len(elems) == 0 {
				return nil
			}
			return c.SetAddElements(ks, elems)
		})
		return
	}
	del, add := diffRanges(have, s.ranges)
	if len(del) > 0 {
		elems := rangeElements(del)
		b.ops.Elements += len(del)
		b.add(func(c *nftables.Conn) error { return c.SetDeleteElements(ks, elems) })
	}
	if len(add) > 0 {
		elems := rangeElements(add)
		b.ops.Elements += len(add)
		b.add(func(c *nftables.Conn) error { return c.SetAddElements(ks, elems) })
	}
}

// planRules plans the rules of chain ch given the kernel's rules of it.
// The rules that match, in order, are kept (the longest common
// subsequence); the others are deleted, and the missing ones inserted
// before the next rule kept, or appended.
func (b *nftBatch) planRules(ch nftChain, have []*nftables.Rule) {
	wantKeys := make([]string, len(ch.rules))
	for i, r := range ch.rules {
		wantKeys[i] = ruleKey(r.exprs, ruleUserData(r.comment))
	}
	haveKeys := make([]string, len(have))
	for i, r := range have {
		haveKeys[i] = ruleKey(r.Exprs, r.UserData)
	}
	keep := commonSubsequence(haveKeys, wantKeys) // keep[i]: have[i] is kept as want[keep[i]]
	kc := ch.kernel()
	for i, r := range have {
		if keep[i] < 0 {
			b.ops.Rules++
			r.Table, r.Chain = nftTable, kc
			b.add(func(c *nftables.Conn) error { return c.DelRule(r) })
		}
	}
	// next[j] is the handle of the first kept rule at or after want[j].
	next := make([]uint64, len(ch.rules)+1)
	kept := make([]bool, len(ch.rules))
	for i, j := range keep {
		if j >= 0 {
			next[j], kept[j] = have[i].Handle, true
		}
	}
	for j := len(ch.rules) - 1; j >= 0; j-- {
		if !kept[j] {
			next[j] = next[j+1]
		}
	}
	for j, r := range ch.rules {
		if kept[j] {
			continue
		}
		b.ops.Rules++
		rule := &nftables.Rule{Table: nftTable, Chain: kc, Exprs: r.exprs, UserData: ruleUserData(r.comment)}
		if before := next[j]; before != 0 {
			rule.Position = before
			b.add(func(c *nftables.Conn) error { c.InsertRule(rule); return nil })
		} else {
			b.add(func(c *nftables.Conn) error { c.AddRule(rule); return nil })
		}
	}
}

// ruleKey identifies a rule by its expressions, as the kernel would hold
// them, and its user data. A set is named by name only: the id that finds
// a set created in the same transaction is not kept by the kernel.
func ruleKey(exprs []expr.Any, udata []byte) string {
	var buf bytes.Buffer
	for _, e := range exprs {
		if l, ok := e.(*expr.Lookup); ok {
			c := *l
			c.SetID = 0
			e = &c
		}
		data, err := expr.Marshal(byte(nftables.TableFamilyINet), e)
		if err != nil {
			return "\x00unmarshalable" // matches no wanted rule
		}
		fmt.Fprintf(&buf, "%d:", len(data))
		buf.Write(data)
	}
	buf.WriteString("|")
	buf.Write(udata)
	return buf.String()
}

// commonSubsequence returns, for each element of a, the index in b it is
// matched to in a longest common subsequence of a and b, or -1. Common
// ends are matched first; a middle too large for the quadratic table is
// left unmatched (rewritten), which only costs rule changes.
func commonSubsequence(a, b []string) []int {
	match := make([]int, len(a))
	for i := range match {
		match[i] = -1
	}
	lo := 0
	for lo < len(a) && lo < len(b) && a[lo] == b[lo] {
		match[lo] = lo
		lo++
	}
	ha, hb := len(a), len(b)
	for ha > lo && hb > lo && a[ha-1] == b[hb-1] {
		ha, hb = ha-1, hb-1
		match[ha] = hb
	}
	n, m := ha-lo, hb-lo
	if n == 0 || m == 0 || n*m > 4<<20 {
		return match
	}
	// lcs[i][j]: the length of the LCS of a[lo+i:ha] and b[lo+j:hb].
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[lo+i] == b[lo+j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	for i, j := 0, 0; i < n && j < m; {
		switch {
		case a[lo+i] == b[lo+j]:
			match[lo+i] = lo + j
			i, j = i+1, j+1
		case lcs[i+1][j] >= lcs[i][j+1]:
			i++
		default:
			j++
		}
	}
	return match
}

// kernel returns the chain as nftables describes it.
func (ch nftChain) kernel() *nftables.Chain {
	c := &nftables.Chain{Name: ch.name, Table: nftTable}
	if ch.hook != nil {
		c.Type, c.Hooknum, c.Priority = ch.typ, ch.hook, ch.priority
		policy := nftables.ChainPolicyAccept
		c.Policy = &policy
	}
	return c
}

func (s nftSet) keyType() nftables.SetDatatype {
	if s.v6 {
		return nftables.TypeIP6Addr
	}
	return nftables.TypeIPAddr
}

// kernel returns the set as nftables describes it, with the id that
// names it in a transaction.
func (s nftSet) kernel(id uint32) *nftables.Set {
	comment := s.comment
	if len(comment) > maxComment {
		comment = comment[:maxComment-3] + "..."
	}
	return &nftables.Set{Table: nftTable, ID: id, Name: s.name, Interval: true, KeyType: s.keyType(), Comment: comment}
}

// parseRanges reads an interval set's elements back into ranges, as
// rangeElements writes them or nft adds them (adjacent ranges apart). It
// reports false for any other shape: each start must be followed by its
// end, but for a last start that reaches the last address.
func parseRanges(elems []nftables.SetElement, v6 bool) ([]addrRange, bool) {
	n := 4
	if v6 {
		n = 16
	}
	sorted := slices.Clone(elems)
	// An end and a start on the same key (adjacent ranges): the end first.
	slices.SortStableFunc(sorted, func(x, y nftables.SetElement) int {
		if c := bytes.Compare(x.Key, y.Key); c != 0 {
			return c
		}
		return boolInt(y.IntervalEnd) - boolInt(x.IntervalEnd)
	})
	var out []addrRange
	for i := 0; i < len(sorted); i++ {
		e := sorted[i]
		if len(e.Key) != n || e.IntervalEnd {
			return nil, false
		}
		first, _ := netip.AddrFromSlice(e.Key)
		if i+1 == len(sorted) {
			out = append(out, addrRange{first, lastAddr(netip.PrefixFrom(first, 0))})
			break
		}
		end := sorted[i+1]
		if len(end.Key) != n || !end.IntervalEnd {
			return nil, false
		}
		last, _ := netip.AddrFromSlice(end.Key)
		if last.Compare(first) <= 0 {
			return nil, false
		}
		out = append(out, addrRange{first, last.Prev()})
		i++
	}
	for i := 1; i < len(out); i++ {
		if out[i].first.Compare(out[i-1].last) <= 0 {
			return nil, false
		}
	}
	return out, true
}

// diffRanges returns the ranges of have not in want, and of want not in have.
func diffRanges(have, want []addrRange) (del, add []addrRange) {
	in := func(rs []addrRange) map[addrRange]bool {
		m := make(map[addrRange]bool, len(rs))
		for _, r := range rs {
			m[r] = true
		}
		return m
	}
	wantSet, haveSet := in(want), in(have)
	for _, r := range have {
		if !wantSet[r] {
			del = append(del, r)
		}
	}
	for _, r := range want {
		if !haveSet[r] {
			add = append(add, r)
		}
	}
	return del, add
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

package state

import (
	"cmp"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/store"
)

// Access rules (api.Rule) are stored objects, ordered per network by
// Position: positions stay 0..n-1, and a write that inserts, moves or
// deletes a rule rewrites the positions of the rules it shifts (without
// an event of their own: the moved rule's event says the order changed).

// Rule bounds.
const (
	MaxRules          = 1000 // per network
	maxPorts          = 64   // port entries of a rule
	maxDescriptionLen = 256  // bytes
)

// Rules lists the access rules of the filter's network (all networks
// when none is given), in network id then position order.
func (s *State) Rules(f Filter) (api.List[api.Rule], error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var nets []string
	if f.Network != "" {
		n, err := s.network(f.Network)
		if err != nil {
			return api.List[api.Rule]{}, err
		}
		nets = []string{n.ID}
	} else {
		for id := range s.netRules {
			nets = append(nets, id)
		}
		slices.Sort(nets)
	}
	var out []api.Rule
	for _, id := range nets {
		if !f.inScope(id) {
			continue
		}
		for _, r := range s.netRules[id] {
			out = append(out, *clone(r))
		}
	}
	return page(out, f), nil
}

// Rule returns a rule by id.
func (s *State) Rule(id string) (*api.Rule, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r, ok := s.rules[id]
	if !ok {
		return nil, notFound("rule", id)
	}
	return clone(r), nil
}

// CreateRule validates a rule and adds it to its network's policy, at
// req.Position or after the last rule (NetworkID may be a name).
func (s *State) CreateRule(req api.RuleRequest) (*api.Rule, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := req.Rule
	n, err := s.network(r.NetworkID)
	if err != nil {
		return nil, &Error{Class: ErrInvalid, Field: "network_id", Message: err.Error()}
	}
	if err := checkNewMeta(&r.Meta); err != nil {
		return nil, err
	}
	list := s.netRules[n.ID]
	if len(list) >= MaxRules {
		return nil, conflict("network_id", "network %s has %d rules, the most a network may have", n.Name, MaxRules)
	}
	r.NetworkID, r.Position = n.ID, len(list)
	if req.Position != nil {
		if *req.Position < 0 || *req.Position > len(list) {
			return nil, invalid("position", "%d is not from 0 to %d", *req.Position, len(list))
		}
		r.Position = *req.Position
	}
	r.Protocol = cmp.Or(r.Protocol, api.ProtocolAny)
	if err := s.checkRule(n, &r, nil); err != nil {
		return nil, err
	}
	w := s.begin()
	w.meta(&r.Meta)
	w.put(store.KindRules, r.ID, &r, "created", "")
	for _, o := range list[r.Position:] {
		w.reposition(o, o.Position+1)
	}
	if err := w.commit(); err != nil {
		return nil, err
	}
	return clone(&r), nil
}

// UpdateRule applies edit to a copy of the rule; a changed Position moves
// it, shifting the rules between its old and new places.
func (s *State) UpdateRule(id string, edit func(*api.Rule) error) (*api.Rule, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.rules[id]
	if !ok {
		return nil, notFound("rule", id)
	}
	r := clone(old)
	if err := edit(r); err != nil {
		return nil, err
	}
	if r.NetworkID != old.NetworkID {
		return nil, invalid("network_id", "cannot change; create the rule in the other network")
	}
	r.Meta = old.Meta
	list := s.netRules[r.NetworkID]
	if r.Position < 0 || r.Position >= len(list) {
		return nil, invalid("position", "%d is not from 0 to %d", r.Position, len(list)-1)
	}
	if err := s.checkRule(s.networks[r.NetworkID], r, old); err != nil {
		return nil, err
	}
	w := s.begin()
	w.meta(&r.Meta)
	w.put(store.KindRules, r.ID, r, "updated", "")
	switch {
	case r.Position < old.Position:
		for _, o := range list[r.Position:old.Position] {
			w.reposition(o, o.Position+1)
		}
	case r.Position > old.Position:
		for _, o := range list[old.Position+1 : r.Position+1] {
			w.reposition(o, o.Position-1)
		}
	}
	if err := w.commit(); err != nil {
		return nil, err
	}
	return clone(r), nil
}

// DeleteRule removes a rule; the rules after it move up one.
func (s *State) DeleteRule(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.rules[id]
	if !ok {
		return notFound("rule", id)
	}
	w := s.begin()
	w.del(store.KindRules, id, "")
	for _, o := range s.netRules[r.NetworkID][r.Position+1:] {
		w.reposition(o, o.Position-1)
	}
	return w.commit()
}

// reposition adds rule r at position pos to w, without an event.
func (w *write) reposition(r *api.Rule, pos int) {
	r2 := clone(r)
	r2.Position = pos
	w.meta(&r2.Meta)
	w.changes = append(w.changes, change{kind: store.KindRules, id: r2.ID, val: r2})
}

// checkRule validates what a caller sets in a rule of network n; old is
// the stored rule on update, whose selectors are not checked against the
// network again (one whose object went away may stay, matching nothing,
// while the rule moves or changes otherwise).
func (s *State) checkRule(n *api.Network, r, old *api.Rule) error {
	switch r.Action {
	case api.ActionAccept, api.ActionDrop:
	default:
		return invalid("action", "%q is not accept or drop", r.Action)
	}
	var old2 api.Rule // the zero rule keeps no selector
	if old != nil {
		old2 = *old
	}
	for _, side := range []struct {
		field      string
		list, kept []string
	}{{"from", r.From, old2.From}, {"to", r.To, old2.To}} {
		sels, err := parseSelectors(side.field, side.list)
		if err != nil {
			return err
		}
		for k, sel := range sels {
			if slices.Contains(side.kept, side.list[k]) {
				continue
			}
			if err := s.checkSelector(side.field+"["+strconv.Itoa(k)+"]", n, sel); err != nil {
				return err
			}
		}
	}
	switch r.Protocol {
	case api.ProtocolAny, api.ProtocolTCP, api.ProtocolUDP, api.ProtocolICMP:
	default:
		return invalid("protocol", "%q is not tcp, udp, icmp or any", r.Protocol)
	}
	if _, err := parsePorts("ports", r.Protocol, r.Ports); err != nil {
		return err
	}
	if len(r.Description) > maxDescriptionLen {
		return invalid("description", "is longer than %d bytes", maxDescriptionLen)
	}
	return checkPrintable("description", r.Description)
}

var portRE = regexp.MustCompile(`^([0-9]{1,5})(?:-([0-9]{1,5}))?$`)

// parsePorts parses a rule's ports ("22", "8000-8100") into ranges sorted
// by their first port, refusing ports on other protocols than tcp and udp
// and ranges that overlap.
func parsePorts(field, protocol string, list []string) ([]api.PortRange, error) {
	if len(list) == 0 {
		return nil, nil
	}
	if protocol != api.ProtocolTCP && protocol != api.ProtocolUDP {
		return nil, invalid(field, "only tcp and udp rules take ports, not %s", protocol)
	}
	if len(list) > maxPorts {
		return nil, invalid(field, "lists more than %d ports or ranges; use ranges", maxPorts)
	}
	type entry struct {
		r api.PortRange
		k int
	}
	entries := make([]entry, len(list))
	for k, p := range list {
		f := field + "[" + strconv.Itoa(k) + "]"
		m := portRE.FindStringSubmatch(p)
		if m == nil {
			return nil, invalid(f, "%q is not a port (22) or a range (8000-8100)", p)
		}
		first, _ := strconv.Atoi(m[1])
		last := first
		if m[2] != "" {
			last, _ = strconv.Atoi(m[2])
		}
		if first < 1 || last > 65535 || first > last {
			return nil, invalid(f, "%q is not a port or range within 1-65535, first <= last", p)
		}
		entries[k] = entry{api.PortRange{First: uint16(first), Last: uint16(last)}, k}
	}
	slices.SortStableFunc(entries, func(a, b entry) int { return cmp.Compare(a.r.First, b.r.First) })
	out := make([]api.PortRange, len(entries))
	for k, e := range entries {
		if k > 0 && e.r.First <= out[k-1].Last {
			prev := entries[k-1]
			return nil, invalid(field+"["+strconv.Itoa(max(e.k, prev.k))+"]", "%q overlaps %q",
				list[max(e.k, prev.k)], list[min(e.k, prev.k)])
		}
		out[k] = e.r
	}
	return out, nil
}

// sortRules rebuilds the ordered rule lists of the networks whose rules
// changed; the caller holds s.mu for writing.
func (s *State) sortRules() {
	for id := range s.rulesDirty {
		var list []*api.Rule
		for _, r := range s.rules {
			if r.NetworkID == id {
				list = append(list, r)
			}
		}
		slices.SortFunc(list, func(a, b *api.Rule) int { return cmp.Compare(a.Position, b.Position) })
		if len(list) == 0 {
			delete(s.netRules, id)
		} else {
			s.netRules[id] = list
		}
	}
	clear(s.rulesDirty)
}

// describeRule writes a rule in one line, for verdicts.
func describeRule(r *api.Rule) string {
	var b strings.Builder
	b.WriteString(r.Action + " from " + strings.Join(r.From, ",") + " to " + strings.Join(r.To, ",") + " " + r.Protocol)
	if len(r.Ports) > 0 {
		b.WriteString(" port " + strings.Join(r.Ports, ","))
	}
	return b.String()
}

package api

// Actions of access rules and of a network's default.
const (
	ActionAccept = "accept"
	ActionDrop   = "drop"
)

// Protocols an access rule matches.
const (
	ProtocolAny  = "any"
	ProtocolTCP  = "tcp"
	ProtocolUDP  = "udp"
	ProtocolICMP = "icmp" // ICMP and ICMPv6
)

// Rule is one access rule of a network's policy. Each host enforces, on
// traffic arriving through its interface of the network, the network's rules
// in Position order: the first rule whose selectors, protocol and ports match
// decides; none matching leaves the network's default action.
//
// Selectors (From and To, any one matching is enough):
//
//   - any address of the network (and its routed subnets)
//     host:NAME        the addresses of that host's interface (name or id)
//     device:NAME      the addresses of that plain WireGuard device
//     interface:ID     the addresses of that interface
//     subnets:HOST     the routed subnets of that host's interface
//     KEY=VALUE        the addresses of the interfaces of hosts with that label
//     CIDR             a prefix inside the network's ranges or a routed subnet
type Rule struct {
	Meta
	NetworkID   string   `json:"network_id"`
	Position    int      `json:"position"` // 0 is evaluated first
	Action      string   `json:"action"`
	From        []string `json:"from"`
	To          []string `json:"to"`
	Protocol    string   `json:"protocol"`        // tcp, udp, icmp or any
	Ports       []string `json:"ports,omitempty"` // "22", "8000-8100"; tcp and udp only
	Description string   `json:"description,omitempty"`
}

// RuleRequest creates a rule: a Rule whose Position is optional. Without
// one the rule goes after the network's last; with one it goes there and
// the rules from that position on move down one.
type RuleRequest struct {
	Rule
	Position *int `json:"position,omitempty"`
}

// RuleCheck asks which action a network's policy takes for one flow.
type RuleCheck struct {
	NetworkID string `json:"network_id"`
	From      string `json:"from"`           // a selector naming one host, device, interface or address
	To        string `json:"to"`             // the same
	Port      string `json:"port,omitempty"` // "5432/tcp", "53/udp", "icmp"; empty means any protocol
}

// RuleVerdict answers a RuleCheck: the action, and the rule that decided
// (empty RuleID: the network's default action).
type RuleVerdict struct {
	Action   string `json:"action"`
	RuleID   string `json:"rule_id,omitempty"`
	Position int    `json:"position,omitempty"`
	Reason   string `json:"reason"`
}

// DesiredFirewall is the compiled policy one interface enforces on traffic
// arriving through it (to the host itself, and forwarded to its routed
// subnets). Revision changes with every change of the network's policy or of
// the addresses its selectors resolve to: it is a 53-bit hash of the
// content (exact as a JavaScript number), the same on every server.
type DesiredFirewall struct {
	Revision      uint64 `json:"revision"`
	DefaultAction string `json:"default_action"`
	// Sets are named address sets (CIDRs); a host joining or leaving changes
	// their elements, not the rules. Names are stable for one selector.
	Sets  []FirewallSet  `json:"sets,omitempty"`
	Rules []FirewallRule `json:"rules,omitempty"`
	// Masquerade lists routed subnets whose traffic from the network is
	// source-NATed to the host's own address on the way out (site gateways).
	Masquerade []string `json:"masquerade,omitempty"`
}

// FirewallSet is a named set of prefixes.
type FirewallSet struct {
	Name      string   `json:"name"`
	Addresses []string `json:"addresses"`
}

// FirewallRule is a compiled rule: From and To name sets of the same
// DesiredFirewall, empty means any address.
type FirewallRule struct {
	Action   string      `json:"action"`
	From     string      `json:"from,omitempty"`
	To       string      `json:"to,omitempty"`
	Protocol string      `json:"protocol"`
	Ports    []PortRange `json:"ports,omitempty"`
}

// PortRange is an inclusive range of ports; First == Last for one port.
type PortRange struct {
	First uint16 `json:"first"`
	Last  uint16 `json:"last"`
}

// FirewallBehind reports whether an interface that must enforce revision
// want (0: none) does not, by its agent's report got.
func FirewallBehind(want uint64, got *FirewallStatus) bool {
	return want != 0 && (got == nil || !got.Enforced || got.Revision != want)
}

// FirewallStatus is what an agent reports of one interface's policy:
// the revision it enforces, or why it enforces none.
type FirewallStatus struct {
	Revision uint64 `json:"revision,omitempty"`
	Enforced bool   `json:"enforced"`
	Reason   string `json:"reason,omitempty"` // e.g. "nf_tables not available", "not supported on windows"
}

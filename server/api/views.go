package api

import "time"

// Overview is the answer of GET /api/v1/status.
type Overview struct {
	Version    string `json:"version"`
	Index      uint64 `json:"index"`
	Networks   int    `json:"networks"`
	Hosts      int    `json:"hosts"`
	HostsReady int    `json:"hosts_ready"`
	HostsDown  int    `json:"hosts_down"`
	Pending    int    `json:"hosts_pending"`
	Interfaces int    `json:"interfaces"`
	Devices    int    `json:"devices"`
	// FirewallBehind counts the interfaces whose agent does not report
	// enforcing the revision of the policy they must enforce.
	FirewallBehind int `json:"firewall_behind"`
}

// Event records one change to the desired state.
type Event struct {
	Index  uint64    `json:"index"`
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"`   // network, host, interface, connection, token, join_token
	Action string    `json:"action"` // created, updated, deleted
	ID     string    `json:"id"`
	Name   string    `json:"name,omitempty"`
	// Networks are the ids of the networks the object is in, which decide
	// the tokens that see the event.
	Networks []string `json:"networks,omitempty"`
}

// Events is the answer of GET /api/v1/events: changes after the asked index,
// oldest first, and the index to ask for next.
type Events struct {
	Index  uint64  `json:"index"`
	Events []Event `json:"events"`
}

// Topology is a summary of one network's graph:
// GET /api/v1/networks/{network}/topology. It answers the network's nodes
// (paged by ?limit= and ?offset=) with per-node peer and handshake counts,
// and only the edges asked for: ?edges=all (the default), ?edges=problems
// (stale or never handshakes) or ?edges=none, paged by ?edge_limit= and
// ?edge_offset=. With ?node=<interface id> it answers that node alone and
// its links only (a client's update of one node after an event). A
// mesh of n nodes has n(n-1)/2 edges: a client draws nodes and asks for
// the edges it shows.
type Topology struct {
	Network Network         `json:"network"`
	Index   uint64          `json:"index"` // the change index the answer reflects
	Summary TopologySummary `json:"summary"`
	Nodes   []TopologyNode  `json:"nodes"`
	Offset  int             `json:"offset"` // of the first node
	Edges   []TopologyEdge  `json:"edges"`
	// EdgesMore reports whether more edges match than were answered.
	EdgesMore bool `json:"edges_more,omitempty"`
}

// TopologySummary counts a whole network's nodes and links.
type TopologySummary struct {
	Nodes   int `json:"nodes"`
	Ready   int `json:"ready"`
	Down    int `json:"down"`
	Pending int `json:"pending"`
	Devices int `json:"devices"`
	Links   int `json:"links"` // peerings, explicit and implicit
	// Problems counts the nodes that are down or report a peer whose last
	// handshake is stale or missing.
	Problems int `json:"problems"`
	// Handshakes reported by the nodes' agents, counted once per side.
	Fresh int `json:"fresh"`
	Stale int `json:"stale"`
}

// TopologyNode is one interface of the network, with its peerings counted
// by the handshake freshness its agent reports (fresh: under 3 minutes).
type TopologyNode struct {
	InterfaceID string   `json:"interface_id"`
	HostID      string   `json:"host_id,omitempty"`
	Name        string   `json:"name"` // host name, or device name
	Device      bool     `json:"device,omitempty"`
	Addresses   []string `json:"addresses"`
	Status      string   `json:"status"` // host status; "device" for plain devices
	Peers       int      `json:"peers"`
	Fresh       int      `json:"fresh"`
	Stale       int      `json:"stale"`
	Never       int      `json:"never"` // peers without a reported handshake
}

// TopologyEdge is one connection, with the freshest handshake either side saw.
type TopologyEdge struct {
	A             string     `json:"a"` // interface ids
	B             string     `json:"b"`
	Implicit      bool       `json:"implicit,omitempty"`
	ConnectionID  string     `json:"connection_id,omitempty"`
	LastHandshake *time.Time `json:"last_handshake,omitempty"`
}

// Topology edge selections (?edges=).
const (
	EdgesAll      = "all"
	EdgesProblems = "problems" // stale or never handshakes
	EdgesNone     = "none"
)

// FreshHandshake is the age under which a handshake counts as fresh.
const FreshHandshake = 3 * time.Minute

// DeviceRequest adds a plain WireGuard device (no agent) to a network.
type DeviceRequest struct {
	Network   string `json:"network"` // name or id
	Name      string `json:"name"`
	PublicKey string `json:"public_key"`
	Address   string `json:"address,omitempty"` // optional; auto-assigned when empty
}

// CounterPoint is one minute of a peering's counters (or of a host's,
// summed over its peers), as the last status report of the minute gave
// them: GET /hosts/{host}/history, GET /connections/{id}/history.
type CounterPoint struct {
	Time time.Time `json:"time"` // the minute
	// LastHandshake is the peer's (for a host: its peers' newest).
	LastHandshake *time.Time `json:"last_handshake,omitempty"`
	RxBytes       int64      `json:"rx_bytes"`
	TxBytes       int64      `json:"tx_bytes"`
}

// HostHistory is the last hour of a host's counters, a point a minute,
// oldest first: the sums over its peers, and each peering its agent
// reports. The server keeps it in memory: after a restart it starts again.
type HostHistory struct {
	HostID string         `json:"host_id"`
	Points []CounterPoint `json:"points"`
	Peers  []PeerHistory  `json:"peers"`
}

// PeerHistory is the last hour of one peering's counters as the host's
// agent reports them: its interface, and the peer interface.
type PeerHistory struct {
	InterfaceID     string `json:"interface_id"`
	PeerInterfaceID string `json:"peer_interface_id"`
	// PeerPublicKey is the peer's current key, as the agent's peer list
	// names it.
	PeerPublicKey string         `json:"peer_public_key,omitempty"`
	Points        []CounterPoint `json:"points"`
}

// ConnectionHistory is the last hour of a connection's counters as each
// side's agent reports them: A, the a side's interface about b; B, the
// reverse (empty for a plain device, which has no agent).
type ConnectionHistory struct {
	ConnectionID string         `json:"connection_id"`
	A            []CounterPoint `json:"a"`
	B            []CounterPoint `json:"b"`
}

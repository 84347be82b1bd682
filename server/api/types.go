// Package api holds Drago's wire types and the typed HTTP client that the CLI,
// the agent and the dashboard's tests use to talk to the server. It imports no
// third-party types.
package api

import "time"

// Topology modes of a network.
const (
	TopologyNone = "none" // explicit connections only
	TopologyMesh = "mesh" // every interface peers with every other
	TopologyHub  = "hub"  // every interface peers with the hub interface
)

// Host statuses, derived by the server from heartbeats.
const (
	HostPending = "pending" // registered, no status report yet
	HostReady   = "ready"
	HostDown    = "down" // missed heartbeats
)

// Meta is carried by every stored object.
type Meta struct {
	ID          string    `json:"id"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	ModifyIndex uint64    `json:"modify_index"`
}

// Network is a WireGuard overlay with its address ranges and defaults.
type Network struct {
	Meta
	Name                string   `json:"name"`
	IPv4Range           string   `json:"ipv4_range"`
	IPv6Range           string   `json:"ipv6_range,omitempty"`
	ListenPort          int      `json:"listen_port"`
	MTU                 int      `json:"mtu"`
	DNS                 []string `json:"dns,omitempty"`
	PersistentKeepalive int      `json:"persistent_keepalive"` // seconds, 0 = off
	Topology            string   `json:"topology"`
	HubInterfaceID      string   `json:"hub_interface_id,omitempty"` // for topology "hub"
	// DefaultAction is what the network's access policy does with traffic
	// no rule matches: accept (the default) or drop.
	DefaultAction string `json:"default_action"`
}

// Host is a machine that runs the agent.
type Host struct {
	Meta
	Name             string            `json:"name"`
	Labels           map[string]string `json:"labels,omitempty"`
	AdvertiseAddress string            `json:"advertise_address,omitempty"` // host:port or host, set by admin or agent
	ObservedAddress  string            `json:"observed_address,omitempty"`  // IP the server saw the agent connect from
	OS               string            `json:"os,omitempty"`
	Arch             string            `json:"arch,omitempty"`
	AgentVersion     string            `json:"agent_version,omitempty"`
	Backend          string            `json:"backend,omitempty"`
	Status           string            `json:"status"`
	LastSeen         *time.Time        `json:"last_seen,omitempty"`
	RotateKeys       bool              `json:"rotate_keys,omitempty"` // a rotation was requested
	KeyStale         bool              `json:"key_stale,omitempty"`   // an interface key is overdue for rotation (derived)
}

// Interface is a host's membership in a network.
type Interface struct {
	Meta
	HostID        string   `json:"host_id"`
	NetworkID     string   `json:"network_id"`
	Name          string   `json:"name"`      // OS interface name
	Addresses     []string `json:"addresses"` // CIDR, e.g. 10.0.0.2/24
	ListenPort    int      `json:"listen_port"`
	MTU           int      `json:"mtu"`
	RoutedSubnets []string `json:"routed_subnets,omitempty"`
	// Masquerade source-NATs traffic from the network to RoutedSubnets on
	// this host, so that LAN hosts behind a gateway need no route back.
	Masquerade bool `json:"masquerade,omitempty"`
	// Firewall is what the host's agent last reported of the policy
	// (observed); FirewallRevision is the revision of the compiled policy
	// the interface must enforce (derived; 0: none, everything accepted).
	Firewall         *FirewallStatus `json:"firewall,omitempty"`
	FirewallRevision uint64          `json:"firewall_revision,omitempty"`
	PublicKey        string          `json:"public_key,omitempty"` // set only by the host's agent
	KeyRotatedAt     *time.Time      `json:"key_rotated_at,omitempty"`
	DeviceName       string          `json:"device_name,omitempty"` // plain WireGuard device (no agent) when set
	// NextPublicKey is the key a rotation switches to; peers know it before
	// the host switches. NextKeyIndex is the write that published it, and
	// NextKeyReady says every peer has applied it.
	NextPublicKey string `json:"next_public_key,omitempty"`
	NextKeyIndex  uint64 `json:"next_key_index,omitempty"`
	NextKeyReady  bool   `json:"next_key_ready,omitempty"`
	// KeyStale flags a key older than twice the rotation interval (derived).
	KeyStale bool `json:"key_stale,omitempty"`
	// RotationBlocked says why the interface's key cannot rotate (derived):
	// plain WireGuard devices peer with it and hold its public key in
	// their configs, so a new key would cut them off.
	RotationBlocked string `json:"rotation_blocked,omitempty"`
}

// ConnectionSide is one end of a connection.
type ConnectionSide struct {
	InterfaceID string `json:"interface_id"`
	// AllowedIPs this side accepts from the peer; empty means the peer's
	// addresses plus its routed subnets.
	AllowedIPs []string `json:"allowed_ips,omitempty"`
	// Endpoint this side dials for the peer; empty means the peer's host address.
	Endpoint string `json:"endpoint,omitempty"`
}

// Connection links two interfaces of one network.
type Connection struct {
	Meta
	NetworkID           string         `json:"network_id"`
	A                   ConnectionSide `json:"a"`
	B                   ConnectionSide `json:"b"`
	PersistentKeepalive *int           `json:"persistent_keepalive,omitempty"`
	Implicit            bool           `json:"implicit,omitempty"` // derived from the topology, not stored
}

// Policy grants access to resource kinds, optionally limited to networks.
type Policy struct {
	Resource string   `json:"resource"` // networks, hosts, interfaces, connections, rules, tokens, metrics, audit, or "*"
	Access   string   `json:"access"`   // read or write (write implies read)
	Networks []string `json:"networks,omitempty"`
}

// Token is a management token. Secret is only set in the creation response.
type Token struct {
	Meta
	Name     string   `json:"name"`
	Policies []Policy `json:"policies"`
	Root     bool     `json:"root,omitempty"`
	Secret   string   `json:"secret,omitempty"`
}

// JoinToken lets agents register. Secret is only set in the creation response.
type JoinToken struct {
	Meta
	Name string `json:"name"`
	// ExpiresAt ends the token; a token without it, without NeverExpires
	// and without MaxUses expires DefaultJoinTokenTTL (24 h) after creation.
	ExpiresAt    *time.Time        `json:"expires_at,omitempty"`
	NeverExpires bool              `json:"never_expires,omitempty"`
	MaxUses      int               `json:"max_uses,omitempty"` // 0 = unlimited
	Uses         int               `json:"uses"`
	Labels       map[string]string `json:"labels,omitempty"`
	Networks     []string          `json:"networks,omitempty"` // ids of networks to auto-join
	// NamePattern limits the host names agents may register with this
	// token (a shell pattern such as "web-*"); empty allows any free name.
	NamePattern string `json:"name_pattern,omitempty"`
	Secret      string `json:"secret,omitempty"`
}

// List is a page of objects: Items start at Offset of Total matching ones.
type List[T any] struct {
	Items  []T `json:"items"`
	Offset int `json:"offset"`
	Total  int `json:"total"`
}

// Error is the body of every failed request.
type Error struct {
	Err ErrorDetail `json:"error"`
}

// ErrorDetail says what failed and which field was at fault.
type ErrorDetail struct {
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// Health is the answer of GET /api/v1/health.
type Health struct {
	Status  string `json:"status"`
	Version string `json:"version"`
}

// ObjectID returns the object's id (the object an audit entry names).
func (m Meta) ObjectID() string { return m.ID }

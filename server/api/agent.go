package api

import "time"

// RegisterRequest is sent by an agent with a join token as bearer credential.
type RegisterRequest struct {
	Name             string            `json:"name"`
	Labels           map[string]string `json:"labels,omitempty"`
	AdvertiseAddress string            `json:"advertise_address,omitempty"`
	OS               string            `json:"os,omitempty"`
	Arch             string            `json:"arch,omitempty"`
	AgentVersion     string            `json:"agent_version,omitempty"`
	// RequestID makes retries idempotent: a random secret (16-128 letters,
	// digits, '_' or '-') the agent generates once per registration and
	// sends again on every retry. A retry naming the host this request
	// created, with the same join token, before the host's first status
	// report, gets the same host id and a new credential.
	RequestID string `json:"request_id,omitempty"`
}

// RegisterResponse carries the host credential, shown only once.
type RegisterResponse struct {
	HostID     string `json:"host_id"`
	Credential string `json:"credential"`
}

// DesiredState is what one host must configure. Index orders versions: the
// agent passes it back as ?index= to wait for the next change.
//
// An agent that asks with ?delta=true may get a delta instead: BaseIndex is
// the index it passed, Patches change the peers of that state, and every
// other field is as in that state (Interfaces is empty). A delta without
// patches means nothing changed.
type DesiredState struct {
	Index      uint64             `json:"index"`
	HostID     string             `json:"host_id"`
	BaseIndex  uint64             `json:"base_index,omitempty"`
	Patches    []PeerPatch        `json:"patches,omitempty"`
	RotateKeys bool               `json:"rotate_keys,omitempty"`
	Interfaces []DesiredInterface `json:"interfaces"`
}

// PeerPatch changes one interface of a delta's base state: the entries of
// every peer interface named in Remove or in Peers go, then Peers are
// added; a Firewall replaces the interface's firewall. Its Sets hold only
// the sets that changed since the base state: the others its rules name
// are as in the base's firewall (Patched takes them from there). A
// firewall that goes away is sent as a whole state, never as a patch.
type PeerPatch struct {
	InterfaceID string           `json:"interface_id"`
	Remove      []string         `json:"remove,omitempty"` // peer interface ids
	Peers       []DesiredPeer    `json:"peers,omitempty"`
	Firewall    *DesiredFirewall `json:"firewall,omitempty"`
}

// DesiredInterface is one WireGuard interface on the host.
type DesiredInterface struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	NetworkID  string   `json:"network_id"`
	Addresses  []string `json:"addresses"`
	ListenPort int      `json:"listen_port"`
	MTU        int      `json:"mtu"`
	PublicKey  string   `json:"public_key,omitempty"` // what the server knows
	// NextPublicKey echoes the rotation key the agent published; SwitchKey
	// says every peer knows it, so the agent may switch to it now.
	NextPublicKey string        `json:"next_public_key,omitempty"`
	SwitchKey     bool          `json:"switch_key,omitempty"`
	Peers         []DesiredPeer `json:"peers"`
	// Firewall is the access policy to enforce on traffic arriving through
	// the interface; nil means none (accept everything, no table).
	Firewall *DesiredFirewall `json:"firewall,omitempty"`
}

// DesiredPeer is one peer of an interface. During a peer's key rotation its
// interface appears twice: under the current key with its allowed IPs, and
// under the next key with none, so the handshake with the next key succeeds
// the moment the peer switches.
type DesiredPeer struct {
	InterfaceID         string   `json:"interface_id"`
	PublicKey           string   `json:"public_key"`
	Endpoint            string   `json:"endpoint,omitempty"`
	AllowedIPs          []string `json:"allowed_ips"`
	PersistentKeepalive int      `json:"persistent_keepalive,omitempty"`
	// Device names the plain WireGuard device (no agent) this peer is: it
	// holds the interface's public key in a static config, so the agent
	// does not rotate that key.
	Device string `json:"device,omitempty"`
}

// StatusReport is sent by the agent on change and as a heartbeat.
//
// Seq numbers an agent's reports. A report with PeersSince set lists, for
// each interface, only the peers whose status changed since report
// PeersSince (the last one the server accepted) and the keys of those gone;
// the server answers 409 on field peers_since when it does not hold that
// report, and the agent sends a whole one.
type StatusReport struct {
	Seq              uint64            `json:"seq,omitempty"`
	PeersSince       uint64            `json:"peers_since,omitempty"`
	Backend          string            `json:"backend,omitempty"`
	AdvertiseAddress string            `json:"advertise_address,omitempty"`
	AgentVersion     string            `json:"agent_version,omitempty"`
	OS               string            `json:"os,omitempty"`
	Arch             string            `json:"arch,omitempty"`
	AppliedIndex     uint64            `json:"applied_index"`
	Interfaces       []InterfaceStatus `json:"interfaces"`
}

// InterfaceStatus is the observed state of one interface.
type InterfaceStatus struct {
	ID            string       `json:"id"`
	PublicKey     string       `json:"public_key"`
	NextPublicKey string       `json:"next_public_key,omitempty"` // a rotation in progress
	ListenPort    int          `json:"listen_port"`
	Peers         []PeerStatus `json:"peers,omitempty"`
	RemovedPeers  []string     `json:"removed_peers,omitempty"` // public keys, in a report with PeersSince
	// Firewall says whether the agent enforces the interface's policy. A
	// report with PeersSince that leaves it out keeps the last one sent.
	Firewall *FirewallStatus `json:"firewall,omitempty"`
}

// PeerStatus is the observed state of one peer.
type PeerStatus struct {
	PublicKey     string     `json:"public_key"`
	Endpoint      string     `json:"endpoint,omitempty"`
	LastHandshake *time.Time `json:"last_handshake,omitempty"`
	RxBytes       int64      `json:"rx_bytes"`
	TxBytes       int64      `json:"tx_bytes"`
}

// ObjectID returns the id of the host registered.
func (r RegisterResponse) ObjectID() string { return r.HostID }

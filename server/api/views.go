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

// Topology is the graph of one network: GET /api/v1/networks/{network}/topology.
type Topology struct {
	Network Network        `json:"network"`
	Nodes   []TopologyNode `json:"nodes"`
	Edges   []TopologyEdge `json:"edges"`
}

// TopologyNode is one interface of the network.
type TopologyNode struct {
	InterfaceID string   `json:"interface_id"`
	HostID      string   `json:"host_id,omitempty"`
	Name        string   `json:"name"` // host name, or device name
	Device      bool     `json:"device,omitempty"`
	Addresses   []string `json:"addresses"`
	Status      string   `json:"status"` // host status; "device" for plain devices
}

// TopologyEdge is one connection, with the freshest handshake either side saw.
type TopologyEdge struct {
	A             string     `json:"a"` // interface ids
	B             string     `json:"b"`
	Implicit      bool       `json:"implicit,omitempty"`
	ConnectionID  string     `json:"connection_id,omitempty"`
	LastHandshake *time.Time `json:"last_handshake,omitempty"`
}

// DeviceRequest adds a plain WireGuard device (no agent) to a network.
type DeviceRequest struct {
	Network   string `json:"network"` // name or id
	Name      string `json:"name"`
	PublicKey string `json:"public_key"`
	Address   string `json:"address,omitempty"` // optional; auto-assigned when empty
}

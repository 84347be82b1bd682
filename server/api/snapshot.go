package api

import "time"

// Snapshot is every object a server stores, read in one transaction: what
// `drago operator snapshot save` writes and `restore` reads back, on any
// store (how a bbolt installation moves to etcd and back).
type Snapshot struct {
	// Version is the store's schema version.
	Version uint64 `json:"version"`
	// Index is the modify index of the snapshot.
	Index uint64 `json:"index"`
	// Objects are the stored objects by kind, then id.
	Objects map[string]map[string]any `json:"objects"`
}

// SnapshotRestored answers a restore: the new modify index and the number
// of objects restored.
type SnapshotRestored struct {
	Index   uint64 `json:"index"`
	Objects int    `json:"objects"`
}

// Cluster describes the servers sharing a store, as the answering server
// sees them.
type Cluster struct {
	// Store is the store type: bolt (one server) or etcd.
	Store string `json:"store"`
	// Healthy reports whether the answering server is up to date with its
	// store; a server that is not refuses every other request.
	Healthy bool `json:"healthy"`
	// Server is the id of the answering server.
	Server string `json:"server"`
	// Leader is the id of the server that runs the cluster's jobs.
	Leader string `json:"leader"`
	// Servers are the running servers.
	Servers []ClusterServer `json:"servers"`
}

// ClusterServer is one running server of a cluster.
type ClusterServer struct {
	ID      string    `json:"id"`
	Addr    string    `json:"addr"`
	Started time.Time `json:"started"`
	Leader  bool      `json:"leader,omitempty"`
}

package api

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

// Package store persists Drago's desired state. A Store is a transactional
// key-value store of JSON-encoded objects grouped by kind, with a bbolt
// implementation for one server, an etcd one shared by several servers, and
// an in-memory one for tests; one test suite runs against all three.
package store

import "errors"

// Kinds of stored objects. Each is a bucket in bbolt.
const (
	KindNetworks    = "networks"
	KindHosts       = "hosts"
	KindInterfaces  = "interfaces"
	KindConnections = "connections"
	KindTokens      = "tokens"
	KindJoinTokens  = "join_tokens"
	KindCredentials = "credentials" // host credentials: hash -> host id
	KindRules       = "rules"       // access rules of networks' policies
	KindAudit       = "audit"       // the audit trail of management writes
)

// Kinds lists every kind in a fixed order.
var Kinds = []string{KindNetworks, KindHosts, KindInterfaces, KindConnections,
	KindTokens, KindJoinTokens, KindCredentials, KindRules, KindAudit}

// SchemaVersion is the version of the stored layout written in the meta
// bucket: 1 added the meta bucket, 2 dropped the never-used "keys" bucket,
// 3 added the rules and audit buckets.
const SchemaVersion = 3

// ErrNotFound is returned by Tx.Get for a missing key.
var ErrNotFound = errors.New("not found")

// ErrLocked is returned by Open when another process holds the data dir.
var ErrLocked = errors.New("data dir is locked: is another drago using this data_dir?")

// Store is a transactional store. Writers are serialized.
type Store interface {
	// View runs fn in a read-only transaction.
	View(fn func(Tx) error) error
	// Update runs fn in a read-write transaction; an error from fn rolls back
	// every change made in it. fn may run more than once (the etcd store
	// reruns it when another server wrote what it read), so it must not act
	// outside the transaction.
	Update(fn func(Tx) error) error
	Close() error
}

// Sizer is a Store with a file whose size it reports (bbolt).
type Sizer interface {
	Size() (int64, error)
}

// Tx reads and writes objects of one transaction. Values passed to Put are
// encoded as JSON; values read are decoded inside the transaction.
type Tx interface {
	// Get decodes the object kind/id into v, or returns ErrNotFound.
	Get(kind, id string, v any) error
	// Put stores v under kind/id.
	Put(kind, id string, v any) error
	// Delete removes kind/id; deleting a missing key is not an error.
	Delete(kind, id string) error
	// ForEach calls fn with each raw JSON value of kind in key order. raw is
	// a copy fn may keep, and fn may Put or Delete objects of kind.
	ForEach(kind string, fn func(id string, raw []byte) error) error
	// Index returns the last committed modify index, or the one set by
	// SetIndex earlier in the same transaction.
	Index() uint64
	// SetIndex records the modify index; Update callers set it once per write.
	SetIndex(i uint64) error
}

package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// DefaultLockTimeout is how long OpenBolt waits for the file lock when
// BoltOptions.Timeout is zero.
const DefaultLockTimeout = 2 * time.Second

// BoltOptions configures OpenBolt.
type BoltOptions struct {
	// Timeout bounds the wait for the file lock; zero means DefaultLockTimeout.
	Timeout time.Duration
	// NoSync skips fsync on commit. Only for tests and benchmarks: a crash
	// may lose or corrupt committed data.
	NoSync bool
}

var (
	metaBucket = []byte(metaKind)
	versionKey = []byte("version")
	indexKey   = []byte("index")
)

// migrations upgrades a file from schema version v to v+1, in the same
// transaction that records v+1. Every version below SchemaVersion needs one.
var migrations = map[uint64]func(tx *bolt.Tx) error{
	0: createBuckets, // version 0: data buckets may be missing, no meta
	1: dropKeys,      // version 1: an unused "keys" bucket
	2: createBuckets, // version 2: no rules or audit bucket
}

// dropKeys deletes the "keys" bucket that schema 1 created and nothing used.
func dropKeys(tx *bolt.Tx) error {
	if err := tx.DeleteBucket([]byte("keys")); err != nil && !errors.Is(err, berrors.ErrBucketNotFound) {
		return fmt.Errorf("deleting bucket keys: %w", err)
	}
	return nil
}

// createBuckets creates every missing kind bucket and the meta bucket.
func createBuckets(tx *bolt.Tx) error {
	for _, name := range append([]string{metaKind}, Kinds...) {
		if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
			return fmt.Errorf("creating bucket %s: %w", name, err)
		}
	}
	return nil
}

type boltStore struct {
	db   *bolt.DB
	path string
}

var _ Store = (*boltStore)(nil)

// OpenBolt opens or creates the bbolt file at path (mode 0600, parent
// directory created 0700), and creates or migrates its schema. It fails with
// an error wrapping ErrLocked if another process holds the file for longer
// than opts.Timeout, and refuses a file written by a newer schema version.
func OpenBolt(path string, opts BoltOptions) (Store, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultLockTimeout
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("opening store %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.Timeout, NoSync: opts.NoSync})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("opening store %s: no file lock after %s: %w", path, opts.Timeout, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("opening store %s: %w", path, err)
	}
	if err := db.Update(initSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening store %s: %w", path, err)
	}
	return &boltStore{db: db, path: path}, nil
}

// initSchema lays out a new file at SchemaVersion, or migrates an older one.
// It runs in one transaction, so a failed migration leaves the file as it was.
func initSchema(tx *bolt.Tx) error {
	meta := tx.Bucket(metaBucket)
	if first, _ := tx.Cursor().First(); meta == nil && first == nil {
		if err := createBuckets(tx); err != nil {
			return err
		}
		return putUint64(tx.Bucket(metaBucket), versionKey, SchemaVersion)
	}
	var v uint64 // a file without a meta bucket or version is version 0
	if meta != nil {
		var err error
		if v, err = getUint64(meta, versionKey); err != nil {
			return fmt.Errorf("reading schema version: %w", err)
		}
	}
	if v > SchemaVersion {
		return fmt.Errorf("schema version %d is newer than this drago supports (%d): upgrade drago or restore a backup", v, SchemaVersion)
	}
	for ; v < SchemaVersion; v++ {
		migrate, ok := migrations[v]
		if !ok {
			return fmt.Errorf("no migration from schema version %d", v)
		}
		if err := migrate(tx); err != nil {
			return fmt.Errorf("migrating schema version %d to %d: %w", v, v+1, err)
		}
		meta, err := tx.CreateBucketIfNotExists(metaBucket)
		if err != nil {
			return fmt.Errorf("migrating schema version %d to %d: %w", v, v+1, err)
		}
		if err := putUint64(meta, versionKey, v+1); err != nil {
			return fmt.Errorf("migrating schema version %d to %d: %w", v, v+1, err)
		}
	}
	for _, kind := range append([]string{metaKind}, Kinds...) {
		if tx.Bucket([]byte(kind)) == nil {
			return fmt.Errorf("schema version %d file has no %s bucket", v, kind)
		}
	}
	if _, err := getUint64(tx.Bucket(metaBucket), indexKey); err != nil {
		return fmt.Errorf("reading modify index: %w", err)
	}
	return nil
}

// getUint64 reads a big-endian uint64; a missing key reads as 0.
func getUint64(b *bolt.Bucket, key []byte) (uint64, error) {
	raw := b.Get(key)
	switch len(raw) {
	case 0:
		return 0, nil
	case 8:
		return binary.BigEndian.Uint64(raw), nil
	}
	return 0, fmt.Errorf("meta/%s is %d bytes, want 8", key, len(raw))
}

func putUint64(b *bolt.Bucket, key []byte, v uint64) error {
	return b.Put(key, binary.BigEndian.AppendUint64(nil, v))
}

func (s *boltStore) View(fn func(Tx) error) error {
	return s.mapErr(s.db.View(func(tx *bolt.Tx) error { return fn(boltTx{tx}) }))
}

func (s *boltStore) Update(fn func(Tx) error) error {
	return s.mapErr(s.db.Update(func(tx *bolt.Tx) error { return fn(boltTx{tx}) }))
}

func (s *boltStore) mapErr(err error) error {
	if errors.Is(err, berrors.ErrDatabaseNotOpen) {
		return errClosed
	}
	return err
}

// Size reports the database file's size in bytes (for metrics).
func (s *boltStore) Size() (int64, error) {
	fi, err := os.Stat(s.path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func (s *boltStore) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("closing store %s: %w", s.path, err)
	}
	return nil
}

type boltTx struct{ tx *bolt.Tx }

var _ Tx = boltTx{}

// bucket returns the bucket of kind; initSchema guarantees every kind has one.
func (t boltTx) bucket(kind string) *bolt.Bucket { return t.tx.Bucket([]byte(kind)) }

func (t boltTx) Get(kind, id string, v any) error {
	if err := checkKey(kind, id); err != nil {
		return fmt.Errorf("getting %s/%s: %w", kind, id, err)
	}
	raw := t.bucket(kind).Get([]byte(id))
	if raw == nil {
		return fmt.Errorf("getting %s/%s: %w", kind, id, ErrNotFound)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("getting %s/%s: decoding: %w", kind, id, err)
	}
	return nil
}

func (t boltTx) Put(kind, id string, v any) error {
	if err := t.checkWrite(kind, id); err != nil {
		return fmt.Errorf("putting %s/%s: %w", kind, id, err)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("putting %s/%s: encoding: %w", kind, id, err)
	}
	if err := t.bucket(kind).Put([]byte(id), raw); err != nil {
		return fmt.Errorf("putting %s/%s: %w", kind, id, err)
	}
	return nil
}

func (t boltTx) Delete(kind, id string) error {
	if err := t.checkWrite(kind, id); err != nil {
		return fmt.Errorf("deleting %s/%s: %w", kind, id, err)
	}
	if err := t.bucket(kind).Delete([]byte(id)); err != nil {
		return fmt.Errorf("deleting %s/%s: %w", kind, id, err)
	}
	return nil
}

func (t boltTx) checkWrite(kind, id string) error {
	if !t.tx.Writable() {
		return errReadOnly
	}
	return checkKey(kind, id)
}

// ForEach copies the bucket's pairs before calling fn, so fn may keep raw
// and may write to the same kind, as with the mem store.
func (t boltTx) ForEach(kind string, fn func(id string, raw []byte) error) error {
	if err := checkKind(kind); err != nil {
		return fmt.Errorf("listing %s: %w", kind, err)
	}
	type pair struct {
		id  string
		raw []byte
	}
	var pairs []pair
	c := t.bucket(kind).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		pairs = append(pairs, pair{string(k), bytes.Clone(v)})
	}
	for _, p := range pairs {
		if err := fn(p.id, p.raw); err != nil {
			return err
		}
	}
	return nil
}

func (t boltTx) Index() uint64 {
	i, _ := getUint64(t.bucket(metaKind), indexKey) // validated by initSchema and SetIndex
	return i
}

func (t boltTx) SetIndex(i uint64) error {
	if !t.tx.Writable() {
		return fmt.Errorf("setting index: %w", errReadOnly)
	}
	if err := putUint64(t.bucket(metaKind), indexKey, i); err != nil {
		return fmt.Errorf("setting index: %w", err)
	}
	return nil
}

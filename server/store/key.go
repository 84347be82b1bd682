package store

import (
	"errors"
	"fmt"
)

// maxKeySize is the longest id either implementation accepts; it is bbolt's
// limit, enforced in the mem store too so both behave alike.
const maxKeySize = 32768

// metaKind names the bucket holding the schema version and modify index. It
// is not a kind: Get, Put, Delete and ForEach refuse it.
const metaKind = "meta"

var (
	errReadOnly = errors.New("read-only transaction")
	errClosed   = errors.New("store is closed")
)

var knownKinds = func() map[string]bool {
	m := make(map[string]bool, len(Kinds))
	for _, k := range Kinds {
		m[k] = true
	}
	return m
}()

// checkKind returns an error unless kind is one of Kinds.
func checkKind(kind string) error {
	if !knownKinds[kind] {
		return fmt.Errorf("unknown kind %q", kind)
	}
	return nil
}

// checkKey returns an error unless kind is known and id is a storable key.
func checkKey(kind, id string) error {
	if err := checkKind(kind); err != nil {
		return err
	}
	switch {
	case id == "":
		return errors.New("empty id")
	case len(id) > maxKeySize:
		return fmt.Errorf("id is %d bytes, longer than %d", len(id), maxKeySize)
	}
	return nil
}

package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// keyStore keeps each interface's WireGuard private key in keys/<id>.json,
// mode 0600, generated on this host and never sent anywhere.
//
// A file holds the key in use and room for the next one, so that key
// rotation can stage a new key, publish its public half, and promote it with
// one atomic file replacement (see rotation.go). Every write is synced
// before it returns.
//
// The agent is the files' only writer: each is read once, then served from
// memory with its public keys, which reconciles, rotations and status
// reports all need.
type keyStore struct {
	dir   string
	cache map[string]keyPair // interface id -> its keys as stored
}

// keyFile is the content of keys/<id>.json. Keys are base64, as wg(8) prints.
type keyFile struct {
	PrivateKey string `json:"private_key"`
	// ActivatedAt is when PrivateKey was generated, or became the key in
	// use by a rotation; the rotation schedule counts from it. Files written
	// before rotation existed lack it: the file's modification time, which
	// only the key's creation set, stands in.
	ActivatedAt time.Time `json:"activated_at,omitzero"`
	// NextPrivateKey is a staged key for rotation; empty when none.
	NextPrivateKey string `json:"next_private_key,omitempty"`
	// NextCreatedAt is when NextPrivateKey was generated.
	NextCreatedAt time.Time `json:"next_created_at,omitzero"`
}

// keyPair is an interface's keys as stored. It holds private keys: it stays
// in memory and is never logged.
type keyPair struct {
	Current     wgtypes.Key
	ActivatedAt time.Time
	Next        wgtypes.Key // the staged key; zero when none
	NextCreated time.Time

	// The public halves, set by the keyStore.
	CurrentPublic, NextPublic wgtypes.Key
}

// staged reports whether a next key waits to be switched to.
func (k keyPair) staged() bool { return k.Next != wgtypes.Key{} }

// validID matches interface ids that are safe as file names.
var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

func (s *keyStore) path(id string) (string, error) {
	if !validID.MatchString(id) {
		return "", fmt.Errorf("interface id %q: want letters, digits, '_', '.', '-'", id)
	}
	return filepath.Join(s.dir, id+".json"), nil
}

// get returns the private key in use; errors.Is(err, fs.ErrNotExist) when
// none is stored.
func (s *keyStore) get(id string) (wgtypes.Key, error) {
	k, err := s.load(id)
	return k.Current, err
}

// load returns the interface's keys; errors.Is(err, fs.ErrNotExist) when
// none is stored.
func (s *keyStore) load(id string) (keyPair, error) {
	if k, ok := s.cache[id]; ok {
		return k, nil
	}
	p, err := s.path(id)
	if err != nil {
		return keyPair{}, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return keyPair{}, fmt.Errorf("reading key of interface %s: %w", id, err)
	}
	var kf keyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return keyPair{}, fmt.Errorf("key file of interface %s is corrupt: %w", id, err)
	}
	// The parse errors below do not echo the key.
	k := keyPair{ActivatedAt: kf.ActivatedAt, NextCreated: kf.NextCreatedAt}
	if k.Current, err = wgtypes.ParseKey(kf.PrivateKey); err != nil {
		return keyPair{}, fmt.Errorf("key file of interface %s holds no valid key", id)
	}
	if kf.NextPrivateKey != "" {
		if k.Next, err = wgtypes.ParseKey(kf.NextPrivateKey); err != nil {
			return keyPair{}, fmt.Errorf("key file of interface %s holds an invalid next key", id)
		}
	}
	if k.ActivatedAt.IsZero() {
		if fi, err := os.Stat(p); err == nil {
			k.ActivatedAt = fi.ModTime()
		}
	}
	return s.remember(id, k), nil
}

// remember caches k, with its public keys, as the keys of interface id.
func (s *keyStore) remember(id string, k keyPair) keyPair {
	k.CurrentPublic, k.NextPublic = k.Current.PublicKey(), wgtypes.Key{}
	if k.staged() {
		k.NextPublic = k.Next.PublicKey()
	}
	if s.cache == nil {
		s.cache = make(map[string]keyPair)
	}
	s.cache[id] = k
	return k
}

// save replaces the interface's key file with k and returns k as stored.
func (s *keyStore) save(id string, k keyPair) (keyPair, error) {
	p, err := s.path(id)
	if err != nil {
		return keyPair{}, err
	}
	kf := keyFile{PrivateKey: k.Current.String(), ActivatedAt: k.ActivatedAt.UTC()}
	if k.staged() {
		kf.NextPrivateKey, kf.NextCreatedAt = k.Next.String(), k.NextCreated.UTC()
	}
	b, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		return keyPair{}, err
	}
	delete(s.cache, id) // a failed write may have replaced the file or not
	if err := writeFileAtomic(p, append(b, '\n'), secretFileMode); err != nil {
		return keyPair{}, fmt.Errorf("storing key of interface %s: %w", id, err)
	}
	return s.remember(id, k), nil
}

// getOrCreate returns the interface's private key, generating and storing a
// new one the first time; created reports whether it did.
func (s *keyStore) getOrCreate(id string) (k wgtypes.Key, created bool, err error) {
	k, err = s.get(id)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, false, err
	}
	k, err = wgtypes.GeneratePrivateKey()
	if err != nil {
		return wgtypes.Key{}, false, fmt.Errorf("generating key: %w", err)
	}
	if _, err := s.save(id, keyPair{Current: k, ActivatedAt: time.Now()}); err != nil {
		return wgtypes.Key{}, false, err
	}
	return k, true, nil
}

// stage generates the interface's next key and stores it beside the current
// one, synced, so that it survives a crash before it is announced. It
// returns the keys as stored; a key already staged is kept.
func (s *keyStore) stage(id string, now time.Time) (keyPair, error) {
	k, err := s.load(id)
	if err != nil || k.staged() {
		return k, err
	}
	if k.Next, err = wgtypes.GeneratePrivateKey(); err != nil {
		return keyPair{}, fmt.Errorf("generating key: %w", err)
	}
	k.NextCreated = now
	return s.save(id, k)
}

// unstage drops the staged key, keeping the one in use, and returns the
// keys as stored.
func (s *keyStore) unstage(id string) (keyPair, error) {
	k, err := s.load(id)
	if err != nil || !k.staged() {
		return k, err
	}
	return s.save(id, keyPair{Current: k.Current, ActivatedAt: k.ActivatedAt})
}

// promote makes the staged key the one in use, activated at now, and drops
// the old one, in one synced replacement of the file. It returns the keys
// as stored.
func (s *keyStore) promote(id string, now time.Time) (keyPair, error) {
	k, err := s.load(id)
	if err != nil {
		return keyPair{}, err
	}
	if !k.staged() {
		return keyPair{}, fmt.Errorf("interface %s has no staged key to switch to", id)
	}
	return s.save(id, keyPair{Current: k.Next, ActivatedAt: now})
}

// remove deletes the interface's keys; a missing file is not an error.
func (s *keyStore) remove(id string) error {
	p, err := s.path(id)
	if err != nil {
		return err
	}
	delete(s.cache, id)
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing key of interface %s: %w", id, err)
	}
	return nil
}

// list returns the ids of the interfaces that have stored keys.
func (s *keyStore) list() ([]string, error) {
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("listing keys: %w", err)
	}
	var ids []string
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if ok && e.Type().IsRegular() && validID.MatchString(id) {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

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

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// keyStore keeps each interface's WireGuard private key in keys/<id>.json,
// mode 0600, generated on this host and never sent anywhere.
//
// A file holds the key in use and room for the next one, so that key
// rotation can stage a new key, publish its public half, and promote it with
// one atomic file replacement.
type keyStore struct {
	dir string
}

// keyFile is the content of keys/<id>.json. Keys are base64, as wg(8) prints.
type keyFile struct {
	PrivateKey string `json:"private_key"`
	// NextPrivateKey is a staged key for rotation; empty when none.
	NextPrivateKey string `json:"next_private_key,omitempty"`
}

// validID matches interface ids that are safe as file names.
var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

func (s *keyStore) path(id string) (string, error) {
	if !validID.MatchString(id) {
		return "", fmt.Errorf("interface id %q: want letters, digits, '_', '.', '-'", id)
	}
	return filepath.Join(s.dir, id+".json"), nil
}

// get returns the interface's private key; errors.Is(err, fs.ErrNotExist)
// when none is stored.
func (s *keyStore) get(id string) (wgtypes.Key, error) {
	p, err := s.path(id)
	if err != nil {
		return wgtypes.Key{}, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return wgtypes.Key{}, fmt.Errorf("reading key of interface %s: %w", id, err)
	}
	var kf keyFile
	if err := json.Unmarshal(b, &kf); err != nil {
		return wgtypes.Key{}, fmt.Errorf("key file of interface %s is corrupt: %w", id, err)
	}
	k, err := wgtypes.ParseKey(kf.PrivateKey)
	if err != nil {
		// The parse error does not echo the key.
		return wgtypes.Key{}, fmt.Errorf("key file of interface %s holds no valid key", id)
	}
	return k, nil
}

// getOrCreate returns the interface's private key, generating and storing a
// new one the first time; created reports whether it did.
func (s *keyStore) getOrCreate(id string) (k wgtypes.Key, created bool, err error) {
	k, err = s.get(id)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, false, err
	}
	p, err := s.path(id)
	if err != nil {
		return wgtypes.Key{}, false, err
	}
	k, err = wgtypes.GeneratePrivateKey()
	if err != nil {
		return wgtypes.Key{}, false, fmt.Errorf("generating key: %w", err)
	}
	b, err := json.Marshal(keyFile{PrivateKey: k.String()})
	if err != nil {
		return wgtypes.Key{}, false, err
	}
	if err := writeFileAtomic(p, append(b, '\n'), secretFileMode); err != nil {
		return wgtypes.Key{}, false, fmt.Errorf("storing key of interface %s: %w", id, err)
	}
	return k, true, nil
}

// remove deletes the interface's keys; a missing file is not an error.
func (s *keyStore) remove(id string) error {
	p, err := s.path(id)
	if err != nil {
		return err
	}
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

package agent

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/drago-wg/drago/server/api"
)

// Layout of the agent's folder inside Config.DataDir. The folders are 0700
// and every file 0600; each file is replaced atomically (temp file, fsync,
// rename, fsync of the folder), so a crash leaves the old or the new version.
//
//	<DataDir>/agent/
//	  identity.json       host id and host credential from registration
//	  register-request    request id of a registration in progress; ignored
//	                      once identity.json exists
//	  desired.json        last desired state received from the server
//	  owned.json          interfaces this agent created: name -> interface id
//	  keys/<id>.json      WireGuard private key(s) of interface <id>
const (
	agentDirName    = "agent"
	identityFile    = "identity.json"
	registerFile    = "register-request"
	desiredFile     = "desired.json"
	ownedFile       = "owned.json"
	keysDirName     = "keys"
	dirMode         = 0o700
	secretFileMode  = 0o600
	tempFilePattern = ".tmp-*"
)

// dataDir is the agent's folder; its methods read and write the files above.
type dataDir struct {
	path string
}

// openDataDir creates <root>/agent and <root>/agent/keys with mode 0700,
// tightening the mode of folders that already exist.
func openDataDir(root string) (*dataDir, error) {
	d := &dataDir{path: filepath.Join(root, agentDirName)}
	for _, p := range []string{d.path, d.keysDir()} {
		if err := os.MkdirAll(p, dirMode); err != nil {
			return nil, fmt.Errorf("creating data dir: %w", err)
		}
		if err := os.Chmod(p, dirMode); err != nil {
			return nil, fmt.Errorf("setting data dir mode: %w", err)
		}
		// Temp files a crash left behind.
		stale, _ := filepath.Glob(filepath.Join(p, "."+"*"+tempFilePattern))
		for _, f := range stale {
			os.Remove(f)
		}
	}
	return d, nil
}

func (d *dataDir) keysDir() string { return filepath.Join(d.path, keysDirName) }

// identity is what registration returned. Credential is a secret.
type identity struct {
	HostID     string `json:"host_id"`
	Credential string `json:"credential"`
	Server     string `json:"server"` // address registered with, for diagnostics
}

// loadIdentity returns the stored identity, or nil when the host has not
// registered yet.
func (d *dataDir) loadIdentity() (*identity, error) {
	var id identity
	ok, err := d.readJSON(identityFile, &id)
	if err != nil || !ok {
		return nil, err
	}
	if id.HostID == "" || id.Credential == "" {
		return nil, fmt.Errorf("%s: host id or credential missing; remove the file to register again", d.file(identityFile))
	}
	return &id, nil
}

func (d *dataDir) saveIdentity(id *identity) error {
	return d.writeJSON(identityFile, id)
}

// registerRequestID returns the request id of the registration in progress:
// the one an earlier attempt saved, so that the retries of an agent
// restarted mid-registration stay idempotent, or a new random one, saved
// before it is first sent. It is a secret, like the credential it obtains.
func (d *dataDir) registerRequestID() (string, error) {
	b, err := os.ReadFile(d.file(registerFile))
	switch {
	case err == nil:
		id := strings.TrimSpace(string(b))
		if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
			return "", fmt.Errorf("%s: not a request id; remove the file to register with a new one", d.file(registerFile))
		}
		return id, nil
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("reading %s: %w", registerFile, err)
	}
	r := make([]byte, 16)
	if _, err := rand.Read(r); err != nil {
		return "", fmt.Errorf("creating the register request id: %w", err)
	}
	id := hex.EncodeToString(r)
	if err := writeFileAtomic(d.file(registerFile), []byte(id+"\n"), secretFileMode); err != nil {
		return "", fmt.Errorf("writing %s: %w", registerFile, err)
	}
	return id, nil
}

// removeRegisterRequest drops the request id once the identity is saved.
func (d *dataDir) removeRegisterRequest() error {
	if err := os.Remove(d.file(registerFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// loadDesired returns the last desired state saved, or nil when none was.
func (d *dataDir) loadDesired() (*api.DesiredState, error) {
	var ds api.DesiredState
	ok, err := d.readJSON(desiredFile, &ds)
	if err != nil || !ok {
		return nil, err
	}
	return &ds, nil
}

// saveDesired writes ds compact: a state with many peers runs to hundreds
// of KB, which json.MarshalIndent takes several times as long to encode.
// loadDesired reads indented files of earlier versions as well.
func (d *dataDir) saveDesired(ds *api.DesiredState) error {
	return d.writeEncoded(desiredFile, ds, json.Marshal)
}

// ownedSet maps the name of each interface the agent created to its
// interface id. The agent deletes only interfaces listed here.
type ownedSet map[string]string

func (d *dataDir) loadOwned() (ownedSet, error) {
	var o struct {
		Interfaces ownedSet `json:"interfaces"`
	}
	if _, err := d.readJSON(ownedFile, &o); err != nil {
		return nil, err
	}
	if o.Interfaces == nil {
		o.Interfaces = ownedSet{}
	}
	return o.Interfaces, nil
}

func (d *dataDir) saveOwned(o ownedSet) error {
	return d.writeJSON(ownedFile, struct {
		Interfaces ownedSet `json:"interfaces"`
	}{o})
}

// names reports the owned interface names, sorted.
func (o ownedSet) names() []string {
	var n []string
	for k := range o {
		n = append(n, k)
	}
	slices.Sort(n)
	return n
}

func (d *dataDir) file(name string) string { return filepath.Join(d.path, name) }

// readJSON decodes file name into v and reports whether the file exists.
func (d *dataDir) readJSON(name string, v any) (bool, error) {
	b, err := os.ReadFile(d.file(name))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", name, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("decoding %s: %w", d.file(name), err)
	}
	return true, nil
}

// writeJSON replaces file name with v as indented JSON, for the small
// files people read.
func (d *dataDir) writeJSON(name string, v any) error {
	return d.writeEncoded(name, v, func(v any) ([]byte, error) { return json.MarshalIndent(v, "", "  ") })
}

// writeEncoded replaces file name with v encoded by marshal.
func (d *dataDir) writeEncoded(name string, v any, marshal func(any) ([]byte, error)) error {
	b, err := marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", name, err)
	}
	if err := writeFileAtomic(d.file(name), append(b, '\n'), secretFileMode); err != nil {
		return fmt.Errorf("writing %s: %w", name, err)
	}
	return nil
}

// writeFileAtomic replaces path with data: it writes a temp file in the same
// folder with mode perm, syncs it, renames it over path and syncs the folder.
func writeFileAtomic(path string, data []byte, perm os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+tempFilePattern)
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable. Windows cannot sync a folder and
// makes the rename durable itself.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Command vulndb builds an offline copy of the Go vulnerability database for
// govulncheck -db file://... from what the Go module proxy serves, for
// machines that reach the proxy but not vuln.go.dev.
//
// The source is the module golang.org/x/vulndb: its data/osv folder holds
// every published OSV report, the same files vuln.go.dev is generated from.
// The repository leaves the "modified" time of each report zero (the deploy
// job fills it from git history, which a module zip does not carry); here it
// becomes the commit time of the module version, an upper bound.
//
// vulndb writes the v1 layout (index/db.json, index/modules.json,
// index/vulns.json, ID/<id>.json) into <cache>/<version>, reuses it when it
// is already there, and prints its file:// URL on stdout.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

const module = "golang.org/x/vulndb"

func main() {
	log.SetFlags(0)
	log.SetPrefix("vulndb: ")
	version := flag.String("version", "latest", "version of "+module+" to build from (a module query)")
	cache := flag.String("cache", "", "folder that keeps the built databases (required)")
	maxAge := flag.Duration("warn-age", 45*24*time.Hour, "warn when the snapshot is older than this")
	flag.Parse()
	if *cache == "" {
		log.Fatal("-cache is required")
	}
	dir, err := build(*version, *cache, *maxAge)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println((&url.URL{Scheme: "file", Path: dir}).String())
}

// modInfo is the part of `go mod download -json` output used here.
type modInfo struct {
	Version string
	Dir     string
	Info    string // path of the .info file, which holds the commit time
	Error   string
}

func build(version, cache string, maxAge time.Duration) (string, error) {
	m, err := download(version)
	if err != nil {
		return "", err
	}
	var info struct{ Time time.Time }
	b, err := os.ReadFile(m.Info)
	if err != nil {
		return "", fmt.Errorf("reading module info: %w", err)
	}
	if err := json.Unmarshal(b, &info); err != nil || info.Time.IsZero() {
		return "", fmt.Errorf("no commit time in %s", m.Info)
	}
	age := time.Since(info.Time)
	log.Printf("offline database from %s@%s (snapshot %s, %d days old)", module, m.Version, info.Time.Format(time.RFC3339), int(age.Hours()/24))
	if age > maxAge {
		log.Printf("WARNING: the snapshot is more than %d days old: the module proxy serves no newer %s; reports published since then are missing", int(maxAge.Hours()/24), module)
	}

	out, err := filepath.Abs(filepath.Join(cache, m.Version))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(out, "index", "modules.json")); err == nil {
		return out, nil
	}
	tmp := out + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return "", err
	}
	n, err := convert(filepath.Join(m.Dir, "data", "osv"), tmp, info.Time.UTC())
	if err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	if err := os.Rename(tmp, out); err != nil {
		return "", err
	}
	log.Printf("wrote %d reports to %s", n, out)
	return out, nil
}

// download fetches the module outside any main module so that the calling
// project's go.mod and go.sum stay untouched.
func download(version string) (*modInfo, error) {
	tmp, err := os.MkdirTemp("", "vulndb")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("go", "mod", "download", "-json", module+"@"+version)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOFLAGS=", "GOWORK=off")
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	var m modInfo
	if jerr := json.Unmarshal(b, &m); jerr != nil {
		return nil, fmt.Errorf("go mod download %s@%s: %v", module, version, errors.Join(err, jerr))
	}
	if m.Error != "" || err != nil {
		return nil, fmt.Errorf("go mod download %s@%s: %s", module, version, strings.TrimSpace(m.Error+" "+fmt.Sprint(err)))
	}
	return &m, nil
}

// entry is the part of an OSV report the indexes need; the report itself is
// copied whole, with only "modified" filled in.
type entry struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Aliases  []string  `json:"aliases,omitempty"`
	Affected []struct {
		Package struct {
			Name string `json:"name"`
		} `json:"package"`
	} `json:"affected"`
}

type moduleVuln struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	// Fixed is left out: it is optional in the v1 index, and without it
	// govulncheck reads every report of a module and decides from the
	// report's ranges, which is exact.
}

type moduleIndex struct {
	Path  string       `json:"path"`
	Vulns []moduleVuln `json:"vulns"`
}

type vulnIndex struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Aliases  []string  `json:"aliases,omitempty"`
}

func convert(src, out string, modified time.Time) (int, error) {
	files, err := filepath.Glob(filepath.Join(src, "*.json"))
	if err != nil {
		return 0, err
	}
	if len(files) == 0 {
		return 0, fmt.Errorf("no OSV reports in %s", src)
	}
	if err := os.MkdirAll(filepath.Join(out, "ID"), 0o755); err != nil {
		return 0, err
	}
	if err := os.MkdirAll(filepath.Join(out, "index"), 0o755); err != nil {
		return 0, err
	}
	modules := map[string]*moduleIndex{}
	var vulns []vulnIndex
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return 0, err
		}
		var raw map[string]json.RawMessage
		var e entry
		if err := json.Unmarshal(b, &raw); err != nil {
			return 0, fmt.Errorf("%s: %w", f, err)
		}
		if err := json.Unmarshal(b, &e); err != nil {
			return 0, fmt.Errorf("%s: %w", f, err)
		}
		if e.ID+".json" != filepath.Base(f) {
			return 0, fmt.Errorf("%s: id %q does not match the file name", f, e.ID)
		}
		if e.Modified.IsZero() {
			e.Modified = modified
			raw["modified"], _ = json.Marshal(modified)
		}
		if err := writeJSON(filepath.Join(out, "ID", e.ID+".json"), raw); err != nil {
			return 0, err
		}
		vulns = append(vulns, vulnIndex{ID: e.ID, Modified: e.Modified, Aliases: e.Aliases})
		for _, a := range e.Affected {
			p := a.Package.Name
			if modules[p] == nil {
				modules[p] = &moduleIndex{Path: p}
			}
			if !slices.ContainsFunc(modules[p].Vulns, func(v moduleVuln) bool { return v.ID == e.ID }) {
				modules[p].Vulns = append(modules[p].Vulns, moduleVuln{ID: e.ID, Modified: e.Modified})
			}
		}
	}
	var mods []*moduleIndex
	for _, m := range modules {
		mods = append(mods, m)
	}
	slices.SortFunc(mods, func(a, b *moduleIndex) int { return strings.Compare(a.Path, b.Path) })
	latest := modified
	for _, v := range vulns {
		if v.Modified.After(latest) {
			latest = v.Modified
		}
	}
	if err := writeJSON(filepath.Join(out, "index", "modules.json"), mods); err != nil {
		return 0, err
	}
	if err := writeJSON(filepath.Join(out, "index", "vulns.json"), vulns); err != nil {
		return 0, err
	}
	if err := writeJSON(filepath.Join(out, "index", "db.json"), map[string]time.Time{"modified": latest}); err != nil {
		return 0, err
	}
	return len(vulns), nil
}

func writeJSON(path string, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

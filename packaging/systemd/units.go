// Package systemd holds Drago's systemd unit files, embedded so that
// `drago service install` writes the same hardened units the packages ship.
package systemd

import (
	_ "embed"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// Unit texts as shipped in the packages, running /usr/bin/drago with the
// config file under /etc/drago.
var (
	//go:embed drago-agent.service
	Agent string
	//go:embed drago-server.service
	Server string
)

// Render returns unit with its ExecStart= line replaced by argv, quoted for
// systemd. argv[0] must be an absolute path.
func Render(unit string, argv []string) (string, error) {
	if len(argv) == 0 || !filepath.IsAbs(argv[0]) {
		return "", errors.New("ExecStart needs an absolute executable path")
	}
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = Quote(a)
	}
	lines := strings.SplitAfter(unit, "\n")
	n := 0
	for i, l := range lines {
		if strings.HasPrefix(l, "ExecStart=") {
			lines[i] = "ExecStart=" + strings.Join(q, " ") + "\n"
			n++
		}
	}
	if n != 1 {
		return "", fmt.Errorf("unit has %d ExecStart= lines, want 1", n)
	}
	return strings.Join(lines, ""), nil
}

// Quote quotes one command-line word for ExecStart=: specifiers (%) and
// variables ($) are escaped, and words with blanks, quotes, backslashes or
// semicolons are double-quoted.
func Quote(s string) string {
	s = strings.ReplaceAll(s, "%", "%%")
	s = strings.ReplaceAll(s, "$", "$$")
	if s != "" && !strings.ContainsAny(s, " \t\n\"'\\;") {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\t", `\t`).Replace(s) + `"`
}

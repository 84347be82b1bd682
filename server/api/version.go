package api

import (
	"fmt"
	"runtime"
)

// Build information, stamped by the linker (-X) at build time.
var (
	Version = "0.0.0-dev"
	Commit  = "unknown"
	Date    = "unknown"
)

// VersionString reports the version, commit, build date and platform.
func VersionString() string {
	return fmt.Sprintf("drago %s (commit %s, built %s, %s/%s)", Version, Commit, Date, runtime.GOOS, runtime.GOARCH)
}

//go:build !linux && !windows && !darwin

package platform

import (
	"fmt"
	"log/slog"
	"runtime"
)

// Kinds reports the backend kinds New accepts on this OS: none yet.
func Kinds() []string { return nil }

// New reports that this OS has no backend yet.
func New(kind string, log *slog.Logger) (Backend, error) {
	return nil, fmt.Errorf("platform: no WireGuard backend for %s yet", runtime.GOOS)
}

package platform

import (
	"fmt"
	"log/slog"
	"strings"
)

// Kinds reports the backend kinds New accepts on this OS; "" means "auto".
func Kinds() []string { return []string{"auto", "userspace"} }

// New returns the backend of the given kind: "userspace" (wireguard-go in
// this process, on a utun interface), or "" / "auto", which is the same on
// macOS. log may be nil.
func New(kind string, log *slog.Logger) (Backend, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch kind {
	case "", "auto", "userspace":
		return newUTun(log), nil
	}
	return nil, fmt.Errorf("platform: unknown backend kind %q (want one of %s)", kind, strings.Join(Kinds(), ", "))
}

package platform

import (
	"fmt"
	"log/slog"
	"strings"
)

// Kinds reports the backend kinds New accepts on this OS; "" means "auto".
func Kinds() []string { return []string{"auto", "nt"} }

// New returns the backend of the given kind: "nt" (wireguard-nt, the
// WireGuard driver for the Windows kernel), or "" / "auto", which is the
// same on Windows. It fails when wireguard.dll does not load from the
// folder of drago.exe or System32. log may be nil.
func New(kind string, log *slog.Logger) (Backend, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch kind {
	case "", "auto", "nt":
		return newNT(log)
	}
	return nil, fmt.Errorf("platform: unknown backend kind %q (want one of %s)", kind, strings.Join(Kinds(), ", "))
}

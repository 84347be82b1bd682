package platform

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
)

// Kinds reports the backend kinds New accepts on this OS; "" means "auto".
func Kinds() []string { return []string{"auto", "kernel", "userspace"} }

// New returns the backend of the given kind: "kernel" (the Linux module),
// "userspace" (wireguard-go in this process), or "" / "auto", which picks the
// kernel when this network namespace can create WireGuard links and logs the
// choice. log may be nil.
func New(kind string, log *slog.Logger) (Backend, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch kind {
	case "", "auto":
		if err := probeKernel(log); err != nil {
			log.Info("using userspace WireGuard (wireguard-go)", "reason", err)
			return newUserspaceChecked(log)
		}
		log.Info("using kernel WireGuard")
		return newKernel(log)
	case "kernel":
		if err := probeKernel(log); err != nil {
			return nil, fmt.Errorf("platform: kernel WireGuard unavailable: %w", err)
		}
		return newKernel(log)
	case "userspace":
		return newUserspaceChecked(log)
	}
	return nil, fmt.Errorf("platform: unknown backend kind %q (want one of %s)", kind, strings.Join(Kinds(), ", "))
}

// newUserspaceChecked returns a userspace backend if this host has TUN.
func newUserspaceChecked(log *slog.Logger) (Backend, error) {
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		return nil, fmt.Errorf("platform: userspace WireGuard needs /dev/net/tun: %w", err)
	}
	return newUserspace(log), nil
}

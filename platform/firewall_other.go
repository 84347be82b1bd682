//go:build !linux

package platform

import (
	"fmt"
	"log/slog"
	"runtime"
)

// NewFirewall reports that drago enforces no policy on this OS: it uses
// nf_tables on Linux; a Windows Filtering Platform (Windows) or pf (macOS)
// backend is not implemented. The error matches ErrFirewallUnsupported.
func NewFirewall(log *slog.Logger) (Firewall, error) {
	return nil, fmt.Errorf("%w on %s: %s", ErrFirewallUnsupported, runtime.GOOS, firewallMissing())
}

// firewallMissing says which packet filter a backend would need here.
func firewallMissing() string {
	switch runtime.GOOS {
	case "windows":
		return "no nf_tables; a Windows Filtering Platform backend is not implemented"
	case "darwin":
		return "no nf_tables; a pf backend is not implemented"
	}
	return "no nf_tables"
}

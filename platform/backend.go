// Package platform configures WireGuard interfaces, addresses, routes and MTU
// on the host through one Backend interface with per-OS implementations.
//
// wgctrl types describe keys and peers; each backend owns links, addresses,
// routes and MTU, which wgctrl leaves out of scope.
package platform

import (
	"net/netip"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// Device is the observed state of one WireGuard interface.
type Device struct {
	WireGuard wgtypes.Device // keys, listen port and peers with their counters
	MTU       int
	Up        bool
	Addresses []netip.Prefix // addresses assigned to the link
	Routes    []netip.Prefix // routes owned by drago that point at the link
}

// Backend configures WireGuard interfaces on one host. Every method is safe to
// call again with the same arguments where it says idempotent.
type Backend interface {
	// Name reports the implementation in use: "kernel", "userspace", "fake", ...
	Name() string
	// Device returns the interface's state; errors.Is(err, os.ErrNotExist)
	// when there is no such interface.
	Device(name string) (*Device, error)
	// CreateDevice creates the interface, link down, with no configuration.
	CreateDevice(name string) error
	// DeleteDevice removes the interface and everything on it.
	DeleteDevice(name string) error
	// ConfigureWireGuard applies keys, listen port and peer changes. Callers
	// pass only the peers that change; ReplacePeers is for first creation.
	ConfigureWireGuard(name string, cfg wgtypes.Config) error
	// SetMTU sets the link MTU.
	SetMTU(name string, mtu int) error
	// SetUp brings the link up (idempotent).
	SetUp(name string) error
	// AddAddress and DeleteAddress change the link's addresses.
	AddAddress(name string, p netip.Prefix) error
	DeleteAddress(name string, p netip.Prefix) error
	// AddRoute and DeleteRoute change drago-owned routes through the link.
	AddRoute(name string, p netip.Prefix) error
	DeleteRoute(name string, p netip.Prefix) error
	// Close releases the backend. Kernel interfaces stay; userspace devices
	// live in this process and go with it.
	Close() error
}

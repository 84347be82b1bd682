package platform

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.zx2c4.com/wireguard/tun"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// utunBackend runs wireguard-go inside this process on macOS, one device per
// utun interface, configured in-process (IpcSet/IpcGet). macOS names utun
// interfaces itself (utun0, utun1, ...), so drago's interface names are
// labels: the backend maps each to its utunN, which ifconfig, netstat and
// route show. Each device serves its UAPI socket under drago's name,
// /var/run/wireguard/<name>.sock, so `wg show dg-office` works and `wg show`
// lists it as dg-office; /var/run/wireguard/<name>.name holds the utun name,
// as wg-quick writes it on macOS. MTU, addresses and routes go through
// ifconfig(8) and route(8) and are read back with ifconfig and netstat(1)
// (utunlink.go).
//
// The utun interface goes with the process, and its addresses and routes
// with it. Creating one needs root.
//
// This backend was compiled and vetted for darwin/amd64 and darwin/arm64
// and its pure parts (utunlink.go) are unit-tested on Linux against
// hand-written tool output, but it has not run on macOS: the project's
// machines have none.
type utunBackend struct {
	log     *slog.Logger
	run     runFunc
	devices *registry[*utunDevice]
}

var _ Backend = (*utunBackend)(nil)

// utunDevice is one wireguard-go device on a utun interface.
type utunDevice struct {
	*userspaceDevice
	link     *utunLink
	name     string // drago's
	nameFile string // "" when not written
}

// uapiDir is wireguard-go's UAPI socket folder on macOS.
const uapiDir = "/var/run/wireguard"

func newUTun(log *slog.Logger) *utunBackend {
	// Names are drago's own on macOS, so there is no foreign interface to
	// tell apart.
	return &utunBackend{log: log, run: runTool, devices: newRegistry[*utunDevice](nil, "")}
}

// runTool runs a system tool in the C locale.
func runTool(name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return out, nil
}

// Name implements Backend.
func (b *utunBackend) Name() string { return "userspace" }

// Device implements Backend.
func (b *utunBackend) Device(name string) (*Device, error) {
	d, err := b.devices.get(name)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	st, err := d.link.state()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	wd, err := d.wireGuard()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	wd.Name = name
	st.WireGuard = *wd
	return st, nil
}

// CreateDevice implements Backend. It replaces a stale UAPI socket of the
// same name; if a live process holds the socket, the device works but wg(8)
// cannot see it, which is logged.
func (b *utunBackend) CreateDevice(name string) error {
	d, err := b.devices.open(name, b.openDevice)
	if err != nil {
		return fmt.Errorf("creating %s: %w", name, err)
	}
	b.log.Info("created interface", "device", name, "utun", d.link.ifname)
	return nil
}

// openDevice creates a utun interface and starts wireguard-go on it.
func (b *utunBackend) openDevice(name string) (*utunDevice, error) {
	t, err := tun.CreateTUN("utun", DefaultMTU)
	if err != nil {
		return nil, fmt.Errorf("creating utun: %w", err)
	}
	ifname, err := t.Name()
	if err != nil {
		return nil, errors.Join(err, t.Close())
	}
	log := b.log.With("device", name, "utun", ifname)
	d := &utunDevice{userspaceDevice: newUserspaceDevice(t, name, log), link: newUTunLink(b.run, ifname, log), name: name}
	nameFile := filepath.Join(uapiDir, name+".name")
	if err := os.WriteFile(nameFile, []byte(ifname+"\n"), 0o644); err != nil {
		log.Warn("cannot record the utun name", "err", err)
	} else {
		d.nameFile = nameFile
	}
	return d, nil
}

// Close tears the device down with its utun interface, and removes the
// files it made in /var/run/wireguard.
func (d *utunDevice) Close() error {
	err := d.userspaceDevice.Close()
	if d.uapi != nil {
		if rerr := os.Remove(filepath.Join(uapiDir, d.name+".sock")); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
	}
	if d.nameFile != "" {
		if rerr := os.Remove(d.nameFile); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
	}
	return err
}

// DeleteDevice implements Backend.
func (b *utunBackend) DeleteDevice(name string) error {
	if err := b.devices.remove(name); err != nil {
		return fmt.Errorf("deleting %s: %w", name, err)
	}
	b.log.Info("deleted interface", "device", name)
	return nil
}

// ConfigureWireGuard implements Backend.
func (b *utunBackend) ConfigureWireGuard(name string, cfg wgtypes.Config) error {
	d, err := b.devices.get(name)
	if err == nil {
		err = d.configure(cfg)
	}
	if err != nil {
		return fmt.Errorf("configuring %s: %w", name, err)
	}
	return nil
}

// SetMTU implements Backend.
func (b *utunBackend) SetMTU(name string, mtu int) error {
	d, err := b.devices.get(name)
	if err == nil {
		err = d.link.setMTU(mtu)
	}
	if err != nil {
		return fmt.Errorf("setting mtu %d on %s: %w", mtu, name, err)
	}
	return nil
}

// SetUp implements Backend.
func (b *utunBackend) SetUp(name string) error {
	d, err := b.devices.get(name)
	if err == nil {
		err = d.link.setUp()
	}
	if err == nil {
		err = d.setUp()
	}
	if err != nil {
		return fmt.Errorf("bringing %s up: %w", name, err)
	}
	return nil
}

// AddAddress implements Backend. An address shorter than a host prefix
// also gets a route to its subnet through the interface, as on Linux.
func (b *utunBackend) AddAddress(name string, p netip.Prefix) error {
	d, err := b.devices.get(name)
	if err == nil {
		err = d.link.addAddress(p)
	}
	if err != nil {
		return fmt.Errorf("adding address %s to %s: %w", p, name, err)
	}
	return nil
}

// DeleteAddress implements Backend. Deleting an absent address succeeds.
func (b *utunBackend) DeleteAddress(name string, p netip.Prefix) error {
	d, err := b.devices.get(name)
	if err == nil {
		err = d.link.deleteAddress(p)
	}
	if err != nil {
		return fmt.Errorf("deleting address %s from %s: %w", p, name, err)
	}
	return nil
}

// AddRoute implements Backend. Adding a route drago already has succeeds; a
// route to p that drago did not add is left alone and reported as
// os.ErrExist.
func (b *utunBackend) AddRoute(name string, p netip.Prefix) error {
	d, err := b.devices.get(name)
	if err == nil {
		err = d.link.addRoute(p)
	}
	if err != nil {
		return fmt.Errorf("adding route %s via %s: %w", p, name, err)
	}
	return nil
}

// DeleteRoute implements Backend: it removes drago's route to p and never
// another. Deleting an absent route succeeds.
func (b *utunBackend) DeleteRoute(name string, p netip.Prefix) error {
	d, err := b.devices.get(name)
	if err == nil {
		err = d.link.deleteRoute(p)
	}
	if err != nil {
		return fmt.Errorf("deleting route %s via %s: %w", p, name, err)
	}
	return nil
}

// Close implements Backend: it deletes every device this backend created.
func (b *utunBackend) Close() error { return b.devices.close() }

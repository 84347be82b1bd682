package platform

import (
	"errors"
	"fmt"
	"log/slog"

	"golang.zx2c4.com/wireguard/tun"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// userspaceBackend runs wireguard-go inside this process, one device per TUN
// interface, configured in-process (IpcSet/IpcGet) so that it never reads
// another process's device. Each device also serves the UAPI socket
// /var/run/wireguard/<name>.sock for wg(8).
type userspaceBackend struct {
	links
	log     *slog.Logger
	devices *registry[*userspaceDevice]
}

var _ Backend = (*userspaceBackend)(nil)

func newUserspace(log *slog.Logger) *userspaceBackend {
	return &userspaceBackend{
		log:     log,
		devices: newRegistry[*userspaceDevice](links{}.exists, "a wireguard-go device"),
	}
}

// Name implements Backend.
func (b *userspaceBackend) Name() string { return "userspace" }

// Device implements Backend.
func (b *userspaceBackend) Device(name string) (*Device, error) {
	d, err := b.devices.get(name)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	st, err := b.state(name)
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
func (b *userspaceBackend) CreateDevice(name string) error {
	if _, err := b.devices.open(name, b.openDevice); err != nil {
		return fmt.Errorf("creating %s: %w", name, err)
	}
	b.log.Info("created interface", "device", name)
	return nil
}

// openDevice creates the TUN interface name and starts wireguard-go on it.
func (b *userspaceBackend) openDevice(name string) (*userspaceDevice, error) {
	t, err := tun.CreateTUN(name, DefaultMTU)
	if err != nil {
		return nil, fmt.Errorf("creating tun: %w", err)
	}
	if err := b.prepare(name); err != nil {
		return nil, errors.Join(err, t.Close())
	}
	return newUserspaceDevice(t, name, b.log.With("device", name)), nil
}

// DeleteDevice implements Backend.
func (b *userspaceBackend) DeleteDevice(name string) error {
	if err := b.devices.remove(name); err != nil {
		return fmt.Errorf("deleting %s: %w", name, err)
	}
	b.log.Info("deleted interface", "device", name)
	return nil
}

// ConfigureWireGuard implements Backend.
func (b *userspaceBackend) ConfigureWireGuard(name string, cfg wgtypes.Config) error {
	d, err := b.devices.get(name)
	if err == nil {
		err = d.configure(cfg)
	}
	if err != nil {
		return fmt.Errorf("configuring %s: %w", name, err)
	}
	return nil
}

// SetUp implements Backend.
func (b *userspaceBackend) SetUp(name string) error {
	d, err := b.devices.get(name)
	if err != nil {
		return fmt.Errorf("bringing %s up: %w", name, err)
	}
	if err := b.links.SetUp(name); err != nil {
		return err
	}
	if err := d.setUp(); err != nil {
		return fmt.Errorf("bringing %s up: %w", name, err)
	}
	return nil
}

// Close implements Backend: it deletes every device this backend created.
func (b *userspaceBackend) Close() error { return b.devices.close() }

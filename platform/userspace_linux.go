package platform

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"golang.zx2c4.com/wireguard/tun"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// userspaceBackend runs wireguard-go inside this process, one device per TUN
// interface, configured in-process (IpcSet/IpcGet) so that it never reads
// another process's device. Each device also serves the UAPI socket
// /var/run/wireguard/<name>.sock for wg(8).
type userspaceBackend struct {
	links
	log *slog.Logger

	mu      sync.Mutex
	devices map[string]*userspaceDevice
	closed  bool
}

var _ Backend = (*userspaceBackend)(nil)

func newUserspace(log *slog.Logger) *userspaceBackend {
	return &userspaceBackend{log: log, devices: make(map[string]*userspaceDevice)}
}

// Name implements Backend.
func (b *userspaceBackend) Name() string { return "userspace" }

// Device implements Backend.
func (b *userspaceBackend) Device(name string) (*Device, error) {
	d, err := b.device(name)
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
	if err := b.createDevice(name); err != nil {
		return fmt.Errorf("creating %s: %w", name, err)
	}
	b.log.Info("created interface", "device", name)
	return nil
}

func (b *userspaceBackend) createDevice(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errClosed
	}
	if _, ok := b.devices[name]; ok {
		return errDeviceExists
	}
	if ok, err := b.exists(name); err != nil || ok {
		return cmp.Or(err, errDeviceExists)
	}
	t, err := tun.CreateTUN(name, defaultMTU)
	if err != nil {
		return fmt.Errorf("creating tun: %w", err)
	}
	if err := b.prepare(name); err != nil {
		return errors.Join(err, t.Close())
	}
	b.devices[name] = newUserspaceDevice(t, name, b.log.With("device", name))
	return nil
}

// DeleteDevice implements Backend.
func (b *userspaceBackend) DeleteDevice(name string) error {
	b.mu.Lock()
	d, err := b.deviceLocked(name)
	if err == nil {
		delete(b.devices, name)
	}
	b.mu.Unlock()
	if err == nil {
		err = d.close()
	}
	if err != nil {
		return fmt.Errorf("deleting %s: %w", name, err)
	}
	b.log.Info("deleted interface", "device", name)
	return nil
}

// ConfigureWireGuard implements Backend.
func (b *userspaceBackend) ConfigureWireGuard(name string, cfg wgtypes.Config) error {
	d, err := b.device(name)
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
	d, err := b.device(name)
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
func (b *userspaceBackend) Close() error {
	b.mu.Lock()
	devices := b.devices
	b.devices, b.closed = nil, true
	b.mu.Unlock()
	var errs []error
	for name, d := range devices {
		if err := d.close(); err != nil {
			errs = append(errs, fmt.Errorf("closing %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

func (b *userspaceBackend) device(name string) (*userspaceDevice, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.deviceLocked(name)
}

// deviceLocked returns this backend's device name. An interface of that name
// that this backend did not create is an error, not os.ErrNotExist.
func (b *userspaceBackend) deviceLocked(name string) (*userspaceDevice, error) {
	if d, ok := b.devices[name]; ok {
		return d, nil
	}
	if ok, err := b.exists(name); err != nil || !ok {
		return nil, cmp.Or(err, errNoDevice)
	}
	return nil, errors.New("interface exists but is not a wireguard-go device of this process")
}

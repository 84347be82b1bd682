package platform

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/ipc"
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

// userspaceDevice is one wireguard-go device and its UAPI listener.
type userspaceDevice struct {
	dev    *device.Device
	uapi   net.Listener  // nil when the socket could not be opened
	served chan struct{} // closed when the UAPI accept loop returns
	up     bool          // SetUp ran: configured peers get a handshake at once
	// publicKey is the device's own key, which decides who leads a handshake.
	publicKey wgtypes.Key
}

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
	s, err := d.dev.IpcGet()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	wd, err := parseUAPIDevice(s)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	wd.Name, wd.Type = name, wgtypes.Userspace
	sortPeers(wd.Peers)
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
	log := b.log.With("device", name)
	d := &userspaceDevice{dev: device.NewDevice(t, conn.NewDefaultBind(), wgLogger(log))}
	d.uapi, err = ipcListen(name)
	if err != nil {
		log.Warn("wg(8) will not see this device", "err", err)
	} else {
		d.served = make(chan struct{})
		go d.serve(log)
	}
	b.devices[name] = d
	return nil
}

// ipcListen opens the UAPI socket of name; ipc.UAPIOpen removes a stale one.
func ipcListen(name string) (net.Listener, error) {
	f, err := ipc.UAPIOpen(name)
	if err != nil {
		return nil, fmt.Errorf("opening uapi socket: %w", err)
	}
	defer f.Close()
	l, err := ipc.UAPIListen(name, f)
	if err != nil {
		return nil, fmt.Errorf("listening on uapi socket: %w", err)
	}
	return l, nil
}

// serve answers UAPI clients until the listener is closed or its socket
// removed.
func (d *userspaceDevice) serve(log *slog.Logger) {
	defer close(d.served)
	for {
		c, err := d.uapi.Accept()
		if err != nil {
			log.Debug("uapi listener stopped", "err", err)
			return
		}
		go d.dev.IpcHandle(c)
	}
}

// close tears the device down; its TUN interface goes with it.
func (d *userspaceDevice) close() error {
	var err error
	if d.uapi != nil {
		err = d.uapi.Close()
		<-d.served
	}
	d.dev.Close()
	return err
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
		err = d.dev.IpcSet(uapiConfig(cfg))
	}
	if err != nil {
		return fmt.Errorf("configuring %s: %w", name, err)
	}
	if cfg.PrivateKey != nil {
		d.publicKey = cfg.PrivateKey.PublicKey()
	}
	if d.up {
		var keys []wgtypes.Key
		for _, p := range cfg.Peers {
			if !p.Remove && p.Endpoint != nil {
				keys = append(keys, p.PublicKey)
			}
		}
		d.handshake(keys)
	}
	return nil
}

// handshake starts a handshake with each peer that has no session yet, so a
// new peer, or a device recreated after a restart, connects at once instead
// of when the other side next rekeys (up to 15 s later). When both sides
// start one at the same instant, each answers the other's initiation and
// drops the answer to its own, and both wait 5 s to retry; so the side with
// the lower public key leads, and the other starts one only if no handshake
// came within handshakeGrace.
func (d *userspaceDevice) handshake(keys []wgtypes.Key) {
	for _, k := range keys {
		p := d.dev.LookupPeer(device.NoisePublicKey(k))
		if p == nil {
			continue
		}
		if bytes.Compare(d.publicKey[:], k[:]) < 0 {
			p.SendKeepalive()
			continue
		}
		time.AfterFunc(handshakeGrace, func() {
			if !d.handshaken(k) {
				p.SendKeepalive()
			}
		})
	}
}

// handshakeGrace is how long the higher-keyed side waits for the other to
// lead a handshake.
const handshakeGrace = 300 * time.Millisecond

// handshaken reports whether the peer has completed a handshake.
func (d *userspaceDevice) handshaken(k wgtypes.Key) bool {
	s, err := d.dev.IpcGet()
	if err != nil {
		return false
	}
	wd, err := parseUAPIDevice(s)
	if err != nil {
		return false
	}
	for _, p := range wd.Peers {
		if p.PublicKey == k {
			return !p.LastHandshakeTime.IsZero()
		}
	}
	return true // gone: nothing to do
}

// SetUp implements Backend. wireguard-go follows the link state on its own;
// bringing the device up here as well makes it listen before SetUp returns.
func (b *userspaceBackend) SetUp(name string) error {
	d, err := b.device(name)
	if err != nil {
		return fmt.Errorf("bringing %s up: %w", name, err)
	}
	if err := b.links.SetUp(name); err != nil {
		return err
	}
	if err := d.dev.Up(); err != nil {
		return fmt.Errorf("bringing %s up: %w", name, err)
	}
	if !d.up {
		d.up = true
		if dev, err := b.Device(name); err == nil {
			var keys []wgtypes.Key
			for _, p := range dev.WireGuard.Peers {
				if p.Endpoint != nil {
					keys = append(keys, p.PublicKey)
				}
			}
			d.handshake(keys)
		}
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

// wgLogger routes wireguard-go's log to log: verbose lines at debug level,
// errors (mostly transient send failures) as warnings.
func wgLogger(log *slog.Logger) *device.Logger {
	return &device.Logger{
		Verbosef: func(format string, args ...any) {
			if log.Enabled(context.Background(), slog.LevelDebug) {
				log.Debug(fmt.Sprintf(format, args...))
			}
		},
		Errorf: func(format string, args ...any) {
			log.Warn(fmt.Sprintf(format, args...))
		},
	}
}

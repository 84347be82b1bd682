package platform

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.zx2c4.com/wireguard/wgctrl"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// kernelBackend drives the Linux kernel's WireGuard: wgctrl over generic
// netlink for keys and peers, rtnetlink for the rest. Its interfaces outlive
// the process.
type kernelBackend struct {
	links
	log *slog.Logger
	wg  *wgctrl.Client

	closeOnce sync.Once
	closeErr  error
}

var _ Backend = (*kernelBackend)(nil)

func newKernel(log *slog.Logger) (*kernelBackend, error) {
	wg, err := wgctrl.New()
	if err != nil {
		return nil, fmt.Errorf("platform: opening wgctrl: %w", err)
	}
	return &kernelBackend{log: log, wg: wg}, nil
}

// Name implements Backend.
func (b *kernelBackend) Name() string { return "kernel" }

// Device implements Backend.
func (b *kernelBackend) Device(name string) (*Device, error) {
	l, err := b.wireguardLink(name)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	d, err := b.state(l.Attrs().Name)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	wd, err := b.wg.Device(name)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	sortPeers(wd.Peers)
	d.WireGuard = *wd
	return d, nil
}

// CreateDevice implements Backend.
func (b *kernelBackend) CreateDevice(name string) error {
	if err := b.createDevice(name); err != nil {
		return fmt.Errorf("creating %s: %w", name, err)
	}
	b.log.Info("created interface", "device", name)
	return nil
}

func (b *kernelBackend) createDevice(name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	if ok, err := b.exists(name); err != nil || ok {
		return cmp.Or(err, ErrDeviceExists)
	}
	l := &netlink.Wireguard{LinkAttrs: netlink.LinkAttrs{Name: name, MTU: DefaultMTU}}
	if err := netlink.LinkAdd(l); err != nil {
		return fmt.Errorf("adding wireguard link: %w", err)
	}
	if err := b.prepare(name); err != nil {
		return errors.Join(err, netlink.LinkDel(l))
	}
	return nil
}

// DeleteDevice implements Backend. It refuses links that are not WireGuard.
func (b *kernelBackend) DeleteDevice(name string) error {
	l, err := b.wireguardLink(name)
	if err == nil {
		err = netlink.LinkDel(l)
	}
	if err != nil {
		return fmt.Errorf("deleting %s: %w", name, err)
	}
	b.log.Info("deleted interface", "device", name)
	return nil
}

// ConfigureWireGuard implements Backend.
func (b *kernelBackend) ConfigureWireGuard(name string, cfg wgtypes.Config) error {
	_, err := b.wireguardLink(name)
	if err == nil {
		err = b.wg.ConfigureDevice(name, cfg)
	}
	if err != nil {
		return fmt.Errorf("configuring %s: %w", name, err)
	}
	return nil
}

// Close implements Backend. The interfaces stay.
func (b *kernelBackend) Close() error {
	b.closeOnce.Do(func() { b.closeErr = b.wg.Close() })
	return b.closeErr
}

// wireguardLink returns the link named name if it is a WireGuard link.
func (b *kernelBackend) wireguardLink(name string) (netlink.Link, error) {
	l, err := b.link(name)
	if err != nil {
		return nil, err
	}
	if t := l.Type(); t != "wireguard" {
		return nil, fmt.Errorf("link is of type %s, not wireguard", t)
	}
	return l, nil
}

// probeKernel reports, as a nil error, whether this network namespace can
// create kernel WireGuard links: it adds and deletes a throwaway link.
func probeKernel(log *slog.Logger) error {
	name := fmt.Sprintf("dgprobe%08x", rand.Uint32())
	l := &netlink.Wireguard{LinkAttrs: netlink.LinkAttrs{Name: name}}
	if err := netlink.LinkAdd(l); err != nil {
		return fmt.Errorf("adding a wireguard link: %w", err)
	}
	if err := netlink.LinkDel(l); err != nil {
		log.Warn("deleting probe link", "link", name, "err", err)
	}
	return nil
}

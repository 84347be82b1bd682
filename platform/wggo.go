//go:build linux || darwin

package platform

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/ipc"
	"golang.zx2c4.com/wireguard/tun"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// This file runs wireguard-go in this process, for the Linux userspace
// backend and the macOS backend alike.

// userspaceDevice is one wireguard-go device and its UAPI listener.
type userspaceDevice struct {
	dev    *device.Device
	uapi   net.Listener  // nil when the socket could not be opened
	served chan struct{} // closed when the UAPI accept loop returns
	up     bool          // setUp ran: configured peers get a handshake at once
	// publicKey is the device's own key, which decides who leads a handshake.
	publicKey wgtypes.Key
}

// newUserspaceDevice starts wireguard-go on t and serves its UAPI socket
// /var/run/wireguard/<name>.sock for wg(8). If a live process holds that
// socket, the device works but wg(8) cannot see it, which is logged.
func newUserspaceDevice(t tun.Device, name string, log *slog.Logger) *userspaceDevice {
	d := &userspaceDevice{dev: device.NewDevice(t, conn.NewDefaultBind(), wgLogger(log))}
	var err error
	d.uapi, err = ipcListen(name)
	if err != nil {
		log.Warn("wg(8) will not see this device", "err", err)
	} else {
		d.served = make(chan struct{})
		go d.serve(log)
	}
	return d
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

// Close tears the device down; its TUN interface goes with it.
func (d *userspaceDevice) Close() error {
	var err error
	if d.uapi != nil {
		err = d.uapi.Close()
		<-d.served
	}
	d.dev.Close()
	return err
}

// wireGuard returns the device's keys and peers, peers sorted by key.
func (d *userspaceDevice) wireGuard() (*wgtypes.Device, error) {
	s, err := d.dev.IpcGet()
	if err != nil {
		return nil, err
	}
	wd, err := parseUAPIDevice(s)
	if err != nil {
		return nil, err
	}
	wd.Type = wgtypes.Userspace
	sortPeers(wd.Peers)
	return wd, nil
}

// configure applies cfg. Once the device is up, it starts a handshake with
// each new or updated peer that has an endpoint.
// A new private key ends every session: this side then leads a handshake
// with every peer, since no peer knows to.
func (d *userspaceDevice) configure(cfg wgtypes.Config) error {
	if err := d.dev.IpcSet(uapiConfig(cfg)); err != nil {
		return err
	}
	rekeyed := false
	if cfg.PrivateKey != nil {
		pub := cfg.PrivateKey.PublicKey()
		rekeyed = d.up && pub != d.publicKey
		d.publicKey = pub
	}
	if rekeyed {
		if wd, err := d.wireGuard(); err == nil {
			for _, p := range wd.Peers {
				if p.Endpoint != nil {
					if peer := d.dev.LookupPeer(device.NoisePublicKey(p.PublicKey)); peer != nil {
						peer.SendKeepalive()
					}
				}
			}
		}
		return nil
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

// setUp brings the device up: wireguard-go follows the link state on its
// own, and doing it here as well makes it listen before setUp returns. The
// first time, it starts a handshake with every peer that has an endpoint.
func (d *userspaceDevice) setUp() error {
	if err := d.dev.Up(); err != nil {
		return err
	}
	if d.up {
		return nil
	}
	d.up = true
	if wd, err := d.wireGuard(); err == nil {
		var keys []wgtypes.Key
		for _, p := range wd.Peers {
			if p.Endpoint != nil {
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
	wd, err := d.wireGuard()
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

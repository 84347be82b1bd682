// Package platformtest provides Recorder, an in-memory platform.Backend that
// records every call, and Conformance, a test suite every Backend passes.
package platformtest

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/drago-wg/drago/platform"
	"github.com/drago-wg/drago/server/api"
)

// Op is one recorded Backend call.
type Op struct {
	Method string       // the Backend method, e.g. "AddRoute"; Name is not recorded
	Device string       // the interface name
	Prefix netip.Prefix // AddAddress, DeleteAddress, AddRoute, DeleteRoute
	MTU    int          // SetMTU

	// ConfigureWireGuard only.
	Peers        int  // peer entries in the config: each is one peer change
	RemovedPeers int  // of which removals
	ReplacePeers bool // the config replaces all peers
	PrivateKey   bool // the config sets the private key
}

// Recorder is an in-memory platform.Backend. It applies calls to in-memory
// devices with the semantics of the real backends (errors matching
// os.ErrNotExist and os.ErrExist, idempotent adds and deletes, allowed IPs
// that move between peers) and records each call as an Op. It is safe for
// concurrent use; the zero value is ready to use.
type Recorder struct {
	// DiscardOps makes Ops return nothing while the counters keep counting,
	// for load tools that run long. Set it before first use.
	DiscardOps bool

	mu      sync.Mutex
	devices map[string]*device
	ops     []Op
	writes  int
	peerOps int
	fail    map[string]error
	closed  bool
}

var _ platform.Backend = (*Recorder)(nil)

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder { return new(Recorder) }

// Ops returns a copy of the calls recorded since the last Reset.
func (r *Recorder) Ops() []Op {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ops)
}

// Writes reports the number of calls other than Device since the last Reset.
func (r *Recorder) Writes() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.writes
}

// PeerOps reports the number of peer changes passed to ConfigureWireGuard
// since the last Reset.
func (r *Recorder) PeerOps() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.peerOps
}

// Reset forgets the recorded calls and counters; devices stay.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ops, r.writes, r.peerOps = nil, 0, 0
}

// FailOn makes every later call of method return err, without effect, until
// FailOn(method, nil). The calls are still recorded.
func (r *Recorder) FailOn(method string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		delete(r.fail, method)
		return
	}
	if r.fail == nil {
		r.fail = make(map[string]error)
	}
	r.fail[method] = err
}

// SetPeerStats sets a peer's handshake time and counters, as traffic would.
func (r *Recorder) SetPeerStats(name string, peer wgtypes.Key, handshake time.Time, rx, tx int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, ok := r.devices[name]
	if !ok {
		return fmt.Errorf("setting peer stats on %s: %w", name, platform.ErrNoDevice)
	}
	i, ok := d.index[peer]
	if !ok {
		return fmt.Errorf("setting peer stats on %s: no peer %s: %w", name, peer, os.ErrNotExist)
	}
	d.own()
	p := &d.wg.Peers[i]
	p.LastHandshakeTime, p.ReceiveBytes, p.TransmitBytes = handshake, rx, tx
	return nil
}

// Name implements platform.Backend.
func (r *Recorder) Name() string { return "fake" }

// Device implements platform.Backend. The returned Device shares its peers
// with the Recorder: do not modify them in place.
func (r *Recorder) Device(name string) (*platform.Device, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, err := r.begin(Op{Method: "Device", Device: name})
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return d.snapshot(), nil
}

// PeersWithAllowedIPs counts the device's peers that have an allowed IP,
// without copying them as Device does.
func (r *Recorder) PeersWithAllowedIPs(name string) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, ok := r.devices[name]
	if !ok {
		return 0, fmt.Errorf("reading %s: %w", name, platform.ErrNoDevice)
	}
	n := 0
	for _, p := range d.wg.Peers {
		if len(p.AllowedIPs) > 0 {
			n++
		}
	}
	return n, nil
}

// CreateDevice implements platform.Backend. It refuses names that are not
// interface names (api.CheckInterfaceName).
func (r *Recorder) CreateDevice(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, err := r.begin(Op{Method: "CreateDevice", Device: name})
	switch {
	case err == nil:
		err = platform.ErrDeviceExists
	case err == platform.ErrNoDevice:
		err = api.CheckInterfaceName(name)
	}
	if err != nil {
		return fmt.Errorf("creating %s: %w", name, err)
	}
	if r.devices == nil {
		r.devices = make(map[string]*device)
	}
	r.devices[name] = &device{
		wg:  wgtypes.Device{Name: name},
		mtu: platform.DefaultMTU,
	}
	return nil
}

// DeleteDevice implements platform.Backend.
func (r *Recorder) DeleteDevice(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.begin(Op{Method: "DeleteDevice", Device: name}); err != nil {
		return fmt.Errorf("deleting %s: %w", name, err)
	}
	delete(r.devices, name)
	return nil
}

// ConfigureWireGuard implements platform.Backend.
func (r *Recorder) ConfigureWireGuard(name string, cfg wgtypes.Config) error {
	op := Op{
		Method:       "ConfigureWireGuard",
		Device:       name,
		Peers:        len(cfg.Peers),
		ReplacePeers: cfg.ReplacePeers,
		PrivateKey:   cfg.PrivateKey != nil,
	}
	for _, p := range cfg.Peers {
		if p.Remove {
			op.RemovedPeers++
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	d, err := r.begin(op)
	if err == nil {
		err = d.configure(cfg)
	}
	if err != nil {
		return fmt.Errorf("configuring %s: %w", name, err)
	}
	return nil
}

// SetMTU implements platform.Backend. It refuses the MTUs the Windows and
// macOS backends refuse (platform.CheckMTU).
func (r *Recorder) SetMTU(name string, mtu int) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, err := r.begin(Op{Method: "SetMTU", Device: name, MTU: mtu})
	if err == nil {
		err = platform.CheckMTU(mtu)
	}
	if err != nil {
		return fmt.Errorf("setting mtu %d on %s: %w", mtu, name, err)
	}
	d.mtu = mtu
	return nil
}

// SetUp implements platform.Backend.
func (r *Recorder) SetUp(name string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, err := r.begin(Op{Method: "SetUp", Device: name})
	if err != nil {
		return fmt.Errorf("bringing %s up: %w", name, err)
	}
	d.up = true
	return nil
}

// AddAddress implements platform.Backend.
func (r *Recorder) AddAddress(name string, p netip.Prefix) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, err := r.begin(Op{Method: "AddAddress", Device: name, Prefix: p})
	if err == nil && !p.IsValid() {
		err = fmt.Errorf("invalid prefix")
	}
	if err == nil && p.Addr().Is6() && slices.ContainsFunc(d.addrs, func(a netip.Prefix) bool { return a.Addr() == p.Addr() && a != p }) {
		err = fmt.Errorf("ipv6 address with another prefix length: %w", os.ErrExist)
	}
	if err != nil {
		return fmt.Errorf("adding address %s to %s: %w", p, name, err)
	}
	d.addrs = insertSorted(d.addrs, p)
	return nil
}

// DeleteAddress implements platform.Backend.
func (r *Recorder) DeleteAddress(name string, p netip.Prefix) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, err := r.begin(Op{Method: "DeleteAddress", Device: name, Prefix: p})
	if err == nil && !p.IsValid() {
		err = fmt.Errorf("invalid prefix")
	}
	if err != nil {
		return fmt.Errorf("deleting address %s from %s: %w", p, name, err)
	}
	d.addrs = deleteSorted(d.addrs, p)
	return nil
}

// AddRoute implements platform.Backend. Like the kernel, it refuses routes
// through a link that is down.
func (r *Recorder) AddRoute(name string, p netip.Prefix) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, err := r.begin(Op{Method: "AddRoute", Device: name, Prefix: p})
	if err == nil {
		err = platform.CheckRoutePrefix(p)
	}
	if err == nil && !d.up {
		err = fmt.Errorf("network is down")
	}
	if err != nil {
		return fmt.Errorf("adding route %s via %s: %w", p, name, err)
	}
	d.routes = insertSorted(d.routes, p)
	return nil
}

// DeleteRoute implements platform.Backend.
func (r *Recorder) DeleteRoute(name string, p netip.Prefix) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, err := r.begin(Op{Method: "DeleteRoute", Device: name, Prefix: p})
	if err == nil {
		err = platform.CheckRoutePrefix(p)
	}
	if err != nil {
		return fmt.Errorf("deleting route %s via %s: %w", p, name, err)
	}
	d.routes = deleteSorted(d.routes, p)
	return nil
}

// Close implements platform.Backend. Later calls fail.
func (r *Recorder) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.record(Op{Method: "Close"})
	r.closed = true
	return nil
}

// begin records op and returns its device, or the error the call must
// return: an injected failure, platform.ErrClosed or platform.ErrNoDevice.
func (r *Recorder) begin(op Op) (*device, error) {
	r.record(op)
	if err := r.fail[op.Method]; err != nil {
		return nil, err
	}
	if r.closed {
		return nil, platform.ErrClosed
	}
	d, ok := r.devices[op.Device]
	if !ok {
		return nil, platform.ErrNoDevice
	}
	return d, nil
}

func (r *Recorder) record(op Op) {
	if op.Method != "Device" {
		r.writes++
	}
	r.peerOps += op.Peers
	if !r.DiscardOps {
		r.ops = append(r.ops, op)
	}
}

package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/drago-wg/drago/platform"
	"github.com/drago-wg/drago/server/api"
)

// reconciler makes the host's interfaces match a desired state through a
// platform.Backend, in the style of tailscale's wgengine/router: reconcile
// may be called any number of times with the same state, and a host that
// already matches costs only Device reads. reconcileChanges applies a new
// state from what the last reconcile left, touching only what changed.
//
// It is not safe for concurrent use; the agent calls it from one goroutine.
type reconciler struct {
	b     platform.Backend
	dir   *dataDir
	keys  *keyStore
	owned ownedSet
	log   *slog.Logger
	// lookup resolves endpoint host names; net.DefaultResolver by default.
	lookup func(ctx context.Context, host string) ([]netip.Addr, error)

	// parsedFrom is the state parse parsed last; parsed is its result.
	parsedFrom *api.DesiredState
	parsed     desiredSet
	peers      peerCache // the peers parsed last

	// synced holds, per interface name, the interface as a reconcile last
	// made the device match it, with the private key it set: what the device
	// holds unless something outside drago changed it since, which only a
	// full reconcile (the agent's drift check) looks for. A failure drops
	// the interface's entry.
	synced map[string]syncedInterface

	// fw enforces the interfaces' access policies; nil when the host
	// cannot, and fwErr says why. firewalls holds, per interface name, what
	// the agent knows of its policy on the host (firewall.go).
	fw        platform.Firewall
	fwErr     error
	firewalls map[string]firewallState
}

// syncedInterface is an interface as applied, with its private key.
type syncedInterface struct {
	w   wantInterface
	key wgtypes.Key
}

func newReconciler(b platform.Backend, dir *dataDir, log *slog.Logger) (*reconciler, error) {
	owned, err := dir.loadOwned()
	if err != nil {
		return nil, err
	}
	return &reconciler{
		b:         b,
		dir:       dir,
		keys:      &keyStore{dir: dir.keysDir()},
		owned:     owned,
		log:       log,
		synced:    map[string]syncedInterface{},
		fwErr:     fmt.Errorf("%w: no firewall given", platform.ErrFirewallUnsupported),
		firewalls: map[string]firewallState{},
		lookup: func(ctx context.Context, host string) ([]netip.Addr, error) {
			return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		},
	}, nil
}

// parse returns parseState(ds), parsing only when ds is not the state
// parsed last: reconcile, status and key rotation all read the state, which
// is never changed after it is received. The result is shared; callers
// must not modify it.
func (r *reconciler) parse(ds *api.DesiredState) desiredSet {
	if ds != r.parsedFrom {
		r.parsedFrom, r.parsed = ds, parseState(ds, &r.peers)
	}
	return r.parsed
}

// result sums up one reconcile.
type result struct {
	Ops          int // backend calls that change something
	Skipped      int // interfaces skipped: malformed, or not owned by drago
	SkippedPeers int // peers left out of their interface: malformed, or a key listed twice
}

// reconcile applies ds, comparing each interface with the device as it is.
// Malformed interfaces, and interfaces whose name is taken by a device
// drago did not create, are logged and left alone; bad peers are logged
// and left out of their interface, whose other peers are applied (see
// parsedPeers.usable); a failing interface does not stop the others. The
// error joins the backend failures; the next reconcile retries them.
func (r *reconciler) reconcile(ctx context.Context, ds *api.DesiredState) (result, error) {
	return r.run(ctx, ds, true)
}

// reconcileChanges applies ds as reconcile does, except that an interface
// the last reconcile left in sync, and that changed in peers only (none
// of them with an endpoint host name to resolve), is brought from that
// state without reading the device: only the peers that changed and their
// routes are touched, so a one-peer change on a large interface costs one
// peer's work. Changes made outside drago wait for the next reconcile.
func (r *reconciler) reconcileChanges(ctx context.Context, ds *api.DesiredState) (result, error) {
	return r.run(ctx, ds, false)
}

// run is reconcile when full, else reconcileChanges.
func (r *reconciler) run(ctx context.Context, ds *api.DesiredState, full bool) (result, error) {
	var res result
	set := r.parse(ds)
	for _, err := range set.Errors {
		r.log.Error("skipping malformed interface from the server", "err", err)
	}
	for _, err := range set.SkippedPeers {
		r.log.Error("skipping bad peer from the server; applying the interface's other peers", "err", err)
	}
	res.Skipped, res.SkippedPeers = len(set.Errors), len(set.SkippedPeers)

	var errs []error
	names := map[string]bool{}
	for _, w := range set.Interfaces {
		names[w.Name] = true
		n, skipped, err := r.reconcileInterface(ctx, w, full)
		res.Ops += n
		if skipped {
			res.Skipped++
			continue // not drago's interface: nor are its rules
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("interface %s: %w", w.Name, err))
		}
		n, err = r.reconcileFirewall(w, full)
		res.Ops += n
		if err != nil {
			errs = append(errs, fmt.Errorf("interface %s: %w", w.Name, err))
		}
	}

	n, err := r.removeUnwanted(names, set.Skipped)
	res.Ops += n
	if err != nil {
		errs = append(errs, err)
	}
	if err := r.removeStaleKeys(ds); err != nil {
		errs = append(errs, err)
	}
	return res, errors.Join(errs...)
}

// reconcileInterface brings one interface in line and returns the number of
// backend calls made, and whether it was skipped. Unless full, an interface
// in sync with a state that differs from w in peers only is brought from
// that state (see reconcileChanges).
func (r *reconciler) reconcileInterface(ctx context.Context, w wantInterface, full bool) (int, bool, error) {
	log := r.log.With("interface", w.Name, "interface_id", w.ID)
	if s, ok := r.synced[w.Name]; ok && !full && sameLink(s.w, w) && !needsLookup(w) {
		if key, err := r.keys.get(w.ID); err == nil && key == s.key {
			n, err := r.applyPlan(log, w, key, diffFrom(s.w, w))
			return n, false, err
		}
	}
	delete(r.synced, w.Name)
	have, err := r.b.Device(w.Name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		have = nil
	case err != nil:
		return 0, false, fmt.Errorf("reading device: %w", err)
	}
	id, ours := r.owned[w.Name]
	if !ours && have != nil {
		log.Error("an interface with this name exists and was not created by drago; leaving it alone")
		return 0, true, nil
	}
	if !ours || id != w.ID {
		// Record ownership before creating, so a crash in between
		// cannot leave an interface drago would never clean up.
		r.owned[w.Name] = w.ID
		if err := r.dir.saveOwned(r.owned); err != nil {
			return 0, false, err
		}
	}

	key, created, err := r.keys.getOrCreate(w.ID)
	if err != nil {
		return 0, false, err
	}
	if created {
		log.Info("generated WireGuard key", "public_key", key.PublicKey().String())
	}
	r.resolveEndpoints(ctx, log, &w, have)
	n, err := r.applyPlan(log, w, key, diff(w, key, have))
	return n, false, err
}

// applyPlan runs p, which brings interface w to its desired state with the
// private key key, and records the outcome in r.synced.
func (r *reconciler) applyPlan(log *slog.Logger, w wantInterface, key wgtypes.Key, p plan) (int, error) {
	if p.empty() {
		r.synced[w.Name] = syncedInterface{w, key}
		return 0, nil
	}
	n, err := r.apply(w.Name, p)
	if err != nil {
		delete(r.synced, w.Name)
		return n, err
	}
	r.synced[w.Name] = syncedInterface{w, key}
	log.Info("configured interface", describePlan(p)...)
	return n, nil
}

// needsLookup reports whether a peer of w has an endpoint host name, which
// resolveEndpoints resolves against the device at each reconcile.
func needsLookup(w wantInterface) bool {
	for i := range w.Peers {
		if w.Peers[i].Endpoint != "" && !w.Peers[i].Addr.IsValid() {
			return true
		}
	}
	return false
}

// resolveEndpoints fills in the address of peers whose endpoint is a host
// name. A name that does not resolve leaves the peer's endpoint unchanged.
// It copies w.Peers before the first change: w shares them with the
// parsed state that parse keeps, and names are resolved anew at every
// reconcile.
func (r *reconciler) resolveEndpoints(ctx context.Context, log *slog.Logger, w *wantInterface, have *platform.Device) {
	copied := false
	for i := range w.Peers {
		wp := &w.Peers[i]
		if wp.Endpoint == "" || wp.Addr.IsValid() {
			continue
		}
		host, port, _ := net.SplitHostPort(wp.Endpoint)
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		addrs, err := r.lookup(lctx, host)
		cancel()
		if err != nil || len(addrs) == 0 {
			log.Warn("cannot resolve peer endpoint; keeping the current one",
				"peer", wp.PublicKey.String(), "endpoint", wp.Endpoint, "err", err)
			continue
		}
		// Keep the current address when the name still resolves to it.
		pick := addrs[0]
		if have != nil {
			for _, hp := range have.WireGuard.Peers {
				if hp.PublicKey == wp.PublicKey && hp.Endpoint != nil {
					cur := udpAddrPort(hp.Endpoint).Addr()
					for _, a := range addrs {
						if a.Unmap() == cur {
							pick = a
						}
					}
				}
			}
		}
		p, _ := strconv.Atoi(port) // checked by parsePeer
		if !copied {
			w.Peers, copied = slices.Clone(w.Peers), true
			wp = &w.Peers[i]
		}
		wp.Addr = netip.AddrPortFrom(pick.Unmap(), uint16(p))
	}
}

// apply runs a plan's calls in order and stops at the first failure; the
// next reconcile starts from what was done. It returns the calls made.
func (r *reconciler) apply(name string, p plan) (int, error) {
	type op struct {
		what string
		do   func() error
	}
	var ops []op
	if p.Create {
		ops = append(ops, op{"creating device", func() error { return r.b.CreateDevice(name) }})
	}
	if p.WireGuard != nil {
		ops = append(ops, op{"configuring WireGuard", func() error { return r.configure(name, *p.WireGuard, p.Kicks) }})
	}
	if p.MTU != 0 {
		ops = append(ops, op{"setting MTU", func() error { return r.b.SetMTU(name, p.MTU) }})
	}
	for _, a := range p.DelAddrs {
		ops = append(ops, op{"deleting address " + a.String(), func() error { return r.b.DeleteAddress(name, a) }})
	}
	for _, a := range p.AddAddrs {
		ops = append(ops, op{"adding address " + a.String(), func() error { return r.b.AddAddress(name, a) }})
	}
	if p.Up {
		ops = append(ops, op{"bringing link up", func() error { return r.b.SetUp(name) }})
	}
	for _, rt := range p.DelRoutes {
		ops = append(ops, op{"deleting route " + rt.String(), func() error { return r.b.DeleteRoute(name, rt) }})
	}
	for _, rt := range p.AddRoutes {
		ops = append(ops, op{"adding route " + rt.String(), func() error { return r.b.AddRoute(name, rt) }})
	}
	for i, o := range ops {
		if err := o.do(); err != nil {
			return i + 1, fmt.Errorf("%s: %w", o.what, err)
		}
	}
	return len(ops), nil
}

// kickDelay is how long a peer's switch waits before this side replaces
// the peer's old key and kicks the new one (see kick). The peer started a
// handshake of its own when it switched (see applyKey), which this side
// ignores while it does not know the new key; were that packet handled
// only after the kick's handshake went out, the two handshakes would cross,
// each side would drop the other's answer, and both would wait 5 s. Until
// then nothing is lost: this side still sends over the old session, which
// the peer decrypts, and the peer holds what it sends.
const kickDelay = 100 * time.Millisecond

// drainDelay is how long the old key of a kicked peer stays on the device,
// without allowed IPs, after its new key took them over: packets this side
// had already routed to the old key are still in WireGuard's queues, and
// removing the peer would drop them.
const drainDelay = 20 * time.Millisecond

// configure applies cfg to device name and starts the handshakes of the
// kicked peers (see kick), kickDelay later: one without an endpoint gets
// the endpoint of the peer it replaces, read from the device. The replaced
// peers are removed drainDelay after the rest, in a second call, which also
// sets back to 0 a keepalive set only to start the handshake.
func (r *reconciler) configure(name string, cfg wgtypes.Config, kicks []kick) error {
	if len(kicks) == 0 {
		return r.b.ConfigureWireGuard(name, cfg)
	}
	time.Sleep(kickDelay)
	var later []wgtypes.PeerConfig
	cfg.Peers = slices.DeleteFunc(slices.Clone(cfg.Peers), func(pc wgtypes.PeerConfig) bool {
		replaced := pc.Remove && slices.ContainsFunc(kicks, func(k kick) bool { return k.Replaces == pc.PublicKey })
		if replaced {
			later = append(later, pc)
		}
		return replaced
	})
	if err := r.kickEndpoints(name, cfg.Peers, kicks); err != nil {
		return err
	}
	if err := r.b.ConfigureWireGuard(name, cfg); err != nil {
		return err
	}
	for _, k := range kicks {
		if k.Reset {
			later = append(later, wgtypes.PeerConfig{PublicKey: k.Key, UpdateOnly: true, PersistentKeepaliveInterval: ptr(time.Duration(0))})
		}
	}
	time.Sleep(drainDelay)
	return r.b.ConfigureWireGuard(name, wgtypes.Config{Peers: later})
}

// kickEndpoints gives each kicked peer of peers that has no endpoint the
// endpoint of the peer it replaces, as the device holds it (learned from
// that peer's packets when the server knows no address for it).
func (r *reconciler) kickEndpoints(name string, peers []wgtypes.PeerConfig, kicks []kick) error {
	var dev *platform.Device
	for _, k := range kicks {
		i := slices.IndexFunc(peers, func(pc wgtypes.PeerConfig) bool { return pc.PublicKey == k.Key })
		if i < 0 || peers[i].Endpoint != nil {
			continue
		}
		if dev == nil {
			var err error
			if dev, err = r.b.Device(name); err != nil {
				return fmt.Errorf("reading device: %w", err)
			}
		}
		if j := slices.IndexFunc(dev.WireGuard.Peers, func(p wgtypes.Peer) bool { return p.PublicKey == k.Replaces }); j >= 0 {
			peers[i].Endpoint = dev.WireGuard.Peers[j].Endpoint
		}
	}
	return nil
}

// applyKey gives the device name the private key key and changes nothing
// else. The key change ends the sessions this side sends on (wireguard-go
// and the kernel expire the current keypairs; what peers send over the old
// ones is still decrypted), and packets wait for a handshake under the new
// key, which each peer starts when it moves the allowed IPs to it (see
// kick). So that the two sides never start handshakes at the same moment
// (each then drops the other's answer, and both wait 5 s to try again),
// this side starts its own at once, to every peer with an endpoint: the
// peers ignore it, as they do not know the new key yet, and WireGuard
// starts no other before 5 s have passed. A keepalive turned on starts it:
// peers without one get 1 s, then 0 again; those with one get 0, then
// theirs again. A device that does not exist yet gets the key when the
// next reconcile creates it.
func (r *reconciler) applyKey(name string, key wgtypes.Key) error {
	have, err := r.b.Device(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("reading device: %w", err)
	case have.WireGuard.PrivateKey == key:
		return nil
	}
	cfg := wgtypes.Config{PrivateKey: &key}
	var restore []wgtypes.PeerConfig
	for _, p := range have.WireGuard.Peers {
		if p.Endpoint == nil || len(p.AllowedIPs) == 0 {
			continue
		}
		toggle := time.Second
		if p.PersistentKeepaliveInterval != 0 {
			toggle = 0
		}
		cfg.Peers = append(cfg.Peers, wgtypes.PeerConfig{PublicKey: p.PublicKey, UpdateOnly: true, PersistentKeepaliveInterval: ptr(toggle)})
		restore = append(restore, wgtypes.PeerConfig{PublicKey: p.PublicKey, UpdateOnly: true, PersistentKeepaliveInterval: ptr(p.PersistentKeepaliveInterval)})
	}
	for _, c := range []wgtypes.Config{cfg, {Peers: restore}} {
		if c.PrivateKey == nil && len(c.Peers) == 0 {
			continue
		}
		if err := r.b.ConfigureWireGuard(name, c); err != nil {
			return fmt.Errorf("configuring WireGuard: %w", err)
		}
	}
	return nil
}

// removeUnwanted deletes the interfaces drago created that are no longer
// desired, and their access policies: not named by a valid desired interface and not belonging to one
// skipped as malformed. Interfaces drago did not create are never touched.
func (r *reconciler) removeUnwanted(names, skipped map[string]bool) (int, error) {
	var errs []error
	n := 0
	for _, name := range r.owned.names() {
		id := r.owned[name]
		if names[name] || skipped[id] {
			continue
		}
		n++
		delete(r.synced, name)
		// The rules go first: an interface left owned is retried.
		if err := r.removeFirewall(name); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := r.b.DeleteDevice(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("deleting interface %s: %w", name, err))
			continue
		}
		r.log.Info("removed interface", "interface", name, "interface_id", id)
		delete(r.owned, name)
		if err := r.dir.saveOwned(r.owned); err != nil {
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

// removeStaleKeys deletes the keys of interfaces no longer in ds once no
// owned device uses them.
func (r *reconciler) removeStaleKeys(ds *api.DesiredState) error {
	keep := map[string]bool{}
	for _, d := range ds.Interfaces {
		keep[d.ID] = true
	}
	for _, id := range r.owned {
		keep[id] = true
	}
	ids, err := r.keys.list()
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		if !keep[id] {
			errs = append(errs, r.keys.remove(id))
		}
	}
	return errors.Join(errs...)
}

// describePlan turns a plan into log attributes; it holds no secrets.
func describePlan(p plan) []any {
	var attrs []any
	if p.Create {
		attrs = append(attrs, "created", true)
	}
	if c := p.WireGuard; c != nil {
		if c.PrivateKey != nil {
			attrs = append(attrs, "key_set", true)
		}
		if c.ListenPort != nil {
			attrs = append(attrs, "listen_port", *c.ListenPort)
		}
		var add, upd, del int
		for _, pc := range c.Peers {
			switch {
			case pc.Remove:
				del++
			case pc.UpdateOnly:
				upd++
			default:
				add++
			}
		}
		attrs = append(attrs, "peers_added", add, "peers_updated", upd, "peers_removed", del)
	}
	if p.MTU != 0 {
		attrs = append(attrs, "mtu", p.MTU)
	}
	if len(p.AddAddrs)+len(p.DelAddrs) > 0 {
		attrs = append(attrs, "addresses_added", len(p.AddAddrs), "addresses_deleted", len(p.DelAddrs))
	}
	if len(p.AddRoutes)+len(p.DelRoutes) > 0 {
		attrs = append(attrs, "routes_added", len(p.AddRoutes), "routes_deleted", len(p.DelRoutes))
	}
	if p.Up {
		attrs = append(attrs, "up", true)
	}
	return attrs
}

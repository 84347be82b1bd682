//go:build windows

package platform

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/windows"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
	"golang.zx2c4.com/wireguard/windows/driver"
	"golang.zx2c4.com/wireguard/windows/tunnel/winipcfg"
)

// ntBackend drives wireguard-nt, the WireGuard driver for the Windows
// kernel, through golang.zx2c4.com/wireguard/windows/driver: one adapter per
// interface, named with drago's name and with a GUID derived from it, so
// wg.exe (`wg show`) and Windows' own tools see it under that name. The IP
// helper API (iphlpapi, through wireguard-windows' winipcfg, which the driver
// package itself uses) sets addresses, MTU and routes.
//
// The driver's user-mode half, wireguard.dll, is loaded with
// LoadLibraryEx(LOAD_LIBRARY_SEARCH_APPLICATION_DIR|
// LOAD_LIBRARY_SEARCH_SYSTEM32): it must sit next to drago.exe (the install
// folder, where the MSI puts it) or in System32; the current directory and
// PATH are not searched. New checks that it loads and has every function
// used, since the driver package panics on a missing one. Creating an
// adapter installs the driver the DLL carries and needs Administrator rights
// (the agent runs as a service).
//
// Adapters belong to this process: closing the handle that created one
// (DeleteDevice, Close) removes it with its addresses and routes, and the OS
// closes the handles of a process that dies. wireguard-nt has no firewall
// mark.
//
// This backend was compiled and vetted for windows/amd64 and windows/arm64
// and its pure parts (ntconfig.go) are unit-tested on Linux, but it has not
// run on Windows: the project's machines have none.
type ntBackend struct {
	log      *slog.Logger
	adapters *registry[*ntAdapter]
}

var _ Backend = (*ntBackend)(nil)

// ntAdapter is one wireguard-nt adapter of this process.
type ntAdapter struct {
	a    *driver.Adapter
	luid winipcfg.LUID
}

// Close removes the adapter with its addresses and routes.
func (ad *ntAdapter) Close() error { return ad.a.Close() }

// The flag values of ntconfig.go are wireguard-nt's: each line below fails
// to compile (constant index out of range) if one differs.
var (
	_ = [1]struct{}{}[driver.InterfaceHasPublicKey^ntInterfaceHasPublicKey]
	_ = [1]struct{}{}[driver.InterfaceHasPrivateKey^ntInterfaceHasPrivateKey]
	_ = [1]struct{}{}[driver.InterfaceHasListenPort^ntInterfaceHasListenPort]
	_ = [1]struct{}{}[driver.InterfaceReplacePeers^ntInterfaceReplacePeers]
	_ = [1]struct{}{}[driver.PeerHasPublicKey^ntPeerHasPublicKey]
	_ = [1]struct{}{}[driver.PeerHasPresharedKey^ntPeerHasPresharedKey]
	_ = [1]struct{}{}[driver.PeerHasPersistentKeepalive^ntPeerHasPersistentKeepalive]
	_ = [1]struct{}{}[driver.PeerHasEndpoint^ntPeerHasEndpoint]
	_ = [1]struct{}{}[driver.PeerReplaceAllowedIPs^ntPeerReplaceAllowedIPs]
	_ = [1]struct{}{}[driver.PeerRemove^ntPeerRemove]
	_ = [1]struct{}{}[driver.PeerUpdateOnly^ntPeerUpdateOnly]
	_ = [1]struct{}{}[winipcfg.RouteProtocolNetMgmt^ntRouteProtocol]
)

// ntDLL is the driver's user-mode library; ntDLLFuncs are the functions of
// it that this backend reaches through the driver package.
const ntDLL = "wireguard.dll"

var ntDLLFuncs = []string{
	"WireGuardCreateAdapter", "WireGuardOpenAdapter", "WireGuardCloseAdapter",
	"WireGuardGetAdapterLUID", "WireGuardSetLogger", "WireGuardSetAdapterState",
	"WireGuardGetAdapterState", "WireGuardSetConfiguration", "WireGuardGetConfiguration",
}

// newNT returns a wireguard-nt backend if wireguard.dll loads.
func newNT(log *slog.Logger) (*ntBackend, error) {
	if err := checkNTDLL(); err != nil {
		return nil, fmt.Errorf("platform: wireguard-nt unavailable: %w", err)
	}
	log.Info("using wireguard-nt", "dll_version", driver.Version())
	return &ntBackend{log: log, adapters: newRegistry[*ntAdapter](interfaceExists, "a wireguard-nt adapter")}, nil
}

// checkNTDLL loads wireguard.dll as the driver package does and looks up
// each function it will call.
func checkNTDLL() error {
	h, err := windows.LoadLibraryEx(ntDLL, 0, windows.LOAD_LIBRARY_SEARCH_APPLICATION_DIR|windows.LOAD_LIBRARY_SEARCH_SYSTEM32)
	if err != nil {
		dir := "the folder of drago.exe"
		if exe, err := os.Executable(); err == nil {
			dir = filepath.Dir(exe)
		}
		return fmt.Errorf("loading %s from %s or System32: %w", ntDLL, dir, err)
	}
	defer windows.FreeLibrary(h)
	for _, fn := range ntDLLFuncs {
		if _, err := windows.GetProcAddress(h, fn); err != nil {
			return fmt.Errorf("%s has no %s (not wireguard-nt's DLL, or too old): %w", ntDLL, fn, err)
		}
	}
	return nil
}

// Name implements Backend.
func (b *ntBackend) Name() string { return "nt" }

// Device implements Backend.
func (b *ntBackend) Device(name string) (*Device, error) {
	ad, err := b.adapters.get(name)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	d, err := ad.state()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	c, err := ad.a.Configuration()
	if err != nil {
		return nil, fmt.Errorf("reading %s: reading configuration: %w", name, err)
	}
	d.WireGuard = *ntWireGuard(name, ntRead(c))
	return d, nil
}

// CreateDevice implements Backend. The adapter starts down with MTU 1420,
// no IPv6 router discovery and no duplicate address detection, so that
// addresses are usable at once.
func (b *ntBackend) CreateDevice(name string) error {
	if _, err := b.adapters.open(name, openAdapter); err != nil {
		return fmt.Errorf("creating %s: %w", name, err)
	}
	b.log.Info("created interface", "device", name)
	return nil
}

// openAdapter creates the adapter name and prepares its IP interfaces.
func openAdapter(name string) (*ntAdapter, error) {
	g := ntAdapterGUID(name)
	guid := &windows.GUID{
		Data1: uint32(g[0])<<24 | uint32(g[1])<<16 | uint32(g[2])<<8 | uint32(g[3]),
		Data2: uint16(g[4])<<8 | uint16(g[5]),
		Data3: uint16(g[6])<<8 | uint16(g[7]),
		Data4: [8]byte(g[8:16]),
	}
	a, err := driver.CreateAdapter(name, "Drago", guid)
	if err != nil {
		return nil, fmt.Errorf("creating wireguard-nt adapter: %w", err)
	}
	ad := &ntAdapter{a: a, luid: a.LUID()}
	if err := ad.prepare(); err != nil {
		return nil, errors.Join(err, a.Close())
	}
	return ad, nil
}

// interfaceExists reports whether Windows has an interface named name. It
// never fails: the error is there for the registry.
func interfaceExists(name string) (bool, error) {
	_, err := net.InterfaceByName(name)
	return err == nil, nil
}

// DeleteDevice implements Backend.
func (b *ntBackend) DeleteDevice(name string) error {
	if err := b.adapters.remove(name); err != nil {
		return fmt.Errorf("deleting %s: %w", name, err)
	}
	b.log.Info("deleted interface", "device", name)
	return nil
}

// ConfigureWireGuard implements Backend.
func (b *ntBackend) ConfigureWireGuard(name string, cfg wgtypes.Config) error {
	ad, err := b.adapters.get(name)
	if err == nil {
		err = ad.configure(cfg)
	}
	if err != nil {
		return fmt.Errorf("configuring %s: %w", name, err)
	}
	return nil
}

// SetMTU implements Backend: it sets the IPv4 and IPv6 MTU (NlMtu). IPv6
// needs at least 1280: below that, the IPv6 MTU stays and a warning is
// logged.
func (b *ntBackend) SetMTU(name string, mtu int) error {
	ad, err := b.adapters.get(name)
	if err == nil {
		err = CheckMTU(mtu)
	}
	if err == nil {
		if mtu < 1280 {
			b.log.Warn("IPv6 needs an MTU of at least 1280; setting the IPv4 MTU only", "device", name, "mtu", mtu)
		}
		err = ad.eachFamily(func(row *winipcfg.MibIPInterfaceRow) bool {
			if row.Family == windows.AF_INET6 && mtu < 1280 {
				return false
			}
			row.NLMTU = uint32(mtu)
			return true
		})
	}
	if err != nil {
		return fmt.Errorf("setting mtu %d on %s: %w", mtu, name, err)
	}
	return nil
}

// SetUp implements Backend.
func (b *ntBackend) SetUp(name string) error {
	ad, err := b.adapters.get(name)
	if err == nil {
		err = ad.a.SetAdapterState(driver.AdapterStateUp)
	}
	if err != nil {
		return fmt.Errorf("bringing %s up: %w", name, err)
	}
	return nil
}

// AddAddress implements Backend. The address skips duplicate address
// detection (DadStatePreferred). Windows adds the on-link route of its
// subnet, as Linux does.
func (b *ntBackend) AddAddress(name string, p netip.Prefix) error {
	ad, err := b.adapters.get(name)
	if err == nil {
		err = ad.addAddress(p)
	}
	if err != nil {
		return fmt.Errorf("adding address %s to %s: %w", p, name, err)
	}
	return nil
}

// DeleteAddress implements Backend. Deleting an absent address succeeds.
func (b *ntBackend) DeleteAddress(name string, p netip.Prefix) error {
	ad, err := b.adapters.get(name)
	if err == nil {
		err = ad.deleteAddress(p)
	}
	if err != nil {
		return fmt.Errorf("deleting address %s from %s: %w", p, name, err)
	}
	return nil
}

// AddRoute implements Backend: an on-link route to p on the adapter, with
// drago's marks (ntRouteMetric, ntRouteProtocol). Adding a route drago
// already has succeeds; another route to p on the adapter is left alone and
// reported as os.ErrExist.
func (b *ntBackend) AddRoute(name string, p netip.Prefix) error {
	ad, err := b.adapters.get(name)
	if err == nil {
		err = ad.addRoute(p)
	}
	if err != nil {
		return fmt.Errorf("adding route %s via %s: %w", p, name, err)
	}
	return nil
}

// DeleteRoute implements Backend: it removes drago's route to p on the
// adapter and never another. Deleting an absent route succeeds.
func (b *ntBackend) DeleteRoute(name string, p netip.Prefix) error {
	ad, err := b.adapters.get(name)
	if err == nil {
		err = ad.deleteRoute(p)
	}
	if err != nil {
		return fmt.Errorf("deleting route %s via %s: %w", p, name, err)
	}
	return nil
}

// Close implements Backend: it removes every adapter this backend created.
func (b *ntBackend) Close() error { return b.adapters.close() }

// prepare readies a new adapter's IP interfaces, as wireguard-windows does.
func (ad *ntAdapter) prepare() error {
	err := ad.eachFamily(func(row *winipcfg.MibIPInterfaceRow) bool {
		row.RouterDiscoveryBehavior = winipcfg.RouterDiscoveryDisabled
		row.DadTransmits = 0
		row.ManagedAddressConfigurationSupported = false
		row.OtherStatefulConfigurationSupported = false
		row.NLMTU = DefaultMTU
		return true
	})
	if err != nil {
		return fmt.Errorf("setting up ip interfaces: %w", err)
	}
	return nil
}

// eachFamily reads the adapter's IPv4 and IPv6 interface, passes each to
// change and writes it back if change returns true. A family not bound to
// the adapter (ERROR_NOT_FOUND) is skipped; at least one must be.
func (ad *ntAdapter) eachFamily(change func(*winipcfg.MibIPInterfaceRow) bool) error {
	found := false
	for _, family := range []winipcfg.AddressFamily{windows.AF_INET, windows.AF_INET6} {
		row, err := ad.luid.IPInterface(family)
		if errors.Is(err, windows.ERROR_NOT_FOUND) {
			continue
		}
		if err != nil {
			return fmt.Errorf("reading ip interface: %w", err)
		}
		found = true
		if !change(row) {
			continue
		}
		if err := row.Set(); err != nil {
			return fmt.Errorf("writing ip interface: %w", err)
		}
	}
	if !found {
		return errors.New("neither IPv4 nor IPv6 is bound to the adapter")
	}
	return nil
}

// state returns the link half of the adapter's Device.
func (ad *ntAdapter) state() (*Device, error) {
	st, err := ad.a.AdapterState()
	if err != nil {
		return nil, fmt.Errorf("reading adapter state: %w", err)
	}
	d := &Device{Up: st == driver.AdapterStateUp}
	if err := ad.eachFamily(func(row *winipcfg.MibIPInterfaceRow) bool {
		if d.MTU == 0 || row.Family == windows.AF_INET {
			d.MTU = int(row.NLMTU)
		}
		return false
	}); err != nil {
		return nil, err
	}
	addrs, err := ad.addresses()
	if err != nil {
		return nil, err
	}
	d.Addresses = assignedAddresses(addrs)
	_, routes, err := ad.routes()
	if err != nil {
		return nil, err
	}
	d.Routes = ntOwnedRoutes(routes, uint64(ad.luid))
	return d, nil
}

// configure applies cfg through the driver's configuration builder.
func (ad *ntAdapter) configure(cfg wgtypes.Config) error {
	c, err := ntConfig(cfg)
	if err != nil {
		return err
	}
	size := unsafe.Sizeof(driver.Interface{}) + uintptr(len(c.Peers))*unsafe.Sizeof(driver.Peer{})
	for _, p := range c.Peers {
		size += uintptr(len(p.AllowedIPs)) * unsafe.Sizeof(driver.AllowedIP{})
	}
	var bld driver.ConfigBuilder
	bld.Preallocate(uint32(size))
	bld.AppendInterface(&driver.Interface{
		Flags:      driver.InterfaceFlag(c.Flags),
		ListenPort: c.ListenPort,
		PrivateKey: c.PrivateKey,
		PublicKey:  c.PublicKey,
		PeerCount:  uint32(len(c.Peers)),
	})
	for _, p := range c.Peers {
		dp := &driver.Peer{
			Flags:               driver.PeerFlag(p.Flags),
			PublicKey:           p.PublicKey,
			PresharedKey:        p.PresharedKey,
			PersistentKeepalive: p.PersistentKeepalive,
			AllowedIPsCount:     uint32(len(p.AllowedIPs)),
		}
		if p.Endpoint.IsValid() {
			if err := dp.Endpoint.SetAddrPort(p.Endpoint); err != nil {
				return fmt.Errorf("peer %s: endpoint %s: %w", p.PublicKey, p.Endpoint, err)
			}
		}
		bld.AppendPeer(dp)
		for _, a := range p.AllowedIPs {
			da := &driver.AllowedIP{AddressFamily: windows.AF_INET6, Cidr: uint8(a.Bits())}
			if a.Addr().Is4() {
				da.AddressFamily = windows.AF_INET
			}
			copy(da.Address[:], a.Addr().AsSlice())
			bld.AppendAllowedIP(da)
		}
	}
	return ad.a.SetConfiguration(bld.Interface())
}

// ntRead copies a configuration the driver returned into an ntInterface.
func ntRead(in *driver.Interface) ntInterface {
	c := ntInterface{
		Flags:      uint32(in.Flags),
		ListenPort: in.ListenPort,
		PrivateKey: in.PrivateKey,
		PublicKey:  in.PublicKey,
	}
	var p *driver.Peer
	for i := range in.PeerCount {
		if i == 0 {
			p = in.FirstPeer()
		} else {
			p = p.NextPeer()
		}
		np := ntPeer{
			Flags:               uint32(p.Flags),
			PublicKey:           p.PublicKey,
			PresharedKey:        p.PresharedKey,
			PersistentKeepalive: p.PersistentKeepalive,
			TxBytes:             p.TxBytes,
			RxBytes:             p.RxBytes,
			LastHandshake:       p.LastHandshake,
		}
		if ap := p.Endpoint.AddrPort(); ap.Addr().IsValid() {
			np.Endpoint = netip.AddrPortFrom(ap.Addr().WithZone(""), ap.Port())
		}
		var a *driver.AllowedIP
		for j := range p.AllowedIPsCount {
			if j == 0 {
				a = p.FirstAllowedIP()
			} else {
				a = a.NextAllowedIP()
			}
			var ip netip.Addr
			switch a.AddressFamily {
			case windows.AF_INET:
				ip = netip.AddrFrom4([4]byte(a.Address[:4]))
			case windows.AF_INET6:
				ip = netip.AddrFrom16(a.Address)
			default:
				continue
			}
			np.AllowedIPs = append(np.AllowedIPs, netip.PrefixFrom(ip, int(a.Cidr)))
		}
		c.Peers = append(c.Peers, np)
	}
	return c
}

// addresses lists the adapter's unicast addresses, link-local ones included.
func (ad *ntAdapter) addresses() ([]netip.Prefix, error) {
	rows, err := winipcfg.GetUnicastIPAddressTable(windows.AF_UNSPEC)
	if err != nil {
		return nil, fmt.Errorf("listing addresses: %w", err)
	}
	var out []netip.Prefix
	for i := range rows {
		if rows[i].InterfaceLUID == ad.luid {
			out = append(out, netip.PrefixFrom(rows[i].Address.Addr().WithZone(""), int(rows[i].OnLinkPrefixLength)))
		}
	}
	return out, nil
}

func (ad *ntAdapter) addAddress(p netip.Prefix) error {
	have, err := ad.addresses()
	if err != nil {
		return err
	}
	present, err := checkNewAddress(have, p)
	if err != nil || present {
		return err
	}
	err = ad.luid.AddIPAddress(netip.PrefixFrom(p.Addr().Unmap(), p.Bits()))
	if errors.Is(err, windows.ERROR_OBJECT_ALREADY_EXISTS) {
		return fmt.Errorf("address in use on another interface: %w", os.ErrExist)
	}
	return err
}

func (ad *ntAdapter) deleteAddress(p netip.Prefix) error {
	if !p.IsValid() {
		return errors.New("invalid prefix")
	}
	have, err := ad.addresses()
	if err != nil {
		return err
	}
	for _, h := range have {
		if h.Addr() == p.Addr().Unmap() && h.Bits() == p.Bits() {
			err := ad.luid.DeleteIPAddress(h)
			if errors.Is(err, windows.ERROR_NOT_FOUND) {
				return nil
			}
			return err
		}
	}
	return nil
}

// routes lists the routes on the adapter, as rows and in ntRoute form, in
// the same order.
func (ad *ntAdapter) routes() ([]winipcfg.MibIPforwardRow2, []ntRoute, error) {
	all, err := winipcfg.GetIPForwardTable2(windows.AF_UNSPEC)
	if err != nil {
		return nil, nil, fmt.Errorf("listing routes: %w", err)
	}
	var rows []winipcfg.MibIPforwardRow2
	var routes []ntRoute
	for i := range all {
		r := &all[i]
		if r.InterfaceLUID != ad.luid {
			continue
		}
		rows = append(rows, *r)
		routes = append(routes, ntRoute{
			LUID:     uint64(r.InterfaceLUID),
			Dst:      r.DestinationPrefix.Prefix(),
			NextHop:  r.NextHop.Addr().WithZone(""),
			Metric:   r.Metric,
			Protocol: uint32(r.Protocol),
		})
	}
	return rows, routes, nil
}

func (ad *ntAdapter) addRoute(p netip.Prefix) error {
	if err := CheckRoutePrefix(p); err != nil {
		return err
	}
	st, err := ad.a.AdapterState()
	if err != nil {
		return fmt.Errorf("reading adapter state: %w", err)
	}
	if st != driver.AdapterStateUp {
		return errLinkDown
	}
	_, routes, err := ad.routes()
	if err != nil {
		return err
	}
	switch owned, foreign := ntRouteTo(routes, uint64(ad.luid), p); {
	case owned:
		return nil
	case foreign:
		return errNotOwned
	}
	row := &winipcfg.MibIPforwardRow2{}
	row.Init()
	row.InterfaceLUID = ad.luid
	if err := row.DestinationPrefix.SetPrefix(p); err != nil {
		return err
	}
	hop := netip.IPv6Unspecified()
	if p.Addr().Is4() {
		hop = netip.IPv4Unspecified()
	}
	if err := row.NextHop.SetAddr(hop); err != nil {
		return err
	}
	row.Metric = ntRouteMetric
	row.Protocol = ntRouteProtocol
	err = row.Create()
	if errors.Is(err, windows.ERROR_OBJECT_ALREADY_EXISTS) {
		return errNotOwned
	}
	return err
}

func (ad *ntAdapter) deleteRoute(p netip.Prefix) error {
	if err := CheckRoutePrefix(p); err != nil {
		return err
	}
	rows, routes, err := ad.routes()
	if err != nil {
		return err
	}
	for i, r := range routes {
		if r.Dst != p || !r.owned(uint64(ad.luid)) {
			continue
		}
		if err := rows[i].Delete(); err != nil && !errors.Is(err, windows.ERROR_NOT_FOUND) {
			return err
		}
	}
	return nil
}

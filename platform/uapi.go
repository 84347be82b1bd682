package platform

import (
	"encoding/hex"
	"fmt"
	"math"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

// This file speaks the WireGuard cross-platform configuration protocol
// (https://www.wireguard.com/xplatform/) to an in-process wireguard-go device,
// whose IpcSet and IpcGet take and return the body of a "set" and a "get".

// uapiConfig renders cfg as the body of a "set" operation.
func uapiConfig(cfg wgtypes.Config) string {
	var b strings.Builder
	line := func(key, value string) {
		b.WriteString(key)
		b.WriteByte('=')
		b.WriteString(value)
		b.WriteByte('\n')
	}
	if cfg.PrivateKey != nil {
		line("private_key", hex.EncodeToString(cfg.PrivateKey[:]))
	}
	if cfg.ListenPort != nil {
		line("listen_port", strconv.Itoa(*cfg.ListenPort))
	}
	if cfg.FirewallMark != nil {
		line("fwmark", strconv.Itoa(*cfg.FirewallMark))
	}
	if cfg.ReplacePeers {
		line("replace_peers", "true")
	}
	for _, p := range cfg.Peers {
		line("public_key", hex.EncodeToString(p.PublicKey[:]))
		if p.Remove {
			line("remove", "true")
			continue
		}
		if p.UpdateOnly {
			line("update_only", "true")
		}
		if p.PresharedKey != nil {
			line("preshared_key", hex.EncodeToString(p.PresharedKey[:]))
		}
		if p.Endpoint != nil {
			line("endpoint", p.Endpoint.String())
		}
		if p.PersistentKeepaliveInterval != nil {
			line("persistent_keepalive_interval", strconv.Itoa(int(p.PersistentKeepaliveInterval.Seconds())))
		}
		if p.ReplaceAllowedIPs {
			line("replace_allowed_ips", "true")
		}
		for _, n := range p.AllowedIPs {
			line("allowed_ip", n.String())
		}
	}
	return b.String()
}

// parseUAPIDevice parses the body of a "get" operation. Unknown keys are
// ignored; PublicKey is derived from a non-zero PrivateKey; numbers out of
// the protocol's ranges are errors.
func parseUAPIDevice(s string) (*wgtypes.Device, error) {
	var d wgtypes.Device
	var peer *wgtypes.Peer
	for line := range strings.Lines(s) {
		line = strings.TrimSuffix(line, "\n")
		if line == "" {
			break
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("parsing uapi line %q: no '='", line)
		}
		if err := parseUAPILine(&d, &peer, key, value); err != nil {
			return nil, fmt.Errorf("parsing uapi %s: %w", key, err)
		}
	}
	if d.PrivateKey != (wgtypes.Key{}) {
		d.PublicKey = d.PrivateKey.PublicKey()
	}
	return &d, nil
}

// parseUAPILine applies one key=value line to d; *peer is the peer being
// parsed, set by the first public_key line.
func parseUAPILine(d *wgtypes.Device, peer **wgtypes.Peer, key, value string) error {
	var err error
	switch key {
	case "errno":
		if value != "0" {
			return fmt.Errorf("device reported errno %s", value)
		}
		return nil
	case "public_key":
		d.Peers = append(d.Peers, wgtypes.Peer{})
		*peer = &d.Peers[len(d.Peers)-1]
		(*peer).PublicKey, err = parseHexKey(value)
		return err
	}
	p := *peer
	if p == nil {
		switch key {
		case "private_key":
			d.PrivateKey, err = parseHexKey(value)
		case "listen_port":
			d.ListenPort, err = parseUint(value, 16)
		case "fwmark":
			d.FirewallMark, err = parseUint(value, 32)
		}
		return err
	}
	switch key {
	case "preshared_key":
		p.PresharedKey, err = parseHexKey(value)
	case "endpoint":
		var ap netip.AddrPort
		if ap, err = netip.ParseAddrPort(value); err == nil {
			p.Endpoint = net.UDPAddrFromAddrPort(netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()))
		}
	case "last_handshake_time_sec":
		// 0 is never; below 2^62 s, time.Unix cannot overflow.
		var sec uint64
		if sec, err = strconv.ParseUint(value, 10, 62); err == nil && sec != 0 {
			p.LastHandshakeTime = time.Unix(int64(sec), 0)
		}
	case "last_handshake_time_nsec":
		var nsec uint64
		if nsec, err = strconv.ParseUint(value, 10, 32); err == nil && nsec >= uint64(time.Second) {
			err = fmt.Errorf("%d ns is not below a second", nsec)
		}
		if err == nil && !p.LastHandshakeTime.IsZero() {
			p.LastHandshakeTime = p.LastHandshakeTime.Add(time.Duration(nsec))
		}
	case "rx_bytes":
		p.ReceiveBytes, err = strconv.ParseInt(value, 10, 64)
	case "tx_bytes":
		p.TransmitBytes, err = strconv.ParseInt(value, 10, 64)
	case "persistent_keepalive_interval":
		var secs int
		if secs, err = parseUint(value, 16); err == nil {
			p.PersistentKeepaliveInterval = time.Duration(secs) * time.Second
		}
	case "allowed_ip":
		var pfx netip.Prefix
		if pfx, err = netip.ParsePrefix(value); err == nil {
			// Masked, as WireGuard holds it: ::ffff:10.0.0.1/1 is ::/1
			// (unmasked, Prefix would read it back as no IPv4 prefix).
			p.AllowedIPs = append(p.AllowedIPs, IPNet(pfx.Masked()))
		}
	case "protocol_version":
		p.ProtocolVersion, err = strconv.Atoi(value)
	}
	return err
}

// parseUint parses a decimal number of at most bits bits (a port, a mark,
// a keepalive), which must fit an int.
func parseUint(s string, bits int) (int, error) {
	n, err := strconv.ParseUint(s, 10, bits)
	if err == nil && n > math.MaxInt {
		err = fmt.Errorf("%d is out of range", n)
	}
	return int(n), err
}

func parseHexKey(s string) (wgtypes.Key, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return wgtypes.Key{}, err
	}
	return wgtypes.NewKey(b)
}

// IPNet converts p to a net.IPNet, host bits kept: a 4-byte IP for IPv4,
// a 16-byte one for IPv6 (IPv4-mapped included, with its 128-bit mask).
// Prefix converts back.
func IPNet(p netip.Prefix) net.IPNet {
	a := p.Addr()
	return net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(p.Bits(), a.BitLen())}
}

// Prefix converts n to a netip.Prefix, IPv4 unmapped, host bits kept. ok
// is false when n is not a valid CIDR prefix.
func Prefix(n net.IPNet) (p netip.Prefix, ok bool) {
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, bits := n.Mask.Size()
	if bits == 0 {
		return netip.Prefix{}, false
	}
	a = a.Unmap()
	if bits == 128 && a.Is4() {
		ones -= 96
	}
	p = netip.PrefixFrom(a, ones)
	return p, p.IsValid()
}

// ComparePrefixes orders prefixes by address, then length: the order of
// a Device's addresses and routes.
func ComparePrefixes(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

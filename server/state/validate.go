package state

import (
	"net/netip"
	"path"
	"regexp"
	"strconv"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/drago-wg/drago/server/api"
)

var (
	dnsLabel  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	requestID = regexp.MustCompile(`^[A-Za-z0-9_-]{16,128}$`)
)

// checkRequestID accepts an optional idempotency key. The message does not
// repeat the value: it is a secret.
func checkRequestID(field, s string) error {
	if s != "" && !requestID.MatchString(s) {
		return invalid(field, "must be 16-128 letters, digits, '_' or '-'")
	}
	return nil
}

// checkObjectName accepts the name of a host, device or token
// (api.CheckName).
func checkObjectName(field, name, what string) error {
	if name == "" {
		return invalid(field, "is required")
	}
	if api.CheckName(name) != nil {
		return invalid(field, "%q is not %s", name, what)
	}
	return nil
}

func checkName(field, name string, re *regexp.Regexp, what string) error {
	if name == "" {
		return invalid(field, "is required")
	}
	if !re.MatchString(name) {
		return invalid(field, "%q is not %s", name, what)
	}
	return nil
}

func checkLabels(field string, labels map[string]string) error {
	if k, err := api.CheckLabels(labels); err != nil {
		if k != "" {
			field += "." + k
		}
		return invalid(field, "%v", err)
	}
	return nil
}

// checkNamePattern accepts an optional shell pattern (path.Match) for the
// host names a join token may register.
func checkNamePattern(field, pattern string) error {
	if pattern == "" {
		return nil
	}
	if len(pattern) > 128 {
		return invalid(field, "is longer than 128 characters")
	}
	if _, err := path.Match(pattern, ""); err != nil {
		return invalid(field, "%q is not a shell pattern (*, ?, [a-z])", pattern)
	}
	return checkPrintable(field, pattern)
}

func checkPort(field string, port int) error {
	if port < 1 || port > 65535 {
		return invalid(field, "%d is not a port (1-65535)", port)
	}
	return nil
}

// checkIfaceName accepts an OS interface name (api.CheckInterfaceName).
func checkIfaceName(field, name string) error {
	if name == "" {
		return invalid(field, "is required")
	}
	if err := api.CheckInterfaceName(name); err != nil {
		return invalid(field, "%v", err)
	}
	return nil
}

// checkMTU accepts an MTU in the range the agent sets (api.CheckMTU).
func checkMTU(field string, mtu int) error {
	if err := api.CheckMTU(mtu); err != nil {
		return invalid(field, "%v", err)
	}
	return nil
}

func checkKeepalive(field string, secs int) error {
	if secs < 0 || secs > 65535 {
		return invalid(field, "%d is out of range (0-65535 seconds)", secs)
	}
	return nil
}

// parsePrefix parses a masked CIDR prefix.
func parsePrefix(field, s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, invalid(field, "%q is not a CIDR prefix", s)
	}
	if p != p.Masked() {
		return p, invalid(field, "%q has host bits set; did you mean %s?", s, p.Masked())
	}
	return p, nil
}

// parsePrefixes parses a list of masked prefixes, naming the bad element.
func parsePrefixes(field string, list []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(list))
	for i, s := range list {
		p, err := parsePrefix(field+"["+strconv.Itoa(i)+"]", s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// checkEndpoint accepts host:port where host is an IP or a DNS name.
func checkEndpoint(field, s string) error {
	if s == "" {
		return nil
	}
	if err := api.CheckEndpoint(s); err != nil {
		return invalid(field, "%v", err)
	}
	return nil
}

// checkAddress accepts an advertised address: host or host:port.
func checkAddress(field, s string) error {
	if s == "" {
		return nil
	}
	if err := api.CheckAddress(s); err != nil {
		return invalid(field, "%v", err)
	}
	return nil
}

// checkKey accepts a WireGuard key in its canonical base64 form only: keys
// are compared as strings, so another spelling of the same 32 bytes would
// pass for a different key.
func checkKey(field, s string) (wgtypes.Key, error) {
	k, err := wgtypes.ParseKey(s)
	if err != nil || k.String() != s {
		return k, invalid(field, "is not a base64 WireGuard key (44 characters, canonical)")
	}
	return k, nil
}

// maxRefs bounds the lists of references (networks) a request may carry.
const maxRefs = 256

// checkNewMeta refuses an id in a create request (ids are the server's
// alone) and clears the other server-set fields.
func checkNewMeta(m *api.Meta) error {
	if m.ID != "" {
		return invalid("id", "is assigned by the server")
	}
	*m = api.Meta{}
	return nil
}

// checkPrintable refuses non-printable text (api.CheckPrintable).
func checkPrintable(field, s string) error {
	if err := api.CheckPrintable(s); err != nil {
		return invalid(field, "%v", err)
	}
	return nil
}

// reservedRanges may not back a network: loopback, link-local, multicast,
// "this network", reserved, and IPv4-mapped IPv6. Every default route
// overlaps them.
var reservedRanges = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("::/8"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("ff00::/8"),
}

// unroutable are ranges no routed subnet may lie in: loopback, link-local
// and multicast.
var unroutable = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("169.254.0.0/16"),
	netip.MustParsePrefix("224.0.0.0/4"),
	netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("ff00::/8"),
}

// checkNetworkRange refuses a network range that overlaps a reserved range.
func checkNetworkRange(field string, p netip.Prefix) error {
	for _, r := range reservedRanges {
		if p.Overlaps(r) {
			return invalid(field, "%s overlaps the reserved range %s (loopback, link-local, multicast or unspecified)", p, r)
		}
	}
	return nil
}

// checkRoutedSubnets parses routed subnets and refuses those inside
// loopback, link-local or multicast ranges (a default route is allowed: an
// exit node).
func checkRoutedSubnets(field string, list []string) error {
	ps, err := parsePrefixes(field, list)
	if err != nil {
		return err
	}
	for k, p := range ps {
		for _, r := range unroutable {
			if p.Bits() >= r.Bits() && r.Contains(p.Addr()) {
				return invalid(field+"["+strconv.Itoa(k)+"]", "%s lies in %s (loopback, link-local or multicast)", p, r)
			}
		}
	}
	return nil
}

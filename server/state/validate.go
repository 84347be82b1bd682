package state

import (
	"net/netip"
	"path"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/drago-wg/drago/server/api"
)

var (
	dnsLabel  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	hostName  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,62})$`)
	labelKey  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._/-]{0,62})$`)
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

func checkName(field, name string, re *regexp.Regexp, what string) error {
	if name == "" {
		return invalid(field, "is required")
	}
	if !re.MatchString(name) {
		return invalid(field, "%q is not %s", name, what)
	}
	return nil
}

// maxLabels bounds a host's or join token's labels.
const maxLabels = 64

func checkLabels(field string, labels map[string]string) error {
	if len(labels) > maxLabels {
		return invalid(field, "has more than %d labels", maxLabels)
	}
	for k, v := range labels {
		if !labelKey.MatchString(k) {
			return invalid(field, "label key %q must be 1-63 letters, digits, '.', '_', '-' or '/'", k)
		}
		if len(v) > 255 {
			return invalid(field+"."+k, "label value is longer than 255 characters")
		}
		if err := checkPrintable(field+"."+k, v); err != nil {
			return err
		}
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
	if _, err := netip.ParseAddrPort(s); err == nil {
		return nil
	}
	i := strings.LastIndexByte(s, ':')
	if i <= 0 || !hostName.MatchString(s[:i]) {
		return invalid(field, "%q is not host:port", s)
	}
	var port int
	for _, c := range s[i+1:] {
		if c < '0' || c > '9' {
			return invalid(field, "%q is not host:port", s)
		}
		port = port*10 + int(c-'0')
		if port > 65535 {
			break
		}
	}
	if port < 1 || port > 65535 {
		return invalid(field, "%q has no valid port", s)
	}
	return nil
}

// checkAddress accepts an advertised address: host or host:port.
func checkAddress(field, s string) error {
	if s == "" {
		return nil
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return nil
	}
	if hostName.MatchString(s) {
		return nil
	}
	return checkEndpoint(field, s)
}

func checkKey(field, s string) (wgtypes.Key, error) {
	k, err := wgtypes.ParseKey(s)
	if err != nil {
		return k, invalid(field, "is not a base64 WireGuard key")
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

// checkPrintable refuses text that a terminal or a page could take for
// commands: control characters, format characters (bidi overrides) and
// invalid UTF-8.
func checkPrintable(field, s string) error {
	if !utf8.ValidString(s) {
		return invalid(field, "is not valid UTF-8")
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return invalid(field, "contains the non-printable character %U", r)
		}
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

package state

import (
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
)

var (
	dnsLabel  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	hostName  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,62})$`)
	ifaceName = regexp.MustCompile(`^[A-Za-z0-9_.=-]{1,15}$`)
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

func checkLabels(field string, labels map[string]string) error {
	for k, v := range labels {
		if !labelKey.MatchString(k) {
			return invalid(field, "label key %q must be 1-63 letters, digits, '.', '_', '-' or '/'", k)
		}
		if len(v) > 255 {
			return invalid(field+"."+k, "label value is longer than 255 characters")
		}
	}
	return nil
}

func checkPort(field string, port int) error {
	if port < 1 || port > 65535 {
		return invalid(field, "%d is not a port (1-65535)", port)
	}
	return nil
}

func checkMTU(field string, mtu int) error {
	if mtu < 1280 || mtu > 9000 {
		return invalid(field, "%d is out of range (1280-9000)", mtu)
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

package api

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file holds the rules the server and the agent must agree on: the
// server refuses what breaks them, and the agent refuses the same, so that
// a state either side accepts, the other does too.

// MaxInterfaceNameLen is the longest interface name: Linux's IFNAMSIZ less
// the NUL. Windows and macOS take drago's names as labels, under the same
// rule.
const MaxInterfaceNameLen = 15

// CheckInterfaceName reports why name cannot be an interface name, or nil.
// A name is 1 to MaxInterfaceNameLen letters, digits, '_', '.', '=' or '-',
// other than "." and "..": what every OS drago runs on accepts (Linux
// refuses '/', ':', white space and the two dot names).
func CheckInterfaceName(name string) error {
	ok := name != "" && len(name) <= MaxInterfaceNameLen && name != "." && name != ".."
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '_' || c == '.' || c == '=' || c == '-'
	}
	if !ok {
		return fmt.Errorf("%q is not an interface name (at most %d letters, digits, '_', '.', '=', '-'; not \".\" or \"..\")",
			name, MaxInterfaceNameLen)
	}
	return nil
}

// MinMTU and MaxMTU bound an interface's MTU. 1280 is the smallest MTU
// IPv6 allows, and WireGuard on Windows sets no IPv6 MTU below it; 9000 is
// the common jumbo frame. The server has refused MTUs outside this range
// from the start, so no stored network or interface holds one.
const (
	MinMTU = 1280
	MaxMTU = 9000
)

// CheckMTU reports why mtu is not an MTU drago sets, or nil.
func CheckMTU(mtu int) error {
	if mtu < MinMTU || mtu > MaxMTU {
		return fmt.Errorf("%d is out of range (%d-%d)", mtu, MinMTU, MaxMTU)
	}
	return nil
}

// CompareKeyBytes orders WireGuard keys by their 32 bytes: the canonical
// order of public keys, in which the server sends peers, the agent diffs
// them and the platform backends list a device's peers.
func CompareKeyBytes(a, b [32]byte) int { return bytes.Compare(a[:], b[:]) }

// CompareKeys orders public keys given in base64, as the wire carries
// them, in the order of their bytes (CompareKeyBytes), without decoding
// them: base64 writes the bits in order, six to a character, so comparing
// the characters' places in the alphabet (A-Z a-z 0-9 + /) compares the
// bits. That differs from strings.Compare, which puts '+', '/' and the
// digits before the letters. Strings that are not base64 order after the
// alphabet's characters, byte by byte, so that any two strings compare.
func CompareKeys(a, b string) int {
	if a == b {
		return 0
	}
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return cmp.Compare(keyRank[a[i]], keyRank[b[i]])
		}
	}
	return cmp.Compare(len(a), len(b))
}

// keyRank is each byte's place in CompareKeys' order: the base64
// alphabet's characters first, in the alphabet's order, then the others.
var keyRank = func() (r [256]uint16) {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	for c := range r {
		r[c] = uint16(len(alphabet) + c)
	}
	for i := range len(alphabet) {
		r[alphabet[i]] = uint16(i)
	}
	return r
}()

// Names of hosts, devices and tokens: 1-63 letters, digits, '.', '_' or
// '-', starting with a letter or digit. Label keys may also hold '/'.
var (
	nameRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	labelKeyRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$`)
)

// CheckName reports why name cannot name a host, device or token, or nil.
func CheckName(name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("%q is not a name (1-63 letters, digits, '.', '_', '-', starting with a letter or digit)", name)
	}
	return nil
}

// Label bounds.
const (
	MaxLabels        = 64
	MaxLabelValueLen = 255
)

// CheckLabels reports why labels are not valid host labels, or nil, with
// the key at fault ("" for the whole map).
func CheckLabels(labels map[string]string) (key string, err error) {
	if len(labels) > MaxLabels {
		return "", fmt.Errorf("more than %d labels", MaxLabels)
	}
	for k, v := range labels {
		if !labelKeyRE.MatchString(k) {
			return "", fmt.Errorf("label key %q must be 1-63 letters, digits, '.', '_', '-' or '/'", k)
		}
		if len(v) > MaxLabelValueLen {
			return k, fmt.Errorf("label value is longer than %d characters", MaxLabelValueLen)
		}
		if err := CheckPrintable(v); err != nil {
			return k, err
		}
	}
	return "", nil
}

// CheckPrintable refuses text that a terminal or a page could take for
// commands: control characters, format characters (bidi overrides) and
// invalid UTF-8.
func CheckPrintable(s string) error {
	if !utf8.ValidString(s) {
		return errors.New("is not valid UTF-8")
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("contains the non-printable character %U", r)
		}
	}
	return nil
}

// CheckEndpoint reports why s is not host:port, with host an IP address
// (without IPv6 zone) or a DNS name, or nil.
func CheckEndpoint(s string) error {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return noZone(ap.Addr())
	}
	i := strings.LastIndexByte(s, ':')
	if i <= 0 || !nameRE.MatchString(s[:i]) {
		return fmt.Errorf("%q is not host:port", s)
	}
	if port, err := strconv.Atoi(s[i+1:]); err != nil || port < 1 || port > 65535 || s[i+1] == '+' || s[i+1] == '-' {
		return fmt.Errorf("%q has no valid port", s)
	}
	return nil
}

// CheckAddress reports why s is not an address peers can dial a host at:
// an IP address (without zone), a DNS name, or either with a port.
func CheckAddress(s string) error {
	if a, err := netip.ParseAddr(s); err == nil {
		return noZone(a)
	}
	if nameRE.MatchString(s) {
		return nil
	}
	return CheckEndpoint(s)
}

// noZone refuses an IPv6 zone ("%eth0"): it names an interface of one
// machine, means nothing to its peers, and is free text that would reach
// their wg-quick configs.
func noZone(a netip.Addr) error {
	if a.Zone() != "" {
		return fmt.Errorf("%s has an IPv6 zone; give the address without %%zone", a.WithZone(""))
	}
	return nil
}

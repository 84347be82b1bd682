package api

import (
	"bytes"
	"cmp"
	"fmt"
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

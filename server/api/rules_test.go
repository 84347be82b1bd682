package api

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestCheckInterfaceName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"wg0", true},
		{"dg-office", true},
		{"drago-a1b2c3d4e", true},
		{"a_b.c=d-e", true},
		{"A.", true},
		{strings.Repeat("x", 15), true},
		{strings.Repeat("x", 16), false},
		{"drago-a1b2c3d4e5", false}, // 16 bytes
		{"a-name-too-long-for-linux", false},
		{"", false},
		{".", false},
		{"..", false},
		{"wg 0", false},
		{"wg/0", false},
		{"wg%d", false},
		{"a:b", false},
		{"wg+0", false},
		{"wg0\n", false},
		{"wgé", false},
		{"é", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := CheckInterfaceName(tt.name); (err == nil) != tt.ok {
				t.Errorf("CheckInterfaceName(%q) = %v, want ok %v", tt.name, err, tt.ok)
			}
		})
	}
}

func TestCheckMTU(t *testing.T) {
	tests := []struct {
		mtu int
		ok  bool
	}{
		{0, false},
		{-1, false},
		{576, false},
		{1279, false},
		{1280, true},
		{1420, true},
		{1500, true},
		{9000, true},
		{9001, false},
		{65535, false},
	}
	for _, tt := range tests {
		if err := CheckMTU(tt.mtu); (err == nil) != tt.ok {
			t.Errorf("CheckMTU(%d) = %v, want ok %v", tt.mtu, err, tt.ok)
		}
	}
}

func TestCompareKeys(t *testing.T) {
	key := func(b ...byte) [32]byte {
		var k [32]byte
		copy(k[:], b)
		return k
	}
	tests := []struct {
		name string
		a, b [32]byte
	}{
		{"equal", key(1, 2, 3), key(1, 2, 3)},
		{"zero", key(), key(0xff)},
		// Byte order and base64 string order disagree: 0xf8 is written
		// '+' and 0x00 'A'; strings.Compare puts '+' first.
		{"plus after letters", key(0x00), key(0xf8)},
		{"slash after digits", key(0xd3), key(0xfc)},
		{"digit after lowercase", key(0x68), key(0xd0)},
		{"last byte", key(), [32]byte{31: 1}},
		{"last bits", [32]byte{31: 0x10}, [32]byte{31: 0x20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, p := range [][2][32]byte{{tt.a, tt.b}, {tt.b, tt.a}} {
				a, b := encode(p[0]), encode(p[1])
				if got, want := CompareKeys(a, b), bytes.Compare(p[0][:], p[1][:]); got != want {
					t.Errorf("CompareKeys(%s, %s) = %d, want %d (byte order)", a, b, got, want)
				}
				if got, want := CompareKeyBytes(p[0], p[1]), bytes.Compare(p[0][:], p[1][:]); got != want {
					t.Errorf("CompareKeyBytes(%x, %x) = %d, want %d", p[0], p[1], got, want)
				}
			}
		})
	}
}

// TestCompareKeysSorts: sorting keys by CompareKeys and their bytes by
// CompareKeyBytes gives the same order.
func TestCompareKeysSorts(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	keys := make([][32]byte, 500)
	for i := range keys {
		for j := range keys[i] {
			keys[i][j] = byte(r.Uint32())
		}
		keys[i][0] = byte(i % 4) // all share their first character, A
	}
	strs := make([]string, len(keys))
	for i, k := range keys {
		strs[i] = encode(k)
	}
	slices.SortFunc(keys, CompareKeyBytes)
	slices.SortFunc(strs, CompareKeys)
	for i := range keys {
		if strs[i] != encode(keys[i]) {
			t.Fatalf("at %d: CompareKeys sorted %s, CompareKeyBytes %s", i, strs[i], encode(keys[i]))
		}
	}
	if slices.IsSorted(strs) {
		t.Errorf("the keys sort as strings too: the test shows nothing")
	}
}

// TestCompareKeysNotBase64: any strings compare, as a total order.
func TestCompareKeysNotBase64(t *testing.T) {
	in := []string{"", "A", "AA", "B", "/", "=", "~", "é", "A=", "AB", "A~"}
	want := []string{"", "A", "AA", "AB", "A=", "A~", "B", "/", "=", "~", "é"}
	got := slices.SortedFunc(slices.Values(in), CompareKeys)
	if !slices.Equal(got, want) {
		t.Errorf("sorted by CompareKeys = %q, want %q", got, want)
	}
	for _, a := range in {
		for _, b := range in {
			if CompareKeys(a, b) != -CompareKeys(b, a) || (CompareKeys(a, b) == 0) != (a == b) {
				t.Errorf("CompareKeys(%q, %q) = %d, CompareKeys(%q, %q) = %d", a, b, CompareKeys(a, b), b, a, CompareKeys(b, a))
			}
		}
	}
}

func TestComparePeers(t *testing.T) {
	k0, k1 := encode([32]byte{0x00}), encode([32]byte{0xf8}) // "AAAA…", "+AAA…"
	ps := []DesiredPeer{
		{InterfaceID: "if-b", PublicKey: k0},
		{InterfaceID: "if-a", PublicKey: k1},
		{InterfaceID: "if-a", PublicKey: k0},
	}
	slices.SortFunc(ps, ComparePeers)
	want := []DesiredPeer{
		{InterfaceID: "if-a", PublicKey: k0},
		{InterfaceID: "if-a", PublicKey: k1},
		{InterfaceID: "if-b", PublicKey: k0},
	}
	if !slices.EqualFunc(ps, want, func(a, b DesiredPeer) bool { return a.InterfaceID == b.InterfaceID && a.PublicKey == b.PublicKey }) {
		t.Errorf("sorted by ComparePeers = %v, want %v", ps, want)
	}
}

func encode(k [32]byte) string { return base64.StdEncoding.EncodeToString(k[:]) }

func BenchmarkCompareKeys(b *testing.B) {
	x, y := encode([32]byte{1, 2, 3}), encode([32]byte{1, 2, 4})
	for b.Loop() {
		CompareKeys(x, y)
	}
}

package agent

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/drago-wg/drago/server/api"
)

// testKey returns a fixed private key derived from n.
func testKey(n byte) wgtypes.Key {
	var b [wgtypes.KeyLen]byte
	for i := range b {
		b[i] = n
	}
	k, _ := wgtypes.NewKey(b[:])
	return k
}

// peerKey returns the public key of testKey(n).
func peerKey(n byte) wgtypes.Key { return testKey(n).PublicKey() }

// sortKeys sorts keys as the agent and the backends order peers.
func sortKeys(keys []wgtypes.Key) {
	slices.SortFunc(keys, func(a, b wgtypes.Key) int { return api.CompareKeyBytes(a, b) })
}

func mustPrefixes(t *testing.T, ss ...string) []netip.Prefix {
	t.Helper()
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// toDesired renders w back to the wire form.
func toDesired(w wantInterface) api.DesiredInterface {
	d := api.DesiredInterface{ID: w.ID, Name: w.Name, ListenPort: w.ListenPort, MTU: w.MTU}
	for _, a := range w.Addresses {
		d.Addresses = append(d.Addresses, a.String())
	}
	for _, p := range w.Peers {
		dp := api.DesiredPeer{PublicKey: p.PublicKey.String(), Endpoint: p.Endpoint, PersistentKeepalive: int(p.Keepalive / time.Second)}
		for _, a := range p.AllowedIPs {
			dp.AllowedIPs = append(dp.AllowedIPs, a.String())
		}
		d.Peers = append(d.Peers, dp)
	}
	return d
}

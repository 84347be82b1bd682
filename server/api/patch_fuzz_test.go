package api

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// FuzzPatched applies a delta (JSON of a DesiredState with patches) to a
// base state (JSON; its peers are put in the server's order first, as
// Patched requires) and checks the result against a plain model: each
// patch drops the peers of the interfaces it names in Remove or Peers and
// adds Peers. The result's peers are in order, the base is left unchanged,
// and a delta on another index or host, or patching an interface the base
// lacks, is an error.
func FuzzPatched(f *testing.F) {
	base := `{"index":7,"host_id":"h1","rotate_keys":true,"interfaces":[` +
		`{"id":"i1","name":"wg0","network_id":"n1","addresses":["10.0.0.1/24"],"listen_port":51820,"mtu":1420,"peers":[` +
		`{"interface_id":"a","public_key":"ka","endpoint":"192.0.2.1:51820","allowed_ips":["10.0.0.2/32"]},` +
		`{"interface_id":"b","public_key":"kb","allowed_ips":["10.0.0.3/32"],"persistent_keepalive":25},` +
		`{"interface_id":"b","public_key":"kb2","allowed_ips":[]},` +
		`{"interface_id":"d","public_key":"kd","allowed_ips":["10.0.0.5/32"]}]},` +
		`{"id":"i2","name":"wg1","network_id":"n2","addresses":[],"listen_port":51821,"mtu":1420,"peers":[]}]}`
	for _, delta := range []string{
		`{"index":9,"host_id":"h1","base_index":7,"patches":[{"interface_id":"i1","remove":["b"],"peers":[{"interface_id":"c","public_key":"kc","allowed_ips":["10.0.0.4/32"]}]}]}`,
		`{"index":9,"host_id":"h1","base_index":7,"patches":[{"interface_id":"i1","peers":[{"interface_id":"a","public_key":"ka","endpoint":"192.0.2.9:1","allowed_ips":["10.0.0.2/32"]},{"interface_id":"0","public_key":"k0","allowed_ips":[]},{"interface_id":"z","public_key":"kz","allowed_ips":[]}]}]}`,
		`{"index":9,"host_id":"h1","base_index":7,"patches":[{"interface_id":"i1","remove":["a","b","d","x"]},{"interface_id":"i2","peers":[{"interface_id":"a","public_key":"ka","allowed_ips":["10.0.0.2/32"]}]}]}`,
		`{"index":9,"host_id":"h1","base_index":7,"patches":[{"interface_id":"i1","remove":["d"]},{"interface_id":"i1","peers":[{"interface_id":"d","public_key":"kd3","allowed_ips":[]},{"interface_id":"d","public_key":"kd3","allowed_ips":["10.9.9.9/32"]}]}]}`,
		`{"index":9,"host_id":"h1","base_index":7}`,
		`{"index":9,"host_id":"h1","base_index":6,"patches":[]}`,
		`{"index":9,"host_id":"h2","base_index":7,"patches":[]}`,
		`{"index":9,"host_id":"h1","base_index":7,"patches":[{"interface_id":"i3","remove":["a"]}]}`,
	} {
		f.Add([]byte(base), []byte(delta))
	}
	f.Fuzz(func(t *testing.T, baseJSON, deltaJSON []byte) {
		var base, delta DesiredState
		if json.Unmarshal(baseJSON, &base) != nil || json.Unmarshal(deltaJSON, &delta) != nil {
			return
		}
		for k := range base.Interfaces {
			slices.SortFunc(base.Interfaces[k].Peers, ComparePeers)
		}
		before, _ := json.Marshal(base)
		want, wantErr := patchModel(&base, &delta)
		got, err := delta.Patched(&base)
		if after, _ := json.Marshal(base); !bytes.Equal(before, after) {
			t.Fatalf("Patched changed the base:\n%s\n%s", before, after)
		}
		if (err != nil) != wantErr {
			t.Fatalf("error %v, the model expects one: %v", err, wantErr)
		}
		if err != nil {
			return
		}
		for _, i := range got.Interfaces {
			if !slices.IsSortedFunc(i.Peers, ComparePeers) {
				t.Fatalf("interface %q: peers out of order: %+v", i.ID, i.Peers)
			}
		}
		canon := func(ds *DesiredState) {
			for k := range ds.Interfaces {
				ds.Interfaces[k].Peers = slices.Clone(ds.Interfaces[k].Peers)
				slices.SortStableFunc(ds.Interfaces[k].Peers, func(a, b DesiredPeer) int {
					ab, _ := json.Marshal(a)
					bb, _ := json.Marshal(b)
					return bytes.Compare(ab, bb)
				})
			}
		}
		canon(got)
		canon(want)
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("Patched (-model +got):\n%s", diff)
		}
	})
}

// patchModel computes the state a delta describes, peer by peer.
func patchModel(base, ds *DesiredState) (*DesiredState, bool) {
	if base.Index != ds.BaseIndex || base.HostID != ds.HostID {
		return nil, true
	}
	out := *base
	out.Index, out.BaseIndex, out.Patches = ds.Index, 0, nil
	out.Interfaces = slices.Clone(base.Interfaces)
	for _, p := range ds.Patches {
		k := slices.IndexFunc(out.Interfaces, func(i DesiredInterface) bool { return i.ID == p.InterfaceID })
		if k < 0 {
			return nil, true
		}
		var peers []DesiredPeer
		for _, q := range out.Interfaces[k].Peers {
			named := slices.Contains(p.Remove, q.InterfaceID) ||
				slices.ContainsFunc(p.Peers, func(n DesiredPeer) bool { return n.InterfaceID == q.InterfaceID })
			if !named {
				peers = append(peers, q)
			}
		}
		out.Interfaces[k].Peers = append(peers, p.Peers...)
	}
	return &out, false
}

package state

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/drago-wg/drago/server/api"
)

func fleetKey(n, h int) string {
	var key [32]byte
	copy(key[:], fmt.Sprintf("%d-%d", n, h))
	return base64.StdEncoding.EncodeToString(key[:])
}

func TestTopology(t *testing.T) {
	s, hosts := fleet(t, 1, 6, api.TopologyMesh)
	iface := func(h int) string {
		ds, err := s.DesiredState(context.Background(), hosts[0][h], 0, 0, false)
		if err != nil {
			t.Fatal(err)
		}
		return ds.Interfaces[0].ID
	}
	ids := make([]string, 6)
	for h := range ids {
		ids[h] = iface(h)
	}
	fresh, stale := time.Now().Add(-time.Minute), time.Now().Add(-10*time.Minute)
	rep := api.StatusReport{Interfaces: []api.InterfaceStatus{{ID: ids[0], PublicKey: fleetKey(0, 0), Peers: []api.PeerStatus{
		{PublicKey: fleetKey(0, 1), LastHandshake: &fresh},
		{PublicKey: fleetKey(0, 2), LastHandshake: &stale},
		{PublicKey: fleetKey(0, 3)},
	}}}}
	if err := s.ReportStatus(hosts[0][0], rep, ""); err != nil {
		t.Fatal(err)
	}
	all := TopologyQuery{Limit: DefaultTopologyNodes, EdgeLimit: DefaultTopologyEdges}
	top, err := s.Topology("n0", all)
	if err != nil {
		t.Fatal(err)
	}
	want := api.TopologySummary{Nodes: 6, Ready: 6, Links: 15, Problems: 6, Fresh: 1, Stale: 1}
	if top.Summary != want {
		t.Errorf("summary = %+v, want %+v", top.Summary, want)
	}
	if len(top.Nodes) != 6 || len(top.Edges) != 15 || top.EdgesMore {
		t.Fatalf("got %d nodes, %d edges (more %v); want 6 and 15", len(top.Nodes), len(top.Edges), top.EdgesMore)
	}
	for _, n := range top.Nodes {
		if n.InterfaceID == ids[0] && (n.Peers != 5 || n.Fresh != 1 || n.Stale != 1 || n.Never != 3) {
			t.Errorf("node h0-0 = %+v, want 5 peers: 1 fresh, 1 stale, 3 never", n)
		}
	}
	edgeOf := func(edges []api.TopologyEdge, a, b string) *api.TopologyEdge {
		if b < a {
			a, b = b, a
		}
		for k := range edges {
			if edges[k].A == a && edges[k].B == b {
				return &edges[k]
			}
		}
		return nil
	}
	if e := edgeOf(top.Edges, ids[0], ids[1]); e == nil || e.LastHandshake == nil || !e.LastHandshake.Equal(fresh) || !e.Implicit {
		t.Errorf("edge h0-h1 = %+v, want an implicit one with the fresh handshake", e)
	}

	tests := []struct {
		name      string
		q         TopologyQuery
		nodes     int
		edges     int
		more      bool
		noneFresh bool
	}{
		{"default page", TopologyQuery{Limit: 0, EdgeLimit: 1, Edges: api.EdgesNone}, 6, 0, false, false},
		{"node page", TopologyQuery{Limit: 2, Offset: 5, EdgeLimit: 1, Edges: api.EdgesNone}, 1, 0, false, false},
		{"edge page", TopologyQuery{Limit: 1, EdgeLimit: 4}, 1, 4, true, false},
		{"last edge page", TopologyQuery{Limit: 1, EdgeLimit: 4, EdgeOffset: 12}, 1, 3, false, false},
		{"one node's links", TopologyQuery{EdgeLimit: 100, Node: ids[0]}, 1, 5, false, false},
		{"one node's links, paged", TopologyQuery{Limit: 1, EdgeLimit: 2, Node: ids[3]}, 1, 2, true, false},
		{"problems", TopologyQuery{Limit: 1, EdgeLimit: 100, Edges: api.EdgesProblems}, 1, 14, false, true},
		{"problems capped", TopologyQuery{Limit: 1, EdgeLimit: 10, Edges: api.EdgesProblems}, 1, 10, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Topology("n0", tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Nodes) != tt.nodes || len(got.Edges) != tt.edges || got.EdgesMore != tt.more {
				t.Errorf("got %d nodes, %d edges (more %v); want %d, %d (more %v)", len(got.Nodes), len(got.Edges), got.EdgesMore, tt.nodes, tt.edges, tt.more)
			}
			if tt.q.Node != "" && got.Nodes[0].InterfaceID != tt.q.Node {
				t.Errorf("node %s answered, want %s", got.Nodes[0].InterfaceID, tt.q.Node)
			}
			for _, e := range got.Edges {
				if tt.q.Node != "" && e.A != tt.q.Node && e.B != tt.q.Node {
					t.Errorf("edge %s-%s is not a link of %s", e.A, e.B, tt.q.Node)
				}
				if tt.noneFresh && e.LastHandshake != nil && time.Since(*e.LastHandshake) < api.FreshHandshake {
					t.Errorf("problem edge %s-%s has a fresh handshake", e.A, e.B)
				}
				if e.A >= e.B {
					t.Errorf("edge %s-%s is not ordered", e.A, e.B)
				}
			}
		})
	}

	bad := []struct {
		q     TopologyQuery
		field string
	}{
		{TopologyQuery{EdgeLimit: 1, Edges: "some"}, "edges"},
		{TopologyQuery{EdgeLimit: 0}, "edge_limit"},
		{TopologyQuery{EdgeLimit: 1, Limit: MaxTopologyNodes + 1}, "limit"},
		{TopologyQuery{EdgeLimit: 1, Node: "nope"}, "node"},
	}
	for _, b := range bad {
		_, err := s.Topology("n0", b.q)
		var se *Error
		if !errors.As(err, &se) || se.Class != ErrInvalid || se.Field != b.field {
			t.Errorf("Topology(%+v) = %v, want an invalid %s", b.q, err, b.field)
		}
	}
}

// BenchmarkTopology2000Mesh answers the network page's requests for a
// 2,000-host mesh (1,999,000 links): the summary alone (the page's periodic
// check), a page of 1,000 nodes, the problem links (capped at 2,000) and one
// node's 1,999 links.
func BenchmarkTopology2000Mesh(b *testing.B) {
	s, hosts := fleet(b, 1, 2000, api.TopologyMesh)
	ds, err := s.DesiredState(context.Background(), hosts[0][0], 0, 0, false)
	if err != nil {
		b.Fatal(err)
	}
	for _, bm := range []struct {
		name string
		q    TopologyQuery
	}{
		{"summary", TopologyQuery{Limit: 1, EdgeLimit: 1, Edges: api.EdgesNone}},
		{"nodes", TopologyQuery{Limit: MaxTopologyNodes, EdgeLimit: 1, Edges: api.EdgesNone}},
		{"problems", TopologyQuery{Limit: 1, EdgeLimit: 2000, Edges: api.EdgesProblems}},
		{"node", TopologyQuery{EdgeLimit: MaxTopologyEdges, Node: ds.Interfaces[0].ID}},
	} {
		b.Run(bm.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := s.Topology("n0", bm.q); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

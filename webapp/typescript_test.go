package webapp

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/webapp/tsgen"
	"github.com/google/go-cmp/cmp"
)

//go:generate go test -run ^TestAPITypes$ -update .

var update = flag.Bool("update", false, "rewrite src/api/types.ts from the Go wire types")

const typesFile = "src/api/types.ts"

// apiTypes describes src/api/types.ts: the wire types of server/api.
var apiTypes = tsgen.Config{
	Generator: "`go generate ./webapp` (go test ./webapp -run TestAPITypes -update)",
	Header: `Wire types of Drago's REST API, from the Go types in server/api (types.go,
agent.go, policy.go, views.go, audit.go, snapshot.go). Field names are the json tags; times are RFC 3339
strings; "?" marks a field the server may leave out (omitempty, pointers).
Hand-written companions are in types.extra.ts.`,
	Sources: []string{"../server/api/types.go", "../server/api/agent.go", "../server/api/policy.go", "../server/api/views.go", "../server/api/audit.go", "../server/api/snapshot.go"},
	Skip:    []string{"Snapshot", "SnapshotRestored"}, // the operator's backup: not the dashboard's
	Unions: []tsgen.Union{
		{Name: "TopologyMode", Prefix: "Topology"},
		{Name: "HostStatus", Prefix: "Host"},
		{Name: "RuleAction", Prefix: "Action"},
		{Name: "RuleProtocol", Prefix: "Protocol"},
		{Name: "ActorKind", Prefix: "Actor"},
	},
	Types: []any{
		api.Meta{}, api.Network{}, api.Host{}, api.Interface{}, api.ConnectionSide{}, api.Connection{},
		api.Policy{}, api.Token{}, api.JoinToken{}, api.List[tsgen.T]{}, api.Error{}, api.ErrorDetail{}, api.Health{},
		api.Overview{}, api.Event{}, api.Events{}, api.Topology{}, api.TopologySummary{}, api.TopologyNode{}, api.TopologyEdge{}, api.DeviceRequest{},
		api.RegisterRequest{}, api.RegisterResponse{}, api.DesiredState{}, api.PeerPatch{}, api.DesiredInterface{},
		api.DesiredPeer{}, api.StatusReport{}, api.InterfaceStatus{}, api.PeerStatus{},
		api.Rule{}, api.RuleRequest{}, api.RuleCheck{}, api.RuleVerdict{}, api.DesiredFirewall{}, api.FirewallSet{}, api.FirewallRule{},
		api.PortRange{}, api.FirewallStatus{}, api.AuditEntry{}, api.AuditActor{}, api.CounterPoint{}, api.HostHistory{}, api.PeerHistory{}, api.ConnectionHistory{},
		api.Cluster{}, api.ClusterServer{},
	},
	Fields: map[string]string{
		"Network.topology":       "TopologyMode",
		"Host.status":            "HostStatus",
		"Network.default_action": "RuleAction",
		"Rule.action":            "RuleAction",
		"Rule.protocol":          "RuleProtocol",
		"AuditActor.kind":        "ActorKind",
	},
}

// TestAPITypes fails when src/api/types.ts differs from what the Go types
// make of it; -update (or go generate) rewrites it.
func TestAPITypes(t *testing.T) {
	got, err := tsgen.Generate(apiTypes)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(typesFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(typesFile)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(strings.Split(string(want), "\n"), strings.Split(string(got), "\n")); diff != "" {
		t.Errorf("%s is not what the Go types in server/api make (-committed +generated); run `go generate ./webapp`:\n%s", typesFile, diff)
	}
}

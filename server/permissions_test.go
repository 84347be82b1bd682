package server

import (
	"bytes"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/state"
	"github.com/drago-wg/drago/server/store"
)

var updatePermissions = flag.Bool("update-permissions", false, "rewrite testdata/permissions.txt from the server's answers")

// credentials are the callers of the permission matrix, in column order.
var credentials = []string{"none", "wrong", "join", "host", "sread", "swrite", "other", "root"}

// permFixture is a fresh server with two networks of hosts and a secret
// for each kind of caller. The objects named in paths are in network a;
// "sread" reads everything of a, "swrite" writes everything of a and c,
// "other" writes everything of b.
type permFixture struct {
	srv     *Server
	secrets map[string]string
	ids     map[string]string // path variable -> object id
}

func newPermFixture(t *testing.T) *permFixture {
	t.Helper()
	srv, root, err := New(Config{Store: store.NewMem()}, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	st := srv.State()
	f := &permFixture{srv: srv, secrets: map[string]string{"root": root, "wrong": "dgm_0123456789abcdef_notthesecret"}, ids: map[string]string{}}
	ok := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	a, err := st.CreateNetwork(api.Network{Name: "a", IPv4Range: "10.1.0.0/24"})
	ok(a, err)
	ok(st.CreateNetwork(api.Network{Name: "b", IPv4Range: "10.2.0.0/24", Topology: api.TopologyMesh}))
	ok(st.CreateNetwork(api.Network{Name: "c", IPv4Range: "10.3.0.0/24"}))
	hosts := map[string]string{}
	for _, h := range []struct{ name, net string }{{"a1", "a"}, {"a2", "a"}, {"b1", "b"}} {
		j, err := st.CreateJoinToken(state.Trusted, api.JoinToken{Name: "j-" + h.name, Networks: []string{h.net}, MaxUses: 1})
		ok(j, err)
		reg, err := st.Register(j.ID, api.RegisterRequest{Name: h.name}, "")
		ok(reg, err)
		hosts[h.name] = reg.HostID
		if h.name == "a1" {
			f.secrets["host"] = reg.Credential
		}
		ds, err := st.DesiredState(t.Context(), reg.HostID, 0, 0, false)
		ok(ds, err)
		ok(nil, st.ReportStatus(reg.HostID, api.StatusReport{Interfaces: []api.InterfaceStatus{{ID: ds.Interfaces[0].ID, PublicKey: testKey(h.name)}}}, ""))
		if h.name == "a1" {
			f.ids["interfaces"] = ds.Interfaces[0].ID
		}
	}
	f.ids["host"] = hosts["a1"]
	f.ids["network"] = "a"
	conn, err := st.CreateConnection(api.Connection{NetworkID: "a", A: api.ConnectionSide{InterfaceID: f.ids["interfaces"]}, B: api.ConnectionSide{InterfaceID: firstIface(t, st, hosts["a2"])}})
	ok(conn, err)
	f.ids["connections"] = conn.ID
	rule, err := st.CreateRule(api.RuleRequest{Rule: api.Rule{NetworkID: "a", Action: api.ActionAccept, From: []string{"host:a2"}, To: []string{"host:a1"}, Protocol: api.ProtocolTCP, Ports: []string{"22"}}})
	ok(rule, err)
	f.ids["rules"] = rule.ID
	dev, err := st.CreateDevice(api.DeviceRequest{Network: "a", Name: "phone", PublicKey: testKey("phone")})
	ok(dev, err)
	f.ids["devices"] = dev.ID
	join, err := st.CreateJoinToken(state.Trusted, api.JoinToken{Name: "join-a", Networks: []string{"a"}, MaxUses: 5})
	ok(join, err)
	f.secrets["join"], f.ids["join-tokens"] = join.Secret, join.ID
	for name, pol := range map[string]api.Policy{
		"sread":  {Resource: "*", Access: "read", Networks: []string{"a"}},
		"swrite": {Resource: "*", Access: "write", Networks: []string{"a", "c"}},
		"other":  {Resource: "*", Access: "write", Networks: []string{"b"}},
		"victim": {Resource: "networks", Access: "read", Networks: []string{"a"}},
	} {
		tok, err := st.CreateToken(state.Trusted, api.Token{Name: name, Policies: []api.Policy{pol}})
		ok(tok, err)
		f.secrets[name] = tok.Secret
		if name == "victim" {
			f.ids["tokens"] = tok.ID
		}
	}
	return f
}

func firstIface(t *testing.T, st *state.State, hostID string) string {
	t.Helper()
	l, err := st.Interfaces(state.Filter{Host: hostID}, false)
	if err != nil || len(l.Items) == 0 {
		t.Fatalf("interfaces of %s: %v", hostID, err)
	}
	return l.Items[0].ID
}

// permBodies are the bodies sent to each route: valid for a caller
// allowed to make the call, so that the status shows the access decision.
var permBodies = map[string]string{
	"POST /networks":                 `{"name":"new","ipv4_range":"10.9.0.0/24"}`,
	"PATCH /networks/{network}":      `{"mtu":1400}`,
	"PATCH /hosts/{host}":            `{"labels":{"x":"1"}}`,
	"POST /interfaces":               `{"host_id":"a1","network_id":"c"}`,
	"PATCH /interfaces/{id}":         `{"mtu":1400}`,
	"POST /devices":                  `{"network":"a","name":"laptop","public_key":"` + testKey("laptop") + `"}`,
	"POST /connections":              `{"network_id":"a","a":{"interface_id":"@interfaces"},"b":{"interface_id":"@devices"}}`,
	"PATCH /connections/{id}":        `{"persistent_keepalive":25}`,
	"POST /rules":                    `{"network_id":"a","action":"drop","from":["*"],"to":["role=db"]}`,
	"POST /rules/check":              `{"network_id":"a","from":"a2","to":"host:a1","port":"22/tcp"}`,
	"PATCH /rules/{id}":              `{"position":0,"ports":["22","2222"]}`,
	"POST /tokens":                   `{"name":"t2","policies":[{"resource":"networks","access":"read","networks":["a"]}]}`,
	"POST /join-tokens":              `{"name":"j2","networks":["a"],"max_uses":1}`,
	"POST /agent/register":           `{"name":"newhost"}`,
	"PUT /agent/status":              `{"interfaces":[]}`,
	"POST /hosts/{host}/rotate-keys": ``,
}

// permPath fills a route's path variables with the fixture's objects.
func (f *permFixture) permPath(rt route) string {
	p := rt.path
	p = strings.ReplaceAll(p, "{network}", f.ids["network"])
	p = strings.ReplaceAll(p, "{host}", f.ids["host"])
	if strings.Contains(p, "{id}") {
		kind := strings.Split(strings.TrimPrefix(p, "/"), "/")[0]
		p = strings.ReplaceAll(p, "{id}", f.ids[kind])
	}
	return p
}

// TestPermissionMatrix calls every route with every kind of credential, on
// a fresh server each time, and compares the statuses with the table kept
// in testdata/permissions.txt (go test -run PermissionMatrix
// -update-permissions rewrites it; review the diff).
func TestPermissionMatrix(t *testing.T) {
	routes := newPermFixture(t).srv.routes()
	var got bytes.Buffer
	fmt.Fprintf(&got, "# Status of every route for every kind of caller (server/permissions_test.go).\n")
	fmt.Fprintf(&got, "# Path objects are in network a. sread: read all of a; swrite: write all of a and c;\n")
	fmt.Fprintf(&got, "# other: write all of b; join: join token of a; host: credential of a host in a.\n")
	fmt.Fprintf(&got, "%-38s", "# route")
	for _, c := range credentials {
		fmt.Fprintf(&got, " %6s", c)
	}
	got.WriteByte('\n')
	for _, rt := range routes {
		key := rt.method + " " + rt.path
		fmt.Fprintf(&got, "%-38s", key)
		for _, cred := range credentials {
			f := newPermFixture(t)
			body := permBodies[key]
			for k, id := range f.ids {
				body = strings.ReplaceAll(body, "@"+k, id)
			}
			req := httptest.NewRequest(rt.method, "/api/v1"+f.permPath(rt), strings.NewReader(body))
			if body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			if s := f.secrets[cred]; s != "" {
				req.Header.Set("Authorization", "Bearer "+s)
			}
			w := httptest.NewRecorder()
			before := f.srv.State().Index()
			f.srv.Handler().ServeHTTP(w, req)
			if w.Code >= 400 && f.srv.State().Index() != before {
				t.Errorf("%s as %s: refused with %d but the state changed", key, cred, w.Code)
			}
			checkAudited(t, f.srv, rt, cred, w.Code)
			if w.Code == http.StatusInternalServerError {
				t.Errorf("%s as %s: 500 %s", key, cred, w.Body)
			}
			fmt.Fprintf(&got, " %6d", w.Code)
		}
		got.WriteByte('\n')
	}
	const golden = "testdata/permissions.txt"
	if *updatePermissions {
		if err := os.WriteFile(golden, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got.String()); diff != "" {
		t.Errorf("permission matrix differs from %s (-want +got):\n%s", golden, diff)
	}
}

// checkAudited checks the audit trail after one call of the matrix: every
// write route's call by a credential the server knows left one entry with
// the route and the status answered; any other call left none.
func checkAudited(t *testing.T, srv *Server, rt route, cred string, status int) {
	t.Helper()
	l := srv.State().Audit(state.Trusted, state.AuditFilter{})
	want := 0
	if audited(rt) && cred != "none" && cred != "wrong" {
		want = 1
	}
	if l.Total != want {
		t.Errorf("%s %s as %s: %d audit entries, want %d", rt.method, rt.path, cred, l.Total, want)
		return
	}
	if want == 1 {
		if e := l.Items[0]; e.Route != rt.path || e.Method != rt.method || e.Status != status || e.Kind == "" {
			t.Errorf("%s %s as %s (%d): audit entry %+v", rt.method, rt.path, cred, status, e)
		}
		if e := l.Items[0]; cred == "host" && (e.Actor.Kind != api.ActorHost || e.Actor.Name != "a1") {
			t.Errorf("%s %s as the host: actor %+v", rt.method, rt.path, e.Actor)
		}
	}
}

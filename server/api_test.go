package server

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/mux"

	"github.com/drago-wg/drago/server/api"
)

func TestHealthAndOpenAPIWithoutAuth(t *testing.T) {
	ts := startServer(t, "")
	status, body := ts.raw("GET", "/health", "", "", "")
	if status != 200 || !strings.Contains(body, `"status":"ok"`) {
		t.Fatalf("health: %d %s", status, body)
	}
	status, body = ts.raw("GET", "/openapi.json", "", "", "")
	if status != 200 {
		t.Fatalf("openapi: %d", status)
	}
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil || doc.OpenAPI == "" {
		t.Fatalf("openapi document: %v %q", err, body[:min(len(body), 80)])
	}
	// Every route registered on the router is documented.
	n := 0
	err := ts.srv.Handler().(*mux.Router).Walk(func(r *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		path, err := r.GetPathTemplate()
		methods, merr := r.GetMethods()
		if err != nil || merr != nil || !strings.HasPrefix(path, "/api/v1/") {
			return nil
		}
		for _, m := range methods {
			n++
			if _, ok := doc.Paths[path][strings.ToLower(m)]; !ok {
				t.Errorf("%s %s is not in openapi.json", m, path)
			}
		}
		return nil
	})
	if err != nil || n < 40 {
		t.Fatalf("walked %d routes, err %v", n, err)
	}
}

func TestAuthRequired(t *testing.T) {
	ts := startServer(t, "")
	for _, tc := range []struct{ name, secret string }{
		{"no token", ""},
		{"garbage", "nonsense"},
		{"unknown id", "dgm_0000000000000000_AAAA"},
		{"wrong secret", ts.root[:len(ts.root)-4] + "AAAA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := ts.raw("GET", "/networks", tc.secret, "", "")
			if status != 401 || !strings.Contains(body, "missing or invalid token") {
				t.Fatalf("got %d %s", status, body)
			}
		})
	}
}

func TestNetworkCRUD(t *testing.T) {
	ts := startServer(t, "")
	c, ctx := ts.rootClient(), context.Background()
	n := must[*api.Network](t)(c.CreateNetwork(ctx, &api.Network{Name: "office", IPv4Range: "10.10.0.0/24", IPv6Range: "fd10::/64", Topology: "mesh"}))
	if n.ListenPort != 51820 || n.MTU != 1420 || n.ID == "" || n.ModifyIndex == 0 {
		t.Fatalf("defaults not filled: %+v", n)
	}
	byName := must[*api.Network](t)(c.Network(ctx, "office"))
	byID := must[*api.Network](t)(c.Network(ctx, n.ID))
	if diff := cmp.Diff(byName, byID); diff != "" {
		t.Fatalf("by name vs by id (-want +got):\n%s", diff)
	}
	up := must[*api.Network](t)(c.UpdateNetwork(ctx, "office", map[string]any{"mtu": 1380, "dns": []string{"10.10.0.1"}}))
	if up.MTU != 1380 || up.Name != "office" || up.IPv4Range != "10.10.0.0/24" || up.ModifyIndex <= n.ModifyIndex {
		t.Fatalf("patch: %+v", up)
	}
	list := must[*api.List[api.Network]](t)(c.Networks(ctx, api.ListOptions{}))
	if list.Total != 1 || list.Items[0].MTU != 1380 {
		t.Fatalf("list: %+v", list)
	}
	if err := c.DeleteNetwork(ctx, "office"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Network(ctx, "office"); api.StatusOf(err) != 404 {
		t.Fatalf("after delete: %v", err)
	}
}

// TestBadInput checks that every class of bad input gets its status, names
// the field and changes nothing.
func TestBadInput(t *testing.T) {
	ts := startServer(t, "")
	c, ctx := ts.rootClient(), context.Background()
	must[*api.Network](t)(c.CreateNetwork(ctx, &api.Network{Name: "net", IPv4Range: "10.0.0.0/29"}))
	h1, _ := ts.agentHost("h1", "net")
	_ = h1
	ifs := must[*api.List[api.Interface]](t)(c.Interfaces(ctx, api.ListOptions{Network: "net"}))
	iface := ifs.Items[0]
	js := "application/json"
	for _, tc := range []struct {
		name, method, path, ctype, body string
		status                          int
		field                           string
	}{
		{"unknown field", "POST", "/networks", js, `{"name":"x","ipv4_range":"10.1.0.0/24","colour":"red"}`, 400, "colour"},
		{"wrong type", "POST", "/networks", js, `{"name":"x","ipv4_range":"10.1.0.0/24","mtu":"big"}`, 400, "mtu"},
		{"malformed", "POST", "/networks", js, `{"name":`, 400, "body"},
		{"trailing", "POST", "/networks", js, `{"name":"x","ipv4_range":"10.1.0.0/24"} {}`, 400, "body"},
		{"null", "POST", "/networks", js, `null`, 400, "body"},
		{"empty", "POST", "/networks", js, ``, 400, "body"},
		{"bad name", "POST", "/networks", js, `{"name":"Bad_Name","ipv4_range":"10.1.0.0/24"}`, 400, "name"},
		{"name taken", "POST", "/networks", js, `{"name":"net","ipv4_range":"10.1.0.0/24"}`, 409, "name"},
		{"no range", "POST", "/networks", js, `{"name":"x"}`, 400, "ipv4_range"},
		{"host bits", "POST", "/networks", js, `{"name":"x","ipv4_range":"10.1.0.1/24"}`, 400, "ipv4_range"},
		{"v6 in v4", "POST", "/networks", js, `{"name":"x","ipv4_range":"fd00::/64"}`, 400, "ipv4_range"},
		{"tiny range", "POST", "/networks", js, `{"name":"x","ipv4_range":"10.1.0.0/31"}`, 400, "ipv4_range"},
		{"bad v6", "POST", "/networks", js, `{"name":"x","ipv4_range":"10.1.0.0/24","ipv6_range":"10.2.0.0/24"}`, 400, "ipv6_range"},
		{"bad port", "POST", "/networks", js, `{"name":"x","ipv4_range":"10.1.0.0/24","listen_port":70000}`, 400, "listen_port"},
		{"bad mtu", "POST", "/networks", js, `{"name":"x","ipv4_range":"10.1.0.0/24","mtu":100}`, 400, "mtu"},
		{"bad dns", "POST", "/networks", js, `{"name":"x","ipv4_range":"10.1.0.0/24","dns":["one"]}`, 400, "dns[0]"},
		{"bad topology", "POST", "/networks", js, `{"name":"x","ipv4_range":"10.1.0.0/24","topology":"star"}`, 400, "topology"},
		{"bad keepalive", "POST", "/networks", js, `{"name":"x","ipv4_range":"10.1.0.0/24","persistent_keepalive":-1}`, 400, "persistent_keepalive"},
		{"wrong content type", "POST", "/networks", "text/plain", `{"name":"x","ipv4_range":"10.1.0.0/24"}`, 415, ""},
		{"too large", "POST", "/networks", js, `{"name":"` + strings.Repeat("x", 2<<20) + `"}`, 413, ""},
		{"range excludes addresses", "PATCH", "/networks/net", js, `{"ipv4_range":"10.9.0.0/24"}`, 409, "ipv4_range"},
		{"hub on mesh", "PATCH", "/networks/net", js, `{"hub_interface_id":"` + iface.ID + `"}`, 400, "hub_interface_id"},
		{"address outside", "PATCH", "/interfaces/" + iface.ID, js, `{"addresses":["10.7.0.5"]}`, 400, "addresses[0]"},
		{"broadcast address", "PATCH", "/interfaces/" + iface.ID, js, `{"addresses":["10.0.0.7"]}`, 400, "addresses[0]"},
		{"public key by API", "PATCH", "/interfaces/" + iface.ID, js, `{"public_key":"` + testKey("x") + `"}`, 400, "public_key"},
		{"interface name", "PATCH", "/interfaces/" + iface.ID, js, `{"name":"this-name-is-too-long"}`, 400, "name"},
		{"interface name dots", "PATCH", "/interfaces/" + iface.ID, js, `{"name":".."}`, 400, "name"},
		{"interface mtu", "PATCH", "/interfaces/" + iface.ID, js, `{"mtu":9001}`, 400, "mtu"},
		{"routed subnet", "PATCH", "/interfaces/" + iface.ID, js, `{"routed_subnets":["192.168.1.1/24"]}`, 400, "routed_subnets[0]"},
		{"second interface", "POST", "/interfaces", js, `{"host_id":"h1","network_id":"net"}`, 409, "network_id"},
		{"no such host", "POST", "/interfaces", js, `{"host_id":"nope","network_id":"net"}`, 400, "host_id"},
		{"self connection", "POST", "/connections", js, `{"network_id":"net","a":{"interface_id":"` + iface.ID + `"},"b":{"interface_id":"` + iface.ID + `"}}`, 400, "b.interface_id"},
		{"bad endpoint", "POST", "/connections", js, `{"network_id":"net","a":{"interface_id":"` + iface.ID + `","endpoint":"nowhere"},"b":{"interface_id":"x"}}`, 400, "a.endpoint"},
		{"bad limit", "GET", "/hosts?limit=-1", "", "", 400, "limit"},
		{"bad label filter", "GET", "/hosts?label=nolabel", "", "", 400, "label"},
		{"bad status filter", "GET", "/hosts?status=sleepy", "", "", 400, "status"},
		{"bad firewall filter", "GET", "/interfaces?firewall=ahead", "", "", 400, "firewall"},
		{"firewall filter on devices", "GET", "/devices?firewall=behind", "", "", 400, "firewall"},
		{"bad wait", "GET", "/events?index=1&wait=forever", "", "", 400, "wait"},
		{"bad index", "GET", "/events?index=-3", "", "", 400, "index"},
		{"join token past expiry", "POST", "/join-tokens", js, `{"expires_at":"2001-01-01T00:00:00Z"}`, 400, "expires_at"},
		{"join token bad network", "POST", "/join-tokens", js, `{"networks":["nope"]}`, 400, "networks[0]"},
		{"token without policy", "POST", "/tokens", js, `{"name":"ci"}`, 400, "policies"},
		{"token bad access", "POST", "/tokens", js, `{"name":"ci","policies":[{"resource":"networks","access":"all"}]}`, 400, "policies[0].access"},
		{"device bad key", "POST", "/devices", js, `{"network":"net","name":"phone","public_key":"abc"}`, 400, "public_key"},
		{"range full", "POST", "/devices", js, `{"network":"net","name":"phone","public_key":"` + testKey("p") + `","address":"10.0.0.9"}`, 400, "address"},
		// Dangerous ranges (issue 13, hole 5), on create and on a live network.
		{"default route v4", "POST", "/networks", js, `{"name":"x","ipv4_range":"0.0.0.0/0"}`, 400, "ipv4_range"},
		{"default route v6", "POST", "/networks", js, `{"name":"x","ipv4_range":"10.1.0.0/24","ipv6_range":"::/0"}`, 400, "ipv6_range"},
		{"loopback", "POST", "/networks", js, `{"name":"x","ipv4_range":"127.0.0.0/24"}`, 400, "ipv4_range"},
		{"link-local", "POST", "/networks", js, `{"name":"x","ipv4_range":"169.254.1.0/24"}`, 400, "ipv4_range"},
		{"multicast", "POST", "/networks", js, `{"name":"x","ipv4_range":"239.1.0.0/24"}`, 400, "ipv4_range"},
		{"v6 link-local", "POST", "/networks", js, `{"name":"x","ipv4_range":"10.1.0.0/24","ipv6_range":"fe80::/64"}`, 400, "ipv6_range"},
		{"v6 multicast", "POST", "/networks", js, `{"name":"x","ipv4_range":"10.1.0.0/24","ipv6_range":"ff02::/64"}`, 400, "ipv6_range"},
		{"overlaps a network", "POST", "/networks", js, `{"name":"x","ipv4_range":"10.0.0.0/16"}`, 409, "ipv4_range"},
		{"live network to default route", "PATCH", "/networks/net", js, `{"ipv4_range":"0.0.0.0/0"}`, 400, "ipv4_range"},
		{"live network to loopback", "PATCH", "/networks/net", js, `{"ipv4_range":"127.0.0.0/29"}`, 400, "ipv4_range"},
		{"routed loopback", "PATCH", "/interfaces/" + iface.ID, js, `{"routed_subnets":["127.0.0.0/8"]}`, 400, "routed_subnets[0]"},
		{"routed multicast", "PATCH", "/interfaces/" + iface.ID, js, `{"routed_subnets":["ff02::/16"]}`, 400, "routed_subnets[0]"},
		// Ids are the server's alone (hole 2, hole 8).
		{"network with id", "POST", "/networks", js, `{"id":"abc","name":"x","ipv4_range":"10.1.0.0/24"}`, 400, "id"},
		{"token with id", "POST", "/tokens", js, `{"id":"` + strings.Repeat("x", 40000) + `","name":"ci","policies":[{"resource":"networks","access":"read"}]}`, 400, "id"},
		{"join token with id", "POST", "/join-tokens", js, `{"id":"abc","max_uses":1}`, 400, "id"},
		{"connection with id", "POST", "/connections", js, `{"id":"abc","network_id":"net","a":{"interface_id":"x"},"b":{"interface_id":"y"}}`, 400, "id"},
		{"long path id", "GET", "/hosts/" + strings.Repeat("x", 40000), "", "", 400, "host"},
		{"body-less join token", "POST", "/join-tokens", "", "", 400, "body"},
		{"join token pattern", "POST", "/join-tokens", js, `{"name_pattern":"[a-","max_uses":1}`, 400, "name_pattern"},
		{"never expires and expiry", "POST", "/join-tokens", js, `{"never_expires":true,"expires_at":"2099-01-01T00:00:00Z"}`, 400, "never_expires"},
		{"label escape", "PATCH", "/hosts/h1", js, `{"labels":{"x":"\u001b[2J"}}`, 400, "labels.x"},
		{"label bidi", "PATCH", "/hosts/h1", js, `{"labels":{"x":"a\u202eb"}}`, 400, "labels.x"},
		{"not found", "GET", "/networks/missing", "", "", 404, ""},
		{"no such endpoint", "GET", "/nothing", "", "", 404, ""},
		{"method not allowed", "PUT", "/networks", js, `{}`, 405, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := ts.srv.State().Index()
			status, body := ts.raw(tc.method, tc.path, ts.root, tc.ctype, tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, body)
			}
			var e api.Error
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Err.Message == "" {
				t.Fatalf("error body %q: %v", body, err)
			}
			if e.Err.Field != tc.field {
				t.Errorf("field %q, want %q (message %q)", e.Err.Field, tc.field, e.Err.Message)
			}
			if after := ts.srv.State().Index(); after != before {
				t.Errorf("a rejected request changed the state: index %d -> %d", before, after)
			}
		})
	}
}

func TestAddressAssignment(t *testing.T) {
	ts := startServer(t, "")
	c, ctx := ts.rootClient(), context.Background()
	must[*api.Network](t)(c.CreateNetwork(ctx, &api.Network{Name: "small", IPv4Range: "10.0.0.0/29", IPv6Range: "fd00::/120"}))
	var addrs []string
	for _, name := range []string{"a", "b", "c", "d", "e", "f"} {
		ts.agentHost(name, "small")
	}
	list := must[*api.List[api.Interface]](t)(c.Interfaces(ctx, api.ListOptions{Network: "small"}))
	for _, i := range list.Items {
		addrs = append(addrs, i.Addresses...)
	}
	if len(addrs) != 12 {
		t.Fatalf("got %d addresses: %v", len(addrs), addrs)
	}
	seen := map[string]bool{}
	for _, a := range addrs {
		if seen[a] {
			t.Fatalf("duplicate address %s", a)
		}
		seen[a] = true
	}
	for _, want := range []string{"10.0.0.1/29", "10.0.0.6/29", "fd00::1/120", "fd00::6/120"} {
		if !seen[want] {
			t.Errorf("missing %s in %v", want, addrs)
		}
	}
	// The /29 has 6 usable addresses: the seventh host gets a clear 409.
	jt := must[*api.JoinToken](t)(c.CreateJoinToken(ctx, &api.JoinToken{Networks: []string{"small"}}))
	before := ts.srv.State().Index()
	_, err := ts.client(jt.Secret).Register(ctx, &api.RegisterRequest{Name: "g"})
	if api.StatusOf(err) != 409 || !strings.Contains(err.Error(), "full") {
		t.Fatalf("full range: %v", err)
	}
	if ts.srv.State().Index() != before {
		t.Fatal("failed registration changed the state")
	}
	if _, err := c.Host(ctx, "g"); api.StatusOf(err) != 404 {
		t.Fatalf("host g was created: %v", err)
	}
	// A given address must be free; a released one is reused.
	first := list.Items[0]
	if err := c.DeleteHost(ctx, first.HostID); err != nil {
		t.Fatal(err)
	}
	_, hid := ts.agentHost("g2", "small")
	got := must[*api.List[api.Interface]](t)(c.Interfaces(ctx, api.ListOptions{Host: hid}))
	if diff := cmp.Diff(first.Addresses, got.Items[0].Addresses); diff != "" {
		t.Errorf("released addresses not reused (-want +got):\n%s", diff)
	}
}

func TestPolicies(t *testing.T) {
	ts := startServer(t, "")
	c, ctx := ts.rootClient(), context.Background()
	a := must[*api.Network](t)(c.CreateNetwork(ctx, &api.Network{Name: "a", IPv4Range: "10.1.0.0/24"}))
	must[*api.Network](t)(c.CreateNetwork(ctx, &api.Network{Name: "b", IPv4Range: "10.2.0.0/24"}))
	ro := must[*api.Token](t)(c.CreateToken(ctx, &api.Token{Name: "ro", Policies: []api.Policy{{Resource: "*", Access: "read"}}}))
	scoped := must[*api.Token](t)(c.CreateToken(ctx, &api.Token{Name: "scoped", Policies: []api.Policy{{Resource: "networks", Access: "write", Networks: []string{"a"}}}}))
	if ro.Secret == "" || scoped.Policies[0].Networks[0] != a.ID {
		t.Fatalf("tokens: %+v %+v", ro, scoped)
	}
	// Secrets are shown once.
	if got := must[*api.Token](t)(c.Token(ctx, ro.ID)); got.Secret != "" {
		t.Fatal("secret shown again")
	}
	roc, sc := ts.client(ro.Secret), ts.client(scoped.Secret)
	if _, err := roc.Networks(ctx, api.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := roc.CreateNetwork(ctx, &api.Network{Name: "c", IPv4Range: "10.3.0.0/24"}); api.StatusOf(err) != 403 {
		t.Fatalf("read-only create: %v", err)
	}
	if _, err := roc.CreateToken(ctx, &api.Token{Name: "esc", Policies: []api.Policy{{Resource: "*", Access: "write"}}}); api.StatusOf(err) != 403 {
		t.Fatalf("escalation: %v", err)
	}
	list := must[*api.List[api.Network]](t)(sc.Networks(ctx, api.ListOptions{}))
	if list.Total != 1 || list.Items[0].Name != "a" {
		t.Fatalf("scoped list: %+v", list)
	}
	if _, err := sc.Network(ctx, "b"); api.StatusOf(err) != 403 {
		t.Fatalf("scoped read of b: %v", err)
	}
	if _, err := sc.UpdateNetwork(ctx, "a", map[string]any{"mtu": 1300}); err != nil {
		t.Fatalf("scoped write of a: %v", err)
	}
	if _, err := sc.CreateNetwork(ctx, &api.Network{Name: "d", IPv4Range: "10.4.0.0/24"}); api.StatusOf(err) != 403 {
		t.Fatalf("scoped create: %v", err)
	}
	if _, err := sc.Hosts(ctx, api.ListOptions{}); api.StatusOf(err) != 403 {
		t.Fatalf("scoped hosts: %v", err)
	}
	if err := c.DeleteToken(ctx, ro.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := roc.Networks(ctx, api.ListOptions{}); api.StatusOf(err) != 401 {
		t.Fatalf("revoked token: %v", err)
	}
}

func TestHostCredentialScope(t *testing.T) {
	ts := startServer(t, "")
	c, ctx := ts.rootClient(), context.Background()
	must[*api.Network](t)(c.CreateNetwork(ctx, &api.Network{Name: "m", IPv4Range: "10.1.0.0/24", Topology: "mesh"}))
	h1, id1 := ts.agentHost("h1", "m")
	_, id2 := ts.agentHost("h2", "m")
	ds := must[*api.DesiredState](t)(h1.DesiredState(ctx, 0, 0))
	if ds.HostID != id1 {
		t.Fatalf("desired state of %s, want %s", ds.HostID, id1)
	}
	// A host credential reaches no management endpoint.
	if _, err := h1.Hosts(ctx, api.ListOptions{}); api.StatusOf(err) != 403 {
		t.Fatalf("host credential listing hosts: %v", err)
	}
	if _, err := h1.HostStatus(ctx, id2); api.StatusOf(err) != 403 {
		t.Fatalf("host credential reading another host: %v", err)
	}
	// It can only report its own interfaces.
	other := must[*api.List[api.Interface]](t)(c.Interfaces(ctx, api.ListOptions{Host: id2}))
	before := ts.srv.State().Index()
	err := h1.ReportStatus(ctx, &api.StatusReport{Interfaces: []api.InterfaceStatus{{ID: other.Items[0].ID, PublicKey: testKey("evil")}}})
	if api.StatusOf(err) != 400 || ts.srv.State().Index() != before {
		t.Fatalf("reporting another host's interface: %v", err)
	}
	// A join token is not a host credential and the other way round.
	jt := must[*api.JoinToken](t)(c.CreateJoinToken(ctx, &api.JoinToken{}))
	if _, err := ts.client(jt.Secret).DesiredState(ctx, 0, 0); api.StatusOf(err) != 403 {
		t.Fatalf("join token reading desired state: %v", err)
	}
	if _, err := h1.Register(ctx, &api.RegisterRequest{Name: "x"}); api.StatusOf(err) != 403 {
		t.Fatalf("host credential registering: %v", err)
	}
}

func TestJoinTokens(t *testing.T) {
	ts := startServer(t, "")
	c, ctx := ts.rootClient(), context.Background()
	once := must[*api.JoinToken](t)(c.CreateJoinToken(ctx, &api.JoinToken{Name: "once", MaxUses: 1, Labels: map[string]string{"site": "lab"}}))
	soon := time.Now().Add(1500 * time.Millisecond)
	short := must[*api.JoinToken](t)(c.CreateJoinToken(ctx, &api.JoinToken{Name: "short", ExpiresAt: &soon}))
	must[*api.RegisterResponse](t)(ts.client(once.Secret).Register(ctx, &api.RegisterRequest{Name: "first", Labels: map[string]string{"role": "db"}}))
	h := must[*api.Host](t)(c.Host(ctx, "first"))
	if diff := cmp.Diff(map[string]string{"site": "lab", "role": "db"}, h.Labels); diff != "" {
		t.Errorf("labels (-want +got):\n%s", diff)
	}
	if h.Status != api.HostPending || h.ObservedAddress != "127.0.0.1" {
		t.Errorf("new host: status %q observed %q", h.Status, h.ObservedAddress)
	}
	for _, tc := range []struct {
		name, secret string
		status       int
	}{
		{"used up", once.Secret, 403},
		{"unknown", "dgj_0000_xxxx", 401},
		{"bad name", short.Secret, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &api.RegisterRequest{Name: "second"}
			if tc.name == "bad name" {
				req.Name = "no spaces allowed"
			}
			before := ts.srv.State().Index()
			if _, err := ts.client(tc.secret).Register(ctx, req); api.StatusOf(err) != tc.status {
				t.Fatalf("got %v, want %d", err, tc.status)
			}
			if ts.srv.State().Index() != before {
				t.Fatal("refused registration changed the state")
			}
		})
	}
	time.Sleep(time.Until(soon) + 50*time.Millisecond)
	if _, err := ts.client(short.Secret).Register(ctx, &api.RegisterRequest{Name: "late"}); api.StatusOf(err) != 403 {
		t.Fatalf("expired token: %v", err)
	}
	list := must[*api.List[api.Host]](t)(c.Hosts(ctx, api.ListOptions{}))
	if list.Total != 1 {
		t.Fatalf("hosts after refusals: %+v", list.Items)
	}
}

func TestMergeEdits(t *testing.T) {
	ts := startServer(t, "")
	c, ctx := ts.rootClient(), context.Background()
	must[*api.Network](t)(c.CreateNetwork(ctx, &api.Network{Name: "n", IPv4Range: "10.1.0.0/24", Topology: "hub"}))
	_, hid := ts.agentHost("h", "n")
	t.Run("null label removes it", func(t *testing.T) {
		must[*api.Host](t)(c.UpdateHost(ctx, hid, map[string]any{"labels": map[string]any{"a": "1", "b": "2"}}))
		h := must[*api.Host](t)(c.UpdateHost(ctx, hid, map[string]any{"labels": map[string]any{"a": nil}}))
		if diff := cmp.Diff(map[string]string{"b": "2"}, h.Labels); diff != "" {
			t.Fatalf("labels (-want +got):\n%s", diff)
		}
	})
	t.Run("leaving hub mode drops the hub", func(t *testing.T) {
		hub := ifaceOf(t, c, hid)
		must[*api.Network](t)(c.UpdateNetwork(ctx, "n", map[string]any{"hub_interface_id": hub.ID}))
		n := must[*api.Network](t)(c.UpdateNetwork(ctx, "n", map[string]any{"topology": "mesh"}))
		if n.HubInterfaceID != "" {
			t.Fatalf("hub kept: %+v", n)
		}
	})
	t.Run("devices do not peer with each other", func(t *testing.T) {
		d1 := must[*api.Interface](t)(c.CreateDevice(ctx, &api.DeviceRequest{Network: "n", Name: "phone", PublicKey: testKey("d1")}))
		must[*api.Interface](t)(c.CreateDevice(ctx, &api.DeviceRequest{Network: "n", Name: "laptop", PublicKey: testKey("d2")}))
		cfg := must[string](t)(c.InterfaceConfig(ctx, d1.ID))
		if strings.Count(cfg, "[Peer]") != 1 || strings.Contains(cfg, testKey("d2")) {
			t.Fatalf("device config:\n%s", cfg)
		}
	})
	t.Run("device address error names its field", func(t *testing.T) {
		_, err := c.CreateDevice(ctx, &api.DeviceRequest{Network: "n", Name: "tv", PublicKey: testKey("d3"), Address: "10.9.9.9"})
		var re *api.ResponseError
		if !errors.As(err, &re) || re.Field != "address" || !strings.HasPrefix(re.Message, "address:") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestLargeAnswersAreCompressed(t *testing.T) {
	ts := startServer(t, "")
	for _, tc := range []struct {
		accept, want string
	}{{"gzip", "gzip"}, {"", ""}} {
		req, _ := http.NewRequest("GET", ts.url+"/api/v1/openapi.json", nil)
		if tc.accept != "" {
			req.Header.Set("Accept-Encoding", tc.accept)
		}
		resp, err := http.DefaultTransport.RoundTrip(req) // no transparent decompression
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := resp.Header.Get("Content-Encoding"); got != tc.want {
			t.Fatalf("Accept-Encoding %q: Content-Encoding %q, want %q", tc.accept, got, tc.want)
		}
		if tc.want == "gzip" {
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(zr)
		}
		if !json.Valid(body) || len(body) < gzipMin {
			t.Fatalf("body of %d bytes is not the JSON document", len(body))
		}
	}
}

// TestStatusReportBoundByPeers: a hub's report of its 10,000 spokes is
// accepted, while a host with one peer that reports as many is refused
// with 413 before the body is read whole.
func TestStatusReportBoundByPeers(t *testing.T) {
	ts := startServer(t, "")
	c, ctx := ts.rootClient(), context.Background()
	must[*api.Network](t)(c.CreateNetwork(ctx, &api.Network{Name: "hub", IPv4Range: "10.1.0.0/16", Topology: api.TopologyMesh}))
	must[*api.Network](t)(c.CreateNetwork(ctx, &api.Network{Name: "pair", IPv4Range: "10.2.0.0/24", Topology: api.TopologyMesh}))
	hc, _ := ts.agentHost("hub", "hub")
	const spokes = 10000
	st := ts.srv.State()
	for i := range spokes { // devices are the cheapest real peers
		if _, err := st.CreateDevice(api.DeviceRequest{Network: "hub", Name: "d" + strconv.Itoa(i), PublicKey: testKey("d" + strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	ds := must[*api.DesiredState](t)(hc.DesiredState(ctx, 0, 0))
	now := time.Now()
	is := api.InterfaceStatus{ID: ds.Interfaces[0].ID, PublicKey: ds.Interfaces[0].PublicKey}
	for i := range spokes { // about 1.5 MiB of JSON
		is.Peers = append(is.Peers, api.PeerStatus{PublicKey: testKey("d" + strconv.Itoa(i)), Endpoint: "192.0.2.1:51820", LastHandshake: &now, RxBytes: 123456, TxBytes: 654321})
	}
	if err := hc.ReportStatus(ctx, &api.StatusReport{Interfaces: []api.InterfaceStatus{is}}); err != nil {
		t.Fatalf("hub status report: %v", err)
	}

	small, _ := ts.agentHost("small", "pair")
	ts.agentHost("other", "pair")
	sds := must[*api.DesiredState](t)(small.DesiredState(ctx, 0, 0))
	is.ID, is.PublicKey = sds.Interfaces[0].ID, sds.Interfaces[0].PublicKey
	before := st.Index()
	if err := small.ReportStatus(ctx, &api.StatusReport{Interfaces: []api.InterfaceStatus{is}}); api.StatusOf(err) != http.StatusRequestEntityTooLarge {
		t.Fatalf("10,000 peers from a host with one: %v, want 413", err)
	}
	is.Peers = is.Peers[:200] // under the byte bound, over the peer bound
	if err := small.ReportStatus(ctx, &api.StatusReport{Interfaces: []api.InterfaceStatus{is}}); api.StatusOf(err) != http.StatusBadRequest || !strings.Contains(err.Error(), "peers") {
		t.Fatalf("200 peers from a host with one: %v, want 400 naming peers", err)
	}
	if st.Index() != before {
		t.Fatal("a refused report changed the state")
	}
}

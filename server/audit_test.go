package server

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/store"
)

// TestAuditWrites makes each kind of write through the API and checks the
// entry it leaves; heartbeats leave none, and no secret reaches the
// database file.
func TestAuditWrites(t *testing.T) {
	ts := startServer(t, "")
	ctx := context.Background()
	root := ts.rootClient()
	self := must[*api.Token](t)(root.Token(ctx, "self"))
	var (
		secrets []string
		netID   string
		hostID  string
		ifID    string
		devID   string
		connID  string
		tokID   string
		joinID  string
		hostC   *api.Client
	)
	type want struct {
		method, route, kind string
		id                  *string // the object id, once known
		name                string
		status              int
		fields              map[string]string
		redacted            []string
		actor               string // join_token when not the root token
	}
	var all []want
	step := func(w want, err error) {
		t.Helper()
		if (err != nil) != (w.status >= 400) {
			t.Fatalf("%s %s: %v, want status %d", w.method, w.route, err, w.status)
		}
		all = append(all, w)
		l := must[*api.List[api.AuditEntry]](t)(root.Audit(ctx, api.AuditOptions{Limit: 1}))
		if len(l.Items) != 1 {
			t.Fatalf("%s %s: no audit entry", w.method, w.route)
		}
		e := l.Items[0]
		id := ""
		if w.id != nil {
			id = *w.id
		}
		actor := api.AuditActor{Kind: api.ActorToken, ID: self.ID, Name: self.Name}
		if w.actor == api.ActorJoinToken {
			actor = api.AuditActor{Kind: api.ActorJoinToken, ID: joinID, Name: "j1"}
		}
		got := want{method: e.Method, route: e.Route, kind: e.Kind, name: e.ObjectName, status: e.Status, fields: e.Fields, redacted: e.Redacted}
		wantCmp := w
		wantCmp.id, wantCmp.actor = nil, ""
		if diff := cmp.Diff(wantCmp, got, cmp.AllowUnexported(want{})); diff != "" {
			t.Errorf("%s %s: entry (-want +got):\n%s", w.method, w.route, diff)
		}
		if e.ObjectID != id || e.Actor != actor || e.Remote != "127.0.0.1" || time.Since(e.Time) > time.Minute {
			t.Errorf("%s %s: object %q (want %q), actor %+v (want %+v), remote %q, time %s", w.method, w.route, e.ObjectID, id, e.Actor, actor, e.Remote, e.Time)
		}
	}

	n, err := root.CreateNetwork(ctx, &api.Network{Name: "prod", IPv4Range: "10.7.0.0/24"})
	if err == nil {
		netID = n.ID
	}
	step(want{method: "POST", route: "/networks", kind: "network", id: &netID, name: "prod", status: 201, fields: netFields("prod", "10.7.0.0/24")}, err)
	_, err = root.UpdateNetwork(ctx, "prod", map[string]any{"mtu": 1400})
	step(want{method: "PATCH", route: "/networks/{network}", kind: "network", id: &netID, name: "prod", status: 200, fields: map[string]string{"mtu": "1400"}}, err)
	_, err = root.CreateNetwork(ctx, &api.Network{Name: "bad", IPv4Range: "10.7.0.0/33"})
	step(want{method: "POST", route: "/networks", kind: "network", status: 400, fields: netFields("bad", "10.7.0.0/33")}, err)

	j, err := root.CreateJoinToken(ctx, &api.JoinToken{Name: "j1", Networks: []string{netID}, MaxUses: 1})
	if err == nil {
		joinID = j.ID
		secrets = append(secrets, j.Secret)
	}
	step(want{method: "POST", route: "/join-tokens", kind: "join_token", id: &joinID, name: "j1", status: 201, fields: map[string]string{"name": `"j1"`, "networks": `["` + netID + `"]`, "max_uses": "1"}}, err)

	const requestID = "request-id-0123456789-abcdef"
	secrets = append(secrets, requestID)
	reg, err := ts.client(j.Secret).Register(ctx, &api.RegisterRequest{Name: "web1", OS: "linux", RequestID: requestID})
	if err == nil {
		hostID = reg.HostID
		secrets = append(secrets, reg.Credential)
		hostC = ts.client(reg.Credential)
	}
	step(want{method: "POST", route: "/agent/register", kind: "host", id: &hostID, name: "web1", status: 201, fields: map[string]string{"name": `"web1"`, "os": `"linux"`}, redacted: []string{"request_id"}, actor: api.ActorJoinToken}, err)

	// Heartbeats are not audited.
	ds := must[*api.DesiredState](t)(hostC.DesiredState(ctx, 0, 0))
	ifID = ds.Interfaces[0].ID
	for range 3 {
		if err := hostC.ReportStatus(ctx, &api.StatusReport{Interfaces: []api.InterfaceStatus{{ID: ifID, PublicKey: testKey("web1")}}}); err != nil {
			t.Fatal(err)
		}
	}

	_, err = root.UpdateHost(ctx, "web1", map[string]any{"labels": map[string]string{"role": "web"}})
	step(want{method: "PATCH", route: "/hosts/{host}", kind: "host", id: &hostID, name: "web1", status: 200, fields: map[string]string{"labels": `{"role":"web"}`}}, err)
	_, err = root.RotateKeys(ctx, "web1")
	step(want{method: "POST", route: "/hosts/{host}/rotate-keys", kind: "host", id: &hostID, name: "web1", status: 200}, err)
	_, err = root.UpdateInterface(ctx, ifID, map[string]any{"mtu": 1380})
	step(want{method: "PATCH", route: "/interfaces/{id}", kind: "interface", id: &ifID, name: "dg-prod", status: 200, fields: map[string]string{"mtu": "1380"}}, err)

	d, err := root.CreateDevice(ctx, &api.DeviceRequest{Network: "prod", Name: "phone", PublicKey: testKey("phone")})
	if err == nil {
		devID = d.ID
	}
	step(want{method: "POST", route: "/devices", kind: "device", id: &devID, name: d.Name, status: 201, fields: map[string]string{"network": `"prod"`, "name": `"phone"`, "public_key": `"` + testKey("phone") + `"`}}, err)
	c, err := root.CreateConnection(ctx, &api.Connection{NetworkID: netID, A: api.ConnectionSide{InterfaceID: ifID}, B: api.ConnectionSide{InterfaceID: devID}})
	if err == nil {
		connID = c.ID
	}
	step(want{method: "POST", route: "/connections", kind: "connection", id: &connID, status: 201, fields: map[string]string{"network_id": `"` + netID + `"`, "a": `{"interface_id":"` + ifID + `"}`, "b": `{"interface_id":"` + devID + `"}`}}, err)
	_, err = root.UpdateConnection(ctx, connID, map[string]any{"persistent_keepalive": 25})
	step(want{method: "PATCH", route: "/connections/{id}", kind: "connection", id: &connID, status: 200, fields: map[string]string{"persistent_keepalive": "25"}}, err)
	step(want{method: "DELETE", route: "/connections/{id}", kind: "connection", id: &connID, status: 204}, root.DeleteConnection(ctx, connID))
	step(want{method: "DELETE", route: "/devices/{id}", kind: "device", id: &devID, name: d.Name, status: 204}, root.DeleteDevice(ctx, devID))

	var ruleID string
	rule, err := root.CreateRule(ctx, &api.RuleRequest{Rule: api.Rule{NetworkID: "prod", Action: "drop", From: []string{"*"}, To: []string{"host:web1"}, Protocol: "tcp", Ports: []string{"22"}, Description: "no ssh"}})
	if err == nil {
		ruleID = rule.ID
	}
	step(want{method: "POST", route: "/rules", kind: "rule", id: &ruleID, name: "no ssh", status: 201, fields: map[string]string{"network_id": `"prod"`, "action": `"drop"`, "from": `["*"]`, "to": `["host:web1"]`, "protocol": `"tcp"`, "ports": `["22"]`, "description": `"no ssh"`}}, err)
	_, err = root.UpdateRule(ctx, ruleID, map[string]any{"ports": []string{"2222"}})
	step(want{method: "PATCH", route: "/rules/{id}", kind: "rule", id: &ruleID, name: "no ssh", status: 200, fields: map[string]string{"ports": `["2222"]`}}, err)
	if _, err := root.CheckRule(ctx, &api.RuleCheck{NetworkID: "prod", From: "host:web1", To: "host:web1"}); err != nil {
		t.Fatal(err) // a question: no entry
	}
	step(want{method: "DELETE", route: "/rules/{id}", kind: "rule", id: &ruleID, name: "no ssh", status: 204}, root.DeleteRule(ctx, ruleID))

	tok, err := root.CreateToken(ctx, &api.Token{Name: "ci", Policies: []api.Policy{{Resource: "networks", Access: "read"}}})
	if err == nil {
		tokID = tok.ID
		secrets = append(secrets, tok.Secret)
	}
	step(want{method: "POST", route: "/tokens", kind: "token", id: &tokID, name: "ci", status: 201, fields: map[string]string{"name": `"ci"`, "policies": `[{"resource":"networks","access":"read"}]`}}, err)
	step(want{method: "DELETE", route: "/tokens/{id}", kind: "token", id: &tokID, name: "ci", status: 204}, root.DeleteToken(ctx, tokID))
	// A secret sent in a body is refused, and not kept either.
	const sent = "dgm_0123456789abcdef_aSecretSentInABody"
	secrets = append(secrets, sent)
	status, _ := ts.raw("POST", "/tokens", ts.root, "application/json", `{"name":"x","policies":[],"secret":"`+sent+`"}`)
	step(want{method: "POST", route: "/tokens", kind: "token", status: status, fields: map[string]string{"name": `"x"`, "policies": `[]`}, redacted: []string{"secret"}}, errorIf(status >= 400))

	step(want{method: "DELETE", route: "/join-tokens/{id}", kind: "join_token", id: &joinID, name: "j1", status: 204}, root.DeleteJoinToken(ctx, joinID))
	step(want{method: "DELETE", route: "/interfaces/{id}", kind: "interface", id: &ifID, name: "dg-prod", status: 204}, root.DeleteInterface(ctx, ifID))
	step(want{method: "DELETE", route: "/hosts/{host}", kind: "host", id: &hostID, name: "web1", status: 204}, root.DeleteHost(ctx, "web1"))
	step(want{method: "DELETE", route: "/networks/{network}", kind: "network", id: &netID, name: "prod", status: 204}, root.DeleteNetwork(ctx, "prod"))

	l := must[*api.List[api.AuditEntry]](t)(root.Audit(ctx, api.AuditOptions{Limit: 1000}))
	if l.Total != len(all) {
		t.Errorf("%d audit entries for %d writes (heartbeats must leave none)", l.Total, len(all))
	}
	body := must[*api.List[api.AuditEntry]](t)(root.Audit(ctx, api.AuditOptions{Limit: 1000}))
	checkNoSecrets(t, "the API's answer", []byte(fmtEntries(body.Items)), secrets)
	ts.stop()
	db, err := os.ReadFile(filepath.Join(ts.dir, dbFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(db, []byte(`"route":"/agent/register"`)) {
		t.Fatal("the database file holds no audit entry: is the check below looking at the right bytes?")
	}
	checkNoSecrets(t, "the database file", db, secrets)
}

// netFields are the fields the typed client sends to create a network.
func netFields(name, ipv4 string) map[string]string {
	return map[string]string{"name": `"` + name + `"`, "ipv4_range": `"` + ipv4 + `"`, "default_action": `""`, "listen_port": "0", "mtu": "0", "persistent_keepalive": "0", "topology": `""`}
}

func errorIf(failed bool) error {
	if failed {
		return &apiError{status: http.StatusBadRequest, message: "failed"}
	}
	return nil
}

func fmtEntries(es []api.AuditEntry) string {
	var b strings.Builder
	for _, e := range es {
		b.WriteString(e.Path + " " + e.Error + " " + strings.Join(e.Redacted, ","))
		for k, v := range e.Fields {
			b.WriteString(" " + k + "=" + v)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// checkNoSecrets fails when b holds a secret or the random part of one.
func checkNoSecrets(t *testing.T, where string, b []byte, secrets []string) {
	t.Helper()
	if len(secrets) < 5 {
		t.Fatalf("only %d secrets to look for", len(secrets))
	}
	for _, s := range secrets {
		parts := strings.Split(s, "_")
		if s == "" || bytes.Contains(b, []byte(s)) || bytes.Contains(b, []byte(parts[len(parts)-1])) {
			t.Errorf("%s holds the secret %q", where, s)
		}
	}
}

// TestAuditScoped: a token with audit read access to one network sees the
// writes in that network only; writes elsewhere and writes in no network
// (tokens) take an unscoped grant.
func TestAuditScoped(t *testing.T) {
	ts := startServer(t, "")
	ctx := context.Background()
	root := ts.rootClient()
	a := must[*api.Network](t)(root.CreateNetwork(ctx, &api.Network{Name: "a", IPv4Range: "10.1.0.0/24"}))
	must[*api.Network](t)(root.CreateNetwork(ctx, &api.Network{Name: "b", IPv4Range: "10.2.0.0/24"}))
	must[*api.Interface](t)(root.CreateDevice(ctx, &api.DeviceRequest{Network: "b", Name: "phone", PublicKey: testKey("phone")}))
	must[*api.Interface](t)(root.CreateDevice(ctx, &api.DeviceRequest{Network: "a", Name: "laptop", PublicKey: testKey("laptop")}))
	tok := must[*api.Token](t)(root.CreateToken(ctx, &api.Token{Name: "auditor-a", Policies: []api.Policy{{Resource: "audit", Access: "read", Networks: []string{a.ID}}}}))
	// A failed create in b, named by the body, is b's too.
	if _, err := root.CreateDevice(ctx, &api.DeviceRequest{Network: "b", Name: "bad", PublicKey: "nokey"}); api.StatusOf(err) != 400 {
		t.Fatalf("bad device: %v", err)
	}
	l := must[*api.List[api.AuditEntry]](t)(ts.client(tok.Secret).Audit(ctx, api.AuditOptions{}))
	var got []string
	for _, e := range l.Items {
		got = append(got, e.Method+" "+e.Path)
	}
	// The token is in network a: its creation is a's.
	if diff := cmp.Diff([]string{"POST /tokens", "POST /devices", "POST /networks"}, got); diff != "" {
		t.Errorf("entries seen (-want +got):\n%s", diff)
	}
	for _, e := range l.Items {
		if !slices.Equal(e.Networks, []string{a.ID}) {
			t.Errorf("entry %s %s in networks %v", e.Method, e.Path, e.Networks)
		}
	}
	if all := must[*api.List[api.AuditEntry]](t)(root.Audit(ctx, api.AuditOptions{})); all.Total != 6 {
		t.Errorf("root sees %d entries, want 6", all.Total)
	}
}

// TestAuditQueryErrors: a bad filter is a 400 naming its parameter.
func TestAuditQueryErrors(t *testing.T) {
	ts := startServer(t, "")
	for _, tc := range []struct{ query, field string }{
		{"since=yesterday", "since"},
		{"since=-1h", "since"},
		{"until=2026-13-01T00:00:00Z", "until"},
		{"since=1h&until=2h", "until"},
		{"kind=planet", "kind"},
		{"method=GET", "method"},
		{"limit=-1", "limit"},
		{"limit=100000", "limit"},
		{"offset=x", "offset"},
		{"token=" + strings.Repeat("x", 300), "token"},
		{"object=" + strings.Repeat("x", 300), "object"},
	} {
		status, body := ts.raw("GET", "/audit?"+tc.query, ts.root, "", "")
		if status != http.StatusBadRequest || !contains(body, `"field":"`+tc.field+`"`) {
			t.Errorf("?%s: %d %s; want 400 naming %s", tc.query, status, body, tc.field)
		}
	}
	for _, q := range []string{"since=24h", "since=2026-01-02T15:04:05Z&until=2036-01-02T15:04:05Z", "kind=join_token&method=delete", "token=ci&object=web1"} {
		if status, body := ts.raw("GET", "/audit?"+q, ts.root, "", ""); status != http.StatusOK {
			t.Errorf("?%s: %d %s", q, status, body)
		}
	}
}

// TestAuditFieldsClassified walks the body type of every audited route:
// each JSON field is kept (auditFields, serverFields) or redacted
// (secretFields), and a kept field holds no secret field, so that a new
// field or route makes its author decide, and the decision is tested.
func TestAuditFieldsClassified(t *testing.T) {
	srv, _, err := New(Config{Store: store.NewMem()}, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range srv.routes() {
		if !audited(rt) || rt.body == nil {
			continue
		}
		walkFields(reflect.TypeOf(rt.body), nil, func(path []string, name string) bool {
			kept := auditFields[name] || serverFields[name]
			where := rt.method + " " + rt.path + ": field " + strings.Join(append(path, name), ".")
			switch {
			case kept && secretFields[name], auditFields[name] && serverFields[name]:
				t.Errorf("%s is in two lists", where)
			case !kept && !secretFields[name]:
				t.Errorf("%s is in none of auditFields, serverFields and secretFields", where)
			case secretFields[name] && len(path) > 0:
				t.Errorf("%s: a kept field holds a secret", where)
			}
			return kept
		})
	}
	for name := range auditFields {
		if strings.Contains(name, "secret") || strings.Contains(name, "private") || strings.Contains(name, "credential") {
			t.Errorf("auditFields keeps %q", name)
		}
	}
}

// walkFields calls fn with each JSON field name of t, after the names of
// the fields leading to it, and with those of the structs a field holds
// when fn reports true for it.
func walkFields(t reflect.Type, path []string, fn func(path []string, name string) bool) {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice || t.Kind() == reflect.Map {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || t == reflect.TypeOf(time.Time{}) {
		return
	}
	for f := range t.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" {
			walkFields(f.Type, path, fn)
			continue
		}
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if fn(path, name) {
			walkFields(f.Type, append(slices.Clone(path), name), fn)
		}
	}
}

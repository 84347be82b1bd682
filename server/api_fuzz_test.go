package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/state"
)

// fuzzRoute is an endpoint FuzzAPI sends its input to.
type fuzzRoute struct {
	method, path string // path may hold placeholders
	cred         string // root, h1, h2, join, or bearer: the query is the secret
	list         bool   // answers an api.List
	get          string // a GET that reads back what a 2xx wrote, {id} its id
	kind         string // PATCH: the kind of object edited (patchKept)
}

var fuzzRoutes = []fuzzRoute{
	{method: "GET", path: "/networks", cred: "root", list: true},
	{method: "GET", path: "/hosts", cred: "root", list: true},
	{method: "GET", path: "/interfaces", cred: "root", list: true},
	{method: "GET", path: "/devices", cred: "root", list: true},
	{method: "GET", path: "/connections", cred: "root", list: true},
	{method: "GET", path: "/tokens", cred: "root", list: true},
	{method: "GET", path: "/join-tokens", cred: "root", list: true},
	{method: "GET", path: "/events", cred: "root"},
	{method: "GET", path: "/agent/config", cred: "h1"},
	{method: "GET", path: "/tokens/self", cred: "bearer"},
	{method: "POST", path: "/networks", cred: "root", get: "/networks/{id}"},
	{method: "PATCH", path: "/networks/<mesh>", cred: "root", get: "/networks/{id}", kind: "network"},
	{method: "PATCH", path: "/networks/<hub>", cred: "root", get: "/networks/{id}", kind: "network"},
	{method: "PATCH", path: "/hosts/<h1>", cred: "root", get: "/hosts/{id}", kind: "host"},
	{method: "POST", path: "/interfaces", cred: "root", get: "/interfaces/{id}"},
	{method: "PATCH", path: "/interfaces/<i1.mesh>", cred: "root", get: "/interfaces/{id}", kind: "interface"},
	{method: "POST", path: "/devices", cred: "root", get: "/devices/{id}"},
	{method: "POST", path: "/connections", cred: "root", get: "/connections/{id}"},
	{method: "PATCH", path: "/connections/<conn>", cred: "root", get: "/connections/{id}", kind: "connection"},
	{method: "POST", path: "/tokens", cred: "root", get: "/tokens/{id}"},
	{method: "POST", path: "/join-tokens", cred: "root", get: "/join-tokens/{id}"},
	{method: "POST", path: "/agent/register", cred: "join"},
	{method: "PUT", path: "/agent/status", cred: "h1"},
	{method: "PUT", path: "/agent/status", cred: "h2"},
	// Appended: the corpus names routes by index.
	{method: "GET", path: "/rules", cred: "root", list: true},
	{method: "POST", path: "/rules", cred: "root", get: "/rules/{id}"},
	{method: "POST", path: "/rules/check", cred: "root"},
}

// routeOf returns the index of a route in fuzzRoutes, for the seeds.
func routeOf(method, path string) uint8 {
	for i, rt := range fuzzRoutes {
		if rt.method == method && rt.path == path {
			return uint8(i)
		}
	}
	panic("no fuzz route " + method + " " + path)
}

// derivedFields are worked out when an object is read, and not all
// write answers carry them: the comparison of answer and read leaves them
// out.
var derivedFields = []string{"key_stale", "rotation_blocked", "status", "last_seen"}

// patchKept lists, per kind, the fields a PATCH leaves alone unless its
// body names them.
var patchKept = map[string][]string{
	"network":    {"name", "ipv4_range", "ipv6_range", "listen_port", "mtu", "dns", "persistent_keepalive", "topology"},
	"host":       {"name", "labels", "advertise_address", "observed_address", "os", "arch", "agent_version", "backend"},
	"interface":  {"host_id", "network_id", "name", "addresses", "listen_port", "mtu", "routed_subnets", "public_key", "device_name"},
	"connection": {"network_id", "a", "b", "persistent_keepalive"},
}

// FuzzAPI sends a body and a query string to one endpoint of a server with
// a fixture (see newFuzzServer) and checks the answer and the state:
//   - never a 5xx; a 4xx has a JSON error, naming the field for 400 and 409;
//   - a rejected request changes nothing a client can read, and a GET never
//     moves the modify index;
//   - an accepted write reads back as answered, a create moves the index,
//     a PATCH keeps the fields its body does not name, and pages of lists
//     respect ?limit= and ?offset=;
//   - after every request, the state's invariants hold (checkInvariants):
//     valid masked prefixes, unique addresses inside their ranges, desired
//     states the agent accepts, wg-quick configs that parse, and a new host
//     still registers with fresh addresses.
func FuzzAPI(f *testing.F) {
	seed := func(method, path, query, body string) { f.Add(routeOf(method, path), query, []byte(body)) }
	seed("GET", "/networks", "q=me&limit=1&offset=0", "")
	seed("GET", "/networks", "limit=1001", "")
	seed("GET", "/hosts", "status=ready&label=site%3Dpar1&q=al", "")
	seed("GET", "/hosts", "status=sleeping", "")
	seed("GET", "/interfaces", "network=mesh&host=alpha&offset=2", "")
	seed("GET", "/interfaces", "network=nope", "")
	seed("GET", "/devices", "network=<mesh>&limit=-1", "")
	seed("GET", "/connections", "interface=<i1.none>", "")
	seed("GET", "/tokens", "offset=99999999999999999999", "")
	seed("GET", "/join-tokens", "limit=2&offset=1", "")
	seed("GET", "/events", "index=1&wait=0s", "")
	seed("GET", "/events", "index=18446744073709551615&wait=1ns", "")
	seed("GET", "/agent/config", "index=1&wait=1ms&delta=true", "")
	seed("GET", "/agent/config", "delta=maybe", "")
	seed("GET", "/tokens/self", "dgm_0000000000000000_AAAA", "")
	seed("GET", "/tokens/self", "dgh_<h1>_AAAA", "")
	seed("POST", "/networks", "", `{"name":"lab","ipv4_range":"10.9.0.0/24","ipv6_range":"fd09::/64","topology":"mesh","dns":["10.9.0.1"],"mtu":1380,"listen_port":51000,"persistent_keepalive":25}`)
	seed("POST", "/networks", "", `{"name":"lab","ipv4_range":"10.9.0.1/24"}`)
	seed("POST", "/networks", "", `{"name":"lab","ipv4_range":"10.1.0.0/16"}`)
	seed("POST", "/networks", "", `{"name":"lab","ipv4_range":"10.9.0.0/24","dns":["fe80::1%eth0"]}`)
	seed("POST", "/networks", "", `{"name":"Lab","ipv4_range":"10.9.0.0/24","topology":"ring"}`)
	seed("POST", "/networks", "", `{"name":"lab","ipv4_range":"10.9.0.0/24","id":"x","modify_index":7}`)
	seed("POST", "/networks", "", `{"name":"lab","ipv4_range":"10.9.0.0/24"} {}`)
	seed("POST", "/networks", "", `{"name":"lab","ipv4_range":["10.9.0.0/24"]}`)
	seed("POST", "/networks", "", `{"name":"lab","nope":1}`)
	seed("POST", "/networks", "", `null`)
	seed("POST", "/networks", "", `{"name":"lab","ipv4_range":"10.9.0.0/24"`)
	seed("PATCH", "/networks/<mesh>", "", `{"ipv4_range":"10.1.0.0/25","dns":[]}`)
	seed("PATCH", "/networks/<mesh>", "", `{"ipv4_range":"10.1.0.128/25"}`)
	seed("PATCH", "/networks/<mesh>", "", `{"ipv6_range":""}`)
	seed("PATCH", "/networks/<mesh>", "", `{"topology":"hub","hub_interface_id":"<dev>"}`)
	seed("PATCH", "/networks/<mesh>", "", `{"id":"other","created_at":"2000-01-01T00:00:00Z"}`)
	seed("PATCH", "/networks/<mesh>", "", `{"dns":["fe80::1%x\nPostUp = id"]}`)
	seed("PATCH", "/networks/<hub>", "", `{"topology":"mesh"}`)
	seed("PATCH", "/networks/<hub>", "", `{"ipv6_range":"fd02::/126"}`)
	seed("PATCH", "/networks/<hub>", "", `{"hub_interface_id":"<i2.hub>","persistent_keepalive":65536}`)
	seed("PATCH", "/hosts/<h1>", "", `{"labels":{"site":"par1","gone":null},"advertise_address":"[2001:db8::1]:51820"}`)
	seed("PATCH", "/hosts/<h1>", "", `{"advertise_address":"fe80::1%eth0"}`)
	seed("PATCH", "/hosts/<h1>", "", `{"advertise_address":"fe80::1%eth0\nPostUp = touch /tmp/pwned"}`)
	seed("PATCH", "/hosts/<h1>", "", `{"name":"beta"}`)
	seed("PATCH", "/hosts/<h1>", "", `{"os":"plan9","rotate_keys":true}`)
	seed("POST", "/rules", "", `{"network_id":"mesh","action":"accept","from":["site=par1","host:alpha"],"to":["*"],"protocol":"tcp","ports":["22","8000-8100"],"position":0}`)
	seed("POST", "/rules", "", `{"network_id":"<mesh>","action":"drop","from":["10.1.0.0/25"],"to":["subnets:<h1>","interface:<i1.mesh>"],"protocol":"udp","ports":["53","50-60"]}`)
	seed("POST", "/rules", "", `{"network_id":"mesh","action":"drop","from":["pod:x"],"to":["*"],"protocol":"icmp","ports":["1"]}`)
	seed("POST", "/rules/check", "", `{"network_id":"mesh","from":"alpha","to":"10.1.0.2","port":"22/tcp"}`)
	seed("PATCH", "/networks/<mesh>", "", `{"default_action":"drop"}`)
	seed("PATCH", "/interfaces/<i1.mesh>", "", `{"routed_subnets":["192.168.50.0/24"],"masquerade":true}`)
	seed("POST", "/interfaces", "", `{"host_id":"beta","network_id":"mesh"}`)
	seed("POST", "/interfaces", "", `{"host_id":"<h1>","network_id":"none","addresses":["10.3.0.9"]}`)
	seed("POST", "/interfaces", "", `{"host_id":"alpha","network_id":"lab","name":"wg0","listen_port":51820,"mtu":9001}`)
	seed("PATCH", "/interfaces/<i1.mesh>", "", `{"addresses":["10.1.0.77/24","fd01::77"],"routed_subnets":["192.168.50.0/24"]}`)
	seed("PATCH", "/interfaces/<i1.mesh>", "", `{"routed_subnets":["192.168.50.1/24"],"listen_port":0}`)
	seed("PATCH", "/interfaces/<i1.mesh>", "", `{"name":"wg0","mtu":1280,"addresses":[]}`)
	seed("PATCH", "/interfaces/<i1.mesh>", "", `{"public_key":"<k.other>"}`)
	seed("PATCH", "/interfaces/<i1.mesh>", "", `{"addresses":["10.1.0.1","10.1.0.2"]}`)
	seed("POST", "/devices", "", `{"network":"mesh","name":"phone","public_key":"<k.phone>","address":"10.1.0.200"}`)
	seed("POST", "/devices", "", `{"network":"hub","name":"phone","public_key":"<k.h1mesh>"}`)
	seed("POST", "/devices", "", `{"network":"mesh","name":"phone","public_key":"<k.laptop>"}`)
	seed("POST", "/devices", "", `{"network":"<mesh>","name":"laptop","public_key":"not a key"}`)
	seed("POST", "/devices", "", `{"network":"mesh","name":"phone","public_key":"bGFwdG9wBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9="}`)
	seed("POST", "/connections", "", `{"network_id":"mesh","a":{"interface_id":"<i1.mesh>","endpoint":"vpn.example.com:443"},"b":{"interface_id":"<dev>","allowed_ips":["0.0.0.0/0","::/0"]},"persistent_keepalive":15}`)
	seed("POST", "/connections", "", `{"network_id":"none","a":{"interface_id":"<i2.none>"},"b":{"interface_id":"<i1.none>"}}`)
	seed("POST", "/connections", "", `{"network_id":"hub","a":{"interface_id":"<i2.hub>","endpoint":"[fe80::1%eth0]:51820"},"b":{"interface_id":"<i1.hub>"}}`)
	seed("PATCH", "/connections/<conn>", "", `{"a":{"allowed_ips":["10.3.0.0/25"],"endpoint":"10.0.0.1:1"},"persistent_keepalive":0}`)
	seed("PATCH", "/connections/<conn>", "", `{"b":{"interface_id":"<i2.mesh>"}}`)
	seed("PATCH", "/connections/<conn>", "", `{"a":{"endpoint":"host:99999"}}`)
	seed("POST", "/tokens", "", `{"name":"ci","policies":[{"resource":"networks","access":"write","networks":["<mesh>"]}]}`)
	seed("POST", "/tokens", "", `{"name":"ci","policies":[{"resource":"planets","access":"read"}]}`)
	seed("POST", "/tokens", "", `{"name":"ci","root":true}`)
	seed("POST", "/join-tokens", "", `{"name":"web","max_uses":3,"expires_at":"2099-01-01T00:00:00Z","labels":{"role":"web"},"networks":["<hub>"]}`)
	seed("POST", "/join-tokens", "", `{"name":"web","expires_at":"yesterday"}`)
	seed("POST", "/join-tokens", "", ``)
	seed("POST", "/agent/register", "", `{"name":"gamma","labels":{"site":"ams"},"advertise_address":"gamma.example.com","os":"linux","arch":"arm64","request_id":"0123456789abcdef0123"}`)
	seed("POST", "/agent/register", "", `{"name":"alpha"}`)
	seed("POST", "/agent/register", "", `{"name":"gamma","request_id":"short"}`)
	seed("PUT", "/agent/status", "", `{"seq":2,"backend":"kernel","advertise_address":"198.51.100.7:51820","applied_index":3,"interfaces":[{"id":"<i1.mesh>","public_key":"<k.h1mesh>","listen_port":51820,"peers":[{"public_key":"<k.h2mesh>","endpoint":"192.0.2.1:51820","last_handshake":"2024-05-01T10:00:00Z","rx_bytes":10,"tx_bytes":20}]}]}`)
	seed("PUT", "/agent/status", "", `{"interfaces":[{"id":"<i1.mesh>","public_key":"<k.h1mesh>","next_public_key":"<k.next>"}]}`)
	seed("PUT", "/agent/status", "", `{"interfaces":[{"id":"<i1.hub>","public_key":"<k.rotated>"}]}`)
	seed("PUT", "/agent/status", "", `{"interfaces":[{"id":"<i2.mesh>","public_key":"<k.h1mesh>"}]}`)
	seed("PUT", "/agent/status", "", `{"seq":3,"peers_since":1,"interfaces":[{"id":"<i1.mesh>","public_key":"<k.h1mesh>","removed_peers":["<k.h2mesh>"]}]}`)
	seed("PUT", "/agent/status", "", `{"advertise_address":"fe80::1%utun4"}`)
	seed("PUT", "/agent/status", "", `{"advertise_address":"fe80::1%x]:1\n[Peer]\nPublicKey = <k.evil>\nAllowedIPs = 0.0.0.0/0"}`)
	seed("POST", "/networks", "", `{"name":"lab","ipv4_range":"10.9.0.0/24","dns":["fe80::1%x\nPostUp = id"]}`)
	seed("POST", "/connections", "", `{"network_id":"mesh","a":{"interface_id":"<dev>","endpoint":"[fe80::1%x\nPostUp = id]:1"},"b":{"interface_id":"<i2.mesh>"}}`)
	seed("PUT", "/agent/status", "", `{"os":"`+strings.Repeat("x", 65)+`"}`)
	seed("PUT", "/agent/status", "", `{"interfaces":[{"id":"<i2.hub>","public_key":"<k.h1hub>"}]}`)

	f.Fuzz(func(t *testing.T, route uint8, query string, body []byte) {
		fs := newFuzzServer(t)
		rt := fuzzRoutes[int(route)%len(fuzzRoutes)]
		path, q, b := fs.expand(rt.path), fs.expand(query), fs.expand(string(body))
		var secret string
		switch rt.cred {
		case "root":
			secret = fs.root
		case "join":
			secret = fs.join
		case "bearer":
			secret, q = q, ""
		default:
			secret = fs.creds[rt.cred]
		}
		var old map[string]any
		if rt.method == "PATCH" {
			fs.get(path, &old)
		}
		before, index := fs.snapshot(), fs.index()
		resp := fs.do(rt.method, path, q, secret, b)
		what := rt.method + " " + path + "?" + q + " " + b
		if resp.canceled {
			return // a blocking query cut short: the handler wrote nothing
		}
		switch {
		case resp.status >= 400:
			checkError(t, what, resp)
			if after := fs.snapshot(); after != before {
				t.Fatalf("%s: rejected with %d %s, but changed the state:\nbefore: %s\nafter: %s", what, resp.status, resp.body, before, after)
			}
		case rt.method == "GET":
			if resp.status != http.StatusOK {
				t.Fatalf("%s: %d %s", what, resp.status, resp.body)
			}
			if i := fs.index(); i != index {
				t.Fatalf("%s: a GET moved the index from %d to %d", what, index, i)
			}
			if rt.list {
				checkPage(t, what, q, resp.body)
			}
		default:
			fs.checkWrite(t, what, rt, index, resp, old, b)
		}
		fs.probe()
		fs.checkInvariants()
	})
}

// checkPage checks that a list answer is the page that ?limit= and ?offset=
// ask for (the handler accepted them).
func checkPage(t *testing.T, what, query string, body []byte) {
	var l api.List[json.RawMessage]
	if err := decodeStrict(body, &l); err != nil {
		t.Fatalf("%s: %v: %s", what, err, body)
	}
	q, _ := url.ParseQuery(query)
	limit, _ := strconv.Atoi(q.Get("limit"))
	offset, _ := strconv.Atoi(q.Get("offset"))
	if limit == 0 {
		limit = state.DefaultLimit
	}
	if l.Offset != min(offset, l.Total) || len(l.Items) != min(limit, l.Total-l.Offset) {
		t.Fatalf("%s: items %d, offset %d, total %d", what, len(l.Items), l.Offset, l.Total)
	}
}

// checkWrite checks an accepted write: it reads back as answered, and a
// PATCH keeps the fields its body leaves out.
func (fs *fuzzServer) checkWrite(t *testing.T, what string, rt fuzzRoute, index uint64, resp response, old map[string]any, body string) {
	switch resp.status {
	case http.StatusOK, http.StatusCreated, http.StatusNoContent:
	default:
		t.Fatalf("%s: status %d: %s", what, resp.status, resp.body)
	}
	if i := fs.index(); i < index || (resp.status == http.StatusCreated && i == index) {
		t.Fatalf("%s: %d moved the index from %d to %d", what, resp.status, index, i)
	}
	if rt.path == "/agent/register" {
		fs.checkRegistered(t, what, resp, body)
		return
	}
	if rt.get == "" {
		return
	}
	var got map[string]any
	if err := json.Unmarshal(resp.body, &got); err != nil {
		t.Fatalf("%s: answer %s: %v", what, resp.body, err)
	}
	id, _ := got["id"].(string)
	var read map[string]any
	fs.get(strings.ReplaceAll(rt.get, "{id}", id), &read)
	delete(got, "secret") // shown once
	for _, f := range derivedFields {
		delete(got, f)
		delete(read, f)
	}
	if !reflect.DeepEqual(got, read) {
		t.Fatalf("%s: answered %v, reads back %v", what, got, read)
	}
	if rt.kind == "" {
		return
	}
	var named map[string]json.RawMessage
	if json.Unmarshal([]byte(body), &named) != nil {
		t.Fatalf("%s: accepted a body that is not a JSON object", what)
	}
	mentions := func(field string) bool {
		for k := range named {
			if strings.EqualFold(k, field) { // encoding/json matches names so
				return true
			}
		}
		return false
	}
	for _, field := range append([]string{"id", "created_at"}, patchKept[rt.kind]...) {
		if (field == "id" || field == "created_at" || !mentions(field)) && !reflect.DeepEqual(old[field], got[field]) {
			t.Fatalf("%s: %s changed from %v to %v", what, field, old[field], got[field])
		}
	}
}

// checkRegistered checks an accepted registration: the host exists under
// its name with an interface in each of the join token's networks, and a
// retry with the same request_id gets the same host.
func (fs *fuzzServer) checkRegistered(t *testing.T, what string, resp response, body string) {
	var reg api.RegisterResponse
	var rr api.RegisterRequest
	if decodeStrict(resp.body, &reg) != nil || decodeStrict([]byte(body), &rr) != nil {
		t.Fatalf("%s: answer %s", what, resp.body)
	}
	var h api.Host
	fs.get("/hosts/"+reg.HostID, &h)
	var ifaces api.List[api.Interface]
	fs.get("/interfaces?host="+reg.HostID, &ifaces)
	if h.Name != rr.Name || ifaces.Total != 3 {
		t.Fatalf("%s: host %+v with %d interfaces", what, h, ifaces.Total)
	}
	if rr.RequestID == "" {
		return
	}
	again := fs.do("POST", "/agent/register", "", fs.join, body)
	var reg2 api.RegisterResponse
	if again.status != http.StatusCreated || decodeStrict(again.body, &reg2) != nil || reg2.HostID != reg.HostID || reg2.Credential == reg.Credential {
		t.Fatalf("%s: retried: %d %s, first %s", what, again.status, again.body, resp.body)
	}
}

// probe registers a new host: it gets an interface in each network, with
// addresses no other interface has (checkInvariants), unless a range is
// full.
func (fs *fuzzServer) probe() {
	resp := fs.do("POST", "/agent/register", "", fs.join, `{"name":"probe-9f3c2"}`)
	if resp.status == http.StatusConflict && bytes.Contains(resp.body, []byte(`"field":"addresses"`)) {
		return
	}
	if resp.status != http.StatusCreated {
		fs.t.Fatalf("registering a probe host: %d %s", resp.status, resp.body)
	}
}

// decodeStrict decodes one JSON value into v, refusing unknown fields.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// FuzzStatusReport sends two status reports of host h1 (a whole one then,
// typically, one with peers_since) and checks each against a model of
// what the server keeps: a rejected report is a 4xx naming the field and
// changes nothing; an accepted one's peers, merged into the kept report's
// when peers_since names it, are what GET /hosts/{host}/status returns,
// sorted by key; a reported key becomes the interface's key.
func FuzzStatusReport(f *testing.F) {
	whole := `{"seq":5,"backend":"kernel","applied_index":4,"interfaces":[{"id":"<i1.mesh>","public_key":"<k.h1mesh>","listen_port":51820,"peers":[{"public_key":"<k.h2mesh>","endpoint":"192.0.2.2:51820","last_handshake":"2024-05-01T10:00:00+02:00","rx_bytes":1,"tx_bytes":2},{"public_key":"<k.laptop>","rx_bytes":3,"tx_bytes":4}]},{"id":"<i1.hub>","public_key":"<k.h1hub>","peers":[{"public_key":"<k.h2hub>"}]}]}`
	f.Add([]byte(whole), []byte(`{"seq":6,"peers_since":5,"interfaces":[{"id":"<i1.mesh>","public_key":"<k.h1mesh>","peers":[{"public_key":"<k.new>","rx_bytes":9}],"removed_peers":["<k.laptop>"]},{"id":"<i1.hub>","public_key":"<k.h1hub>"}]}`))
	f.Add([]byte(whole), []byte(`{"seq":6,"peers_since":4,"interfaces":[]}`))
	f.Add([]byte(whole), []byte(`{"seq":6,"interfaces":[{"id":"<i1.mesh>","public_key":"<k.h1mesh>","removed_peers":["<k.laptop>"]}]}`))
	f.Add([]byte(whole), []byte(`{"seq":6,"peers_since":5,"interfaces":[{"id":"<i1.mesh>","public_key":"<k.h1mesh>","peers":[{"public_key":"<k.h2mesh>","rx_bytes":100},{"public_key":"<k.h2mesh>","rx_bytes":101}]}]}`))
	f.Add([]byte(whole), []byte(`{"seq":6,"peers_since":5,"interfaces":[{"id":"<i1.mesh>","public_key":"<k.h1mesh>","removed_peers":["not a key"]}]}`))
	f.Add([]byte(whole), []byte(`{"seq":6,"peers_since":5,"interfaces":[{"id":"<i2.mesh>","public_key":"<k.h2mesh>"}]}`))
	f.Add([]byte(whole), []byte(`{"seq":6,"peers_since":5,"interfaces":[{"id":"<i1.mesh>","public_key":"<k.rotated>","next_public_key":"<k.next>"}]}`))
	f.Add([]byte(`{"interfaces":[{"id":"<i1.mesh>","public_key":"<k.h1mesh>","next_public_key":"<k.next>"}]}`), []byte(`{"interfaces":[{"id":"<i1.mesh>","public_key":"<k.next>"}]}`))
	f.Add([]byte(`{"advertise_address":"host.example.com:0"}`), []byte(`{"advertise_address":"2001:db8::1"}`))
	f.Fuzz(func(t *testing.T, first, second []byte) {
		fs := newFuzzServer(t)
		status := "/hosts/" + fs.vars["h1"] + "/status"
		for n, body := range []string{fs.expand(string(first)), fs.expand(string(second))} {
			var kept api.StatusReport
			fs.get(status, &kept)
			before, index := fs.snapshot(), fs.index()
			resp := fs.do("PUT", "/agent/status", "", fs.creds["h1"], body)
			what := "report " + strconv.Itoa(n+1) + " " + body
			if resp.status != http.StatusNoContent {
				checkError(t, what, resp)
				if after := fs.snapshot(); after != before {
					t.Fatalf("%s: rejected with %d %s, but changed the state:\nbefore: %s\nafter: %s", what, resp.status, resp.body, before, after)
				}
				continue
			}
			var r api.StatusReport
			if err := decodeStrict([]byte(body), &r); err != nil {
				t.Fatalf("%s: accepted, but does not decode: %v", what, err)
			}
			if r.PeersSince != 0 && r.PeersSince != kept.Seq {
				t.Fatalf("%s: accepted peers_since %d, the server holds report %d", what, r.PeersSince, kept.Seq)
			}
			want := keptReport(&kept, r)
			var got api.StatusReport
			fs.get(status, &got)
			for _, rep := range []*api.StatusReport{want, &got} {
				if rep.Interfaces == nil {
					rep.Interfaces = []api.InterfaceStatus{} // the model's report without interfaces
				}
				for k := range rep.Interfaces {
					slices.SortFunc(rep.Interfaces[k].Peers, comparePeerStatus)
				}
			}
			wb, _ := json.Marshal(want)
			gb, _ := json.Marshal(got)
			if !bytes.Equal(wb, gb) {
				t.Fatalf("%s: kept\n%s\nwant\n%s", what, gb, wb)
			}
			keys := map[string]string{}
			for _, is := range r.Interfaces {
				if is.PublicKey != "" {
					keys[is.ID] = is.PublicKey
				}
			}
			for id, key := range keys {
				var i api.Interface
				fs.get("/interfaces/"+id, &i)
				if i.PublicKey != key {
					t.Fatalf("%s: interface %s has key %s, reported %s", what, id, i.PublicKey, key)
				}
			}
			if fs.index() < index {
				t.Fatalf("%s: the index went back", what)
			}
		}
		fs.checkInvariants()
	})
}

// keptReport models the report the server keeps after accepting r on kept
// (whose Seq is the last accepted report's).
func keptReport(kept *api.StatusReport, r api.StatusReport) *api.StatusReport {
	out := r
	out.PeersSince = 0
	out.Interfaces = slices.Clone(r.Interfaces)
	for k := range out.Interfaces {
		is := &out.Interfaces[k]
		var base []api.PeerStatus
		if r.PeersSince != 0 {
			if j := slices.IndexFunc(kept.Interfaces, func(o api.InterfaceStatus) bool { return o.ID == is.ID }); j >= 0 {
				base = kept.Interfaces[j].Peers
			}
		}
		gone := map[string]bool{}
		for _, key := range is.RemovedPeers {
			gone[key] = true
		}
		for _, p := range is.Peers {
			gone[p.PublicKey] = true
		}
		var peers []api.PeerStatus
		for _, p := range base {
			if !gone[p.PublicKey] {
				peers = append(peers, p)
			}
		}
		is.Peers, is.RemovedPeers = append(peers, is.Peers...), nil
	}
	return &out
}

func comparePeerStatus(a, b api.PeerStatus) int {
	if c := strings.Compare(a.PublicKey, b.PublicKey); c != 0 {
		return c
	}
	ab, _ := json.Marshal(a)
	bb, _ := json.Marshal(b)
	return bytes.Compare(ab, bb)
}

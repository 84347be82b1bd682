package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/store"
)

// fuzzServer is a server on an in-memory store whose handler is called in
// process (no socket), with a fixed fixture: three networks (mesh, hub with
// a hub interface, none with an explicit connection), two registered hosts
// that reported keys, a device and a join token. Fuzz inputs name the
// fixture's random ids through placeholders such as <i1.mesh> (see expand),
// so that a corpus entry means the same thing in every run.
type fuzzServer struct {
	t    testing.TB
	h    http.Handler
	root string
	// vars maps placeholders to the fixture's ids and secrets.
	vars  map[string]string
	creds map[string]string // host placeholder (h1, h2) -> credential
	join  string            // join token secret (all three networks)
}

// Fixture placeholders for ids; keys are written <k.NAME> (testKey(NAME)).
var fixtureIfaces = []string{"i1.mesh", "i1.hub", "i1.none", "i2.mesh", "i2.hub", "i2.none"}

func newFuzzServer(t testing.TB) *fuzzServer {
	t.Helper()
	srv, root, err := New(Config{Store: store.NewMem(), HeartbeatGrace: 10000 * time.Hour}, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	fs := &fuzzServer{t: t, h: srv.Handler(), root: root, vars: map[string]string{}, creds: map[string]string{}}
	for _, n := range []string{
		`{"name":"mesh","ipv4_range":"10.1.0.0/24","ipv6_range":"fd01::/64","topology":"mesh","dns":["10.1.0.53","fd01::53"],"persistent_keepalive":25}`,
		`{"name":"hub","ipv4_range":"10.2.0.0/24","topology":"hub"}`,
		`{"name":"none","ipv4_range":"10.3.0.0/24"}`,
	} {
		var out api.Network
		fs.mustDo("POST", "/networks", root, n, http.StatusCreated, &out)
		fs.vars[out.Name] = out.ID
	}
	var j api.JoinToken
	fs.mustDo("POST", "/join-tokens", root, fs.expand(`{"name":"all","networks":["<mesh>","<hub>","<none>"]}`), http.StatusCreated, &j)
	fs.vars["join"], fs.join = j.ID, j.Secret
	for _, h := range []struct{ ph, name, advertise string }{{"h1", "alpha", "198.51.100.1"}, {"h2", "beta", ""}} {
		var reg api.RegisterResponse
		fs.mustDo("POST", "/agent/register", j.Secret, `{"name":"`+h.name+`","os":"linux","arch":"amd64"}`, http.StatusCreated, &reg)
		fs.vars[h.ph], fs.creds[h.ph] = reg.HostID, reg.Credential
		var ds api.DesiredState
		fs.mustDo("GET", "/agent/config", reg.Credential, "", http.StatusOK, &ds)
		rep := api.StatusReport{Seq: 1, Backend: "fake", OS: "linux", Arch: "amd64", AdvertiseAddress: h.advertise}
		for _, i := range ds.Interfaces {
			var n api.Network
			fs.mustDo("GET", "/networks/"+i.NetworkID, root, "", http.StatusOK, &n)
			ph := h.ph[1:] // "1" or "2"
			fs.vars["i"+ph+"."+n.Name] = i.ID
			rep.Interfaces = append(rep.Interfaces, api.InterfaceStatus{ID: i.ID, PublicKey: testKey("h" + ph + n.Name), ListenPort: i.ListenPort})
		}
		b, _ := json.Marshal(rep)
		fs.mustDo("PUT", "/agent/status", reg.Credential, string(b), http.StatusNoContent, nil)
	}
	fs.mustDo("PATCH", "/networks/hub", root, fs.expand(`{"topology":"hub","hub_interface_id":"<i1.hub>"}`), http.StatusOK, nil)
	var dev api.Interface
	fs.mustDo("POST", "/devices", root, fs.expand(`{"network":"mesh","name":"laptop","public_key":"<k.laptop>"}`), http.StatusCreated, &dev)
	fs.vars["dev"] = dev.ID
	var c api.Connection
	fs.mustDo("POST", "/connections", root, fs.expand(`{"network_id":"none","a":{"interface_id":"<i1.none>","allowed_ips":["10.3.0.0/24","192.168.7.0/24"]},"b":{"interface_id":"<i2.none>","endpoint":"gw.example.com:51999"},"persistent_keepalive":10}`), http.StatusCreated, &c)
	fs.vars["conn"] = c.ID
	return fs
}

var keyPlaceholder = regexp.MustCompile(`<k\.([A-Za-z0-9]{0,32})>`)

// expand replaces the placeholders of s: <name> by the fixture's id or
// secret, <k.NAME> by testKey(NAME).
func (fs *fuzzServer) expand(s string) string {
	if !strings.Contains(s, "<") {
		return s
	}
	s = keyPlaceholder.ReplaceAllStringFunc(s, func(m string) string {
		return testKey(keyPlaceholder.FindStringSubmatch(m)[1])
	})
	for k, v := range fs.vars {
		s = strings.ReplaceAll(s, "<"+k+">", v)
	}
	return s
}

// response is one answer of the handler.
type response struct {
	status   int
	body     []byte
	header   http.Header
	canceled bool // the request's context ended before the answer
}

// do calls the handler with a JSON body (none when empty) and a raw query;
// a blocking query is cut short after 20 ms.
func (fs *fuzzServer) do(method, path, rawQuery, secret, body string) response {
	var rd io.Reader = http.NoBody
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, "http://drago.test/api/v1"+path, rd)
	if rawQuery != "" {
		r.URL.RawQuery = rawQuery
	}
	if secret != "" {
		r.Header.Set("Authorization", "Bearer "+secret)
	}
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stop := time.AfterFunc(20*time.Millisecond, cancel)
	w := httptest.NewRecorder()
	fs.h.ServeHTTP(w, r.WithContext(ctx))
	canceled := !stop.Stop()
	return response{status: w.Code, body: w.Body.Bytes(), header: w.Header(), canceled: canceled}
}

// mustDo sends a fixture request and decodes the answer into out.
func (fs *fuzzServer) mustDo(method, path, secret, body string, want int, out any) {
	fs.t.Helper()
	resp := fs.do(method, path, "", secret, body)
	if resp.status != want {
		fs.t.Fatalf("%s %s %s: %d %s, want %d", method, path, body, resp.status, resp.body, want)
	}
	if out != nil {
		if err := json.Unmarshal(resp.body, out); err != nil {
			fs.t.Fatalf("%s %s: decoding %s: %v", method, path, resp.body, err)
		}
	}
}

// get reads a management GET into out.
func (fs *fuzzServer) get(path string, out any) {
	fs.t.Helper()
	fs.mustDo("GET", path, fs.root, "", http.StatusOK, out)
}

// index returns the state's modify index.
func (fs *fuzzServer) index() uint64 {
	fs.t.Helper()
	var o api.Overview
	fs.get("/status", &o)
	return o.Index
}

// snapshot returns everything a management client can read of the state,
// as JSON: a rejected write must leave it unchanged.
func (fs *fuzzServer) snapshot() string {
	fs.t.Helper()
	var b strings.Builder
	for _, p := range []string{
		"/status", "/networks?limit=1000", "/hosts?limit=1000", "/interfaces?limit=1000", "/devices?limit=1000",
		"/connections?limit=1000", "/tokens?limit=1000", "/join-tokens?limit=1000",
		"/hosts/" + fs.vars["h1"] + "/status", "/hosts/" + fs.vars["h2"] + "/status",
	} {
		resp := fs.do("GET", p, "", fs.root, "")
		if resp.status != http.StatusOK {
			fs.t.Fatalf("GET %s: %d %s", p, resp.status, resp.body)
		}
		b.WriteString(p)
		b.WriteByte('\n')
		b.Write(resp.body)
		b.WriteByte('\n')
	}
	return b.String()
}

// checkError checks a failed answer: a 4xx (never a 5xx) whose JSON body
// says what failed and, for a 400 or 409, which field.
func checkError(t testing.TB, what string, resp response) {
	t.Helper()
	if resp.status < 400 || resp.status >= 500 {
		t.Fatalf("%s: status %d, want a 4xx: %s", what, resp.status, resp.body)
	}
	if ct := resp.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: Content-Type %q", what, ct)
	}
	var e api.Error
	if err := json.Unmarshal(resp.body, &e); err != nil || e.Err.Message == "" {
		t.Fatalf("%s: error body %s: %v", what, resp.body, err)
	}
	if (resp.status == http.StatusBadRequest || resp.status == http.StatusConflict) && !namesField(e.Err.Field, e.Err.Message) {
		t.Fatalf("%s: %d names no field: %s", what, resp.status, resp.body)
	}
}

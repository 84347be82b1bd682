package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/google/go-cmp/cmp"

	"github.com/drago-wg/drago/server/api"
)

// loadOpenAPI checks doc with kin-openapi's OpenAPI 3.0 validator and
// returns it loaded, its $refs resolved.
func loadOpenAPI(t *testing.T, doc map[string]any) *openapi3.T {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	d, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		t.Fatalf("loading the document: %v", err)
	}
	if err := d.Validate(context.Background()); err != nil {
		t.Fatalf("the document is not valid OpenAPI 3.0: %v", err)
	}
	return d
}

// asJSON is v as encoding/json writes it and reads it back untyped.
func asJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

type oaInner struct {
	A string `json:"a"`
}

type oaNode struct {
	Name     string   `json:"name"`
	Children []oaNode `json:"children,omitempty"`
	Parent   *oaNode  `json:"parent,omitempty"`
}

type oaAll struct {
	api.Meta
	S      string            `json:"s"`
	O      string            `json:"o,omitempty"`
	Skip   string            `json:"-"`
	hidden string            // unexported: not in JSON
	N      int               `json:"n"`
	U      uint64            `json:"u,omitempty"`
	F      float64           `json:"f,omitempty"`
	B      bool              `json:"b,omitempty"`
	T      time.Time         `json:"t"`
	P      *time.Time        `json:"p,omitempty"`
	L      []string          `json:"l"`
	M      map[string]uint16 `json:"m,omitempty"`
	I      oaInner           `json:"i"`
	Q      string            `json:",omitempty"`
	Str    int               `json:"str,string"`
	Raw    []byte            `json:"raw,omitempty"`
	Any    any               `json:"any,omitempty"`
}

func TestOpenAPISchemaOfGoTypes(t *testing.T) {
	meta := `"id": {"type": "string", "readOnly": true},
		"created_at": {"type": "string", "format": "date-time", "readOnly": true},
		"updated_at": {"type": "string", "format": "date-time", "readOnly": true},
		"modify_index": {"type": "integer", "format": "uint64", "minimum": 0, "readOnly": true}`
	for _, tc := range []struct {
		name  string
		t     reflect.Type
		patch bool
		want  string // the schema, then the components
	}{
		{"string", reflect.TypeFor[string](), false, `{"type": "string"}`},
		{"int32", reflect.TypeFor[int32](), false, `{"type": "integer", "format": "int32", "minimum": -2147483648, "maximum": 2147483647}`},
		{"slice", reflect.TypeFor[[]int64](), false, `{"type": "array", "items": {"type": "integer", "format": "int64"}}`},
		{"map", reflect.TypeFor[map[string]bool](), false, `{"type": "object", "additionalProperties": {"type": "boolean"}}`},
		{"pointer", reflect.TypeFor[*string](), false, `{"type": "string", "nullable": true}`},
		{"struct", reflect.TypeFor[oaAll](), false, `{"$ref": "#/components/schemas/oaAll"} {
			"oaAll": {"type": "object", "additionalProperties": false, "properties": {` + meta + `,
				"s": {"type": "string"},
				"o": {"type": "string"},
				"n": {"type": "integer", "format": "int64"},
				"u": {"type": "integer", "format": "uint64", "minimum": 0},
				"f": {"type": "number", "format": "double"},
				"b": {"type": "boolean"},
				"t": {"type": "string", "format": "date-time"},
				"p": {"type": "string", "format": "date-time", "nullable": true},
				"l": {"type": "array", "items": {"type": "string"}, "nullable": true},
				"m": {"type": "object", "additionalProperties": {"type": "integer", "format": "int32", "minimum": 0, "maximum": 65535}},
				"i": {"$ref": "#/components/schemas/oaInner"},
				"Q": {"type": "string"},
				"str": {"type": "string"},
				"raw": {"type": "string", "format": "byte"},
				"any": {}
			}, "required": ["created_at", "i", "id", "l", "modify_index", "n", "s", "str", "t", "updated_at"]},
			"oaInner": {"type": "object", "additionalProperties": false, "properties": {"a": {"type": "string"}}, "required": ["a"]}}`},
		{"recursive", reflect.TypeFor[oaNode](), false, `{"$ref": "#/components/schemas/oaNode"} {
			"oaNode": {"type": "object", "additionalProperties": false, "properties": {
				"name": {"type": "string"},
				"children": {"type": "array", "items": {"$ref": "#/components/schemas/oaNode"}},
				"parent": {"allOf": [{"$ref": "#/components/schemas/oaNode"}], "nullable": true}
			}, "required": ["name"]}}`},
		{"patch", reflect.TypeFor[api.Connection](), true, `{"$ref": "#/components/schemas/ConnectionPatch"} {
			"ConnectionPatch": {"type": "object", "additionalProperties": false, "properties": {` + meta + `,
				"network_id": {"type": "string"},
				"a": {"$ref": "#/components/schemas/ConnectionSidePatch"},
				"b": {"$ref": "#/components/schemas/ConnectionSidePatch"},
				"persistent_keepalive": {"type": "integer", "format": "int64", "nullable": true},
				"implicit": {"type": "boolean"}
			}},
			"ConnectionSidePatch": {"type": "object", "additionalProperties": false, "properties": {
				"interface_id": {"type": "string"},
				"allowed_ips": {"type": "array", "items": {"type": "string"}},
				"endpoint": {"type": "string"}
			}}}`},
		{"generic", reflect.TypeFor[api.List[api.Health]](), false, `{"$ref": "#/components/schemas/ListOfHealth"} {
			"ListOfHealth": {"type": "object", "additionalProperties": false, "properties": {
				"items": {"type": "array", "items": {"$ref": "#/components/schemas/Health"}, "nullable": true},
				"offset": {"type": "integer", "format": "int64"},
				"total": {"type": "integer", "format": "int64"}
			}, "required": ["items", "offset", "total"]},
			"Health": {"type": "object", "additionalProperties": false, "properties": {
				"status": {"type": "string"}, "version": {"type": "string"}
			}, "required": ["status", "version"]}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newSchemaGen()
			got := []any{asJSON(t, g.schema(tc.t, tc.patch))}
			if len(g.defs) > 0 {
				got = append(got, asJSON(t, g.defs))
			}
			var want []any
			dec := json.NewDecoder(strings.NewReader(tc.want))
			for dec.More() {
				var v any
				if err := dec.Decode(&v); err != nil {
					t.Fatalf("bad want: %v", err)
				}
				want = append(want, v)
			}
			if d := cmp.Diff(want, got); d != "" {
				t.Errorf("schema (-want +got):\n%s", d)
			}
		})
	}
}

func TestOpenAPISchemaNames(t *testing.T) {
	for _, tc := range []struct {
		t    reflect.Type
		want string
	}{
		{reflect.TypeFor[api.Host](), "Host"},
		{reflect.TypeFor[api.List[api.Host]](), "ListOfHost"},
		{reflect.TypeFor[api.List[*api.Host]](), "ListOfHost"},
		{reflect.TypeFor[api.List[[]api.Host]](), "ListOfSliceOfHost"},
		{reflect.TypeFor[api.List[api.List[api.Host]]](), "ListOfListOfHost"},
	} {
		if got := schemaName(tc.t); got != tc.want {
			t.Errorf("schemaName(%v) = %q, want %q", tc.t, got, tc.want)
		}
	}
}

// TestOpenAPIOperations documents a hand-made route table and checks each
// kind of route's parameters, body, answers and errors.
func TestOpenAPIOperations(t *testing.T) {
	all := []string{"q", "limit", "offset", "label", "status", "network", "host", "interface", "index", "wait", "delta"}
	routes := []route{
		{method: "GET", path: "/health", answer: api.Health{}},
		{method: "GET", path: "/things", auth: authManagement, answer: api.List[api.Network]{}, query: all},
		{method: "POST", path: "/things", auth: authManagement, body: api.Network{}, answer: created{&api.Network{}}},
		{method: "PATCH", path: "/things/{thing}", auth: authManagement, body: api.Network{}, answer: &api.Network{}},
		{method: "DELETE", path: "/things/{thing}", auth: authManagement, answer: noContent{}},
		{method: "GET", path: "/things/{thing}/config", auth: authManagement, answer: text("")},
		{method: "PUT", path: "/agent/status", auth: authHost, body: api.StatusReport{}, answer: noContent{}},
	}
	doc := loadOpenAPI(t, openAPIDoc(routes))

	type op struct {
		Statuses []string
		Params   []string // in:name:type
		Body     string   // component or ""
		Secured  bool
	}
	want := map[string]op{
		"GET /health": {Statuses: []string{"200", "500"}},
		"GET /things": {Statuses: []string{"200", "400", "401", "403", "404", "429", "500"}, Secured: true, Params: []string{
			"query:q:string", "query:limit:integer", "query:offset:integer", "query:label:string", "query:status:string",
			"query:network:string", "query:host:string", "query:interface:string", "query:index:integer", "query:wait:string", "query:delta:boolean",
		}},
		"POST /things": {Statuses: []string{"201", "400", "401", "403", "404", "408", "409", "413", "415", "429", "500"}, Body: "Network", Secured: true},
		"PATCH /things/{thing}": {Statuses: []string{"200", "400", "401", "403", "404", "408", "409", "413", "415", "429", "500"},
			Params: []string{"path:thing:string"}, Body: "NetworkPatch", Secured: true},
		"DELETE /things/{thing}":     {Statuses: []string{"204", "400", "401", "403", "404", "409", "429", "500"}, Params: []string{"path:thing:string"}, Secured: true},
		"GET /things/{thing}/config": {Statuses: []string{"200", "400", "401", "403", "404", "429", "500"}, Params: []string{"path:thing:string"}, Secured: true},
		"PUT /agent/status":          {Statuses: []string{"204", "400", "401", "403", "404", "408", "409", "413", "415", "429", "500"}, Body: "StatusReport", Secured: true},
	}
	got := map[string]op{}
	for path, item := range doc.Paths.Map() {
		for method, o := range item.Operations() {
			var g op
			g.Statuses = slices.Sorted(maps.Keys(o.Responses.Map()))
			for _, p := range o.Parameters {
				g.Params = append(g.Params, p.Value.In+":"+p.Value.Name+":"+p.Value.Schema.Value.Type.Slice()[0])
			}
			if o.RequestBody != nil {
				if !o.RequestBody.Value.Required {
					t.Errorf("%s %s: request body not required", method, path)
				}
				g.Body = strings.TrimPrefix(o.RequestBody.Value.Content.Get("application/json").Schema.Ref, "#/components/schemas/")
			}
			g.Secured = o.Security != nil
			got[method+" "+strings.TrimPrefix(path, "/api/v1")] = g
		}
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("operations (-want +got):\n%s", d)
	}

	ops := func(method, path string) *openapi3.Operation {
		return doc.Paths.Value("/api/v1" + path).GetOperation(method)
	}
	if r := ops("POST", "/things").Responses.Status(201).Value.Content.Get("application/json"); r == nil || r.Schema.Ref != "#/components/schemas/Network" {
		t.Errorf("POST answers %+v, want a Network", r)
	}
	if r := ops("GET", "/things/{thing}/config").Responses.Status(200).Value.Content; r.Get("text/plain") == nil || r.Get("application/json") != nil {
		t.Errorf("config answers %v, want text/plain", slices.Collect(maps.Keys(r)))
	}
	if r := ops("DELETE", "/things/{thing}").Responses.Status(204).Value.Content; len(r) != 0 {
		t.Errorf("204 has content %v", r)
	}
	if h := ops("GET", "/things").Responses.Status(429).Value.Headers["Retry-After"]; h == nil {
		t.Error("429 has no Retry-After header")
	}
	if s := doc.Components.Schemas["Network"].Value; !slices.Contains(s.Required, "name") {
		t.Errorf("Network requires %v, want name among them", s.Required)
	}
	if s := doc.Components.Schemas["NetworkPatch"].Value; len(s.Required) != 0 || len(s.Properties) != len(doc.Components.Schemas["Network"].Value.Properties) {
		t.Errorf("NetworkPatch requires %v and has %d properties, want none and as many as Network", s.Required, len(s.Properties))
	}
	limit := ops("GET", "/things").Parameters.GetByInAndName("query", "limit").Schema.Value
	if limit.Min == nil || *limit.Min != 0 || limit.Max == nil || *limit.Max != 1000 {
		t.Errorf("limit from %v to %v, want 0 to 1000", limit.Min, limit.Max)
	}
	status := ops("GET", "/things").Parameters.GetByInAndName("query", "status").Schema.Value
	if d := cmp.Diff([]any{"pending", "ready", "down"}, status.Enum); d != "" {
		t.Errorf("status enum (-want +got):\n%s", d)
	}
}

// sample returns a value of t with every field set, as far as depth goes.
func sample(t reflect.Type, depth int) reflect.Value {
	v := reflect.New(t).Elem()
	if depth == 0 {
		return v
	}
	if t == timeType {
		return reflect.ValueOf(time.Date(2026, 5, 1, 12, 30, 0, 0, time.UTC))
	}
	switch t.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(7)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(7)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1.5)
	case reflect.Pointer:
		p := reflect.New(t.Elem())
		p.Elem().Set(sample(t.Elem(), depth-1))
		v.Set(p)
	case reflect.Slice:
		v.Set(reflect.Append(v, sample(t.Elem(), depth-1)))
	case reflect.Map:
		v.Set(reflect.MakeMap(t))
		v.SetMapIndex(sample(t.Key(), depth-1), sample(t.Elem(), depth-1))
	case reflect.Struct:
		for i := range t.NumField() {
			if v.Field(i).CanSet() {
				v.Field(i).Set(sample(t.Field(i).Type, depth-1))
			}
		}
	case reflect.Interface:
		v.Set(reflect.ValueOf("x"))
	}
	return v
}

// TestOpenAPIDocumentsTheRoutes checks the served document and, for every
// route of the real table, that the schemas accept what encoding/json
// writes for the route's Go types: the zero value and one with every field
// set.
func TestOpenAPIDocumentsTheRoutes(t *testing.T) {
	ts := startServer(t, "")
	status, body := ts.raw("GET", "/openapi.json", "", "", "")
	if status != http.StatusOK {
		t.Fatalf("openapi.json: %d %s", status, body)
	}
	var served map[string]any
	if err := json.Unmarshal([]byte(body), &served); err != nil {
		t.Fatal(err)
	}
	doc := loadOpenAPI(t, served)

	check := func(t *testing.T, what string, schema *openapi3.SchemaRef, typ reflect.Type, opts ...openapi3.SchemaValidationOption) {
		t.Helper()
		values := []reflect.Value{sample(typ, 6)}
		if typ.Kind() == reflect.Struct { // a nil map or slice is no answer
			values = append(values, reflect.New(typ).Elem())
		}
		for _, v := range values {
			if err := schema.Value.VisitJSON(asJSON(t, v.Interface()), opts...); err != nil {
				b, _ := json.Marshal(v.Interface())
				t.Errorf("%s: the schema refuses %s: %v", what, b, err)
			}
		}
	}
	for _, rt := range ts.srv.routes() {
		t.Run(rt.method+" "+rt.path, func(t *testing.T) {
			op := doc.Paths.Value("/api/v1" + rt.path).GetOperation(rt.method)
			if op == nil {
				t.Fatal("not documented")
			}
			if rt.answer == nil {
				t.Error("the route declares no answer")
			}
			for _, q := range rt.query {
				if _, ok := queryParam(q)["description"]; !ok {
					t.Errorf("query parameter %q is unknown to queryParam", q)
				}
			}
			if rt.auth != authNone && op.Responses.Status(http.StatusUnauthorized) == nil {
				t.Error("no 401")
			}
			if rt.body != nil {
				schema := op.RequestBody.Value.Content.Get("application/json").Schema
				// The typed client sends the server-set (readOnly) fields
				// too, which the server ignores.
				check(t, "body", schema, indirect(reflect.TypeOf(rt.body)), openapi3.VisitAsRequest(), openapi3.DisableReadOnlyValidation())
				// Like the server, the schema refuses unknown fields.
				if schema.Value.VisitJSON(map[string]any{"no_such_field": 1}, openapi3.VisitAsRequest()) == nil {
					t.Error("the body schema takes unknown fields, which the server refuses")
				}
			}
			var code int
			var typ reflect.Type
			switch a := rt.answer.(type) {
			case noContent, text, nil:
				return
			case created:
				code, typ = http.StatusCreated, reflect.TypeOf(a.v)
			default:
				code, typ = http.StatusOK, reflect.TypeOf(a)
			}
			r := op.Responses.Status(code)
			if r == nil || r.Value.Content.Get("application/json") == nil {
				t.Fatalf("no JSON answer with status %d", code)
			}
			check(t, "answer", r.Value.Content.Get("application/json").Schema, indirect(typ), openapi3.VisitAsResponse())
		})
	}
}

// openAPIProxy serves the API of ts on another address and checks every
// request and answer that passes against doc, counting them by route.
func openAPIProxy(t *testing.T, ts *testServer, doc *openapi3.T) (*testServer, map[string]int) {
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	handler := ts.srv.Handler()
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		route, params, err := router.FindRoute(r)
		if err != nil {
			t.Errorf("%s %s: %v", r.Method, r.URL.Path, err)
			http.Error(w, err.Error(), http.StatusTeapot)
			return
		}
		in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: &openapi3filter.Options{
			AuthenticationFunc:         openapi3filter.NoopAuthenticationFunc,
			ExcludeReadOnlyValidations: true, // the typed client sends them empty
		}}
		reqErr := openapi3filter.ValidateRequest(ctx, in)
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.Header.Del("Accept-Encoding")
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, r)
		out := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in, Status: rec.Code, Header: rec.Header(),
			Options: &openapi3filter.Options{IncludeResponseStatus: true},
		}
		out.SetBodyBytes(rec.Body.Bytes())
		// A refused request may be one the test made bad on purpose.
		if reqErr != nil && rec.Code < 300 {
			t.Errorf("%s %s: the server took request %s, which does not match the document: %v", r.Method, r.URL, body, reqErr)
		}
		if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
			t.Errorf("%s %s: answer %d %s does not match the document: %v", r.Method, r.URL, rec.Code, rec.Body, err)
		}
		mu.Lock()
		seen[r.Method+" "+strings.TrimPrefix(route.Path, "/api/v1")+" "+strconv.Itoa(rec.Code)]++
		mu.Unlock()
		maps.Copy(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(proxy.Close)
	pts := *ts
	pts.url = proxy.URL
	return &pts, seen
}

// TestOpenAPIMatchesTheServer drives a real server through a proxy that
// checks each request and answer against the document.
func TestOpenAPIMatchesTheServer(t *testing.T) {
	ts := startServer(t, "")
	pts, seen := openAPIProxy(t, ts, loadOpenAPI(t, ts.srv.openAPI()))
	ctx := context.Background()
	c := pts.rootClient()

	must[*api.Health](t)(c.Health(ctx))
	net := must[*api.Network](t)(c.CreateNetwork(ctx, &api.Network{Name: "lab", IPv4Range: "10.9.0.0/24", Topology: api.TopologyMesh, DNS: []string{"10.9.0.1"}}))
	must[*api.Network](t)(c.UpdateNetwork(ctx, "lab", map[string]any{"mtu": 1380}))
	_, hostID := pts.agentHost("web-1", net.ID)
	hc, _ := pts.agentHost("web-2", net.ID)
	must[*api.DesiredState](t)(hc.DesiredDelta(ctx, 0, 0))
	must[*api.Host](t)(c.UpdateHost(ctx, hostID, map[string]any{"labels": map[string]string{"role": "web"}}))
	hosts := must[*api.List[api.Host]](t)(c.Hosts(ctx, api.ListOptions{Label: "role=web", Status: api.HostReady, Limit: 10}))
	if len(hosts.Items) != 1 {
		t.Fatalf("hosts labelled role=web: %+v", hosts)
	}
	must[*api.Host](t)(c.Host(ctx, hostID))
	must[*api.StatusReport](t)(c.HostStatus(ctx, hostID))
	ifs := must[*api.List[api.Interface]](t)(c.Interfaces(ctx, api.ListOptions{Network: "lab"}))
	must[string](t)(c.InterfaceConfig(ctx, ifs.Items[0].ID))
	must[*api.Interface](t)(c.UpdateInterface(ctx, ifs.Items[0].ID, map[string]any{"routed_subnets": []string{"192.168.9.0/24"}}))
	dev := must[*api.Interface](t)(c.CreateDevice(ctx, &api.DeviceRequest{Network: "lab", Name: "phone", PublicKey: testKey("phone")}))
	must[*api.List[api.Interface]](t)(c.Devices(ctx, api.ListOptions{}))
	must[*api.List[api.Connection]](t)(c.Connections(ctx, api.ListOptions{Network: "lab"}))
	must[*api.Topology](t)(c.Topology(ctx, "lab"))
	must[*api.Network](t)(c.UpdateNetwork(ctx, "lab", map[string]any{"default_action": "drop"}))
	must[*api.Interface](t)(c.UpdateInterface(ctx, ifs.Items[0].ID, map[string]any{"masquerade": true}))
	at := 0
	rule := must[*api.Rule](t)(c.CreateRule(ctx, &api.RuleRequest{Rule: api.Rule{NetworkID: "lab", Action: "accept", From: []string{"role=web", "device:phone"},
		To: []string{"host:web-2", "subnets:" + hostID}, Protocol: "tcp", Ports: []string{"22", "8000-8100"}, Description: "ssh"}, Position: &at}))
	must[*api.Rule](t)(c.UpdateRule(ctx, rule.ID, map[string]any{"position": 0, "ports": []string{"2222"}}))
	must[*api.List[api.Rule]](t)(c.Rules(ctx, api.ListOptions{Network: "lab"}))
	must[*api.Rule](t)(c.Rule(ctx, rule.ID))
	must[*api.RuleVerdict](t)(c.CheckRule(ctx, &api.RuleCheck{NetworkID: "lab", From: "web-1", To: "web-2", Port: "2222/tcp"}))
	must[*api.DesiredState](t)(hc.DesiredDelta(ctx, 0, 0))
	must[*api.Interface](t)(c.Interface(ctx, ifs.Items[0].ID))
	if err := c.DeleteRule(ctx, rule.ID); err != nil {
		t.Fatal(err)
	}
	must[*api.Overview](t)(c.Overview(ctx))
	must[*api.Events](t)(c.Events(ctx, 0, 0))
	tok := must[*api.Token](t)(c.CreateToken(ctx, &api.Token{Name: "ro", Policies: []api.Policy{{Resource: "*", Access: "read"}}}))
	must[*api.List[api.Token]](t)(c.Tokens(ctx, api.ListOptions{}))
	must[*api.List[api.JoinToken]](t)(c.JoinTokens(ctx, api.ListOptions{}))
	if _, err := c.RotateKeys(ctx, hostID); api.StatusOf(err) != http.StatusConflict { // the device holds its key
		t.Errorf("rotate-keys of a host peered with a device: %v, want 409", err)
	}
	if err := c.DeleteDevice(ctx, dev.ID); err != nil {
		t.Fatal(err)
	}
	must[*api.Host](t)(c.RotateKeys(ctx, hostID))
	// Errors.
	if _, err := c.Network(ctx, "nope"); err == nil {
		t.Error("no 404 for a missing network")
	}
	if _, err := c.CreateNetwork(ctx, &api.Network{Name: "Bad Name"}); err == nil {
		t.Error("no 400 for a bad network")
	}
	if _, err := c.CreateNetwork(ctx, &api.Network{Name: "lab", IPv4Range: "10.8.0.0/24"}); err == nil {
		t.Error("no 409 for a taken name")
	}
	if _, err := pts.client("").Networks(ctx, api.ListOptions{}); err == nil {
		t.Error("no 401 without a token")
	}
	if _, err := pts.client(tok.Secret).CreateNetwork(ctx, &api.Network{Name: "x", IPv4Range: "10.7.0.0/24"}); err == nil {
		t.Error("no 403 for a read-only token")
	}
	if status, _ := pts.raw("POST", "/networks", ts.root, "text/plain", "name=x"); status != http.StatusUnsupportedMediaType {
		t.Errorf("text body: %d, want 415", status)
	}

	for _, want := range []string{
		"GET /health 200", "POST /networks 201", "PATCH /networks/{network} 200", "POST /agent/register 201",
		"GET /agent/config 200", "PUT /agent/status 204", "GET /hosts 200", "GET /interfaces/{id}/config 200",
		"POST /devices 201", "DELETE /devices/{id} 204", "GET /networks/{network} 404", "POST /networks 400",
		"POST /networks 409", "GET /networks 401", "POST /networks 403", "POST /networks 415",
		"POST /rules 201", "PATCH /rules/{id} 200", "POST /rules/check 200", "DELETE /rules/{id} 204",
	} {
		if seen[want] == 0 {
			t.Errorf("no %s went through the checking proxy", want)
		}
	}
}

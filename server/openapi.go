package server

import (
	"encoding"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/state"
)

var pathParam = regexp.MustCompile(`\{([a-z]+)\}`)

// openAPI builds the OpenAPI 3 document from the route table.
func (s *Server) openAPI() map[string]any { return openAPIDoc(s.routes()) }

// openAPIDoc documents routes: their parameters, request bodies, answers and
// errors, with JSON schemas generated from the Go types they decode and
// return (see schemaGen).
func openAPIDoc(routes []route) map[string]any {
	g := newSchemaGen()
	errRef := g.schema(reflect.TypeFor[api.Error](), false)
	paths := map[string]any{}
	for _, rt := range routes {
		p, _ := paths["/api/v1"+rt.path].(map[string]any)
		if p == nil {
			p = map[string]any{}
			paths["/api/v1"+rt.path] = p
		}
		p[strings.ToLower(rt.method)] = g.operation(rt)
	}
	errs := map[string]any{}
	for code, desc := range errorAnswers {
		errs[errorName(code)] = map[string]any{
			"description": desc,
			"content":     map[string]any{"application/json": map[string]any{"schema": errRef}},
		}
	}
	errs[errorName(http.StatusTooManyRequests)].(map[string]any)["headers"] = map[string]any{
		"Retry-After": map[string]any{"description": "Seconds to wait.", "schema": map[string]any{"type": "integer", "minimum": 0}},
	}
	return map[string]any{
		"openapi": "3.0.3",
		"info": map[string]any{
			"title":       "Drago API",
			"version":     api.Version,
			"description": "The API of Drago's control plane for WireGuard networks. Request bodies are JSON objects; unknown fields are refused.",
		},
		"paths": paths,
		"components": map[string]any{
			"securitySchemes": map[string]any{"bearer": map[string]any{
				"type": "http", "scheme": "bearer",
				"description": "A management token, a host credential (/agent/config, /agent/status) or a join token (/agent/register).",
			}},
			"schemas":   g.defs,
			"responses": errs,
		},
	}
}

// operation documents one route.
func (g *schemaGen) operation(rt route) map[string]any {
	op := map[string]any{
		"summary":     rt.summary,
		"operationId": strings.ToLower(rt.method) + strings.NewReplacer("/", "_", "{", "", "}", "", "-", "_", ".", "_").Replace(rt.path),
		"tags":        []any{strings.Split(rt.path, "/")[1]},
		"responses":   g.responses(rt),
	}
	var params []any
	for _, m := range pathParam.FindAllStringSubmatch(rt.path, -1) {
		params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
	}
	for _, name := range rt.query {
		params = append(params, queryParam(name))
	}
	if params != nil {
		op["parameters"] = params
	}
	if rt.body != nil {
		op["requestBody"] = map[string]any{
			"required": true,
			"content": map[string]any{"application/json": map[string]any{
				"schema": g.schema(indirect(reflect.TypeOf(rt.body)), rt.method == http.MethodPatch),
			}},
		}
		if rt.method == http.MethodPatch {
			op["requestBody"].(map[string]any)["description"] = "The fields to change, merged into the stored object."
		}
	}
	if rt.auth != authNone {
		op["security"] = []any{map[string]any{"bearer": []any{}}}
	}
	return op
}

// responses documents the success answer and the errors rt can get.
func (g *schemaGen) responses(rt route) map[string]any {
	jsonAnswer := func(desc string, v any) map[string]any {
		return map[string]any{"description": desc, "content": map[string]any{
			"application/json": map[string]any{"schema": g.schema(indirect(reflect.TypeOf(v)), false)},
		}}
	}
	out := map[string]any{}
	switch a := rt.answer.(type) {
	case nil:
		out["200"] = map[string]any{"description": "Done."}
	case noContent:
		out["204"] = map[string]any{"description": "Done; no content."}
	case text:
		out["200"] = map[string]any{"description": "Done.", "content": map[string]any{
			"text/plain": map[string]any{"schema": map[string]any{"type": "string"}},
		}}
	case created:
		out["201"] = jsonAnswer("Created.", a.v)
	default:
		out["200"] = jsonAnswer("Done.", a)
	}
	for _, code := range errorStatuses(rt) {
		out[strconv.Itoa(code)] = map[string]any{"$ref": "#/components/responses/" + errorName(code)}
	}
	return out
}

// errorAnswers describes the statuses of the errors the wrapper writes.
var errorAnswers = map[int]string{
	http.StatusBadRequest:            "The request is malformed or invalid; error.field names the culprit.",
	http.StatusUnauthorized:          "The bearer credential is missing or invalid.",
	http.StatusForbidden:             "The credential may not do this, or a browser page of another origin asked.",
	http.StatusNotFound:              "An object named in the path, the query or the body does not exist.",
	http.StatusRequestTimeout:        "The request body was not received in time.",
	http.StatusConflict:              "The change conflicts with the stored state (a name, address or port in use, ...).",
	http.StatusRequestEntityTooLarge: "The request body is too large.",
	http.StatusUnsupportedMediaType:  "The request body is not application/json.",
	http.StatusTooManyRequests:       "Too many failed authentications from this address, or blocking queries held by this credential.",
	http.StatusInternalServerError:   "The server failed; the details are in its log.",
}

func errorName(code int) string { return strings.ReplaceAll(http.StatusText(code), " ", "") }

// errorStatuses lists the error statuses rt can answer, following the
// wrapper (serve, readBody, writeError) and the state's error classes.
func errorStatuses(rt route) []int {
	get, del := rt.method == http.MethodGet, rt.method == http.MethodDelete
	sendsBody := !get && !del // readBody reads it
	pathVars := strings.Contains(rt.path, "{")
	codes := []int{http.StatusInternalServerError}
	if sendsBody || rt.body != nil || len(rt.query) > 0 || pathVars { // pathVars: maxRef
		codes = append(codes, http.StatusBadRequest)
	}
	if rt.auth != authNone { // and 429: authLimiter, blocking
		codes = append(codes, http.StatusUnauthorized, http.StatusTooManyRequests)
	}
	if rt.auth != authNone || !get { // !get: checkOrigin
		codes = append(codes, http.StatusForbidden)
	}
	names := slices.ContainsFunc(rt.query, func(q string) bool { return q == "network" || q == "host" || q == "interface" })
	if pathVars || rt.body != nil || names || rt.auth == authHost || rt.auth == authJoin {
		codes = append(codes, http.StatusNotFound)
	}
	if !get && rt.auth != authNone {
		codes = append(codes, http.StatusConflict)
	}
	if sendsBody {
		codes = append(codes, http.StatusRequestTimeout, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType)
	}
	slices.Sort(codes)
	return codes
}

// queryParam documents a query parameter the handlers parse (filter,
// blocking, boolParam); an unknown name is a plain string.
func queryParam(name string) map[string]any {
	p := map[string]any{"name": name, "in": "query", "schema": map[string]any{"type": "string"}}
	set := func(desc string, schema map[string]any) { p["description"], p["schema"] = desc, schema }
	switch name {
	case "q":
		set("Only names that start with this prefix.", map[string]any{"type": "string"})
	case "limit":
		set(fmt.Sprintf("Page size; 0 or absent: %d.", state.DefaultLimit),
			map[string]any{"type": "integer", "format": "int32", "minimum": 0, "maximum": state.MaxLimit})
	case "offset":
		set("Index of the page's first item.", map[string]any{"type": "integer", "format": "int32", "minimum": 0, "maximum": 1<<31 - 1})
	case "label":
		set("Only hosts with this label, as key=value.", map[string]any{"type": "string", "pattern": "^[^=]+=", "example": "role=edge"})
	case "status":
		set("Only hosts with this status.", map[string]any{"type": "string", "enum": []any{api.HostPending, api.HostReady, api.HostDown}})
	case "firewall":
		set("behind: only the interfaces whose agent does not enforce the revision of their access policy.", map[string]any{"type": "string", "enum": []any{"behind"}})
	case "peer":
		set("The id of the peer interface (required).", map[string]any{"type": "string"})
	case "network", "host", "interface":
		set("Only objects of this "+name+" (name or id).", map[string]any{"type": "string"})
	case "index":
		set("Answer once the state is newer than this index (a blocking query); 0 or absent: now.",
			map[string]any{"type": "integer", "format": "uint64", "minimum": 0})
	case "wait":
		set(fmt.Sprintf("How long a blocking query may wait, a Go duration from 0s to %s.", maxWait),
			map[string]any{"type": "string", "pattern": `^([0-9]+(\.[0-9]*)?(ns|us|µs|ms|s|m|h))+$|^0$`, "example": "30s"})
	case "edges":
		set("Which edges: all, problems (stale or never handshakes) or none.", map[string]any{"type": "string", "enum": []any{api.EdgesAll, api.EdgesProblems, api.EdgesNone}})
	case "node":
		set("Only the edges of this interface (id).", map[string]any{"type": "string"})
	case "edge_limit":
		set(fmt.Sprintf("Edges per answer; absent: %d.", state.DefaultTopologyEdges),
			map[string]any{"type": "integer", "format": "int32", "minimum": 1, "maximum": state.MaxTopologyEdges})
	case "edge_offset":
		set("Index of the first edge answered.", map[string]any{"type": "integer", "format": "int32", "minimum": 0, "maximum": 1<<31 - 1})
	case "delta":
		set("Answer with a delta on the state of index when possible.", map[string]any{"type": "boolean"})
	case "since", "until":
		set("Only entries from (since) or before (until) this time: an RFC 3339 time, or a Go duration back from now.",
			map[string]any{"type": "string", "example": "24h"})
	case "token":
		set("Only entries of this credential (a token's, join token's or host's id, or a token's name).", map[string]any{"type": "string"})
	case "object":
		set("Only entries about this object (id or name).", map[string]any{"type": "string"})
	case "kind":
		set("Only entries about objects of this kind (network, host, interface, device, connection, token, join_token, ...).", map[string]any{"type": "string"})
	case "method":
		set("Only entries of this method.", map[string]any{"type": "string", "enum": []any{"POST", "PUT", "PATCH", "DELETE"}})
	}
	return p
}

// schemaGen generates OpenAPI 3.0 schemas from Go types as encoding/json
// writes and reads them. Named struct types become components, referenced
// with $ref, so recursive types end.
type schemaGen struct {
	defs  map[string]any // components/schemas
	names map[schemaKey]string
}

// schemaKey is a component: a struct type, whole or as a PATCH merge (all
// properties optional, nested structs merged too).
type schemaKey struct {
	t     reflect.Type
	patch bool
}

func newSchemaGen() *schemaGen {
	return &schemaGen{defs: map[string]any{}, names: map[schemaKey]string{}}
}

var (
	timeType      = reflect.TypeFor[time.Time]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
	// readOnlyTypes are embedded types whose fields only the server sets.
	readOnlyTypes = []reflect.Type{reflect.TypeFor[api.Meta]()}
)

// indirect returns the type a pointer type points to, finally.
func indirect(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// schema returns the schema of t; patch asks for the PATCH form of structs.
func (g *schemaGen) schema(t reflect.Type, patch bool) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t.Kind() != reflect.Pointer && (t.Implements(textMarshaler) || reflect.PointerTo(t).Implements(textMarshaler)):
		return map[string]any{"type": "string"}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return with(g.schema(t.Elem(), patch), "nullable", true)
	case reflect.Struct:
		if t.Name() == "" {
			return g.object(t, patch)
		}
		return map[string]any{"$ref": "#/components/schemas/" + g.component(t, patch)}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 && !reflect.PointerTo(t.Elem()).Implements(textMarshaler) {
			return map[string]any{"type": "string", "format": "byte"}
		}
		return map[string]any{"type": "array", "items": g.schema(t.Elem(), false)}
	case reflect.Array:
		return map[string]any{"type": "array", "items": g.schema(t.Elem(), false), "minItems": t.Len(), "maxItems": t.Len()}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem(), false)}
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		s := map[string]any{"type": "integer", "format": "int64"}
		if b := wireBits(t); b < 64 {
			s["format"], s["minimum"], s["maximum"] = "int32", -(1 << (b - 1)), 1<<(b-1)-1
		}
		return s
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		s := map[string]any{"type": "integer", "format": "uint64", "minimum": 0}
		switch b := wireBits(t); {
		case b < 32:
			s["format"], s["maximum"] = "int32", uint64(1)<<b-1
		case b < 64:
			s["format"], s["maximum"] = "int64", uint64(1)<<b-1
		}
		return s
	case reflect.Float32:
		return map[string]any{"type": "number", "format": "float"}
	case reflect.Float64:
		return map[string]any{"type": "number", "format": "double"}
	}
	return map[string]any{} // interface: any JSON value
}

// with sets key on s; a $ref takes no siblings in OpenAPI 3.0, so it is
// wrapped in allOf first.
func with(s map[string]any, key string, v any) map[string]any {
	if _, ok := s["$ref"]; ok {
		s = map[string]any{"allOf": []any{s}}
	}
	s[key] = v
	return s
}

// component returns the component name of a named struct type, generating
// its schema the first time.
func (g *schemaGen) component(t reflect.Type, patch bool) string {
	k := schemaKey{t, patch}
	if name, ok := g.names[k]; ok {
		return name
	}
	name := schemaName(t)
	if patch {
		name += "Patch"
	}
	if _, taken := g.defs[name]; taken { // same name in another package
		pkg := t.PkgPath()[strings.LastIndex(t.PkgPath(), "/")+1:]
		name = strings.ToUpper(pkg[:1]) + pkg[1:] + name
	}
	g.names[k] = name
	g.defs[name] = map[string]any{} // taken while the fields refer back
	g.defs[name] = g.object(t, patch)
	return name
}

// genericArg strips package paths from the type arguments of a name.
var genericArg = regexp.MustCompile(`(?:[\w.\-]+/)*[\w\-]+\.`)

// schemaName names a type's component: List[api.Host] is ListOfHost.
func schemaName(t reflect.Type) string {
	name := genericArg.ReplaceAllString(t.Name(), "")
	return strings.NewReplacer("[]", "SliceOf", "[", "Of", ",", "And", "]", "", "*", "", " ", "").Replace(name)
}

// object is the schema of a struct: its JSON fields, embedded structs
// flattened. Fields without omitempty are required (encoding/json always
// writes them), but not in a PATCH merge.
func (g *schemaGen) object(t reflect.Type, patch bool) map[string]any {
	props := map[string]any{}
	var required []string
	g.fields(t, patch, false, props, &required)
	s := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 && !patch {
		slices.Sort(required)
		s["required"] = required
	}
	return s
}

func (g *schemaGen) fields(t reflect.Type, patch, readOnly bool, props map[string]any, required *[]string) {
	var embedded []reflect.Type
	for f := range t.Fields() {
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && indirect(f.Type).Kind() == reflect.Struct {
			embedded = append(embedded, indirect(f.Type))
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		s := g.schema(f.Type, patch)
		omit := hasOpt(opts, "omitempty") || hasOpt(opts, "omitzero")
		switch k := indirect(f.Type).Kind(); {
		case hasOpt(opts, "string") && (k == reflect.Bool || k >= reflect.Int && k <= reflect.Float64):
			s = map[string]any{"type": "string"}
		case !omit && (k == reflect.Slice || k == reflect.Map):
			s = with(s, "nullable", true) // a nil one is written as null
		}
		if readOnly {
			s = with(s, "readOnly", true)
		}
		props[name] = s
		if !omit {
			*required = append(*required, name)
		}
	}
	// Fields of embedded structs, unless an outer field has the name.
	for _, e := range embedded {
		inner := map[string]any{}
		var req []string
		g.fields(e, patch, readOnly || slices.Contains(readOnlyTypes, e), inner, &req)
		for name, s := range inner {
			if _, ok := props[name]; !ok {
				props[name] = s
				if slices.Contains(req, name) {
					*required = append(*required, name)
				}
			}
		}
	}
}

func hasOpt(opts, opt string) bool {
	return slices.Contains(strings.Split(opts, ","), opt)
}

// wireBits is the size of an integer type on the wire: int and uint count
// as 64 bits, so that the document is the same on every platform (32-bit
// ARM builds included).
func wireBits(t reflect.Type) int {
	switch t.Kind() {
	case reflect.Int, reflect.Uint, reflect.Uintptr:
		return 64
	}
	return t.Bits()
}

package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/state"
)

// bodyTypes are the JSON request bodies of the API, in the order FuzzDecode
// picks them.
var bodyTypes = []func() any{
	func() any { return new(api.Network) },
	func() any { return new(api.Host) },
	func() any { return new(api.Interface) },
	func() any { return new(api.DeviceRequest) },
	func() any { return new(api.Connection) },
	func() any { return new(api.Token) },
	func() any { return new(api.JoinToken) },
	func() any { return new(api.RegisterRequest) },
	func() any { return new(api.StatusReport) },
}

// FuzzDecode feeds a body through readBody and decode, as every handler
// takes its body, into one of the API's body types. A body accepted is one
// JSON object (nothing before or after it) whose value re-encodes and
// decodes to itself; a body refused is a 4xx, and a 400 names the field at
// fault (a nested field by its dotted path).
func FuzzDecode(f *testing.F) {
	for k, body := range []string{
		`{"name":"office","ipv4_range":"10.10.0.0/24","ipv6_range":"fd10::/64","dns":["10.10.0.1"],"topology":"mesh"}`,
		`{"name":"alpha","labels":{"site":"par1","gone":null},"advertise_address":"[2001:db8::1]:51820"}`,
		`{"host_id":"alpha","network_id":"office","addresses":["10.10.0.9/24"],"key_rotated_at":"2024-05-01T10:00:00.123456789+02:00"}`,
		`{"network":"office","name":"laptop","public_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}`,
		`{"network_id":"x","a":{"interface_id":"1","allowed_ips":["0.0.0.0/0"]},"b":{"interface_id":"2","endpoint":"h:1"},"persistent_keepalive":null}`,
		`{"name":"ci","policies":[{"resource":"*","access":"read","networks":[]}]}`,
		`{"name":"web","expires_at":"2099-12-31T23:59:59Z","max_uses":3,"labels":{}}`,
		`{"name":"gamma","request_id":"0123456789abcdef","labels":{"a":"\u00e9\ud800"}}`,
		`{"seq":2,"peers_since":1,"interfaces":[{"id":"i","peers":[{"public_key":"k","last_handshake":"2024-01-01T00:00:00Z","rx_bytes":-1}],"removed_peers":["k"]}]}`,
	} {
		f.Add(uint8(k), []byte(body))
	}
	for _, body := range []string{
		``, ` `, `null`, ` null `, `nullx`, `{}`, `[]`, `"x"`, `1`, `{} {}`, `{}x`, `{} }`, `{}]`, `{"name":1}`,
		`{"mtu":1e400}`, `{"mtu":"1"}`, `{"a":{"interface_id":5}}`, `{"interfaces":[{"peers":[{"rx_bytes":"x"}]}]}`,
		`{"nope":true}`, `{"a":{"nope":1}}`, `{"name":"x"`, `{"name":"x\u0000"}`, "{\"name\":\"\xff\"}",
		`{"expires_at":"yesterday"}`, `{"expires_at":"10000-01-01T00:00:00Z"}`, `{"labels":{"k":1}}`, `{"NAME":"x","Name":"y"}`,
	} {
		f.Add(uint8(0), []byte(body))
		f.Add(uint8(4), []byte(body))
		f.Add(uint8(6), []byte(body))
	}
	f.Fuzz(func(t *testing.T, kind uint8, body []byte) {
		newBody := bodyTypes[int(kind)%len(bodyTypes)]
		r := httptest.NewRequest("POST", "/api/v1/x", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		req := &request{Request: r}
		if err := req.readBody(maxBody); err != nil {
			t.Fatalf("readBody: %v", err)
		}
		v := newBody()
		err := req.decode(v, true)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.status != http.StatusBadRequest || !namesField(ae.field, ae.message) || !strings.HasPrefix(ae.message, ae.field+": ") {
				t.Fatalf("%q: error %#v, want a 400 naming a field", body, err)
			}
			return
		}
		value := jsonPrefix(body)
		rest := bytes.TrimSpace(body[len(value):])
		if v := bytes.TrimSpace(value); len(v) == 0 || v[0] != '{' {
			t.Fatalf("%q: accepted, but it is not a JSON object", body)
		}
		if len(rest) > 0 {
			t.Fatalf("%q: accepted with data after the object", body)
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%q: accepted, but does not encode: %v", body, err)
		}
		r2 := httptest.NewRequest("POST", "/api/v1/x", bytes.NewReader(b))
		r2.Header.Set("Content-Type", "application/json")
		req2 := &request{Request: r2}
		v2 := newBody()
		if err := req2.readBody(maxBody); err != nil {
			t.Fatal(err)
		}
		if err := req2.decode(v2, true); err != nil {
			t.Fatalf("%q: re-encoded as %s, which is refused: %v", body, b, err)
		}
		if diff := cmp.Diff(v, v2, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("%q: decode(encode(v)) != v (-v +decoded):\n%s", body, diff)
		}
	})
}

// namesField reports whether a 400 with message names a field.
func namesField(field, message string) bool {
	return field != ""
}

// jsonPrefix returns body up to the end of its first JSON value.
func jsonPrefix(body []byte) []byte {
	dec := json.NewDecoder(bytes.NewReader(body))
	var v json.RawMessage
	if dec.Decode(&v) != nil {
		return body
	}
	return body[:dec.InputOffset()]
}

// FuzzQueryParams parses a query string with the handlers' helpers (filter,
// intParam, blockingParams, boolParam). A value refused is a 400 naming the
// parameter; a value accepted is what the parameter says, within bounds: a
// page of 0 to state.MaxLimit from an offset of 0 to 2^31-1, a known host
// status, a label key=value with a key, a wait of 0 to maxWait (0 without
// an index).
func FuzzQueryParams(f *testing.F) {
	for _, q := range []string{
		"", "limit=10&offset=5&q=web&network=prod&host=alpha&interface=i&status=ready&label=site%3Dpar1",
		"limit=-1", "limit=1001", "limit=1000", "offset=2147483648", "offset=+5", "limit=0x10", "limit=%", "label==v",
		"label=k=", "label=k%3Dv%3Dw", "status=Ready", "status=down&status=ready", "index=5&wait=30s&delta=true",
		"index=18446744073709551616", "index=-1", "wait=5m0.000000001s", "index=1&wait=-1s", "wait=1h", "delta=T",
		"delta=yes", "index=0&wait=5m", ";limit=5", "limit=5;offset=1",
	} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		req := &request{Request: &http.Request{URL: &url.URL{RawQuery: rawQuery}}}
		q := req.URL.Query()
		is400 := func(err error, fields ...string) {
			t.Helper()
			var ae *apiError
			if !errors.As(err, &ae) || ae.status != http.StatusBadRequest || !slices.Contains(fields, ae.field) {
				t.Fatalf("%q: error %#v, want a 400 naming one of %q", rawQuery, err, fields)
			}
		}
		if fl, err := req.filter(); err != nil {
			is400(err, "limit", "offset", "label", "status")
		} else {
			if fl.Limit < 0 || fl.Limit > state.MaxLimit || fl.Offset < 0 || fl.Offset > 1<<31-1 {
				t.Fatalf("%q: limit %d, offset %d", rawQuery, fl.Limit, fl.Offset)
			}
			for name, got := range map[string]int{"limit": fl.Limit, "offset": fl.Offset} {
				if n, _ := strconv.Atoi(q.Get(name)); got != n {
					t.Fatalf("%q: %s %d", rawQuery, name, got)
				}
			}
			if !slices.Contains([]string{"", api.HostPending, api.HostReady, api.HostDown}, fl.Status) {
				t.Fatalf("%q: status %q", rawQuery, fl.Status)
			}
			if l := q.Get("label"); (l == "") != (fl.LabelKey == "") || (l != "" && fl.LabelKey+"="+fl.LabelValue != l) {
				t.Fatalf("%q: label %q=%q", rawQuery, fl.LabelKey, fl.LabelValue)
			}
			if fl.Query != q.Get("q") || fl.Network != q.Get("network") || fl.Host != q.Get("host") || fl.Interface != q.Get("interface") {
				t.Fatalf("%q: filter %+v", rawQuery, fl)
			}
		}
		if index, wait, err := req.blockingParams(30 * time.Second); err != nil {
			is400(err, "index", "wait")
		} else {
			if want, _ := strconv.ParseUint(q.Get("index"), 10, 64); index != want {
				t.Fatalf("%q: index %d", rawQuery, index)
			}
			if wait < 0 || wait > maxWait || (index == 0 && wait != 0) {
				t.Fatalf("%q: index %d, wait %v", rawQuery, index, wait)
			}
		}
		if v, err := req.boolParam("delta"); err != nil {
			is400(err, "delta")
		} else if want, _ := strconv.ParseBool(q.Get("delta")); v != want {
			t.Fatalf("%q: delta %v", rawQuery, v)
		}
	})
}

package agent

import (
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/drago-wg/drago/server"
	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/store"
)

// FuzzAgentConfig validates agent configurations (as the drago agent
// command builds them from flags, environment and HCL file). A config
// accepted has an http(s) server address with a host, a host name without
// white space or '/', an advertised address that is host or host:port with
// a port from 1 to 65535, and label keys; and the server, on an in-memory
// store, registers a host with its name, labels and advertised address.
func FuzzAgentConfig(f *testing.F) {
	for _, s := range [][5]string{
		{"http://10.0.0.1:8080", "web-1", "198.51.100.1", "site", "par1"},
		{"https://drago.example.com", "web-1.example.com", "[2001:db8::1]:51820", "team/a", ""},
		{"ftp://x", "a b", "host:0", "", "v"},
		{"http://", "x/y", "h:99999", "k", "v"},
		{"http://[::1]:80/path?q", strings.Repeat("n", 64), "fe80::1%eth0", "k:1", "v\n"},
		{"HTTP://x", "web!", "ホスト", "ключ", strings.Repeat("v", 256)},
		{"http://x", "-web", "host:", ".k", "v"},
	} {
		f.Add(s[0], s[1], s[2], s[3], s[4])
	}
	f.Fuzz(func(t *testing.T, serverURL, name, advertise, labelKey, labelValue string) {
		cfg := Config{Server: serverURL, Name: name, AdvertiseAddress: advertise, Labels: map[string]string{labelKey: labelValue}}
		if cfg.Validate() != nil {
			return
		}
		u, err := url.Parse(cfg.Server)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			t.Fatalf("server %q accepted", cfg.Server)
		}
		if strings.ContainsAny(name, " \t\r\n/") || labelKey == "" {
			t.Fatalf("name %q, label key %q accepted", name, labelKey)
		}
		if advertise != "" {
			host := advertise
			if h, port, err := net.SplitHostPort(advertise); err == nil {
				if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
					t.Fatalf("advertise address %q accepted", advertise)
				}
				host = h
			}
			if host == "" || strings.ContainsAny(host, " \t\r\n/") {
				t.Fatalf("advertise address %q accepted", advertise)
			}
		}
		if name == "" {
			return // the name defaults to the system's host name
		}
		status, body := registerWith(t, cfg)
		if status != http.StatusCreated {
			t.Fatalf("config %+v accepted, but the server refuses it: %d %s", cfg, status, body)
		}
	})
}

// registerWith registers cfg's host with a new server, as the agent does.
func registerWith(t *testing.T, cfg Config) (int, string) {
	srv, root, err := server.New(server.Config{Store: store.NewMem()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	h := srv.Handler()
	do := func(path, secret string, v any) *httptest.ResponseRecorder {
		b, _ := json.Marshal(v)
		r := httptest.NewRequest("POST", "http://drago.test/api/v1"+path, strings.NewReader(string(b)))
		r.Header.Set("Authorization", "Bearer "+secret)
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	w := do("/join-tokens", root, api.JoinToken{Name: "fuzz"})
	var j api.JoinToken
	if w.Code != http.StatusCreated || json.Unmarshal(w.Body.Bytes(), &j) != nil {
		t.Fatalf("creating a join token: %d %s", w.Code, w.Body)
	}
	w = do("/agent/register", j.Secret, api.RegisterRequest{Name: cfg.Name, Labels: cfg.Labels, AdvertiseAddress: cfg.AdvertiseAddress, OS: "linux", Arch: "amd64"})
	return w.Code, w.Body.String()
}

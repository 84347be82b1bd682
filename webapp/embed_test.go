package webapp

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/google/go-cmp/cmp"
)

const testIndex = `<!doctype html><script type="module" src="/ui/assets/index-abc123.js"></script>`

func testApp() fs.FS {
	return fstest.MapFS{
		"index.html":              {Data: []byte(testIndex)},
		"favicon.svg":             {Data: []byte("<svg/>")},
		"assets/index-abc123.js":  {Data: []byte("console.log(1)")},
		"assets/index-def456.css": {Data: []byte("body{}")},
		"assets/_chunk-x1.js":     {Data: []byte("export {}")},
	}
}

func get(t *testing.T, h http.Handler, method, target string, hdr map[string]string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestHandlerRoutes(t *testing.T) {
	h := NewHandler(testApp())
	tests := []struct {
		name        string
		method      string
		path        string
		wantStatus  int
		wantBody    string // substring
		wantCache   string
		wantType    string // prefix
		wantRedirTo string
	}{
		{"root", "GET", "/ui/", 200, testIndex, "no-cache", "text/html", ""},
		{"index by name", "GET", "/ui/index.html", 200, testIndex, "no-cache", "text/html", ""},
		{"no trailing slash", "GET", "/ui", 301, "", "", "", "/ui/"},
		{"app route falls back", "GET", "/ui/networks/office", 200, testIndex, "no-cache", "text/html", ""},
		{"deep route with dots", "GET", "/ui/hosts/web1.example.com", 200, testIndex, "no-cache", "text/html", ""},
		{"hashed asset", "GET", "/ui/assets/index-abc123.js", 200, "console.log(1)", "public, max-age=31536000, immutable", "text/javascript", ""},
		{"hashed css", "GET", "/ui/assets/index-def456.css", 200, "body{}", "public, max-age=31536000, immutable", "text/css", ""},
		{"underscore chunk", "GET", "/ui/assets/_chunk-x1.js", 200, "export {}", "public, max-age=31536000, immutable", "text/javascript", ""},
		{"unhashed file", "GET", "/ui/favicon.svg", 200, "<svg/>", "no-cache", "image/svg+xml", ""},
		{"missing asset is 404", "GET", "/ui/assets/gone-000.js", 404, "", "no-cache", "", ""},
		{"missing top-level file is 404", "GET", "/ui/robots.txt", 404, "", "no-cache", "", ""},
		{"asset dir falls back", "GET", "/ui/assets/", 200, testIndex, "no-cache", "text/html", ""},
		{"traversal stays inside", "GET", "/ui/../../etc/passwd", 200, testIndex, "no-cache", "text/html", ""},
		{"head", "HEAD", "/ui/", 200, "", "no-cache", "text/html", ""},
		{"post refused", "POST", "/ui/", 405, "", "", "", ""},
		{"outside the prefix", "GET", "/api/v1/status", 404, "", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := get(t, h, tt.method, tt.path, nil)
			if res.StatusCode != tt.wantStatus {
				t.Fatalf("status = %d, want %d", res.StatusCode, tt.wantStatus)
			}
			if got := body(t, res); tt.wantBody != "" && !strings.Contains(got, tt.wantBody) {
				t.Errorf("body = %q, want it to contain %q", got, tt.wantBody)
			}
			if tt.wantCache != "" {
				if got := res.Header.Get("Cache-Control"); got != tt.wantCache {
					t.Errorf("Cache-Control = %q, want %q", got, tt.wantCache)
				}
			}
			if tt.wantType != "" {
				if got := res.Header.Get("Content-Type"); !strings.HasPrefix(got, tt.wantType) {
					t.Errorf("Content-Type = %q, want %q...", got, tt.wantType)
				}
			}
			if tt.wantRedirTo != "" {
				if got := res.Header.Get("Location"); got != tt.wantRedirTo {
					t.Errorf("Location = %q, want %q", got, tt.wantRedirTo)
				}
			}
		})
	}
}

func TestHandlerSecurityHeaders(t *testing.T) {
	h := NewHandler(testApp())
	for _, p := range []string{"/ui/", "/ui/hosts/h1", "/ui/assets/index-abc123.js", "/ui/assets/gone.js"} {
		t.Run(p, func(t *testing.T) {
			res := get(t, h, "GET", p, nil)
			want := map[string]string{
				"Content-Security-Policy": ContentSecurityPolicy,
				"X-Content-Type-Options":  "nosniff",
				"X-Frame-Options":         "DENY",
			}
			got := map[string]string{}
			for k := range want {
				got[k] = res.Header.Get(k)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestContentSecurityPolicyIsStrict(t *testing.T) {
	for _, must := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "base-uri 'none'", "connect-src 'self'"} {
		if !strings.Contains(ContentSecurityPolicy, must) {
			t.Errorf("CSP lacks %q: %s", must, ContentSecurityPolicy)
		}
	}
	for _, bad := range []string{"unsafe-inline", "unsafe-eval", "*", "data:", "http:"} {
		if strings.Contains(ContentSecurityPolicy, bad) {
			t.Errorf("CSP allows %q: %s", bad, ContentSecurityPolicy)
		}
	}
}

func TestHandlerRevalidatesIndex(t *testing.T) {
	h := NewHandler(testApp())
	res := get(t, h, "GET", "/ui/networks", nil)
	tag := res.Header.Get("ETag")
	if tag == "" {
		t.Fatal("index.html has no ETag")
	}
	res = get(t, h, "GET", "/ui/networks", map[string]string{"If-None-Match": tag})
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("conditional GET status = %d, want 304", res.StatusCode)
	}
}

func TestPlaceholder(t *testing.T) {
	sub, err := fs.Sub(files, "ui/placeholder")
	if err != nil {
		t.Fatal(err)
	}
	h := NewHandler(sub)
	for _, p := range []string{"/ui/", "/ui/hosts/h1"} {
		res := get(t, h, "GET", p, nil)
		if res.StatusCode != 200 {
			t.Fatalf("%s: status %d", p, res.StatusCode)
		}
		if got := body(t, res); !strings.Contains(got, "not built") || !strings.Contains(got, "make webapp") {
			t.Errorf("%s: placeholder body = %q", p, got)
		}
	}
}

// TestEmbedded checks what this binary embeds: the built app after
// `make webapp`, the placeholder otherwise.
func TestEmbedded(t *testing.T) {
	res := get(t, Handler(), "GET", "/ui/", nil)
	if res.StatusCode != 200 {
		t.Fatalf("status %d", res.StatusCode)
	}
	got := body(t, res)
	if Built() {
		if !strings.Contains(got, `<div id="app">`) || !strings.Contains(got, "/ui/assets/") {
			t.Errorf("built index.html does not load the app: %q", got)
		}
		if strings.Contains(got, "<script>") || strings.Contains(got, "style=") {
			t.Errorf("built index.html has inline script or style, which the CSP blocks: %q", got)
		}
	} else if !strings.Contains(got, "make webapp") {
		t.Errorf("placeholder expected, got %q", got)
	}
}

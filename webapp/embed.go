// Package webapp serves Drago's dashboard: the single-page app built from this
// directory's TypeScript sources, embedded in the drago binary and mounted by
// the server at /ui/.
//
// # How the build gets in without dirtying git
//
// go:embed cannot embed a directory that may be missing, and the build output
// must not be committed. So the embedded directory is ui/, which always holds
// the committed ui/placeholder/index.html ("the dashboard is not built") and,
// after `make webapp`, the gitignored ui/dist/ written by Vite. Handler serves
// ui/dist when it holds an index.html and ui/placeholder otherwise: a plain
// `go build` works without Node (and serves the placeholder), and a build after
// `make webapp` embeds the real dashboard, leaving `git status` clean either way.
// The all: prefix keeps files whose names start with "_" or "." (Vite can name
// chunks so).
package webapp

import (
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed all:ui
var files embed.FS

// Prefix is the URL path the server mounts Handler at.
const Prefix = "/ui/"

// ContentSecurityPolicy allows only same-origin scripts, styles, fonts,
// images and API calls: no inline script or style, no framing.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"font-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; " +
	"frame-ancestors 'none'"

// Built reports whether the binary embeds the built dashboard rather than the placeholder.
func Built() bool {
	_, err := fs.Stat(files, "ui/dist/index.html")
	return err == nil
}

// Handler serves the dashboard. It expects full request paths starting with
// /ui/: files as they are, hashed assets (under assets/) as immutable, and
// index.html for every other path (the app routes on the client).
func Handler() http.Handler {
	root := "ui/placeholder"
	if Built() {
		root = "ui/dist"
	}
	sub, err := fs.Sub(files, root)
	if err != nil {
		panic("webapp: " + err.Error()) // cannot happen: root is a constant directory
	}
	return NewHandler(sub)
}

// NewHandler serves the app in fsys (whose root holds index.html) at Prefix.
func NewHandler(fsys fs.FS) http.Handler {
	h := &handler{fsys: fsys, etags: map[string]string{}}
	// Embedded files carry no time: strong ETags from their content let
	// browsers revalidate index.html cheaply.
	_ = fs.WalkDir(fsys, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil
		}
		sum := sha256.Sum256(b)
		h.etags[name] = `"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
		return nil
	})
	return h
}

type handler struct {
	fsys  fs.FS
	etags map[string]string // file name -> ETag
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hdr := w.Header()
	hdr.Set("Content-Security-Policy", ContentSecurityPolicy)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("X-Frame-Options", "DENY")
	hdr.Set("Referrer-Policy", "same-origin")
	hdr.Set("Cross-Origin-Opener-Policy", "same-origin")

	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hdr.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	if p == strings.TrimSuffix(Prefix, "/") {
		http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
		return
	}
	if !strings.HasPrefix(p, Prefix) {
		http.NotFound(w, r)
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+strings.TrimPrefix(p, Prefix)), "/")
	if name == "" || name == "index.html" {
		h.serveIndex(w, r)
		return
	}
	if h.serveFile(w, r, name) {
		return
	}
	// A missing asset or top-level file (favicon.ico) is an error, not a
	// page: answering index.html would hand HTML to a <script> or <link>.
	// Deeper paths are app routes, whose names may hold dots (hosts/web1.lan).
	if strings.HasPrefix(name, "assets/") || (!strings.Contains(name, "/") && path.Ext(name) != "") {
		hdr.Set("Cache-Control", "no-cache")
		http.NotFound(w, r)
		return
	}
	h.serveIndex(w, r)
}

// serveFile serves fsys/name if it is a regular file and reports whether it did.
func (h *handler) serveFile(w http.ResponseWriter, r *http.Request, name string) bool {
	f, err := h.fsys.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || st.IsDir() {
		return false
	}
	if strings.HasPrefix(name, "assets/") {
		// Vite puts a content hash in every name under assets/.
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "no-cache")
	}
	rs, ok := f.(io.ReadSeeker)
	if !ok {
		return false
	}
	if tag, ok := h.etags[name]; ok {
		w.Header().Set("ETag", tag)
	}
	http.ServeContent(w, r, name, modTime(st), rs)
	return true
}

func (h *handler) serveIndex(w http.ResponseWriter, r *http.Request) {
	f, err := h.fsys.Open("index.html")
	if err != nil {
		http.Error(w, "dashboard missing", http.StatusNotFound)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	rs, ok := f.(io.ReadSeeker)
	if err != nil || !ok {
		http.Error(w, "dashboard unreadable", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if tag, ok := h.etags["index.html"]; ok {
		w.Header().Set("ETag", tag)
	}
	http.ServeContent(w, r, "index.html", modTime(st), rs)
}

// modTime answers a file's time (zero for embedded files, which ServeContent
// then leaves out of Last-Modified).
func modTime(st fs.FileInfo) time.Time {
	if st == nil {
		return time.Time{}
	}
	return st.ModTime()
}

package server

import (
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/state"
	"github.com/drago-wg/drago/server/store"
)

// maxBody bounds a request body; larger ones get 413.
const maxBody = 1 << 20

// maxWait bounds a blocking query.
const maxWait = 5 * time.Minute

// auth says who may call a route.
type auth int

const (
	authNone auth = iota
	authManagement
	authHost
	authJoin
)

// route is one API endpoint: how it is reached, who may call it and what it
// does. The OpenAPI document is built from the same table.
type route struct {
	method, path string
	auth         auth
	resource     string // for authManagement
	access       string
	summary      string
	maxBody      int64 // 0: maxBody
	// bodyLimit, when set, bounds the body after authentication (a status
	// report by its host's peers).
	bodyLimit func(*request) int64
	handle    func(*request) (any, error)
	// object names the kind of object the route's writes act on in the
	// audit trail, when its path does not say (see auditObject).
	object string
	// question marks a POST that changes nothing: it is not audited.
	question bool
	// unhealthyOK lets the route answer while the server is cut off from
	// its store (it says so itself).
	unhealthyOK bool
	// For the OpenAPI document: the zero value of the JSON request body
	// (nil: none), of the success answer (created{}, noContent{} and text
	// mark 201, 204 and text/plain), and the query parameters taken.
	body   any
	answer any
	query  []string
}

// request is what a handler gets: the HTTP request, its path variables and
// the authenticated caller.
type request struct {
	*http.Request
	w http.ResponseWriter
	s *Server
	// st is the state the handler reads and writes: for an audited call,
	// one whose write stores the call's audit entry (record) with it.
	st   *state.State
	vars map[string]string
	who  *state.Principal
	body []byte
	done []func() // run once the handler returned
	// target is the object an audited call names, resolved before the
	// handler runs (after authentication).
	target auditTarget
	record *state.AuditRecord
}

// Answer types that the wrapper writes differently from a plain 200 JSON.
type (
	created   struct{ v any }
	noContent struct{}
	text      string
)

// apiError is an error with a status and an optional field, for the wrapper.
type apiError struct {
	status     int
	field      string
	message    string
	retryAfter string // seconds, for 429
}

func (e *apiError) Error() string { return e.message }

func badRequest(field, format string, args ...any) error {
	return &apiError{status: http.StatusBadRequest, field: field, message: field + ": " + fmt.Sprintf(format, args...)}
}

// handler wraps a route: authentication, body checks, the call, and the answer.
// The call runs from a small frame: a blocking query waits in it, and a
// connection's stack shrinks at GC only while under a quarter of it is in
// use (admit and answer are deep; the route is passed by pointer, not as
// 200 bytes of arguments in each frame).
func (s *Server) handler(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		req := &request{Request: r, w: w, s: s, st: s.state, vars: mux.Vars(r)}
		var v any
		err := s.admit(&rt, req)
		if err == nil {
			v, err = s.handle(&rt, req)
		}
		s.answer(&rt, req, v, err)
	})
}

// admit checks a request before its route is called: origin, path
// variables, authentication, permissions and body; it also prepares the
// audit entry.
func (s *Server) admit(rt *route, req *request) error {
	r := req.Request
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if err := checkOrigin(r); err != nil {
			return err
		}
	}
	for name, v := range req.vars {
		if len(v) > maxRef {
			return badRequest(name, "is longer than %d characters", maxRef)
		}
	}
	if rt.auth != authNone {
		if err := s.authenticate(req); err != nil {
			return err
		}
	}
	if audited(*rt) {
		req.target = s.auditBefore(*rt, req)
	}
	switch {
	case rt.auth == authManagement && req.who.Token == nil:
		return &apiError{status: http.StatusForbidden, message: "this endpoint takes a management token"}
	case rt.auth == authManagement && rt.resource != "" && !req.who.AllowedAny(rt.resource, rt.access):
		return &apiError{status: http.StatusForbidden, message: fmt.Sprintf("token has no %s access to %s", rt.access, rt.resource)}
	case rt.auth == authHost && req.who.HostID == "":
		return &apiError{status: http.StatusForbidden, message: "this endpoint takes a host credential"}
	case rt.auth == authJoin && req.who.Join == nil:
		return &apiError{status: http.StatusForbidden, message: "this endpoint takes a join token"}
	}
	limit := cmp.Or(rt.maxBody, maxBody)
	if rt.bodyLimit != nil {
		limit = rt.bodyLimit(req)
	}
	if err := req.readBody(limit); err != nil {
		return err
	}
	if audited(*rt) {
		req.record = &state.AuditRecord{Entry: s.auditEntry(*rt, req)}
		req.st = s.state.WithAudit(req.record)
	}
	return nil
}

// answer ends a request: its done functions, the audit entry and the
// registration metric, then the answer or the error.
func (s *Server) answer(rt *route, req *request, v any, err error) {
	for _, f := range req.done {
		f()
	}
	if audited(*rt) && req.who != nil {
		s.audit(*rt, req, v, err)
	}
	if rt.auth == authJoin {
		s.metrics.registration(err)
	}
	w, r := req.w, req.Request
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	switch a := v.(type) {
	case noContent:
		w.WriteHeader(http.StatusNoContent)
	case text:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, string(a))
	case http.Handler: // answers itself (the metrics scrape)
		a.ServeHTTP(w, r)
	case created:
		writeJSON(w, r, http.StatusCreated, a.v)
	default:
		writeJSON(w, r, http.StatusOK, v)
	}
}

// maxStaleRetries bounds how often a write that another server's write
// overtook is retried.
const maxStaleRetries = 10

// handle calls the route. A server cut off from a shared store answers
// nothing from memory (it may be stale); a write that another server's
// write overtook runs again once this server has caught up.
func (s *Server) handle(rt *route, req *request) (any, error) {
	if rt.auth != authNone && !rt.unhealthyOK {
		if err := s.state.Healthy(); err != nil {
			return nil, err
		}
	}
	for attempt := 0; ; attempt++ {
		v, err := rt.handle(req)
		if !errors.Is(err, state.ErrStale) || attempt == maxStaleRetries {
			return v, err
		}
		// A random pause, growing with the attempts, lets one of the
		// servers competing for the next index win.
		time.Sleep(time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 6))))
		if err := s.state.CatchUp(req.Context()); err != nil {
			return nil, err
		}
	}
}

// maxRef bounds a path reference (a name or id).
const maxRef = 256

// authenticate resolves the caller's bearer secret. Failed attempts are
// logged and limited per client address.
func (s *Server) authenticate(req *request) error {
	ip := remoteIP(req.Request)
	if wait := s.authFails.blocked(ip); wait > 0 {
		return tooMany(wait, "too many failed authentications from this address; retry later")
	}
	req.who = s.state.Authenticate(bearer(req.Request))
	if req.who != nil {
		return nil
	}
	s.metrics.authFailures.Inc()
	if s.authFails.failed(ip) {
		s.log.Warn("failed authentications: limit reached, refusing the address for a while", "remote", ip, "path", req.URL.Path)
	} else {
		s.log.Info("authentication failed", "remote", ip, "path", req.URL.Path, "token_given", bearer(req.Request) != "")
	}
	return &apiError{status: http.StatusUnauthorized, message: "missing or invalid token"}
}

// checkOrigin refuses state-changing calls from a browser page of another origin.
func checkOrigin(r *http.Request) error {
	o := r.Header.Get("Origin")
	if o == "" {
		return nil
	}
	u, err := url.Parse(o)
	if err != nil || !strings.EqualFold(u.Host, r.Host) {
		return &apiError{status: http.StatusForbidden, message: "cross-origin request refused"}
	}
	return nil
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// readBody reads a JSON body, enforcing its size and content type.
func (req *request) readBody(limit int64) error {
	if req.Body == nil || req.Method == http.MethodGet || req.Method == http.MethodDelete {
		return nil
	}
	// A trickled body must not hold the handler: bound its reading (the
	// server sets no ReadTimeout, which would also end blocking queries).
	// The deadline stays when it struck, so that the server closes the
	// connection rather than wait for the rest of the body.
	var rc *http.ResponseController
	if req.w != nil {
		rc = http.NewResponseController(req.w)
		if rc.SetReadDeadline(time.Now().Add(bodyTimeout)) != nil {
			rc = nil
		}
	}
	b, err := io.ReadAll(http.MaxBytesReader(nil, req.Body, limit))
	var tooBig *http.MaxBytesError
	var ne net.Error
	switch {
	case errors.As(err, &tooBig):
		return &apiError{status: http.StatusRequestEntityTooLarge, message: fmt.Sprintf("request body is larger than %d bytes", limit)}
	case errors.As(err, &ne) && ne.Timeout():
		req.w.Header().Set("Connection", "close")
		return &apiError{status: http.StatusRequestTimeout, message: fmt.Sprintf("request body not received within %s", bodyTimeout)}
	case rc != nil:
		rc.SetReadDeadline(time.Time{})
	}
	if err != nil {
		return badRequest("body", "reading: %v", err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
	if mt != "application/json" {
		return &apiError{status: http.StatusUnsupportedMediaType, message: "Content-Type must be application/json"}
	}
	req.body = b
	return nil
}

// decode decodes the JSON body into v, rejecting unknown fields and trailing
// data; an empty body is an error when required.
func (req *request) decode(v any, required bool) error {
	if req.body == nil {
		if required {
			return badRequest("body", "a JSON object is required")
		}
		return nil
	}
	if bytes.HasPrefix(bytes.TrimSpace(req.body), []byte("null")) {
		return badRequest("body", "a JSON object is required")
	}
	dec := json.NewDecoder(bytes.NewReader(req.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if err := dec.Decode(&struct{}{}); err != io.EOF {
		return badRequest("body", "trailing data after the JSON object")
	}
	return nil
}

// decodeError turns a JSON error into a 400 naming the field.
func decodeError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "body"
		}
		return badRequest(field, "must be %s, not %s", jsonType(te.Type.Kind().String()), te.Value)
	case errors.As(err, &se):
		return badRequest("body", "malformed JSON at offset %d", se.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		if f == "" {
			return badRequest("body", "a field without a name")
		}
		return badRequest(f, "unknown field")
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return badRequest("body", "truncated JSON")
	}
	return badRequest("body", "%v", err)
}

func jsonType(kind string) string {
	switch kind {
	case "int", "int64", "uint64", "float64":
		return "a number"
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice":
		return "an array"
	}
	return "an object"
}

// edit returns a function that merges the body into an object (PATCH).
func (req *request) edit() (func(v any) error, error) {
	if req.body == nil {
		return nil, badRequest("body", "a JSON object with the fields to change is required")
	}
	return func(v any) error { return req.decode(v, true) }, nil
}

// query helpers

func (req *request) filter() (state.Filter, error) {
	q := req.URL.Query()
	f := state.Filter{Query: q.Get("q"), Network: q.Get("network"), Host: q.Get("host"), Interface: q.Get("interface"), Status: q.Get("status")}
	var err error
	if f.Limit, err = intParam(q, "limit", 0, state.MaxLimit); err != nil {
		return f, err
	}
	if f.Offset, err = intParam(q, "offset", 0, 1<<31-1); err != nil {
		return f, err
	}
	if l := q.Get("label"); l != "" {
		k, v, ok := strings.Cut(l, "=")
		if !ok || k == "" {
			return f, badRequest("label", "%q is not key=value", l)
		}
		f.LabelKey, f.LabelValue = k, v
	}
	switch f.Status {
	case "", api.HostPending, api.HostReady, api.HostDown:
	default:
		return f, badRequest("status", "%q is not pending, ready or down", f.Status)
	}
	return f, nil
}

func intParam(q url.Values, name string, lo, hi int) (int, error) {
	s := q.Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		return 0, badRequest(name, "%q is not a whole number from %d to %d", s, lo, hi)
	}
	return n, nil
}

// blocking parses ?index=&wait= of a blocking query and, when it will
// wait, takes one of the caller's blocking-query slots until it returns.
func (req *request) blocking(defaultWait time.Duration) (uint64, time.Duration, error) {
	index, wait, err := req.blockingParams(defaultWait)
	if err != nil || wait == 0 {
		return index, wait, err
	}
	key, limit := "h:"+req.who.HostID, maxPollsPerHost
	if req.who.Token != nil {
		key, limit = "t:"+req.who.Token.ID, maxPollsPerToken
	}
	if !req.s.polls.acquire(key, limit) {
		return 0, 0, tooMany(time.Second, fmt.Sprintf("this credential already holds %d blocking queries", limit))
	}
	kind := blockingAgentConfig
	if req.who.Token != nil {
		kind = blockingEvents
	}
	g := req.s.metrics.blocking.WithLabelValues(kind)
	g.Inc()
	req.done = append(req.done, func() { req.s.polls.release(key); g.Dec() })
	return index, wait, nil
}

func (req *request) blockingParams(defaultWait time.Duration) (uint64, time.Duration, error) {
	q := req.URL.Query()
	var index uint64
	if s := q.Get("index"); s != "" {
		var err error
		if index, err = strconv.ParseUint(s, 10, 64); err != nil {
			return 0, 0, badRequest("index", "%q is not a non-negative whole number", s)
		}
	}
	wait := defaultWait
	if s := q.Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 || d > maxWait {
			return 0, 0, badRequest("wait", "%q is not a duration from 0s to %s", s, maxWait)
		}
		wait = d
	}
	if index == 0 {
		wait = 0
	}
	return index, wait, nil
}

// boolParam parses an optional true/false query parameter.
func (req *request) boolParam(name string) (bool, error) {
	s := req.URL.Query().Get(name)
	if s == "" {
		return false, nil
	}
	v, err := strconv.ParseBool(s)
	if err != nil {
		return false, badRequest(name, "%q is not true or false", s)
	}
	return v, nil
}

// remoteIP returns the caller's IP address.
func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return ""
	}
	host, _, _ = strings.Cut(host, "%") // a zone means nothing to peers
	return host
}

// gzipMin is the smallest answer worth compressing.
const gzipMin = 4 << 10

// writeJSON writes v as JSON, gzip-compressed when it is large and the
// client accepts it (Go's HTTP client does, transparently).
func writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"message":"internal error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Add("Vary", "Accept-Encoding")
	if len(b) < gzipMin || !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		w.WriteHeader(status)
		w.Write(b)
		return
	}
	w.Header().Set("Content-Encoding", "gzip")
	w.WriteHeader(status)
	zw := gzipWriters.Get().(*gzip.Writer)
	zw.Reset(w)
	zw.Write(b)
	zw.Close()
	gzipWriters.Put(zw)
}

// gzipWriters reuses compressors: each holds about a megabyte of tables, and
// a change in a large mesh answers many blocking queries at once.
var gzipWriters = sync.Pool{New: func() any {
	zw, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
	return zw
}}

// writeError maps err to a status and a JSON body; internal errors are
// logged and never shown.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, body, retry := errorAnswer(err)
	if status == statusCanceled {
		return
	}
	if retry != "" {
		w.Header().Set("Retry-After", retry)
	}
	switch {
	case errors.Is(err, store.ErrUnavailable) && status == http.StatusServiceUnavailable:
		s.log.Warn("request failed: store unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
	case status == http.StatusInternalServerError:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, r, status, api.Error{Err: body})
}

// statusCanceled is errorAnswer's status for a request whose client went
// away: nothing is answered (nginx's 499).
const statusCanceled = 499

// errorAnswer maps err to the status, body and Retry-After answered for it.
func errorAnswer(err error) (int, api.ErrorDetail, string) {
	var ae *apiError
	var se *state.Error
	switch {
	case errors.As(err, &ae):
		return ae.status, api.ErrorDetail{Message: ae.message, Field: ae.field}, ae.retryAfter
	case errors.As(err, &se):
		body := api.ErrorDetail{Message: se.Message, Field: se.Field}
		switch {
		case errors.Is(err, state.ErrInvalid):
			return http.StatusBadRequest, body, ""
		case errors.Is(err, state.ErrNotFound):
			return http.StatusNotFound, body, ""
		case errors.Is(err, state.ErrConflict):
			return http.StatusConflict, body, ""
		case errors.Is(err, state.ErrForbidden):
			return http.StatusForbidden, body, ""
		case errors.Is(err, state.ErrStale):
			return http.StatusServiceUnavailable, body, "1"
		}
		return http.StatusInternalServerError, body, ""
	case errors.Is(err, store.ErrUnavailable):
		return http.StatusServiceUnavailable, api.ErrorDetail{Message: "this server cannot reach its state store (etcd): use another server or retry later"}, "1"
	case errors.Is(err, context.Canceled):
		return statusCanceled, api.ErrorDetail{Message: "request canceled"}, ""
	}
	return http.StatusInternalServerError, api.ErrorDetail{Message: "internal error"}, ""
}

// logRequests logs each request at debug level. Every blocking query waits
// under this frame: the log line is built in logRequest, outside it.
func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		if log.Enabled(r.Context(), slog.LevelDebug) {
			logRequest(log, r, sw.status, start)
		}
	})
}

func logRequest(log *slog.Logger, r *http.Request, status int, start time.Time) {
	log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", status, "duration", time.Since(start))
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection (body deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush lets blocking queries and streams flush through the wrapper.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

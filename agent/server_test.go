package agent

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/drago-wg/drago/server/api"
)

// fakeServer is a test double of the control plane's three agent
// endpoints, faithful to docs/api-routes.md: bearer checks, the blocking
// query on /agent/config, JSON errors. It records every request.
type fakeServer struct {
	*httptest.Server
	joinToken string

	mu           sync.Mutex
	hosts        map[string]string // credential -> host id
	state        api.DesiredState
	changed      chan struct{} // closed and replaced when state changes
	requests     []recorded
	registers    []api.RegisterRequest
	reports      []api.StatusReport
	configCalls  []configCall
	failConfig   int  // answer the next N config calls with 500
	rejectDeltas bool // answer status reports with peers_since with 409
	broken       bool // answer every config call with 500, woken ones too
	cancelled    int  // config calls whose client went away
}

type recorded struct {
	Method, Path, Query string
	Header              http.Header
	Body                []byte
}

type configCall struct {
	At    time.Time
	Index uint64
	Auth  string
}

func newFakeServer(t *testing.T) *fakeServer {
	s := &fakeServer{joinToken: "join-secret", hosts: map[string]string{}, changed: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/agent/register", s.register)
	mux.HandleFunc("GET /api/v1/agent/config", s.config)
	mux.HandleFunc("PUT /api/v1/agent/status", s.status)
	s.Server = httptest.NewServer(s.recordRequests(mux))
	t.Cleanup(s.Close)
	return s
}

func (s *fakeServer) recordRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		s.mu.Lock()
		s.requests = append(s.requests, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
		s.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(api.Error{Err: api.ErrorDetail{Message: msg}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func bearer(r *http.Request) string {
	const p = "Bearer "
	if h := r.Header.Get("Authorization"); len(h) > len(p) && h[:len(p)] == p {
		return h[len(p):]
	}
	return ""
}

// host returns the host id of the request's credential, or "".
func (s *fakeServer) host(r *http.Request) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hosts[bearer(r)]
}

func (s *fakeServer) register(w http.ResponseWriter, r *http.Request) {
	if bearer(r) != s.joinToken {
		writeError(w, http.StatusUnauthorized, "invalid join token")
		return
	}
	var req api.RegisterRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, "bad body")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.registers = append(s.registers, req)
	id := "host-" + strconv.Itoa(len(s.registers))
	cred := "cred-" + strconv.Itoa(len(s.registers))
	s.hosts[cred] = id
	s.state.HostID = id
	writeJSON(w, api.RegisterResponse{HostID: id, Credential: cred})
}

func (s *fakeServer) config(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	index, _ := strconv.ParseUint(r.URL.Query().Get("index"), 10, 64)
	s.configCalls = append(s.configCalls, configCall{time.Now(), index, bearer(r)})
	fail := s.failConfig > 0
	if fail {
		s.failConfig--
	}
	s.mu.Unlock()
	if fail {
		writeError(w, http.StatusInternalServerError, "internal error")
		return
	}
	if s.host(r) == "" {
		writeError(w, http.StatusUnauthorized, "invalid credential")
		return
	}
	wait, err := time.ParseDuration(r.URL.Query().Get("wait"))
	if err != nil || wait <= 0 {
		wait = 5 * time.Minute
	}
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	for {
		s.mu.Lock()
		st, ch, broken := s.state, s.changed, s.broken
		s.mu.Unlock()
		switch {
		case broken:
			writeError(w, http.StatusInternalServerError, "internal error")
			return
		case s.host(r) == "":
			writeError(w, http.StatusUnauthorized, "invalid credential")
			return
		}
		if st.Index > index {
			writeJSON(w, st)
			return
		}
		select {
		case <-ch:
		case <-timeout.C:
			writeJSON(w, st)
			return
		case <-r.Context().Done():
			s.mu.Lock()
			s.cancelled++
			s.mu.Unlock()
			return
		}
	}
}

func (s *fakeServer) status(w http.ResponseWriter, r *http.Request) {
	if s.host(r) == "" {
		writeError(w, http.StatusUnauthorized, "invalid credential")
		return
	}
	var rep api.StatusReport
	if err := json.NewDecoder(r.Body).Decode(&rep); err != nil {
		writeError(w, http.StatusBadRequest, "bad body")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rejectDeltas && rep.PeersSince != 0 {
		writeError(w, http.StatusConflict, "peers_since: the server holds no such report")
		return
	}
	s.reports = append(s.reports, rep)
	w.WriteHeader(http.StatusNoContent)
}

// setState replaces the desired state (its HostID is kept) and wakes the
// blocking queries.
func (s *fakeServer) setState(ds *api.DesiredState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	host := s.state.HostID
	s.state = *ds
	s.state.HostID = host
	s.wake()
}

// forgetHosts revokes every host credential, as deleting the host does,
// and wakes the blocking queries.
func (s *fakeServer) forgetHosts() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hosts = map[string]string{}
	s.wake()
}

// breakConfig makes every config call fail with 500 from now on.
func (s *fakeServer) breakConfig() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.broken = true
	s.wake()
}

// restart ends breakConfig, as a restarted server answers again, without
// the reports a real server keeps in memory only: reports with peers_since
// get 409 from now on.
func (s *fakeServer) restart() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.broken, s.rejectDeltas = false, true
	s.wake()
}

// wake releases the blocking queries; s.mu is held.
func (s *fakeServer) wake() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *fakeServer) snapshot() (registers []api.RegisterRequest, reports []api.StatusReport, calls []configCall, reqs []recorded) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]api.RegisterRequest(nil), s.registers...), append([]api.StatusReport(nil), s.reports...),
		append([]configCall(nil), s.configCalls...), append([]recorded(nil), s.requests...)
}

// lastReport returns the newest status report, or nil.
func (s *fakeServer) lastReport() *api.StatusReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.reports) == 0 {
		return nil
	}
	r := s.reports[len(s.reports)-1]
	return &r
}

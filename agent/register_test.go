package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drago-wg/drago/platform/platformtest"
	"github.com/drago-wg/drago/server"
	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/servertest"
)

func TestRegisterRequestIDFile(t *testing.T) {
	root := t.TempDir()
	d, err := openDataDir(root)
	if err != nil {
		t.Fatal(err)
	}
	id, err := d.registerRequestID()
	if err != nil {
		t.Fatal(err)
	}
	if len(id) != 32 || strings.Trim(id, "0123456789abcdef") != "" {
		t.Errorf("request id = %q, want 32 hex characters", id)
	}
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(d.file(registerFile))
		if err != nil || fi.Mode().Perm() != secretFileMode {
			t.Errorf("request id file: %v, %v; want mode 0600", fi, err)
		}
	}
	d2, err := openDataDir(root) // as after a restart
	if err != nil {
		t.Fatal(err)
	}
	if again, err := d2.registerRequestID(); again != id || err != nil {
		t.Errorf("request id after reopening = %q, %v; want %q", again, err, id)
	}
	must(t, d2.removeRegisterRequest())
	must(t, d2.removeRegisterRequest()) // already gone is fine
	if fresh, err := d2.registerRequestID(); err != nil || fresh == id {
		t.Errorf("request id after removal = %q, %v; want a new one", fresh, err)
	}
	must(t, os.WriteFile(d.file(registerFile), []byte("not-an-id\n"), 0o600))
	if _, err := d.registerRequestID(); err == nil || !strings.Contains(err.Error(), registerFile) {
		t.Errorf("damaged file: %v, want an error naming it", err)
	}
}

// dropProxy forwards to a real server but, while drop says so, throws away
// the answer to a registration the server has committed and closes the
// connection, as a client timeout does.
type dropProxy struct {
	*httptest.Server
	mu        sync.Mutex
	drop      int // answers still to drop; -1 drops all
	registers []api.RegisterRequest
	dropped   int
}

func newDropProxy(t *testing.T, target string, drop int) *dropProxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = log.New(io.Discard, "", 0) // canceled long polls
	p := &dropProxy{drop: drop}
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1/agent/register" {
			rp.ServeHTTP(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		var req api.RegisterRequest
		json.Unmarshal(body, &req)
		p.mu.Lock()
		p.registers = append(p.registers, req)
		drop := p.drop != 0
		if p.drop > 0 {
			p.drop--
		}
		p.mu.Unlock()
		if !drop {
			rp.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		rp.ServeHTTP(rec, r)
		p.mu.Lock()
		if rec.Code == http.StatusCreated {
			p.dropped++
		}
		p.mu.Unlock()
		panic(http.ErrAbortHandler) // the server committed; the agent never hears of it
	}))
	t.Cleanup(p.Close)
	return p
}

func (p *dropProxy) setDrop(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.drop = n
}

func (p *dropProxy) counts() (registers []api.RegisterRequest, dropped int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]api.RegisterRequest(nil), p.registers...), p.dropped
}

// realServer starts a Drago server with a network and returns its root
// client and a join token for the network that registers one host.
func realServer(t *testing.T) (*api.Client, *api.JoinToken, string) {
	t.Helper()
	addr, root := servertest.Start(t, server.Config{})
	ctx := context.Background()
	c, err := api.NewClient(api.ClientConfig{Address: addr, Token: root})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateNetwork(ctx, &api.Network{Name: "n", IPv4Range: "10.7.0.0/24"}); err != nil {
		t.Fatal(err)
	}
	jt, err := c.CreateJoinToken(ctx, &api.JoinToken{Name: "j", MaxUses: 1, Networks: []string{"n"}})
	if err != nil {
		t.Fatal(err)
	}
	return c, jt, addr
}

func realConfig(p *dropProxy, jt *api.JoinToken, dir string) Config {
	return Config{
		Server:            p.URL,
		JoinToken:         jt.Secret,
		DataDir:           dir,
		Name:              "host-a",
		DriftInterval:     time.Hour,
		HeartbeatInterval: time.Hour,
		Wait:              2 * time.Second,
		BackoffBase:       10 * time.Millisecond,
		BackoffMax:        50 * time.Millisecond,
	}
}

// checkJoined waits until the server sees the agent's status report, sent
// with the credential in the agent's identity, and checks that the host
// exists once, with one interface and one use of the join token.
func checkJoined(t *testing.T, root *api.Client, jt *api.JoinToken, dir string) *identity {
	t.Helper()
	ctx := context.Background()
	waitFor(t, "the host to report with its credential", func() bool {
		h, err := root.Host(ctx, "host-a")
		return err == nil && h.LastSeen != nil
	})
	d, err := openDataDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	id, err := d.loadIdentity()
	if err != nil || id == nil {
		t.Fatalf("identity = %v, %v", id, err)
	}
	h, err := root.Host(ctx, "host-a")
	if err != nil || h.ID != id.HostID {
		t.Fatalf("host = %+v, %v; want id %s", h, err, id.HostID)
	}
	hc, err := api.NewClient(api.ClientConfig{Address: root.Address(), Token: id.Credential})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hc.DesiredState(ctx, 0, 0); err != nil {
		t.Errorf("the saved credential: %v", err)
	}
	if hosts, err := root.Hosts(ctx, api.ListOptions{}); err != nil || hosts.Total != 1 {
		t.Errorf("hosts = %+v, %v; want one", hosts, err)
	}
	if ifs, err := root.Interfaces(ctx, api.ListOptions{Host: id.HostID}); err != nil || ifs.Total != 1 {
		t.Errorf("interfaces = %+v, %v; want one", ifs, err)
	}
	if j, err := root.JoinToken(ctx, jt.ID); err != nil || j.Uses != 1 {
		t.Errorf("join token = %+v, %v; want 1 use", j, err)
	}
	if _, err := os.Stat(filepath.Join(dir, agentDirName, registerFile)); !os.IsNotExist(err) {
		t.Errorf("register request file after registering: %v, want it removed", err)
	}
	return id
}

// sameRequestID checks that every registration carried one request id and
// returns it.
func sameRequestID(t *testing.T, registers []api.RegisterRequest) string {
	t.Helper()
	if len(registers) < 2 {
		t.Fatalf("register calls = %d, want a retry", len(registers))
	}
	for _, r := range registers {
		if r.RequestID == "" || r.RequestID != registers[0].RequestID {
			t.Fatalf("request ids %q and %q, want one non-empty id", registers[0].RequestID, r.RequestID)
		}
	}
	return registers[0].RequestID
}

// TestAgentRegisterRetryAfterLostAnswer: the server commits the first
// registration but its answer is lost; the retry gets the same host with a
// working credential instead of "host name taken" forever.
func TestAgentRegisterRetryAfterLostAnswer(t *testing.T) {
	root, jt, addr := realServer(t)
	p := newDropProxy(t, addr, 1)
	dir := t.TempDir()
	startAgent(t, realConfig(p, jt, dir), platformtest.NewRecorder(), nil)
	checkJoined(t, root, jt, dir)
	registers, dropped := p.counts()
	if dropped != 1 {
		t.Errorf("dropped answers to committed registrations = %d, want 1", dropped)
	}
	sameRequestID(t, registers)
}

// TestAgentRegisterRequestIDSurvivesRestart: an agent stopped after a
// registration the server committed, but before it got the answer, retries
// with the same request id when it starts again.
func TestAgentRegisterRequestIDSurvivesRestart(t *testing.T) {
	root, jt, addr := realServer(t)
	p := newDropProxy(t, addr, -1)
	dir := t.TempDir()
	a := startAgent(t, realConfig(p, jt, dir), platformtest.NewRecorder(), nil)
	waitFor(t, "a committed registration", func() bool { _, n := p.counts(); return n >= 1 })
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	saved, err := os.ReadFile(filepath.Join(dir, agentDirName, registerFile))
	if err != nil {
		t.Fatal(err)
	}
	before, _ := p.counts()

	p.setDrop(0)
	startAgent(t, realConfig(p, jt, dir), platformtest.NewRecorder(), nil)
	checkJoined(t, root, jt, dir)
	registers, _ := p.counts()
	if len(registers) <= len(before) {
		t.Fatal("the restarted agent did not register")
	}
	if id := sameRequestID(t, registers); id != strings.TrimSpace(string(saved)) {
		t.Errorf("request id %q, want the saved %q", id, saved)
	}
}

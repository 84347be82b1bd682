package server

// Regression tests for the access-control holes found when the API was
// attacked (issue 13), one or more per hole.

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/drago-wg/drago/server/api"
)

// token creates a management token with policies and returns its client.
func (ts *testServer) token(name string, pols ...api.Policy) (*api.Client, *api.Token) {
	ts.t.Helper()
	tok := must[*api.Token](ts.t)(ts.rootClient().CreateToken(context.Background(), &api.Token{Name: name, Policies: pols}))
	return ts.client(tok.Secret), tok
}

func twoNetworks(t *testing.T, ts *testServer) {
	c, ctx := ts.rootClient(), context.Background()
	must[*api.Network](t)(c.CreateNetwork(ctx, &api.Network{Name: "a", IPv4Range: "10.1.0.0/24", Topology: api.TopologyMesh}))
	must[*api.Network](t)(c.CreateNetwork(ctx, &api.Network{Name: "b", IPv4Range: "10.2.0.0/24", Topology: api.TopologyMesh}))
}

// Hole 1: a tokens:write token scoped to network a created a join token for
// network b and registered a host there.
func TestScopedTokenCannotMakeJoinTokensElsewhere(t *testing.T) {
	ts := startServer(t, "")
	twoNetworks(t, ts)
	ctx := context.Background()
	admin, _ := ts.token("admin-a",
		api.Policy{Resource: "tokens", Access: "write", Networks: []string{"a"}},
		api.Policy{Resource: "hosts", Access: "write", Networks: []string{"a"}},
		api.Policy{Resource: "interfaces", Access: "write", Networks: []string{"a"}})
	tokensOnly, _ := ts.token("tokens-a", api.Policy{Resource: "tokens", Access: "write", Networks: []string{"a"}})
	before := ts.srv.State().Index()
	for _, tc := range []struct {
		name string
		c    *api.Client
		j    api.JoinToken
	}{
		{"other network", admin, api.JoinToken{Networks: []string{"b"}, MaxUses: 1}},
		{"both networks", admin, api.JoinToken{Networks: []string{"a", "b"}, MaxUses: 1}},
		{"no network (hosts outside any)", admin, api.JoinToken{MaxUses: 1}},
		{"tokens grant alone", tokensOnly, api.JoinToken{Networks: []string{"a"}, MaxUses: 1}},
	} {
		if _, err := tc.c.CreateJoinToken(ctx, &tc.j); api.StatusOf(err) != http.StatusForbidden {
			t.Errorf("%s: %v, want 403", tc.name, err)
		}
	}
	if ts.srv.State().Index() != before {
		t.Fatal("a refused join token changed the state")
	}
	j := must[*api.JoinToken](t)(admin.CreateJoinToken(ctx, &api.JoinToken{Networks: []string{"a"}, MaxUses: 1}))
	reg := must[*api.RegisterResponse](t)(ts.client(j.Secret).Register(ctx, &api.RegisterRequest{Name: "h"}))
	ifs := must[*api.List[api.Interface]](t)(ts.rootClient().Interfaces(ctx, api.ListOptions{Host: reg.HostID}))
	if len(ifs.Items) != 1 || ifs.Items[0].NetworkID != j.Networks[0] {
		t.Fatalf("registered host's interfaces: %+v", ifs.Items)
	}
}

// Hole 2: any tokens:write token deleted or overwrote the root token.
func TestTokensCannotTouchStrongerTokens(t *testing.T) {
	ts := startServer(t, "")
	twoNetworks(t, ts)
	ctx := context.Background()
	root := must[*api.Token](t)(ts.rootClient().Token(ctx, "self"))
	tw, self := ts.token("tw", api.Policy{Resource: "tokens", Access: "write"})
	_, strong := ts.token("strong", api.Policy{Resource: "networks", Access: "write"})
	_, weak := ts.token("weak", api.Policy{Resource: "tokens", Access: "read", Networks: []string{"a"}})
	before := ts.srv.State().Index()
	for _, tc := range []struct {
		name   string
		id     string
		status int
	}{{"root", root.ID, 403}, {"stronger", strong.ID, 403}} {
		if err := tw.DeleteToken(ctx, tc.id); api.StatusOf(err) != tc.status {
			t.Errorf("delete %s: %v, want %d", tc.name, err, tc.status)
		}
	}
	status, body := ts.raw("POST", "/tokens", self.Secret, "application/json",
		`{"id":"`+root.ID+`","name":"root","policies":[{"resource":"tokens","access":"read"}]}`)
	if status != http.StatusBadRequest || !strings.Contains(body, `"field":"id"`) {
		t.Errorf("create over the root token's id: %d %s", status, body)
	}
	if ts.srv.State().Index() != before {
		t.Fatal("a refused token call changed the state")
	}
	if _, err := ts.rootClient().Token(ctx, "self"); err != nil {
		t.Fatalf("root token after the attempts: %v", err)
	}
	if err := tw.DeleteToken(ctx, weak.ID); err != nil {
		t.Errorf("delete a weaker token: %v", err)
	}
	if err := ts.rootClient().DeleteToken(ctx, strong.ID); err != nil {
		t.Errorf("root deletes any token: %v", err)
	}
}

// Hole 3: a host reported a key another interface of its network used;
// the peers' agents then refused the network's whole desired state.
func TestPublicKeysUniquePerNetwork(t *testing.T) {
	ts := startServer(t, "")
	twoNetworks(t, ts)
	ctx := context.Background()
	h1, _ := ts.agentHost("h1", "a")
	ts.agentHost("h2", "a")
	hb, _ := ts.agentHost("hb", "b")
	ds := must[*api.DesiredState](t)(h1.DesiredState(ctx, 0, 0))
	victim := ds.Interfaces[0].Peers[0].PublicKey
	own := ds.Interfaces[0]
	before := ts.srv.State().Index()
	for _, tc := range []struct {
		name string
		is   api.InterfaceStatus
	}{
		{"current key of a peer", api.InterfaceStatus{ID: own.ID, PublicKey: victim}},
		{"next key of a peer", api.InterfaceStatus{ID: own.ID, PublicKey: own.PublicKey, NextPublicKey: victim}},
	} {
		err := h1.ReportStatus(ctx, &api.StatusReport{Interfaces: []api.InterfaceStatus{tc.is}})
		if api.StatusOf(err) != http.StatusConflict {
			t.Errorf("%s: %v, want 409", tc.name, err)
		}
	}
	if _, err := ts.rootClient().CreateDevice(ctx, &api.DeviceRequest{Network: "a", Name: "phone", PublicKey: victim}); api.StatusOf(err) != http.StatusConflict {
		t.Errorf("device with a peer's key: %v, want 409", err)
	}
	if ts.srv.State().Index() != before {
		t.Fatal("a refused key changed the state")
	}
	// Another network may hold the same key (keys are unique per network).
	dsb := must[*api.DesiredState](t)(hb.DesiredState(ctx, 0, 0))
	if err := hb.ReportStatus(ctx, &api.StatusReport{Interfaces: []api.InterfaceStatus{{ID: dsb.Interfaces[0].ID, PublicKey: victim}}}); err != nil {
		t.Errorf("same key in another network: %v", err)
	}
}

// Hole 4: network scope was ignored on /hosts* and /events.
func TestScopedTokensSeeOnlyTheirNetworks(t *testing.T) {
	ts := startServer(t, "")
	twoNetworks(t, ts)
	ctx := context.Background()
	ts.agentHost("ha", "a")
	_, hb := ts.agentHost("hb", "b")
	must[*api.Interface](t)(ts.rootClient().CreateDevice(ctx, &api.DeviceRequest{Network: "a", Name: "phone-a", PublicKey: testKey("phone-a")}))
	other, _ := ts.token("other", api.Policy{Resource: "*", Access: "write", Networks: []string{"b"}})
	otherSecret := must[*api.Token](t)(ts.rootClient().CreateToken(ctx, &api.Token{Name: "o2", Policies: []api.Policy{{Resource: "*", Access: "read", Networks: []string{"b"}}}})).Secret
	aID := must[*api.Network](t)(ts.rootClient().Network(ctx, "a")).ID
	for _, path := range []string{"/hosts", "/interfaces", "/devices", "/connections", "/networks", "/tokens", "/join-tokens", "/events?index=0"} {
		status, body := ts.raw("GET", path, otherSecret, "", "")
		if status != 200 {
			t.Fatalf("GET %s: %d %s", path, status, body)
		}
		for _, leak := range []string{`"ha"`, "phone-a", aID, `"j-ha"`} {
			if strings.Contains(body, leak) {
				t.Errorf("GET %s as a token of network b shows %s: %s", path, leak, body)
			}
		}
	}
	hosts := must[*api.List[api.Host]](t)(other.Hosts(ctx, api.ListOptions{}))
	if len(hosts.Items) != 1 || hosts.Items[0].ID != hb {
		t.Errorf("hosts seen by a token of b: %+v", hosts.Items)
	}
	if o := must[*api.Overview](t)(other.Overview(ctx)); o.Networks != 1 || o.Hosts != 1 || o.Devices != 0 {
		t.Errorf("overview seen by a token of b: %+v", o)
	}
	before := ts.srv.State().Index()
	for _, call := range []func() error{
		func() error { _, err := other.Host(ctx, "ha"); return err },
		func() error { _, err := other.HostStatus(ctx, "ha"); return err },
		func() error {
			_, err := other.UpdateHost(ctx, "ha", map[string]any{"labels": map[string]any{"x": "1"}})
			return err
		},
		func() error { _, err := other.RotateKeys(ctx, "ha"); return err },
		func() error { return other.DeleteHost(ctx, "ha") },
	} {
		if err := call(); api.StatusOf(err) != http.StatusNotFound {
			t.Errorf("host of network a through a token of b: %v, want 404", err)
		}
	}
	// A host in both networks: a token of b sees it but may not change it.
	j := must[*api.JoinToken](t)(ts.rootClient().CreateJoinToken(ctx, &api.JoinToken{Networks: []string{"a", "b"}, MaxUses: 1}))
	must[*api.RegisterResponse](t)(ts.client(j.Secret).Register(ctx, &api.RegisterRequest{Name: "hab"}))
	before = ts.srv.State().Index()
	if _, err := other.Host(ctx, "hab"); err != nil {
		t.Errorf("host in a and b read by a token of b: %v", err)
	}
	if err := other.DeleteHost(ctx, "hab"); api.StatusOf(err) != http.StatusForbidden {
		t.Errorf("host in a and b deleted by a token of b: %v, want 403", err)
	}
	if _, err := other.CreateInterface(ctx, &api.Interface{HostID: "ha", NetworkID: "b"}); api.StatusOf(err) != http.StatusBadRequest {
		t.Errorf("host of a pulled into b by a token of b: %v, want 400", err)
	}
	if ts.srv.State().Index() != before {
		t.Fatal("a refused host call changed the state")
	}
}

// Hole 6: slow bodies held handlers for minutes.
func TestSlowBodyCutOff(t *testing.T) {
	old := bodyTimeout
	bodyTimeout = 300 * time.Millisecond
	defer func() { bodyTimeout = old }()
	ts := startServer(t, "")
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /api/v1/networks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"name\":", ts.root)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer to a trickled body: %v", err)
	}
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Fatalf("trickled body: %d, want 408", resp.StatusCode)
	}
}

// Hole 6: blocking queries per credential are capped.
func TestBlockingQueriesCappedPerCredential(t *testing.T) {
	ts := startServer(t, "")
	twoNetworks(t, ts)
	hc, _ := ts.agentHost("h", "a")
	ctx, cancel := context.WithCancel(context.Background())
	ds := must[*api.DesiredState](t)(hc.DesiredState(ctx, 0, 0))
	var wg sync.WaitGroup
	for range maxPollsPerHost {
		wg.Add(1)
		go func() { defer wg.Done(); hc.DesiredState(ctx, ds.Index, time.Minute) }()
	}
	waitUntil(t, "the queries to wait", func() bool {
		ts.srv.polls.mu.Lock()
		defer ts.srv.polls.mu.Unlock()
		return len(ts.srv.polls.n) == 1 && slices.Collect(maps.Values(ts.srv.polls.n))[0] == maxPollsPerHost
	})
	deadline := time.Now().Add(5 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if _, err = hc.DesiredState(context.Background(), ds.Index, 50*time.Millisecond); api.StatusOf(err) == http.StatusTooManyRequests {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if api.StatusOf(err) != http.StatusTooManyRequests {
		t.Errorf("blocking query over the cap: %v, want 429", err)
	}
	cancel()
	wg.Wait()
	// Slots come back when the queries end.
	waitUntil(t, "a slot freed", func() bool {
		_, err := hc.DesiredState(context.Background(), ds.Index, 10*time.Millisecond)
		return err == nil
	})
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// Hole 7: terminal escapes in agent facts; agents overriding the join
// token's labels; host names squatted by join-token holders.
func TestRegistrationInput(t *testing.T) {
	ts := startServer(t, "")
	twoNetworks(t, ts)
	ctx := context.Background()
	j := must[*api.JoinToken](t)(ts.rootClient().CreateJoinToken(ctx, &api.JoinToken{Networks: []string{"a"}, MaxUses: 10, Labels: map[string]string{"role": "db"}, NamePattern: "db-*"}))
	jc := ts.client(j.Secret)
	before := ts.srv.State().Index()
	for _, tc := range []struct {
		name   string
		r      api.RegisterRequest
		status int
		field  string
	}{
		{"escape in os", api.RegisterRequest{Name: "db-1", OS: "linux\x1b]0;owned\x07"}, 400, "os"},
		{"escape in version", api.RegisterRequest{Name: "db-1", AgentVersion: "1.0\x1b[2J"}, 400, "agent_version"},
		{"label overrides the token", api.RegisterRequest{Name: "db-1", Labels: map[string]string{"role": "web"}}, 403, "labels.role"},
		{"name outside the pattern", api.RegisterRequest{Name: "web-1"}, 403, "name"},
	} {
		_, err := jc.Register(ctx, &tc.r)
		var re *api.ResponseError
		if api.StatusOf(err) != tc.status || !asResponseError(err, &re) || re.Field != tc.field {
			t.Errorf("%s: %v, want %d on %s", tc.name, err, tc.status, tc.field)
		}
	}
	if ts.srv.State().Index() != before {
		t.Fatal("a refused registration changed the state")
	}
	reg := must[*api.RegisterResponse](t)(jc.Register(ctx, &api.RegisterRequest{Name: "db-1", Labels: map[string]string{"role": "db", "rack": "3"}}))
	h := must[*api.Host](t)(ts.rootClient().Host(ctx, reg.HostID))
	if h.Labels["role"] != "db" || h.Labels["rack"] != "3" {
		t.Errorf("labels %v", h.Labels)
	}
	hc := ts.client(reg.Credential)
	if err := hc.ReportStatus(ctx, &api.StatusReport{Backend: "wg\x1b[31m"}); api.StatusOf(err) != 400 {
		t.Errorf("escape in a status report's backend: %v, want 400", err)
	}
}

func asResponseError(err error, re **api.ResponseError) bool {
	e, ok := err.(*api.ResponseError)
	*re = e
	return ok
}

// Hole 8: failed authentication is limited per address and logged.
func TestFailedAuthenticationLimited(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	srv, root, err := New(Config{Addr: "127.0.0.1:0", DataDir: t.TempDir()}, slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	now := time.Now()
	srv.authFails.now = func() time.Time { return now }
	call := func(secret string) *http.Response {
		req, _ := http.NewRequest("GET", "/api/v1/networks", nil)
		req.RemoteAddr = "198.51.100.9:4000"
		req.Header.Set("Authorization", "Bearer "+secret)
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, req)
		return w.Result()
	}
	for k := range authBurst {
		if r := call("dgm_guess_" + strconv.Itoa(k)); r.StatusCode != 401 {
			t.Fatalf("failure %d: %d", k, r.StatusCode)
		}
	}
	r := call(root)
	if r.StatusCode != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("after %d failures, even the right token: %d (Retry-After %q), want 429", authBurst, r.StatusCode, r.Header.Get("Retry-After"))
	}
	now = now.Add(authRefill)
	if r := call(root); r.StatusCode != 200 {
		t.Fatalf("after the refill: %d", r.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "authentication failed") || !strings.Contains(logs.String(), "198.51.100.9") || !strings.Contains(logs.String(), "limit reached") {
		t.Errorf("failed authentications not logged:\n%s", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Hole 8: the rest of the small ones.
func TestSmallHoles(t *testing.T) {
	t.Run("events index at the top of uint64", func(t *testing.T) {
		ts := startServer(t, "")
		start := time.Now()
		status, body := ts.raw("GET", "/events?index=18446744073709551615&wait=1m", ts.root, "", "")
		if status != 200 || time.Since(start) > 5*time.Second || !strings.Contains(body, `"events"`) {
			t.Fatalf("%d after %s: %s", status, time.Since(start), body)
		}
	})
	t.Run("scoped token reads itself", func(t *testing.T) {
		ts := startServer(t, "")
		twoNetworks(t, ts)
		c, tok := ts.token("scoped", api.Policy{Resource: "networks", Access: "read", Networks: []string{"a"}})
		self, err := c.Token(context.Background(), "self")
		if err != nil || self.ID != tok.ID {
			t.Fatalf("self: %+v %v", self, err)
		}
	})
	t.Run("existing data dir made owner-only", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		srv, _, err := New(Config{DataDir: dir}, discardLogger())
		if err != nil {
			t.Fatal(err)
		}
		srv.Close()
		if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
			t.Fatalf("data dir mode %v, want 0700", fi.Mode().Perm())
		}
	})
	t.Run("plain HTTP off loopback warns", func(t *testing.T) {
		var logs bytes.Buffer
		var mu sync.Mutex
		srv, _, err := New(Config{Addr: "0.0.0.0:0", DataDir: t.TempDir()}, slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil)))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- srv.Serve(ctx) }()
		waitUntil(t, "the serving log line", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return strings.Contains(logs.String(), "serving")
		})
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		if !strings.Contains(logs.String(), "plain HTTP on a non-loopback address") {
			t.Fatalf("no warning:\n%s", logs.String())
		}
	})
	t.Run("join token without limits expires in a day", func(t *testing.T) {
		ts := startServer(t, "")
		j := must[*api.JoinToken](t)(ts.rootClient().CreateJoinToken(context.Background(), &api.JoinToken{}))
		if j.ExpiresAt == nil || time.Until(*j.ExpiresAt) > 24*time.Hour || time.Until(*j.ExpiresAt) < 23*time.Hour {
			t.Fatalf("expires_at %v, want in 24h", j.ExpiresAt)
		}
	})
}

// TestFuzzFindings: what the fuzz targets found, each refused or fixed.
func TestFuzzFindings(t *testing.T) {
	ts := startServer(t, "")
	c, ctx := ts.rootClient(), context.Background()
	must[*api.Network](t)(c.CreateNetwork(ctx, &api.Network{Name: "net", IPv4Range: "10.1.0.0/24", Topology: api.TopologyMesh}))
	_, hid := ts.agentHost("h1", "net")
	ts.agentHost("h2", "net")
	j := must[*api.JoinToken](t)(c.CreateJoinToken(ctx, &api.JoinToken{Networks: []string{"net"}, MaxUses: 1}))
	h3 := must[*api.RegisterResponse](t)(ts.client(j.Secret).Register(ctx, &api.RegisterRequest{Name: "h3"}))
	ifs := must[*api.List[api.Interface]](t)(c.Interfaces(ctx, api.ListOptions{Host: hid}))
	own := ifs.Items[0]
	key := testKey("laptop")
	const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	alias := key[:42] + string(b64[strings.IndexByte(b64, key[42])^1]) + "=" // same 32 bytes, other padding bits
	js := "application/json"
	for _, tc := range []struct {
		name, secret, method, path, body, field string
	}{
		{"zone injection in advertise_address", ts.root, "PATCH", "/hosts/h1", `{"advertise_address":"fe80::1%eth0\nPostUp = touch /tmp/pwned"}`, "advertise_address"},
		{"zone in a reported address", "", "PUT", "/agent/status", `{"advertise_address":"[fe80::1%x]:51820","interfaces":[]}`, "advertise_address"},
		{"zone in an endpoint", ts.root, "POST", "/connections", `{"network_id":"net","a":{"interface_id":"` + own.ID + `","endpoint":"[fe80::1%eth0]:51820"},"b":{"interface_id":"x"}}`, "a.endpoint"},
		{"zone in dns", ts.root, "PATCH", "/networks/net", `{"dns":["fe80::1%eth0"]}`, "dns[0]"},
		{"key alias", ts.root, "POST", "/devices", `{"network":"net","name":"laptop2","public_key":"` + alias + `"}`, "public_key"},
		{"data after the object", ts.root, "POST", "/networks", `{"name":"x","ipv4_range":"10.2.0.0/24"} }`, "body"},
		{"field without a name", ts.root, "POST", "/networks", `{"":""}`, "body"},
	} {
		secret := cmp.Or(tc.secret, h3.Credential)
		before := ts.srv.State().Index()
		status, body := ts.raw(tc.method, tc.path, secret, js, tc.body)
		if status != http.StatusBadRequest || !strings.Contains(body, `"field":"`+tc.field+`"`) {
			t.Errorf("%s: %d %s, want 400 on %s", tc.name, status, body, tc.field)
		}
		if ts.srv.State().Index() != before {
			t.Errorf("%s: refused but changed the state", tc.name)
		}
	}
	// A narrower range gives the interfaces its prefix length.
	must[*api.Network](t)(c.UpdateNetwork(ctx, "net", map[string]any{"ipv4_range": "10.1.0.0/25"}))
	for _, i := range must[*api.List[api.Interface]](t)(c.Interfaces(ctx, api.ListOptions{Network: "net"})).Items {
		if !strings.HasSuffix(i.Addresses[0], "/25") {
			t.Errorf("interface %s keeps %s in 10.1.0.0/25", i.Name, i.Addresses[0])
		}
	}
}

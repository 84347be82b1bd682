package server

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/drago-wg/drago/server/api"
)

// scrape reads url (a /metrics endpoint) with secret and returns the raw
// text and the parsed families.
func scrape(t *testing.T, url, secret string) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("parsing the scrape: %v\n%s", err, b)
	}
	return string(b), fams
}

// metricValue returns the value of the sample of name whose labels include
// labels (a counter, gauge, or a histogram's count and sum).
func metricValue(fams map[string]*dto.MetricFamily, name string, labels ...string) (value, sum float64) {
	f := fams[name]
	if f == nil {
		return 0, 0
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.Label {
				found = found || (lp.GetName() == labels[i] && lp.GetValue() == labels[i+1])
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), 0
		case m.Gauge != nil:
			return m.Gauge.GetValue(), 0
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), m.Histogram.GetSampleSum()
		}
	}
	return 0, 0
}

// TestMetricsMove checks that the scraped values follow real actions:
// registrations, a change waking agents, failed authentications and hosts
// by status after a report.
func TestMetricsMove(t *testing.T) {
	ts := startServer(t, "")
	ctx := context.Background()
	root := ts.rootClient()
	tok := must[*api.Token](t)(root.CreateToken(ctx, &api.Token{Name: "prom", Policies: []api.Policy{{Resource: "metrics", Access: "read"}}}))
	url := ts.url + "/api/v1/metrics"
	get := func() map[string]*dto.MetricFamily { _, f := scrape(t, url, tok.Secret); return f }

	must[*api.Network](t)(root.CreateNetwork(ctx, &api.Network{Name: "m", IPv4Range: "10.9.0.0/24", Topology: "mesh"}))
	before := get()

	// A registration, then its host is pending until its first report.
	jt := must[*api.JoinToken](t)(root.CreateJoinToken(ctx, &api.JoinToken{Name: "j", Networks: []string{"m"}}))
	reg := must[*api.RegisterResponse](t)(ts.client(jt.Secret).Register(ctx, &api.RegisterRequest{Name: "h0", OS: "linux", Arch: "amd64"}))
	f := get()
	if d := metric(f, "drago_registrations_total", "result", "ok") - metric(before, "drago_registrations_total", "result", "ok"); d != 1 {
		t.Errorf("registrations ok moved by %v, want 1", d)
	}
	if got := metric(f, "drago_hosts", "status", "pending"); got != 1 {
		t.Errorf("pending hosts = %v, want 1", got)
	}
	hc := ts.client(reg.Credential)
	ds := must[*api.DesiredState](t)(hc.DesiredState(ctx, 0, 0))
	rep := &api.StatusReport{Backend: "fake"}
	for _, i := range ds.Interfaces {
		rep.Interfaces = append(rep.Interfaces, api.InterfaceStatus{ID: i.ID, PublicKey: testKey("h0" + i.ID), ListenPort: i.ListenPort})
	}
	if err := hc.ReportStatus(ctx, rep); err != nil {
		t.Fatal(err)
	}
	f = get()
	if r, p := metric(f, "drago_hosts", "status", "ready"), metric(f, "drago_hosts", "status", "pending"); r != 1 || p != 0 {
		t.Errorf("after a report: ready %v pending %v, want 1 and 0", r, p)
	}

	// Two more hosts: a change to the network wakes all three agents.
	ts.agentHost("h1", "m")
	ts.agentHost("h2", "m")
	before = get()
	if _, err := root.UpdateNetwork(ctx, "m", map[string]any{"persistent_keepalive": 25}); err != nil {
		t.Fatal(err)
	}
	f = get()
	n0, s0 := metricValue(before, "drago_change_agents_woken")
	n1, s1 := metricValue(f, "drago_change_agents_woken")
	if n1-n0 != 1 || s1-s0 != 3 {
		t.Errorf("wake histogram moved by count %v sum %v, want 1 and 3", n1-n0, s1-s0)
	}
	if i0, i1 := metric(before, "drago_modify_index"), metric(f, "drago_modify_index"); i1 != i0+1 {
		t.Errorf("modify index %v -> %v, want +1", i0, i1)
	}
	if c, _ := metricValue(f, "drago_store_transaction_duration_seconds"); c == 0 {
		t.Error("no store transaction observed")
	}
	if metric(f, "drago_store_size_bytes") <= 0 {
		t.Error("no database size")
	}

	// A failed authentication and a registration refused for its token.
	if _, err := ts.client("wrong-secret").Register(ctx, &api.RegisterRequest{Name: "x", OS: "linux", Arch: "amd64"}); err == nil {
		t.Fatal("registration with a wrong token succeeded")
	}
	after := get()
	if d := metric(after, "drago_auth_failures_total") - metric(f, "drago_auth_failures_total"); d != 1 {
		t.Errorf("auth failures moved by %v, want 1", d)
	}
	if d := metric(after, "drago_registrations_total", "result", "unauthorized"); d != 1 {
		t.Errorf("unauthorized registrations = %v, want 1", d)
	}

	// A blocking query shows while it waits.
	qctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		root.Events(qctx, uint64(metric(after, "drago_modify_index")), 30*time.Second)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for metric(get(), "drago_blocking_queries", "kind", "events") != 1 {
		if time.Now().After(deadline) {
			t.Fatal("drago_blocking_queries{kind=\"events\"} never reached 1")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done

	// Requests are labelled by route template, never by raw path.
	if got := metric(after, "drago_http_requests_total", "route", "/api/v1/networks/{network}", "method", "patch", "code", "200"); got != 1 {
		t.Errorf("PATCH /networks/{network} 200 = %v, want 1", got)
	}
	for _, m := range after["drago_http_requests_total"].Metric {
		for _, lp := range m.Label {
			if lp.GetName() == "route" && strings.Contains(lp.GetValue(), reg.HostID) {
				t.Errorf("a route label holds an id: %s", lp.GetValue())
			}
		}
	}
}

func metric(fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	v, _ := metricValue(fams, name, labels...)
	return v
}

// TestMetricsListener checks the unauthenticated -metrics-addr listener and
// that a blocking query shows while it waits.
func TestMetricsListener(t *testing.T) {
	srv, _, err := New(Config{Addr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0", DataDir: t.TempDir()}, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	url := "http://" + srv.MetricsAddr() + "/metrics"
	_, f := scrape(t, url, "")
	if _, ok := f["drago_hosts"]; !ok {
		t.Fatal("no drago_hosts on the metrics listener")
	}
	// The API's route still wants a token.
	resp, err := http.Get("http://" + srv.Addr() + "/api/v1/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("API /metrics without a token: %d, want 401", resp.StatusCode)
	}
}

// TestPromtoolCheckMetrics pipes a real scrape into promtool check metrics.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool := requirePromtool(t)
	ts := startServer(t, "")
	ts.agentHost("h", must[*api.Network](t)(ts.rootClient().CreateNetwork(context.Background(), &api.Network{Name: "p", IPv4Range: "10.8.0.0/24", Topology: "mesh"})).Name)
	text, _ := scrape(t, ts.url+"/api/v1/metrics", ts.root)
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// requirePromtool finds promtool; without it the test skips, unless CI or
// DRAGO_PRIVILEGED_TESTS asks for the full suite.
func requirePromtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" || os.Getenv("DRAGO_PRIVILEGED_TESTS") != "" {
			t.Fatal("promtool is missing (Debian package prometheus, see .ci/apt-packages)")
		}
		t.Skip("promtool is missing")
	}
	return p
}

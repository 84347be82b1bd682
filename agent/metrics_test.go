package agent

import (
	"bytes"
	"errors"
	"io"
	"math"
	"net/http/httptest"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/drago-wg/drago/platform/platformtest"
)

// scrapeAgent reads the registry through promhttp, as a scraper would.
func scrapeAgent(t *testing.T, reg *prometheus.Registry) ([]byte, map[string]*dto.MetricFamily) {
	t.Helper()
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("scrape: %d %s", resp.StatusCode, b)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("parsing: %v\n%s", err, b)
	}
	return b, fams
}

// sample returns the value of name's sample with the given label pairs.
func sample(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			ok := false
			for _, lp := range m.Label {
				ok = ok || (lp.GetName() == labels[i] && lp.GetValue() == labels[i+1])
			}
			if !ok {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func TestAgentMetrics(t *testing.T) {
	s := newFakeServer(t)
	ds := testState(3)
	for i := range ds.Interfaces[0].Peers {
		ds.Interfaces[0].Peers[i].InterfaceID = "peer-" + string(rune('0'+i))
	}
	ds.Interfaces[0].Peers[2].Device = "phone"
	s.setState(ds)
	fake := platformtest.NewRecorder()
	reg := prometheus.NewRegistry()
	cfg := testConfig(t, s, t.TempDir())
	cfg.Metrics = reg
	startAgent(t, cfg, fake, nil)
	waitFor(t, "the interface", func() bool { return hasDevice(fake, "drago-a", 3) })
	waitFor(t, "a report", func() bool { return reportedKey(s, "if-a") != "" })

	hs := time.Now().Add(-90 * time.Second)
	if err := fake.SetPeerStats("drago-a", peerKey(10), hs, 1234, 5678); err != nil {
		t.Fatal(err)
	}
	text, f := scrapeAgent(t, reg)
	peer0 := []string{"network", "net-1", "interface", "drago-a", "peer", "peer-0"}
	if v, _ := sample(f, "drago_agent_peer_receive_bytes_total", peer0...); v != 1234 {
		t.Errorf("received bytes = %v, want 1234", v)
	}
	if v, _ := sample(f, "drago_agent_peer_transmit_bytes_total", peer0...); v != 5678 {
		t.Errorf("sent bytes = %v, want 5678", v)
	}
	if v, _ := sample(f, "drago_agent_peer_last_handshake_seconds", peer0...); v < 89 || v > 120 {
		t.Errorf("handshake age = %v, want about 90", v)
	}
	if v, _ := sample(f, "drago_agent_peer_last_handshake_seconds", "peer", "peer-1"); !math.IsInf(v, 1) {
		t.Errorf("handshake age of a peer never seen = %v, want +Inf", v)
	}
	if _, ok := sample(f, "drago_agent_peer_last_handshake_seconds", "peer", "peer-2", "peer_device", "phone"); !ok {
		t.Error("no series for the plain device peer with its name")
	}
	if v, ok := sample(f, "drago_agent_key_age_seconds", "interface", "drago-a"); !ok || v < 0 || v > 60 {
		t.Errorf("key age = %v (%v), want a few seconds", v, ok)
	}
	if v, _ := sample(f, "drago_agent_backend_info", "backend", "fake"); v != 1 {
		t.Errorf("backend info = %v", v)
	}
	if v, _ := sample(f, "drago_agent_reconciles_total", "reason", "update"); v < 1 {
		t.Errorf("reconciles = %v, want at least 1", v)
	}
	if v, _ := sample(f, "drago_agent_server_last_contact_timestamp_seconds"); time.Since(time.Unix(int64(v), 0)) > time.Minute {
		t.Errorf("last contact = %v, want now", v)
	}
	var polls float64
	for _, st := range []string{pollWaiting, pollConnected, pollBackoff} {
		v, _ := sample(f, "drago_agent_poll_state", "state", st)
		polls += v
	}
	if polls != 1 {
		t.Errorf("poll states sum to %v, want one state at 1", polls)
	}
	checkMetricsText(t, text)

	// A failing reconcile counts as an error.
	fake.FailOn("ConfigureWireGuard", errors.New("boom"))
	ds2 := testState(4)
	ds2.Index = 8
	s.setState(ds2)
	waitFor(t, "a reconcile error", func() bool {
		_, f := scrapeAgent(t, reg)
		v, _ := sample(f, "drago_agent_reconcile_errors_total", "reason", "update")
		return v >= 1
	})
}

// checkMetricsText pipes a scrape into promtool check metrics; without
// promtool the check skips, unless CI or DRAGO_PRIVILEGED_TESTS asks for it.
func checkMetricsText(t *testing.T, text []byte) {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" || os.Getenv("DRAGO_PRIVILEGED_TESTS") != "" {
			t.Fatal("promtool is missing (Debian package prometheus, see .ci/apt-packages)")
		}
		t.Log("promtool is missing: not checking the metrics text")
		return
	}
	cmd := exec.Command(p, "check", "metrics")
	cmd.Stdin = bytes.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

package packaging_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// TestAlertRules checks the alert rules with promtool (Debian package
// prometheus); without it the test skips unless CI or DRAGO_PRIVILEGED_TESTS
// asks for the whole suite.
func TestAlertRules(t *testing.T) {
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") != "" || os.Getenv("DRAGO_PRIVILEGED_TESTS") != "" {
			t.Fatal("promtool is missing (Debian package prometheus, see .ci/apt-packages)")
		}
		t.Skip("promtool is missing")
	}
	out, err := exec.Command(p, "check", "rules", "prometheus/drago-alerts.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}

// TestDashboardMetrics checks that the Grafana dashboard is JSON and that
// every drago metric it and the alert rules use is documented in the README
// (whose table lists what the server and agent export).
func TestDashboardMetrics(t *testing.T) {
	b, err := os.ReadFile("grafana/drago.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("grafana/drago.json: %v", err)
	}
	rules, err := os.ReadFile("prometheus/drago-alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	exprs := []string{string(rules)}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	name := regexp.MustCompile(`drago_[a-z_]+`)
	for _, e := range exprs {
		for _, m := range name.FindAllString(e, -1) {
			base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_count"), "_sum")
			if !strings.Contains(string(readme), "`"+base) {
				t.Errorf("%s is not documented in README.md", base)
			}
		}
	}
}

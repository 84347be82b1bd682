package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/kardianos/service"
)

// copyTestBinary copies the running test binary to dir/name and returns its
// path: a real executable for the units' ExecStart.
func copyTestBinary(t *testing.T, dir, name string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeSystemctl records the commands a systemdManager runs.
type fakeSystemctl struct {
	mu       sync.Mutex
	calls    []string
	isActive string
}

func (f *fakeSystemctl) run(name string, args ...string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, strings.Join(append([]string{name}, args...), " "))
	if len(args) > 0 && args[0] == "is-active" {
		if f.isActive != "active" {
			return f.isActive, errors.New("exit status 3")
		}
		return f.isActive, nil
	}
	return "", nil
}

func (f *fakeSystemctl) take() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func TestSystemdUnits(t *testing.T) {
	needTool(t, "systemd-analyze", "systemd")
	// A path with a blank and a % checks the ExecStart quoting.
	binDir := filepath.Join(t.TempDir(), "opt dir")
	if err := os.Mkdir(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	exe := copyTestBinary(t, binDir, "drago%1")
	tests := []struct {
		role       string
		execStart  string
		directives []string
		maxScore   float64 // systemd-analyze security exposure
		setup      []string
	}{
		{
			role:      "agent",
			execStart: `ExecStart="` + strings.ReplaceAll(exe, "%", "%%") + `" agent -config /etc/drago/agent.hcl`,
			directives: []string{"AmbientCapabilities=CAP_NET_ADMIN", "CapabilityBoundingSet=CAP_NET_ADMIN", "NoNewPrivileges=yes",
				"ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "ReadWritePaths=/var/lib/drago/agent /run/wireguard",
				"StateDirectory=drago/agent", "Restart=on-failure", "RuntimeDirectory=wireguard", "WantedBy=multi-user.target"},
			maxScore: 3.0,
		},
		{
			role:      "server",
			execStart: `ExecStart="` + strings.ReplaceAll(exe, "%", "%%") + `" server -config /etc/drago/server.hcl`,
			directives: []string{"User=drago", "CapabilityBoundingSet=", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes",
				"PrivateTmp=yes", "ReadWritePaths=/var/lib/drago/server", "StateDirectory=drago/server", "Restart=on-failure", "WantedBy=multi-user.target"},
			maxScore: 1.5,
			setup:    []string{"useradd --system --user-group --home-dir /var/lib/drago/server --no-create-home --shell /usr/sbin/nologin --comment Drago control plane drago"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.role, func(t *testing.T) {
			unitDir := t.TempDir()
			fake := &fakeSystemctl{}
			m := &systemdManager{
				spec:    serviceSpec{role: tt.role, name: "drago-" + tt.role, exe: exe, config: "/etc/drago/" + tt.role + ".hcl"},
				unitDir: unitDir, run: fake.run, userExists: func(string) bool { return false },
			}
			if st, err := m.Status(); err != nil || st != statusNotInstalled {
				t.Errorf("status before install: %q, %v", st, err)
			}
			if err := m.Install(); err != nil {
				t.Fatal(err)
			}
			want := append(tt.setup, "systemctl daemon-reload", "systemctl enable drago-"+tt.role)
			if diff := cmp.Diff(want, fake.take()); diff != "" {
				t.Errorf("install ran (-want +got):\n%s", diff)
			}
			unitPath := filepath.Join(unitDir, "drago-"+tt.role+".service")
			b, err := os.ReadFile(unitPath)
			if err != nil {
				t.Fatal(err)
			}
			unit := string(b)
			lines := map[string]bool{}
			for _, l := range strings.Split(unit, "\n") {
				lines[l] = true
			}
			for _, d := range append(tt.directives, tt.execStart) {
				if !lines[d] {
					t.Errorf("unit lacks the line %s", d)
				}
			}

			t.Run("systemd-analyze verify", func(t *testing.T) {
				out, err := exec.Command("systemd-analyze", "verify", unitPath).CombinedOutput()
				if err != nil || len(out) > 0 {
					t.Errorf("systemd-analyze verify %s: %v\n%s", unitPath, err, out)
				}
			})
			t.Run("systemd-analyze security", func(t *testing.T) {
				out, err := exec.Command("systemd-analyze", "security", "--offline=true", "--no-pager", unitPath).CombinedOutput()
				if err != nil {
					t.Fatalf("systemd-analyze security: %v\n%s", err, out)
				}
				m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`).FindSubmatch(out)
				if m == nil {
					t.Fatalf("no exposure level in:\n%s", out)
				}
				if score, _ := strconv.ParseFloat(string(m[1]), 64); score > tt.maxScore {
					t.Errorf("exposure %.1f, want at most %.1f:\n%s", score, tt.maxScore, out)
				}
			})

			if err := m.Install(); err == nil || !strings.Contains(err.Error(), "run drago service uninstall -"+tt.role+" first") {
				t.Errorf("second install: %v", err)
			}
			for _, c := range []struct{ isActive, want string }{{"active", statusRunning}, {"inactive", statusStopped}, {"failed", "failed"}} {
				fake.isActive = c.isActive
				if st, err := m.Status(); err != nil || st != c.want {
					t.Errorf("status with is-active %q: %q, %v; want %q", c.isActive, st, err, c.want)
				}
			}
			fake.take()
			for _, f := range []func() error{m.Start, m.Stop, m.Restart, m.Uninstall} {
				if err := f(); err != nil {
					t.Fatal(err)
				}
			}
			name := "drago-" + tt.role
			want = []string{"systemctl start " + name, "systemctl stop " + name, "systemctl restart " + name,
				"systemctl disable --now " + name, "systemctl reset-failed " + name, "systemctl daemon-reload"}
			if diff := cmp.Diff(want, fake.take()); diff != "" {
				t.Errorf("start, stop, restart, uninstall ran (-want +got):\n%s", diff)
			}
			if entries, _ := os.ReadDir(unitDir); len(entries) != 0 {
				t.Errorf("uninstall left %v in the unit dir", entries)
			}
			if err := m.Uninstall(); err == nil {
				t.Error("uninstalling twice worked")
			}
		})
	}

	t.Run("binary under a home directory", func(t *testing.T) {
		m := &systemdManager{spec: serviceSpec{role: "agent", name: "drago-agent", exe: "/root/go/bin/drago", config: "/etc/drago/agent.hcl"},
			unitDir: t.TempDir(), run: (&fakeSystemctl{}).run, userExists: func(string) bool { return true }}
		if err := m.Install(); err == nil || !strings.Contains(err.Error(), "ProtectHome") {
			t.Errorf("install from /root: %v", err)
		}
	})
}

// TestServiceSysV installs, starts, stops and uninstalls the services for
// real through kardianos' SysV backend (this machine has no systemd).
func TestServiceSysV(t *testing.T) {
	if os.Getenv("DRAGO_PRIVILEGED_TESTS") != "1" {
		t.Skip("set DRAGO_PRIVILEGED_TESTS=1 (as root) to install services for real")
	}
	if os.Geteuid() != 0 {
		t.Fatal("DRAGO_PRIVILEGED_TESTS=1 needs root")
	}
	if _, err := os.Stat("/run/systemd/system"); err == nil {
		t.Skip("systemd runs here; drago service uses its own unit, checked by TestSystemdUnits")
	}
	for _, name := range []string{"drago-agent", "drago-server"} {
		if _, err := os.Stat("/etc/init.d/" + name); err == nil {
			t.Fatalf("/etc/init.d/%s exists: a real installation? not touching it", name)
		}
	}
	exe, err := executable()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("agent install, status, uninstall", func(t *testing.T) {
		cfg := filepath.Join(t.TempDir(), "agent.hcl")
		t.Cleanup(func() { runDrago(t, nil, "service", "uninstall", "-agent") })
		r := runDrago(t, nil, "service", "install", "-agent", "-config", cfg)
		if r.code != exitOK {
			t.Fatalf("install: %+v", r)
		}
		if !strings.Contains(r.stderr, "warning: "+cfg+" does not exist yet") {
			t.Errorf("install did not warn about the missing config: %q", r.stderr)
		}
		script, err := os.ReadFile("/etc/init.d/drago-agent")
		if err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf(`cmd="%s "agent" "-config" "%s""`, exe, cfg); !strings.Contains(string(script), want) {
			t.Errorf("init script lacks %s:\n%s", want, script)
		}
		if links := sysvLinks(t, "drago-agent"); len(links) == 0 {
			t.Error("install made no /etc/rc?.d links")
		}
		checkStatus(t, "-agent", statusStopped)
		if r := runDrago(t, nil, "service", "install", "-agent"); r.code != exitError || !strings.Contains(r.stderr, "already installed") {
			t.Errorf("second install: %+v", r)
		}
		if r := runDrago(t, nil, "service", "uninstall", "-agent"); r.code != exitOK || r.stdout != "Uninstalled drago-agent.\n" {
			t.Fatalf("uninstall: %+v", r)
		}
		checkGone(t, "drago-agent")
		checkStatus(t, "-agent", statusNotInstalled)
	})

	t.Run("server start, restart, stop", func(t *testing.T) {
		dir := t.TempDir()
		cfg := filepath.Join(dir, "server.hcl")
		hcl := fmt.Sprintf("addr = \"127.0.0.1:0\"\ndata_dir = %q\n", filepath.Join(dir, "data"))
		if err := os.WriteFile(cfg, []byte(hcl), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { runDrago(t, nil, "service", "uninstall", "-server") })
		if r := runDrago(t, nil, "service", "install", "-server", "-config", cfg); r.code != exitOK || r.stderr != "" {
			t.Fatalf("install: %+v", r)
		}
		if r := runDrago(t, nil, "service", "start", "-server"); r.code != exitOK {
			t.Fatalf("start: %+v", r)
		}
		checkStatus(t, "-server", statusRunning)
		// The server (this test binary as drago) logs to the init script's log.
		waitFor(t, "the server's log to say serving", func() bool {
			b, _ := os.ReadFile("/var/log/drago-server.err")
			return strings.Contains(string(b), "msg=serving")
		})
		pid := readPid(t, "/var/run/drago-server.pid")
		if r := runDrago(t, nil, "service", "restart", "-server"); r.code != exitOK {
			t.Fatalf("restart: %+v", r)
		}
		checkStatus(t, "-server", statusRunning)
		if readPid(t, "/var/run/drago-server.pid") == pid {
			t.Error("restart kept the same process")
		}
		start := time.Now()
		if r := runDrago(t, nil, "service", "stop", "-server"); r.code != exitOK {
			t.Fatalf("stop: %+v", r)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("stop took %s; the server did not stop on SIGTERM", d)
		}
		checkStatus(t, "-server", statusStopped)
		if b, _ := os.ReadFile("/var/log/drago-server.err"); strings.Contains(string(b), "level=ERROR") {
			t.Errorf("the server logged errors:\n%s", b)
		}
		// Uninstalling a running service stops it first.
		if r := runDrago(t, nil, "service", "start", "-server"); r.code != exitOK {
			t.Fatalf("start: %+v", r)
		}
		pid = readPid(t, "/var/run/drago-server.pid")
		if r := runDrago(t, nil, "service", "uninstall", "-server"); r.code != exitOK {
			t.Fatalf("uninstall: %+v", r)
		}
		checkGone(t, "drago-server")
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			t.Errorf("the server (pid %d) runs on after uninstall", pid)
		}
	})
}

func sysvLinks(t *testing.T, name string) []string {
	t.Helper()
	links, err := filepath.Glob("/etc/rc?.d/*" + name + "*")
	if err != nil {
		t.Fatal(err)
	}
	return links
}

// checkGone checks that nothing of the SysV service is left.
func checkGone(t *testing.T, name string) {
	t.Helper()
	left := sysvLinks(t, name)
	for _, f := range []string{"/etc/init.d/" + name, "/var/run/" + name + ".pid", "/var/log/" + name + ".log", "/var/log/" + name + ".err"} {
		if _, err := os.Lstat(f); err == nil {
			left = append(left, f)
		}
	}
	if len(left) > 0 {
		t.Errorf("uninstall left %v", left)
	}
}

func checkStatus(t *testing.T, role, want string) {
	t.Helper()
	var got map[string]string
	r := runDrago(t, nil, "service", "status", role, "-json")
	if r.code != exitOK {
		t.Fatalf("status: %+v", r)
	}
	mustUnmarshal(t, r.stdout, &got)
	if got["status"] != want || got["platform"] == "" || got["name"] != "drago"+role {
		t.Errorf("service status %s: %v, want status %q", role, got, want)
	}
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func TestServiceProgram(t *testing.T) {
	t.Run("Stop cancels the context and waits", func(t *testing.T) {
		stopped := make(chan struct{})
		p := &serviceProgram{run: func(ctx context.Context) error {
			<-ctx.Done()
			time.Sleep(20 * time.Millisecond) // a graceful shutdown
			close(stopped)
			return nil
		}, exited: func(error) { t.Error("exited called after Stop") }}
		if err := p.Start(nil); err != nil {
			t.Fatal(err)
		}
		if err := p.Stop(nil); err != nil {
			t.Fatal(err)
		}
		select {
		case <-stopped:
		default:
			t.Error("Stop returned before the command finished")
		}
	})
	t.Run("a command that ends by itself", func(t *testing.T) {
		got := make(chan error, 1)
		p := &serviceProgram{run: func(context.Context) error { return errors.New("bad config") }, exited: func(err error) { got <- err }}
		if err := p.Start(nil); err != nil {
			t.Fatal(err)
		}
		if err := <-got; err == nil || err.Error() != "bad config" {
			t.Errorf("exited with %v", err)
		}
	})
	t.Run("Stop gives up after its timeout", func(t *testing.T) {
		block := make(chan struct{})
		defer close(block)
		p := &serviceProgram{run: func(context.Context) error { <-block; return nil }, stopTimeout: 50 * time.Millisecond}
		p.Start(nil)
		if err := p.Stop(nil); err == nil {
			t.Error("Stop returned no error for a command that does not stop")
		}
	})
}

// fakeLogger records what a logWriter sends, by level.
type fakeLogger struct{ lines []string }

func (f *fakeLogger) add(level string, v ...any) error {
	f.lines = append(f.lines, level+" "+fmt.Sprint(v...))
	return nil
}
func (f *fakeLogger) Error(v ...any) error   { return f.add("E", v...) }
func (f *fakeLogger) Warning(v ...any) error { return f.add("W", v...) }
func (f *fakeLogger) Info(v ...any) error    { return f.add("I", v...) }
func (f *fakeLogger) Errorf(format string, a ...any) error {
	return f.add("E", fmt.Sprintf(format, a...))
}
func (f *fakeLogger) Warningf(format string, a ...any) error {
	return f.add("W", fmt.Sprintf(format, a...))
}
func (f *fakeLogger) Infof(format string, a ...any) error {
	return f.add("I", fmt.Sprintf(format, a...))
}

var _ service.Logger = (*fakeLogger)(nil)

func TestLogWriter(t *testing.T) {
	f := &fakeLogger{}
	w := &logWriter{log: f}
	io.WriteString(w, "time=x level=INFO msg=serving\ntime=x level=WARN msg=slow\n\ntime=x level=ERR")
	io.WriteString(w, "OR msg=broken\ndrago: listening on :80: permission denied\n")
	want := []string{
		"I time=x level=INFO msg=serving",
		"W time=x level=WARN msg=slow",
		"E time=x level=ERROR msg=broken",
		"E drago: listening on :80: permission denied",
	}
	if diff := cmp.Diff(want, f.lines); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kardianos/service"
	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/drago-wg/drago/packaging/systemd"
	"github.com/drago-wg/drago/platform"
)

// Service statuses that drago service status prints.
const (
	statusRunning      = "running"
	statusStopped      = "stopped"
	statusNotInstalled = "not installed"
)

// serviceSpec says which Drago service to manage and what it runs.
type serviceSpec struct {
	role   string // "agent" or "server"
	name   string // drago-agent or drago-server
	exe    string // absolute path of the drago binary
	config string // absolute path of the HCL config file
}

func (s serviceSpec) argv() []string { return []string{s.exe, s.role, "-config", s.config} }

// serviceManager installs and controls one service through the platform's
// service manager.
type serviceManager interface {
	Install() error
	Uninstall() error
	Start() error
	Stop() error
	Restart() error
	// Status reports running, stopped, not installed or the manager's word.
	Status() (string, error)
	// String names the manager and where the service is defined.
	String() string
}

// newServiceManager picks systemd when it runs (a unit written by Drago),
// otherwise kardianos/service for the platform (SysV init scripts, launchd,
// the Windows service manager).
func newServiceManager(spec serviceSpec) (serviceManager, error) {
	if runtime.GOOS == "linux" {
		if fi, err := os.Stat("/run/systemd/system"); err == nil && fi.IsDir() {
			return &systemdManager{spec: spec, unitDir: "/etc/systemd/system", run: runCommand, userExists: userExists}, nil
		}
	}
	return newKardianosManager(spec)
}

func defaultServiceConfig(role string) string {
	if runtime.GOOS == "windows" {
		return filepath.Join(cmp.Or(os.Getenv("ProgramData"), `C:\ProgramData`), "Drago", role+".hcl")
	}
	return "/etc/drago/" + role + ".hcl"
}

func serviceCommand(e *env) *ffcli.Command {
	return group(e, "service", "Install Drago as a native service and control it", `Install the agent or the server as a native service (systemd, SysV init,
launchd or the Windows service manager) and start, stop or query it. -agent
(the default) or -server picks the service: drago-agent runs
"drago agent -config PATH", drago-server runs "drago server -config PATH".

Under systemd, install writes a hardened unit to /etc/systemd/system (the
agent keeps only CAP_NET_ADMIN; the server runs as the user drago, created if
missing) and logs go to the journal. Without systemd, kardianos/service writes
an init script (logs in /var/log/drago-<role>.{log,err}). On Windows, logs go
to the event log. Uninstall stops the service and removes everything install
wrote and, for the agent, its access-policy rules (the nftables table inet
drago); the state in /var/lib/drago stays. Stopping the agent leaves them.

Example:
  sudo drago service install -agent -config /etc/drago/agent.hcl
  sudo drago service start -agent
  drago service status -server`,
		serviceVerbCommand(e, "install", "Install the service (enabled at boot, not started)"),
		serviceVerbCommand(e, "uninstall", "Stop the service and remove it"),
		serviceVerbCommand(e, "start", "Start the service"),
		serviceVerbCommand(e, "stop", "Stop the service"),
		serviceVerbCommand(e, "restart", "Restart the service"),
		serviceVerbCommand(e, "status", "Print whether the service is running"),
	)
}

func serviceVerbCommand(e *env, verb, short string) *ffcli.Command {
	fs := newFlagSet("drago service "+verb, e)
	var agent, srv, asJSON bool
	var config string
	fs.BoolVar(&agent, "agent", false, "the agent service, drago-agent (the default)")
	fs.BoolVar(&srv, "server", false, "the server service, drago-server")
	usage := "drago service " + verb + " [-agent|-server]"
	if verb == "install" {
		fs.StringVar(&config, "config", "", "HCL config `file` the service runs with (default "+defaultServiceConfig("agent")+" or "+defaultServiceConfig("server")+")")
		usage += " [-config PATH]"
	}
	if verb == "status" {
		fs.BoolVar(&asJSON, "json", false, `print {"name", "status", "platform"} as JSON`)
		usage += " [-json]"
	}
	return &ffcli.Command{
		Name:       verb,
		ShortUsage: usage,
		ShortHelp:  short,
		LongHelp:   short + ".\n\nExample:\n" + serviceExamples[verb],
		FlagSet:    fs,
		Exec: func(ctx context.Context, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			if agent && srv {
				return usagef("-agent and -server go alone, not together")
			}
			spec := serviceSpec{role: "agent"}
			if srv {
				spec.role = "server"
			}
			spec.name = "drago-" + spec.role
			var err error
			if spec.config, err = filepath.Abs(cmp.Or(config, defaultServiceConfig(spec.role))); err != nil {
				return err
			}
			if spec.exe, err = executable(); err != nil {
				return err
			}
			if verb != "status" && runtime.GOOS != "windows" && os.Geteuid() != 0 {
				return fmt.Errorf("drago service %s changes the system's services: run it as root", verb)
			}
			m, err := newServiceManager(spec)
			if err != nil {
				return err
			}
			return serviceVerb(e, m, spec, verb, asJSON)
		},
	}
}

var serviceExamples = map[string]string{
	"install":   "  sudo drago service install -agent -config /etc/drago/agent.hcl\n  sudo drago service install -server",
	"uninstall": "  sudo drago service uninstall -server",
	"start":     "  sudo drago service start -agent",
	"stop":      "  sudo drago service stop -server",
	"restart":   "  sudo drago service restart -agent",
	"status":    "  drago service status -server\n  drago service status -agent -json",
}

// removeFirewall deletes the access-policy rules the agent installed (on
// Linux, the table inet drago); an agent stop leaves them in force, an
// uninstall does not. A host that enforces no policy has none to remove.
func removeFirewall() error {
	fw, err := platform.NewFirewall(nil)
	if errors.Is(err, platform.ErrFirewallUnsupported) {
		return nil
	}
	if err != nil {
		return err
	}
	defer fw.Close()
	if err := fw.RemoveAll(); err != nil {
		return fmt.Errorf("removing the agent's firewall rules: %w", err)
	}
	return nil
}

// executable returns the absolute path of the running binary.
func executable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the drago binary: %w", err)
	}
	if p, err := filepath.EvalSymlinks(exe); err == nil {
		exe = p
	}
	return exe, nil
}

func serviceVerb(e *env, m serviceManager, spec serviceSpec, verb string, asJSON bool) error {
	switch verb {
	case "install":
		if _, err := os.Stat(spec.config); errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(e.stderr, "drago: warning: %s does not exist yet; the service cannot start without it\n", spec.config)
		}
		if err := m.Install(); err != nil {
			return fmt.Errorf("installing %s: %w", spec.name, err)
		}
		fmt.Fprintf(e.stdout, "Installed %s (%s), enabled at boot. It runs:\n  %s\nStart it with: drago service start -%s\n",
			spec.name, m, strings.Join(spec.argv(), " "), spec.role)
	case "uninstall":
		if err := m.Uninstall(); err != nil {
			return fmt.Errorf("uninstalling %s: %w", spec.name, err)
		}
		if spec.role == "agent" {
			if err := removeFirewall(); err != nil {
				return err
			}
		}
		fmt.Fprintf(e.stdout, "Uninstalled %s.\n", spec.name)
	case "start", "stop", "restart":
		f := map[string]func() error{"start": m.Start, "stop": m.Stop, "restart": m.Restart}[verb]
		if err := f(); err != nil {
			return fmt.Errorf("%s %s: %w", verb, spec.name, err)
		}
		past := map[string]string{"start": "Started", "stop": "Stopped", "restart": "Restarted"}[verb]
		fmt.Fprintf(e.stdout, "%s %s.\n", past, spec.name)
	case "status":
		st, err := m.Status()
		if err != nil {
			return fmt.Errorf("status of %s: %w", spec.name, err)
		}
		if asJSON {
			return writeJSON(e.stdout, map[string]string{"name": spec.name, "status": st, "platform": m.String()})
		}
		fmt.Fprintf(e.stdout, "%s: %s (%s)\n", spec.name, st, m)
	}
	return nil
}

// systemdManager writes Drago's own hardened unit and drives systemctl.
type systemdManager struct {
	spec       serviceSpec
	unitDir    string
	run        func(name string, args ...string) (string, error)
	userExists func(name string) bool
}

func (m *systemdManager) unitPath() string { return filepath.Join(m.unitDir, m.spec.name+".service") }

func (m *systemdManager) String() string { return "systemd unit " + m.unitPath() }

// render returns the unit text for the spec.
func (m *systemdManager) render() (string, error) {
	unit := systemd.Agent
	if m.spec.role == "server" {
		unit = systemd.Server
	}
	return systemd.Render(unit, m.spec.argv())
}

func (m *systemdManager) installed() bool {
	_, err := os.Stat(m.unitPath())
	return err == nil
}

func (m *systemdManager) Install() error {
	if m.installed() {
		return fmt.Errorf("%s exists; run drago service uninstall -%s first", m.unitPath(), m.spec.role)
	}
	for _, home := range []string{"/home", "/root", "/run/user"} {
		if m.spec.exe == home || strings.HasPrefix(m.spec.exe, home+"/") {
			return fmt.Errorf("%s is under %s, which the unit's ProtectHome=yes hides from the service; install drago to /usr/local/bin or /usr/bin first", m.spec.exe, home)
		}
	}
	unit, err := m.render()
	if err != nil {
		return err
	}
	if m.spec.role == "server" && !m.userExists("drago") {
		if out, err := m.run("useradd", "--system", "--user-group", "--home-dir", "/var/lib/drago/server", "--no-create-home",
			"--shell", "/usr/sbin/nologin", "--comment", "Drago control plane", "drago"); err != nil {
			return fmt.Errorf("creating the user drago: %v: %s", err, out)
		}
	}
	tmp := m.unitPath() + ".tmp"
	if err := os.WriteFile(tmp, []byte(unit), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, m.unitPath()); err != nil {
		os.Remove(tmp)
		return err
	}
	return m.systemctl("daemon-reload", "enable", m.spec.name)
}

// systemctl runs "systemctl daemon-reload" when first is daemon-reload, then
// systemctl with the remaining arguments.
func (m *systemdManager) systemctl(args ...string) error {
	if args[0] == "daemon-reload" {
		if out, err := m.run("systemctl", "daemon-reload"); err != nil {
			return fmt.Errorf("systemctl daemon-reload: %v: %s", err, out)
		}
		args = args[1:]
	}
	if len(args) == 0 {
		return nil
	}
	if out, err := m.run("systemctl", args...); err != nil {
		return fmt.Errorf("systemctl %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (m *systemdManager) Uninstall() error {
	if !m.installed() {
		return fmt.Errorf("%s is not installed (no %s)", m.spec.name, m.unitPath())
	}
	if err := m.systemctl("disable", "--now", m.spec.name); err != nil {
		return err
	}
	if err := os.Remove(m.unitPath()); err != nil {
		return err
	}
	m.run("systemctl", "reset-failed", m.spec.name) // forget a failed state; fails when there is none
	return m.systemctl("daemon-reload")
}

func (m *systemdManager) Start() error   { return m.systemctl("start", m.spec.name) }
func (m *systemdManager) Stop() error    { return m.systemctl("stop", m.spec.name) }
func (m *systemdManager) Restart() error { return m.systemctl("restart", m.spec.name) }

func (m *systemdManager) Status() (string, error) {
	if !m.installed() {
		return statusNotInstalled, nil
	}
	// is-active exits non-zero for anything but active; its output is the state.
	out, _ := m.run("systemctl", "is-active", m.spec.name)
	switch st := strings.TrimSpace(out); st {
	case "active":
		return statusRunning, nil
	case "inactive":
		return statusStopped, nil
	case "":
		return "", errors.New("systemctl is-active printed nothing")
	default:
		return st, nil // failed, activating, deactivating, ...
	}
}

// runCommand runs a command and returns its combined output.
func runCommand(name string, args ...string) (string, error) {
	var b bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &b, &b
	err := cmd.Run()
	return strings.TrimSpace(b.String()), err
}

func userExists(name string) bool {
	_, err := user.Lookup(name)
	return err == nil
}

// kardianosManager controls the service through kardianos/service.
type kardianosManager struct {
	spec serviceSpec
	svc  service.Service
}

func newKardianosManager(spec serviceSpec) (*kardianosManager, error) {
	desc := map[string]string{
		"agent":  "Drago agent: keeps this host's WireGuard interfaces equal to the desired state",
		"server": "Drago server: the WireGuard control plane",
	}[spec.role]
	svc, err := service.New(nopProgram{}, &service.Config{
		Name:        spec.name,
		DisplayName: "Drago " + spec.role,
		Description: desc,
		Executable:  spec.exe,
		Arguments:   spec.argv()[1:],
		Option: service.KeyValue{
			"OnFailure":              "restart", // Windows
			"OnFailureDelayDuration": "5s",
			"KeepAlive":              true, // launchd
			"RunAtLoad":              true,
			"LogOutput":              true,
		},
	})
	if err != nil {
		return nil, err
	}
	return &kardianosManager{spec: spec, svc: svc}, nil
}

func (m *kardianosManager) sysv() bool { return m.svc.Platform() == "unix-systemv" }

func (m *kardianosManager) String() string {
	if m.sysv() {
		return m.svc.Platform() + " script /etc/init.d/" + m.spec.name
	}
	return m.svc.Platform()
}

func (m *kardianosManager) Install() error {
	st, err := m.Status()
	if err == nil && st != statusNotInstalled {
		return fmt.Errorf("%s is already installed; run drago service uninstall -%s first", m.spec.name, m.spec.role)
	}
	return m.svc.Install()
}

func (m *kardianosManager) Uninstall() error {
	st, err := m.Status()
	if err != nil {
		return err
	}
	if st == statusNotInstalled {
		return fmt.Errorf("%s is not installed", m.spec.name)
	}
	if st == statusRunning {
		if err := m.svc.Stop(); err != nil {
			return fmt.Errorf("stopping: %w", err)
		}
	}
	if err := m.svc.Uninstall(); err != nil {
		return err
	}
	if m.sysv() {
		return removeSysVLeftovers(m.spec.name)
	}
	return nil
}

// removeSysVLeftovers removes what kardianos' SysV install wrote besides the
// init script: the /etc/rc?.d links, the pid file and the log files.
func removeSysVLeftovers(name string) error {
	links, _ := filepath.Glob("/etc/rc[0-6S].d/[SK][0-9][0-9]" + name)
	var errs []error
	for _, l := range links {
		if t, err := os.Readlink(l); err == nil && t == "/etc/init.d/"+name {
			errs = append(errs, os.Remove(l))
		}
	}
	for _, f := range []string{"/var/run/" + name + ".pid", "/var/log/" + name + ".log", "/var/log/" + name + ".err"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (m *kardianosManager) Start() error   { return m.svc.Start() }
func (m *kardianosManager) Stop() error    { return m.svc.Stop() }
func (m *kardianosManager) Restart() error { return m.svc.Restart() }

func (m *kardianosManager) Status() (string, error) {
	if m.sysv() {
		// kardianos reports a stopped SysV service as an error, since the
		// script's status exits 1: read the script's presence and exit code.
		if _, err := os.Stat("/etc/init.d/" + m.spec.name); err != nil {
			return statusNotInstalled, nil
		}
	}
	st, err := m.svc.Status()
	var exitErr *exec.ExitError
	switch {
	case err == nil && st == service.StatusRunning:
		return statusRunning, nil
	case err == nil && st == service.StatusStopped:
		return statusStopped, nil
	case errors.Is(err, service.ErrNotInstalled):
		return statusNotInstalled, nil
	case m.sysv() && errors.As(err, &exitErr):
		return statusStopped, nil
	case err != nil:
		return "", err
	}
	return "unknown", nil
}

// nopProgram satisfies service.Interface for the commands that only install
// or control the service.
type nopProgram struct{}

func (nopProgram) Start(service.Service) error { return nil }
func (nopProgram) Stop(service.Service) error  { return nil }

// serviceProgram runs a command under a service manager that stops it by
// calling Stop (Windows), rather than with a signal.
type serviceProgram struct {
	run func(ctx context.Context) error
	// exited is called when run returns before Stop was called; under the
	// Windows service manager it exits the process so the manager restarts it.
	exited      func(error)
	stopTimeout time.Duration

	cancel   context.CancelFunc
	done     chan struct{}
	err      error
	stopping atomic.Bool
}

func (p *serviceProgram) Start(service.Service) error {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	go func() {
		defer close(p.done)
		p.err = p.run(ctx)
		if !p.stopping.Load() && p.exited != nil {
			p.exited(p.err)
		}
	}()
	return nil
}

// Stop cancels the command's context and waits for it to return.
func (p *serviceProgram) Stop(service.Service) error {
	p.stopping.Store(true)
	p.cancel()
	timeout := cmp.Or(p.stopTimeout, 30*time.Second)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		return fmt.Errorf("still running %s after the stop request", timeout)
	}
}

// logWriter sends each line written to it to a service logger (the Windows
// event log), at the level slog wrote in it.
type logWriter struct {
	mu  sync.Mutex
	log service.Logger
	buf []byte
}

var _ io.Writer = (*logWriter)(nil)

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(w.buf[:i])
		w.buf = w.buf[i+1:]
		if strings.TrimSpace(line) == "" {
			continue
		}
		switch {
		case strings.Contains(line, "level=ERROR") || strings.HasPrefix(line, "drago: "):
			w.log.Error(line)
		case strings.Contains(line, "level=WARN"):
			w.log.Warning(line)
		default:
			w.log.Info(line)
		}
	}
}

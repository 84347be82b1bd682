package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/drago-wg/drago/server"
	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/servertest"
)

func TestMain(m *testing.M) {
	// The service tests install this test binary as the service's drago:
	// the init script then runs it as "drago.test server -config FILE".
	if len(os.Args) > 1 && (os.Args[1] == "server" || os.Args[1] == "agent") {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, os.Args[1:], &env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
		stop()
		os.Exit(code)
	}
	// Never pick up the machine's real root token.
	defaultTokenFile = "/nonexistent/drago-test/root-token"
	os.Exit(m.Run())
}

// testServer is a real Drago server in this process.
type testServer struct {
	addr    string // http://127.0.0.1:port
	root    string // root token secret
	dataDir string
	client  *api.Client // with the root token
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	dir := t.TempDir()
	addr, root := servertest.Start(t, server.Config{DataDir: dir})
	ts := &testServer{addr: addr, root: root, dataDir: dir}
	ts.client = ts.clientWith(t, root)
	return ts
}

func (ts *testServer) clientWith(t *testing.T, token string) *api.Client {
	t.Helper()
	c, err := api.NewClient(api.ClientConfig{Address: ts.addr, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// result is what one drago run printed and returned.
type result struct {
	stdout, stderr string
	code           int
}

// runDrago runs drago with args and the given environment.
func runDrago(t *testing.T, environ map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &env{stdout: &out, stderr: &errb, getenv: func(k string) string { return environ[k] }})
	return result{out.String(), errb.String(), code}
}

// env returns the environment that points drago at the server with token.
func (ts *testServer) env(token string) map[string]string {
	return map[string]string{"DRAGO_ADDR": ts.addr, "DRAGO_TOKEN": token}
}

// run runs drago against the server with the root token.
func (ts *testServer) run(t *testing.T, args ...string) result {
	t.Helper()
	return runDrago(t, ts.env(ts.root), args...)
}

// ok runs drago and fails the test unless it exits 0; it returns stdout.
func (ts *testServer) ok(t *testing.T, args ...string) string {
	t.Helper()
	r := ts.run(t, args...)
	if r.code != exitOK {
		t.Fatalf("drago %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// decode runs drago with -json inserted after the command words and
// decodes stdout into v; unknown fields fail, so the shape is checked.
func (ts *testServer) decode(t *testing.T, v any, args ...string) {
	t.Helper()
	mustUnmarshal(t, ts.ok(t, withFlag(args, "-json")...), v)
}

// mustUnmarshal decodes one JSON value, refusing unknown fields.
func mustUnmarshal(t *testing.T, s string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decoding %q: %v", s, err)
	}
	if dec.More() {
		t.Fatalf("more than one JSON value in %q", s)
	}
}

// withFlag inserts flag after the leading command words (before the first
// flag or, for commands taking an object, before the last argument).
func withFlag(args []string, flag string) []string {
	i := 0
	for i < len(args) && !strings.HasPrefix(args[i], "-") && i < 2 {
		i++
	}
	out := append([]string{}, args[:i]...)
	out = append(out, flag)
	return append(out, args[i:]...)
}

// host is a registered host with the keys of its interfaces.
type host struct {
	id     string
	cred   string // host credential
	ifaces []api.DesiredInterface
	keys   map[string]wgtypes.Key // interface id -> private key
}

// addHost registers a host the way an agent does (join token, register,
// status report with public keys) and returns it.
func (ts *testServer) addHost(t *testing.T, name string, networks ...string) host {
	t.Helper()
	ctx := context.Background()
	jt, err := ts.client.CreateJoinToken(ctx, &api.JoinToken{Name: "join-" + name, Networks: networks})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := ts.clientWith(t, jt.Secret).Register(ctx, &api.RegisterRequest{Name: name, AdvertiseAddress: "192.0.2.10", OS: "linux", Arch: "amd64"})
	if err != nil {
		t.Fatal(err)
	}
	hc := ts.clientWith(t, reg.Credential)
	ds, err := hc.DesiredState(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	h := host{id: reg.HostID, cred: reg.Credential, ifaces: ds.Interfaces, keys: map[string]wgtypes.Key{}}
	rep := api.StatusReport{OS: "linux", Arch: "amd64", AppliedIndex: ds.Index, Interfaces: []api.InterfaceStatus{}}
	for _, di := range ds.Interfaces {
		k, err := wgtypes.GeneratePrivateKey()
		if err != nil {
			t.Fatal(err)
		}
		h.keys[di.ID] = k
		rep.Interfaces = append(rep.Interfaces, api.InterfaceStatus{ID: di.ID, PublicKey: k.PublicKey().String(), ListenPort: di.ListenPort})
	}
	if err := hc.ReportStatus(ctx, &rep); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestConnectionSettings(t *testing.T) {
	ts := newTestServer(t)
	dir := t.TempDir()
	rootFile := filepath.Join(dir, "root-token")
	if err := os.WriteFile(rootFile, []byte(ts.root+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badFile := filepath.Join(dir, "bad-token")
	if err := os.WriteFile(badFile, []byte("dgm_0000_nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	noToken := "drago: missing or invalid token\nno token given: use -token, -token-file, DRAGO_TOKEN or DRAGO_TOKEN_FILE\n"
	tests := []struct {
		name    string
		environ map[string]string
		args    []string
		code    int
		stderr  string // exact, when not ""
	}{
		{"token from DRAGO_TOKEN", map[string]string{"DRAGO_ADDR": ts.addr, "DRAGO_TOKEN": ts.root}, nil, exitOK, ""},
		{"token flag", map[string]string{"DRAGO_ADDR": ts.addr}, []string{"-token", ts.root}, exitOK, ""},
		{"token-file flag", map[string]string{"DRAGO_ADDR": ts.addr}, []string{"-token-file", rootFile}, exitOK, ""},
		{"DRAGO_TOKEN_FILE", map[string]string{"DRAGO_ADDR": ts.addr, "DRAGO_TOKEN_FILE": rootFile}, nil, exitOK, ""},
		{"address flag", nil, []string{"-address", ts.addr, "-token", ts.root}, exitOK, ""},
		{"flag beats environment", map[string]string{"DRAGO_ADDR": ts.addr, "DRAGO_TOKEN": "dgm_0000_bad"}, []string{"-token-file", rootFile}, exitOK, ""},
		{"DRAGO_TOKEN beats DRAGO_TOKEN_FILE", map[string]string{"DRAGO_ADDR": ts.addr, "DRAGO_TOKEN": ts.root, "DRAGO_TOKEN_FILE": badFile}, nil, exitOK, ""},
		{"no token", map[string]string{"DRAGO_ADDR": ts.addr}, nil, exitError, noToken},
		{"refused token", map[string]string{"DRAGO_ADDR": ts.addr}, []string{"-token-file", badFile}, exitError,
			"drago: missing or invalid token\nthe token from -token-file was refused\n"},
		{"missing token file", map[string]string{"DRAGO_ADDR": ts.addr, "DRAGO_TOKEN_FILE": filepath.Join(dir, "nope")}, nil, exitError,
			"drago: reading token file: open " + filepath.Join(dir, "nope") + ": no such file or directory\n"},
		{"token and token-file", map[string]string{"DRAGO_ADDR": ts.addr}, []string{"-token", "x", "-token-file", rootFile}, exitUsage,
			"drago: -token and -token-file go alone, not together\n"},
		{"bad address", map[string]string{"DRAGO_ADDR": "ftp://example.com", "DRAGO_TOKEN": ts.root}, nil, exitError,
			"drago: server address \"ftp://example.com\": want http(s)://host:port\n"},
		{"missing CA file", map[string]string{"DRAGO_ADDR": ts.addr, "DRAGO_TOKEN": ts.root, "DRAGO_CACERT": filepath.Join(dir, "ca.pem")}, nil, exitError,
			"drago: reading CA certificate: open " + filepath.Join(dir, "ca.pem") + ": no such file or directory\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runDrago(t, tt.environ, append([]string{"network", "list"}, tt.args...)...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\nstderr: %s", r.code, tt.code, r.stderr)
			}
			if tt.stderr != "" {
				if diff := cmp.Diff(tt.stderr, r.stderr); diff != "" {
					t.Errorf("stderr (-want +got):\n%s", diff)
				}
			}
		})
	}

	t.Run("default root token file", func(t *testing.T) {
		old := defaultTokenFile
		t.Cleanup(func() { defaultTokenFile = old })
		defaultTokenFile = rootFile
		if r := runDrago(t, map[string]string{"DRAGO_ADDR": ts.addr}, "network", "list"); r.code != exitOK {
			t.Fatalf("with a readable %s: exit %d: %s", rootFile, r.code, r.stderr)
		}
		if r := runDrago(t, map[string]string{"DRAGO_ADDR": strings.Replace(ts.addr, "127.0.0.1", "localhost", 1)}, "network", "list"); r.code != exitOK {
			t.Fatalf("with localhost: exit %d: %s", r.code, r.stderr)
		}
		// The local root token is never sent to another machine.
		s := &session{e: &env{getenv: func(string) string { return "" }}}
		if tok, err := s.resolveToken(false); tok != "" || err != nil {
			t.Errorf("token for a remote address: %q, %v; want none", tok, err)
		}
		defaultTokenFile = filepath.Join(dir, "absent")
		r := runDrago(t, map[string]string{"DRAGO_ADDR": ts.addr}, "network", "list")
		if diff := cmp.Diff(result{"", noToken, exitError}, r, cmp.AllowUnexported(result{})); diff != "" {
			t.Errorf("without it (-want +got):\n%s", diff)
		}
	})

	t.Run("help names the environment variables", func(t *testing.T) {
		r := runDrago(t, nil, "network", "list", "-help")
		if r.code != exitOK {
			t.Fatalf("exit %d", r.code)
		}
		for _, s := range []string{"DRAGO_ADDR", "DRAGO_TOKEN", "DRAGO_TOKEN_FILE", "DRAGO_CACERT", "/var/lib/drago/server/root-token", "Example:"} {
			if !strings.Contains(r.stderr, s) {
				t.Errorf("help does not mention %s:\n%s", s, r.stderr)
			}
		}
	})

	t.Run("server down", func(t *testing.T) {
		r := runDrago(t, map[string]string{"DRAGO_ADDR": "http://127.0.0.1:1", "DRAGO_TOKEN": ts.root}, "status")
		if r.code != exitError || !strings.HasPrefix(r.stderr, "drago: server http://127.0.0.1:1 does not answer: ") {
			t.Errorf("exit %d, stderr %q; want 1 and does not answer", r.code, r.stderr)
		}
	})
}

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"http://127.0.0.1:8080", true},
		{"http://127.1.2.3:8080", true},
		{"https://[::1]:8443", true},
		{"http://localhost:8080", true},
		{"http://10.0.0.1:8080", false},
		{"https://drago.example.com", false},
		{"http://[fd00::1]:8080", false},
		{"127.0.0.1:8080", true},
		{"[::1]:0", true},
		{"0.0.0.0:8080", false},
		{"[::]:8080", false},
	}
	for _, tt := range tests {
		if got := api.IsLoopback(tt.addr); got != tt.want {
			t.Errorf("isLoopback(%q) = %v, want %v", tt.addr, got, tt.want)
		}
	}
}

// TestEveryCommandHasHelp checks that each command answers -help with exit
// 0 and a long help holding an example.
func TestEveryCommandHasHelp(t *testing.T) {
	for _, n := range completionTree(rootCommand(&env{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, getenv: func(string) string { return "" }})) {
		args := append(strings.Fields(n.path)[1:], "-help")
		t.Run(n.path, func(t *testing.T) {
			r := runDrago(t, nil, args...)
			if r.code != exitOK {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			if n.path != "drago" && n.path != "drago version" && !strings.Contains(r.stderr, "Example:") {
				t.Errorf("no Example in the help:\n%s", r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("help on stdout: %q", r.stdout)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	ts := newTestServer(t)
	tests := []struct {
		args   []string
		stderr string // last line of stderr
	}{
		{[]string{"network"}, ""},
		{[]string{"network", "frob"}, `drago: unknown command "frob" for drago network; see drago network -help`},
		{[]string{"network", "create", "-bogus"}, "drago: error parsing commandline arguments: flag provided but not defined: -bogus"},
		{[]string{"network", "create", "-mtu", "abc"}, `drago: error parsing commandline arguments: invalid value "abc" for flag -mtu: parse error`},
		{[]string{"network", "create", "extra"}, `drago: unexpected arguments ["extra"]`},
		{[]string{"network", "show"}, "drago: missing the network name or id"},
		{[]string{"network", "show", "a", "b"}, `drago: want one network name or id, got ["a" "b"] (flags go before it)`},
		{[]string{"network", "update", "prod"}, "drago: nothing to change: give at least one of -default-action, -dns, -hub, -ipv4-range, -ipv6-range, -keepalive, -listen-port, -mtu, -name, -topology"},
		{[]string{"host", "update", "-label", "novalue", "h"}, `drago: error parsing commandline arguments: invalid value "novalue" for flag -label: "novalue" is not key=value`},
		{[]string{"token", "create", "-name", "x", "-policy", "networks"}, `drago: error parsing commandline arguments: invalid value "networks" for flag -policy: "networks" is not resource:access[:network,...]`},
		{[]string{"join-token", "create", "-expires", "-1h"}, "drago: -expires: must be 0 (never) or positive"},
		{[]string{"connection", "update", "-keepalive", "x", "id"}, `drago: error parsing commandline arguments: invalid value "x" for flag -keepalive: strconv.Atoi: parsing "x": invalid syntax`},
		{[]string{"device", "add", "-qr", "-json", "-network", "n", "-name", "p"}, "drago: -qr and -json go alone, not together"},
		{[]string{"service", "status", "-agent", "-server"}, "drago: -agent and -server go alone, not together"},
		{[]string{"completion", "tcsh"}, `drago: unknown command "tcsh" for drago completion; see drago completion -help`},
		{[]string{"frob"}, ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := ts.run(t, tt.args...)
			if r.code != exitUsage {
				t.Fatalf("exit %d, want %d\nstderr: %s", r.code, exitUsage, r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			if tt.stderr == "" {
				if !strings.Contains(r.stderr, "USAGE") {
					t.Errorf("stderr has no usage:\n%s", r.stderr)
				}
				return
			}
			if diff := cmp.Diff(tt.stderr, lines[len(lines)-1]); diff != "" {
				t.Errorf("last stderr line (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAPIErrors(t *testing.T) {
	ts := newTestServer(t)
	ts.ok(t, "network", "create", "-name", "prod", "-ipv4-range", "10.1.0.0/24")
	tests := []struct {
		args   []string
		stderr string
	}{
		{[]string{"network", "create", "-name", "p2", "-ipv4-range", "10.2.0.1/24"},
			`drago: ipv4_range: "10.2.0.1/24" has host bits set; did you mean 10.2.0.0/24? (field ipv4_range)`},
		{[]string{"network", "create", "-name", "Bad_Name", "-ipv4-range", "10.2.0.0/24"},
			`drago: name: "Bad_Name" is not a DNS label (lowercase letters, digits and '-', at most 63) (field name)`},
		{[]string{"network", "create", "-name", "p2", "-ipv4-range", "10.2.0.0/24", "-topology", "star"},
			`drago: topology: "star" is not one of none, mesh, hub (field topology)`},
		{[]string{"network", "create", "-name", "p2", "-ipv4-range", "10.2.0.0/24", "-dns", "1.1.1.1,nope"},
			`drago: dns[1]: "nope" is not an IP address (without zone) (field dns[1])`},
		{[]string{"network", "create", "-name", "prod", "-ipv4-range", "10.2.0.0/24"},
			`drago: network name "prod" is taken (field name)`},
		{[]string{"network", "update", "-mtu", "100", "prod"},
			`drago: mtu: 100 is out of range (1280-9000) (field mtu)`},
		{[]string{"network", "show", "nope"}, `drago: network "nope" not found`},
		{[]string{"device", "add", "-network", "prod", "-name", "my phone"},
			`drago: name: "my phone" is not a device name (letters, digits, '.', '_', '-') (field name)`},
		{[]string{"device", "add", "-network", "nope", "-name", "phone"}, `drago: network "nope" not found (field network)`},
		{[]string{"interface", "create", "-network", "prod", "-host", "nope"}, `drago: host "nope" not found (field host_id)`},
		{[]string{"token", "create", "-name", "t", "-policy", "planets:read"},
			`drago: policies[0].resource: "planets" is not one of networks, hosts, interfaces, connections, rules, tokens, metrics, audit or * (field policies[0].resource)`},
		{[]string{"join-token", "create", "-network", "nope"}, `drago: networks[0]: network "nope" not found (field networks[0])`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := ts.run(t, tt.args...)
			want := result{stderr: tt.stderr + "\n", code: exitError}
			if diff := cmp.Diff(want, r, cmp.AllowUnexported(result{})); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestPrintableEscapesTerminalControls(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"linux", "linux"},
		{"héllo wörld", "héllo wörld"},
		{"\x1b]0;pwned\x07", `\x1b]0;pwned\x07`},
		{"a\nb\tc", `a\x0ab\x09c`},
		{"evil\u202etxt", `evil\u202etxt`},
		{"bad\xffutf8", `bad\ufffdutf8`},
	} {
		if got := printable(tc.in); got != tc.want {
			t.Errorf("printable(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

//go:build linux

// Package e2e proves the agent end to end: a real drago server and one real
// drago agent per host, each host a network namespace, WireGuard through the
// embedded userspace backend, checked with ping and wireguard-tools.
//
// The tests need root and run only with DRAGO_PRIVILEGED_TESTS=1 (set by
// make test); then they fail, never skip, when something is missing.
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/drago-wg/drago/server/api"
)

// Built once in TestMain: drago, and a process running one etcd member
// (server/store/etcdtest/member, never part of drago).
var dragoBin, etcdBin string

func TestMain(m *testing.M) {
	if os.Getenv("DRAGO_PRIVILEGED_TESTS") != "1" {
		fmt.Println("skipping e2e: set DRAGO_PRIVILEGED_TESTS=1 (as root) to run the network-namespace tests")
		os.Exit(0)
	}
	if os.Geteuid() != 0 {
		fmt.Println("e2e: DRAGO_PRIVILEGED_TESTS=1 but not root")
		os.Exit(1)
	}
	for _, tool := range []string{"ip", "wg", "ping", "unshare", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			fmt.Printf("e2e: %s not found (make deps installs it)\n", tool)
			os.Exit(1)
		}
	}
	dir, err := os.MkdirTemp("", "drago-e2e-bin-")
	if err != nil {
		panic(err)
	}
	dragoBin, etcdBin = filepath.Join(dir, "drago"), filepath.Join(dir, "member")
	build := exec.Command("go", "build", "-o", dir+"/", "github.com/drago-wg/drago/cmd/drago", "github.com/drago-wg/drago/server/store/etcdtest/member")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Printf("e2e: building drago and the etcd member: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// lab is one test's network: a switch namespace with a bridge, the server's
// namespace and one namespace per host, all on the underlay 172.31.77.0/24
// (a cluster lab: 172.31.78.0/24, see newClusterLab).
type lab struct {
	t      testing.TB
	prefix string // namespace name prefix, unique per test
	subnet string // the underlay's first three octets
	dir    string
	server *proc
	url    string // the server the test's client talks to
	root   string
	hosts  map[string]*host
	nextIP int
	procs  []*proc // a cluster lab's etcd members and servers, in start order
}

type host struct {
	name, ns, underlay, dataDir string
	servers                     string // the agent's -server
	agent                       *proc
}

// proc is a drago process whose output is kept for failure reports.
type proc struct {
	name string // in failure reports, for a cluster lab's processes
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	done chan struct{}
}

func (p *proc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func (p *proc) output() string {
	if p == nil {
		return ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

func (p *proc) kill(sig syscall.Signal) {
	if p == nil || p.cmd.Process == nil {
		return
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newLab creates the switch and server namespaces and starts the server.
func newLab(t testing.TB, prefix string) *lab {
	l := newNet(t, prefix, "172.31.77")
	l.startServer()
	l.readRoot(filepath.Join(l.dir, "server"))
	return l
}

// newNet creates the switch namespace, joined to the test's own namespace
// at subnet.1, where the test's API client runs.
func newNet(t testing.TB, prefix, subnet string) *lab {
	l := &lab{t: t, prefix: prefix, subnet: subnet, dir: t.TempDir(), hosts: map[string]*host{}, nextIP: 10}
	l.cleanup() // what a killed earlier run left behind
	dropSubnet(subnet)
	t.Cleanup(l.cleanup)
	sw := prefix + "-sw"
	run(t, "ip", "netns", "add", sw)
	run(t, "ip", "-n", sw, "link", "add", "br0", "type", "bridge")
	run(t, "ip", "-n", sw, "link", "set", "br0", "up")
	run(t, "ip", "-n", sw, "link", "set", "lo", "up")
	// The server runs in the test's own namespace on a veth into the switch,
	// so the test's API client and the agents both reach it.
	rootVeth := prefix + "-r"
	run(t, "ip", "link", "add", rootVeth, "type", "veth", "peer", "name", "up0", "netns", sw)
	run(t, "ip", "-n", sw, "link", "set", "up0", "master", "br0", "up")
	run(t, "ip", "addr", "add", subnet+".1/24", "dev", rootVeth)
	run(t, "ip", "link", "set", rootVeth, "up")
	return l
}

// dropSubnet deletes the links of this namespace that hold an address of
// subnet: the root veth of a lab of another test, on the same subnet, that
// a killed run left behind would take the lab's traffic.
func dropSubnet(subnet string) {
	out, _ := exec.Command("ip", "-o", "addr", "show", "to", subnet+".0/24").Output()
	for line := range strings.Lines(string(out)) {
		if f := strings.Fields(line); len(f) > 1 {
			exec.Command("ip", "link", "del", strings.Split(f[1], "@")[0]).Run()
		}
	}
}

// readRoot reads the root token a server wrote to its data dir.
func (l *lab) readRoot(dataDir string) {
	b, err := os.ReadFile(filepath.Join(dataDir, "root-token"))
	if err != nil {
		l.t.Fatal(err)
	}
	l.root = strings.TrimSpace(string(b))
}

// attach creates namespace prefix-name joined to the switch with address ip.
func (l *lab) attach(name, ip string) string {
	ns := l.prefix + "-" + name
	run(l.t, "ip", "netns", "add", ns)
	run(l.t, "ip", "-n", ns, "link", "set", "lo", "up")
	veth := l.prefix + name
	if len(veth) > 15 {
		veth = veth[len(veth)-15:]
	}
	run(l.t, "ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", veth, "netns", l.prefix+"-sw")
	run(l.t, "ip", "-n", l.prefix+"-sw", "link", "set", veth, "master", "br0", "up")
	run(l.t, "ip", "-n", ns, "addr", "add", ip+"/24", "dev", "eth0")
	run(l.t, "ip", "-n", ns, "link", "set", "eth0", "up")
	return ns
}

// start runs drago in namespace ns; for agents, in a private mount namespace
// with its own /run/wireguard, so UAPI sockets of hosts do not collide.
func (l *lab) start(ns, wgDir string, args ...string) *proc {
	return l.startBin(dragoBin, ns, wgDir, args...)
}

// startBin is start for the program bin.
func (l *lab) startBin(bin, ns, wgDir string, args ...string) *proc {
	p := &proc{done: make(chan struct{})}
	var cmd *exec.Cmd
	switch {
	case ns == "":
		cmd = exec.Command(bin, args...)
	case wgDir == "":
		cmd = exec.Command("ip", append([]string{"netns", "exec", ns, bin}, args...)...)
	default:
		script := `mount --bind "$1" /run/wireguard && shift && exec "$@"`
		cmd = exec.Command("ip", append([]string{"netns", "exec", ns, "unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", wgDir, bin}, args...)...)
	}
	cmd.Stdout, cmd.Stderr = p, p
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // no strays if the test dies
	if err := cmd.Start(); err != nil {
		l.t.Fatal(err)
	}
	p.cmd = cmd
	go func() { cmd.Wait(); close(p.done) }()
	return p
}

// startServer starts (or restarts) the server on its data dir and waits
// until it answers. The first start picks a free port, which restarts keep.
func (l *lab) startServer() {
	addr := l.subnet + ".1:0"
	if l.url != "" {
		addr = strings.TrimPrefix(l.url, "http://")
	}
	l.server = l.start("", "", "server", "-addr", addr, "-data-dir", filepath.Join(l.dir, "server"))
	l.waitHealthy(l.server, func() string {
		if l.url == "" {
			if _, rest, ok := strings.Cut(l.server.output(), "url="); ok {
				l.url = strings.Fields(rest)[0]
			}
		}
		return l.url
	})
}

// waitHealthy waits until the server p answers GET /health at the URL url
// returns ("" while it is not known yet).
func (l *lab) waitHealthy(p *proc, url func() string) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if u := url(); u != "" {
			c, _ := api.NewClient(api.ClientConfig{Address: u})
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_, err := c.Health(ctx)
			cancel()
			if err == nil {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	l.t.Fatalf("server did not start:\n%s", p.output())
}

// client returns an API client with the root token.
func (l *lab) client() *api.Client {
	c, err := api.NewClient(api.ClientConfig{Address: l.url, Token: l.root})
	if err != nil {
		l.t.Fatal(err)
	}
	return c
}

// cleanup stops every process and deletes the namespaces.
func (l *lab) cleanup() {
	for _, h := range l.hosts {
		h.agent.kill(syscall.SIGTERM)
	}
	l.server.kill(syscall.SIGTERM)
	for i := len(l.procs) - 1; i >= 0; i-- { // servers before the etcd members they use
		l.procs[i].kill(syscall.SIGTERM)
	}
	exec.Command("ip", "link", "del", l.prefix+"-r").Run()
	if l.t.Failed() {
		l.t.Logf("server output:\n%s", tail(l.server.output()))
		for _, p := range l.procs {
			l.t.Logf("%s output:\n%s", p.name, tail(p.output()))
		}
		for _, h := range l.hosts {
			if h.agent != nil {
				l.t.Logf("agent %s output:\n%s", h.name, tail(h.agent.output()))
			}
		}
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 0 && strings.HasPrefix(f[0], l.prefix+"-") {
			exec.Command("ip", "netns", "del", f[0]).Run()
		}
	}
}

func tail(s string) string {
	lines := strings.Split(s, "\n")
	if len(lines) > 60 {
		lines = lines[len(lines)-60:]
	}
	return strings.Join(lines, "\n")
}

// addHost creates a host namespace and starts its agent with the join token.
func (l *lab) addHost(name, join string, extra ...string) *host {
	return l.addHostOf(name, l.url, join, extra...)
}

// addHostOf is addHost with the agent's -server list.
func (l *lab) addHostOf(name, servers, join string, extra ...string) *host {
	l.nextIP++
	h := &host{name: name, underlay: fmt.Sprintf("%s.%d", l.subnet, l.nextIP), dataDir: filepath.Join(l.dir, name), servers: servers}
	h.ns = l.attach(name, h.underlay)
	l.hosts[name] = h
	l.startAgent(h, join, extra...)
	return h
}

// startAgent (re)starts the host's agent with a fast drift period.
func (l *lab) startAgent(h *host, join string, extra ...string) {
	wgDir := filepath.Join(l.dir, h.name+"-run-wireguard")
	if err := os.MkdirAll(wgDir, 0o700); err != nil {
		l.t.Fatal(err)
	}
	if err := os.MkdirAll("/run/wireguard", 0o700); err != nil {
		l.t.Fatal(err)
	}
	args := []string{"agent", "-server", h.servers, "-data-dir", h.dataDir, "-name", h.name, "-backend", "userspace",
		"-drift-interval", "2s", "-heartbeat-interval", "1s", "-log-level", "debug"}
	if join != "" {
		args = append(args, "-join", join)
	}
	h.agent = l.start(h.ns, wgDir, append(args, extra...)...)
}

// exec runs a command inside the host's network (and, for wg, mount) namespace.
func (l *lab) exec(h *host, args ...string) (string, error) {
	full := append([]string{"-t", fmt.Sprint(h.agent.cmd.Process.Pid), "-n", "-m", "--"}, args...)
	out, err := exec.Command("nsenter", full...).CombinedOutput()
	return string(out), err
}

// ping sends one echo request from h to addr and reports whether it came
// back within 300ms (a tunnel drops what it cannot route, silently).
func (l *lab) ping(h *host, addr string) bool {
	_, err := exec.Command("ip", "netns", "exec", h.ns, "ping", "-c", "1", "-W", "0.3", addr).CombinedOutput()
	return err == nil
}

// eventually retries cond every 50ms until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		if cond() {
			return time.Since(start)
		}
		if time.Since(start) > timeout {
			t.Fatalf("after %v: %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// peerDump is one peer line of `wg show <iface> dump`.
type peerDump struct {
	PublicKey, Endpoint, AllowedIPs string
	LatestHandshake                 int64
}

// wgDump reads the interface with wireguard-tools, an independent reader.
func (l *lab) wgDump(h *host, iface string) (pub string, port string, peers map[string]peerDump, err error) {
	out, err := l.exec(h, "wg", "show", iface, "dump")
	if err != nil {
		return "", "", nil, fmt.Errorf("wg show %s dump: %v: %s", iface, err, out)
	}
	peers = map[string]peerDump{}
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(line, "\t")
		if i == 0 {
			if len(f) < 3 {
				return "", "", nil, fmt.Errorf("dump header %q", line)
			}
			pub, port = f[1], f[2]
			continue
		}
		if len(f) < 8 {
			return "", "", nil, fmt.Errorf("dump line %q", line)
		}
		var hs int64
		fmt.Sscan(f[4], &hs)
		peers[f[0]] = peerDump{PublicKey: f[0], Endpoint: f[2], AllowedIPs: f[3], LatestHandshake: hs}
	}
	return pub, port, peers, nil
}

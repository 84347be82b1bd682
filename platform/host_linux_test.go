package platform_test

// This file runs a Backend in a helper process inside a network namespace: the
// test binary re-executes itself under `ip netns exec <ns> unshare --mount`
// with a private tmpfs on /var/run/wireguard, and serves Backend calls as
// JSON over file descriptors 3 (requests) and 4 (responses). Running the
// whole process in the namespace matters: wireguard-go opens sockets from
// arbitrary OS threads.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/drago-wg/drago/platform"
)

// hostEnv, set in a helper process, names the backend kind it serves.
const hostEnv = "DRAGO_PLATFORM_TEST_HOST"

func TestMain(m *testing.M) {
	if kind, ok := os.LookupEnv(hostEnv); ok {
		os.Exit(serveHost(kind))
	}
	os.Exit(m.Run())
}

type hostRequest struct {
	Method string
	Name   string
	Prefix netip.Prefix
	MTU    int
	Config wgtypes.Config
	Argv   []string
}

type hostResponse struct {
	Err    string
	Is     string // "notexist" or "exist" when Err matches that sentinel
	Device *platform.Device
	Output string
}

// serveHost is the helper process: one backend, calls until EOF, then Close.
func serveHost(kind string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	in, out := json.NewDecoder(os.NewFile(3, "requests")), json.NewEncoder(os.NewFile(4, "responses"))
	b, err := platform.New(kind, log)
	if err != nil {
		log.Error("new backend", "err", err)
		return 1
	}
	var busy []net.Listener
	for {
		var req hostRequest
		if err := in.Decode(&req); err != nil {
			if err != io.EOF {
				log.Error("reading request", "err", err)
			}
			break
		}
		resp := hostResponse{}
		var err error
		switch req.Method {
		case "Name":
			resp.Output = b.Name()
		case "Device":
			resp.Device, err = b.Device(req.Name)
		case "CreateDevice":
			err = b.CreateDevice(req.Name)
		case "DeleteDevice":
			err = b.DeleteDevice(req.Name)
		case "ConfigureWireGuard":
			err = b.ConfigureWireGuard(req.Name, req.Config)
		case "SetMTU":
			err = b.SetMTU(req.Name, req.MTU)
		case "SetUp":
			err = b.SetUp(req.Name)
		case "AddAddress":
			err = b.AddAddress(req.Name, req.Prefix)
		case "DeleteAddress":
			err = b.DeleteAddress(req.Name, req.Prefix)
		case "AddRoute":
			err = b.AddRoute(req.Name, req.Prefix)
		case "DeleteRoute":
			err = b.DeleteRoute(req.Name, req.Prefix)
		case "Close":
			err = b.Close()
		case "exec":
			var o []byte
			o, err = exec.Command(req.Argv[0], req.Argv[1:]...).CombinedOutput()
			resp.Output = string(o)
		case "staleSocket": // a socket file nobody listens on
			var l *net.UnixListener
			l, err = net.ListenUnix("unix", &net.UnixAddr{Name: req.Name, Net: "unix"})
			if err == nil {
				l.SetUnlinkOnClose(false)
				err = l.Close()
			}
		case "busySocket": // a socket another process would hold
			var l net.Listener
			if l, err = net.Listen("unix", req.Name); err == nil {
				busy = append(busy, l)
			}
		default:
			err = fmt.Errorf("unknown method %q", req.Method)
		}
		if err != nil {
			resp.Err = err.Error()
			switch {
			case errors.Is(err, os.ErrNotExist):
				resp.Is = "notexist"
			case errors.Is(err, os.ErrExist):
				resp.Is = "exist"
			}
		}
		if err := out.Encode(resp); err != nil {
			log.Error("writing response", "err", err)
			return 1
		}
	}
	for _, l := range busy {
		l.Close()
	}
	if err := b.Close(); err != nil {
		log.Error("closing backend", "err", err)
		return 1
	}
	return 0
}

// host is a helper process seen from the test: a platform.Backend whose
// calls run in its network namespace, and a shell there.
type host struct {
	t    *testing.T
	ns   string
	cmd  *exec.Cmd
	reqs *os.File
	enc  *json.Encoder
	dec  *json.Decoder
	out  *syncBuffer
	done chan struct{} // closed when the process has exited

	mu       sync.Mutex
	stopOnce sync.Once
}

var _ platform.Backend = (*host)(nil)

// startHost starts a helper serving a backend of kind in ns. It stops when the
// test ends; its log is printed if the test failed.
func startHost(t *testing.T, ns, kind string) *host {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	reqR, reqW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	respR, respW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	const script = `mkdir -p /var/run/wireguard && mount -t tmpfs drago-test /var/run/wireguard && exec "$0"`
	h := &host{
		t:    t,
		ns:   ns,
		cmd:  exec.Command("ip", "netns", "exec", ns, "unshare", "--mount", "--propagation", "private", "sh", "-c", script, exe),
		reqs: reqW,
		enc:  json.NewEncoder(reqW),
		dec:  json.NewDecoder(respR),
		out:  new(syncBuffer),
		done: make(chan struct{}),
	}
	// Under -race, skip the race runtime's one-second sleep at exit.
	h.cmd.Env = append(os.Environ(), hostEnv+"="+kind, "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	h.cmd.ExtraFiles = []*os.File{reqR, respW}
	h.cmd.Stdout, h.cmd.Stderr = h.out, h.out
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reqR.Close()
	respW.Close()
	go func() {
		h.cmd.Wait()
		respR.Close()
		close(h.done)
	}()
	t.Cleanup(func() {
		h.stop()
		if t.Failed() {
			t.Logf("host %s log:\n%s", ns, h.out.String())
		}
	})
	return h
}

// stop ends the helper: EOF makes it close its backend and exit.
func (h *host) stop() { h.stopOnce.Do(h.stopNow) }

func (h *host) stopNow() {
	h.reqs.Close()
	select {
	case <-h.done:
	case <-time.After(10 * time.Second):
		h.cmd.Process.Kill()
		<-h.done
	}
	if code := h.cmd.ProcessState.ExitCode(); code != 0 {
		h.t.Errorf("host %s exited with %d", h.ns, code)
	}
}

func (h *host) call(req hostRequest) (hostResponse, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.enc.Encode(req); err != nil {
		return hostResponse{}, fmt.Errorf("host %s: %w", h.ns, err)
	}
	type result struct {
		resp hostResponse
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		var r result
		r.err = h.dec.Decode(&r.resp)
		ch <- r
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return hostResponse{}, fmt.Errorf("host %s: %s: %w", h.ns, req.Method, r.err)
		}
		if r.resp.Err != "" {
			return r.resp, remoteError{r.resp.Err, r.resp.Is}
		}
		return r.resp, nil
	case <-time.After(30 * time.Second):
		h.cmd.Process.Kill()
		return hostResponse{}, fmt.Errorf("host %s: %s timed out", h.ns, req.Method)
	}
}

// remoteError is an error from the helper; it matches os.ErrNotExist or
// os.ErrExist as the original did.
type remoteError struct{ msg, is string }

func (e remoteError) Error() string { return e.msg }
func (e remoteError) Is(target error) bool {
	return e.is == "notexist" && target == os.ErrNotExist || e.is == "exist" && target == os.ErrExist
}

func (h *host) do(req hostRequest) error {
	_, err := h.call(req)
	return err
}

func (h *host) Name() string {
	resp, err := h.call(hostRequest{Method: "Name"})
	if err != nil {
		h.t.Error(err)
	}
	return resp.Output
}

func (h *host) Device(name string) (*platform.Device, error) {
	resp, err := h.call(hostRequest{Method: "Device", Name: name})
	return resp.Device, err
}

func (h *host) CreateDevice(name string) error {
	return h.do(hostRequest{Method: "CreateDevice", Name: name})
}

func (h *host) DeleteDevice(name string) error {
	return h.do(hostRequest{Method: "DeleteDevice", Name: name})
}

func (h *host) ConfigureWireGuard(name string, cfg wgtypes.Config) error {
	return h.do(hostRequest{Method: "ConfigureWireGuard", Name: name, Config: cfg})
}

func (h *host) SetMTU(name string, mtu int) error {
	return h.do(hostRequest{Method: "SetMTU", Name: name, MTU: mtu})
}

func (h *host) SetUp(name string) error { return h.do(hostRequest{Method: "SetUp", Name: name}) }

func (h *host) AddAddress(name string, p netip.Prefix) error {
	return h.do(hostRequest{Method: "AddAddress", Name: name, Prefix: p})
}

func (h *host) DeleteAddress(name string, p netip.Prefix) error {
	return h.do(hostRequest{Method: "DeleteAddress", Name: name, Prefix: p})
}

func (h *host) AddRoute(name string, p netip.Prefix) error {
	return h.do(hostRequest{Method: "AddRoute", Name: name, Prefix: p})
}

func (h *host) DeleteRoute(name string, p netip.Prefix) error {
	return h.do(hostRequest{Method: "DeleteRoute", Name: name, Prefix: p})
}

func (h *host) Close() error { return h.do(hostRequest{Method: "Close"}) }

// run runs argv in the host's namespaces and returns its output; failing is
// fatal.
func (h *host) run(argv ...string) string {
	h.t.Helper()
	out, err := h.try(argv...)
	if err != nil {
		h.t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return out
}

// try runs argv in the host's namespaces.
func (h *host) try(argv ...string) (string, error) {
	resp, err := h.call(hostRequest{Method: "exec", Argv: argv})
	return resp.Output, err
}

// must fails the test if err is not nil.
func (h *host) must(err error) {
	h.t.Helper()
	if err != nil {
		h.t.Fatal(err)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// requirePrivileged skips unless DRAGO_PRIVILEGED_TESTS=1, and then fails
// when the test cannot run here.
func requirePrivileged(t *testing.T) {
	t.Helper()
	if os.Getenv("DRAGO_PRIVILEGED_TESTS") != "1" {
		t.Skip("privileged test: set DRAGO_PRIVILEGED_TESTS=1 to run it (needs root, ip, wg, ping, unshare)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("DRAGO_PRIVILEGED_TESTS=1 but not running as root")
	}
	for _, tool := range []string{"ip", "wg", "ping", "unshare", "mount", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("DRAGO_PRIVILEGED_TESTS=1 but %v", err)
		}
	}
}

// requireKind skips the kernel variant on hosts without the WireGuard module
// unless DRAGO_KERNEL_WG_TESTS=1 demands it.
func requireKind(t *testing.T, kind, ns string) {
	t.Helper()
	if kind != "kernel" || kernelWireGuard(t, ns) {
		return
	}
	if os.Getenv("DRAGO_KERNEL_WG_TESTS") == "1" {
		t.Fatal("DRAGO_KERNEL_WG_TESTS=1 but this host cannot create wireguard links")
	}
	t.Skip("no kernel WireGuard on this host; set DRAGO_KERNEL_WG_TESTS=1 to require it")
}

// kernelWireGuard reports whether ns can create a kernel WireGuard link.
func kernelWireGuard(t *testing.T, ns string) bool {
	if exec.Command("ip", "-n", ns, "link", "add", "dgpt-probe", "type", "wireguard").Run() != nil {
		return false
	}
	ipCmd(t, "-n", ns, "link", "del", "dgpt-probe")
	return true
}

// newNetns creates a network namespace that the test deletes at its end.
func newNetns(t *testing.T) string {
	t.Helper()
	ns := fmt.Sprintf("dgpt-%08x", rand.Uint32())
	ipCmd(t, "netns", "add", ns)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("deleting netns %s: %v: %s", ns, err, out)
		}
	})
	ipCmd(t, "-n", ns, "link", "set", "lo", "up")
	return ns
}

// veth joins two namespaces with a veth pair named a and b, addressed.
func veth(t *testing.T, nsA, a, addrA, nsB, b, addrB string) {
	t.Helper()
	ipCmd(t, "link", "add", a, "netns", nsA, "type", "veth", "peer", "name", b, "netns", nsB)
	for _, side := range [][3]string{{nsA, a, addrA}, {nsB, b, addrB}} {
		ipCmd(t, "-n", side[0], "addr", "add", side[2], "dev", side[1])
		ipCmd(t, "-n", side[0], "link", "set", side[1], "up")
	}
}

func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// socketPath is where wireguard-go serves name's UAPI socket.
func socketPath(name string) string { return filepath.Join("/var/run/wireguard", name+".sock") }

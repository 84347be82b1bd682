package agent

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/dns/dnsmessage"
)

// dnsServer is a tiny authoritative DNS server on loopback UDP answering A
// queries for one name with the addresses of the moment.
type dnsServer struct {
	conn  net.PacketConn
	mu    sync.Mutex
	name  string
	addrs []string
}

func startDNS(t *testing.T, name string, addrs ...string) *dnsServer {
	t.Helper()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &dnsServer{conn: conn, name: name + ".", addrs: addrs}
	t.Cleanup(func() { conn.Close() })
	go d.serve()
	return d
}

func (d *dnsServer) set(addrs ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.addrs = addrs
}

func (d *dnsServer) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := d.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		var p dnsmessage.Parser
		h, err := p.Start(buf[:n])
		if err != nil {
			continue
		}
		q, err := p.Question()
		if err != nil {
			continue
		}
		b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true})
		b.StartQuestions()
		b.Question(q)
		b.StartAnswers()
		d.mu.Lock()
		if q.Type == dnsmessage.TypeA && strings.EqualFold(q.Name.String(), d.name) {
			for _, a := range d.addrs {
				rh := dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 0}
				b.AResource(rh, dnsmessage.AResource{A: netip.MustParseAddr(a).As4()})
			}
		}
		d.mu.Unlock()
		if msg, err := b.Finish(); err == nil {
			d.conn.WriteTo(msg, from)
		}
	}
}

// lookup resolves through this server only, with Go's resolver.
func (d *dnsServer) lookup() lookupFunc {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "udp", d.conn.LocalAddr().String())
	}}
	return r.LookupHost
}

// serveOn runs an HTTP server answering its name on ip:port.
func serveOn(t *testing.T, ip string, port int, name string) *http.Server {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		io.WriteString(w, name+" "+r.Host+" "+string(body))
	})}
	go s.Serve(l)
	t.Cleanup(func() { s.Close() })
	return s
}

// TestFailoverResolvesAgain: a server name resolves (through a real DNS
// server) to two addresses; when both stop answering and the name now
// resolves to others, the same request goes to the new addresses (body
// replayed, Host the configured name), and the agent stays there.
func TestFailoverResolvesAgain(t *testing.T) {
	probe, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	port := probe.Addr().(*net.TCPAddr).Port
	probe.Close()
	a := serveOn(t, "127.0.0.2", port, "A")
	b := serveOn(t, "127.0.0.3", port, "B")
	dns := startDNS(t, "drago.test", "127.0.0.2", "127.0.0.3")
	var resolved [][]string
	url := "http://drago.test:" + strconv.Itoa(port)
	f, err := newFailover([]string{url}, http.DefaultTransport.(*http.Transport).Clone(), dns.lookup(), nil,
		func(ts []string) { resolved = append(resolved, ts) })
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: f}
	post := func(want string) {
		t.Helper()
		resp, err := c.Post(url+"/api/v1/agent/status", "text/plain", strings.NewReader("report"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want += " drago.test:" + strconv.Itoa(port) + " report"; string(body) != want {
			t.Errorf("answer %q, want %q", body, want)
		}
	}
	post("A")
	if len(resolved) != 0 {
		t.Errorf("resolved again while a server answered: %q", resolved)
	}

	// Both servers stop; the name still resolves to them: the request
	// fails, with the same targets kept.
	a.Close()
	b.Close()
	if _, err := c.Get(url); err == nil {
		t.Fatal("a request succeeded with every server stopped")
	}
	if len(resolved) != 0 {
		t.Errorf("targets replaced by the same addresses: %q", resolved)
	}

	// The cluster moves: the name resolves to new addresses, of which the
	// first is dead.
	serveOn(t, "127.0.0.5", port, "C")
	dns.set("127.0.0.4", "127.0.0.5")
	post("C")
	post("C")
	p := strconv.Itoa(port)
	want := [][]string{{"drago.test:" + p + " (127.0.0.4:" + p + ")", "drago.test:" + p + " (127.0.0.5:" + p + ")"}}
	if diff := cmp.Diff(want, resolved); diff != "" {
		t.Errorf("resolutions (-want +got):\n%s", diff)
	}
}

// TestResolveTargets: a name with several addresses is one target per
// address; one address, no address or an IP is dialed as configured.
func TestResolveTargets(t *testing.T) {
	lookup := func(_ context.Context, host string) ([]string, error) {
		switch host {
		case "many":
			return []string{"10.0.0.1", "10.0.0.2"}, nil
		case "one":
			return []string{"10.0.0.3"}, nil
		}
		return nil, errors.New("no such host")
	}
	f, err := newFailover([]string{"https://many", "http://one:8080", "http://gone:1", "http://10.0.0.9:2"}, &http.Transport{}, lookup, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"many (10.0.0.1:443)", "many (10.0.0.2:443)", "one:8080", "gone:1", "10.0.0.9:2"}
	if diff := cmp.Diff(want, targetNames(f.targets)); diff != "" {
		t.Errorf("targets (-want +got):\n%s", diff)
	}
}

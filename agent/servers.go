package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Several servers. Config.Server may list several addresses (a cluster of
// servers sharing etcd), and a name may resolve to several IP addresses:
// each address is a target. The agent talks to one target at a time; when a
// request to it fails (no connection, a broken one, or 503 from a server
// cut off from its store) the same request goes at once to the next target,
// and the agent stays there. The blocking query then resumes from the index
// the agent holds: servers of one cluster share the index, so the next
// server answers with a delta when it can.

// splitServers returns the addresses listed in a Server setting: separated
// by commas, blanks trimmed.
func splitServers(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// target is one server address: the URL's scheme and host, and the IP
// address to dial when its host name resolved to several ("" dials the
// name as usual).
type target struct {
	url  *url.URL
	addr string
	rt   http.RoundTripper
}

// failover is a RoundTripper over the targets of the configured servers.
type failover struct {
	mu      sync.Mutex
	targets []target
	cur     int
	onMove  func(from, to string)
}

// newFailover builds the targets of servers (http(s)://host:port each) on
// transport base, resolving each name to its addresses.
func newFailover(servers []string, base *http.Transport, onMove func(from, to string)) (*failover, error) {
	f := &failover{onMove: onMove}
	for _, s := range servers {
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("agent config: Server: %q: %w", s, err)
		}
		host, port := u.Hostname(), u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		var addrs []string
		if net.ParseIP(host) == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			addrs, _ = net.DefaultResolver.LookupHost(ctx, host) // unresolvable now: dial the name later
			cancel()
		}
		if len(addrs) < 2 {
			f.targets = append(f.targets, target{url: u, rt: base})
			continue
		}
		for _, a := range addrs {
			pinned := net.JoinHostPort(a, port)
			tr := base.Clone()
			d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
			tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, pinned)
			}
			f.targets = append(f.targets, target{url: u, addr: pinned, rt: tr})
		}
	}
	return f, nil
}

func (t target) String() string {
	if t.addr != "" {
		return t.url.Host + " (" + t.addr + ")"
	}
	return t.url.Host
}

// RoundTrip sends req to the current target, and on failure to each other
// target in turn, staying with the first that answers.
func (f *failover) RoundTrip(req *http.Request) (*http.Response, error) {
	f.mu.Lock()
	start := f.cur
	f.mu.Unlock()
	n := len(f.targets)
	var lastErr error
	for k := range n {
		i := (start + k) % n
		t := f.targets[i]
		r := req.Clone(req.Context())
		r.URL.Scheme, r.URL.Host, r.Host = t.url.Scheme, t.url.Host, ""
		if k > 0 && req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return nil, lastErr // the body is spent: the caller retries
			}
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			r.Body = body
		}
		resp, err := t.rt.RoundTrip(r)
		if err == nil && resp.StatusCode != http.StatusServiceUnavailable {
			f.moveTo(start, i)
			return resp, nil
		}
		if req.Context().Err() != nil {
			return resp, err
		}
		if k == n-1 {
			f.moveTo(start, (i+1)%n) // all failed: start with the next one next time
			return resp, err
		}
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			err = errors.New(resp.Status)
		}
		lastErr = err
	}
	return nil, lastErr
}

// moveTo makes target i the current one.
func (f *failover) moveTo(from, i int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur != from || from == i {
		return
	}
	f.cur = i
	if f.onMove != nil {
		f.onMove(f.targets[from].String(), f.targets[i].String())
	}
}

// CloseIdleConnections closes the idle connections of every target.
func (f *failover) CloseIdleConnections() {
	seen := map[http.RoundTripper]bool{}
	for _, t := range f.targets {
		if c, ok := t.rt.(interface{ CloseIdleConnections() }); ok && !seen[t.rt] {
			seen[t.rt] = true
			c.CloseIdleConnections()
		}
	}
}

package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
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
// server answers with a delta when it can. Names are resolved at start and
// again whenever every target failed a request.

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
// When every target failed a request, it resolves the names again: a
// cluster whose servers changed addresses is followed.
type failover struct {
	servers   []*url.URL
	base      *http.Transport
	lookup    lookupFunc
	onMove    func(from, to string)
	onResolve func(targets []string)

	mu      sync.Mutex
	targets []target
	gen     int // bumped when the targets are replaced
	cur     int
}

// lookupFunc resolves a host name to its addresses.
type lookupFunc func(ctx context.Context, host string) ([]string, error)

// lookupTimeout bounds the resolution of one name.
const lookupTimeout = 5 * time.Second

// newFailover builds the targets of servers (http(s)://host:port each) on
// transport base, resolving each name to its addresses with lookup
// (nil: the system's resolver). onMove is told of each move to another
// target, onResolve of targets a new resolution replaced.
func newFailover(servers []string, base *http.Transport, lookup lookupFunc, onMove func(from, to string), onResolve func(targets []string)) (*failover, error) {
	if lookup == nil {
		lookup = net.DefaultResolver.LookupHost
	}
	f := &failover{base: base, lookup: lookup, onMove: onMove, onResolve: onResolve}
	for _, s := range servers {
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("agent config: Server: %q: %w", s, err)
		}
		f.servers = append(f.servers, u)
	}
	f.targets = f.resolve(context.Background())
	return f, nil
}

// resolve returns the targets of the configured servers as their names
// resolve now.
func (f *failover) resolve(ctx context.Context) []target {
	var out []target
	for _, u := range f.servers {
		host, port := u.Hostname(), u.Port()
		if port == "" {
			port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
		}
		var addrs []string
		if net.ParseIP(host) == nil {
			lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
			addrs, _ = f.lookup(lctx, host) // unresolvable now: dial the name later
			cancel()
		}
		if len(addrs) < 2 {
			out = append(out, target{url: u, rt: f.base})
			continue
		}
		for _, a := range addrs {
			pinned := net.JoinHostPort(a, port)
			tr := f.base.Clone()
			d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
			tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
				return d.DialContext(ctx, network, pinned)
			}
			out = append(out, target{url: u, addr: pinned, rt: tr})
		}
	}
	return out
}

// reresolve resolves the names again after targets of generation gen all
// failed, and reports whether it replaced them (the addresses changed).
func (f *failover) reresolve(ctx context.Context, gen int) bool {
	ts := f.resolve(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gen != gen {
		return true // another request replaced them meanwhile
	}
	if slices.Equal(targetNames(ts), targetNames(f.targets)) {
		return false
	}
	old := f.targets
	f.targets, f.cur = ts, 0
	f.gen++
	closeIdle(old)
	if f.onResolve != nil {
		f.onResolve(targetNames(ts))
	}
	return true
}

// targetNames returns the targets as their logs name them.
func targetNames(ts []target) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.String()
	}
	return out
}

func (t target) String() string {
	if t.addr != "" {
		return t.url.Host + " (" + t.addr + ")"
	}
	return t.url.Host
}

// RoundTrip sends req to the current target, and on failure to each other
// target in turn, staying with the first that answers. When all failed, it
// resolves the names again and, if the addresses changed, tries the new
// targets in turn.
func (f *failover) RoundTrip(req *http.Request) (*http.Response, error) {
	f.mu.Lock()
	gen := f.gen
	f.mu.Unlock()
	resp, failed, err := f.try(req, false)
	if !failed || req.Context().Err() != nil || !f.reresolve(req.Context(), gen) {
		return resp, err
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		return resp, err // the body is spent: the caller retries
	}
	if resp != nil {
		resp.Body.Close()
	}
	resp, _, err = f.try(req, true)
	return resp, err
}

// try sends req to each target in turn from the current one (replaying its
// body from the first when replay is set), and reports whether all failed.
func (f *failover) try(req *http.Request, replay bool) (*http.Response, bool, error) {
	f.mu.Lock()
	ts, start, gen := f.targets, f.cur, f.gen
	f.mu.Unlock()
	n := len(ts)
	var lastErr error
	for k := range n {
		i := (start + k) % n
		t := ts[i]
		r := req.Clone(req.Context())
		r.URL.Scheme, r.URL.Host, r.Host = t.url.Scheme, t.url.Host, ""
		if (k > 0 || replay) && req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return nil, false, lastErr // the body is spent: the caller retries
			}
			body, err := req.GetBody()
			if err != nil {
				return nil, false, err
			}
			r.Body = body
		}
		resp, err := t.rt.RoundTrip(r)
		if err == nil && resp.StatusCode != http.StatusServiceUnavailable {
			f.moveTo(gen, start, i)
			return resp, false, nil
		}
		if req.Context().Err() != nil {
			return resp, false, err
		}
		if k == n-1 {
			f.moveTo(gen, start, (i+1)%n) // all failed: start with the next one next time
			return resp, true, err
		}
		if err == nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			err = errors.New(resp.Status)
		}
		lastErr = err
	}
	return nil, false, lastErr
}

// moveTo makes target i of generation gen the current one.
func (f *failover) moveTo(gen, from, i int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gen != gen || f.cur != from || from == i {
		return
	}
	f.cur = i
	if f.onMove != nil {
		f.onMove(f.targets[from].String(), f.targets[i].String())
	}
}

// CloseIdleConnections closes the idle connections of every target.
func (f *failover) CloseIdleConnections() {
	f.mu.Lock()
	defer f.mu.Unlock()
	closeIdle(f.targets)
}

// closeIdle closes the idle connections of targets.
func closeIdle(ts []target) {
	seen := map[http.RoundTripper]bool{}
	for _, t := range ts {
		if c, ok := t.rt.(interface{ CloseIdleConnections() }); ok && !seen[t.rt] {
			seen[t.rt] = true
			c.CloseIdleConnections()
		}
	}
}

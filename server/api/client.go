package api

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// ClientConfig says where the server is and how to authenticate.
type ClientConfig struct {
	Address    string       // e.g. http://127.0.0.1:8080
	Token      string       // bearer secret: management token, join token or host credential
	CACert     string       // PEM file to trust for https, optional
	HTTPClient *http.Client // optional; overrides CACert
}

// Client is the typed client of the Drago REST API.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// ResponseError is a failed API call: the HTTP status and the server's message.
type ResponseError struct {
	Status  int
	Message string
	Field   string
}

func (e *ResponseError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s (field %q, status %d)", e.Message, e.Field, e.Status)
	}
	return fmt.Sprintf("%s (status %d)", e.Message, e.Status)
}

// StatusOf reports the HTTP status of a ResponseError in err, or 0.
func StatusOf(err error) int {
	var re *ResponseError
	if errors.As(err, &re) {
		return re.Status
	}
	return 0
}

// NewClient checks the configuration and returns a client.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.Address == "" {
		cfg.Address = "http://127.0.0.1:8080"
	}
	u, err := url.Parse(cfg.Address)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server address %q: want http(s)://host:port", cfg.Address)
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		if cfg.CACert != "" {
			pem, err := os.ReadFile(cfg.CACert)
			if err != nil {
				return nil, fmt.Errorf("reading CA certificate: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("CA certificate %s: no PEM certificate found", cfg.CACert)
			}
			hc.Transport.(*http.Transport).TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		}
	}
	return &Client{base: u, token: cfg.Token, http: hc}, nil
}

// Address reports the server address the client talks to.
func (c *Client) Address() string { return c.base.String() }

// Do sends one request; body is encoded as JSON when not nil and out, when not
// nil, receives the decoded answer (a *string receives the raw text).
func (c *Client) Do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + "/api/v1" + path
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encoding request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if method == http.MethodPut {
		// A PUT replaces: net/http may resend it when the server closed the
		// kept-alive connection as it went out (the key is not sent).
		req.Header["Idempotency-Key"] = nil
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e Error
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
		if json.Unmarshal(raw, &e) != nil || e.Err.Message == "" {
			e.Err.Message = strings.TrimSpace(string(raw))
			if e.Err.Message == "" {
				e.Err.Message = http.StatusText(resp.StatusCode)
			}
		}
		return &ResponseError{Status: resp.StatusCode, Message: e.Err.Message, Field: e.Err.Field}
	}
	switch o := out.(type) {
	case nil:
		_, err = io.Copy(io.Discard, resp.Body)
		return err
	case *string:
		b, err := io.ReadAll(resp.Body)
		*o = string(b)
		return err
	default:
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return fmt.Errorf("decoding %s %s: %w", method, path, err)
		}
		return nil
	}
}

// ListOptions filter and page list calls.
type ListOptions struct {
	Limit, Offset int
	Query         string // name prefix
	Network       string
	Host          string
	Interface     string
	Status        string
	Label         string // key=value
	Firewall      string // "behind": interfaces that do not enforce their access policy
}

func (o ListOptions) values() url.Values {
	v := url.Values{}
	set := func(k, val string) {
		if val != "" {
			v.Set(k, val)
		}
	}
	if o.Limit > 0 {
		v.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Offset > 0 {
		v.Set("offset", strconv.Itoa(o.Offset))
	}
	set("q", o.Query)
	set("network", o.Network)
	set("host", o.Host)
	set("interface", o.Interface)
	set("status", o.Status)
	set("label", o.Label)
	set("firewall", o.Firewall)
	return v
}

func get[T any](ctx context.Context, c *Client, path string, q url.Values) (*T, error) {
	var out T
	if err := c.Do(ctx, http.MethodGet, path, q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func send[T any](ctx context.Context, c *Client, method, path string, body any) (*T, error) {
	var out T
	if err := c.Do(ctx, method, path, nil, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func esc(s string) string { return url.PathEscape(s) }

// Health asks whether the server is up; it needs no token.
func (c *Client) Health(ctx context.Context) (*Health, error) {
	return get[Health](ctx, c, "/health", nil)
}

// Overview returns the server's counts of objects and host states.
func (c *Client) Overview(ctx context.Context) (*Overview, error) {
	return get[Overview](ctx, c, "/status", nil)
}

// Events returns the changes after index, waiting up to wait for one.
func (c *Client) Events(ctx context.Context, index uint64, wait time.Duration) (*Events, error) {
	return get[Events](ctx, c, "/events", blocking(index, wait))
}

func blocking(index uint64, wait time.Duration) url.Values {
	q := url.Values{}
	q.Set("index", strconv.FormatUint(index, 10))
	if wait > 0 {
		q.Set("wait", wait.String())
	}
	return q
}

// Networks lists networks.
func (c *Client) Networks(ctx context.Context, o ListOptions) (*List[Network], error) {
	return get[List[Network]](ctx, c, "/networks", o.values())
}

// Network reads a network by name or id.
func (c *Client) Network(ctx context.Context, ref string) (*Network, error) {
	return get[Network](ctx, c, "/networks/"+esc(ref), nil)
}

// CreateNetwork creates a network; zero fields take the server's defaults.
func (c *Client) CreateNetwork(ctx context.Context, n *Network) (*Network, error) {
	return send[Network](ctx, c, http.MethodPost, "/networks", n)
}

// UpdateNetwork changes the fields given in patch (JSON merge semantics).
func (c *Client) UpdateNetwork(ctx context.Context, ref string, patch map[string]any) (*Network, error) {
	return send[Network](ctx, c, http.MethodPatch, "/networks/"+esc(ref), patch)
}

// DeleteNetwork deletes a network with its interfaces and connections.
func (c *Client) DeleteNetwork(ctx context.Context, ref string) error {
	return c.Do(ctx, http.MethodDelete, "/networks/"+esc(ref), nil, nil, nil)
}

// Topology returns a network's interfaces and connections as a graph.
func (c *Client) Topology(ctx context.Context, ref string) (*Topology, error) {
	return get[Topology](ctx, c, "/networks/"+esc(ref)+"/topology", nil)
}

// Hosts lists hosts.
func (c *Client) Hosts(ctx context.Context, o ListOptions) (*List[Host], error) {
	return get[List[Host]](ctx, c, "/hosts", o.values())
}

// Host reads a host by name or id.
func (c *Client) Host(ctx context.Context, ref string) (*Host, error) {
	return get[Host](ctx, c, "/hosts/"+esc(ref), nil)
}

// UpdateHost changes a host's name, labels or advertised address.
func (c *Client) UpdateHost(ctx context.Context, ref string, patch map[string]any) (*Host, error) {
	return send[Host](ctx, c, http.MethodPatch, "/hosts/"+esc(ref), patch)
}

// DeleteHost deletes a host, its interfaces and its credential.
func (c *Client) DeleteHost(ctx context.Context, ref string) error {
	return c.Do(ctx, http.MethodDelete, "/hosts/"+esc(ref), nil, nil, nil)
}

// HostStatus returns the host's last status report.
func (c *Client) HostStatus(ctx context.Context, ref string) (*StatusReport, error) {
	return get[StatusReport](ctx, c, "/hosts/"+esc(ref)+"/status", nil)
}

// RotateKeys asks the host's agent to rotate its interfaces' keys.
func (c *Client) RotateKeys(ctx context.Context, ref string) (*Host, error) {
	return send[Host](ctx, c, http.MethodPost, "/hosts/"+esc(ref)+"/rotate-keys", nil)
}

// Interfaces lists interfaces.
func (c *Client) Interfaces(ctx context.Context, o ListOptions) (*List[Interface], error) {
	return get[List[Interface]](ctx, c, "/interfaces", o.values())
}

// Interface reads an interface.
func (c *Client) Interface(ctx context.Context, id string) (*Interface, error) {
	return get[Interface](ctx, c, "/interfaces/"+esc(id), nil)
}

// CreateInterface adds a host to a network.
func (c *Client) CreateInterface(ctx context.Context, i *Interface) (*Interface, error) {
	return send[Interface](ctx, c, http.MethodPost, "/interfaces", i)
}

// UpdateInterface changes the fields given in patch.
func (c *Client) UpdateInterface(ctx context.Context, id string, patch map[string]any) (*Interface, error) {
	return send[Interface](ctx, c, http.MethodPatch, "/interfaces/"+esc(id), patch)
}

// DeleteInterface removes an interface and its connections.
func (c *Client) DeleteInterface(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/interfaces/"+esc(id), nil, nil, nil)
}

// InterfaceConfig returns the wg-quick view of an interface, without private key.
func (c *Client) InterfaceConfig(ctx context.Context, id string) (string, error) {
	var s string
	err := c.Do(ctx, http.MethodGet, "/interfaces/"+esc(id)+"/config", nil, nil, &s)
	return s, err
}

// Devices lists plain WireGuard devices.
func (c *Client) Devices(ctx context.Context, o ListOptions) (*List[Interface], error) {
	return get[List[Interface]](ctx, c, "/devices", o.values())
}

// CreateDevice registers a plain WireGuard device by its public key.
func (c *Client) CreateDevice(ctx context.Context, d *DeviceRequest) (*Interface, error) {
	return send[Interface](ctx, c, http.MethodPost, "/devices", d)
}

// DeleteDevice removes a device.
func (c *Client) DeleteDevice(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/devices/"+esc(id), nil, nil, nil)
}

// Connections lists explicit connections.
func (c *Client) Connections(ctx context.Context, o ListOptions) (*List[Connection], error) {
	return get[List[Connection]](ctx, c, "/connections", o.values())
}

// Connection reads a connection.
func (c *Client) Connection(ctx context.Context, id string) (*Connection, error) {
	return get[Connection](ctx, c, "/connections/"+esc(id), nil)
}

// CreateConnection links two interfaces.
func (c *Client) CreateConnection(ctx context.Context, conn *Connection) (*Connection, error) {
	return send[Connection](ctx, c, http.MethodPost, "/connections", conn)
}

// UpdateConnection changes the fields given in patch.
func (c *Client) UpdateConnection(ctx context.Context, id string, patch map[string]any) (*Connection, error) {
	return send[Connection](ctx, c, http.MethodPatch, "/connections/"+esc(id), patch)
}

// DeleteConnection removes a connection.
func (c *Client) DeleteConnection(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/connections/"+esc(id), nil, nil, nil)
}

// Rules lists access rules, by network and position.
func (c *Client) Rules(ctx context.Context, o ListOptions) (*List[Rule], error) {
	return get[List[Rule]](ctx, c, "/rules", o.values())
}

// Rule reads an access rule.
func (c *Client) Rule(ctx context.Context, id string) (*Rule, error) {
	return get[Rule](ctx, c, "/rules/"+esc(id), nil)
}

// CreateRule adds an access rule to a network's policy.
func (c *Client) CreateRule(ctx context.Context, r *RuleRequest) (*Rule, error) {
	return send[Rule](ctx, c, http.MethodPost, "/rules", r)
}

// UpdateRule changes the fields given in patch; a position moves the rule.
func (c *Client) UpdateRule(ctx context.Context, id string, patch map[string]any) (*Rule, error) {
	return send[Rule](ctx, c, http.MethodPatch, "/rules/"+esc(id), patch)
}

// DeleteRule removes an access rule.
func (c *Client) DeleteRule(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/rules/"+esc(id), nil, nil, nil)
}

// CheckRule asks which action a network's policy takes for a flow.
func (c *Client) CheckRule(ctx context.Context, q *RuleCheck) (*RuleVerdict, error) {
	return send[RuleVerdict](ctx, c, http.MethodPost, "/rules/check", q)
}

// Tokens lists management tokens (without secrets).
func (c *Client) Tokens(ctx context.Context, o ListOptions) (*List[Token], error) {
	return get[List[Token]](ctx, c, "/tokens", o.values())
}

// Token reads a management token; "self" is the caller's.
func (c *Client) Token(ctx context.Context, id string) (*Token, error) {
	return get[Token](ctx, c, "/tokens/"+esc(id), nil)
}

// CreateToken creates a management token; the answer holds its secret once.
func (c *Client) CreateToken(ctx context.Context, t *Token) (*Token, error) {
	return send[Token](ctx, c, http.MethodPost, "/tokens", t)
}

// DeleteToken revokes a management token.
func (c *Client) DeleteToken(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/tokens/"+esc(id), nil, nil, nil)
}

// JoinTokens lists join tokens (without secrets).
func (c *Client) JoinTokens(ctx context.Context, o ListOptions) (*List[JoinToken], error) {
	return get[List[JoinToken]](ctx, c, "/join-tokens", o.values())
}

// JoinToken reads a join token.
func (c *Client) JoinToken(ctx context.Context, id string) (*JoinToken, error) {
	return get[JoinToken](ctx, c, "/join-tokens/"+esc(id), nil)
}

// CreateJoinToken creates a join token; the answer holds its secret once.
func (c *Client) CreateJoinToken(ctx context.Context, t *JoinToken) (*JoinToken, error) {
	return send[JoinToken](ctx, c, http.MethodPost, "/join-tokens", t)
}

// DeleteJoinToken revokes a join token.
func (c *Client) DeleteJoinToken(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/join-tokens/"+esc(id), nil, nil, nil)
}

// HostHistory returns the last hour of a host's counters.
func (c *Client) HostHistory(ctx context.Context, ref string) (*HostHistory, error) {
	return get[HostHistory](ctx, c, "/hosts/"+esc(ref)+"/history", nil)
}

// PeeringHistory returns the last hour of the counters between an interface
// and a peer interface of its network (an implicit connection has no id).
func (c *Client) PeeringHistory(ctx context.Context, iface, peer string) (*ConnectionHistory, error) {
	return get[ConnectionHistory](ctx, c, "/interfaces/"+esc(iface)+"/history", url.Values{"peer": {peer}})
}

// AuditOptions filter and page the audit trail; zero fields match all.
type AuditOptions struct {
	Since, Until time.Time
	Token        string // the acting credential's id or name
	Object       string // the object's id or name
	Kind         string // network, host, interface, ...
	Method       string // POST, PUT, PATCH or DELETE
	Limit        int
	Offset       int
}

// Audit lists the audit trail's entries the token may see, newest first.
func (c *Client) Audit(ctx context.Context, o AuditOptions) (*List[AuditEntry], error) {
	q := ListOptions{Limit: o.Limit, Offset: o.Offset}.values()
	for k, v := range map[string]string{"token": o.Token, "object": o.Object, "kind": o.Kind, "method": o.Method} {
		if v != "" {
			q.Set(k, v)
		}
	}
	for k, t := range map[string]time.Time{"since": o.Since, "until": o.Until} {
		if !t.IsZero() {
			q.Set(k, t.UTC().Format(time.RFC3339Nano))
		}
	}
	return get[List[AuditEntry]](ctx, c, "/audit", q)
}

// Register joins a host with the join token the client was made with.
func (c *Client) Register(ctx context.Context, r *RegisterRequest) (*RegisterResponse, error) {
	return send[RegisterResponse](ctx, c, http.MethodPost, "/agent/register", r)
}

// DesiredState returns the host's desired state once its index passes index,
// waiting up to wait (a blocking query); index 0 answers at once.
func (c *Client) DesiredState(ctx context.Context, index uint64, wait time.Duration) (*DesiredState, error) {
	return get[DesiredState](ctx, c, "/agent/config", blocking(index, wait))
}

// DesiredDelta is DesiredState answered, when the server can, with a delta
// on the state of index (see DesiredState.BaseIndex).
func (c *Client) DesiredDelta(ctx context.Context, index uint64, wait time.Duration) (*DesiredState, error) {
	q := blocking(index, wait)
	q.Set("delta", "true")
	return get[DesiredState](ctx, c, "/agent/config", q)
}

// ReportStatus sends the agent's status report and heartbeat.
func (c *Client) ReportStatus(ctx context.Context, r *StatusReport) error {
	return c.Do(ctx, http.MethodPut, "/agent/status", nil, r, nil)
}

// IsLoopback reports whether addr, a server URL or a host:port, names this
// machine only (localhost or a loopback address).
func IsLoopback(addr string) bool {
	host := addr
	if u, err := url.Parse(addr); err == nil && u.Scheme != "" && u.Host != "" {
		host = u.Hostname()
	} else if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// Cluster describes the servers sharing the store.
func (c *Client) Cluster(ctx context.Context) (*Cluster, error) {
	return get[Cluster](ctx, c, "/cluster", nil)
}

// Snapshot reads every stored object (root token only).
func (c *Client) Snapshot(ctx context.Context) (*Snapshot, error) {
	return get[Snapshot](ctx, c, "/operator/snapshot", nil)
}

// RestoreSnapshot replaces every stored object with the snapshot's (root
// token only).
func (c *Client) RestoreSnapshot(ctx context.Context, s *Snapshot) (*SnapshotRestored, error) {
	return send[SnapshotRestored](ctx, c, http.MethodPost, "/operator/snapshot", s)
}

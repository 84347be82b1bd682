package server

import (
	"net/http"
	"time"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/state"
)

// Query parameters of list and blocking calls, for the OpenAPI document.
var (
	listQuery     = []string{"q", "limit", "offset"}
	blockingQuery = []string{"index", "wait"}
)

const (
	read  = state.AccessRead
	write = state.AccessWrite
)

// routes lists every API endpoint, relative to /api/v1.
func (s *Server) routes() []route {
	mgmt := func(method, path, resource, access, summary string, h func(*request) (any, error)) route {
		return route{method: method, path: path, auth: authManagement, resource: resource, access: access, summary: summary, handle: h}
	}
	return []route{
		{method: "GET", path: "/health", summary: "Server health (no auth); 503 while the server is cut off from its store (etcd)", answer: api.Health{}, handle: func(r *request) (any, error) {
			if err := r.st.Healthy(); err != nil {
				return nil, err
			}
			return api.Health{Status: "ok", Version: api.Version}, nil
		}},
		{method: "GET", path: "/openapi.json", summary: "This API's OpenAPI 3 document (no auth)", answer: map[string]any{}, handle: func(*request) (any, error) {
			return s.openAPI(), nil
		}},
		mgmt("GET", "/status", "hosts", read, "Counts of the networks, hosts by status, interfaces and devices the token sees", func(r *request) (any, error) {
			return r.st.Overview(r.who), nil
		}).with(nil, api.Overview{}),
		// Metrics count the whole fleet: a grant limited to networks is not enough.
		mgmt("GET", "/metrics", "metrics", read, "The server's Prometheus metrics (text exposition format), for a token with a metrics read policy on no particular network; also served without auth on -metrics-addr", func(r *request) (any, error) {
			if !r.who.Allowed("metrics", read, "") {
				return nil, &apiError{status: http.StatusForbidden, message: "metrics cover the whole fleet: they take a metrics policy not limited to networks"}
			}
			return s.metrics.handler(), nil
		}).with(nil, text("")),
		func() route {
			rt := mgmt("GET", "/cluster", "hosts", read, "The servers sharing the store, the one running the cluster's jobs, and whether this server is up to date with its store (answers while it is not)", func(r *request) (any, error) {
				return s.cluster(r.Context())
			}).with(nil, api.Cluster{})
			rt.unhealthyOK = true
			return rt
		}(),
		mgmt("GET", "/operator/snapshot", "tokens", write, "Every stored object, credentials' hashes included, read in one transaction: a backup, or a move to another store (root token only)", func(r *request) (any, error) {
			if err := rootOnly(r); err != nil {
				return nil, err
			}
			return r.st.Snapshot()
		}).with(nil, api.Snapshot{}),
		func() route {
			rt := mgmt("POST", "/operator/snapshot", "tokens", write, "Replace every stored object with a snapshot's; every agent then gets its whole desired state (root token only)", func(r *request) (any, error) {
				if err := rootOnly(r); err != nil {
					return nil, err
				}
				var snap api.Snapshot
				if err := r.decode(&snap, true); err != nil {
					return nil, err
				}
				return r.st.Restore(&snap)
			}).with(api.Snapshot{}, api.SnapshotRestored{})
			rt.maxBody = maxSnapshot
			return rt
		}(),
		mgmt("GET", "/events", "networks", read, "Recent changes the token may see after ?index=, a blocking query with ?wait=", func(r *request) (any, error) {
			index, wait, err := r.blocking(30 * time.Second)
			if err != nil {
				return nil, err
			}
			return r.st.Events(r.Context(), r.who, index, wait)
		}).with(nil, api.Events{}, blockingQuery...),

		mgmt("GET", "/networks", "networks", read, "List networks (?q= name prefix)", func(r *request) (any, error) {
			f, err := r.filter()
			f.Networks = r.who.NetworkScope("networks")
			return r.st.Networks(f), err
		}).with(nil, api.List[api.Network]{}, listQuery...),
		mgmt("POST", "/networks", "networks", write, "Create a network", func(r *request) (any, error) {
			var n api.Network
			if err := r.decode(&n, true); err != nil {
				return nil, err
			}
			if !r.who.Allowed("networks", write, "") {
				return nil, forbiddenNet()
			}
			out, err := r.st.CreateNetwork(n)
			return created{out}, err
		}).with(api.Network{}, created{api.Network{}}),
		mgmt("GET", "/networks/{network}", "networks", read, "Read a network by name or id", func(r *request) (any, error) {
			return r.network(read)
		}).with(nil, api.Network{}),
		mgmt("PATCH", "/networks/{network}", "networks", write, "Change a network's fields", func(r *request) (any, error) {
			n, err := r.network(write)
			if err != nil {
				return nil, err
			}
			edit, err := r.edit()
			if err != nil {
				return nil, err
			}
			return r.st.UpdateNetwork(n.ID, func(n *api.Network) error { return edit(n) })
		}).with(api.Network{}, api.Network{}),
		mgmt("DELETE", "/networks/{network}", "networks", write, "Delete a network with its interfaces and connections", func(r *request) (any, error) {
			n, err := r.network(write)
			if err != nil {
				return nil, err
			}
			return noContent{}, r.st.DeleteNetwork(n.ID)
		}).with(nil, noContent{}),
		mgmt("GET", "/networks/{network}/topology", "networks", read, "A network's graph: a summary, a page of nodes (?limit=, ?offset=) and the edges asked for (?edges=all|problems|none, ?node=<interface id>, ?edge_limit=, ?edge_offset=)", func(r *request) (any, error) {
			n, err := r.network(read)
			if err != nil {
				return nil, err
			}
			q := r.URL.Query()
			tq := state.TopologyQuery{Limit: state.DefaultTopologyNodes, EdgeLimit: state.DefaultTopologyEdges, Edges: q.Get("edges"), Node: q.Get("node")}
			for _, p := range []struct {
				name   string
				v      *int
				lo, hi int
			}{
				{"limit", &tq.Limit, 0, state.MaxTopologyNodes},
				{"offset", &tq.Offset, 0, 1<<31 - 1},
				{"edge_limit", &tq.EdgeLimit, 1, state.MaxTopologyEdges},
				{"edge_offset", &tq.EdgeOffset, 0, 1<<31 - 1},
			} {
				if q.Has(p.name) {
					if *p.v, err = intParam(q, p.name, p.lo, p.hi); err != nil {
						return nil, err
					}
				}
			}
			if len(tq.Node) > maxRef {
				return nil, badRequest("node", "is longer than %d characters", maxRef)
			}
			return r.st.Topology(n.ID, tq)
		}).with(nil, api.Topology{}, "limit", "offset", "edges", "node", "edge_limit", "edge_offset"),

		// A host is in the networks of its interfaces: a scoped token sees
		// it through one of them and changes it only with all of them.
		mgmt("GET", "/hosts", "hosts", read, "List hosts (?q=, ?status=, ?label=k=v)", func(r *request) (any, error) {
			f, err := r.filter()
			return r.st.Hosts(r.who, f), err
		}).with(nil, api.List[api.Host]{}, "q", "limit", "offset", "status", "label"),
		mgmt("GET", "/hosts/{host}", "hosts", read, "Read a host by name or id", func(r *request) (any, error) {
			return r.st.Host(r.who, r.vars["host"])
		}).with(nil, api.Host{}),
		mgmt("PATCH", "/hosts/{host}", "hosts", write, "Change a host's name, labels or advertised address", func(r *request) (any, error) {
			edit, err := r.edit()
			if err != nil {
				return nil, err
			}
			return r.st.UpdateHost(r.who, r.vars["host"], func(h *api.Host) error { return edit(h) })
		}).with(api.Host{}, api.Host{}),
		mgmt("DELETE", "/hosts/{host}", "hosts", write, "Delete a host, its interfaces and its credential", func(r *request) (any, error) {
			return noContent{}, r.st.DeleteHost(r.who, r.vars["host"])
		}).with(nil, noContent{}),
		mgmt("GET", "/hosts/{host}/status", "hosts", read, "The host agent's last status report", func(r *request) (any, error) {
			return r.st.HostStatus(r.who, r.vars["host"])
		}).with(nil, api.StatusReport{}),
		mgmt("GET", "/hosts/{host}/history", "hosts", read, "The last hour of the host's counters, a point a minute: summed over its peers, and per peering (kept in memory, saved in the data dir across restarts)", func(r *request) (any, error) {
			return r.st.HostHistory(r.who, r.vars["host"])
		}).with(nil, api.HostHistory{}),
		mgmt("POST", "/hosts/{host}/rotate-keys", "hosts", write, "Ask the host's agent to rotate its keys", func(r *request) (any, error) {
			return r.st.RequestKeyRotation(r.who, r.vars["host"])
		}).with(nil, api.Host{}),

		mgmt("GET", "/interfaces", "interfaces", read, "List interfaces (?network=, ?host=, ?firewall=behind: those whose agent does not enforce their access policy)", func(r *request) (any, error) {
			return r.listInterfaces(false)
		}).with(nil, api.List[api.Interface]{}, "q", "limit", "offset", "network", "host", "firewall"),
		mgmt("POST", "/interfaces", "interfaces", write, "Add a host to a network", func(r *request) (any, error) {
			var i api.Interface
			if err := r.decode(&i, true); err != nil {
				return nil, err
			}
			out, err := r.st.CreateInterface(r.who, i)
			return created{out}, err
		}).with(api.Interface{}, created{api.Interface{}}),
		mgmt("GET", "/interfaces/{id}", "interfaces", read, "Read an interface", func(r *request) (any, error) {
			return r.iface(read, false)
		}).with(nil, api.Interface{}),
		mgmt("PATCH", "/interfaces/{id}", "interfaces", write, "Change an interface's name, addresses, port, MTU or routed subnets", func(r *request) (any, error) {
			i, err := r.iface(write, false)
			if err != nil {
				return nil, err
			}
			edit, err := r.edit()
			if err != nil {
				return nil, err
			}
			return r.st.UpdateInterface(i.ID, func(i *api.Interface) error { return edit(i) })
		}).with(api.Interface{}, api.Interface{}),
		mgmt("DELETE", "/interfaces/{id}", "interfaces", write, "Remove an interface and its connections", func(r *request) (any, error) {
			i, err := r.iface(write, false)
			if err != nil {
				return nil, err
			}
			return noContent{}, r.st.DeleteInterface(i.ID, false)
		}).with(nil, noContent{}),
		mgmt("GET", "/interfaces/{id}/config", "interfaces", read, "The wg-quick view of an interface, without private key", func(r *request) (any, error) {
			i, err := r.st.Interface(r.vars["id"])
			if err != nil {
				return nil, err
			}
			if !r.who.Allowed("interfaces", read, i.NetworkID) {
				return nil, forbiddenNet()
			}
			cfg, err := r.st.InterfaceConfig(i.ID)
			return text(cfg), err
		}).with(nil, text("")),

		mgmt("GET", "/interfaces/{id}/history", "interfaces", read, "The last hour of the counters between the interface and a peer interface of its network (?peer=, required), as each side's agent reports them: the history of a topology's implicit connection, which has no id", func(r *request) (any, error) {
			i, err := r.st.Interface(r.vars["id"])
			if err != nil {
				return nil, err
			}
			if !r.who.Allowed("interfaces", read, i.NetworkID) {
				return nil, forbiddenNet()
			}
			peer := r.URL.Query().Get("peer")
			switch {
			case peer == "":
				return nil, badRequest("peer", "is required: the id of the peer interface")
			case len(peer) > maxRef:
				return nil, badRequest("peer", "is longer than %d characters", maxRef)
			}
			return r.st.PeeringHistory(i.ID, peer)
		}).with(nil, api.ConnectionHistory{}, "peer"),
		mgmt("GET", "/devices", "interfaces", read, "List plain WireGuard devices (?network=)", func(r *request) (any, error) {
			return r.listInterfaces(true)
		}).with(nil, api.List[api.Interface]{}, "q", "limit", "offset", "network", "host"),
		mgmt("POST", "/devices", "interfaces", write, "Register a plain WireGuard device by its public key", func(r *request) (any, error) {
			var d api.DeviceRequest
			if err := r.decode(&d, true); err != nil {
				return nil, err
			}
			if n, err := r.st.Network(d.Network); err == nil && !r.who.Allowed("interfaces", write, n.ID) {
				return nil, forbiddenNet()
			}
			out, err := r.st.CreateDevice(d)
			return created{out}, err
		}).with(api.DeviceRequest{}, created{api.Interface{}}),
		mgmt("GET", "/devices/{id}", "interfaces", read, "Read a device", func(r *request) (any, error) {
			return r.iface(read, true)
		}).with(nil, api.Interface{}),
		mgmt("DELETE", "/devices/{id}", "interfaces", write, "Remove a device", func(r *request) (any, error) {
			i, err := r.iface(write, true)
			if err != nil {
				return nil, err
			}
			return noContent{}, r.st.DeleteInterface(i.ID, true)
		}).with(nil, noContent{}),

		mgmt("GET", "/connections", "connections", read, "List explicit connections (?network=, ?interface=)", func(r *request) (any, error) {
			f, err := r.filter()
			if err != nil {
				return nil, err
			}
			f.Networks = r.who.NetworkScope("connections")
			return r.st.Connections(f)
		}).with(nil, api.List[api.Connection]{}, "limit", "offset", "network", "interface"),
		mgmt("POST", "/connections", "connections", write, "Connect two interfaces of a network", func(r *request) (any, error) {
			var c api.Connection
			if err := r.decode(&c, true); err != nil {
				return nil, err
			}
			if n, err := r.st.Network(c.NetworkID); err == nil && !r.who.Allowed("connections", write, n.ID) {
				return nil, forbiddenNet()
			}
			out, err := r.st.CreateConnection(c)
			return created{out}, err
		}).with(api.Connection{}, created{api.Connection{}}),
		mgmt("GET", "/connections/{id}", "connections", read, "Read a connection", func(r *request) (any, error) {
			return r.connection(read)
		}).with(nil, api.Connection{}),
		mgmt("GET", "/connections/{id}/history", "connections", read, "The last hour of a connection's counters as each side's agent reports them, a point a minute (kept in memory, saved in the data dir across restarts)", func(r *request) (any, error) {
			c, err := r.connection(read)
			if err != nil {
				return nil, err
			}
			return r.st.ConnectionHistory(c.ID)
		}).with(nil, api.ConnectionHistory{}),
		mgmt("PATCH", "/connections/{id}", "connections", write, "Change a connection's allowed IPs, endpoints or keepalive", func(r *request) (any, error) {
			c, err := r.connection(write)
			if err != nil {
				return nil, err
			}
			edit, err := r.edit()
			if err != nil {
				return nil, err
			}
			return r.st.UpdateConnection(c.ID, func(c *api.Connection) error { return edit(c) })
		}).with(api.Connection{}, api.Connection{}),
		mgmt("DELETE", "/connections/{id}", "connections", write, "Remove a connection", func(r *request) (any, error) {
			c, err := r.connection(write)
			if err != nil {
				return nil, err
			}
			return noContent{}, r.st.DeleteConnection(c.ID)
		}).with(nil, noContent{}),

		// Access rules belong to a network, like connections.
		mgmt("GET", "/rules", "rules", read, "List access rules (?network=), by network and position", func(r *request) (any, error) {
			f, err := r.filter()
			if err != nil {
				return nil, err
			}
			f.Networks = r.who.NetworkScope("rules")
			return r.st.Rules(f)
		}).with(nil, api.List[api.Rule]{}, "limit", "offset", "network"),
		mgmt("POST", "/rules", "rules", write, "Add an access rule to a network's policy, at position or last", func(r *request) (any, error) {
			var rr api.RuleRequest
			if err := r.decode(&rr, true); err != nil {
				return nil, err
			}
			if n, err := r.st.Network(rr.NetworkID); err == nil && !r.who.Allowed("rules", write, n.ID) {
				return nil, forbiddenNet()
			}
			out, err := r.st.CreateRule(rr)
			return created{out}, err
		}).with(api.RuleRequest{}, created{api.Rule{}}),
		mgmt("POST", "/rules/check", "rules", read, "Which action a network's policy takes for a flow, and which rule decides", func(r *request) (any, error) {
			var c api.RuleCheck
			if err := r.decode(&c, true); err != nil {
				return nil, err
			}
			if n, err := r.st.Network(c.NetworkID); err == nil && !r.who.Allowed("rules", read, n.ID) {
				return nil, forbiddenNet()
			}
			return r.st.CheckRule(c)
		}).with(api.RuleCheck{}, api.RuleVerdict{}).asQuestion(),
		mgmt("GET", "/rules/{id}", "rules", read, "Read an access rule", func(r *request) (any, error) {
			return r.rule(read)
		}).with(nil, api.Rule{}),
		mgmt("PATCH", "/rules/{id}", "rules", write, "Change an access rule; a new position moves it", func(r *request) (any, error) {
			x, err := r.rule(write)
			if err != nil {
				return nil, err
			}
			edit, err := r.edit()
			if err != nil {
				return nil, err
			}
			return r.st.UpdateRule(x.ID, func(x *api.Rule) error { return edit(x) })
		}).with(api.Rule{}, api.Rule{}),
		mgmt("DELETE", "/rules/{id}", "rules", write, "Remove an access rule; the rules after it move up", func(r *request) (any, error) {
			x, err := r.rule(write)
			if err != nil {
				return nil, err
			}
			return noContent{}, r.st.DeleteRule(x.ID)
		}).with(nil, noContent{}),

		// A token sees and revokes only tokens within its own grants; ids
		// are the server's alone.
		mgmt("GET", "/tokens", "tokens", read, "List the management tokens within the caller's grants (no secrets)", func(r *request) (any, error) {
			f, err := r.filter()
			return r.st.Tokens(r.who, f), err
		}).with(nil, api.List[api.Token]{}, listQuery...),
		mgmt("POST", "/tokens", "tokens", write, "Create a management token; its secret is shown once", func(r *request) (any, error) {
			var t api.Token
			if err := r.decode(&t, true); err != nil {
				return nil, err
			}
			out, err := r.st.CreateToken(r.who, t)
			return created{out}, err
		}).with(api.Token{}, created{api.Token{}}),
		// Any management token reads itself, whatever its policies.
		mgmt("GET", "/tokens/self", "", read, "The calling management token", func(r *request) (any, error) {
			return r.st.Token(r.who, r.who.Token.ID)
		}).with(nil, api.Token{}),
		mgmt("GET", "/tokens/{id}", "tokens", read, "Read a management token (no secret)", func(r *request) (any, error) {
			return r.st.Token(r.who, r.vars["id"])
		}).with(nil, api.Token{}),
		mgmt("DELETE", "/tokens/{id}", "tokens", write, "Revoke a management token no stronger than the caller", func(r *request) (any, error) {
			return noContent{}, r.st.DeleteToken(r.who, r.vars["id"])
		}).with(nil, noContent{}),

		mgmt("GET", "/join-tokens", "tokens", read, "List the join tokens of the caller's networks (no secrets)", func(r *request) (any, error) {
			f, err := r.filter()
			return r.st.JoinTokens(r.who, f), err
		}).with(nil, api.List[api.JoinToken]{}, listQuery...),
		mgmt("POST", "/join-tokens", "tokens", write, "Create a join token for networks the caller may add hosts to; its secret is shown once", func(r *request) (any, error) {
			var j api.JoinToken
			if err := r.decode(&j, true); err != nil {
				return nil, err
			}
			out, err := r.st.CreateJoinToken(r.who, j)
			return created{out}, err
		}).with(api.JoinToken{}, created{api.JoinToken{}}),
		mgmt("GET", "/join-tokens/{id}", "tokens", read, "Read a join token (no secret)", func(r *request) (any, error) {
			return r.st.JoinToken(r.who, r.vars["id"])
		}).with(nil, api.JoinToken{}),
		mgmt("DELETE", "/join-tokens/{id}", "tokens", write, "Revoke a join token", func(r *request) (any, error) {
			return noContent{}, r.st.DeleteJoinToken(r.who, r.vars["id"])
		}).with(nil, noContent{}),

		// The audit trail of every write route above and below (see audited).
		mgmt("GET", "/audit", "audit", read, "The audit trail of management writes and registrations the token may see, newest first (?since=, ?until=: RFC 3339 times or durations back from now; ?token=: the credential's id or name; ?object=: the object's id or name; ?kind=; ?method=)", func(r *request) (any, error) {
			f, err := r.auditFilter(s.auditKinds)
			if err != nil {
				return nil, err
			}
			return r.st.Audit(r.who, f), nil
		}).with(nil, api.List[api.AuditEntry]{}, "since", "until", "token", "object", "kind", "method", "limit", "offset"),

		{method: "POST", path: "/agent/register", auth: authJoin, object: "host", body: api.RegisterRequest{}, answer: created{api.RegisterResponse{}}, summary: "Register a host with a join token; returns its credential once", handle: func(r *request) (any, error) {
			var rr api.RegisterRequest
			if err := r.decode(&rr, true); err != nil {
				return nil, err
			}
			out, err := r.st.Register(r.who.Join.ID, rr, remoteIP(r.Request))
			return created{out}, err
		}},
		{method: "GET", path: "/agent/config", auth: authHost, answer: api.DesiredState{}, query: []string{"index", "wait", "delta"}, summary: "The host's desired state; a blocking query with ?index= and ?wait=, a delta on the state of index with ?delta=true", handle: func(r *request) (any, error) {
			index, wait, err := r.blocking(60 * time.Second)
			if err != nil {
				return nil, err
			}
			delta, err := r.boolParam("delta")
			if err != nil {
				return nil, err
			}
			return r.st.DesiredState(r.Context(), r.who.HostID, index, wait, delta)
		}},
		{method: "PUT", path: "/agent/status", auth: authHost, body: api.StatusReport{}, answer: noContent{}, summary: "The agent's status report and heartbeat", bodyLimit: func(r *request) int64 {
			return r.st.ReportLimit(r.who.HostID)
		}, handle: func(r *request) (any, error) {
			var sr api.StatusReport
			if err := r.decode(&sr, true); err != nil {
				return nil, err
			}
			return noContent{}, r.st.ReportStatus(r.who.HostID, sr, remoteIP(r.Request))
		}},
	}
}

// asQuestion marks a POST that changes nothing (a question with a body): the
// audit trail leaves it out.
func (rt route) asQuestion() route {
	rt.question = true
	return rt
}

// with sets what the OpenAPI document says of a route's body, answer and
// query parameters.
func (rt route) with(body, answer any, query ...string) route {
	rt.body, rt.answer, rt.query = body, answer, query
	return rt
}

// maxSnapshot bounds a snapshot to restore.
const maxSnapshot = 512 << 20

// rootOnly refuses every token but the root token.
func rootOnly(r *request) error {
	if !r.who.Token.Root {
		return &apiError{status: http.StatusForbidden, message: "snapshots hold every credential's hash: they take the root token"}
	}
	return nil
}

func forbiddenNet() error {
	return &apiError{status: http.StatusForbidden, message: "token has no access to this network"}
}

// network resolves {network} and checks the caller's access to it.
func (r *request) network(access string) (*api.Network, error) {
	n, err := r.st.Network(r.vars["network"])
	if err != nil {
		return nil, err
	}
	if !r.who.Allowed("networks", access, n.ID) {
		return nil, forbiddenNet()
	}
	return n, nil
}

// iface resolves {id} as an interface (or device) and checks access to its network.
func (r *request) iface(access string, device bool) (*api.Interface, error) {
	i, err := r.st.Interface(r.vars["id"])
	if err != nil {
		return nil, err
	}
	if (i.DeviceName != "") != device {
		if device {
			return nil, &state.Error{Class: state.ErrNotFound, Message: "device " + i.ID + " not found"}
		}
		return nil, &state.Error{Class: state.ErrNotFound, Message: "interface " + i.ID + " is a device; use /devices"}
	}
	if !r.who.Allowed("interfaces", access, i.NetworkID) {
		return nil, forbiddenNet()
	}
	return i, nil
}

func (r *request) connection(access string) (*api.Connection, error) {
	c, err := r.st.Connection(r.vars["id"])
	if err != nil {
		return nil, err
	}
	if !r.who.Allowed("connections", access, c.NetworkID) {
		return nil, forbiddenNet()
	}
	return c, nil
}

func (r *request) rule(access string) (*api.Rule, error) {
	x, err := r.st.Rule(r.vars["id"])
	if err != nil {
		return nil, err
	}
	if !r.who.Allowed("rules", access, x.NetworkID) {
		return nil, forbiddenNet()
	}
	return x, nil
}

func (r *request) listInterfaces(devices bool) (any, error) {
	f, err := r.filter()
	if err != nil {
		return nil, err
	}
	f.Networks = r.who.NetworkScope("interfaces")
	switch fw := r.URL.Query().Get("firewall"); {
	case fw == "behind" && !devices:
		f.FirewallBehind = true
	case fw != "":
		return nil, badRequest("firewall", "%q is not behind (devices enforce nothing)", fw)
	}
	return r.st.Interfaces(f, devices)
}

package server

import (
	"net/http"
	"time"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/state"
)

// maxStatusBody bounds a status report: a hub lists every spoke's counters
// (about 130 bytes each), so 10,000 spokes need well over the default 1 MiB.
const maxStatusBody = 32 << 20

const (
	read  = state.AccessRead
	write = state.AccessWrite
)

// routes lists every API endpoint, relative to /api/v1.
func (s *Server) routes() []route {
	st := s.state
	mgmt := func(method, path, resource, access, summary string, h func(*request) (any, error)) route {
		return route{method: method, path: path, auth: authManagement, resource: resource, access: access, summary: summary, handle: h}
	}
	return []route{
		{method: "GET", path: "/health", summary: "Server health (no auth)", handle: func(*request) (any, error) {
			return api.Health{Status: "ok", Version: api.Version}, nil
		}},
		{method: "GET", path: "/openapi.json", summary: "This API's OpenAPI 3 document (no auth)", handle: func(*request) (any, error) {
			return s.openAPI(), nil
		}},
		mgmt("GET", "/status", "hosts", read, "Counts of networks, hosts by status, interfaces and devices", func(*request) (any, error) {
			return st.Overview(), nil
		}),
		mgmt("GET", "/events", "networks", read, "Recent changes after ?index=, a blocking query with ?wait=", func(r *request) (any, error) {
			index, wait, err := r.blocking(30 * time.Second)
			if err != nil {
				return nil, err
			}
			return st.Events(r.Context(), index, wait), nil
		}),

		mgmt("GET", "/networks", "networks", read, "List networks (?q= name prefix)", func(r *request) (any, error) {
			f, err := r.filter()
			f.Networks = r.who.NetworkScope("networks")
			return st.Networks(f), err
		}),
		mgmt("POST", "/networks", "networks", write, "Create a network", func(r *request) (any, error) {
			var n api.Network
			if err := r.decode(&n, true); err != nil {
				return nil, err
			}
			if !r.who.Allowed("networks", write, "") {
				return nil, forbiddenNet()
			}
			out, err := st.CreateNetwork(n)
			return created{out}, err
		}),
		mgmt("GET", "/networks/{network}", "networks", read, "Read a network by name or id", func(r *request) (any, error) {
			return r.network(st, read)
		}),
		mgmt("PATCH", "/networks/{network}", "networks", write, "Change a network's fields", func(r *request) (any, error) {
			n, err := r.network(st, write)
			if err != nil {
				return nil, err
			}
			edit, err := r.edit()
			if err != nil {
				return nil, err
			}
			return st.UpdateNetwork(n.ID, func(n *api.Network) error { return edit(n) })
		}),
		mgmt("DELETE", "/networks/{network}", "networks", write, "Delete a network with its interfaces and connections", func(r *request) (any, error) {
			n, err := r.network(st, write)
			if err != nil {
				return nil, err
			}
			return noContent{}, st.DeleteNetwork(n.ID)
		}),
		mgmt("GET", "/networks/{network}/topology", "networks", read, "A network's interfaces and connections as a graph", func(r *request) (any, error) {
			n, err := r.network(st, read)
			if err != nil {
				return nil, err
			}
			return st.Topology(n.ID)
		}),

		mgmt("GET", "/hosts", "hosts", read, "List hosts (?q=, ?status=, ?label=k=v)", func(r *request) (any, error) {
			f, err := r.filter()
			return st.Hosts(f), err
		}),
		mgmt("GET", "/hosts/{host}", "hosts", read, "Read a host by name or id", func(r *request) (any, error) {
			return st.Host(r.vars["host"])
		}),
		mgmt("PATCH", "/hosts/{host}", "hosts", write, "Change a host's name, labels or advertised address", func(r *request) (any, error) {
			edit, err := r.edit()
			if err != nil {
				return nil, err
			}
			return st.UpdateHost(r.vars["host"], func(h *api.Host) error { return edit(h) })
		}),
		mgmt("DELETE", "/hosts/{host}", "hosts", write, "Delete a host, its interfaces and its credential", func(r *request) (any, error) {
			return noContent{}, st.DeleteHost(r.vars["host"])
		}),
		mgmt("GET", "/hosts/{host}/status", "hosts", read, "The host agent's last status report", func(r *request) (any, error) {
			return st.HostStatus(r.vars["host"])
		}),
		mgmt("POST", "/hosts/{host}/rotate-keys", "hosts", write, "Ask the host's agent to rotate its keys", func(r *request) (any, error) {
			return st.RequestKeyRotation(r.vars["host"])
		}),

		mgmt("GET", "/interfaces", "interfaces", read, "List interfaces (?network=, ?host=)", func(r *request) (any, error) {
			return r.listInterfaces(st, false)
		}),
		mgmt("POST", "/interfaces", "interfaces", write, "Add a host to a network", func(r *request) (any, error) {
			var i api.Interface
			if err := r.decode(&i, true); err != nil {
				return nil, err
			}
			if n, err := st.Network(i.NetworkID); err == nil && !r.who.Allowed("interfaces", write, n.ID) {
				return nil, forbiddenNet()
			}
			out, err := st.CreateInterface(i)
			return created{out}, err
		}),
		mgmt("GET", "/interfaces/{id}", "interfaces", read, "Read an interface", func(r *request) (any, error) {
			return r.iface(st, read, false)
		}),
		mgmt("PATCH", "/interfaces/{id}", "interfaces", write, "Change an interface's name, addresses, port, MTU or routed subnets", func(r *request) (any, error) {
			i, err := r.iface(st, write, false)
			if err != nil {
				return nil, err
			}
			edit, err := r.edit()
			if err != nil {
				return nil, err
			}
			return st.UpdateInterface(i.ID, func(i *api.Interface) error { return edit(i) })
		}),
		mgmt("DELETE", "/interfaces/{id}", "interfaces", write, "Remove an interface and its connections", func(r *request) (any, error) {
			i, err := r.iface(st, write, false)
			if err != nil {
				return nil, err
			}
			return noContent{}, st.DeleteInterface(i.ID, false)
		}),
		mgmt("GET", "/interfaces/{id}/config", "interfaces", read, "The wg-quick view of an interface, without private key", func(r *request) (any, error) {
			i, err := st.Interface(r.vars["id"])
			if err != nil {
				return nil, err
			}
			if !r.who.Allowed("interfaces", read, i.NetworkID) {
				return nil, forbiddenNet()
			}
			cfg, err := st.InterfaceConfig(i.ID)
			return text(cfg), err
		}),

		mgmt("GET", "/devices", "interfaces", read, "List plain WireGuard devices (?network=)", func(r *request) (any, error) {
			return r.listInterfaces(st, true)
		}),
		mgmt("POST", "/devices", "interfaces", write, "Register a plain WireGuard device by its public key", func(r *request) (any, error) {
			var d api.DeviceRequest
			if err := r.decode(&d, true); err != nil {
				return nil, err
			}
			if n, err := st.Network(d.Network); err == nil && !r.who.Allowed("interfaces", write, n.ID) {
				return nil, forbiddenNet()
			}
			out, err := st.CreateDevice(d)
			return created{out}, err
		}),
		mgmt("GET", "/devices/{id}", "interfaces", read, "Read a device", func(r *request) (any, error) {
			return r.iface(st, read, true)
		}),
		mgmt("DELETE", "/devices/{id}", "interfaces", write, "Remove a device", func(r *request) (any, error) {
			i, err := r.iface(st, write, true)
			if err != nil {
				return nil, err
			}
			return noContent{}, st.DeleteInterface(i.ID, true)
		}),

		mgmt("GET", "/connections", "connections", read, "List explicit connections (?network=, ?interface=)", func(r *request) (any, error) {
			f, err := r.filter()
			if err != nil {
				return nil, err
			}
			f.Networks = r.who.NetworkScope("connections")
			return st.Connections(f)
		}),
		mgmt("POST", "/connections", "connections", write, "Connect two interfaces of a network", func(r *request) (any, error) {
			var c api.Connection
			if err := r.decode(&c, true); err != nil {
				return nil, err
			}
			if n, err := st.Network(c.NetworkID); err == nil && !r.who.Allowed("connections", write, n.ID) {
				return nil, forbiddenNet()
			}
			out, err := st.CreateConnection(c)
			return created{out}, err
		}),
		mgmt("GET", "/connections/{id}", "connections", read, "Read a connection", func(r *request) (any, error) {
			return r.connection(st, read)
		}),
		mgmt("PATCH", "/connections/{id}", "connections", write, "Change a connection's allowed IPs, endpoints or keepalive", func(r *request) (any, error) {
			c, err := r.connection(st, write)
			if err != nil {
				return nil, err
			}
			edit, err := r.edit()
			if err != nil {
				return nil, err
			}
			return st.UpdateConnection(c.ID, func(c *api.Connection) error { return edit(c) })
		}),
		mgmt("DELETE", "/connections/{id}", "connections", write, "Remove a connection", func(r *request) (any, error) {
			c, err := r.connection(st, write)
			if err != nil {
				return nil, err
			}
			return noContent{}, st.DeleteConnection(c.ID)
		}),

		mgmt("GET", "/tokens", "tokens", read, "List management tokens (no secrets)", func(r *request) (any, error) {
			f, err := r.filter()
			return st.Tokens(f), err
		}),
		mgmt("POST", "/tokens", "tokens", write, "Create a management token; its secret is shown once", func(r *request) (any, error) {
			var t api.Token
			if err := r.decode(&t, true); err != nil {
				return nil, err
			}
			out, err := st.CreateToken(r.who, t)
			return created{out}, err
		}),
		{method: "GET", path: "/tokens/self", auth: authManagement, summary: "The calling token", handle: func(r *request) (any, error) {
			if r.who.Token == nil {
				return nil, &apiError{status: http.StatusForbidden, message: "this endpoint takes a management token"}
			}
			return st.Token(r.who.Token.ID)
		}},
		mgmt("GET", "/tokens/{id}", "tokens", read, "Read a management token (no secret)", func(r *request) (any, error) {
			return st.Token(r.vars["id"])
		}),
		mgmt("DELETE", "/tokens/{id}", "tokens", write, "Revoke a management token", func(r *request) (any, error) {
			return noContent{}, st.DeleteToken(r.vars["id"])
		}),

		mgmt("GET", "/join-tokens", "tokens", read, "List join tokens (no secrets)", func(r *request) (any, error) {
			f, err := r.filter()
			return st.JoinTokens(f), err
		}),
		mgmt("POST", "/join-tokens", "tokens", write, "Create a join token; its secret is shown once", func(r *request) (any, error) {
			var j api.JoinToken
			if err := r.decode(&j, false); err != nil {
				return nil, err
			}
			out, err := st.CreateJoinToken(j)
			return created{out}, err
		}),
		mgmt("GET", "/join-tokens/{id}", "tokens", read, "Read a join token (no secret)", func(r *request) (any, error) {
			return st.JoinToken(r.vars["id"])
		}),
		mgmt("DELETE", "/join-tokens/{id}", "tokens", write, "Revoke a join token", func(r *request) (any, error) {
			return noContent{}, st.DeleteJoinToken(r.vars["id"])
		}),

		{method: "POST", path: "/agent/register", auth: authJoin, summary: "Register a host with a join token; returns its credential once", handle: func(r *request) (any, error) {
			var rr api.RegisterRequest
			if err := r.decode(&rr, true); err != nil {
				return nil, err
			}
			out, err := st.Register(r.who.Join.ID, rr, remoteIP(r.Request))
			return created{out}, err
		}},
		{method: "GET", path: "/agent/config", auth: authHost, summary: "The host's desired state; a blocking query with ?index= and ?wait=, a delta on the state of index with ?delta=true", handle: func(r *request) (any, error) {
			index, wait, err := r.blocking(60 * time.Second)
			if err != nil {
				return nil, err
			}
			delta, err := r.boolParam("delta")
			if err != nil {
				return nil, err
			}
			return st.DesiredState(r.Context(), r.who.HostID, index, wait, delta)
		}},
		{method: "PUT", path: "/agent/status", auth: authHost, maxBody: maxStatusBody, summary: "The agent's status report and heartbeat", handle: func(r *request) (any, error) {
			var sr api.StatusReport
			if err := r.decode(&sr, true); err != nil {
				return nil, err
			}
			return noContent{}, st.ReportStatus(r.who.HostID, sr, remoteIP(r.Request))
		}},
	}
}

func forbiddenNet() error {
	return &apiError{status: http.StatusForbidden, message: "token has no access to this network"}
}

// network resolves {network} and checks the caller's access to it.
func (r *request) network(st *state.State, access string) (*api.Network, error) {
	n, err := st.Network(r.vars["network"])
	if err != nil {
		return nil, err
	}
	if !r.who.Allowed("networks", access, n.ID) {
		return nil, forbiddenNet()
	}
	return n, nil
}

// iface resolves {id} as an interface (or device) and checks access to its network.
func (r *request) iface(st *state.State, access string, device bool) (*api.Interface, error) {
	i, err := st.Interface(r.vars["id"])
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

func (r *request) connection(st *state.State, access string) (*api.Connection, error) {
	c, err := st.Connection(r.vars["id"])
	if err != nil {
		return nil, err
	}
	if !r.who.Allowed("connections", access, c.NetworkID) {
		return nil, forbiddenNet()
	}
	return c, nil
}

func (r *request) listInterfaces(st *state.State, devices bool) (any, error) {
	f, err := r.filter()
	if err != nil {
		return nil, err
	}
	f.Networks = r.who.NetworkScope("interfaces")
	return st.Interfaces(f, devices)
}

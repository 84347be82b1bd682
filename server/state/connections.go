package state

import (
	"cmp"
	"slices"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/store"
)

// Connections lists explicit connections sorted by id.
func (s *State) Connections(f Filter) (api.List[api.Connection], error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	netID := ""
	if f.Network != "" {
		n, err := s.network(f.Network)
		if err != nil {
			return api.List[api.Connection]{}, err
		}
		netID = n.ID
	}
	var out []api.Connection
	for _, c := range s.conns {
		if (netID != "" && c.NetworkID != netID) || !f.inScope(c.NetworkID) {
			continue
		}
		if f.Interface != "" && c.A.InterfaceID != f.Interface && c.B.InterfaceID != f.Interface {
			continue
		}
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b api.Connection) int { return cmp.Compare(a.ID, b.ID) })
	return page(out, f), nil
}

// Connection returns a connection by id.
func (s *State) Connection(id string) (*api.Connection, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.conns[id]
	if !ok {
		return nil, notFound("connection", id)
	}
	return clone(c), nil
}

// CreateConnection links two interfaces of one network (NetworkID may be a name).
func (s *State) CreateConnection(c api.Connection) (*api.Connection, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.Implicit {
		return nil, invalid("implicit", "is derived from the topology")
	}
	n, err := s.network(c.NetworkID)
	if err != nil {
		return nil, &Error{Class: ErrInvalid, Field: "network_id", Message: err.Error()}
	}
	c.NetworkID = n.ID
	if err := checkNewMeta(&c.Meta); err != nil {
		return nil, err
	}
	if err := s.checkConnection(&c, nil); err != nil {
		return nil, err
	}
	w := s.begin()
	w.meta(&c.Meta)
	w.put(store.KindConnections, c.ID, &c, "created", "")
	w.ifaces.add(c.A.InterfaceID)
	w.ifaces.add(c.B.InterfaceID)
	if err := w.commit(); err != nil {
		return nil, err
	}
	return clone(&c), nil
}

func (s *State) checkConnection(c, old *api.Connection) error {
	for _, side := range []struct {
		name string
		s    *api.ConnectionSide
	}{{"a", &c.A}, {"b", &c.B}} {
		i, ok := s.ifaces[side.s.InterfaceID]
		if side.s.InterfaceID == "" {
			return invalid(side.name+".interface_id", "is required")
		}
		if !ok || i.NetworkID != c.NetworkID {
			return invalid(side.name+".interface_id", "%q is not an interface of the network", side.s.InterfaceID)
		}
		if _, err := parsePrefixes(side.name+".allowed_ips", side.s.AllowedIPs); err != nil {
			return err
		}
		if err := checkEndpoint(side.name+".endpoint", side.s.Endpoint); err != nil {
			return err
		}
	}
	if c.A.InterfaceID == c.B.InterfaceID {
		return invalid("b.interface_id", "an interface cannot connect to itself")
	}
	if c.PersistentKeepalive != nil {
		if err := checkKeepalive("persistent_keepalive", *c.PersistentKeepalive); err != nil {
			return err
		}
	}
	if old != nil {
		if c.A.InterfaceID != old.A.InterfaceID || c.B.InterfaceID != old.B.InterfaceID {
			return invalid("a.interface_id", "the interfaces of a connection cannot change; create a new one")
		}
		return nil
	}
	if id := s.connBetween(c.A.InterfaceID, c.B.InterfaceID); id != "" {
		return conflict("b.interface_id", "connection %s already links these interfaces", id)
	}
	return nil
}

// connBetween returns the id of the explicit connection between a and b.
func (s *State) connBetween(a, b string) string {
	for id := range s.ifaceConns[a] {
		c := s.conns[id]
		if c.A.InterfaceID == b || c.B.InterfaceID == b {
			return id
		}
	}
	return ""
}

// UpdateConnection applies edit (allowed IPs, endpoints, keepalive) to a copy.
func (s *State) UpdateConnection(id string, edit func(*api.Connection) error) (*api.Connection, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, ok := s.conns[id]
	if !ok {
		return nil, notFound("connection", id)
	}
	c := clone(old)
	if err := edit(c); err != nil {
		return nil, err
	}
	if c.NetworkID != old.NetworkID {
		return nil, invalid("network_id", "cannot change")
	}
	if c.Implicit {
		return nil, invalid("implicit", "is derived from the topology")
	}
	c.Meta = old.Meta
	if err := s.checkConnection(c, old); err != nil {
		return nil, err
	}
	w := s.begin()
	w.meta(&c.Meta)
	w.put(store.KindConnections, c.ID, c, "updated", "")
	w.ifaces.add(c.A.InterfaceID)
	w.ifaces.add(c.B.InterfaceID)
	if err := w.commit(); err != nil {
		return nil, err
	}
	return clone(c), nil
}

// DeleteConnection removes an explicit connection.
func (s *State) DeleteConnection(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.conns[id]
	if !ok {
		return notFound("connection", id)
	}
	w := s.begin()
	w.ifaces.add(c.A.InterfaceID)
	w.ifaces.add(c.B.InterfaceID)
	w.del(store.KindConnections, id, "")
	return w.commit()
}

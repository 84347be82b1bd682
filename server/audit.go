package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/state"
	"github.com/drago-wg/drago/server/store"
)

// Audit bounds: an entry keeps at most maxAuditFields fields of a body,
// each value cut at maxAuditValue bytes.
const (
	maxAuditFields = 32
	maxAuditValue  = 256
)

// auditFields are the body fields whose values an audit entry keeps: names
// known to carry no secret, in every body of a write route and in every
// object nested in them (TestAuditFieldsClassified walks the route table's
// body types and fails on a field in neither this list nor secretFields).
// Any other field, secretFields and fields not known to be harmless, is
// kept by name only, in Redacted.
var auditFields = setOf(
	// networks
	"name", "ipv4_range", "ipv6_range", "listen_port", "mtu", "dns", "persistent_keepalive",
	"topology", "hub_interface_id", "default_action",
	// hosts and registration
	"labels", "advertise_address", "os", "arch", "agent_version",
	// interfaces, devices and connections
	"host_id", "network_id", "network", "addresses", "address", "routed_subnets", "masquerade",
	"public_key", "a", "b", "interface_id", "allowed_ips", "endpoint",
	// tokens and join tokens
	"policies", "resource", "access", "networks", "expires_at", "never_expires", "max_uses", "name_pattern",
	// access rules
	"position", "action", "from", "to", "protocol", "ports", "description",
	// snapshots
	"version", "index",
)

// serverFields are the fields the server sets: a body's value is ignored
// or refused. An entry keeps one only when the body gives it a value other
// than the zero one (the typed client sends whole objects).
var serverFields = setOf(
	"id", "created_at", "updated_at", "modify_index", "root", "uses", "status",
	"observed_address", "last_seen", "rotate_keys", "key_stale", "backend",
	"firewall", "key_rotated_at", "device_name", "next_public_key", "next_key_index",
	"next_key_ready", "rotation_blocked", "implicit", "revision", "enforced", "reason", "firewall_revision",
)

// secretFields are the body fields an entry never keeps the value of.
// A snapshot's objects hold the credentials' hashes.
var secretFields = setOf("secret", "credential", "request_id", "private_key", "preshared_key", "hash", "objects")

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// audited reports whether a call of rt goes to the audit trail: the writes
// of management tokens and agents' registrations. Agents' status reports
// (heartbeats, many a minute) and questions sent with POST do not.
func audited(rt route) bool {
	return rt.method != http.MethodGet && rt.method != http.MethodHead && !rt.question &&
		(rt.auth == authManagement || rt.auth == authJoin)
}

// auditObject derives from a route what kind of object its writes act on
// and the path variable naming it (""): the collection before the last
// path variable (/hosts/{host}/rotate-keys acts on a host), or the last
// collection of a route without one or of one creating in a sub-collection
// (POST /networks, POST /networks/{network}/rules). route.object overrides
// the kind.
func auditObject(rt route) (kind, pathVar string) {
	segs := strings.Split(strings.Trim(rt.path, "/"), "/")
	last := -1 // index of the last path variable
	for k, s := range segs {
		if strings.HasPrefix(s, "{") {
			last = k
		}
	}
	_, creates := rt.answer.(created)
	coll := ""
	switch {
	case last > 0 && (last == len(segs)-1 || !creates):
		coll, pathVar = segs[last-1], strings.Trim(segs[last], "{}")
	case last >= 0:
		coll = segs[len(segs)-1]
	default:
		coll = segs[0]
	}
	kind = strings.ReplaceAll(strings.TrimSuffix(coll, "s"), "-", "_")
	if rt.object != "" {
		kind = rt.object
	}
	return kind, pathVar
}

// identified is an answer that names the object written.
type identified interface{ ObjectID() string }

// auditEntry is the entry of a call of rt as known before the handler
// runs: who makes it, what it asks, the object it names and the status of
// its success.
func (s *Server) auditEntry(rt route, req *request) api.AuditEntry {
	who := req.who
	e := api.AuditEntry{
		Remote: remoteIP(req.Request), Method: rt.method, Route: rt.path,
		Path:   strings.TrimPrefix(req.URL.Path, "/api/v1"),
		Status: answerStatus(rt.answer),
	}
	switch {
	case who.Token != nil:
		e.Actor = api.AuditActor{Kind: api.ActorToken, ID: who.Token.ID, Name: who.Token.Name}
	case who.Join != nil:
		e.Actor = api.AuditActor{Kind: api.ActorJoinToken, ID: who.Join.ID, Name: who.Join.Name}
	default:
		e.Actor = api.AuditActor{Kind: api.ActorHost, ID: who.HostID}
		if _, name, _, ok := s.state.AuditTarget("host", who.HostID); ok {
			e.Actor.Name = name
		}
	}
	e.Fields, e.Redacted = auditBody(req.body)
	s.setTarget(&e, req.target, req.body)
	return e
}

// answerStatus is the status a success answer takes.
func answerStatus(answer any) int {
	switch answer.(type) {
	case created:
		return http.StatusCreated
	case noContent:
		return http.StatusNoContent
	}
	return http.StatusOK
}

// audit records a call of rt that wrote nothing (refused, failed, or with
// nothing to change) in the audit trail: the state stores a write's entry
// in the write's own transaction (state.WithAudit).
func (s *Server) audit(rt route, req *request, answer any, err error) {
	if req.record != nil && req.record.Committed() {
		return
	}
	if errors.Is(err, store.ErrUnavailable) {
		// The store the entry would go to is out of reach: trying would
		// only hold the answer for the store's timeout.
		s.metrics.auditFailures.Inc()
		return
	}
	var e api.AuditEntry
	if req.record != nil {
		e = req.record.Entry
	} else {
		e = s.auditEntry(rt, req)
	}
	if c, ok := answer.(created); ok {
		answer = c.v
	}
	if err != nil {
		var d api.ErrorDetail
		e.Status, d, _ = errorAnswer(err)
		e.Error = d.Message
	} else if id, ok := answer.(identified); ok && rt.method != http.MethodDelete {
		s.setTarget(&e, s.auditTarget(req.target.kind, id.ObjectID(), req.target.networks), req.body)
	}
	if rerr := s.state.RecordAudit(e); rerr != nil {
		s.metrics.auditFailures.Inc()
		s.log.Error("audit entry lost", "method", rt.method, "path", e.Path, "err", rerr)
	}
}

// setTarget names tgt as the object of e; its networks are those a
// create's body names when tgt's are not known.
func (s *Server) setTarget(e *api.AuditEntry, tgt auditTarget, body []byte) {
	e.Kind, e.ObjectID, e.ObjectName, e.Networks = tgt.kind, tgt.id, tgt.name, tgt.networks
	if len(e.Networks) == 0 {
		e.Networks = s.bodyNetworks(body)
	}
}

// auditTarget is the object of a write, as far as it is known.
type auditTarget struct {
	kind, id, name string
	networks       []string
}

// auditBefore resolves the object a call of rt names before the handler
// runs (a deleted object is gone after): by its path variable, and the
// {network} variable of a route nested in a network for the networks.
func (s *Server) auditBefore(rt route, req *request) auditTarget {
	kind, v := auditObject(rt)
	var nets []string
	if ref := req.vars["network"]; ref != "" {
		if n, err := s.state.Network(ref); err == nil {
			nets = []string{n.ID}
		}
	}
	if v == "" {
		return auditTarget{kind: kind, networks: nets}
	}
	return s.auditTarget(kind, req.vars[v], nets)
}

// auditTarget describes the object kind/ref, keeping ref and nets when the
// state does not know it.
func (s *Server) auditTarget(kind, ref string, nets []string) auditTarget {
	if id, name, n, ok := s.state.AuditTarget(kind, ref); ok {
		return auditTarget{kind: kind, id: id, name: name, networks: n}
	}
	return auditTarget{kind: kind, id: ref, networks: nets}
}

// bodyNetworks returns the network a create's body names (network_id or
// network), for the entry of a call that created nothing.
func (s *Server) bodyNetworks(body []byte) []string {
	var b struct {
		NetworkID any `json:"network_id"`
		Network   any `json:"network"`
	}
	if json.Unmarshal(body, &b) != nil {
		return nil
	}
	for _, ref := range []any{b.NetworkID, b.Network} {
		if r, ok := ref.(string); ok && r != "" {
			if n, err := s.state.Network(r); err == nil {
				return []string{n.ID}
			}
		}
	}
	return nil
}

// auditBody returns the body's top-level fields: the values of those in
// auditFields, and of those in serverFields when not zero, as compact JSON
// (cut at maxAuditValue bytes), and the names of the others. A body that is not a JSON object gives nothing.
func auditBody(body []byte) (map[string]string, []string) {
	var m map[string]json.RawMessage
	if len(body) == 0 || json.Unmarshal(body, &m) != nil {
		return nil, nil
	}
	names := slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	})
	if len(names) > maxAuditFields {
		names = names[:maxAuditFields]
	}
	var fields map[string]string
	var redacted []string
	for _, k := range names {
		if !auditFields[k] && !serverFields[k] {
			redacted = append(redacted, cut(k))
			continue
		}
		var buf bytes.Buffer
		if json.Compact(&buf, m[k]) != nil || serverFields[k] && zeroJSON[buf.String()] {
			continue
		}
		if fields == nil {
			fields = map[string]string{}
		}
		fields[k] = cut(buf.String())
	}
	return fields, redacted
}

// zeroJSON are the zero values of JSON fields, as the typed client sends them.
var zeroJSON = setOf(`""`, "0", "false", "null", "{}", "[]", `"0001-01-01T00:00:00Z"`)

// cut shortens s to maxAuditValue bytes, marking the cut.
func cut(s string) string {
	if len(s) <= maxAuditValue {
		return s
	}
	return strings.ToValidUTF8(s[:maxAuditValue], "") + "…"
}

// pruneAudit drops expired audit entries every interval until stop closes.
func (s *Server) pruneAudit(stop <-chan struct{}, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := s.state.PruneAudit(); err != nil {
			s.log.Error("pruning the audit trail", "err", err)
		} else if n > 0 {
			s.log.Debug("pruned the audit trail", "entries", n)
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// auditFilter parses the query of GET /audit; kinds are the object kinds
// the route table's writes name.
func (req *request) auditFilter(kinds []string) (state.AuditFilter, error) {
	q := req.URL.Query()
	f := state.AuditFilter{Actor: q.Get("token"), Object: q.Get("object"), Kind: q.Get("kind"), Method: strings.ToUpper(q.Get("method"))}
	var err error
	if f.Limit, err = intParam(q, "limit", 0, state.MaxLimit); err != nil {
		return f, err
	}
	if f.Offset, err = intParam(q, "offset", 0, 1<<31-1); err != nil {
		return f, err
	}
	now := req.s.state.Now()
	if f.Since, err = timeParam(q.Get("since"), "since", now); err != nil {
		return f, err
	}
	if f.Until, err = timeParam(q.Get("until"), "until", now); err != nil {
		return f, err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return f, badRequest("until", "must be after since")
	}
	for name, v := range map[string]string{"token": f.Actor, "object": f.Object} {
		if len(v) > maxRef {
			return f, badRequest(name, "is longer than %d characters", maxRef)
		}
	}
	if f.Kind != "" && !slices.Contains(kinds, f.Kind) {
		return f, badRequest("kind", "%q is not one of %s", cut(f.Kind), strings.Join(kinds, ", "))
	}
	switch f.Method {
	case "", http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		return f, badRequest("method", "%q is not POST, PUT, PATCH or DELETE", cut(q.Get("method")))
	}
	return f, nil
}

// timeParam parses an RFC 3339 time, or a duration back from now.
func timeParam(s, name string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, ok := api.ParseTimeOrAgo(s, now); ok {
		return t, nil
	}
	return time.Time{}, badRequest(name, "%q is neither an RFC 3339 time (2026-01-02T15:04:05Z) nor a duration back from now (24h)", cut(s))
}

// auditKindsOf lists the object kinds the audited routes name.
func auditKindsOf(routes []route) []string {
	var kinds []string
	for _, rt := range routes {
		if k, _ := auditObject(rt); audited(rt) && !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
	}
	slices.Sort(kinds)
	return kinds
}

// auditPruneInterval is how often Serve drops expired audit entries.
const auditPruneInterval = time.Minute

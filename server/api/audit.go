package api

import "time"

// AuditEntry records one management write made through the API, failed or
// not: who made it, what it asked, and what the server answered. It never
// holds a secret: Fields keeps the values of the request body's known
// non-secret fields and names the others in Redacted.
type AuditEntry struct {
	ID     string     `json:"id"` // ordered: a later entry has a greater id
	Time   time.Time  `json:"time"`
	Actor  AuditActor `json:"actor"`
	Remote string     `json:"remote,omitempty"` // the caller's IP address
	Method string     `json:"method"`
	Route  string     `json:"route"` // the route's pattern, e.g. /networks/{network}
	Path   string     `json:"path"`  // the path asked, e.g. /networks/prod
	// Kind, ObjectID and ObjectName name the object written (the one
	// created, changed, deleted or acted on), when known.
	Kind       string `json:"kind"`
	ObjectID   string `json:"object_id,omitempty"`
	ObjectName string `json:"object_name,omitempty"`
	// Networks are the ids of the networks the object is in, which decide
	// the tokens that see the entry.
	Networks []string `json:"networks,omitempty"`
	// Fields are the body's fields with their values as compact JSON text
	// (cut at 256 bytes); Redacted names the fields whose values are not
	// kept (secrets, and fields not known to be harmless).
	Fields   map[string]string `json:"fields,omitempty"`
	Redacted []string          `json:"redacted,omitempty"`
	Status   int               `json:"status"`          // the HTTP status answered
	Error    string            `json:"error,omitempty"` // the error message answered
}

// AuditActor is the credential that made a write.
type AuditActor struct {
	Kind string `json:"kind"` // token, join_token or host
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// Kinds of audit actors.
const (
	ActorToken     = "token"
	ActorJoinToken = "join_token"
	ActorHost      = "host"
)

// ParseTimeOrAgo parses an audit filter's time: an RFC 3339 time, or a
// non-negative duration back from now ("24h"). It reports false for
// anything else.
func ParseTimeOrAgo(s string, now time.Time) (time.Time, bool) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, true
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), true
	}
	return time.Time{}, false
}

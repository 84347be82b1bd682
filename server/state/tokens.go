package state

import (
	"cmp"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/drago-wg/drago/server/api"
	"github.com/drago-wg/drago/server/store"
)

// Secret prefixes tell the three kinds of credentials apart.
const (
	prefixManagement = "dgm"
	prefixJoin       = "dgj"
	prefixHost       = "dgh"
)

// Resource kinds that policies name.
var Resources = []string{"networks", "hosts", "interfaces", "connections", "rules", "tokens", "metrics", "audit"}

// Access levels; write implies read.
const (
	AccessRead  = "read"
	AccessWrite = "write"
)

type tokenRecord struct {
	api.Token
	Hash string `json:"hash"`
}

type joinRecord struct {
	api.JoinToken
	Hash string `json:"hash"`
}

type credRecord struct {
	HostID string `json:"host_id"`
	Hash   string `json:"hash"`
	// RequestHash is the hash of the register request's request_id and
	// JoinID the join token it came with, so that a retried registration
	// can be told from another agent taking the name; empty when the agent
	// sent no request_id.
	RequestHash string `json:"request_hash,omitempty"`
	JoinID      string `json:"join_id,omitempty"`
}

// reRegister answers a retried registration: when r names a host that a
// request with the same request_id and join token created, and the host has
// not reported yet (so its agent never got the first answer), it replaces the
// host's credential and returns the same host id with the new credential.
// It reports false when r is not such a retry. The caller holds s.mu.
func (s *State) reRegister(joinID string, r api.RegisterRequest) (*api.RegisterResponse, bool, error) {
	if r.RequestID == "" {
		return nil, false, nil
	}
	id, ok := s.hostByName[r.Name]
	if !ok {
		return nil, false, nil
	}
	c := s.creds[id]
	if c == nil || c.RequestHash == "" || c.JoinID != joinID || !hashMatches(r.RequestID, c.RequestHash) {
		return nil, false, nil
	}
	if s.hosts[id].LastSeen != nil || s.reports[id] != nil {
		return nil, false, nil // the agent has its credential: a second agent under the same name
	}
	w := s.begin()
	secret, hash := newSecret(prefixHost, id)
	c2 := *c
	c2.Hash = hash
	w.put(store.KindCredentials, id, &c2, "", "")
	if err := w.commit(); err != nil {
		return nil, true, err
	}
	return &api.RegisterResponse{HostID: id, Credential: secret}, true, nil
}

// newSecret returns "<prefix>_<id>_<random>" and the hash of the random part.
// The id finds the record; the hash is compared in constant time.
func newSecret(prefix, id string) (secret, hash string) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	r := base64.RawURLEncoding.EncodeToString(b)
	return prefix + "_" + id + "_" + r, hashOf(r)
}

func hashOf(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// splitSecret returns the prefix, id and random part of a secret.
func splitSecret(secret string) (prefix, id, random string, ok bool) {
	parts := strings.SplitN(secret, "_", 3)
	if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

func hashMatches(random, hash string) bool {
	return subtle.ConstantTimeCompare([]byte(hashOf(random)), []byte(hash)) == 1
}

// Authenticate resolves a bearer secret; nil when it is unknown, expired or used up.
func (s *State) Authenticate(secret string) *Principal {
	prefix, id, random, ok := splitSecret(secret)
	if !ok {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	switch prefix {
	case prefixManagement:
		if t, ok := s.tokens[id]; ok && hashMatches(random, t.Hash) {
			tok := t.Token
			return &Principal{Token: &tok}
		}
	case prefixHost:
		if c, ok := s.creds[id]; ok && hashMatches(random, c.Hash) {
			return &Principal{HostID: c.HostID}
		}
	case prefixJoin:
		if j, ok := s.joins[id]; ok && hashMatches(random, j.Hash) {
			jt := j.JoinToken
			return &Principal{Join: &jt}
		}
	}
	return nil
}

// EnsureRootToken creates the root management token when no token exists
// and returns its secret; "" when tokens already exist.
func (s *State) EnsureRootToken() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.tokens) > 0 {
		return "", nil
	}
	t := &tokenRecord{Token: api.Token{Name: "root", Root: true, Policies: []api.Policy{}}}
	w := s.begin()
	w.meta(&t.Meta)
	secret, hash := newSecret(prefixManagement, t.ID)
	t.Hash = hash
	w.put(store.KindTokens, t.ID, t, "created", t.Name)
	return secret, w.commit()
}

// Tokens lists the management tokens p may see, without secrets.
func (s *State) Tokens(p *Principal, f Filter) api.List[api.Token] {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []api.Token
	for _, t := range s.tokens {
		if f.nameMatches(t.Name) && p.seesToken(&t.Token) {
			out = append(out, t.Token)
		}
	}
	slices.SortFunc(out, func(a, b api.Token) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID)) })
	return page(out, f)
}

// Token returns a management token by id, without secret; a token p may
// not see is not found.
func (s *State) Token(p *Principal, id string) (*api.Token, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.tokens[id]
	if !ok || !p.seesToken(&t.Token) && (p.Token == nil || p.Token.ID != id) {
		return nil, notFound("token", id)
	}
	return clone(&t.Token), nil
}

// CreateToken creates a management token no stronger than the creator's and
// returns it with its secret, the only time the secret is shown.
func (s *State) CreateToken(creator *Principal, t api.Token) (*api.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t.Root {
		return nil, invalid("root", "only the server creates the root token")
	}
	if t.Secret != "" {
		return nil, invalid("secret", "is generated by the server")
	}
	if err := checkNewMeta(&t.Meta); err != nil {
		return nil, err
	}
	if err := checkObjectName("name", t.Name, "a token name (letters, digits, '.', '_', '-')"); err != nil {
		return nil, err
	}
	if len(t.Policies) == 0 {
		return nil, invalid("policies", "at least one policy is required")
	}
	for k, pol := range t.Policies {
		field := "policies[" + strconv.Itoa(k) + "]"
		if pol.Resource != "*" && !slices.Contains(Resources, pol.Resource) {
			return nil, invalid(field+".resource", "%q is not one of %s or *", pol.Resource, strings.Join(Resources, ", "))
		}
		if pol.Access != AccessRead && pol.Access != AccessWrite {
			return nil, invalid(field+".access", "%q is not read or write", pol.Access)
		}
		if len(pol.Networks) > maxRefs {
			return nil, invalid(field+".networks", "lists more than %d networks", maxRefs)
		}
		for j, ref := range pol.Networks {
			n, err := s.network(ref)
			if err != nil {
				return nil, invalid(field+".networks["+strconv.Itoa(j)+"]", "network %q not found", ref)
			}
			t.Policies[k].Networks[j] = n.ID
		}
		if !creator.covers(t.Policies[k]) {
			return nil, forbiddenField(field, "grants more than the creating token holds")
		}
	}
	rec := &tokenRecord{Token: t}
	w := s.begin()
	w.meta(&rec.Meta)
	secret, hash := newSecret(prefixManagement, rec.ID)
	rec.Hash = hash
	w.put(store.KindTokens, rec.ID, rec, "created", rec.Name)
	if err := w.commit(); err != nil {
		return nil, err
	}
	out := clone(&rec.Token)
	out.Secret = secret
	return out, nil
}

// DeleteToken revokes a management token on behalf of p, which must hold
// every grant of that token (only the root token revokes the root token);
// the root token cannot be revoked while it is the only one.
func (s *State) DeleteToken(p *Principal, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[id]
	if !ok || !p.seesToken(&t.Token) {
		return notFound("token", id)
	}
	if !p.coversToken(&t.Token) {
		return forbidden("token %s grants more than the calling token holds", id)
	}
	if t.Root && len(s.tokens) == 1 {
		return conflict("id", "the root token is the only token left")
	}
	w := s.begin()
	w.del(store.KindTokens, id, t.Name)
	return w.commit()
}

// JoinTokens lists the join tokens p may see (all their networks within its
// token read scope), without secrets.
func (s *State) JoinTokens(p *Principal, f Filter) api.List[api.JoinToken] {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []api.JoinToken
	for _, j := range s.joins {
		if f.nameMatches(j.Name) && p.AllowedAll("tokens", AccessRead, j.Networks) {
			out = append(out, j.JoinToken)
		}
	}
	slices.SortFunc(out, func(a, b api.JoinToken) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID)) })
	return page(out, f)
}

// JoinToken returns a join token by id, without secret; one p may not see
// is not found.
func (s *State) JoinToken(p *Principal, id string) (*api.JoinToken, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	j, ok := s.joins[id]
	if !ok || !p.AllowedAll("tokens", AccessRead, j.Networks) {
		return nil, notFound("join token", id)
	}
	return clone(&j.JoinToken), nil
}

// DefaultJoinTokenTTL is the lifetime of a join token created with neither
// an expiry nor a use limit: no join token is unlimited by default.
const DefaultJoinTokenTTL = 24 * time.Hour

// CreateJoinToken creates a join token on behalf of p and returns it with
// its secret once. Networks may be names or ids; p must be allowed to add
// hosts and interfaces to each (see mayJoin).
func (s *State) CreateJoinToken(p *Principal, j api.JoinToken) (*api.JoinToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if j.Secret != "" {
		return nil, invalid("secret", "is generated by the server")
	}
	if err := checkNewMeta(&j.Meta); err != nil {
		return nil, err
	}
	if j.Uses != 0 {
		return nil, invalid("uses", "is counted by the server")
	}
	if j.Name == "" {
		j.Name = "join"
	}
	if err := checkObjectName("name", j.Name, "a token name (letters, digits, '.', '_', '-')"); err != nil {
		return nil, err
	}
	if j.MaxUses < 0 {
		return nil, invalid("max_uses", "must be 0 (unlimited) or more")
	}
	if j.ExpiresAt != nil && !j.ExpiresAt.After(s.opts.Now()) {
		return nil, invalid("expires_at", "is in the past")
	}
	if err := checkLabels("labels", j.Labels); err != nil {
		return nil, err
	}
	if err := checkNamePattern("name_pattern", j.NamePattern); err != nil {
		return nil, err
	}
	if len(j.Networks) > maxRefs {
		return nil, invalid("networks", "lists more than %d networks", maxRefs)
	}
	for k, ref := range j.Networks {
		n, err := s.network(ref)
		if err != nil {
			return nil, invalid("networks["+strconv.Itoa(k)+"]", "network %q not found", ref)
		}
		j.Networks[k] = n.ID
	}
	if !p.mayJoin(j.Networks) {
		return nil, forbiddenField("networks", "the calling token may not add hosts and interfaces there")
	}
	if j.NeverExpires && j.ExpiresAt != nil {
		return nil, invalid("never_expires", "contradicts expires_at")
	}
	if j.ExpiresAt == nil && j.MaxUses == 0 && !j.NeverExpires {
		exp := s.opts.Now().Add(DefaultJoinTokenTTL).UTC()
		j.ExpiresAt = &exp
	}
	rec := &joinRecord{JoinToken: j}
	w := s.begin()
	w.meta(&rec.Meta)
	secret, hash := newSecret(prefixJoin, rec.ID)
	rec.Hash = hash
	w.put(store.KindJoinTokens, rec.ID, rec, "created", rec.Name)
	if err := w.commit(); err != nil {
		return nil, err
	}
	out := clone(&rec.JoinToken)
	out.Secret = secret
	return out, nil
}

// DeleteJoinToken revokes a join token on behalf of p, which must be
// allowed to create it; hosts that joined with it stay.
func (s *State) DeleteJoinToken(p *Principal, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	j, ok := s.joins[id]
	if !ok || !p.AllowedAll("tokens", AccessRead, j.Networks) {
		return notFound("join token", id)
	}
	if !p.AllowedAll("tokens", AccessWrite, j.Networks) || !p.mayJoin(j.Networks) {
		return forbidden("join token %s reaches networks the calling token may not add hosts to", id)
	}
	w := s.begin()
	w.del(store.KindJoinTokens, id, j.Name)
	return w.commit()
}

// usable reports why a join token cannot register a host now, or nil.
func (s *State) joinUsable(j *joinRecord, now time.Time) error {
	if j.ExpiresAt != nil && !now.Before(*j.ExpiresAt) {
		return forbidden("join token has expired")
	}
	if j.MaxUses > 0 && j.Uses >= j.MaxUses {
		return forbidden("join token has been used %d times, its limit", j.Uses)
	}
	return nil
}

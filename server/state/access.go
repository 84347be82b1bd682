package state

import (
	"slices"

	"github.com/drago-wg/drago/server/api"
)

// Principal is an authenticated caller.
type Principal struct {
	Token  *api.Token // management token, or nil
	HostID string     // host credential, or ""
	Join   *api.JoinToken
}

// Trusted is the principal of in-process callers (tools and tests): it acts
// as the root token.
var Trusted = &Principal{Token: &api.Token{Name: "in-process", Root: true}}

// Allowed reports whether the principal's management token grants access to
// resource, for networkID when the resource belongs to a network ("" for any:
// only a grant without a network list covers every network).
func (p *Principal) Allowed(resource, access, networkID string) bool {
	if p == nil || p.Token == nil {
		return false
	}
	if p.Token.Root {
		return true
	}
	for _, pol := range p.Token.Policies {
		if pol.Resource != resource && pol.Resource != "*" {
			continue
		}
		if access == AccessWrite && pol.Access != AccessWrite {
			continue
		}
		if len(pol.Networks) == 0 || (networkID != "" && slices.Contains(pol.Networks, networkID)) {
			return true
		}
	}
	return false
}

// AllowedAll reports whether the principal holds access to resource in every
// one of nets; an object in no network (nets empty) needs an unscoped grant.
func (p *Principal) AllowedAll(resource, access string, nets []string) bool {
	if len(nets) == 0 {
		return p.Allowed(resource, access, "")
	}
	for _, n := range nets {
		if !p.Allowed(resource, access, n) {
			return false
		}
	}
	return true
}

// AllowedSome reports whether the principal holds access to resource in at
// least one of nets (an unscoped grant covers an object in no network).
func (p *Principal) AllowedSome(resource, access string, nets []string) bool {
	if p.Allowed(resource, access, "") {
		return true
	}
	for _, n := range nets {
		if p.Allowed(resource, access, n) {
			return true
		}
	}
	return false
}

// AllowedAny reports whether the principal holds access to resource for at
// least one network (or all); per-object checks then use Allowed.
func (p *Principal) AllowedAny(resource, access string) bool {
	if p == nil || p.Token == nil {
		return false
	}
	if p.Token.Root {
		return true
	}
	for _, pol := range p.Token.Policies {
		if (pol.Resource == resource || pol.Resource == "*") && (access == AccessRead || pol.Access == AccessWrite) {
			return true
		}
	}
	return false
}

// NetworkScope returns the networks the principal may see for resource, or
// nil for all of them.
func (p *Principal) NetworkScope(resource string) []string {
	if p.Token == nil || p.Token.Root {
		return nil
	}
	scope := []string{}
	for _, pol := range p.Token.Policies {
		if pol.Resource != resource && pol.Resource != "*" {
			continue
		}
		if len(pol.Networks) == 0 {
			return nil
		}
		scope = append(scope, pol.Networks...)
	}
	return scope
}

// covers reports whether the principal holds every grant of pol, so a token
// can only create tokens weaker than itself.
func (p *Principal) covers(pol api.Policy) bool {
	resources := []string{pol.Resource}
	if pol.Resource == "*" {
		resources = Resources
	}
	for _, r := range resources {
		if !p.AllowedAll(r, pol.Access, pol.Networks) {
			return false
		}
	}
	return true
}

// coversToken reports whether the principal holds every grant of t: only
// such a principal may see or revoke t. Only the root token covers itself.
func (p *Principal) coversToken(t *api.Token) bool {
	if t.Root {
		return p.Token != nil && p.Token.Root
	}
	for _, pol := range t.Policies {
		if !p.covers(pol) {
			return false
		}
	}
	return true
}

// mayJoin reports whether the principal may let hosts join nets: a join
// token creates hosts and their interfaces there, so it takes write access
// to both in each network (unscoped when nets is empty).
func (p *Principal) mayJoin(nets []string) bool {
	return p.AllowedAll("hosts", AccessWrite, nets) && p.AllowedAll("interfaces", AccessWrite, nets)
}

// seesToken reports whether the principal may read t: every network t's
// policies name is within its token read scope (the root token and tokens
// without a network list take an unscoped grant).
func (p *Principal) seesToken(t *api.Token) bool {
	if t.Root {
		return p.Allowed("tokens", AccessRead, "")
	}
	for _, pol := range t.Policies {
		if !p.AllowedAll("tokens", AccessRead, pol.Networks) {
			return false
		}
	}
	return true
}

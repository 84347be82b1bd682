package state

import (
	"strings"

	"github.com/drago-wg/drago/server/api"
)

// Filter selects and pages the objects of a list call. References are names
// or ids as the API accepts them.
type Filter struct {
	Limit, Offset int
	Query         string // name prefix
	Network       string
	Host          string
	Interface     string
	Status        string
	LabelKey      string
	LabelValue    string
	Networks      []string // when not nil, only these network ids (token scope)
	// FirewallBehind keeps the interfaces whose agent does not enforce the
	// revision of the policy they must (api.FirewallBehind).
	FirewallBehind bool
}

// DefaultLimit and MaxLimit bound a page.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

func (f Filter) inScope(networkID string) bool {
	if f.Networks == nil {
		return true
	}
	for _, n := range f.Networks {
		if n == networkID {
			return true
		}
	}
	return false
}

func (f Filter) nameMatches(name string) bool {
	return f.Query == "" || strings.HasPrefix(name, f.Query)
}

// page cuts items (already filtered and sorted) to the filter's window.
func page[T any](items []T, f Filter) api.List[T] {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	total := len(items)
	start := min(max(f.Offset, 0), total)
	end := min(start+limit, total)
	out := make([]T, end-start)
	copy(out, items[start:end])
	return api.List[T]{Items: out, Offset: start, Total: total}
}

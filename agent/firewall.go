package agent

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/drago-wg/drago/platform"
	"github.com/drago-wg/drago/server/api"
)

// firewallState is what the agent knows of one interface's access policy
// on the host.
type firewallState struct {
	enforced uint64 // the revision in force; 0 for none
	inForce  bool   // a policy (of revision enforced) is in force
	err      error  // why the desired policy is not in force
}

// reconcileFirewall brings the policy of interface w, whose device exists,
// in line: it applies w's policy, or removes drago's rules for w when it has
// none. Unless full, a policy of the revision already in force is not
// applied again: only the drift check (full) has the firewall compare with
// the kernel and repair what was changed by hand. A malformed policy leaves
// the rules in force as they are. It returns the firewall's changes.
func (r *reconciler) reconcileFirewall(w wantInterface, full bool) (int, error) {
	st, known := r.firewalls[w.Name]
	switch {
	case w.FirewallErr != nil:
		st.err = fmt.Errorf("invalid policy from the server: %w", w.FirewallErr)
		r.firewalls[w.Name] = st
		r.log.Error("leaving the interface's access policy as it is", "interface", w.Name, "err", w.FirewallErr)
		return 0, nil
	case r.fw == nil:
		r.firewalls[w.Name] = firewallState{err: r.fwErr}
		return 0, nil
	case w.FirewallSrc == nil:
		if !full && known && !st.inForce && st.err == nil {
			return 0, nil
		}
		ops, err := r.fw.Remove(w.Name)
		if err != nil {
			r.firewalls[w.Name] = firewallState{err: err}
			return ops.Total(), fmt.Errorf("removing the access policy: %w", err)
		}
		r.firewalls[w.Name] = firewallState{}
		if ops.Total() > 0 {
			r.log.Info("removed access policy", "interface", w.Name)
		}
		return ops.Total(), nil
	}
	rev := w.FirewallSrc.Revision
	if !full && known && st.inForce && st.err == nil && st.enforced == rev {
		return 0, nil
	}
	ops, err := r.fw.Apply(w.Name, w.Firewall)
	if err != nil {
		st.err = err
		r.firewalls[w.Name] = st
		return 0, fmt.Errorf("applying access policy revision %d: %w", rev, err)
	}
	r.firewalls[w.Name] = firewallState{enforced: rev, inForce: true}
	if ops.Total() > 0 {
		r.log.Info("applied access policy", "interface", w.Name, "revision", rev, "tables", ops.Tables, "chains", ops.Chains,
			"rules", ops.Rules, "sets", ops.Sets, "elements", ops.Elements)
	}
	return ops.Total(), nil
}

// removeFirewall removes drago's rules for interface name, which is going.
func (r *reconciler) removeFirewall(name string) error {
	delete(r.firewalls, name)
	if r.fw == nil {
		return nil
	}
	if _, err := r.fw.Remove(name); err != nil {
		return fmt.Errorf("removing the access policy of %s: %w", name, err)
	}
	return nil
}

// firewallStatus reports whether w's policy is in force, or why not; nil
// when w has none.
func (r *reconciler) firewallStatus(w wantInterface) *api.FirewallStatus {
	if w.FirewallSrc == nil {
		return nil
	}
	st := r.firewalls[w.Name]
	out := &api.FirewallStatus{}
	if st.inForce {
		out.Revision = st.enforced
	}
	switch {
	case st.err != nil:
		out.Reason = firewallReason(st.err)
	case !st.inForce || st.enforced != w.FirewallSrc.Revision:
		out.Reason = "not applied yet"
	default:
		out.Enforced = true
	}
	return out
}

// maxReason is the longest reason the server takes in a status report;
// a longer one, or one with a non-printable character, fails the report.
const maxReason = 256

// firewallReason is the text of err for the host status: the platform's
// own words when the host cannot enforce policies. It is cut to maxReason
// bytes, on one line of printable characters (kernel errors come joined
// by newlines).
func firewallReason(err error) string {
	s := err.Error()
	if !errors.Is(err, platform.ErrFirewallUnsupported) {
		s = "not enforced: " + s
	}
	s = strings.Map(func(r rune) rune {
		if !unicode.IsPrint(r) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "?"))
	if len(s) > maxReason {
		cut := maxReason - len("...")
		for !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

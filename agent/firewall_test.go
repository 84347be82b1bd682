package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/drago-wg/drago/platform"
	"github.com/drago-wg/drago/platform/platformtest"
	"github.com/drago-wg/drago/server/api"
)

// withFirewall returns testState(2) with a default-drop policy of the
// given revision on its interface.
func withFirewall(rev uint64) *api.DesiredState {
	ds := testState(2)
	ds.Interfaces[0].Firewall = &api.DesiredFirewall{Revision: rev, DefaultAction: api.ActionDrop,
		Sets:  []api.FirewallSet{{Name: "role=web", Addresses: []string{"10.0.0.2/32"}}},
		Rules: []api.FirewallRule{{Action: api.ActionAccept, From: "role=web", Protocol: api.ProtocolTCP, Ports: []api.PortRange{{First: 5432, Last: 5432}}}}}
	return ds
}

// newFirewallFixture is newFixture with a fake firewall.
func newFirewallFixture(t *testing.T) (*fixture, *platformtest.Firewall) {
	f := newFixture(t)
	fw := platformtest.NewFirewall()
	f.rec.fw, f.rec.fwErr = fw, nil
	return f, fw
}

// firewallStatus returns the status the reconciler reports for ds's first
// interface.
func firewallStatus(t *testing.T, f *fixture, ds *api.DesiredState) *api.FirewallStatus {
	t.Helper()
	st := f.rec.statusFrom(ds, f.rec.reader(false))
	if len(st) != 1 {
		t.Fatalf("status of %d interfaces", len(st))
	}
	return st[0].Firewall
}

func TestReconcileAppliesFirewall(t *testing.T) {
	f, fw := newFirewallFixture(t)
	ds := withFirewall(3)
	f.apply(ds)
	p := fw.Policy("drago-a")
	if p == nil || p.DefaultAccept || len(p.Rules) != 1 || len(p.Sets["role=web"]) != 1 {
		t.Fatalf("policy applied: %+v", p)
	}
	if d := cmp.Diff(&api.FirewallStatus{Revision: 3, Enforced: true}, firewallStatus(t, f, ds)); d != "" {
		t.Errorf("status (-want +got):\n%s", d)
	}

	// The same state again, through either path, applies nothing.
	for _, full := range []bool{false, true} {
		if _, err := f.rec.run(context.Background(), ds, full); err != nil {
			t.Fatal(err)
		}
	}
	if fw.Changes() != 1 {
		t.Errorf("changes = %d after re-applying the same policy, want 1", fw.Changes())
	}
}

// TestReconcileChangesAppliesNewPolicies: a whole state changing only the
// policy, and deltas on it, reach the firewall in the update path: a delta
// of peers keeps the policy, a delta with a firewall replaces it.
func TestReconcileChangesAppliesNewPolicies(t *testing.T) {
	f, fw := newFirewallFixture(t)
	base := withFirewall(1)
	if _, err := f.rec.reconcileChanges(context.Background(), base); err != nil {
		t.Fatal(err)
	}
	next := withFirewall(2)
	next.Index = 8
	next.Interfaces[0].Firewall.Sets[0].Addresses = append(next.Interfaces[0].Firewall.Sets[0].Addresses, "10.0.0.3/32")
	if _, err := f.rec.reconcileChanges(context.Background(), next); err != nil {
		t.Fatal(err)
	}
	if got := fw.Policy("drago-a").Sets["role=web"]; len(got) != 2 {
		t.Fatalf("the new revision's set = %v, want 2 prefixes", got)
	}
	delta := &api.DesiredState{Index: 9, HostID: next.HostID, BaseIndex: 8, Patches: []api.PeerPatch{{InterfaceID: "if-a",
		Peers: []api.DesiredPeer{{InterfaceID: "if-z", PublicKey: peerKey(40).String(), AllowedIPs: []string{"10.0.0.40/32"}}}}}}
	patched, err := delta.Patched(next)
	if err != nil {
		t.Fatal(err)
	}
	before := fw.Changes()
	if _, err := f.rec.reconcileChanges(context.Background(), patched); err != nil {
		t.Fatal(err)
	}
	if fw.Changes() != before || fw.Policy("drago-a") == nil {
		t.Errorf("a peer patch changed the firewall: %d changes, policy %v", fw.Changes()-before, fw.Policy("drago-a"))
	}
	if st := firewallStatus(t, f, patched); st == nil || !st.Enforced || st.Revision != 2 {
		t.Errorf("status after the patch = %+v, want revision 2 enforced", st)
	}

	// A delta that replaces the firewall (a host joined a set).
	fwPatch := *patched.Interfaces[0].Firewall
	fwPatch.Revision = 3
	fwPatch.DefaultAction = api.ActionAccept
	delta = &api.DesiredState{Index: 10, HostID: next.HostID, BaseIndex: 9, Patches: []api.PeerPatch{{InterfaceID: "if-a", Firewall: &fwPatch}}}
	if patched, err = delta.Patched(patched); err != nil {
		t.Fatal(err)
	}
	if _, err := f.rec.reconcileChanges(context.Background(), patched); err != nil {
		t.Fatal(err)
	}
	if p := fw.Policy("drago-a"); p == nil || !p.DefaultAccept {
		t.Errorf("the firewall of a delta was not applied: %+v", p)
	}
}

func TestReconcileRepairsFirewallDriftOnFullPass(t *testing.T) {
	f, fw := newFirewallFixture(t)
	ds := withFirewall(1)
	f.apply(ds)
	fw.Drop("drago-a") // nft flush table inet drago
	if _, err := f.rec.reconcileChanges(context.Background(), ds); err != nil {
		t.Fatal(err)
	}
	if fw.Policy("drago-a") != nil {
		t.Fatal("the update path read the firewall; only the drift pass should")
	}
	res, err := f.rec.reconcile(context.Background(), ds)
	if err != nil {
		t.Fatal(err)
	}
	if fw.Policy("drago-a") == nil || res.Ops == 0 {
		t.Errorf("drift pass: policy %v, ops %d; want the policy back, counted", fw.Policy("drago-a"), res.Ops)
	}
}

func TestReconcileRemovesFirewall(t *testing.T) {
	f, fw := newFirewallFixture(t)
	f.apply(withFirewall(1))

	// The policy goes: the rules go, the interface stays.
	none := testState(2)
	none.Index = 8
	if _, err := f.rec.reconcileChanges(context.Background(), none); err != nil {
		t.Fatal(err)
	}
	if fw.Policy("drago-a") != nil {
		t.Error("rules left after the policy went")
	}
	if st := firewallStatus(t, f, none); st != nil {
		t.Errorf("status without a policy = %+v, want none", st)
	}

	// The interface goes: its rules too.
	f.apply(withFirewall(2))
	f.apply(&api.DesiredState{Index: 10, HostID: "host-1"})
	if fw.Policy("drago-a") != nil {
		t.Error("rules left after the interface went")
	}
}

func TestReconcileLeavesFirewallOnBadPolicy(t *testing.T) {
	f, fw := newFirewallFixture(t)
	f.apply(withFirewall(1))
	bad := withFirewall(2)
	bad.Interfaces[0].Firewall.Rules[0].Protocol = "sctp"
	f.apply(bad)
	if p := fw.Policy("drago-a"); p == nil || len(p.Rules) != 1 || p.Rules[0].Protocol != api.ProtocolTCP {
		t.Errorf("policy in force after a bad one: %+v, want revision 1's", p)
	}
	st := firewallStatus(t, f, bad)
	if st == nil || st.Enforced || st.Revision != 1 || !strings.Contains(st.Reason, "rules[0].protocol") {
		t.Errorf("status = %+v, want revision 1 in force, not enforced, naming rules[0].protocol", st)
	}
	if !hasDevice(f.fake, "drago-a", 2) {
		t.Error("a bad policy blocked the interface")
	}
}

func TestFirewallStatusWhenNotEnforced(t *testing.T) {
	t.Run("unsupported", func(t *testing.T) {
		f := newFixture(t)
		f.rec.fw, f.rec.fwErr = nil, errors.Join(platform.ErrFirewallUnsupported, errors.New("no nf_tables"))
		ds := withFirewall(1)
		f.apply(ds)
		st := firewallStatus(t, f, ds)
		if st == nil || st.Enforced || !strings.Contains(st.Reason, "no nf_tables") {
			t.Errorf("status = %+v", st)
		}
	})
	t.Run("apply fails", func(t *testing.T) {
		f, fw := newFirewallFixture(t)
		f.apply(withFirewall(1))
		fw.Fail(errors.New("netlink: operation not permitted"))
		ds := withFirewall(2)
		if _, err := f.rec.reconcile(context.Background(), ds); err == nil || !strings.Contains(err.Error(), "revision 2") {
			t.Errorf("reconcile err = %v", err)
		}
		st := firewallStatus(t, f, ds)
		if st == nil || st.Enforced || st.Revision != 1 || !strings.Contains(st.Reason, "operation not permitted") {
			t.Errorf("status = %+v, want revision 1 in force and the failure", st)
		}
		fw.Fail(nil)
		if _, err := f.rec.reconcile(context.Background(), ds); err != nil {
			t.Fatal(err)
		}
		if st := firewallStatus(t, f, ds); !st.Enforced || st.Revision != 2 {
			t.Errorf("status after the retry = %+v", st)
		}
	})
}

// TestAgentReportsAndRepairsFirewall runs the agent: the policy of the
// state is applied and reported, a hand flush is repaired by the drift
// check, and stopping the agent leaves the rules in force.
func TestAgentReportsAndRepairsFirewall(t *testing.T) {
	s := newFakeServer(t)
	s.setState(withFirewall(4))
	fake, fw := platformtest.NewRecorder(), platformtest.NewFirewall()
	cfg := testConfig(t, s, t.TempDir())
	cfg.Firewall = fw
	cfg.DriftInterval = 30 * time.Millisecond
	a := startAgent(t, cfg, fake, nil)
	waitFor(t, "a report of the policy in force", func() bool {
		r := s.lastReport()
		return r != nil && len(r.Interfaces) == 1 && r.Interfaces[0].Firewall != nil &&
			*r.Interfaces[0].Firewall == api.FirewallStatus{Revision: 4, Enforced: true}
	})
	fw.Drop("drago-a")
	waitFor(t, "the policy restored", func() bool { return fw.Policy("drago-a") != nil })
	if err := a.stop(t); err != nil {
		t.Fatal(err)
	}
	if fw.Policy("drago-a") == nil {
		t.Error("stopping the agent removed the rules")
	}
}

// TestFirewallReasonFitsTheServer: reasons are what the server accepts in
// a status report (api.CheckPrintable, at most 256 bytes).
func TestFirewallReasonFitsTheServer(t *testing.T) {
	for _, err := range []error{
		errors.Join(errors.New("conn.Receive: no such file"), errors.New("operation not permitted")),
		errors.New(strings.Repeat("é", 300)),
		fmt.Errorf("%w: nf_tables not available: %s", platform.ErrFirewallUnsupported, strings.Repeat("x", 400)),
	} {
		r := firewallReason(err)
		if len(r) > 256 || api.CheckPrintable(r) != nil {
			t.Errorf("reason %q (%d bytes): %v", r, len(r), api.CheckPrintable(r))
		}
	}
	if r := firewallReason(errors.Join(errors.New("a"), errors.New("b"))); r != "not enforced: a b" {
		t.Errorf("joined errors give %q", r)
	}
}

package api

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestPatchedFirewall: a delta's firewall carries the sets that changed;
// Patched takes the others its rules name from the base state.
func TestPatchedFirewall(t *testing.T) {
	web := FirewallSet{Name: "f1", Addresses: []string{"10.0.0.1/32", "10.0.0.2/32"}}
	self := FirewallSet{Name: "t1", Addresses: []string{"10.0.0.3/32"}}
	old := FirewallSet{Name: "f9", Addresses: []string{"10.0.0.9/32"}}
	base := &DesiredState{Index: 5, HostID: "h", Interfaces: []DesiredInterface{{ID: "i", Firewall: &DesiredFirewall{
		Revision: 1, DefaultAction: ActionDrop, Sets: []FirewallSet{web, old, self},
		Rules: []FirewallRule{{Action: ActionAccept, From: "f1", To: "t1", Protocol: ProtocolTCP}, {Action: ActionAccept, From: "f9", Protocol: ProtocolAny}},
	}}}}
	patch := &DesiredFirewall{Revision: 2, DefaultAction: ActionDrop, Rules: []FirewallRule{
		{Action: ActionAccept, From: "f1", To: "t1", Protocol: ProtocolTCP, Ports: []PortRange{{First: 22, Last: 22}}},
	}}
	delta := &DesiredState{Index: 6, BaseIndex: 5, HostID: "h", Patches: []PeerPatch{{InterfaceID: "i", Firewall: patch}}}
	got, err := delta.Patched(base)
	if err != nil {
		t.Fatal(err)
	}
	want := &DesiredFirewall{Revision: 2, DefaultAction: ActionDrop, Sets: []FirewallSet{web, self}, Rules: patch.Rules}
	if diff := cmp.Diff(want, got.Interfaces[0].Firewall); diff != "" {
		t.Errorf("patched firewall (-want +got):\n%s", diff)
	}
	if len(patch.Sets) != 0 || len(base.Interfaces[0].Firewall.Sets) != 3 {
		t.Error("Patched changed the delta or the base")
	}
	// A changed set in the patch wins over the base's.
	web2 := FirewallSet{Name: "f1", Addresses: []string{"10.0.0.1/32"}}
	delta.Patches[0].Firewall = &DesiredFirewall{Revision: 3, DefaultAction: ActionDrop, Sets: []FirewallSet{web2}, Rules: patch.Rules}
	if got, err = delta.Patched(base); err != nil || !cmp.Equal(got.Interfaces[0].Firewall.Sets, []FirewallSet{web2, self}) {
		t.Errorf("patch with a changed set: %+v %v", got, err)
	}
	// A set neither holds is an error, not a rule without addresses.
	delta.Patches[0].Firewall = &DesiredFirewall{Revision: 4, DefaultAction: ActionDrop, Rules: []FirewallRule{{Action: ActionAccept, From: "f7", Protocol: ProtocolAny}}}
	if _, err := delta.Patched(base); err == nil || !strings.Contains(err.Error(), `"f7"`) {
		t.Errorf("patch naming an unknown set: %v", err)
	}
}

package main

import (
	"cmp"
	"context"
	"fmt"
	"io"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/drago-wg/drago/server/api"
)

// serverStatus is the -json answer of drago status.
type serverStatus struct {
	Address  string       `json:"address"`
	Health   api.Health   `json:"health"`
	Overview api.Overview `json:"overview"`
	// FirewallBehind lists the interfaces whose agent does not enforce
	// the access policy they must (when the overview counts some).
	FirewallBehind []api.Interface `json:"firewall_behind,omitempty"`
	// Cluster is the servers sharing the store.
	Cluster *api.Cluster `json:"cluster,omitempty"`
}

// clusterString sums up the cluster in one line.
func clusterString(c *api.Cluster) string {
	health := "up to date"
	if !c.Healthy {
		health = "CUT OFF from its store"
	}
	return fmt.Sprintf("%s store, %d servers, jobs run by %s; this server (%s) is %s", c.Store, len(c.Servers), cmp.Or(c.Leader, "none"), c.Server, health)
}

func enforcementString(behind int) string {
	if behind == 0 {
		return "enforced everywhere it applies"
	}
	return fmt.Sprintf("%d interfaces do not enforce it (below)", behind)
}

func statusCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago status", e)
	return &ffcli.Command{
		Name:       "status",
		ShortUsage: "drago status [-json]",
		ShortHelp:  "Show the server's health and counts of networks, hosts up and down, devices",
		LongHelp: `Show whether the server answers, its version, and how many networks,
interfaces and devices it holds and how many hosts are up (ready), down or
pending, and the interfaces whose agent does not enforce the access policy
it must (drago rule). Exit code 1 when the server does not answer or
refuses the token.

Example:
  drago status
  drago status -json | jq .overview.hosts_down
` + connectionHelp,
		FlagSet: fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			h, err := c.Health(ctx)
			if err != nil {
				return fmt.Errorf("server %s does not answer: %w", c.Address(), err)
			}
			o, err := c.Overview(ctx)
			if err != nil {
				return err
			}
			st := serverStatus{Address: c.Address(), Health: *h, Overview: *o}
			if st.Cluster, err = c.Cluster(ctx); err != nil {
				return err
			}
			if o.FirewallBehind > 0 {
				if st.FirewallBehind, err = listAll(ctx, c.Interfaces, api.ListOptions{Firewall: "behind"}); err != nil {
					return err
				}
			}
			return s.print(st, func(w io.Writer) {
				fields(w, []field{
					{"Server", fmt.Sprintf("%s (%s, version %s)", st.Address, h.Status, h.Version)},
					{"Networks", itoa(o.Networks)},
					{"Hosts", fmt.Sprintf("%d (%d up, %d down, %d pending)", o.Hosts, o.HostsReady, o.HostsDown, o.Pending)},
					{"Interfaces", itoa(o.Interfaces)},
					{"Devices", itoa(o.Devices)},
					{"Index", fmt.Sprint(o.Index)},
					{"Access policy", enforcementString(o.FirewallBehind)},
					{"Cluster", clusterString(st.Cluster)},
				})
				if st.Cluster.Store != "bolt" {
					rows := make([][]string, len(st.Cluster.Servers))
					for k, sv := range st.Cluster.Servers {
						rows[k] = []string{sv.ID, sv.Addr, timeString(&sv.Started), map[bool]string{true: "leader"}[sv.Leader]}
					}
					io.WriteString(w, "\n")
					table(w, []string{"SERVER", "ADDRESS", "STARTED", "JOBS"}, rows)
				}
				if len(st.FirewallBehind) > 0 {
					n := lookupNames(ctx, c)
					rows := make([][]string, len(st.FirewallBehind))
					for k, i := range st.FirewallBehind {
						rows[k] = []string{n.host(i.HostID), n.network(i.NetworkID), i.ID, firewallString(&i)}
					}
					io.WriteString(w, "\n")
					table(w, []string{"HOST", "NETWORK", "INTERFACE", "FIREWALL"}, rows)
				}
			})
		}),
	}
}

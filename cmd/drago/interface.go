package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/drago-wg/drago/server/api"
)

func interfaceCommand(e *env) *ffcli.Command {
	return group(e, "interface", "Manage interfaces (a host's membership in a network)", `Manage interfaces. An interface puts a host into a network: its WireGuard
interface name, addresses, listen port, MTU and routed subnets. Interfaces
are named by id.

Example:
  drago interface create -network prod -host web-1
  drago interface config 3f2a9c0d1e2b4f5a`,
		interfaceListCommand(e), interfaceShowCommand(e), interfaceCreateCommand(e),
		interfaceUpdateCommand(e), interfaceDeleteCommand(e), interfaceConfigCommand(e))
}

// names maps network and host ids to names for tables; ids stay when the
// token may not read them.
type names struct{ networks, hosts map[string]string }

func lookupNames(ctx context.Context, c *api.Client) names {
	n := names{networks: map[string]string{}, hosts: map[string]string{}}
	if nets, err := listAll(ctx, c.Networks, api.ListOptions{}); err == nil {
		for _, x := range nets {
			n.networks[x.ID] = x.Name
		}
	}
	if hosts, err := listAll(ctx, c.Hosts, api.ListOptions{}); err == nil {
		for _, x := range hosts {
			n.hosts[x.ID] = x.Name
		}
	}
	return n
}

func (n names) network(id string) string { return nameOrID(n.networks[id], id) }
func (n names) host(id string) string    { return nameOrID(n.hosts[id], id) }

func nameOrID(name, id string) string {
	if name == "" {
		return id
	}
	return name
}

func interfaceListCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago interface list", e)
	var o api.ListOptions
	fs.StringVar(&o.Network, "network", "", "only interfaces of this `network` (name or id)")
	fs.StringVar(&o.Host, "host", "", "only interfaces of this `host` (name or id)")
	fs.StringVar(&o.Firewall, "firewall", "", "behind: only the interfaces whose agent does not enforce the access policy they must")
	return &ffcli.Command{
		Name:       "list",
		ShortUsage: "drago interface list [-network N] [-host H] [-firewall behind] [-json]",
		ShortHelp:  "List interfaces",
		LongHelp:   "List agent-managed interfaces (devices: drago device list).\n\nExample:\n  drago interface list -network prod\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			ifs, err := listAll(ctx, c.Interfaces, o)
			if err != nil {
				return err
			}
			if s.json {
				return writeJSON(s.e.stdout, ifs)
			}
			n := lookupNames(ctx, c)
			rows := make([][]string, len(ifs))
			for i, x := range ifs {
				rows[i] = []string{x.ID, n.host(x.HostID), n.network(x.NetworkID), x.Name, joinOrDash(x.Addresses), itoa(x.ListenPort), orDash(x.PublicKey)}
			}
			table(s.e.stdout, []string{"ID", "HOST", "NETWORK", "NAME", "ADDRESSES", "PORT", "PUBLIC KEY"}, rows)
			return nil
		}),
	}
}

func interfaceShowCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago interface show", e)
	return &ffcli.Command{
		Name:       "show",
		ShortUsage: "drago interface show [-json] <id>",
		ShortHelp:  "Show an interface",
		LongHelp:   "Show an interface.\n\nExample:\n  drago interface show 3f2a9c0d1e2b4f5a\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			id, err := oneArg(args, "interface id")
			if err != nil {
				return err
			}
			i, err := c.Interface(ctx, id)
			if err != nil {
				return err
			}
			return s.showInterface(ctx, c, i)
		}),
	}
}

func (s *session) showInterface(ctx context.Context, c *api.Client, i *api.Interface) error {
	if s.json {
		return writeJSON(s.e.stdout, i)
	}
	n := lookupNames(ctx, c)
	fields(s.e.stdout, []field{
		{"ID", i.ID}, {"Host", n.host(i.HostID)}, {"Network", n.network(i.NetworkID)}, {"Name", i.Name},
		{"Addresses", joinOrDash(i.Addresses)}, {"Listen port", itoa(i.ListenPort)}, {"MTU", itoa(i.MTU)},
		{"Routed subnets", joinOrDash(i.RoutedSubnets)}, {"Masquerade", yesNo(i.Masquerade)}, {"Firewall", firewallString(i)},
		{"Public key", orDash(i.PublicKey)},
		{"Key rotated", timeString(i.KeyRotatedAt)}, {"Key", keyState(i.KeyStale)}, {"Next key", orDash(i.NextPublicKey)},
		{"Rotation blocked", orDash(i.RotationBlocked)},
		{"Created", timeString(&i.CreatedAt)},
	})
	return nil
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// firewallString says whether the interface's agent enforces the access
// policy it must.
func firewallString(i *api.Interface) string {
	fs := i.Firewall
	switch {
	case i.DeviceName != "":
		return "none (a device runs no agent)"
	case i.FirewallRevision == 0 && fs != nil && !fs.Enforced && fs.Reason != "":
		return "nothing to enforce (the agent could not: " + fs.Reason + ")"
	case i.FirewallRevision == 0:
		return "nothing to enforce (no rule applies, the network accepts)"
	case fs == nil:
		return fmt.Sprintf("NOT ENFORCED: revision %d not reported by the agent", i.FirewallRevision)
	case !fs.Enforced:
		return "NOT ENFORCED: " + orDash(fs.Reason)
	case fs.Revision != i.FirewallRevision:
		return fmt.Sprintf("BEHIND: enforces revision %d, the policy is at %d", fs.Revision, i.FirewallRevision)
	}
	return fmt.Sprintf("enforced (revision %d)", fs.Revision)
}

func interfaceCreateCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago interface create", e)
	var (
		i              api.Interface
		addrs, subnets listFlag
	)
	fs.StringVar(&i.NetworkID, "network", "", "`network` name or id (required)")
	fs.StringVar(&i.HostID, "host", "", "`host` name or id (required)")
	fs.StringVar(&i.Name, "name", "", "OS interface name (default dg-<network>)")
	fs.Var(&addrs, "ip", "`IP` address to assign, one per family (default: the next free ones)")
	fs.IntVar(&i.ListenPort, "listen-port", 0, "UDP `port` (default: the network's, or the next free one on the host)")
	fs.IntVar(&i.MTU, "mtu", 0, "MTU (default: the network's)")
	fs.Var(&subnets, "routed-subnet", "`CIDR` behind this host that peers route to it (repeatable)")
	return &ffcli.Command{
		Name:       "create",
		ShortUsage: "drago interface create -network N -host H [flags]",
		ShortHelp:  "Add a host to a network",
		LongHelp:   "Add a host to a network; its agent creates the WireGuard interface.\n\nExample:\n  drago interface create -network prod -host web-1 -ip 10.1.0.10 -routed-subnet 192.168.10.0/24\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			i.Addresses, i.RoutedSubnets = addrs, subnets
			out, err := c.CreateInterface(ctx, &i)
			if err != nil {
				return err
			}
			return s.showInterface(ctx, c, out)
		}),
	}
}

func interfaceUpdateCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago interface update", e)
	var addrs, subnets listFlag
	fs.String("name", "", "OS interface name")
	fs.Var(&addrs, "ip", "`IP` addresses, one per family (replaces the list; a missing family is reassigned)")
	fs.Int("listen-port", 0, "UDP `port`")
	fs.Int("mtu", 0, "MTU")
	fs.Var(&subnets, "routed-subnet", "`CIDR` routed to this host (replaces the list; \"\" clears it)")
	fs.Bool("masquerade", false, "source-NAT the network's traffic to the routed subnets, so their hosts need no route back (-masquerade=false ends it)")
	return &ffcli.Command{
		Name:       "update",
		ShortUsage: "drago interface update [flags] <id>",
		ShortHelp:  "Change an interface's name, addresses, port, MTU, routed subnets or masquerade",
		LongHelp:   "Change an interface. Only the flags given are sent.\n\nExample:\n  drago interface update -listen-port 51821 -mtu 1380 3f2a9c0d1e2b4f5a\n  drago interface update -routed-subnet 192.168.10.0/24 -masquerade 3f2a9c0d1e2b4f5a\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			id, err := oneArg(args, "interface id")
			if err != nil {
				return err
			}
			p, err := patch(fs, map[string]string{"name": "name", "ip": "addresses", "listen-port": "listen_port", "mtu": "mtu", "routed-subnet": "routed_subnets", "masquerade": "masquerade"})
			if err != nil {
				return err
			}
			out, err := c.UpdateInterface(ctx, id, p)
			if err != nil {
				return err
			}
			return s.showInterface(ctx, c, out)
		}),
	}
}

func interfaceDeleteCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago interface delete", e)
	return &ffcli.Command{
		Name:       "delete",
		ShortUsage: "drago interface delete <id>",
		ShortHelp:  "Remove an interface and its connections",
		LongHelp:   "Remove a host from a network; its agent deletes the WireGuard interface.\n\nExample:\n  drago interface delete 3f2a9c0d1e2b4f5a\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			id, err := oneArg(args, "interface id")
			if err != nil {
				return err
			}
			if err := c.DeleteInterface(ctx, id); err != nil {
				return err
			}
			return s.deleted("interface", id)
		}),
	}
}

func interfaceConfigCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago interface config", e)
	return &ffcli.Command{
		Name:       "config",
		ShortUsage: "drago interface config [-json] <id>",
		ShortHelp:  "Print the wg-quick view of an interface (without private key)",
		LongHelp: `Print the interface as a wg-quick config: its address, port, MTU, DNS and
peers. The private key line is a placeholder: the server never has it. With
-json: {"id": ..., "config": ...}.

Example:
  drago interface config 3f2a9c0d1e2b4f5a
` + connectionHelp,
		FlagSet: fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			id, err := oneArg(args, "interface id")
			if err != nil {
				return err
			}
			text, err := c.InterfaceConfig(ctx, id)
			if err != nil {
				return err
			}
			return s.print(map[string]string{"id": id, "config": text}, func(w io.Writer) {
				io.WriteString(w, text)
				if !strings.HasSuffix(text, "\n") {
					io.WriteString(w, "\n")
				}
			})
		}),
	}
}

package main

import (
	"context"
	"io"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/drago-wg/drago/server/api"
)

func networkCommand(e *env) *ffcli.Command {
	return group(e, "network", "Manage networks: address ranges, topology and WireGuard defaults", `Manage networks. A network is a WireGuard overlay with IPv4 (and optionally
IPv6) address ranges, a topology (none, mesh or hub) and defaults for its
interfaces. Networks are named by name or id.

Example:
  drago network create -name prod -ipv4-range 10.1.0.0/24 -topology mesh
  drago network list`,
		networkListCommand(e), networkShowCommand(e), networkCreateCommand(e),
		networkUpdateCommand(e), networkDeleteCommand(e), networkTopologyCommand(e))
}

func networkListCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago network list", e)
	prefix := fs.String("prefix", "", "only networks whose name starts with `PREFIX`")
	return &ffcli.Command{
		Name:       "list",
		ShortUsage: "drago network list [-prefix P] [-json]",
		ShortHelp:  "List networks",
		LongHelp:   "List networks sorted by name; -json prints an array of networks.\n\nExample:\n  drago network list\n  drago network list -json | jq -r '.[].name'\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			nets, err := listAll(ctx, c.Networks, api.ListOptions{Query: *prefix})
			if err != nil {
				return err
			}
			return s.print(nets, func(w io.Writer) {
				rows := make([][]string, len(nets))
				for i, n := range nets {
					rows[i] = []string{n.Name, n.ID, n.IPv4Range, orDash(n.IPv6Range), n.Topology, itoa(n.ListenPort), itoa(n.MTU)}
				}
				table(w, []string{"NAME", "ID", "IPV4 RANGE", "IPV6 RANGE", "TOPOLOGY", "PORT", "MTU"}, rows)
			})
		}),
	}
}

func networkShowCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago network show", e)
	return &ffcli.Command{
		Name:       "show",
		ShortUsage: "drago network show [-json] <network>",
		ShortHelp:  "Show a network",
		LongHelp:   "Show a network, named by name or id.\n\nExample:\n  drago network show prod\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			ref, err := oneArg(args, "network name or id")
			if err != nil {
				return err
			}
			n, err := c.Network(ctx, ref)
			if err != nil {
				return err
			}
			return s.showNetwork(n)
		}),
	}
}

func (s *session) showNetwork(n *api.Network) error {
	return s.print(n, func(w io.Writer) {
		fields(w, []field{
			{"Name", n.Name}, {"ID", n.ID}, {"IPv4 range", n.IPv4Range}, {"IPv6 range", orDash(n.IPv6Range)},
			{"Topology", n.Topology}, {"Hub interface", orDash(n.HubInterfaceID)},
			{"Listen port", itoa(n.ListenPort)}, {"MTU", itoa(n.MTU)},
			{"Keepalive", keepaliveString(n.PersistentKeepalive)}, {"DNS", joinOrDash(n.DNS)},
			{"Default action", n.DefaultAction},
			{"Created", timeString(&n.CreatedAt)}, {"Updated", timeString(&n.UpdatedAt)},
		})
	})
}

func keepaliveString(secs int) string {
	if secs == 0 {
		return "off"
	}
	return (time.Duration(secs) * time.Second).String()
}

// networkFields maps the flags of network update to the JSON fields.
var networkFields = map[string]string{
	"name": "name", "ipv4-range": "ipv4_range", "ipv6-range": "ipv6_range", "topology": "topology",
	"hub": "hub_interface_id", "listen-port": "listen_port", "mtu": "mtu", "keepalive": "persistent_keepalive", "dns": "dns",
	"default-action": "default_action",
}

const defaultActionHelp = "what the access policy does with traffic no rule matches: accept or drop (see drago rule)"

func networkCreateCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago network create", e)
	var (
		n   api.Network
		dns listFlag
	)
	fs.StringVar(&n.Name, "name", "", "network name, a DNS label (required)")
	fs.StringVar(&n.IPv4Range, "ipv4-range", "", "IPv4 `CIDR` the interfaces' addresses come from (required)")
	fs.StringVar(&n.IPv6Range, "ipv6-range", "", "IPv6 `CIDR`, optional")
	fs.StringVar(&n.Topology, "topology", "", "none (explicit connections only), mesh or hub (default none)")
	fs.IntVar(&n.ListenPort, "listen-port", 0, "default WireGuard UDP `port` of the interfaces (default 51820)")
	fs.IntVar(&n.MTU, "mtu", 0, "default MTU of the interfaces (default 1420)")
	fs.IntVar(&n.PersistentKeepalive, "keepalive", 0, "persistent keepalive in `seconds`, 0 = off")
	fs.Var(&dns, "dns", "DNS server `IP` for wg-quick configs (repeatable or comma-separated)")
	fs.StringVar(&n.DefaultAction, "default-action", "", defaultActionHelp+" (default accept)")
	return &ffcli.Command{
		Name:       "create",
		ShortUsage: "drago network create -name NAME -ipv4-range CIDR [flags]",
		ShortHelp:  "Create a network",
		LongHelp: `Create a network. Zero values take the server's defaults. A hub network gets
its hub with "drago network update -hub" once it has interfaces.

Example:
  drago network create -name prod -ipv4-range 10.1.0.0/24 -ipv6-range fd00:1::/64 \
    -topology mesh -listen-port 51820 -mtu 1420 -keepalive 25 -dns 10.1.0.1
` + connectionHelp,
		FlagSet: fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			n.DNS = dns
			out, err := c.CreateNetwork(ctx, &n)
			if err != nil {
				return err
			}
			return s.showNetwork(out)
		}),
	}
}

func networkUpdateCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago network update", e)
	var dns listFlag
	fs.String("name", "", "new name")
	fs.String("ipv4-range", "", "IPv4 `CIDR`; every assigned address must stay inside")
	fs.String("ipv6-range", "", "IPv6 `CIDR`; adding one gives every interface an IPv6 address, \"\" removes it")
	fs.String("topology", "", "none, mesh or hub")
	fs.String("hub", "", "hub interface `id` for topology hub, \"\" to unset")
	fs.Int("listen-port", 0, "default UDP `port`")
	fs.Int("mtu", 0, "default MTU")
	fs.Int("keepalive", 0, "persistent keepalive in `seconds`, 0 = off")
	fs.Var(&dns, "dns", "DNS servers (repeatable or comma-separated; \"\" clears them)")
	fs.String("default-action", "", defaultActionHelp)
	return &ffcli.Command{
		Name:       "update",
		ShortUsage: "drago network update [flags] <network>",
		ShortHelp:  "Change a network's fields",
		LongHelp: `Change a network. Only the flags given are sent; the other fields keep their
values.

Example:
  drago network update -topology hub -hub 3f2a9c0d1e2b4f5a prod
  drago network update -dns 1.1.1.1,9.9.9.9 prod
  drago network update -default-action drop prod
` + connectionHelp,
		FlagSet: fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			ref, err := oneArg(args, "network name or id")
			if err != nil {
				return err
			}
			p, err := patch(fs, networkFields)
			if err != nil {
				return err
			}
			out, err := c.UpdateNetwork(ctx, ref, p)
			if err != nil {
				return err
			}
			return s.showNetwork(out)
		}),
	}
}

func networkDeleteCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago network delete", e)
	return &ffcli.Command{
		Name:       "delete",
		ShortUsage: "drago network delete <network>",
		ShortHelp:  "Delete a network with its interfaces and connections",
		LongHelp:   "Delete a network with its interfaces and connections; agents remove them.\n\nExample:\n  drago network delete prod\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			ref, err := oneArg(args, "network name or id")
			if err != nil {
				return err
			}
			if err := c.DeleteNetwork(ctx, ref); err != nil {
				return err
			}
			return s.deleted("network", ref)
		}),
	}
}

func networkTopologyCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago network topology", e)
	return &ffcli.Command{
		Name:       "topology",
		ShortUsage: "drago network topology [-json] <network>",
		ShortHelp:  "Show a network's interfaces and the links between them",
		LongHelp:   "Show a network's interfaces (nodes) and connections (edges, implicit ones from\nthe topology included) with the last handshake either side reported.\n\nExample:\n  drago network topology prod\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			ref, err := oneArg(args, "network name or id")
			if err != nil {
				return err
			}
			t, err := c.Topology(ctx, ref)
			if err != nil {
				return err
			}
			return s.print(t, func(w io.Writer) {
				names := map[string]string{}
				rows := make([][]string, len(t.Nodes))
				for i, n := range t.Nodes {
					names[n.InterfaceID] = n.Name
					rows[i] = []string{n.InterfaceID, n.Name, n.Status, joinOrDash(n.Addresses)}
				}
				table(w, []string{"INTERFACE", "NAME", "STATUS", "ADDRESSES"}, rows)
				name := func(id string) string { return nameWithID(names[id], id) }
				now := time.Now()
				rows = make([][]string, len(t.Edges))
				for i, ed := range t.Edges {
					kind := "connection " + ed.ConnectionID
					if ed.Implicit {
						kind = "implicit (" + t.Network.Topology + ")"
					}
					rows[i] = []string{name(ed.A), name(ed.B), kind, ago(ed.LastHandshake, now)}
				}
				io.WriteString(w, "\n")
				table(w, []string{"A", "B", "LINK", "LAST HANDSHAKE"}, rows)
			})
		}),
	}
}

// nameWithID shows a name with its id, or the id alone.
func nameWithID(name, id string) string {
	if name == "" {
		return id
	}
	return name + " (" + id + ")"
}

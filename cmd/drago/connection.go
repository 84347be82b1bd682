package main

import (
	"context"
	"flag"
	"io"
	"strconv"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/drago-wg/drago/server/api"
)

func connectionCommand(e *env) *ffcli.Command {
	return group(e, "connection", "Manage explicit connections between two interfaces", `Manage connections. A connection makes two interfaces of a network peers,
on top of (or instead of) the network's topology, optionally with their own
allowed IPs, endpoints and keepalive. Connections are named by id.

Example:
  drago connection create -network prod -a 3f2a9c0d1e2b4f5a -b 8c7d6e5f4a3b2c1d -keepalive 25
  drago connection list -network prod`,
		connectionListCommand(e), connectionShowCommand(e), connectionCreateCommand(e),
		connectionUpdateCommand(e), connectionDeleteCommand(e))
}

func connectionListCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago connection list", e)
	var o api.ListOptions
	fs.StringVar(&o.Network, "network", "", "only connections of this `network`")
	fs.StringVar(&o.Interface, "interface", "", "only connections of this interface `id`")
	return &ffcli.Command{
		Name:       "list",
		ShortUsage: "drago connection list [-network N] [-interface ID] [-json]",
		ShortHelp:  "List explicit connections",
		LongHelp:   "List explicit connections (the topology's implicit ones: drago network topology).\n\nExample:\n  drago connection list -network prod\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			conns, err := listAll(ctx, c.Connections, o)
			if err != nil {
				return err
			}
			if s.json {
				return writeJSON(s.e.stdout, conns)
			}
			n := lookupNames(ctx, c)
			rows := make([][]string, len(conns))
			for i, x := range conns {
				rows[i] = []string{x.ID, n.network(x.NetworkID), x.A.InterfaceID, x.B.InterfaceID, connKeepalive(x.PersistentKeepalive)}
			}
			table(s.e.stdout, []string{"ID", "NETWORK", "A", "B", "KEEPALIVE"}, rows)
			return nil
		}),
	}
}

func connKeepalive(k *int) string {
	if k == nil {
		return "network's"
	}
	return keepaliveString(*k)
}

func connectionShowCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago connection show", e)
	return &ffcli.Command{
		Name:       "show",
		ShortUsage: "drago connection show [-json] <id>",
		ShortHelp:  "Show a connection",
		LongHelp:   "Show a connection.\n\nExample:\n  drago connection show 5e4d3c2b1a098f7e\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			id, err := oneArg(args, "connection id")
			if err != nil {
				return err
			}
			conn, err := c.Connection(ctx, id)
			if err != nil {
				return err
			}
			return s.showConnection(conn)
		}),
	}
}

func (s *session) showConnection(c *api.Connection) error {
	return s.print(c, func(w io.Writer) {
		fields(w, []field{
			{"ID", c.ID}, {"Network", c.NetworkID},
			{"A interface", c.A.InterfaceID}, {"A allowed IPs", allowedIPsOrDefault(c.A.AllowedIPs)}, {"A endpoint", endpointOrDefault(c.A.Endpoint)},
			{"B interface", c.B.InterfaceID}, {"B allowed IPs", allowedIPsOrDefault(c.B.AllowedIPs)}, {"B endpoint", endpointOrDefault(c.B.Endpoint)},
			{"Keepalive", connKeepalive(c.PersistentKeepalive)}, {"Created", timeString(&c.CreatedAt)},
		})
	})
}

func allowedIPsOrDefault(l []string) string {
	if len(l) == 0 {
		return "(the peer's addresses and routed subnets)"
	}
	return joinOrDash(l)
}

func endpointOrDefault(s string) string {
	if s == "" {
		return "(the peer's host address)"
	}
	return s
}

// sideFlags registers the per-side flags of a connection.
func sideFlags(fs *flag.FlagSet, a, b *listFlag, aEnd, bEnd *string) {
	fs.Var(a, "a-allowed-ips", "`CIDR`s side a accepts from b (default: b's addresses and routed subnets)")
	fs.Var(b, "b-allowed-ips", "`CIDR`s side b accepts from a (default: a's addresses and routed subnets)")
	fs.StringVar(aEnd, "a-endpoint", "", "`host:port` side a dials to reach b (default: b's host address)")
	fs.StringVar(bEnd, "b-endpoint", "", "`host:port` side b dials to reach a (default: a's host address)")
}

func connectionCreateCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago connection create", e)
	var (
		conn       api.Connection
		aIPs, bIPs listFlag
		keepalive  int
	)
	fs.StringVar(&conn.NetworkID, "network", "", "`network` name or id (required)")
	fs.StringVar(&conn.A.InterfaceID, "a", "", "interface `id` of side a (required)")
	fs.StringVar(&conn.B.InterfaceID, "b", "", "interface `id` of side b (required)")
	sideFlags(fs, &aIPs, &bIPs, &conn.A.Endpoint, &conn.B.Endpoint)
	fs.IntVar(&keepalive, "keepalive", 0, "persistent keepalive in `seconds` for this pair, 0 = off (default: the network's)")
	return &ffcli.Command{
		Name:       "create",
		ShortUsage: "drago connection create -network N -a ID -b ID [flags]",
		ShortHelp:  "Connect two interfaces of a network",
		LongHelp:   "Connect two interfaces of a network.\n\nExample:\n  drago connection create -network prod -a 3f2a9c0d1e2b4f5a -b 8c7d6e5f4a3b2c1d \\\n    -a-allowed-ips 10.1.0.3/32,192.168.20.0/24 -b-endpoint 203.0.113.7:51820 -keepalive 25\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			conn.A.AllowedIPs, conn.B.AllowedIPs = aIPs, bIPs
			fs.Visit(func(f *flag.Flag) {
				if f.Name == "keepalive" {
					conn.PersistentKeepalive = &keepalive
				}
			})
			out, err := c.CreateConnection(ctx, &conn)
			if err != nil {
				return err
			}
			return s.showConnection(out)
		}),
	}
}

// keepaliveFlag is an optional keepalive: -1 means "the network's" (JSON null).
type keepaliveFlag struct{ v *int }

func (k *keepaliveFlag) String() string {
	if k.v == nil {
		return ""
	}
	return strconv.Itoa(*k.v)
}

func (k *keepaliveFlag) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return err
	}
	if n < 0 {
		k.v = nil
	} else {
		k.v = &n
	}
	return nil
}

func (k *keepaliveFlag) Get() any { return k.v }

func connectionUpdateCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago connection update", e)
	var (
		aIPs, bIPs listFlag
		aEnd, bEnd string
		keepalive  keepaliveFlag
	)
	sideFlags(fs, &aIPs, &bIPs, &aEnd, &bEnd)
	fs.Var(&keepalive, "keepalive", "persistent keepalive in `seconds`, 0 = off, -1 = the network's")
	return &ffcli.Command{
		Name:       "update",
		ShortUsage: "drago connection update [flags] <id>",
		ShortHelp:  "Change a connection's allowed IPs, endpoints or keepalive",
		LongHelp:   "Change a connection. Only the flags given are sent; \"\" resets a side's allowed\nIPs or endpoint to the default.\n\nExample:\n  drago connection update -b-endpoint 198.51.100.4:51820 -keepalive -1 5e4d3c2b1a098f7e\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			id, err := oneArg(args, "connection id")
			if err != nil {
				return err
			}
			p, err := patch(fs, map[string]string{
				"a-allowed-ips": "a.allowed_ips", "b-allowed-ips": "b.allowed_ips",
				"a-endpoint": "a.endpoint", "b-endpoint": "b.endpoint", "keepalive": "persistent_keepalive",
			})
			if err != nil {
				return err
			}
			out, err := c.UpdateConnection(ctx, id, p)
			if err != nil {
				return err
			}
			return s.showConnection(out)
		}),
	}
}

func connectionDeleteCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago connection delete", e)
	return &ffcli.Command{
		Name:       "delete",
		ShortUsage: "drago connection delete <id>",
		ShortHelp:  "Remove a connection",
		LongHelp:   "Remove an explicit connection; the topology's implicit link, if any, stays.\n\nExample:\n  drago connection delete 5e4d3c2b1a098f7e\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			id, err := oneArg(args, "connection id")
			if err != nil {
				return err
			}
			if err := c.DeleteConnection(ctx, id); err != nil {
				return err
			}
			return s.deleted("connection", id)
		}),
	}
}

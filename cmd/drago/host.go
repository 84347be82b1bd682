package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/drago-wg/drago/server/api"
)

func hostCommand(e *env) *ffcli.Command {
	return group(e, "host", "Manage hosts (machines that run the agent)", `Manage hosts. Hosts are created by agents when they register with a join token
(see drago join-token create); here they are listed, renamed, labelled, asked to
rotate their keys and deleted. Hosts are named by name or id.

Example:
  drago host list -status down
  drago host rotate-keys web-1`,
		hostListCommand(e), hostShowCommand(e), hostUpdateCommand(e), hostDeleteCommand(e), hostRotateKeysCommand(e))
}

func hostListCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago host list", e)
	var o api.ListOptions
	fs.StringVar(&o.Query, "prefix", "", "only hosts whose name starts with `PREFIX`")
	fs.StringVar(&o.Status, "status", "", "only hosts in this status: pending, ready or down")
	fs.StringVar(&o.Label, "label", "", "only hosts with this label `key=value`")
	return &ffcli.Command{
		Name:       "list",
		ShortUsage: "drago host list [-prefix P] [-status S] [-label k=v] [-json]",
		ShortHelp:  "List hosts with their status",
		LongHelp:   "List hosts sorted by name. A host is ready while its agent reports, down when\nit missed its heartbeats, pending before its first report.\n\nExample:\n  drago host list -label role=db\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			hosts, err := listAll(ctx, c.Hosts, o)
			if err != nil {
				return err
			}
			return s.print(hosts, func(w io.Writer) {
				now := time.Now()
				rows := make([][]string, len(hosts))
				for i, h := range hosts {
					rows[i] = []string{h.Name, h.ID, h.Status, hostAddress(&h), orDash(h.OS + "/" + h.Arch), orDash(h.AgentVersion), ago(h.LastSeen, now), keyState(h.KeyStale), labelString(h.Labels)}
				}
				table(w, []string{"NAME", "ID", "STATUS", "ADDRESS", "OS/ARCH", "AGENT", "LAST SEEN", "KEYS", "LABELS"}, rows)
			})
		}),
	}
}

// hostAddress is the address peers dial: the advertised one, else the observed one.
func hostAddress(h *api.Host) string {
	switch {
	case h.AdvertiseAddress != "":
		return h.AdvertiseAddress
	case h.ObservedAddress != "":
		return h.ObservedAddress + " (observed)"
	}
	return "-"
}

func hostShowCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago host show", e)
	return &ffcli.Command{
		Name:       "show",
		ShortUsage: "drago host show [-json] <host>",
		ShortHelp:  "Show a host",
		LongHelp:   "Show a host, named by name or id.\n\nExample:\n  drago host show web-1\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			ref, err := oneArg(args, "host name or id")
			if err != nil {
				return err
			}
			h, err := c.Host(ctx, ref)
			if err != nil {
				return err
			}
			return s.showHost(ctx, c, h)
		}),
	}
}

// showHost prints a host; for people, with whether each of its interfaces
// enforces its access policy.
func (s *session) showHost(ctx context.Context, c *api.Client, h *api.Host) error {
	if s.json {
		return writeJSON(s.e.stdout, h)
	}
	rotate := "no"
	if h.RotateKeys {
		rotate = "requested"
	}
	fs := []field{
		{"Name", h.Name}, {"ID", h.ID}, {"Status", h.Status}, {"Last seen", ago(h.LastSeen, time.Now())},
		{"Advertise address", orDash(h.AdvertiseAddress)}, {"Observed address", orDash(h.ObservedAddress)},
		{"OS/arch", orDash(h.OS + "/" + h.Arch)}, {"Agent version", orDash(h.AgentVersion)}, {"Backend", orDash(h.Backend)},
		{"Labels", labelString(h.Labels)}, {"Keys", keyState(h.KeyStale)}, {"Key rotation", rotate}, {"Created", timeString(&h.CreatedAt)},
	}
	if ifs, err := listAll(ctx, c.Interfaces, api.ListOptions{Host: h.ID}); err == nil {
		for _, i := range ifs {
			fs = append(fs, field{"Firewall " + i.Name, firewallString(&i)})
		}
	}
	fields(s.e.stdout, fs)
	return nil
}

func hostUpdateCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago host update", e)
	labels := labelsFlag{}
	fs.String("name", "", "new host name")
	fs.String("advertise-address", "", "`host[:port]` that peers dial, \"\" to use the observed address")
	fs.Var(labels, "label", "set label `key=value` (repeatable); other labels stay")
	return &ffcli.Command{
		Name:       "update",
		ShortUsage: "drago host update [-name N] [-advertise-address A] [-label k=v ...] <host>",
		ShortHelp:  "Rename a host, set labels or its advertised address",
		LongHelp:   "Change a host. Only the flags given are sent.\n\nExample:\n  drago host update -label role=db -advertise-address 203.0.113.7 web-1\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			ref, err := oneArg(args, "host name or id")
			if err != nil {
				return err
			}
			p, err := patch(fs, map[string]string{"name": "name", "advertise-address": "advertise_address", "label": "labels"})
			if err != nil {
				return err
			}
			h, err := c.UpdateHost(ctx, ref, p)
			if err != nil {
				return err
			}
			return s.showHost(ctx, c, h)
		}),
	}
}

func hostDeleteCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago host delete", e)
	return &ffcli.Command{
		Name:       "delete",
		ShortUsage: "drago host delete <host>",
		ShortHelp:  "Delete a host, its interfaces and its credential",
		LongHelp:   "Delete a host with its interfaces, connections and credential; its agent can\nno longer sync and must join again.\n\nExample:\n  drago host delete web-1\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			ref, err := oneArg(args, "host name or id")
			if err != nil {
				return err
			}
			if err := c.DeleteHost(ctx, ref); err != nil {
				return err
			}
			return s.deleted("host", ref)
		}),
	}
}

func hostRotateKeysCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago host rotate-keys", e)
	return &ffcli.Command{
		Name:       "rotate-keys",
		ShortUsage: "drago host rotate-keys <host>",
		ShortHelp:  "Ask a host's agent to rotate its WireGuard keys",
		LongHelp:   "Ask the host's agent to generate new key pairs for its interfaces; peers get\nthe new public keys once the agent reports them.\n\nExample:\n  drago host rotate-keys web-1\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			ref, err := oneArg(args, "host name or id")
			if err != nil {
				return err
			}
			h, err := c.RotateKeys(ctx, ref)
			if err != nil {
				return err
			}
			ifs, err := c.Interfaces(ctx, api.ListOptions{Host: h.ID, Limit: 1000})
			if err != nil {
				return err
			}
			return s.print(h, func(w io.Writer) {
				io.WriteString(w, "Key rotation requested for host "+h.Name+"; its agent rotates on its next sync.\n")
				for _, i := range ifs.Items {
					if i.RotationBlocked != "" {
						fmt.Fprintf(w, "Interface %s keeps its key: %s.\n", printable(i.Name), printable(i.RotationBlocked))
					}
				}
			})
		}),
	}
}

// keyState says whether a key is overdue for rotation (older than twice the
// rotation interval).
func keyState(stale bool) string {
	if stale {
		return "stale"
	}
	return "ok"
}

package main

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/drago-wg/drago/server/api"
)

// exitDrop is the exit code of drago rule check when the policy drops the flow.
const exitDrop = 3

func ruleCommand(e *env) *ffcli.Command {
	return group(e, "rule", "Manage access rules: which hosts may reach which ports", `Manage a network's access policy. Each host enforces, on traffic arriving
through its interface, the network's rules in order: the first rule whose
source (-from), destination (-to), protocol and ports match decides; none
matching leaves the network's default action (drago network update
-default-action drop). Selectors: *, host:NAME, device:NAME, interface:ID,
subnets:HOST, KEY=VALUE (host labels) or a CIDR of the network. Rules are
named by id. See docs/policies.md.

Example:
  drago network update -default-action drop prod
  drago rule add -network prod -from role=web -to role=db -protocol tcp -port 5432
  drago rule check -network prod -from web-1 -to db-1 -port 5432/tcp`,
		ruleListCommand(e), ruleShowCommand(e), ruleAddCommand(e), ruleUpdateCommand(e),
		ruleMoveCommand(e), ruleRemoveCommand(e), ruleCheckCommand(e))
}

func ruleListCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago rule list", e)
	var o api.ListOptions
	fs.StringVar(&o.Network, "network", "", "only the rules of this `network` (name or id)")
	return &ffcli.Command{
		Name:       "list",
		ShortUsage: "drago rule list [-network N] [-json]",
		ShortHelp:  "List access rules in the order they are evaluated",
		LongHelp:   "List access rules by network and position (0 is evaluated first); -json prints\nan array of rules.\n\nExample:\n  drago rule list -network prod\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			rules, err := listAll(ctx, c.Rules, o)
			if err != nil {
				return err
			}
			if s.json {
				return writeJSON(s.e.stdout, rules)
			}
			n := lookupNames(ctx, c)
			rows := make([][]string, len(rules))
			for k, r := range rules {
				rows[k] = []string{n.network(r.NetworkID), strconv.Itoa(r.Position), r.ID, r.Action,
					joinOrDash(r.From), joinOrDash(r.To), r.Protocol, joinOrDash(r.Ports), orDash(r.Description)}
			}
			table(s.e.stdout, []string{"NETWORK", "POS", "ID", "ACTION", "FROM", "TO", "PROTOCOL", "PORTS", "DESCRIPTION"}, rows)
			if n, err := c.Network(ctx, o.Network); o.Network != "" && err == nil {
				fmt.Fprintf(s.e.stdout, "\nTraffic no rule matches: %s (network default).\n", n.DefaultAction)
			}
			return nil
		}),
	}
}

func ruleShowCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago rule show", e)
	return &ffcli.Command{
		Name:       "show",
		ShortUsage: "drago rule show [-json] <id>",
		ShortHelp:  "Show an access rule",
		LongHelp:   "Show an access rule.\n\nExample:\n  drago rule show 5e4d3c2b1a098f7e\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			id, err := oneArg(args, "rule id")
			if err != nil {
				return err
			}
			r, err := c.Rule(ctx, id)
			if err != nil {
				return err
			}
			return s.showRule(r)
		}),
	}
}

func (s *session) showRule(r *api.Rule) error {
	return s.print(r, func(w io.Writer) {
		fields(w, []field{
			{"ID", r.ID}, {"Network", r.NetworkID}, {"Position", strconv.Itoa(r.Position)}, {"Action", r.Action},
			{"From", joinOrDash(r.From)}, {"To", joinOrDash(r.To)}, {"Protocol", r.Protocol}, {"Ports", joinOrDash(r.Ports)},
			{"Description", orDash(r.Description)}, {"Updated", timeString(&r.UpdatedAt)},
		})
	})
}

const ruleSelectorHelp = " (repeatable or comma-separated): *, host:NAME, device:NAME, interface:ID, subnets:HOST, KEY=VALUE or CIDR"

func ruleAddCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago rule add", e)
	var (
		r               api.RuleRequest
		from, to, ports listFlag
		position        int
	)
	fs.StringVar(&r.NetworkID, "network", "", "`network` name or id (required)")
	fs.StringVar(&r.Action, "action", api.ActionAccept, "accept or drop")
	fs.Var(&from, "from", "source `selector`s"+ruleSelectorHelp+" (required)")
	fs.Var(&to, "to", "destination `selector`s"+ruleSelectorHelp+" (required)")
	fs.StringVar(&r.Protocol, "protocol", api.ProtocolAny, "tcp, udp, icmp or any")
	fs.Var(&ports, "port", "`port` (22) or range (8000-8100) for tcp and udp (repeatable or comma-separated; default all)")
	fs.StringVar(&r.Description, "description", "", "a note for people")
	fs.IntVar(&position, "position", -1, "where the rule goes, 0 first (default: last); the rules from there move down")
	return &ffcli.Command{
		Name:       "add",
		ShortUsage: "drago rule add -network N -from SEL -to SEL [flags]",
		ShortHelp:  "Add an access rule to a network's policy",
		LongHelp: `Add an access rule, last or at -position. Selectors naming a host, device or
interface must name one of the network; labels may name hosts that have not
joined yet.

Example:
  drago rule add -network prod -from role=web -to role=db -protocol tcp -port 5432
  drago rule add -network prod -from device:laptop -to '*' -protocol tcp -port 22 -description ssh
  drago rule add -network prod -action drop -from 10.1.0.0/24 -to subnets:gw-1 -position 0
` + connectionHelp,
		FlagSet: fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			if r.NetworkID == "" || len(from) == 0 || len(to) == 0 {
				return usagef("-network, -from and -to are required")
			}
			r.From, r.To, r.Ports = from, to, ports
			if position >= 0 {
				r.Position = &position
			}
			out, err := c.CreateRule(ctx, &r)
			if err != nil {
				return err
			}
			return s.showRule(out)
		}),
	}
}

func ruleUpdateCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago rule update", e)
	var from, to, ports listFlag
	fs.String("action", "", "accept or drop")
	fs.Var(&from, "from", "source `selector`s"+ruleSelectorHelp)
	fs.Var(&to, "to", "destination `selector`s"+ruleSelectorHelp)
	fs.String("protocol", "", "tcp, udp, icmp or any")
	fs.Var(&ports, "port", "`port`s or ranges (\"\" for all)")
	fs.String("description", "", "a note for people")
	return &ffcli.Command{
		Name:       "update",
		ShortUsage: "drago rule update [flags] <id>",
		ShortHelp:  "Change an access rule",
		LongHelp:   "Change an access rule. Only the flags given are sent (drago rule move moves it).\n\nExample:\n  drago rule update -port 5432,6432 5e4d3c2b1a098f7e\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			id, err := oneArg(args, "rule id")
			if err != nil {
				return err
			}
			p, err := patch(fs, map[string]string{"action": "action", "from": "from", "to": "to", "protocol": "protocol", "port": "ports", "description": "description"})
			if err != nil {
				return err
			}
			out, err := c.UpdateRule(ctx, id, p)
			if err != nil {
				return err
			}
			return s.showRule(out)
		}),
	}
}

func ruleMoveCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago rule move", e)
	position := fs.Int("position", -1, "the rule's new `position`, 0 first (required)")
	return &ffcli.Command{
		Name:       "move",
		ShortUsage: "drago rule move -position N <id>",
		ShortHelp:  "Move an access rule to another position",
		LongHelp:   "Move an access rule; the rules between its old and new positions shift by one.\n\nExample:\n  drago rule move -position 0 5e4d3c2b1a098f7e\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			id, err := oneArg(args, "rule id")
			if err != nil {
				return err
			}
			if *position < 0 {
				return usagef("-position is required (0 is first)")
			}
			out, err := c.UpdateRule(ctx, id, map[string]any{"position": *position})
			if err != nil {
				return err
			}
			return s.showRule(out)
		}),
	}
}

func ruleRemoveCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago rule remove", e)
	return &ffcli.Command{
		Name:       "remove",
		ShortUsage: "drago rule remove <id>",
		ShortHelp:  "Remove an access rule",
		LongHelp:   "Remove an access rule; the rules after it move up one.\n\nExample:\n  drago rule remove 5e4d3c2b1a098f7e\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			id, err := oneArg(args, "rule id")
			if err != nil {
				return err
			}
			if err := c.DeleteRule(ctx, id); err != nil {
				return err
			}
			return s.deleted("rule", id)
		}),
	}
}

func ruleCheckCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago rule check", e)
	var q api.RuleCheck
	fs.StringVar(&q.NetworkID, "network", "", "`network` name or id (required)")
	fs.StringVar(&q.From, "from", "", "the source: a host or device name, host:NAME, device:NAME, interface:ID or an IP address (required)")
	fs.StringVar(&q.To, "to", "", "the destination, in the same forms (required)")
	fs.StringVar(&q.Port, "port", "", "PORT/tcp, PORT/udp or icmp (default: a flow of any protocol, which only protocol-any rules match)")
	return &ffcli.Command{
		Name:       "check",
		ShortUsage: "drago rule check -network N -from A -to B [-port 5432/tcp] [-json]",
		ShortHelp:  "Test a network's policy: would this flow pass, and which rule decides?",
		LongHelp: `Ask the server what the destination's firewall does with a flow: accept or
drop, and the rule that decides (or the network's default). Exit code 0 when
the flow is accepted, 3 when it is dropped, 1 on errors.

Example:
  drago rule check -network prod -from web-1 -to db-1 -port 5432/tcp
  drago rule check -network prod -from laptop -to 192.168.1.20 -port icmp
` + connectionHelp,
		FlagSet: fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			if q.NetworkID == "" || q.From == "" || q.To == "" {
				return usagef("-network, -from and -to are required")
			}
			v, err := c.CheckRule(ctx, &q)
			if err != nil {
				return err
			}
			err = s.print(v, func(w io.Writer) {
				decided := "the network's default action"
				if v.RuleID != "" {
					decided = "rule " + v.RuleID + " (position " + strconv.Itoa(v.Position) + ")"
				}
				fields(w, []field{{"Action", v.Action}, {"Decided by", decided}, {"Reason", v.Reason}})
			})
			if err == nil && v.Action == api.ActionDrop {
				return exitStatus(exitDrop)
			}
			return err
		}),
	}
}

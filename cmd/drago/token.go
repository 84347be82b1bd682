package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/drago-wg/drago/server/api"
)

func tokenCommand(e *env) *ffcli.Command {
	return group(e, "token", "Manage management tokens (API access for people and scripts)", `Manage management tokens. A token holds policies: a resource (networks, hosts,
interfaces, connections, rules, tokens, metrics, audit or *), an access (read or write) and
optionally the networks it is limited to (metrics: none, they cover the fleet). A token can only create tokens
weaker than itself. Secrets are shown once, at creation.

Example:
  drago token create -name ci -policy networks:read -policy interfaces:write:prod
  drago token create -name prometheus -policy metrics:read
  drago token show self`,
		tokenListCommand(e), tokenShowCommand(e), tokenCreateCommand(e), tokenDeleteCommand(e))
}

func policyString(ps []api.Policy) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = p.Resource + ":" + p.Access
		if len(p.Networks) > 0 {
			parts[i] += ":" + strings.Join(p.Networks, ",")
		}
	}
	return joinOrDash(parts)
}

func tokenListCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago token list", e)
	return &ffcli.Command{
		Name:       "list",
		ShortUsage: "drago token list [-json]",
		ShortHelp:  "List management tokens (without secrets)",
		LongHelp:   "List management tokens, without their secrets.\n\nExample:\n  drago token list\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			toks, err := listAll(ctx, c.Tokens, api.ListOptions{})
			if err != nil {
				return err
			}
			return s.print(toks, func(w io.Writer) {
				rows := make([][]string, len(toks))
				for i, t := range toks {
					pol := policyString(t.Policies)
					if t.Root {
						pol = "root (everything)"
					}
					rows[i] = []string{t.Name, t.ID, pol, timeString(&t.CreatedAt)}
				}
				table(w, []string{"NAME", "ID", "POLICIES", "CREATED"}, rows)
			})
		}),
	}
}

func tokenShowCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago token show", e)
	return &ffcli.Command{
		Name:       "show",
		ShortUsage: "drago token show [-json] <id|self>",
		ShortHelp:  "Show a management token; self is the token in use",
		LongHelp:   "Show a management token, without its secret; \"self\" shows the token this\ncommand authenticates with.\n\nExample:\n  drago token show self\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			id, err := oneArg(args, "token id (or self)")
			if err != nil {
				return err
			}
			t, err := c.Token(ctx, id)
			if err != nil {
				return err
			}
			return s.showToken(t)
		}),
	}
}

func (s *session) showToken(t *api.Token) error {
	return s.print(t, func(w io.Writer) {
		pol := policyString(t.Policies)
		if t.Root {
			pol = "root (everything)"
		}
		fs := []field{{"Name", t.Name}, {"ID", t.ID}, {"Policies", pol}, {"Created", timeString(&t.CreatedAt)}}
		if t.Secret != "" {
			fs = append(fs, field{"Secret", t.Secret})
		}
		fields(w, fs)
		if t.Secret != "" {
			fmt.Fprintln(w, "\nThe secret is shown only now. Use it as -token or DRAGO_TOKEN.")
		}
	})
}

// policyFlag collects -policy resource:access[:network,...] flags.
type policyFlag []api.Policy

func (p *policyFlag) String() string { return policyString(*p) }

func (p *policyFlag) Set(s string) error {
	parts := strings.SplitN(s, ":", 3)
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
		return fmt.Errorf("%q is not resource:access[:network,...]", s)
	}
	pol := api.Policy{Resource: parts[0], Access: parts[1]}
	if len(parts) == 3 {
		for _, n := range strings.Split(parts[2], ",") {
			if n = strings.TrimSpace(n); n != "" {
				pol.Networks = append(pol.Networks, n)
			}
		}
	}
	*p = append(*p, pol)
	return nil
}

func tokenCreateCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago token create", e)
	var (
		t        api.Token
		policies policyFlag
	)
	fs.StringVar(&t.Name, "name", "", "token name (required)")
	fs.Var(&policies, "policy", "grant `resource:access[:network,...]`, e.g. networks:read or *:write:prod (repeatable, at least one)")
	return &ffcli.Command{
		Name:       "create",
		ShortUsage: "drago token create -name NAME -policy RESOURCE:ACCESS[:NETWORKS] ...",
		ShortHelp:  "Create a management token; prints its secret once",
		LongHelp: `Create a management token. Resources: networks, hosts, interfaces, connections,
tokens or *; access: read or write (write implies read); networks (names or
ids) limit the grant. The secret is printed once.

Example:
  drago token create -name dashboard -policy '*:read'
  drago token create -name prod-ops -policy interfaces:write:prod -policy connections:write:prod
` + connectionHelp,
		FlagSet: fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			t.Policies = policies
			out, err := c.CreateToken(ctx, &t)
			if err != nil {
				return err
			}
			return s.showToken(out)
		}),
	}
}

func tokenDeleteCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago token delete", e)
	return &ffcli.Command{
		Name:       "delete",
		ShortUsage: "drago token delete <id>",
		ShortHelp:  "Revoke a management token",
		LongHelp:   "Revoke a management token at once.\n\nExample:\n  drago token delete 0a1b2c3d4e5f6071\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			id, err := oneArg(args, "token id")
			if err != nil {
				return err
			}
			if err := c.DeleteToken(ctx, id); err != nil {
				return err
			}
			return s.deleted("token", id)
		}),
	}
}

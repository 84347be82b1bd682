package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/drago-wg/drago/server/api"
)

func joinTokenCommand(e *env) *ffcli.Command {
	return group(e, "join-token", "Manage join tokens that let agents register hosts", `Manage join tokens. An agent registers its host once with a join token; the
host gets the token's labels and an interface in each of its networks.
Secrets are shown once, at creation.

Example:
  drago join-token create -name rack-3 -expires 24h -max-uses 10 -network prod -label rack=3
  drago join-token list`,
		joinTokenListCommand(e), joinTokenShowCommand(e), joinTokenCreateCommand(e), joinTokenDeleteCommand(e))
}

func joinUses(j *api.JoinToken) string {
	if j.MaxUses == 0 {
		return fmt.Sprintf("%d/unlimited", j.Uses)
	}
	return fmt.Sprintf("%d/%d", j.Uses, j.MaxUses)
}

func expiry(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return timeString(t)
}

func joinTokenListCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago join-token list", e)
	return &ffcli.Command{
		Name:       "list",
		ShortUsage: "drago join-token list [-json]",
		ShortHelp:  "List join tokens (without secrets)",
		LongHelp:   "List join tokens with their uses and expiry, without secrets.\n\nExample:\n  drago join-token list\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			toks, err := listAll(ctx, c.JoinTokens, api.ListOptions{})
			if err != nil {
				return err
			}
			if s.json {
				return writeJSON(s.e.stdout, toks)
			}
			n := lookupNames(ctx, c)
			rows := make([][]string, len(toks))
			for i, j := range toks {
				rows[i] = []string{j.Name, j.ID, expiry(j.ExpiresAt), joinUses(&j), n.networkList(j.Networks), labelString(j.Labels)}
			}
			table(s.e.stdout, []string{"NAME", "ID", "EXPIRES", "USES", "NETWORKS", "LABELS"}, rows)
			return nil
		}),
	}
}

func (n names) networkList(ids []string) string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = n.network(id)
	}
	return joinOrDash(out)
}

func joinTokenShowCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago join-token show", e)
	return &ffcli.Command{
		Name:       "show",
		ShortUsage: "drago join-token show [-json] <id>",
		ShortHelp:  "Show a join token",
		LongHelp:   "Show a join token, without its secret.\n\nExample:\n  drago join-token show 0a1b2c3d4e5f6071\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			id, err := oneArg(args, "join token id")
			if err != nil {
				return err
			}
			j, err := c.JoinToken(ctx, id)
			if err != nil {
				return err
			}
			return s.print(j, func(w io.Writer) { fields(w, joinTokenFields(j, lookupNames(ctx, c))) })
		}),
	}
}

func joinTokenFields(j *api.JoinToken, n names) []field {
	return []field{
		{"Name", j.Name}, {"ID", j.ID}, {"Expires", expiry(j.ExpiresAt)}, {"Uses", joinUses(j)},
		{"Networks", n.networkList(j.Networks)}, {"Labels", labelString(j.Labels)}, {"Created", timeString(&j.CreatedAt)},
	}
}

// createdJoinToken is the -json answer of join-token create.
type createdJoinToken struct {
	*api.JoinToken
	AgentCommand string `json:"agent_command"`
}

func joinTokenCreateCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago join-token create", e)
	var (
		j        api.JoinToken
		expires  time.Duration
		networks listFlag
		labels   = labelsFlag{}
	)
	fs.StringVar(&j.Name, "name", "", "token name (default join)")
	fs.DurationVar(&expires, "expires", 24*time.Hour, "lifetime, e.g. 1h or 720h; 0 = never expires")
	fs.IntVar(&j.MaxUses, "max-uses", 0, "how many hosts may register with it, 0 = unlimited")
	fs.Var(&networks, "network", "`network` (name or id) the hosts join (repeatable)")
	fs.Var(labels, "label", "`key=value` label for the hosts (repeatable)")
	return &ffcli.Command{
		Name:       "create",
		ShortUsage: "drago join-token create [-name N] [-expires D] [-max-uses N] [-network N ...] [-label k=v ...]",
		ShortHelp:  "Create a join token; prints its secret once and the agent command",
		LongHelp: `Create a join token. The secret is printed once, with the command that joins a
host: drago agent -server <address> -join <secret>. The address is the one this
CLI used; give agents an address they can reach.

Example:
  drago join-token create -name rack-3 -expires 24h -max-uses 10 -network prod -label rack=3
` + connectionHelp,
		FlagSet: fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			if expires < 0 {
				return usagef("-expires: must be 0 (never) or positive")
			}
			if expires > 0 {
				t := time.Now().Add(expires).UTC().Truncate(time.Second)
				j.ExpiresAt = &t
			} else {
				j.NeverExpires = true
			}
			j.Networks = networks
			if len(labels) > 0 {
				j.Labels = labels
			}
			out, err := c.CreateJoinToken(ctx, &j)
			if err != nil {
				return err
			}
			cmd := "drago agent -server " + c.Address() + " -join " + out.Secret
			return s.print(createdJoinToken{out, cmd}, func(w io.Writer) {
				fields(w, append(joinTokenFields(out, lookupNames(ctx, c)), field{"Secret", out.Secret}))
				fmt.Fprintf(w, "\nThe secret is shown only now. On each host, run:\n  %s\n", cmd)
				if api.IsLoopback(c.Address()) {
					fmt.Fprintln(w, "(with a -server address the host can reach instead of this loopback one)")
				}
			})
		}),
	}
}

func joinTokenDeleteCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago join-token delete", e)
	return &ffcli.Command{
		Name:       "delete",
		ShortUsage: "drago join-token delete <id>",
		ShortHelp:  "Revoke a join token",
		LongHelp:   "Revoke a join token; hosts that joined with it stay.\n\nExample:\n  drago join-token delete 0a1b2c3d4e5f6071\n" + connectionHelp,
		FlagSet:    fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			id, err := oneArg(args, "join token id")
			if err != nil {
				return err
			}
			if err := c.DeleteJoinToken(ctx, id); err != nil {
				return err
			}
			return s.deleted("join token", id)
		}),
	}
}

package main

import (
	"context"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/drago-wg/drago/server/api"
)

func auditCommand(e *env) *ffcli.Command {
	return group(e, "audit", "Read the audit trail of management writes", `Read the audit trail: every write made through the API with a management
token (created, changed, deleted objects, refused attempts too) and every
host registration, with who made it, from where, the fields sent (never
secrets) and the answer's status. Reading it takes an audit read policy.

Example:
  drago audit list -since 24h -kind network`,
		auditListCommand(e))
}

func auditListCommand(e *env) *ffcli.Command {
	s, fs := newSession("drago audit list", e)
	var (
		o            api.AuditOptions
		since, until string
	)
	fs.StringVar(&since, "since", "", "only entries from this `time` (RFC 3339) or this long ago (e.g. 24h)")
	fs.StringVar(&until, "until", "", "only entries before this `time` (RFC 3339) or this long ago")
	fs.StringVar(&o.Token, "by", "", "only entries made by this credential (`id or name`)")
	fs.StringVar(&o.Object, "object", "", "only entries about this object (`id or name`)")
	fs.StringVar(&o.Kind, "kind", "", "only entries about objects of this `kind` (network, host, interface, device, connection, token, join_token, ...)")
	fs.StringVar(&o.Method, "method", "", "only entries of this `method` (POST, PUT, PATCH or DELETE)")
	fs.IntVar(&o.Limit, "limit", 100, "at most this many entries, the newest (1 to 1000)")
	fs.IntVar(&o.Offset, "offset", 0, "skip this many of the newest entries")
	return &ffcli.Command{
		Name:       "list",
		ShortUsage: "drago audit list [-since T] [-until T] [-by TOKEN] [-object O] [-kind K] [-method M] [-limit N] [-json]",
		ShortHelp:  "List audit entries, newest first",
		LongHelp: `List the audit entries the token may see, newest first. Fields show the
values sent; fields whose values are not kept (secrets) read "(redacted)".

Example:
  drago audit list -since 1h
  drago audit list -object prod -method DELETE -json
` + connectionHelp,
		FlagSet: fs,
		Exec: s.exec(func(ctx context.Context, c *api.Client, args []string) error {
			if err := noArgs(args); err != nil {
				return err
			}
			now := time.Now()
			var err error
			if o.Since, err = timeFlag("-since", since, now); err != nil {
				return err
			}
			if o.Until, err = timeFlag("-until", until, now); err != nil {
				return err
			}
			if o.Limit < 1 || o.Limit > 1000 {
				return usagef("-limit: must be from 1 to 1000")
			}
			if o.Offset < 0 {
				return usagef("-offset: must not be negative")
			}
			l, err := c.Audit(ctx, o)
			if err != nil {
				return err
			}
			return s.print(l.Items, func(w io.Writer) {
				rows := make([][]string, len(l.Items))
				for i, a := range l.Items {
					who := a.Actor.Kind + " " + orDash(a.Actor.Name) + " (" + a.Actor.ID + ")"
					object := a.Kind + " " + orDash(a.ObjectName)
					if a.ObjectID != "" && a.ObjectID != a.ObjectName {
						object += " (" + a.ObjectID + ")"
					}
					status := strconv.Itoa(a.Status)
					if a.Error != "" {
						status += " " + a.Error
					}
					rows[i] = []string{a.Time.Local().Format(time.RFC3339), who, orDash(a.Remote), a.Method + " " + a.Path, object, status, auditFieldString(a)}
				}
				table(w, []string{"TIME", "BY", "FROM", "REQUEST", "OBJECT", "STATUS", "FIELDS"}, rows)
			})
		}),
	}
}

// timeFlag parses an RFC 3339 time or a duration back from now ("": none).
func timeFlag(flag, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, ok := api.ParseTimeOrAgo(v, now); ok {
		return t, nil
	}
	return time.Time{}, usagef("%s: %q is neither an RFC 3339 time nor a duration such as 24h", flag, v)
}

// auditFieldString shows an entry's fields as name=value, sorted, with the
// redacted ones.
func auditFieldString(a api.AuditEntry) string {
	var parts []string
	for k, v := range a.Fields {
		parts = append(parts, k+"="+v)
	}
	for _, k := range a.Redacted {
		parts = append(parts, k+"=(redacted)")
	}
	slices.Sort(parts)
	return orDash(strings.Join(parts, " "))
}

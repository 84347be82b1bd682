package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/drago-wg/drago/server"
	"github.com/drago-wg/drago/server/api"
)

// Connection defaults of the management commands.
const defaultAddress = "http://127.0.0.1:8080"

// defaultTokenFile is read when no token is given; tests point it elsewhere.
var defaultTokenFile = filepath.Join(server.DefaultDataDir, server.RootTokenFile)

// connectionHelp is appended to the long help of every management command.
const connectionHelp = `
Connection: -address or DRAGO_ADDR (default ` + defaultAddress + `); the token comes
from -token, -token-file, DRAGO_TOKEN or DRAGO_TOKEN_FILE, in that order, else,
for a loopback address, from /var/lib/drago/server/root-token when this user can read
it (the server's root token, on the server's machine); -ca-cert or DRAGO_CACERT
for https.`

// session holds the connection and output flags of one management command.
type session struct {
	e                                 *env
	address, token, tokenFile, caCert string
	json                              bool
	tokenSource                       string // where the token came from, "" when none
}

// newSession returns a flag set with the connection and -json flags.
func newSession(name string, e *env) (*session, *flag.FlagSet) {
	s := &session{e: e}
	fs := newFlagSet(name, e)
	fs.StringVar(&s.address, "address", "", "server address `URL` (env DRAGO_ADDR; default "+defaultAddress+")")
	fs.StringVar(&s.token, "token", "", "management token `secret` (env DRAGO_TOKEN)")
	fs.StringVar(&s.tokenFile, "token-file", "", "`file` holding the token (env DRAGO_TOKEN_FILE; default "+defaultTokenFile+" when readable, for a loopback address)")
	fs.StringVar(&s.caCert, "ca-cert", "", "PEM CA certificate `file` for https (env DRAGO_CACERT)")
	fs.BoolVar(&s.json, "json", false, "print JSON for scripts instead of tables")
	return s, fs
}

// client returns an API client configured from the flags, then the
// environment, then the defaults.
func (s *session) client() (*api.Client, error) {
	addr := cmp.Or(s.address, s.e.getenv("DRAGO_ADDR"), defaultAddress)
	token, err := s.resolveToken(api.IsLoopback(addr))
	if err != nil {
		return nil, err
	}
	return api.NewClient(api.ClientConfig{Address: addr, Token: token, CACert: cmp.Or(s.caCert, s.e.getenv("DRAGO_CACERT"))})
}

// resolveToken returns the token from the flags, the environment or, when
// local, the root token file; the root token is never sent to another machine.
func (s *session) resolveToken(local bool) (string, error) {
	switch {
	case s.token != "" && s.tokenFile != "":
		return "", usagef("-token and -token-file go alone, not together")
	case s.token != "":
		s.tokenSource = "-token"
		return s.token, nil
	case s.tokenFile != "":
		s.tokenSource = "-token-file"
		return readToken(s.tokenFile)
	case s.e.getenv("DRAGO_TOKEN") != "":
		s.tokenSource = "DRAGO_TOKEN"
		return s.e.getenv("DRAGO_TOKEN"), nil
	case s.e.getenv("DRAGO_TOKEN_FILE") != "":
		s.tokenSource = "DRAGO_TOKEN_FILE"
		return readToken(s.e.getenv("DRAGO_TOKEN_FILE"))
	}
	if !local {
		return "", nil // no token: public endpoints still work
	}
	b, err := os.ReadFile(defaultTokenFile)
	if err != nil {
		return "", nil
	}
	s.tokenSource = defaultTokenFile
	return strings.TrimSpace(string(b)), nil
}

func readToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading token file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("token file %s is empty", path)
	}
	return t, nil
}

// exec wraps a command body: it builds the client and turns API errors into
// the CLI's "<message> (field <field>)" form.
func (s *session) exec(f func(ctx context.Context, c *api.Client, args []string) error) func(context.Context, []string) error {
	return func(ctx context.Context, args []string) error {
		c, err := s.client()
		if err != nil {
			return err
		}
		return s.apiError(f(ctx, c, args))
	}
}

// cliError is an error printed as is.
type cliError struct{ msg string }

func (e cliError) Error() string { return e.msg }

// apiError rewrites an *api.ResponseError as "<message> (field <field>)",
// with a hint when the server refused a missing token.
func (s *session) apiError(err error) error {
	var re *api.ResponseError
	if !errors.As(err, &re) {
		return err
	}
	msg := printable(re.Message)
	if re.Field != "" {
		msg += " (field " + printable(re.Field) + ")"
	}
	if re.Status == http.StatusUnauthorized {
		if s.tokenSource == "" {
			msg += "\nno token given: use -token, -token-file, DRAGO_TOKEN or DRAGO_TOKEN_FILE"
		} else {
			msg += "\nthe token from " + s.tokenSource + " was refused"
		}
	}
	return cliError{msg}
}

// print writes v as JSON with -json, else calls human.
func (s *session) print(v any, human func(w io.Writer)) error {
	if s.json {
		return writeJSON(s.e.stdout, v)
	}
	human(s.e.stdout)
	return nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// deleted reports a deletion: a line for people, {"deleted": id} for scripts.
func (s *session) deleted(kind, ref string) error {
	return s.print(map[string]string{"deleted": ref}, func(w io.Writer) {
		fmt.Fprintf(w, "Deleted %s %s.\n", kind, ref)
	})
}

// table writes a header and rows aligned in columns.
func table(w io.Writer, header []string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		cells := make([]string, len(r))
		for k, c := range r {
			cells[k] = printable(c)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	tw.Flush()
}

// printable escapes what a terminal could take for commands (escape
// sequences, bidi overrides) or for layout (tabs, newlines) in a value
// that came from the server: host facts and labels are agents' words.
func printable(s string) string {
	if !strings.ContainsFunc(s, needsEscape) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			b.WriteString(`\ufffd`)
		case needsEscape(r) && r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		case needsEscape(r):
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func needsEscape(r rune) bool { return !unicode.IsPrint(r) || r == utf8.RuneError }

// field is one line of a "show" view.
type field struct{ name, value string }

// fields writes name: value lines aligned.
func fields(w io.Writer, fs []field) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range fs {
		fmt.Fprintf(tw, "%s:\t%s\n", f.name, printable(f.value))
	}
	tw.Flush()
}

// listAll fetches every page of a list call.
func listAll[T any](ctx context.Context, fetch func(context.Context, api.ListOptions) (*api.List[T], error), o api.ListOptions) ([]T, error) {
	o.Limit = 1000
	out := []T{}
	for {
		l, err := fetch(ctx, o)
		if err != nil {
			return nil, err
		}
		out = append(out, l.Items...)
		if len(l.Items) == 0 || len(out) >= l.Total {
			return out, nil
		}
		o.Offset = len(out)
	}
}

// group returns a command that only holds subcommands.
func group(e *env, name, short, long string, subs ...*ffcli.Command) *ffcli.Command {
	c := &ffcli.Command{
		Name:        name,
		ShortUsage:  "drago " + name + " <command> [flags]",
		ShortHelp:   short,
		LongHelp:    long,
		FlagSet:     newFlagSet("drago "+name, e),
		Subcommands: subs,
	}
	c.Exec = func(_ context.Context, args []string) error {
		if len(args) == 0 {
			return ffcli.NoExecError{Command: c}
		}
		return usagef("unknown command %q for drago %s; see drago %s -help", args[0], name, name)
	}
	return c
}

// oneArg returns the single positional argument that names an object.
func oneArg(args []string, what string) (string, error) {
	switch {
	case len(args) == 0:
		return "", usagef("missing the %s", what)
	case len(args) > 1:
		return "", usagef("want one %s, got %q (flags go before it)", what, args)
	}
	return args[0], nil
}

func noArgs(args []string) error {
	if len(args) > 0 {
		return usagef("unexpected arguments %q", args)
	}
	return nil
}

// listFlag collects a list from repeated flags and comma-separated values;
// an empty value gives an empty list (to clear a field in an update).
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	if *l == nil {
		*l = []string{}
	}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

func (l *listFlag) Get() any { return []string(*l) }

// Get makes labelsFlag a flag.Getter for patches.
func (l labelsFlag) Get() any { return map[string]string(l) }

// patch builds a PATCH body from the flags given on the command line only:
// names maps flag names to JSON fields, dotted for nested objects.
func patch(fs *flag.FlagSet, names map[string]string) (map[string]any, error) {
	out := map[string]any{}
	fs.Visit(func(f *flag.Flag) {
		key, ok := names[f.Name]
		if !ok {
			return
		}
		m := out
		parts := strings.Split(key, ".")
		for _, p := range parts[:len(parts)-1] {
			sub, ok := m[p].(map[string]any)
			if !ok {
				sub = map[string]any{}
				m[p] = sub
			}
			m = sub
		}
		m[parts[len(parts)-1]] = f.Value.(flag.Getter).Get()
	})
	if len(out) == 0 {
		flags := make([]string, 0, len(names))
		for n := range names {
			flags = append(flags, "-"+n)
		}
		slices.Sort(flags)
		return nil, usagef("nothing to change: give at least one of %s", strings.Join(flags, ", "))
	}
	return out, nil
}

// Formatting helpers for tables.

func orDash(s string) string { return cmp.Or(s, "-") }

func joinOrDash(l []string) string { return orDash(strings.Join(l, ",")) }

func labelString(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return joinOrDash(parts)
}

func timeString(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.RFC3339)
}

// ago reports how long ago t was, for people.
func ago(t *time.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return "never"
	}
	d := now.Sub(*t).Round(time.Second)
	if d < 0 {
		d = 0
	}
	return d.String() + " ago"
}

func itoa(n int) string { return fmt.Sprint(n) }

// Command drago is Drago's single binary: the control plane (drago server),
// the host agent (drago agent) and the management CLI.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/peterbourgon/ff/v3/ffcli"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// env is what a command reads and writes besides its flags.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], &env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}))
}

// usageError marks errors in how a command was called (exit code 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// exitStatus ends a command that printed its answer with an exit code
// other than 0 (drago rule check of a dropped flow).
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// run parses args, runs the command and returns the exit code.
func run(ctx context.Context, args []string, e *env) int {
	root := rootCommand(e)
	err := root.Parse(args)
	if err == nil {
		err = root.Run(ctx)
	}
	var ue usageError
	var noExec ffcli.NoExecError
	var es exitStatus
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &es):
		return int(es)
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &noExec):
		fmt.Fprintln(e.stderr, ffcli.DefaultUsageFunc(noExec.Command))
		return exitUsage
	case errors.As(err, &ue), isFlagError(err):
		fmt.Fprintln(e.stderr, "drago:", err)
		return exitUsage
	default:
		fmt.Fprintln(e.stderr, "drago:", err)
		return exitError
	}
}

// isFlagError reports whether err came from parsing flags.
func isFlagError(err error) bool {
	s := err.Error()
	return strings.Contains(s, "flag provided but not defined") || strings.Contains(s, "invalid value") ||
		strings.Contains(s, "flag needs an argument") || strings.HasPrefix(s, "config")
}

// rootCommand is the table of every command.
func rootCommand(e *env) *ffcli.Command {
	fs := flag.NewFlagSet("drago", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return &ffcli.Command{
		Name:       "drago",
		ShortUsage: "drago <command> [flags]",
		LongHelp:   "Drago manages WireGuard networks: a control plane (server), a host agent, and this CLI.",
		FlagSet:    fs,
		Subcommands: []*ffcli.Command{
			serviceAware(serverCommand(e), e),
			serviceAware(agentCommand(e), e),
			versionCommand(e),
			statusCommand(e),
			networkCommand(e),
			hostCommand(e),
			interfaceCommand(e),
			connectionCommand(e),
			ruleCommand(e),
			deviceCommand(e),
			tokenCommand(e),
			joinTokenCommand(e),
			auditCommand(e),
			operatorCommand(e),
			serviceCommand(e),
			completionCommand(e),
		},
	}
}

// logFlags are the -log-level and -log-format flags of the daemons.
type logFlags struct{ level, format string }

// addLogFlags defines the log flags on fs.
func addLogFlags(fs *flag.FlagSet) *logFlags {
	l := &logFlags{}
	fs.StringVar(&l.level, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&l.format, "log-format", "text", "text (key=value lines) or json (one object a line, for log shippers)")
	return l
}

// logger returns a logger writing to w at the level and in the format set.
func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(l.level)); err != nil {
		return nil, usagef("-log-level: %q is not debug, info, warn or error", l.level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch l.format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usagef("-log-format: %q is not text or json", l.format)
}

// newFlagSet returns a flag set that reports errors on stderr.
func newFlagSet(name string, e *env) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	return fs
}

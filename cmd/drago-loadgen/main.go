//go:build linux

// Command drago-loadgen measures Drago at scale: it runs many simulated
// hosts in one process, each the real agent code (agent.Run) with an
// in-memory recording backend, its own host credential and its own HTTP
// connections, against a real drago server started as a separate process
// on loopback. Each scenario prints convergence percentiles, the server's
// CPU time and peak RSS, and the bytes sent per change.
//
//	go run ./cmd/drago-loadgen -scenario 2
//	go run ./cmd/drago-loadgen -scenario 2 -hosts 1000
//	go run ./cmd/drago-loadgen -scenario 5 -pprof /tmp/prof
//	go run ./cmd/drago-loadgen -scenario 2 -store etcd
//
// Results and method: docs/benchmarks.md, section "Scale (load tool)".
// Exit status: 0 when the run completed (targets met or not), 1 when it
// failed or a change did not converge in time, 2 on bad flags.
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
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "serve" {
		return serveCommand(args[1:], stderr)
	}
	if len(args) > 0 && args[0] == "etcd" {
		return etcdCommand(args[1:], stderr)
	}
	c, err := parseFlags(args, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintf(stderr, "drago-loadgen: %v\n", err)
		return 2
	}
	level := slog.LevelInfo
	if c.Verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})).With("subsystem", "loadgen")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	res, err := runScenario(ctx, c, log)
	if res != nil {
		if werr := res.write(stdout, c.JSON); werr != nil && err == nil {
			err = werr
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "drago-loadgen: %v\n", err)
		return 1
	}
	return 0
}

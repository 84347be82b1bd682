//go:build windows

package main

import (
	"context"
	"os"

	"github.com/kardianos/service"
	"github.com/peterbourgon/ff/v3/ffcli"
)

// serviceAware lets cmd (drago agent or drago server) run under the Windows
// service manager: started by it, the command runs inside a
// service.Interface whose Stop cancels the command's context, and its log
// goes to the event log. Run from a console it is unchanged.
func serviceAware(cmd *ffcli.Command, e *env) *ffcli.Command {
	run := cmd.Exec
	name := "drago-" + cmd.Name
	cmd.Exec = func(ctx context.Context, args []string) error {
		if service.Interactive() {
			return run(ctx, args)
		}
		p := &serviceProgram{run: func(ctx context.Context) error { return run(ctx, args) }}
		svc, err := service.New(p, &service.Config{Name: name})
		if err != nil {
			return err
		}
		logger, err := svc.Logger(nil)
		if err != nil {
			return err
		}
		e.stderr = &logWriter{log: logger}
		p.exited = func(err error) {
			// The command ended on its own: exit so that the service
			// manager sees a failure and applies its restart policy.
			if err != nil {
				logger.Error("drago " + cmd.Name + ": " + err.Error())
			} else {
				logger.Error("drago " + cmd.Name + " stopped without a stop request")
			}
			os.Exit(exitError)
		}
		if err := svc.Run(); err != nil {
			return err
		}
		return p.err
	}
	return cmd
}

package main

import (
	"context"
	"fmt"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/drago-wg/drago/server/api"
)

func versionCommand(e *env) *ffcli.Command {
	return &ffcli.Command{
		Name:       "version",
		ShortUsage: "drago version",
		ShortHelp:  "Print the version, commit, build date and platform",
		FlagSet:    newFlagSet("version", e),
		Exec: func(context.Context, []string) error {
			fmt.Fprintln(e.stdout, api.VersionString())
			return nil
		},
	}
}

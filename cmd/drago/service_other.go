//go:build !windows

package main

import "github.com/peterbourgon/ff/v3/ffcli"

// serviceAware returns cmd unchanged: systemd, SysV init and launchd stop
// drago with SIGTERM, which cancels the command's context, and read its
// stderr as the log.
func serviceAware(cmd *ffcli.Command, _ *env) *ffcli.Command { return cmd }

//go:build linux

package main

import (
	"os"
	"testing"
)

// TestMain runs the test binary as this tool's child commands ("etcd",
// "serve") when a test's run starts it as one: the tool starts them with
// os.Executable, which is then the test binary.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && (os.Args[1] == "etcd" || os.Args[1] == "serve") {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

package main

import (
	"strings"
	"testing"
)

func TestCheckMetricsAddr(t *testing.T) {
	for _, tc := range []struct {
		addr   string
		remote bool
		err    string
	}{
		{addr: ""},
		{addr: "127.0.0.1:9109"},
		{addr: "[::1]:9109"},
		{addr: "localhost:0"},
		{addr: "0.0.0.0:9109", err: "not a loopback address"},
		{addr: ":9109", err: "not a loopback address"},
		{addr: "10.0.0.5:9109", remote: true},
		{addr: "10.0.0.5", err: "not host:port"},
		{addr: "127.0.0.1:http", err: "no valid port"},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			err := checkMetricsAddr(tc.addr, tc.remote)
			switch {
			case tc.err == "" && err != nil:
				t.Errorf("checkMetricsAddr(%q, %v) = %v, want nil", tc.addr, tc.remote, err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Errorf("checkMetricsAddr(%q, %v) = %v, want %q", tc.addr, tc.remote, err, tc.err)
			}
		})
	}
}

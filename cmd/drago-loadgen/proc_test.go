//go:build linux

package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseStatCPU(t *testing.T) {
	// Field 2 may hold spaces and parentheses; utime 1234 and stime 566
	// ticks are fields 14 and 15.
	stat := "4242 (drago (worker) x) S 1 4242 4242 0 -1 4194560 5120 0 0 0 1234 566 0 0 20 0 9 0 12345 1048576 4096 18446744073709551615\n"
	got, err := parseStatCPU([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if want := 18 * time.Second; got != want {
		t.Errorf("parseStatCPU = %v, want %v", got, want)
	}
	for _, bad := range []string{
		"",
		"4242 drago S 1",
		"4242 (drago) S 1 2 3",
		"4242 (drago) S 1 4242 4242 0 -1 4194560 5120 0 0 0 12x4 566 0 0",
		"4242 (drago) S 1 4242 4242 0 -1 4194560 5120 0 0 0 -5 566 0 0",
	} {
		if _, err := parseStatCPU([]byte(bad)); err == nil {
			t.Errorf("parseStatCPU(%q) accepted it", bad)
		}
	}
}

func TestParseStatus(t *testing.T) {
	status := strings.Join([]string{
		"Name:\tdrago",
		"State:\tS (sleeping)",
		"Pid:\t4242",
		"VmHWM:\t  204800 kB",
		"VmRSS:\t  102400 kB",
		"Threads:\t12",
		"SigQ:\t0/95283",
		"Cpus_allowed:\t3",
		"",
	}, "\n")
	got, err := parseStatus([]byte(status))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"Pid": 4242, "VmHWM": 200 << 20, "VmRSS": 100 << 20, "Threads": 12, "Cpus_allowed": 3}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseStatus (-want +got):\n%s", diff)
	}
	if _, err := parseStatus([]byte("Name:\tdrago\nState:\tS (sleeping)\n")); err == nil {
		t.Error("parseStatus accepted a status without numbers")
	}
}

func TestParseIO(t *testing.T) {
	got, err := parseIO([]byte("rchar: 100\nwchar: 2048\nsyscr: 3\nsyscw: 4\nread_bytes: 0\nwrite_bytes: 4096\ncancelled_write_bytes: 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got["wchar"] != 2048 || got["rchar"] != 100 || got["write_bytes"] != 4096 {
		t.Errorf("parseIO = %v", got)
	}
	for _, bad := range []string{"rchar: 1\n", "rchar 1\nwchar 2\n", "rchar: x\nwchar: 2\n"} {
		if _, err := parseIO([]byte(bad)); err == nil {
			t.Errorf("parseIO(%q) accepted it", bad)
		}
	}
}

func TestReadProcSelf(t *testing.T) {
	s, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.RSS <= 0 || s.PeakRSS < s.RSS || s.Threads < 1 || s.FDs < 3 {
		t.Errorf("readProc(self) = %+v: implausible", s)
	}
}

func TestParseMachineCPU(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	got, err := parseMachineCPU([]byte("cpu  1000 50 300 9000 70 10 40 100 0 0\ncpu0 500 25 150 4500 35 5 20 50 0 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := 15 * time.Second; got != want { // 1000+50+300+10+40+100 ticks
		t.Errorf("parseMachineCPU = %v, want %v", got, want)
	}
	for _, bad := range []string{"", "intr 1 2 3\n", "cpu 1 2 3\n", "cpu 1 2 x 4 5 6 7 8\n"} {
		if _, err := parseMachineCPU([]byte(bad)); err == nil {
			t.Errorf("parseMachineCPU(%q) accepted it", bad)
		}
	}
}

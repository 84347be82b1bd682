//go:build linux

package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat. Linux fixes it at
// 100 for user space on every architecture (USER_HZ), whatever the kernel's HZ.
const userHZ = 100

// procSample is one reading of a process's resource use from /proc.
type procSample struct {
	At      time.Time
	CPU     time.Duration // user + system
	RSS     int64         // bytes, VmRSS
	PeakRSS int64         // bytes, VmHWM: the peak since start or the last resetPeakRSS
	WChar   int64         // bytes passed to write-like system calls (sockets and files)
	RChar   int64         // bytes returned by read-like system calls
	Threads int
	FDs     int
}

// readProc samples process pid.
func readProc(pid int) (procSample, error) {
	s := procSample{At: time.Now()}
	dir := "/proc/" + strconv.Itoa(pid)
	b, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return s, err
	}
	if s.CPU, err = parseStatCPU(b); err != nil {
		return s, fmt.Errorf("%s/stat: %w", dir, err)
	}
	b, err = os.ReadFile(dir + "/status")
	if err != nil {
		return s, err
	}
	st, err := parseStatus(b)
	if err == nil && st["VmRSS"] == 0 {
		err = errors.New("no VmRSS line")
	}
	if err != nil {
		return s, fmt.Errorf("%s/status: %w", dir, err)
	}
	s.RSS, s.PeakRSS, s.Threads = st["VmRSS"], st["VmHWM"], int(st["Threads"])
	if b, err := os.ReadFile(dir + "/io"); err == nil {
		if io, err := parseIO(b); err == nil {
			s.WChar, s.RChar = io["wchar"], io["rchar"]
		}
	}
	if ents, err := os.ReadDir(dir + "/fd"); err == nil {
		s.FDs = len(ents)
	}
	return s, nil
}

// parseStatCPU returns utime+stime from the contents of /proc/<pid>/stat.
// The command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("no command name")
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("%d fields after the command name, want at least 13", len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("cpu time %q is not a count of ticks", s)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// parseStatus returns the numeric fields of /proc/<pid>/status (or of
// /proc/meminfo); sizes given in kB are converted to bytes.
func parseStatus(b []byte) (map[string]int64, error) {
	out := map[string]int64{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue // not numeric, e.g. State or a bit mask
		}
		if len(f) == 2 && f[1] == "kB" {
			n *= 1024
		}
		out[k] = n
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errors.New("no numeric field")
	}
	return out, nil
}

// parseIO returns the counters of /proc/<pid>/io.
func parseIO(b []byte) (map[string]int64, error) {
	out := map[string]int64{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			return nil, fmt.Errorf("line %q is not key: value", line)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %q is not a number", k, strings.TrimSpace(v))
		}
		out[k] = n
	}
	if _, ok := out["wchar"]; !ok {
		return nil, errors.New("no wchar line")
	}
	return out, nil
}

// readMachineCPU returns the CPU time all processes used since boot (all
// CPUs, idle and iowait excluded), from /proc/stat.
func readMachineCPU() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	return parseMachineCPU(b)
}

// parseMachineCPU parses the "cpu" line of /proc/stat: user nice system
// idle iowait irq softirq steal ..., in USER_HZ ticks. Guest time is
// already counted in user.
func parseMachineCPU(b []byte) (time.Duration, error) {
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, errors.New("/proc/stat: no cpu line")
	}
	var ticks int64
	for i, s := range f[1:9] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %q is not a count of ticks", s)
		}
		if i != 3 && i != 4 { // idle, iowait
			ticks += n
		}
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// resetPeakRSS resets VmHWM of pid to its current RSS (Linux 4.0+,
// clear_refs value 5), so that a phase's peak can be read on its own.
func resetPeakRSS(pid int) error {
	return os.WriteFile("/proc/"+strconv.Itoa(pid)+"/clear_refs", []byte("5"), 0)
}

// raiseFileLimit raises RLIMIT_NOFILE, soft and hard, to at least want. The
// server child inherits it. It returns the limit now in force.
func raiseFileLimit(want uint64) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, err
	}
	if lim.Cur >= want {
		return lim.Cur, nil
	}
	next := lim
	next.Cur = want
	if next.Max < want {
		next.Max = want // needs CAP_SYS_RESOURCE
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &next); err != nil {
		// Without privilege, take what the hard limit allows.
		next = lim
		next.Cur = lim.Max
		if err2 := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &next); err2 != nil {
			return lim.Cur, fmt.Errorf("raising the open-file limit to %d: %w", want, err)
		}
		return next.Cur, fmt.Errorf("raising the open-file limit to %d: %w (got %d)", want, err, next.Cur)
	}
	return next.Cur, nil
}

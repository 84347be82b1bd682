//go:build linux

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

// Result is what one run measured. Byte counts are on the wire (HTTP
// headers included, after compression), counted on the agents' connections.
type Result struct {
	Scenario int    `json:"scenario"`
	Title    string `json:"title"`
	Layout   string `json:"layout"`
	Change   string `json:"change,omitempty"`
	Machine  string `json:"machine"`
	Agents   string `json:"agents"`
	Server   string `json:"server"`
	Store    string `json:"store"`

	Setup    Phase `json:"setup"`
	Measured Phase `json:"measured"`

	Changes      int         `json:"changes,omitempty"`
	Convergence  Dist        `json:"convergence"`
	ConvergeWhat string      `json:"convergence_what"`
	NotConverged int         `json:"not_converged"`
	Extra        []NamedDist `json:"extra,omitempty"`

	WokenMin     int `json:"woken_min,omitempty"`
	WokenMax     int `json:"woken_max,omitempty"`
	WokenOutside int `json:"woken_outside"` // woken agents that the change did not concern, summed over changes

	PeerOpsMin int64 `json:"peer_ops_min,omitempty"` // per affected agent and change
	PeerOpsMax int64 `json:"peer_ops_max,omitempty"`

	BytesToAgents   float64 `json:"bytes_to_agents_per_change,omitempty"`   // desired states answered because of the change
	BytesFromAgents float64 `json:"bytes_from_agents_per_change,omitempty"` // status reports of the woken agents
	BytesOther      float64 `json:"bytes_other_per_change,omitempty"`       // heartbeats, expired waits, request heads
	BytesPerWoken   float64 `json:"bytes_per_woken_agent,omitempty"`        // desired state per woken agent
	ServerWChar     float64 `json:"server_wchar_per_change,omitempty"`      // server write(2) bytes, files included

	ServerCPUGross     time.Duration `json:"server_cpu_gross_per_change_ns,omitempty"` // the window of each change, idle included
	ServerCPUPerChange time.Duration `json:"server_cpu_per_change_ns,omitempty"`       // net of the idle rate
	IdleCPUPercent     float64       `json:"idle_cpu_percent"`                         // server, % of one core
	EtcdCPUPerChange   time.Duration `json:"etcd_cpu_per_change_ns,omitempty"`         // -store etcd: the cluster this tool started, net of its idle rate
	EtcdIdleCPUPercent float64       `json:"etcd_idle_cpu_percent,omitempty"`

	Notes    []string `json:"notes,omitempty"`
	Targets  []Target `json:"targets,omitempty"`
	Profiles []string `json:"profiles,omitempty"`
	AgentLog string   `json:"agent_log"`
}

// Phase is the resource use of the server and of this tool over one phase.
type Phase struct {
	Duration      time.Duration `json:"duration_ns"`
	ServerCPU     time.Duration `json:"server_cpu_ns"`
	ServerRSS     int64         `json:"server_rss"`      // at the end
	ServerPeakRSS int64         `json:"server_peak_rss"` // during the phase
	ServerThreads int           `json:"server_threads"`
	ServerFDs     int           `json:"server_fds"`
	EtcdCPU       time.Duration `json:"etcd_cpu_ns,omitempty"` // -store etcd: the cluster this tool started
	EtcdRSS       int64         `json:"etcd_rss,omitempty"`    // at the end
	LoadCPU       time.Duration `json:"loadgen_cpu_ns"`
	LoadRSS       int64         `json:"loadgen_rss"`
	OtherCPU      time.Duration `json:"other_cpu_ns"` // every other process on the machine
}

// NamedDist is a secondary distribution, e.g. a key rotation's first step.
type NamedDist struct {
	Name string `json:"name"`
	Dist Dist   `json:"dist"`
}

// Target is one of issue 8's targets, checked against this run.
type Target struct {
	Name string `json:"name"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
}

func (r *Result) target(name string, met bool, format string, args ...any) {
	r.Targets = append(r.Targets, Target{Name: name, Got: fmt.Sprintf(format, args...), Met: met})
}

func (r *Result) note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// write prints the result for people, or as JSON.
func (r *Result) write(w io.Writer, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("scenario %d: %s", r.Scenario, r.Title)
	p("  layout:      %s", r.Layout)
	if r.Change != "" {
		p("  change:      %s", r.Change)
	}
	p("  machine:     %s", r.Machine)
	p("  agents:      %s", r.Agents)
	p("  server:      %s", r.Server)
	p("  store:       %s", r.Store)
	if r.Setup.Duration > 0 {
		p("  setup:       %s", r.Setup.line())
	} else {
		p("  setup:       none: the measured phase starts from an empty server")
	}
	p("  measured:    %s", r.Measured.line())
	if r.Changes > 0 {
		p("  changes:     %d, one after the other, each once the last one's state saves are done", r.Changes)
	}
	if r.ConvergeWhat != "" {
		p("  convergence: %s", r.Convergence)
		p("               (%s)", r.ConvergeWhat)
		if r.NotConverged > 0 {
			p("               NOT CONVERGED: %d agent-changes timed out", r.NotConverged)
		}
	}
	for _, x := range r.Extra {
		p("  %-12s %s", x.Name+":", x.Dist)
	}
	if r.WokenMax > 0 {
		p("  woken:       %d-%d agents per change; woken outside the change's scope: %d", r.WokenMin, r.WokenMax, r.WokenOutside)
	}
	if r.PeerOpsMax > 0 {
		p("  peer ops:    %d-%d per affected agent and change (recording backend)", r.PeerOpsMin, r.PeerOpsMax)
	}
	if r.BytesToAgents > 0 {
		p("  bytes:       per change: desired states %s (%s per woken agent), status reports of the woken agents %s, background %s; server write(2) %s",
			byteSize(r.BytesToAgents), byteSize(r.BytesPerWoken), byteSize(r.BytesFromAgents), byteSize(r.BytesOther), byteSize(r.ServerWChar))
	}
	if r.ServerCPUPerChange > 0 || r.Changes > 0 {
		p("  server CPU:  %s per change net of the idle rate (%.1f%% of one core); %s gross",
			ms(r.ServerCPUPerChange), r.IdleCPUPercent, ms(r.ServerCPUGross))
	} else {
		p("  server CPU:  %.1f%% of one core over the measured phase", r.IdleCPUPercent)
	}
	if r.EtcdCPUPerChange > 0 || r.EtcdIdleCPUPercent > 0 {
		p("  etcd CPU:    %s per change net of the idle rate (%.1f%% of one core), all members", ms(r.EtcdCPUPerChange), r.EtcdIdleCPUPercent)
	}
	for _, n := range r.Notes {
		p("  note:        %s", n)
	}
	if len(r.Targets) > 0 {
		p("  targets:")
		for _, t := range r.Targets {
			mark := "MISSED"
			if t.Met {
				mark = "met"
			}
			p("    %-6s %-48s %s", mark, t.Name, t.Got)
		}
	}
	for _, f := range r.Profiles {
		p("  profile:     %s", f)
	}
	p("  agent log:   %s", r.AgentLog)
	_, err := io.WriteString(w, b.String())
	return err
}

func (ph Phase) line() string {
	etcd := ""
	if ph.EtcdRSS > 0 {
		etcd = fmt.Sprintf("; etcd CPU %.1fs, RSS %s", ph.EtcdCPU.Seconds(), byteSize(float64(ph.EtcdRSS)))
	}
	return fmt.Sprintf("%s; server CPU %.1fs, RSS %s (peak %s), %d threads, %d fds%s; load tool CPU %.1fs, RSS %s; other processes CPU %.1fs",
		ph.Duration.Round(100*time.Millisecond), ph.ServerCPU.Seconds(), byteSize(float64(ph.ServerRSS)),
		byteSize(float64(ph.ServerPeakRSS)), ph.ServerThreads, ph.ServerFDs, etcd, ph.LoadCPU.Seconds(), byteSize(float64(ph.LoadRSS)),
		ph.OtherCPU.Seconds())
}

// machine describes the machine for the results.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if st, err := parseStatus(b); err == nil && st["MemTotal"] > 0 {
			mem = ", " + byteSize(float64(st["MemTotal"]))
		}
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%d CPUs %s%s%s, %s", runtime.NumCPU(), model, mem, kernel, runtime.Version())
}

//go:build linux

package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/drago-wg/drago/server/api"
)

// Key rotation end to end: TestKeyRotationUnderPing measures what a
// rotation costs a live ping stream; TestKeyRotationCrash kills the agent
// at each step of a rotation and checks that a restart completes it.

// rotationsUnderPing is how many rotations the ping test forces.
const rotationsUnderPing = 200

// rotationResult is one forced rotation, measured.
type rotationResult struct {
	start       time.Time
	took        time.Duration // API request -> the server holds the new key as current
	peerUpdated time.Duration // API request -> the peer's wg show lists only the new key
	sent, lost  [2]int        // echo requests in this rotation's window, and lost, per ping
}

// TestKeyRotationUnderPing: h1 pings h2 and h2 pings h1, each at 10
// packets a second, while h2's key is rotated 200 times through the API.
// Every rotation must complete, leave the new key active on both sides
// (h2's device, h1's peer with the allowed IPs, the old key gone), and
// lose no packet in either direction: h2 holds what it sends after its
// switch until h1, which does not install the announced key, adds it with
// the allowed IPs and starts the handshake (agent.kick).
func TestKeyRotationUnderPing(t *testing.T) {
	l, _, hs := meshLab(t, "dgrp", 2, api.TopologyMesh)
	h1, h2 := hs[0], hs[1]
	c := l.client()
	v1, _ := l.overlay(h1)
	v2, _ := l.overlay(h2)
	eventually(t, 10*time.Second, "h1 pings h2", func() bool { return l.ping(h1, v2) })
	i1, i2 := l.ifaceOf(h1), l.ifaceOf(h2)
	allowed := hostRoutes(i2.Addresses)

	directions := [2]string{"h1 -> h2", "h2 -> h1"}
	pings := [2]*pingRun{startPing(t, h1, v2), startPing(t, h2, v1)}
	time.Sleep(time.Second) // a baseline before the first rotation
	var results []rotationResult
	for n := range rotationsUnderPing {
		old, err := c.Interface(ctx, i2.ID)
		if err != nil {
			t.Fatal(err)
		}
		r := rotationResult{start: time.Now()}
		if _, err := c.RotateKeys(ctx, h2.name); err != nil {
			t.Fatal(err)
		}
		var now *api.Interface
		eventually(t, 10*time.Second, fmt.Sprintf("rotation %d completes on the server", n+1), func() bool {
			now, err = c.Interface(ctx, i2.ID)
			return err == nil && now.PublicKey != old.PublicKey && now.NextPublicKey == ""
		})
		r.took = time.Since(r.start)
		eventually(t, 5*time.Second, fmt.Sprintf("rotation %d: h1's wg show lists only the new key, with h2's addresses", n+1), func() bool {
			_, _, peers, err := l.wgDump(h1, i1.Name)
			return err == nil && len(peers) == 1 && sameIPs(peers[now.PublicKey].AllowedIPs, allowed)
		})
		r.peerUpdated = time.Since(r.start)
		if pub, err := l.exec(h2, "wg", "show", i2.Name, "public-key"); err != nil || strings.TrimSpace(pub) != now.PublicKey {
			t.Fatalf("rotation %d: h2's device uses %q, the server holds %s (%v)", n+1, strings.TrimSpace(pub), now.PublicKey, err)
		}
		if now.KeyRotatedAt == nil || old.KeyRotatedAt == nil || !now.KeyRotatedAt.After(*old.KeyRotatedAt) {
			t.Errorf("rotation %d: key_rotated_at %v not after %v", n+1, now.KeyRotatedAt, old.KeyRotatedAt)
		}
		results = append(results, r)
		time.Sleep(300 * time.Millisecond) // traffic between rotations
	}
	time.Sleep(2 * time.Second) // the last window, and time for late replies

	var table strings.Builder
	fmt.Fprintf(&table, "| rotation | completed (server) | peer updated | echo requests %s | lost | echo requests %s | lost |\n|---:|---:|---:|---:|---:|---:|---:|\n", directions[0], directions[1])
	var total, worst [2]int
	for d, ping := range pings {
		replies, stopped := ping.stop(t)
		if baseline := countLoss(replies, time.Time{}, results[0].start, stopped); baseline.lost > 0 {
			t.Errorf("%s: %d of %d packets lost before any rotation: the lab is not steady", directions[d], baseline.lost, baseline.sent)
		}
		for i := range results {
			end := stopped
			if i+1 < len(results) {
				end = results[i+1].start
			}
			ls := countLoss(replies, results[i].start, end, stopped)
			results[i].sent[d], results[i].lost[d] = ls.sent, ls.lost
			total[d] += ls.lost
			worst[d] = max(worst[d], ls.lost)
		}
	}
	for i, r := range results {
		fmt.Fprintf(&table, "| %d | %d ms | %d ms | %d | %d | %d | %d |\n", i+1, r.took.Milliseconds(), r.peerUpdated.Milliseconds(), r.sent[0], r.lost[0], r.sent[1], r.lost[1])
	}
	t.Logf("ping -i 0.1 both ways while h2 rotates %d times:\n%s", len(results), table.String())
	for d := range directions {
		t.Logf("%s: lost %d packets in %d rotations; worst rotation %d", directions[d], total[d], len(results), worst[d])
	}
	for i, r := range results {
		for d := range directions {
			if r.sent[d] == 0 {
				t.Errorf("rotation %d: no echo request %s in its window", i+1, directions[d])
			}
			if r.lost[d] > 0 {
				t.Errorf("rotation %d lost %d packets %s, want none; ping's output then:\n%s", i+1, r.lost[d], directions[d], pings[d].around(r.start))
			}
		}
	}
}

// hostRoutes turns interface addresses into the /32 and /128 a peer allows.
func hostRoutes(addrs []string) string {
	var out []string
	for _, a := range addrs {
		p := netip.MustParsePrefix(a)
		out = append(out, netip.PrefixFrom(p.Addr(), p.Addr().BitLen()).String())
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

// sameIPs compares wg show's comma-separated allowed IPs with want (sorted).
func sameIPs(got, want string) bool {
	ips := strings.Split(got, ",")
	slices.Sort(ips)
	return strings.Join(ips, ",") == want
}

// pingRun is a ping stream at 10 packets a second with a timestamp on
// every reply (-D).
type pingRun struct {
	cmd *exec.Cmd
	out *strings.Builder
}

func startPing(t *testing.T, h *host, addr string) *pingRun {
	t.Helper()
	p := &pingRun{out: &strings.Builder{}}
	p.cmd = exec.Command("ip", "netns", "exec", h.ns, "ping", "-D", "-n", "-i", "0.1", "-W", "1", addr)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	return p
}

// reply is one echo reply: its sequence number and when its request left.
type reply struct {
	seq  int
	sent time.Time
}

// around returns ping's output lines stamped within a second of at.
func (p *pingRun) around(at time.Time) string {
	var out strings.Builder
	for line := range strings.Lines(p.out.String()) {
		var ts float64
		if _, err := fmt.Sscanf(line, "[%f]", &ts); err == nil && time.Unix(0, int64(ts*1e9)).Sub(at).Abs() < time.Second {
			out.WriteString(line)
		}
	}
	return out.String()
}

// stop interrupts ping and returns the replies and the time it stopped.
func (p *pingRun) stop(t *testing.T) (replies []reply, stopped time.Time) {
	t.Helper()
	stopped = time.Now()
	p.cmd.Process.Signal(syscall.SIGINT)
	p.cmd.Wait()
	seen := map[int]bool{}
	sc := bufio.NewScanner(strings.NewReader(p.out.String()))
	for sc.Scan() {
		// [1732540000.123456] 64 bytes from 10.42.0.12: icmp_seq=1 ttl=64 time=0.512 ms
		var ts, rtt float64
		var seq int
		line := sc.Text()
		i := strings.Index(line, "icmp_seq=")
		if !strings.HasPrefix(line, "[") || i < 0 || strings.Contains(line, "DUP") {
			continue
		}
		if _, err := fmt.Sscanf(line[1:], "%f]", &ts); err != nil {
			continue
		}
		if _, err := fmt.Sscanf(line[i:], "icmp_seq=%d", &seq); err != nil || seen[seq] {
			continue
		}
		if j := strings.Index(line, "time="); j >= 0 {
			fmt.Sscanf(line[j:], "time=%f", &rtt)
		}
		seen[seq] = true
		at := time.Unix(0, int64(ts*1e9)).Add(-time.Duration(rtt * float64(time.Millisecond)))
		replies = append(replies, reply{seq: seq, sent: at})
	}
	if len(replies) == 0 {
		t.Fatalf("no ping reply at all:\n%s", p.out.String())
	}
	slices.SortFunc(replies, func(a, b reply) int { return a.seq - b.seq })
	return replies, stopped
}

// loss counts echo requests.
type loss struct{ sent, lost int }

// countLoss counts the requests sent in [from, to) and those never
// answered. A lost request's send time is interpolated from its neighbours
// at 100 ms spacing; requests sent in the last 1.5 s before stopped are
// left out, since their replies may not have come back yet.
func countLoss(replies []reply, from, to, stopped time.Time) loss {
	var l loss
	cutoff := stopped.Add(-1500 * time.Millisecond)
	in := func(at time.Time) bool { return !at.Before(from) && at.Before(to) && at.Before(cutoff) }
	for i, r := range replies {
		if in(r.sent) {
			l.sent++
		}
		if i+1 < len(replies) {
			for seq := r.seq + 1; seq < replies[i+1].seq; seq++ {
				if at := r.sent.Add(time.Duration(seq-r.seq) * 100 * time.Millisecond); in(at) {
					l.sent++
					l.lost++
				}
			}
		}
	}
	return l
}

// TestKeyRotationCrash kills h2's agent right after each step of a
// rotation forced through the API (the test-only DRAGO_AGENT_CRASH_AT
// hook: exit status 3, no cleanup), restarts it without the hook, and
// checks that the rotation completes to the key the crash left on disk,
// that the key file, h2's device, the server and h1's peer agree on it,
// and that the tunnel works.
func TestKeyRotationCrash(t *testing.T) {
	l, _, hs := meshLab(t, "dgrc", 2, api.TopologyMesh)
	h1, h2 := hs[0], hs[1]
	c := l.client()
	v2, _ := l.overlay(h2)
	i1, i2 := l.ifaceOf(h1), l.ifaceOf(h2)
	allowed := hostRoutes(i2.Addresses)
	for _, step := range []string{"generated", "announced", "switched"} {
		eventually(t, 10*time.Second, "h1 pings h2 before the crash at "+step, func() bool { return l.ping(h1, v2) })
		before, err := c.Interface(ctx, i2.ID)
		if err != nil {
			t.Fatal(err)
		}
		h2.agent.kill(syscall.SIGTERM)
		l.startAgentCrashingAt(h2, step)
		eventually(t, 10*time.Second, "h2 is back before the crash at "+step, func() bool { return l.ping(h1, v2) })
		if _, err := c.RotateKeys(ctx, h2.name); err != nil {
			t.Fatal(err)
		}
		select {
		case <-h2.agent.done:
		case <-time.After(10 * time.Second):
			t.Fatalf("the agent did not exit at %s", step)
		}
		if code := h2.agent.cmd.ProcessState.ExitCode(); code != 3 || !strings.Contains(h2.agent.output(), "step="+step) {
			t.Fatalf("agent exit status %d at %s, want 3 from the hook:\n%s", code, step, tail(h2.agent.output()))
		}

		// What the crash left: the key file and the server, one step apart.
		cur, next := readKeys(t, h2, i2.ID)
		at, err := c.Interface(ctx, i2.ID)
		if err != nil {
			t.Fatal(err)
		}
		want := next // the key the restart must end on
		switch step {
		case "generated":
			if next == "" || at.NextPublicKey != "" || cur != before.PublicKey {
				t.Fatalf("after %s: file current %s next %q; server next %q", step, cur, next, at.NextPublicKey)
			}
		case "announced":
			if next == "" || at.NextPublicKey != next || cur != before.PublicKey {
				t.Fatalf("after %s: file next %q; server next %q", step, next, at.NextPublicKey)
			}
		case "switched":
			if next != "" || cur == before.PublicKey || at.NextPublicKey != cur || at.PublicKey != before.PublicKey {
				t.Fatalf("after %s: file current %s next %q; server current %s next %q", step, cur, next, at.PublicKey, at.NextPublicKey)
			}
			want = cur
		}

		start := time.Now()
		l.startAgent(h2, "")
		eventually(t, 15*time.Second, "the rotation completes after the restart at "+step, func() bool {
			now, err := c.Interface(ctx, i2.ID)
			return err == nil && now.PublicKey == want && now.NextPublicKey == ""
		})
		eventually(t, 5*time.Second, "h1's wg show lists only h2's new key", func() bool {
			_, _, peers, err := l.wgDump(h1, i1.Name)
			return err == nil && len(peers) == 1 && sameIPs(peers[want].AllowedIPs, allowed)
		})
		eventually(t, 5*time.Second, "h1 pings h2 after the restart at "+step, func() bool { return l.ping(h1, v2) })
		cur, next = readKeys(t, h2, i2.ID)
		pub, err := l.exec(h2, "wg", "show", i2.Name, "public-key")
		if err != nil || strings.TrimSpace(pub) != want || cur != want || next != "" {
			t.Fatalf("after the restart at %s: device %q, key file current %s next %q, server %s (%v)", step, strings.TrimSpace(pub), cur, next, want, err)
		}
		t.Logf("crash at %s: restart to one agreed key and a working tunnel in %v", step, time.Since(start).Round(time.Millisecond))
	}
}

// crashEnv is the agent's test-only crash hook (agent/rotation.go).
const crashEnv = "DRAGO_AGENT_CRASH_AT"

// startAgentCrashingAt restarts h's agent with the test-only crash hook set
// to step. The harness's processes inherit the test's environment, so the
// hook is set just for this start; the tests of this package do not run in
// parallel.
func (l *lab) startAgentCrashingAt(h *host, step string) {
	os.Setenv(crashEnv, step)
	defer os.Unsetenv(crashEnv)
	l.startAgent(h, "")
}

// readKeys returns the public halves of the current and staged keys in h's
// key file of interface id ("" when none is staged). The private keys are
// read only to derive them.
func readKeys(t *testing.T, h *host, id string) (cur, next string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(h.dataDir, "agent", "keys", id+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var kf struct {
		PrivateKey     string `json:"private_key"`
		NextPrivateKey string `json:"next_private_key"`
	}
	if err := json.Unmarshal(b, &kf); err != nil {
		t.Fatal(err)
	}
	pub := func(s string) string {
		if s == "" {
			return ""
		}
		k, err := wgtypes.ParseKey(s)
		if err != nil {
			t.Fatalf("key file of %s holds an invalid key", h.name)
		}
		return k.PublicKey().String()
	}
	return pub(kf.PrivateKey), pub(kf.NextPrivateKey)
}

package agent

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/drago-wg/drago/server/api"
)

// Key rotation replaces each interface's key pair on a schedule
// (Config.KeyRotationInterval) or when the server asks
// (DesiredState.RotateKeys), keeping the tunnels up:
//
//  1. generate: a next key is generated and stored in the key file beside
//     the current one, synced, before anyone hears of it;
//  2. announce: status reports carry its public half as NextPublicKey; the
//     server adds it to every peer's desired state, without allowed IPs,
//     beside the current key (the peers do not install it), echoes it in DesiredInterface.NextPublicKey, and sets SwitchKey
//     once every peer has applied it;
//  3. switch: on SwitchKey, or switchFallback after the first echo when
//     peers are offline and never apply it, the key file is rewritten with
//     the next key as the current one (synced), the device gets the new
//     private key, and the next report carries it as PublicKey; the server
//     then gives the peers' new entry the allowed IPs and drops the old one.
//
// Each step is stored before its effect can be seen, so an agent killed
// anywhere resumes from the key file: a staged key is announced again and
// switched to when the server says so; a promoted key is applied by the
// first reconcile and reported at start, and the server, which knows it as
// the announced next key, completes the rotation.
//
// Traffic: the peers do not install the announced key (a peer without
// allowed IPs is not installed, see installed in diff.go). After the
// switch the host still decrypts what peers send over the old sessions,
// and holds its own packets (WireGuard queues them) until a handshake
// under the new key completes: each peer, when the server moves the
// allowed IPs to the new key, waits kickDelay, then adds it in place of the
// old one and starts that handshake (see kick), so no packet is lost: they
// wait the switch's report, the peer's blocking query, kickDelay and one
// ConfigureWireGuard (about 105 ms here). Until then the peer ignores the
// host's own handshake under a key it does not know, and still sends over
// the old session, which the host decrypts.

// switchFallback is how long after the server first echoed a next key the
// agent switches to it without SwitchKey: peers that are offline never
// apply the announcement, and pick up the new key when they come back.
const switchFallback = 30 * time.Second

// crashEnv names the TEST-ONLY crash hook. When DRAGO_AGENT_CRASH_AT is
// "generated", "announced" or "switched", the agent exits at once with
// status 3, without any cleanup, right after that rotation step, as a
// kill -9 would: end-to-end tests use it to prove that a restart
// completes the rotation. It must never be set in production.
const crashEnv = "DRAGO_AGENT_CRASH_AT"

// Rotation steps named by the crash hook.
const (
	stepGenerated = "generated" // the next key is stored, not yet announced
	stepAnnounced = "announced" // the server acknowledged a report announcing it
	stepSwitched  = "switched"  // stored as current and applied, not yet reported
)

// crashPoint exits the process when the test-only hook names step.
func (a *agent) crashPoint(step string) {
	if a.crashAt != "" && a.crashAt == step {
		a.log.Warn("test hook: exiting in the middle of a key rotation", "env", crashEnv, "step", step)
		a.exit(3)
	}
}

// rotationDue returns when a key in use since activated is due for
// scheduled rotation: activated + interval×f, with f in [0.9, 1.0) fixed
// per key. f is drawn from the SHA-256 of the key's public half, a random
// value that is stored with the key (the key itself), stable across
// restarts, and different for every interface of a fleet. ok is false when
// interval is not positive: the schedule is disabled.
func rotationDue(pub wgtypes.Key, activated time.Time, interval time.Duration) (due time.Time, ok bool) {
	if interval <= 0 {
		return time.Time{}, false
	}
	sum := sha256.Sum256(pub[:])
	u := float64(binary.BigEndian.Uint64(sum[:8])>>11) / (1 << 53) // [0, 1)
	tenth := interval / 10
	jitter := min(time.Duration(float64(tenth)*u), max(tenth-1, 0))
	return activated.Add(interval - tenth + jitter), true
}

// startRotation reports whether an interface with keys k starts a rotation
// at now: never while one is in progress (a staged key), at once when the
// server asks (onDemand), else once the schedule says it is due, which a
// key left unrotated through a long downtime is at the first check.
func startRotation(now time.Time, k keyPair, interval time.Duration, onDemand bool) bool {
	if k.staged() {
		return false
	}
	if onDemand {
		return true
	}
	due, ok := rotationDue(k.CurrentPublic, k.ActivatedAt, interval)
	return ok && !now.Before(due)
}

// switchNow reports whether an interface switches at now to its staged key
// whose public half is next: the server lists next as the announced key
// and says every peer has it, or it first did so at echoed, fallback ago
// or more. A server that already holds next as the current key (it saw it
// reported) is followed at once.
func switchNow(now time.Time, next wgtypes.Key, d api.DesiredInterface, echoed time.Time, fallback time.Duration) bool {
	switch n := next.String(); {
	case d.PublicKey == n:
		return true
	case d.NextPublicKey != n:
		return false
	case d.SwitchKey:
		return true
	default:
		return !echoed.IsZero() && !now.Before(echoed.Add(fallback))
	}
}

// echo records when the server first listed a staged key as announced.
type echo struct {
	next wgtypes.Key // public key
	at   time.Time
}

// rotateKeys runs the rotation steps due now for the interfaces of the
// last desired state received from the server in this run, and reports
// whether a key was staged or switched (the caller then reports). It sets
// a.rotateAt to when it must run again, zero for never. It needs a state
// from the server: a saved one may be stale about switching.
func (a *agent) rotateKeys(now time.Time) (changed bool) {
	a.rotateAt = time.Time{}
	if a.state == nil || !a.fromServer {
		return false
	}
	wanted := map[string]api.DesiredInterface{}
	for _, d := range a.state.Interfaces {
		wanted[d.ID] = d
	}
	seen := map[string]bool{}
	for _, w := range a.rec.parse(a.state).Interfaces {
		if a.rec.owned[w.Name] != w.ID {
			continue // not configured by drago (yet)
		}
		seen[w.ID] = true
		if a.rotateInterface(now, w, wanted[w.ID]) {
			changed = true
		}
	}
	for id := range a.echoes {
		if !seen[id] {
			delete(a.echoes, id)
		}
	}
	for id := range a.blocked {
		if !seen[id] {
			delete(a.blocked, id)
		}
	}
	return changed
}

// rotateInterface runs the step due for one interface; see rotateKeys.
func (a *agent) rotateInterface(now time.Time, w wantInterface, d api.DesiredInterface) bool {
	log := a.log.With("interface", w.Name, "interface_id", w.ID)
	k, err := a.rec.keys.load(w.ID)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false // created by the next reconcile
	case err != nil:
		log.Error("cannot read the interface's keys; not rotating", "err", err)
		return false
	}

	if devices := blockingDevices(d); len(devices) > 0 {
		return a.blockRotation(log, w.ID, k, devices)
	}
	delete(a.blocked, w.ID)

	if !k.staged() {
		delete(a.echoes, w.ID)
		if !startRotation(now, k, a.cfg.KeyRotationInterval, a.state.RotateKeys) {
			if due, ok := rotationDue(k.CurrentPublic, k.ActivatedAt, a.cfg.KeyRotationInterval); ok {
				a.wakeAt(due)
			}
			return false
		}
		reason := "schedule"
		if a.state.RotateKeys {
			reason = "requested by the server"
		}
		if k, err = a.rec.keys.stage(w.ID, now); err != nil {
			log.Error("cannot store the next key; rotating later", "err", err)
			a.wakeAt(now.Add(a.cfg.DriftInterval))
			return false
		}
		log.Info("key rotation: generated the next key; announcing it", "reason", reason,
			"public_key", k.CurrentPublic.String(), "next_public_key", k.NextPublic.String())
		a.crashPoint(stepGenerated)
		return true
	}

	next := k.NextPublic
	e, ok := a.echoes[w.ID]
	switch {
	case d.NextPublicKey != next.String():
		delete(a.echoes, w.ID) // not announced yet: the reports carry it
		ok = false
	case !ok || e.next != next:
		e, ok = echo{next: next, at: now}, true
		a.echoes[w.ID] = e
		log.Info("key rotation: the server published the next key; waiting for the peers",
			"next_public_key", next.String(), "switch_key", d.SwitchKey)
	}
	var echoed time.Time
	if ok {
		echoed = e.at
	}
	if !switchNow(now, next, d, echoed, a.switchFallback) {
		if ok {
			a.wakeAt(echoed.Add(a.switchFallback))
		}
		return false
	}
	if !d.SwitchKey && d.PublicKey != next.String() {
		log.Warn("key rotation: switching without every peer ready (offline peers take the new key when back)",
			"waited", now.Sub(echoed).Round(time.Millisecond))
	}
	a.switchKey(log, w, now)
	return true
}

// blockingDevices returns the plain WireGuard devices among d's peers:
// they hold the interface's public key in static configs, so the key does
// not rotate while they are there (the server refuses it too).
func blockingDevices(d api.DesiredInterface) []string {
	var out []string
	for _, p := range d.Peers {
		if p.Device != "" && !slices.Contains(out, p.Device) {
			out = append(out, p.Device)
		}
	}
	return out
}

// blockRotation keeps an interface that devices peer with on its key: it
// drops a staged key (the next report then announces none, and the server
// drops it from the peers) and says why once per set of devices. It
// reports whether it dropped a key.
func (a *agent) blockRotation(log *slog.Logger, id string, k keyPair, devices []string) bool {
	delete(a.echoes, id)
	if why := strings.Join(devices, ","); a.blocked[id] != why {
		a.blocked[id] = why
		log.Warn("key rotation blocked: plain WireGuard devices peer with this interface and hold its public key in their configs; delete them (and give them new configs after the rotation) to rotate",
			"devices", devices)
	}
	if !k.staged() {
		return false
	}
	if _, err := a.rec.keys.unstage(id); err != nil {
		log.Error("cannot drop the staged key of a blocked rotation", "err", err)
		return false
	}
	log.Info("key rotation: dropped the next key", "next_public_key", k.NextPublic.String())
	return true
}

// switchKey makes the staged key current: stored first, then applied. A
// failure to apply leaves the new key stored, which every reconcile applies.
func (a *agent) switchKey(log *slog.Logger, w wantInterface, now time.Time) {
	k, err := a.rec.keys.promote(w.ID, now)
	if err != nil {
		log.Error("cannot store the key switch; retrying later", "err", err)
		a.wakeAt(now.Add(a.cfg.DriftInterval))
		return
	}
	delete(a.echoes, w.ID)
	if err := a.rec.applyKey(w.Name, k.Current); err != nil {
		log.Error("key rotation: cannot apply the new key; the next reconcile retries", "err", err)
	} else {
		log.Info("key rotation: switched to the next key", "public_key", k.CurrentPublic.String())
	}
	a.crashPoint(stepSwitched)
}

// wakeAt moves a.rotateAt earlier to t.
func (a *agent) wakeAt(t time.Time) {
	if a.rotateAt.IsZero() || t.Before(a.rotateAt) {
		a.rotateAt = t
	}
}

// announces reports whether r carries a next key.
func announces(r *api.StatusReport) bool {
	for _, i := range r.Interfaces {
		if i.NextPublicKey != "" {
			return true
		}
	}
	return false
}

// crashHook reads the test-only crash hook from the environment.
func crashHook() string {
	switch s := os.Getenv(crashEnv); s {
	case stepGenerated, stepAnnounced, stepSwitched:
		return s
	default:
		return ""
	}
}

//go:build linux

package main

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/drago-wg/drago/server/api"
)

// baselineWindow is how long the server's idle CPU rate is measured before
// the changes, to be subtracted from their CPU time.
const baselineWindow = 5 * time.Second

// finishSetup waits for agents to converge and go quiet, then for their
// first heartbeats, and ends the setup phase that m began. Every agent's
// first heartbeat lists all its peers' counters (the server holds none
// yet; later ones list the changed ones only): a one-time cost of joining,
// let pass before anything is measured.
func (r *runner) finishSetup(ctx context.Context, agents []*simAgent, m meter) error {
	if err := r.waitConverged(ctx, agents, r.c.SetupTimeout); err != nil {
		return err
	}
	if err := r.waitQuiet(ctx, time.Second); err != nil {
		return err
	}
	r.log.Info("setting up: waiting for the agents' first heartbeats", "for", r.c.Heartbeat)
	if err := sleep(ctx, r.c.Heartbeat+5*time.Second); err != nil {
		return err
	}
	r.res.Setup = r.phase(m)
	return nil
}

// setupMeshes creates networks meshes of size hosts each and converges
// their agents, in two stages. First every agent registers with a join
// token that joins no network, so that registrations never queue behind
// the key announcements of a growing mesh (a registration whose answer
// takes over the agent's 30s timeout is lost for good: see
// errRegistrationLost). Then the hosts are added to their meshes through
// the API, mesh after mesh; each agent creates its key and announces it,
// which wakes the mesh's keyed hosts.
func (r *runner) setupMeshes(ctx context.Context, networks, size int) error {
	m := r.meter()
	prefixLen, block, err := addressPlan(networks, size)
	if err != nil {
		return err
	}
	netIDs := make([]string, networks)
	for k := range networks {
		n, err := r.api.CreateNetwork(ctx, &api.Network{Name: fmt.Sprintf("m%04d", k), IPv4Range: networkRange(k, prefixLen, block), Topology: api.TopologyMesh})
		if err != nil {
			return fmt.Errorf("creating network %d: %w", k, err)
		}
		netIDs[k] = n.ID
	}
	bare, err := r.api.CreateJoinToken(ctx, &api.JoinToken{Name: "lg-hosts"})
	if err != nil {
		return fmt.Errorf("creating a join token: %w", err)
	}
	for k := range networks {
		for range size {
			r.fleet.add(k, int64(size-1))
		}
	}
	agents := r.fleet.agents
	r.log.Info("setting up: registering", "hosts", len(agents), "concurrency", r.c.SetupConcurrency)
	if err := r.startAgents(ctx, agents, r.c.Heartbeat, func(*simAgent) string { return bare.Secret }); err != nil {
		return err
	}
	err = r.waitFor(ctx, "agents to register", r.c.SetupTimeout, agents, func() (bool, string) {
		n := 0
		for _, a := range agents {
			if a.registeredAt.Load() != 0 {
				n++
			}
		}
		return n == len(agents), fmt.Sprintf("%d/%d registered", n, len(agents))
	})
	if err != nil {
		return err
	}
	r.log.Info("setting up: joining meshes", "meshes", networks, "mesh_size", size)
	if err := r.joinNetworks(ctx, agents, netIDs); err != nil {
		return err
	}
	if err := r.finishSetup(ctx, agents, m); err != nil {
		return err
	}
	r.log.Info("set up", "took", r.res.Setup.Duration.Round(100*time.Millisecond), "server_cpu", r.res.Setup.ServerCPU.Round(100*time.Millisecond),
		"server_peak_rss_mib", r.res.Setup.ServerPeakRSS>>20)
	return nil
}

// joinNetworks adds each agent's host to network netIDs[a.netIdx] through
// the API, -setup-concurrency calls at a time, in the agents' order.
func (r *runner) joinNetworks(ctx context.Context, agents []*simAgent, netIDs []string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, r.c.SetupConcurrency)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	lastLog := time.Now()
	for i, a := range agents {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		if time.Since(lastLog) >= 10*time.Second {
			r.log.Info("joining meshes", "joined", i, "of", len(agents))
			lastLog = time.Now()
		}
		wg.Go(func() {
			defer func() { <-sem }()
			_, err := r.api.CreateInterface(ctx, &api.Interface{HostID: a.name, NetworkID: netIDs[a.netIdx]})
			if err != nil {
				once.Do(func() { first = fmt.Errorf("adding %s to its mesh: %w", a.name, err); cancel() })
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// members returns the agents of network k.
func (r *runner) members(k int) []*simAgent {
	var out []*simAgent
	for _, a := range r.fleet.agents {
		if a.netIdx == k {
			out = append(out, a)
		}
	}
	return out
}

func indexSet(agents []*simAgent, except *simAgent) map[int]bool {
	m := map[int]bool{}
	for _, a := range agents {
		if a != except {
			m[a.idx] = true
		}
	}
	return m
}

// subnetFor is the routed subnet that change i sets, unique per change.
func subnetFor(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(16 + i>>8&15), byte(i), 0}), 24)
}

// subnetChange sets the routed subnets of target's interface to the
// change's own subnet: every peer of target must add it to target's
// allowed IPs (one peer update) and route it.
func (r *runner) subnetChange(ctx context.Context, i int, target *simAgent, peers, scope map[int]bool) (change, error) {
	ifc, err := r.ifaceOf(ctx, target)
	if err != nil {
		return change{}, err
	}
	subnet := subnetFor(i)
	return change{
		do: func(ctx context.Context) error {
			_, err := r.api.UpdateInterface(ctx, ifc.ID, map[string]any{"routed_subnets": []string{subnet.String()}})
			return err
		},
		goals: []*goal{
			{name: "applied", required: true, agents: peers, match: func(_ *simAgent, ev event) bool {
				return ev.op == opAddRoute && ev.prefix == subnet
			}},
			deliveredGoal(peers),
		},
		scope: scope,
	}, nil
}

// deliveredGoal is the first byte of a new desired state reaching each
// of agents: the server's share of the convergence time.
func deliveredGoal(agents map[int]bool) *goal {
	return &goal{name: "delivered", agents: agents, match: func(_ *simAgent, ev event) bool {
		return ev.op == opAnswer && ev.req == reqConfig
	}}
}

// runMesh is scenario 1: one mesh; one host's key rotates (or its routed
// subnets change) and every other host must apply it.
func (r *runner) runMesh(ctx context.Context) error {
	c := r.c
	r.res.Layout = fmt.Sprintf("%d hosts in one mesh (%d peers each)", c.Hosts, c.Hosts-1)
	if err := r.setupMeshes(ctx, 1, c.Hosts); err != nil {
		return err
	}
	idle, err := r.idleRate(ctx, baselineWindow)
	if err != nil {
		return err
	}
	all := r.fleet.agents
	scope := indexSet(all, nil)
	stats := newChangeStats()
	primary := "applied"
	if c.Change == changeRotate {
		primary = "final"
		r.res.Change = "POST /hosts/{id}/rotate-keys on one host: the agent stages a key, announces it, every peer adds it (no allowed IPs), the server flags it ready, the host switches, every peer moves the allowed IPs to it and drops the old key"
		r.res.ConvergeWhat = "rotate-keys call sent -> the peer applied the final step (new key with allowed IPs, old key removed), per peer"
	} else {
		r.res.Change = "PATCH /interfaces/{id} routed_subnets of one host: every peer updates that peer's allowed IPs and adds a route"
		r.res.ConvergeWhat = "PATCH sent -> the peer added the route of the new subnet (after its allowed-IPs update), per peer"
	}
	m := r.beginMeasured()
	for i := range c.Changes {
		target := all[i*c.Hosts/c.Changes]
		peers := indexSet(all, target)
		var ch change
		if c.Change == changeRotate {
			if ch, err = r.rotateChange(ctx, target, peers, scope); err != nil {
				return err
			}
		} else if ch, err = r.subnetChange(ctx, i, target, peers, scope); err != nil {
			return err
		}
		o, err := r.measureChange(ctx, ch)
		if err != nil {
			return err
		}
		stats.add(r, o, ch, primary)
		r.log.Info("change measured", "i", i, "target", target.name, "timeout", o.timeout)
		if o.timeout {
			break
		}
		if err := r.waitQuiet(ctx, time.Second); err != nil {
			return err
		}
	}
	r.endMeasured(m)
	stats.fill(r.res, primary, idle)
	r.res.Extra = append(r.res.Extra, NamedDist{"delivered", summarize(stats.lat["delivered"])})
	if c.Change == changeSubnet {
		r.res.note("delivered: the write -> the first byte of the next desired state at the peer (the server's share; the rest is the agent's, on this tool's shared CPUs)")
	} else {
		r.res.note("delivered: the call -> the first byte of the first desired state the peer got after the host switched")
	}
	if c.Change == changeRotate {
		r.res.Extra = append(r.res.Extra,
			NamedDist{"announce", summarize(stats.lat["announce"])},
			NamedDist{"switch", summarize(stats.lat["switch"])})
		r.res.note("announce: call -> the peer added the next key; switch: call -> the rotating host applied its new private key (it restates its %d peers' endpoints in that call, by design, to start handshakes)", c.Hosts-1)
		r.res.note("peer ops per peer and rotation: 1 to add the next key, then 2 (allowed IPs moved to it, old key removed)")
	}
	d := r.res.Convergence
	r.res.target("scenario 1: p99 < 1s", d.N > 0 && r.res.NotConverged == 0 && d.P99 < time.Second, "p99 %s", ms(d.P99))
	if c.Change == changeSubnet {
		r.res.target("one-peer change = one peer op per agent", r.res.PeerOpsMax == 1 && r.res.PeerOpsMin == 1,
			"%d-%d peer ops per agent on a %d-peer interface", r.res.PeerOpsMin, r.res.PeerOpsMax, c.Hosts-1)
	}
	return r.convergedOrErr()
}

// rotateChange asks target's agent to rotate its key through the API.
func (r *runner) rotateChange(ctx context.Context, target *simAgent, peers, scope map[int]bool) (change, error) {
	ifc, err := r.ifaceOf(ctx, target)
	if err != nil {
		return change{}, err
	}
	old, err := wgtypes.ParseKey(ifc.PublicKey)
	if err != nil {
		return change{}, fmt.Errorf("the interface of %s has no key yet: %w", target.name, err)
	}
	var switched atomic.Int64 // unix ns when the target applied its new key
	return change{
		do: func(ctx context.Context) error {
			_, err := r.api.RotateKeys(ctx, target.name)
			return err
		},
		goals: []*goal{
			{name: "final", required: true, agents: peers, match: func(_ *simAgent, ev event) bool {
				return ev.op == opConfigure && removesPeer(ev.cfg, old)
			}},
			{name: "announce", agents: peers, match: func(_ *simAgent, ev event) bool {
				return ev.op == opConfigure && addsKeylessPeer(ev.cfg, old)
			}},
			{name: "switch", required: true, agents: map[int]bool{target.idx: true}, match: func(_ *simAgent, ev event) bool {
				if ev.op == opConfigure && ev.cfg.PrivateKey != nil {
					switched.Store(ev.at.UnixNano())
					return true
				}
				return false
			}},
			// The first desired state a peer gets after the switch: the
			// server's share of the final step.
			{name: "delivered", agents: peers, match: func(_ *simAgent, ev event) bool {
				at := switched.Load()
				return ev.op == opAnswer && ev.req == reqConfig && at != 0 && ev.at.UnixNano() > at
			}},
		},
		scope: scope,
	}, nil
}

// removesPeer reports whether cfg removes the peer with key.
func removesPeer(cfg *wgtypes.Config, key wgtypes.Key) bool {
	for _, p := range cfg.Peers {
		if p.Remove && p.PublicKey == key {
			return true
		}
	}
	return false
}

// addsKeylessPeer reports whether cfg adds a peer other than old without
// allowed IPs: a rotating peer's announced next key.
func addsKeylessPeer(cfg *wgtypes.Config, old wgtypes.Key) bool {
	for _, p := range cfg.Peers {
		if !p.Remove && !p.UpdateOnly && p.PublicKey != old && len(p.AllowedIPs) == 0 {
			return true
		}
	}
	return false
}

// addsPeer reports whether cfg adds a new peer.
func addsPeer(cfg *wgtypes.Config) bool {
	for _, p := range cfg.Peers {
		if !p.Remove && !p.UpdateOnly {
			return true
		}
	}
	return false
}

// convergedOrErr returns errNotConverged when a change timed out.
func (r *runner) convergedOrErr() error {
	if r.res.NotConverged > 0 {
		return errNotConverged
	}
	return nil
}

// runScoped is scenario 2: meshes of -mesh-size; a change in one network
// must wake that network's agents and no other.
func (r *runner) runScoped(ctx context.Context) error {
	c := r.c
	nets := c.Hosts / c.MeshSize
	r.res.Layout = fmt.Sprintf("%d hosts in %d meshes of %d", c.Hosts, nets, c.MeshSize)
	r.res.Change = "PATCH /interfaces/{id} routed_subnets of one host; each change in another network"
	r.res.ConvergeWhat = "PATCH sent -> the peer added the route of the new subnet, per peer of the changed host"
	if err := r.setupMeshes(ctx, nets, c.MeshSize); err != nil {
		return err
	}
	idle, err := r.idleRate(ctx, baselineWindow)
	if err != nil {
		return err
	}
	stats := newChangeStats()
	m := r.beginMeasured()
	for i := range c.Changes {
		k := (i * 37) % nets
		members := r.members(k)
		target := members[(i*13)%len(members)]
		ch, err := r.subnetChange(ctx, i, target, indexSet(members, target), indexSet(members, nil))
		if err != nil {
			return err
		}
		o, err := r.measureChange(ctx, ch)
		if err != nil {
			return err
		}
		stats.add(r, o, ch, "applied")
		if o.timeout {
			break
		}
		if err := r.waitQuiet(ctx, 200*time.Millisecond); err != nil {
			return err
		}
	}
	r.endMeasured(m)
	stats.fill(r.res, "applied", idle)
	r.res.Extra = append(r.res.Extra, NamedDist{"delivered", summarize(stats.lat["delivered"])})
	r.res.note("delivered: the write -> the first byte of the next desired state at the peer (the server's share; the rest is the agent's, on this tool's shared CPUs)")
	d := r.res.Convergence
	r.res.target("scenario 2: p99 < 200ms", d.N > 0 && r.res.NotConverged == 0 && d.P99 < 200*time.Millisecond, "p99 %s", ms(d.P99))
	r.res.target(fmt.Sprintf("only the changed network's %d agents woken", c.MeshSize),
		r.res.WokenOutside == 0 && r.res.WokenMax <= c.MeshSize, "%d-%d woken, %d outside", r.res.WokenMin, r.res.WokenMax, r.res.WokenOutside)
	r.rssTarget()
	return r.convergedOrErr()
}

// rssTarget checks the server's peak RSS against 1 GiB at 10,000 hosts.
func (r *runner) rssTarget() {
	peak := max(r.res.Setup.ServerPeakRSS, r.res.Measured.ServerPeakRSS)
	if r.c.Hosts >= 10_000 {
		r.res.target("server RSS < 1 GiB at 10,000 hosts", peak < 1<<30, "peak %s", byteSize(float64(peak)))
	}
}

// runHub is scenario 3: a hub with -hosts spokes; one spoke is added at a
// time and the hub must add one peer.
func (r *runner) runHub(ctx context.Context) error {
	c := r.c
	r.res.Layout = fmt.Sprintf("1 hub + %d spokes in one hub network", c.Hosts)
	r.res.Change = "a new spoke agent starts with the join token: it registers, creates its key, reports it; the hub adds one peer"
	r.res.ConvergeWhat = "new spoke agent started -> the hub applied the new peer (registration, first fetch, key report and the hub's fetch included)"
	m := r.meter()
	prefixLen, block, err := addressPlan(1, c.Hosts+c.Changes+1)
	if err != nil {
		return err
	}
	netID, token, err := r.createNetwork(ctx, "hub", networkRange(0, prefixLen, block), api.TopologyHub)
	if err != nil {
		return err
	}
	hub := r.fleet.add(0, int64(c.Hosts))
	r.fleet.start(hub, token)
	var hubIfc *api.Interface
	err = r.waitFor(ctx, "the hub's key", time.Minute, []*simAgent{hub}, func() (bool, string) {
		if hub.registeredAt.Load() == 0 {
			return false, "not registered"
		}
		ifc, err := r.ifaceOf(ctx, hub)
		if err != nil || ifc.PublicKey == "" {
			return false, "no key"
		}
		hubIfc = ifc
		return true, ""
	})
	if err != nil {
		return err
	}
	if _, err := r.api.UpdateNetwork(ctx, netID, map[string]any{"hub_interface_id": hubIfc.ID}); err != nil {
		return fmt.Errorf("making %s the hub: %w", hub.name, err)
	}
	for range c.Hosts {
		r.fleet.add(0, 1)
	}
	r.log.Info("setting up", "spokes", c.Hosts, "concurrency", c.SetupConcurrency)
	if err := r.startAgents(ctx, r.fleet.agents[1:], c.Heartbeat, func(*simAgent) string { return token }); err != nil {
		return err
	}
	if err := r.finishSetup(ctx, r.fleet.agents, m); err != nil {
		return err
	}
	idle, err := r.idleRate(ctx, baselineWindow)
	if err != nil {
		return err
	}

	stats := newChangeStats()
	var hubIn, hubOut, hubConfigIn int64
	var reportToHub []time.Duration
	mm := r.beginMeasured()
	for range c.Changes {
		spoke := r.fleet.add(0, 1)
		hub.expect++
		hubSet, spokeSet := map[int]bool{hub.idx: true}, map[int]bool{spoke.idx: true}
		ch := change{
			do: func(context.Context) error { r.fleet.start(spoke, token); return nil },
			goals: []*goal{
				{name: "hub", required: true, agents: hubSet, match: func(_ *simAgent, ev event) bool {
					return ev.op == opConfigure && addsPeer(ev.cfg)
				}},
				{name: "registered", agents: spokeSet, match: func(_ *simAgent, ev event) bool {
					return ev.op == opAnswer && ev.req == reqRegister && ev.status < 300
				}},
				{name: "spoke", required: true, agents: spokeSet, match: func(_ *simAgent, ev event) bool {
					return ev.op == opConfigure && addsPeer(ev.cfg)
				}},
				{name: "reported", agents: spokeSet, match: func(a *simAgent, ev event) bool {
					conv := a.convergedAt.Load()
					return ev.op == opAnswer && ev.req == reqStatus && ev.status < 300 && conv != 0 && ev.sent.UnixNano() >= conv
				}},
			},
			scope: map[int]bool{hub.idx: true, spoke.idx: true},
		}
		o, err := r.measureChange(ctx, ch)
		if err != nil {
			return err
		}
		stats.add(r, o, ch, "hub")
		hubIn += o.delta[hub.idx].in()
		hubConfigIn += o.delta[hub.idx].BytesIn[reqConfig]
		hubOut += o.delta[hub.idx].out()
		hubAt, ok1 := o.w.reachedAt("hub", hub.idx)
		repAt, ok2 := o.w.reachedAt("reported", spoke.idx)
		if ok1 && ok2 {
			reportToHub = append(reportToHub, hubAt.Sub(repAt))
		}
		if o.timeout {
			break
		}
		if err := r.waitQuiet(ctx, time.Second); err != nil {
			return err
		}
	}
	r.endMeasured(mm)
	stats.fill(r.res, "hub", idle)
	n := float64(max(stats.n, 1))
	r.res.Extra = append(r.res.Extra,
		NamedDist{"registered", summarize(stats.lat["registered"])},
		NamedDist{"spoke ready", summarize(stats.lat["spoke"])},
		NamedDist{"report->hub", summarize(reportToHub)})
	r.res.note("hub received %s per change (%s of it desired state), sent %s per change (status reports); registered/spoke ready: from the spoke's start; report->hub: the spoke's key report answered -> the hub applied",
		byteSize(float64(hubIn)/n), byteSize(float64(hubConfigIn)/n), byteSize(float64(hubOut)/n))
	r.hubStatus(ctx, hub)
	r.res.target("hub gets < 1 MiB per one-spoke change", float64(hubIn)/n < 1<<20, "%s per change", byteSize(float64(hubIn)/n))
	r.res.target("hub applies one peer op per added spoke", r.res.PeerOpsMax == 1, "%d-%d peer ops", r.res.PeerOpsMin, r.res.PeerOpsMax)
	r.res.target("only the hub and the new spoke woken", r.res.WokenOutside == 0, "%d-%d woken, %d outside", r.res.WokenMin, r.res.WokenMax, r.res.WokenOutside)
	r.rssTarget()
	return r.convergedOrErr()
}

// hubStatus reports what the server thinks of the hub. A hub whose status
// reports the server refuses (they list every peer, and the server caps a
// body at 1 MiB) goes down once its heartbeat grace (45s) passes without
// one: then wait for that and say so.
func (r *runner) hubStatus(ctx context.Context, hub *simAgent) {
	bad := hub.badAnswers.Load()
	if bad == 0 {
		return
	}
	status, since := "", time.Now()
	for time.Since(since) < 70*time.Second {
		h, err := r.api.Host(ctx, hub.name)
		if err != nil {
			return
		}
		status = h.Status
		if status == api.HostDown || sleep(ctx, time.Second) != nil {
			break
		}
	}
	r.res.note("the hub got %d error answers (e.g. 413 for a status report over the server's 1 MiB body limit); its status %v later: %s",
		bad, time.Since(since).Round(time.Second), status)
	r.res.target("the hub stays ready", status != api.HostDown, "%s", status)
}

// runBurst is scenario 4: -hosts agents start within -burst-window into
// one mesh; registration latency and the time until all converged.
func (r *runner) runBurst(ctx context.Context) error {
	c := r.c
	r.res.Layout = fmt.Sprintf("%d hosts joining one mesh, started evenly over %v", c.Hosts, c.BurstWindow)
	r.res.ConvergeWhat = "burst start -> the agent's device has all its peers, per agent"
	prefixLen, block, err := addressPlan(1, c.Hosts)
	if err != nil {
		return err
	}
	_, token, err := r.createNetwork(ctx, "burst", networkRange(0, prefixLen, block), api.TopologyMesh)
	if err != nil {
		return err
	}
	for range c.Hosts {
		r.fleet.add(0, int64(c.Hosts-1))
	}
	agents := r.fleet.agents
	m := r.beginMeasured()
	start := time.Now()
	for i, a := range agents {
		at := start.Add(c.BurstWindow * time.Duration(i) / time.Duration(c.Hosts))
		if err := sleep(ctx, time.Until(at)); err != nil {
			return err
		}
		r.fleet.start(a, token)
	}
	// A registration can be lost (errRegistrationLost): wait until every
	// agent registered or lost it, then converge the others without it.
	var allRegistered time.Duration
	err = r.waitFor(ctx, "every agent to register", c.SetupTimeout, nil, func() (bool, string) {
		n, lost := 0, 0
		for _, a := range agents {
			switch {
			case a.registeredAt.Load() != 0:
				n++
			case a.lostRegistration():
				lost++
			}
		}
		return n+lost == len(agents), fmt.Sprintf("%d/%d registered, %d lost", n, len(agents), lost)
	})
	if err != nil {
		return err
	}
	allRegistered = time.Since(start)
	var joined []*simAgent
	for _, a := range agents {
		if a.registeredAt.Load() != 0 {
			joined = append(joined, a)
		}
	}
	lost := len(agents) - len(joined)
	for _, a := range joined {
		a.expect = int64(len(joined) - 1)
	}
	if err := r.waitConverged(ctx, joined, c.SetupTimeout); err != nil {
		return err
	}
	if err := r.waitQuiet(ctx, time.Second); err != nil {
		return err
	}
	r.endMeasured(m)
	var reg, rtt, conv []time.Duration
	var retries, in, out int64
	for _, a := range joined {
		reg = append(reg, time.Duration(a.registeredAt.Load()-a.startedAt.Load()))
		rtt = append(rtt, time.Duration(a.registerRTT.Load()))
		conv = append(conv, time.Duration(a.convergedAt.Load()-start.UnixNano()))
		retries += a.answers[reqRegister].Load() - 1
		cs := a.counters()
		in += cs.in()
		out += cs.out()
	}
	r.res.Convergence = summarize(conv)
	r.res.Extra = append(r.res.Extra,
		NamedDist{"register", summarize(reg)},
		NamedDist{"register rtt", summarize(rtt)})
	r.res.note("register: the agent's start -> its credential (retries included); register rtt: the successful request -> its answer")
	r.res.note("all registered %s after the burst began, all converged %s after; %d registration retries",
		ms(allRegistered), ms(r.res.Convergence.Max), retries)
	r.res.note("server -> agents %s in all (%s per host), agents -> server %s",
		byteSize(float64(in)), byteSize(float64(in)/float64(c.Hosts)), byteSize(float64(out)))
	r.res.IdleCPUPercent = 100 * r.res.Measured.ServerCPU.Seconds() / r.res.Measured.Duration.Seconds()
	r.res.target("every host registers", lost == 0, "%d of %d registrations lost", lost, len(agents))
	if lost > 0 {
		r.res.note("%d agents never joined: %v; the others converged without them", lost, errRegistrationLost)
	}
	return nil
}

// runIdle is scenario 5: -hosts agents in meshes of -mesh-size at rest for
// -idle: the server's CPU and memory.
func (r *runner) runIdle(ctx context.Context) error {
	c := r.c
	nets := c.Hosts / c.MeshSize
	r.res.Layout = fmt.Sprintf("%d hosts in %d meshes of %d, idle for %v", c.Hosts, nets, c.MeshSize, c.Idle)
	if err := r.setupMeshes(ctx, nets, c.MeshSize); err != nil {
		return err
	}
	before := r.fleet.snapshot()
	m := r.beginMeasured()
	if err := sleep(ctx, c.Idle); err != nil {
		return err
	}
	after := r.fleet.snapshot()
	r.endMeasured(m)
	var d counters
	woken := 0
	for i := range after {
		x := after[i].sub(before[i])
		if x.woken() {
			woken++
		}
		d.Writes += x.Writes
		for k := range numReqKinds {
			d.Answers[k] += x.Answers[k]
			d.BytesIn[k] += x.BytesIn[k]
			d.BytesOut[k] += x.BytesOut[k]
		}
	}
	secs := r.res.Measured.Duration.Seconds()
	r.res.IdleCPUPercent = 100 * r.res.Measured.ServerCPU.Seconds() / secs
	r.res.note("per second at rest: %.0f status reports (%s up), %.0f expired blocking queries (%s down), %d agents woken, %s sent by the server in all",
		float64(d.Answers[reqStatus])/secs, byteSize(float64(d.BytesOut[reqStatus])/secs),
		float64(d.Answers[reqConfigTimeout])/secs, byteSize(float64(d.BytesIn[reqConfigTimeout])/secs),
		woken, byteSize(float64(d.in())/secs))
	r.res.target("idle server CPU < 5% of one core", r.res.IdleCPUPercent < 5, "%.1f%%", r.res.IdleCPUPercent)
	r.rssTarget()
	return nil
}

package agent

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"

	"github.com/drago-wg/drago/platform"
	"github.com/drago-wg/drago/server/api"
)

// Poll states (drago_agent_poll_state): waiting, a blocking query is open
// on the server; connected, the last query answered and the agent handles
// it; backoff, the last call failed and the agent waits to retry.
const (
	pollWaiting   = "waiting"
	pollConnected = "connected"
	pollBackoff   = "backoff"
)

// metrics are the agent's Prometheus metrics. Counters move as reconciles
// and calls happen; the peers' handshakes and byte counters are read from
// the devices at scrape time (deviceCollector), never on a timer.
type metrics struct {
	reconciles      *prometheus.CounterVec
	reconcileErrors *prometheus.CounterVec
	reconcileTime   prometheus.Histogram
	pollState       *prometheus.GaugeVec
	lastContact     prometheus.Gauge
	devices         *deviceCollector
}

func newMetrics(b platform.Backend) *metrics {
	m := &metrics{
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drago_agent_reconciles_total",
			Help: "Reconciles of the host's interfaces with the desired state, by reason (update, drift, restore, ...).",
		}, []string{"reason"}),
		reconcileErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drago_agent_reconcile_errors_total",
			Help: "Reconciles that failed, by reason.",
		}, []string{"reason"}),
		reconcileTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "drago_agent_reconcile_duration_seconds",
			Help:    "Time a reconcile took.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		pollState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "drago_agent_poll_state",
			Help: "The desired-state blocking query's state: 1 for the current one of waiting (open on the server), connected (handling an answer), backoff (retrying after a failure).",
		}, []string{"state"}),
		lastContact: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "drago_agent_server_last_contact_timestamp_seconds",
			Help: "Unix time of the last call the server answered (desired state or status report); 0 before the first.",
		}),
		devices: &deviceCollector{b: b},
	}
	for _, r := range []string{"update", "drift", "restore"} {
		m.reconciles.WithLabelValues(r)
		m.reconcileErrors.WithLabelValues(r)
	}
	m.setPoll(pollConnected)
	return m
}

// register adds the metrics to r; a nil r leaves them unregistered.
func (m *metrics) register(r prometheus.Registerer, backend string) error {
	if r == nil {
		return nil
	}
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "drago_agent_backend_info",
		Help:        "The WireGuard backend in use (label backend), always 1.",
		ConstLabels: prometheus.Labels{"backend": backend, "version": api.Version},
	})
	info.Set(1)
	for _, c := range []prometheus.Collector{m.reconciles, m.reconcileErrors, m.reconcileTime, m.pollState, m.lastContact, m.devices, info} {
		if err := r.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (m *metrics) setPoll(state string) {
	if m == nil { // an agent built by a test without newAgent
		return
	}
	for _, s := range []string{pollWaiting, pollConnected, pollBackoff} {
		v := 0.0
		if s == state {
			v = 1
		}
		m.pollState.WithLabelValues(s).Set(v)
	}
}

func (m *metrics) contact(now time.Time) {
	if m == nil { // an agent built by a test without newAgent
		return
	}
	m.lastContact.Set(float64(now.UnixNano()) / 1e9)
}

func (m *metrics) reconciled(reason string, took time.Duration, err error) {
	if m == nil { // an agent built by a test without newAgent
		return
	}
	m.reconciles.WithLabelValues(reason).Inc()
	m.reconcileTime.Observe(took.Seconds())
	if err != nil {
		m.reconcileErrors.WithLabelValues(reason).Inc()
	}
}

// deviceView is what a scrape needs of the desired state, published by the
// agent's loop (which alone owns the state and the key store).
type deviceView struct {
	ifaces []ifaceView
}

type ifaceView struct {
	id, name, network string
	keyActivated      time.Time // zero: no key yet
	peers             map[wgtypes.Key]peerLabel
}

type peerLabel struct{ id, device string }

// deviceCollector reads the devices' peers at scrape time.
type deviceCollector struct {
	b    platform.Backend
	view atomic.Pointer[deviceView]
	// Set by publish: the state the peer maps were built from.
	built *api.DesiredState
	now   func() time.Time
}

// publish rebuilds the view from ds and the interfaces' key times; called
// from the agent's loop only.
func (c *deviceCollector) publish(ds *api.DesiredState, keyTime func(id string) time.Time) {
	if ds == nil {
		return
	}
	old := c.view.Load()
	v := &deviceView{ifaces: make([]ifaceView, 0, len(ds.Interfaces))}
	for k, d := range ds.Interfaces {
		iv := ifaceView{id: d.ID, name: d.Name, network: d.NetworkID, keyActivated: keyTime(d.ID)}
		if old != nil && c.built == ds && k < len(old.ifaces) {
			iv.peers = old.ifaces[k].peers
		} else {
			// A rotating peer appears twice: under its current key with
			// allowed IPs and under its next key without. One series per
			// peer: the next key counts only when the current one is gone.
			iv.peers = make(map[wgtypes.Key]peerLabel, len(d.Peers))
			seen := make(map[string]bool, len(d.Peers))
			for _, withIPs := range []bool{true, false} {
				for _, p := range d.Peers {
					if (len(p.AllowedIPs) > 0) != withIPs || seen[p.InterfaceID] {
						continue
					}
					if key, err := wgtypes.ParseKey(p.PublicKey); err == nil {
						iv.peers[key] = peerLabel{id: p.InterfaceID, device: p.Device}
						seen[p.InterfaceID] = true
					}
				}
			}
		}
		v.ifaces = append(v.ifaces, iv)
	}
	c.built = ds
	c.view.Store(v)
}

var (
	peerLabels        = []string{"network", "interface", "peer", "peer_device"}
	handshakeAgeDesc  = prometheus.NewDesc("drago_agent_peer_last_handshake_seconds", "Seconds since the peer's last handshake (+Inf: never). Labels: network id, interface name, peer interface id, peer_device: the peer's device name when it is a plain WireGuard device.", peerLabels, nil)
	receiveBytesDesc  = prometheus.NewDesc("drago_agent_peer_receive_bytes_total", "Bytes received from the peer, as the device counts them.", peerLabels, nil)
	transmitBytesDesc = prometheus.NewDesc("drago_agent_peer_transmit_bytes_total", "Bytes sent to the peer, as the device counts them.", peerLabels, nil)
	keepaliveDesc     = prometheus.NewDesc("drago_agent_peer_persistent_keepalive_seconds", "The peer's persistent keepalive interval; 0 when off (a peer with keepalive should always have a fresh handshake).", peerLabels, nil)
	keyAgeDesc        = prometheus.NewDesc("drago_agent_key_age_seconds", "Seconds since the interface's private key was generated or rotated in.", []string{"network", "interface"}, nil)
	deviceErrorDesc   = prometheus.NewDesc("drago_agent_device_read_errors", "Interfaces whose device could not be read at this scrape.", nil, nil)
)

func (c *deviceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{handshakeAgeDesc, receiveBytesDesc, transmitBytesDesc, keepaliveDesc, keyAgeDesc, deviceErrorDesc} {
		ch <- d
	}
}

func (c *deviceCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	if c.now != nil {
		now = c.now()
	}
	errs := 0
	if v := c.view.Load(); v != nil {
		for _, iv := range v.ifaces {
			if !iv.keyActivated.IsZero() {
				ch <- prometheus.MustNewConstMetric(keyAgeDesc, prometheus.GaugeValue, now.Sub(iv.keyActivated).Seconds(), iv.network, iv.name)
			}
			dev, err := c.b.Device(iv.name)
			if err != nil {
				errs++
				continue
			}
			for _, p := range dev.WireGuard.Peers {
				pv, ok := iv.peers[p.PublicKey]
				if !ok {
					continue // not drago's, or a next key during a rotation
				}
				l := []string{iv.network, iv.name, pv.id, pv.device}
				age := math.Inf(1)
				if !p.LastHandshakeTime.IsZero() {
					age = max(now.Sub(p.LastHandshakeTime).Seconds(), 0)
				}
				ch <- prometheus.MustNewConstMetric(handshakeAgeDesc, prometheus.GaugeValue, age, l...)
				ch <- prometheus.MustNewConstMetric(receiveBytesDesc, prometheus.CounterValue, float64(p.ReceiveBytes), l...)
				ch <- prometheus.MustNewConstMetric(transmitBytesDesc, prometheus.CounterValue, float64(p.TransmitBytes), l...)
				ch <- prometheus.MustNewConstMetric(keepaliveDesc, prometheus.GaugeValue, p.PersistentKeepaliveInterval.Seconds(), l...)
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(deviceErrorDesc, prometheus.GaugeValue, float64(errs))
}

// publishMetrics shows the current desired state and key times to scrapes;
// called from the loop, which owns both.
func (a *agent) publishMetrics() {
	if a.metrics == nil {
		return
	}
	a.metrics.devices.publish(a.state, func(id string) time.Time {
		k, err := a.rec.keys.load(id)
		if err != nil {
			return time.Time{}
		}
		return k.ActivatedAt
	})
}

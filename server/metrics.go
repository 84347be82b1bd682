package server

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/drago-wg/drago/server/state"
	"github.com/drago-wg/drago/server/store"
)

// metrics are the server's Prometheus metrics. Requests, commits and
// wake-ups are counted as they happen; hosts, keys, the modify index and the
// database size are read from the state at scrape time (stateCollector), so
// a heartbeat costs nothing.
type metrics struct {
	reg *prometheus.Registry

	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	blocking      *prometheus.GaugeVec
	woken         prometheus.Histogram
	txDuration    prometheus.Histogram
	registrations *prometheus.CounterVec
	authFailures  prometheus.Counter
	auditFailures prometheus.Counter
}

// Blocking query kinds (the drago_blocking_queries label).
const (
	blockingAgentConfig = "agent_config"
	blockingEvents      = "events"
)

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drago_http_requests_total",
			Help: "API requests by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "drago_http_request_duration_seconds",
			Help:    "API request latency by route template and method (blocking queries included: see the route).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"route", "method"}),
		blocking: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "drago_blocking_queries",
			Help: "Blocking queries waiting now, by kind (agent_config, events).",
		}, []string{"kind"}),
		woken: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "drago_change_agents_woken",
			Help:    "Agents whose desired state a committed change touched (woken), per change.",
			Buckets: []float64{0, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000},
		}),
		txDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "drago_store_transaction_duration_seconds",
			Help:    "Latency of the store's write transactions (bbolt Update, with its fsync).",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1},
		}),
		registrations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "drago_registrations_total",
			Help: "Agent registrations by result: ok, or the failure's class (unauthorized, invalid, forbidden, conflict, rate_limited, error).",
		}, []string{"result"}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "drago_auth_failures_total",
			Help: "Requests refused for a missing or invalid token or credential.",
		}),
		auditFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "drago_audit_failures_total",
			Help: "Audit entries the server failed to store (the writes they record did happen).",
		}),
	}
	for _, k := range []string{blockingAgentConfig, blockingEvents} {
		m.blocking.WithLabelValues(k)
	}
	m.registrations.WithLabelValues("ok")
	m.reg.MustRegister(m.requests, m.duration, m.blocking, m.woken, m.txDuration, m.registrations, m.authFailures, m.auditFailures,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// onCommit is the state's OnCommit hook.
func (m *metrics) onCommit(tx time.Duration, woken int) {
	m.txDuration.Observe(tx.Seconds())
	m.woken.Observe(float64(woken))
}

// instrument counts and times a route's requests under its path template.
// It does what promhttp's InstrumentHandlerCounter and
// InstrumentHandlerDuration do, in one small frame rather than two large
// ones: every blocking query waits under it, and a connection's stack
// shrinks at GC only while under a quarter of it is in use (see handler).
// A route takes one method, its label.
func (m *metrics) instrument(rt route, h http.Handler) http.Handler {
	l := prometheus.Labels{"route": "/api/v1" + rt.path, "method": strings.ToLower(rt.method)}
	requests, duration := m.requests.MustCurryWith(l), m.duration.MustCurryWith(l)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		h.ServeHTTP(sw, r)
		duration.WithLabelValues().Observe(time.Since(start).Seconds())
		requests.WithLabelValues(strconv.Itoa(sw.status)).Inc()
	})
}

// registration counts a registration's result.
func (m *metrics) registration(err error) {
	m.registrations.WithLabelValues(resultClass(err)).Inc()
}

// resultClass maps an error to a short, bounded label value.
func resultClass(err error) string {
	var ae *apiError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &ae):
		switch ae.status {
		case http.StatusUnauthorized:
			return "unauthorized"
		case http.StatusForbidden:
			return "forbidden"
		case http.StatusTooManyRequests:
			return "rate_limited"
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusRequestTimeout:
			return "invalid"
		}
		return strconv.Itoa(ae.status)
	case errors.Is(err, state.ErrInvalid):
		return "invalid"
	case errors.Is(err, state.ErrForbidden), errors.Is(err, state.ErrNotFound):
		return "forbidden"
	case errors.Is(err, state.ErrConflict):
		return "conflict"
	}
	return "error"
}

// Handler returns the scrape handler (Prometheus text or OpenMetrics,
// negotiated), for the API's /metrics route and the -metrics-addr listener.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// stateCollector reads the fleet's numbers from the state at scrape time.
type stateCollector struct {
	state *state.State
	store store.Store
}

var (
	hostsDesc     = prometheus.NewDesc("drago_hosts", "Hosts by status (ready, down, pending).", []string{"status"}, nil)
	keysStaleDesc = prometheus.NewDesc("drago_keys_stale", "Interfaces whose key is overdue for rotation (older than twice the rotation interval).", nil, nil)
	indexDesc     = prometheus.NewDesc("drago_modify_index", "The state's last modify index (it grows by one per change).", nil, nil)
	dbSizeDesc    = prometheus.NewDesc("drago_store_size_bytes", "Size of the state database file.", nil, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- hostsDesc
	ch <- keysStaleDesc
	ch <- indexDesc
	ch <- dbSizeDesc
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.state.Counts()
	ch <- prometheus.MustNewConstMetric(hostsDesc, prometheus.GaugeValue, float64(n.HostsReady), "ready")
	ch <- prometheus.MustNewConstMetric(hostsDesc, prometheus.GaugeValue, float64(n.HostsDown), "down")
	ch <- prometheus.MustNewConstMetric(hostsDesc, prometheus.GaugeValue, float64(n.HostsPending), "pending")
	ch <- prometheus.MustNewConstMetric(keysStaleDesc, prometheus.GaugeValue, float64(n.KeysStale))
	ch <- prometheus.MustNewConstMetric(indexDesc, prometheus.GaugeValue, float64(n.Index))
	if sz, ok := c.store.(store.Sizer); ok {
		if size, err := sz.Size(); err == nil {
			ch <- prometheus.MustNewConstMetric(dbSizeDesc, prometheus.GaugeValue, float64(size))
		}
	}
}

package main

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// checkMetricsAddr accepts "" (off) or host:port; an address off loopback
// needs allowRemote: the agent's metrics name its peers and their traffic
// and are served without authentication.
func checkMetricsAddr(addr string, allowRemote bool) error {
	return checkSideAddr("-metrics-addr", addr, allowRemote,
		"; the metrics are served without authentication: add -metrics-allow-remote to serve them on a private network")
}

// newAgentRegistry returns a registry with the Go runtime and process
// collectors, for the agent's own collectors to join.
func newAgentRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// serveMetrics serves r at http://addr/metrics until stop is called.
func serveMetrics(addr string, r *prometheus.Registry, log *slog.Logger) (stop func(), err error) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(r, promhttp.HandlerOpts{}))
	return serveSide("-metrics-addr", addr, mux, "/metrics", "serving metrics without authentication", log)
}

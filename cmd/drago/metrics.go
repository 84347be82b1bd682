package main

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// checkMetricsAddr accepts "" (off) or host:port; an address off loopback
// needs allowRemote: the agent's metrics name its peers and their traffic
// and are served without authentication.
func checkMetricsAddr(addr string, allowRemote bool) error {
	if addr == "" {
		return nil
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return usagef("-metrics-addr: %q is not host:port", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return usagef("-metrics-addr: %q has no valid port", addr)
	}
	if allowRemote || strings.EqualFold(host, "localhost") {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err != nil || !ip.Unmap().IsLoopback() {
		return usagef("-metrics-addr: %q is not a loopback address; the metrics are served without authentication: add -metrics-allow-remote to serve them on a private network", addr)
	}
	return nil
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
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("-metrics-addr: listening on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(r, promhttp.HandlerOpts{}))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	log.Info("serving metrics without authentication", "url", "http://"+ln.Addr().String()+"/metrics")
	return func() { hs.Close() }, nil
}

package console

import (
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the node's Prometheus metrics. Gauges that come from the
// database or Redis (sessions by state, queue lengths) are collected at
// scrape time by collectors the composition root registers.
type Metrics struct {
	Registry    *prometheus.Registry
	httpReqs    *prometheus.CounterVec
	httpLatency *prometheus.HistogramVec
	wsConns     *prometheus.GaugeVec
	// Routing observes enqueue→assign latency (seconds).
	Routing prometheus.Histogram
	// Deliveries counts realtime events handed to connections, by path
	// (local: on this node; remote: arrived from another node's publish).
	Deliveries *prometheus.CounterVec
}

// NewMetrics registers the metrics on a fresh registry.
func NewMetrics() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		httpReqs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_http_requests_total", Help: "HTTP requests by route and status.",
		}, []string{"method", "route", "status"}),
		httpLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "switchboard_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"method", "route"}),
		wsConns: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchboard_websocket_connections", Help: "Open WebSocket connections on this node by kind.",
		}, []string{"kind"}),
		Routing: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "switchboard_routing_latency_seconds", Help: "Time from a match trigger to a committed assignment.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		Deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_realtime_deliveries_total", Help: "Realtime events delivered to this node's connections, by path.",
		}, []string{"path"}),
	}
	r.MustRegister(m.httpReqs, m.httpLatency, m.wsConns, m.Routing, m.Deliveries,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves /metrics.
func (m *Metrics) Handler() fiber.Handler {
	return adaptor.HTTPHandler(promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
}

// observe records every request's route, status and latency.
func (s *Server) observe(c *fiber.Ctx) error {
	start := time.Now()
	err := c.Next()
	status := c.Response().StatusCode()
	if err != nil {
		if herr := s.errorHandler(c, err); herr != nil {
			return herr
		}
		status = c.Response().StatusCode()
	}
	// Fiber's strings point into reused request buffers: copy them before
	// they become label values that outlive the request.
	route := strings.Clone(c.Route().Path)
	if route == "/" && c.Path() != "/" {
		route = "other"
	}
	method := strings.Clone(c.Method())
	s.d.Metrics.httpReqs.WithLabelValues(method, route, strconv.Itoa(status)).Inc()
	s.d.Metrics.httpLatency.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
	return nil
}

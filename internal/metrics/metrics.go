// Package metrics holds the service's Prometheus metrics on a registry of
// its own (never the global one) and serves them in the exposition format.
package metrics

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/orgservice/orgservice/internal/org"
)

// Metrics records what the service does. Its methods are safe for
// concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	requests        *prometheus.CounterVec
	requestDuration *prometheus.HistogramVec
	rateLimited     *prometheus.CounterVec

	orgsCreated prometheus.Counter
	orgsDeleted prometheus.Counter

	migrations        *prometheus.CounterVec
	migrationDuration *prometheus.HistogramVec
	migrationDocs     *prometheus.CounterVec
}

var _ org.Observer = (*Metrics)(nil)

// New returns Metrics on a fresh registry that also carries the Go runtime
// and process collectors, and, when dir is not nil, the directory's size,
// age and reloads, read at each scrape.
func New(dir DirectoryStats) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "HTTP requests answered, by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern, method and status.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method", "status"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orgservice_rate_limited_total",
			Help: "Requests refused with 429 by a rate limit, by limit (login_ip, login_email, write).",
		}, []string{"limit"}),
		orgsCreated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orgservice_organizations_created_total",
			Help: "Organizations created.",
		}),
		orgsDeleted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "orgservice_organizations_deleted_total",
			Help: "Organizations deleted.",
		}),
		migrations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orgservice_migrations_total",
			Help: "Tenant collection migrations (renames) completed, by strategy.",
		}, []string{"strategy"}),
		migrationDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "orgservice_migration_duration_seconds",
			Help:    "Time a tenant collection migration took, by strategy.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"strategy"}),
		migrationDocs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "orgservice_migration_documents_total",
			Help: "Documents copied by tenant collection migrations, by strategy (a renameCollection copies none).",
		}, []string{"strategy"}),
	}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.requestDuration, m.rateLimited,
		m.orgsCreated, m.orgsDeleted,
		m.migrations, m.migrationDuration, m.migrationDocs,
	)
	if dir != nil {
		m.watchDirectory(dir)
	}
	return m
}

// Handler serves the registry in the Prometheus exposition format; errors
// while gathering are logged to log and the rest is still served.
func (m *Metrics) Handler(log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelError),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// ObserveRequest records one answered HTTP request. route must be a route
// pattern, never a raw path, to keep the label set bounded.
func (m *Metrics) ObserveRequest(route, method string, status int, took time.Duration) {
	code := strconv.Itoa(status)
	m.requests.WithLabelValues(route, method, code).Inc()
	m.requestDuration.WithLabelValues(route, method, code).Observe(took.Seconds())
}

// RateLimited records one request refused by the named limit.
func (m *Metrics) RateLimited(limit string) { m.rateLimited.WithLabelValues(limit).Inc() }

// OrgCreated records a created organization.
func (m *Metrics) OrgCreated() { m.orgsCreated.Inc() }

// OrgDeleted records a deleted organization.
func (m *Metrics) OrgDeleted() { m.orgsDeleted.Inc() }

// Migrated records a finished tenant collection migration.
func (m *Metrics) Migrated(strategy org.Strategy, docs int64, took time.Duration) {
	s := string(strategy)
	m.migrations.WithLabelValues(s).Inc()
	m.migrationDuration.WithLabelValues(s).Observe(took.Seconds())
	m.migrationDocs.WithLabelValues(s).Add(float64(docs))
}

// DirectoryStats is what the metrics read of the in-memory organization
// directory.
type DirectoryStats interface {
	Len() int
	Age() time.Duration
	Reloads() int64
}

// watchDirectory exports d's size, age and full reloads, read at each scrape.
func (m *Metrics) watchDirectory(d DirectoryStats) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "orgservice_directory_organizations",
			Help: "Organizations held by the in-memory directory.",
		}, func() float64 { return float64(d.Len()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "orgservice_directory_age_seconds",
			Help: "Time since the directory's last complete refresh started; past DIRECTORY_STALENESS lookups answer 503.",
		}, func() float64 { return d.Age().Seconds() }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "orgservice_directory_reloads_total",
			Help: "Full reloads of the directory (start-up, and after it could have missed change-log entries).",
		}, func() float64 { return float64(d.Reloads()) }),
	)
}

package metrics_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orgservice/orgservice/internal/metrics"
	"github.com/orgservice/orgservice/internal/org"
)

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler(slog.New(slog.DiscardHandler)).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	b, err := io.ReadAll(rec.Body)
	require.NoError(t, err)
	return string(b)
}

func TestMetricsAreRecordedOnOwnRegistry(t *testing.T) {
	a, b := metrics.New(nil), metrics.New(nil) // a global registry would panic on the second
	a.OrgCreated()
	a.OrgCreated()
	a.OrgDeleted()
	a.Migrated(org.StrategyCopy, 1500, 2*time.Second)
	a.RateLimited("write")
	a.ObserveRequest("/api/v1/org/get", http.MethodGet, 404, 3*time.Millisecond)
	a.ObserveRequest("/api/v1/org/members/{id}", http.MethodPatch, 200, time.Millisecond)
	a.ObserveRequest("/api/v1/org/audit", http.MethodGet, 200, time.Millisecond)
	a.ObserveRequest("/api/v1/org/audit", http.MethodGet, 200, time.Millisecond)

	text := scrape(t, a)
	for _, want := range []string{
		"orgservice_organizations_created_total 2",
		"orgservice_organizations_deleted_total 1",
		`orgservice_migrations_total{strategy="copy"} 1`,
		`orgservice_migration_documents_total{strategy="copy"} 1500`,
		`orgservice_migration_duration_seconds_sum{strategy="copy"} 2`,
		`orgservice_rate_limited_total{limit="write"} 1`,
		`http_requests_total{method="GET",route="/api/v1/org/get",status="404"} 1`,
		`http_request_duration_seconds_count{method="GET",route="/api/v1/org/get",status="404"} 1`,
		`http_requests_total{method="PATCH",route="/api/v1/org/members/{id}",status="200"} 1`,
		`http_requests_total{method="GET",route="/api/v1/org/audit",status="200"} 2`,
		"go_goroutines ",
		"process_start_time_seconds ",
	} {
		assert.Contains(t, text, want)
	}
	assert.Contains(t, scrape(t, b), "orgservice_organizations_created_total 0")
}

// dirState stands in for the directory: three numbers it reports.
type dirState struct {
	n       int
	age     time.Duration
	reloads int64
}

func (d dirState) Len() int           { return d.n }
func (d dirState) Age() time.Duration { return d.age }
func (d dirState) Reloads() int64     { return d.reloads }

func TestDirectoryIsExported(t *testing.T) {
	m := metrics.New(dirState{n: 42, age: 250 * time.Millisecond, reloads: 3})
	text := scrape(t, m)
	for _, want := range []string{
		"orgservice_directory_organizations 42",
		"orgservice_directory_age_seconds 0.25",
		"orgservice_directory_reloads_total 3",
	} {
		assert.Contains(t, text, want)
	}
}

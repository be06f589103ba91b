package httpapi

import (
	"net/http"
	"testing"
	"time"

	"github.com/orgservice/orgservice/internal/org"
)

// discardWriter is a ResponseWriter that keeps nothing but its headers,
// which it reuses, so a benchmark measures the encoding alone.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *discardWriter) WriteHeader(int)             {}

func benchOrganization() *org.Organization {
	at := time.Date(2026, 3, 1, 12, 0, 0, 123_000_000, time.UTC)
	return &org.Organization{
		ID: "65f0c0ffee0123456789abcd", Name: "Acme Corp", Slug: "acme_corp", CollectionName: "org_acme_corp",
		AdminEmail: "admin@acme.com", PasswordHash: "$2a$12$abcdefghijklmnopqrstuv", State: org.StateActive,
		CreatedAt: at, UpdatedAt: at,
	}
}

// BenchmarkEncodeOrganization measures writing an Organization response,
// which get, create and update end with.
func BenchmarkEncodeOrganization(b *testing.B) {
	o := benchOrganization()
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		respond(w, http.StatusOK, toResponse(o))
	}
}

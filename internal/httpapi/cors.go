package httpapi

import (
	"net/http"
	"strings"

	"github.com/go-chi/cors"
)

// corsHeaders answers CORS preflights and marks cross-origin answers for
// the allowed origins. An empty list or "*" allows any origin; credentials
// (cookies) are never allowed, since the API authenticates by bearer token,
// so "*" is never combined with them. An origin outside an explicit list
// gets no Access-Control-Allow-Origin and the browser blocks the call.
func corsHeaders(origins []string) func(http.Handler) http.Handler {
	var allowed []string
	for _, o := range origins {
		if o = strings.TrimSpace(o); o != "" {
			allowed = append(allowed, o)
		}
	}
	if len(allowed) == 0 {
		allowed = []string{"*"}
	}
	return cors.Handler(cors.Options{
		AllowedOrigins: allowed,
		AllowedMethods: []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete},
		AllowedHeaders: []string{"Authorization", "Content-Type", "X-Request-ID", "If-Match"},
		// ETag for If-Match, Link for the next page of documents and of
		// the audit log.
		ExposedHeaders: []string{"X-Request-ID", "Location", "Retry-After", "ETag", "Link",
			"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"},
		AllowCredentials: false,
		MaxAge:           600,
	})
}

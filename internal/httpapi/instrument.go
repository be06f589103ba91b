package httpapi

import (
	"log/slog"
	"net/http"
	"time"
)

// Recorder is what the API reports its metrics to, and serves at /metrics.
type Recorder interface {
	// ObserveRequest records an answered request under its route pattern.
	ObserveRequest(route, method string, status int, took time.Duration)
	// RateLimited records a request refused by the named limit.
	RateLimited(limit string)
	// Handler serves the metrics; gathering errors go to log.
	Handler(log *slog.Logger) http.Handler
}

// methodLabel bounds the method label: clients can send any token as a method.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

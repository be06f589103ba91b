package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestHealthcheck(t *testing.T) {
	var ready atomic.Bool
	ready.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" || !ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":"):]

	t.Setenv("HTTP_ADDR", port) // ":<port>": probes 127.0.0.1
	assert.Equal(t, 0, healthcheck(context.Background()))
	t.Setenv("HTTP_ADDR", "0.0.0.0"+port)
	assert.Equal(t, 0, healthcheck(context.Background()))
	ready.Store(false)
	assert.Equal(t, 1, healthcheck(context.Background()), "not ready")
	t.Setenv("HTTP_ADDR", "not-an-address")
	assert.Equal(t, 1, healthcheck(context.Background()))
}

package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orgservice/orgservice/internal/embeddb"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// TestDatabaseOutage runs the whole service against a database that goes
// away and comes back: requests fail fast with a 503 problem that carries no
// driver text, /readyz turns 503, and the service recovers without a restart.
func TestDatabaseOutage(t *testing.T) {
	if os.Getenv("TEST_MONGO_URL") != "" {
		t.Skip("stops and restarts its own embedded database")
	}
	dir := t.TempDir()
	dbAddr, httpAddr := freeAddr(t), freeAddr(t)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := embeddb.Start(filepath.Join(dir, "db"), dbAddr, quiet)
	require.NoError(t, err)
	defer func() { db.Close() }()

	const dbTimeout = time.Second
	const staleness = 500 * time.Millisecond
	for k, v := range map[string]string{
		"MONGO_URL": db.URI(), "MONGO_DB_NAME": "outage", "SECRET_KEY": strings.Repeat("k", 40),
		"HTTP_ADDR": httpAddr, "DB_TIMEOUT": dbTimeout.String(), "BCRYPT_COST": "4", "LOG_LEVEL": "error",
		"LOGIN_RATE_PER_MIN": "0", "WRITE_RATE_PER_MIN": "0", "DATA_DIR": dir,
		"DIRECTORY_STALENESS": staleness.String(),
	} {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- run(ctx) }()

	base := "http://" + httpAddr
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(path string) (*http.Response, string) {
		resp, err := client.Get(base + path)
		if err != nil {
			return nil, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	require.Eventually(t, func() bool { r, _ := get("/readyz"); return r != nil && r.StatusCode == 200 }, 20*time.Second, 50*time.Millisecond)
	resp, err := client.Post(base+"/api/v1/org/create", "application/json",
		strings.NewReader(`{"organization_name":"Acme","email":"a@acme.com","password":"password-1"}`))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusCreated, resp.StatusCode)

	db.Close()
	// Lookups are answered from the directory until it is older than its
	// bound, then refused: never stale authority past DIRECTORY_STALENESS.
	start := time.Now()
	var r *http.Response
	var body string
	for time.Since(start) < staleness+2*time.Second {
		if r, body = get("/api/v1/org/get?organization_name=acme"); r != nil && r.StatusCode != http.StatusOK {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	require.NotNil(t, r)
	assert.Equal(t, http.StatusServiceUnavailable, r.StatusCode, body)
	assert.Equal(t, "application/problem+json", r.Header.Get("Content-Type"))
	assert.Less(t, took, staleness+time.Second, "refused once the directory is past its bound")
	start = time.Now()
	resp, err = client.Post(base+"/api/v1/org/create", "application/json",
		strings.NewReader(`{"organization_name":"Beta","email":"b@beta.com","password":"password-1"}`))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	assert.Less(t, time.Since(start), dbTimeout+2*time.Second, "a write fails fast, bounded by DB_TIMEOUT")
	for _, leak := range []string{"server selection", "connection refused", "mongo", "dial tcp"} {
		assert.NotContains(t, strings.ToLower(body), leak, "no driver text reaches the client")
	}
	r, _ = get("/readyz")
	require.NotNil(t, r)
	assert.Equal(t, http.StatusServiceUnavailable, r.StatusCode)

	db, err = embeddb.Start(filepath.Join(dir, "db"), dbAddr, quiet)
	require.NoError(t, err)
	assert.Eventually(t, func() bool {
		r, _ := get("/api/v1/org/get?organization_name=acme")
		return r != nil && r.StatusCode == http.StatusOK
	}, 30*time.Second, 100*time.Millisecond, "recovers without a restart")
	r, _ = get("/readyz")
	require.NotNil(t, r)
	assert.Equal(t, http.StatusOK, r.StatusCode)

	cancel()
	select {
	case err := <-stopped:
		require.NoError(t, err)
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
}

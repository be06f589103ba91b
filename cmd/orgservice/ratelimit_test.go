package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgservice/orgservice/internal/embeddb"
	"github.com/orgservice/orgservice/internal/mongostore"
)

// TestRateLimitsSharedByDefaultWithMongoURL runs two instances of the
// service on one MONGO_URL, with nothing said about RATE_LIMIT_STORE: a
// login limit of 1 spent on one instance is spent on the other.
func TestRateLimitsSharedByDefaultWithMongoURL(t *testing.T) {
	if os.Getenv("TEST_MONGO_URL") != "" {
		t.Skip("starts its own embedded database")
	}
	dir := t.TempDir()
	db, err := embeddb.Start(filepath.Join(dir, "db"), freeAddr(t), slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	defer db.Close()
	for k, v := range map[string]string{
		"MONGO_URL": db.URI(), "MONGO_DB_NAME": "shared", "SECRET_KEY": strings.Repeat("k", 40),
		"BCRYPT_COST": "4", "LOG_LEVEL": "error", "LOGIN_RATE_PER_MIN": "1", "DATA_DIR": dir,
	} {
		t.Setenv(k, v)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	client := &http.Client{Timeout: 10 * time.Second}
	var bases []string
	var stopped []chan error
	for range 2 {
		addr := freeAddr(t)
		t.Setenv("HTTP_ADDR", addr) // read by run's config.Load before the instance is ready
		done := make(chan error, 1)
		go func() { done <- run(ctx) }()
		stopped = append(stopped, done)
		base := "http://" + addr
		require.Eventually(t, func() bool {
			r, err := client.Get(base + "/readyz")
			if err != nil {
				return false
			}
			r.Body.Close()
			return r.StatusCode == http.StatusOK
		}, 20*time.Second, 50*time.Millisecond)
		bases = append(bases, base)
	}
	login := func(base string) *http.Response {
		r, err := client.Post(base+"/api/v1/admin/login", "application/json",
			strings.NewReader(`{"email":"nobody@acme.com","password":"password-1"}`))
		require.NoError(t, err)
		r.Body.Close()
		return r
	}
	// The windows are wall-clock minutes: keep both logins inside one.
	if sec := time.Now().Second(); sec >= 55 {
		time.Sleep(time.Duration(61-sec) * time.Second)
	}
	first := login(bases[0])
	require.Equal(t, http.StatusUnauthorized, first.StatusCode)
	second := login(bases[1])
	assert.Equal(t, http.StatusTooManyRequests, second.StatusCode, "the other instance has spent the limit")
	assert.Equal(t, first.Header.Get("X-RateLimit-Reset"), second.Header.Get("X-RateLimit-Reset"))
	c, err := mongostore.Connect(db.URI(), 5*time.Second)
	require.NoError(t, err)
	defer func() { _ = c.Disconnect(context.Background()) }()
	n, err := c.Database("shared").Collection(mongostore.RateLimitsCollection).CountDocuments(context.Background(), bson.D{})
	require.NoError(t, err)
	assert.EqualValues(t, 3, n, "one slot per IP, one per email and IP, one per email, in the shared database")

	cancel()
	for _, done := range stopped {
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(15 * time.Second):
			t.Fatal("run did not return after its context ended")
		}
	}
}

// Package apptest starts the whole service for tests, through the same
// constructor as main: app.New over a test database, started, and stopped
// when the test ends (ardanlabs/service's apitest is the model).
package apptest

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgservice/orgservice/internal/app"
	"github.com/orgservice/orgservice/internal/auth"
	"github.com/orgservice/orgservice/internal/directory"
	"github.com/orgservice/orgservice/internal/document"
)

// Secret signs the tokens of a service started by Start.
const Secret = "test-secret-key-0123456789abcdef0123456789"

// Config is the configuration tests start from: production's defaults but
// for a few that keep tests fast and steady on a small, loaded machine
// under the race detector.
func Config() app.Config {
	return app.Config{
		// Refreshes often, but tolerates a minute without one: staleness is
		// tested where it is the subject (internal/directory).
		Directory: directory.Config{Staleness: time.Minute, Every: 50 * time.Millisecond},
		// TTLs shorter than the defaults, so that a test that stops a writer
		// does not wait long for it, yet long enough that a write's deadline
		// (a fraction of them) holds.
		Documents: document.Config{WriterTTL: 5 * time.Second, ClaimTTL: 9 * time.Second},
		// bcrypt at its lowest cost.
		Auth: auth.Config{Secret: []byte(Secret), Issuer: "orgservice", TTL: time.Hour, BcryptCost: 4},
	}
}

// Start builds the service over db with cfg, starts it and waits for the
// reconciler's start-up pass; the service is closed when the test ends. log
// nil discards the service's logs.
func Start(tb testing.TB, db *mongo.Database, cfg app.Config, log *slog.Logger) *app.App {
	tb.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a, err := app.New(cfg, app.Databases{Main: db}, log)
	if err != nil {
		tb.Fatalf("apptest: build the service: %v", err)
	}
	if err := a.Start(context.Background()); err != nil {
		tb.Fatalf("apptest: start the service: %v", err)
	}
	tb.Cleanup(func() { _ = a.Close(context.Background()) })
	// The reconciler's start-up pass runs before the test acts, as it would
	// have run long before a client reached a production process: a test
	// that leaves something behind on purpose (a leftover collection, a
	// crashed operation) meets the reconciler's periodic passes only.
	select {
	case <-a.Orgs().Reconciled():
	case <-time.After(time.Minute):
		tb.Fatalf("apptest: the reconciler's start-up pass did not end within a minute")
	}
	return a
}

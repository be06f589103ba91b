// Package dbtest gives tests a real MongoDB wire-protocol server: the
// MongoDB at TEST_MONGO_URL when that is set, else one embedded FerretDB per
// test binary. Every test gets a database of its own, dropped when it ends.
package dbtest

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgservice/orgservice/internal/embeddb"
	"github.com/orgservice/orgservice/internal/mongostore"
)

var (
	once    sync.Once
	uri     string
	client  *mongo.Client
	onceErr error
)

// URI returns the address of the shared test server, starting it if needed.
func URI(tb testing.TB) string {
	tb.Helper()
	start(tb)
	return uri
}

func start(tb testing.TB) {
	tb.Helper()
	once.Do(func() {
		uri = os.Getenv("TEST_MONGO_URL")
		if uri == "" {
			dir, err := os.MkdirTemp("", "orgservice-dbtest-")
			if err != nil {
				onceErr = err
				return
			}
			db, err := embeddb.Start(dir, "127.0.0.1:0", slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				onceErr = err
				return
			}
			uri = db.URI()
			// The server lives as long as the test binary; its files go with the temp dir.
		}
		client, onceErr = mongostore.Connect(uri, 30*time.Second)
	})
	if onceErr != nil {
		tb.Fatalf("dbtest: %v", onceErr)
	}
}

var unsafe = regexp.MustCompile(`[^A-Za-z0-9_]+`)

// New returns a fresh, empty database named after the test, dropped at cleanup.
func New(tb testing.TB) *mongo.Database {
	tb.Helper()
	start(tb)
	sum := sha1.Sum([]byte(tb.Name()))
	name := unsafe.ReplaceAllString(tb.Name(), "_")
	if len(name) > 40 {
		name = name[:40]
	}
	name = fmt.Sprintf("t_%s_%s", name, hex.EncodeToString(sum[:4]))
	db := client.Database(name)
	ctx := context.Background()
	if err := db.Drop(ctx); err != nil {
		tb.Fatalf("dbtest: drop %s: %v", name, err)
	}
	tb.Cleanup(func() { _ = db.Drop(context.Background()) })
	return db
}

// Client returns the shared client.
func Client(tb testing.TB) *mongo.Client {
	tb.Helper()
	start(tb)
	return client
}

// Package embeddb runs FerretDB in-process on SQLite files, so that the
// service and its tests have a real MongoDB wire-protocol server without
// installing one. Clients reach it over loopback TCP with the same driver
// code as production.
package embeddb

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// PoolSize caps the connections a client of URI opens. FerretDB's SQLite
// backend makes every SQLite connection re-read the whole schema after a
// createCollection or a drop, so each create or delete of an organization
// costs the database (number of connections in use) × (number of tenant
// collections). With the driver's default of 100 connections, 32 concurrent
// creates among 3,000 organizations cost about 1 s of database CPU each and
// some waited past SQLite's 10 s lock timeout; with 8, 0.36 s and none did
// (cmd/orgbench). Eight concurrent operations keep two cores busy.
const PoolSize = 8

// DB is a running embedded FerretDB.
type DB struct {
	uri    string
	addr   string
	cancel context.CancelFunc
	done   chan struct{}
}

// Start runs FerretDB with its SQLite files under dir, listening on addr
// (host:port; port 0 picks a free one). It returns once the server accepts
// connections.
func Start(dir, addr string, log *slog.Logger) (*DB, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("embedded database dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded database dir: %w", err)
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: addr},
		Handler:   "sqlite",
		SQLiteURL: "file:" + filepath.ToSlash(dir) + "/",
		Logger:    log,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded database: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	db := &DB{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(db.done)
		_ = f.Run(ctx)
	}()
	// MongoDBURI waits for the listener to be bound.
	u, err := url.Parse(f.MongoDBURI())
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("embedded database uri: %w", err)
	}
	q := u.Query()
	q.Set("maxPoolSize", strconv.Itoa(PoolSize))
	u.RawQuery = q.Encode()
	db.uri, db.addr = u.String(), u.Host
	if err := waitDial(db.addr, 10*time.Second); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// URI returns the mongodb:// address clients connect to, with maxPoolSize
// set to PoolSize.
func (db *DB) URI() string { return db.uri }

// Addr returns host:port of the listener.
func (db *DB) Addr() string { return db.addr }

// Close stops the server and waits for it to release its files.
func (db *DB) Close() {
	db.cancel()
	<-db.done
}

func waitDial(addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("embedded database did not start listening on %s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

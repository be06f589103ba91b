package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// harness holds what every scenario shares: the database, how to start a
// service (or the one running server to target), and the results so far.
type harness struct {
	cfg   config
	out   io.Writer // the table
	errw  io.Writer // progress and notes
	dir   string    // work directory: binaries, database files, service logs
	runID string    // distinguishes this run's organizations from any other's

	svcBin   string
	secret   string
	dbProc   *proc         // the database process the harness started, if any
	mongo    *mongo.Client // nil when the harness has no database address
	mongoURI string

	templates map[string]*template // per organization set, for seeding by cloning
	rep       report
}

// target is one service under load: its API, its process (nil when unknown)
// and its database (nil when the harness has no database address).
type target struct {
	name string
	api  *apiClient
	proc *proc
	db   *mongo.Database
	stop func()
}

func newHarness(cfg config, out, errw io.Writer) *harness {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	s := make([]byte, 32)
	_, _ = rand.Read(s)
	return &harness{
		cfg: cfg, out: out, errw: errw, runID: hex.EncodeToString(b), secret: hex.EncodeToString(s),
		templates: map[string]*template{},
	}
}

// setUp builds the binaries and starts the database, as the mode needs.
func (h *harness) setUp(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "orgbench-")
	if err != nil {
		return err
	}
	h.dir = dir
	h.mongoURI = h.cfg.Mongo
	if h.cfg.URL == "" {
		if h.svcBin = h.cfg.ServiceBin; h.svcBin == "" {
			h.notef("building ./cmd/orgservice")
			if h.svcBin, err = build(ctx, h.cfg.Src, "./cmd/orgservice", dir, h.cfg.race); err != nil {
				return err
			}
		}
		if h.mongoURI == "" {
			bin := h.cfg.EmbeddbBin
			if bin == "" {
				h.notef("building ./cmd/embeddb")
				if bin, err = build(ctx, h.cfg.Src, "./cmd/embeddb", dir, h.cfg.race); err != nil {
					return err
				}
			}
			if h.dbProc, h.mongoURI, err = startDatabase(ctx, bin, dir); err != nil {
				return err
			}
			h.notef("embedded FerretDB (cmd/embeddb, pid %d) at %s", h.dbProc.pid, h.mongoURI)
		}
	}
	if h.mongoURI != "" {
		// The URI's own options stand: the embedded database's caps the pool,
		// and the ceilings connect as the service does.
		opts := options.Client().ApplyURI(h.mongoURI).SetTimeout(10 * time.Minute)
		if h.mongo, err = mongo.Connect(opts); err != nil {
			return fmt.Errorf("connect to %s: %w", h.mongoURI, err)
		}
		if err := h.mongo.Ping(ctx, nil); err != nil {
			return fmt.Errorf("database at %s: %w", h.mongoURI, err)
		}
	}
	return nil
}

func (h *harness) tearDown() {
	if h.mongo != nil {
		_ = h.mongo.Disconnect(context.Background())
	}
	h.dbProc.stop()
	if h.dir != "" && !h.cfg.Keep {
		_ = os.RemoveAll(h.dir)
	} else if h.dir != "" {
		h.notef("work directory kept: %s", h.dir)
	}
}

// newTarget starts a service named name on database dbName (dropped first
// when fresh) with env added to the harness's defaults; with -url it returns
// the running server instead.
func (h *harness) newTarget(ctx context.Context, name, dbName string, fresh bool, env ...string) (*target, error) {
	if h.cfg.URL != "" {
		t := &target{name: "server", api: newAPIClient(h.cfg.URL, h.cfg.Clients)}
		if h.cfg.PID > 0 {
			t.proc = &proc{name: "server", pid: h.cfg.PID}
		}
		if h.mongo != nil {
			t.db = h.mongo.Database(h.cfg.DBName)
		}
		t.stop = t.api.close
		return t, nil
	}
	base := []string{
		"MONGO_URL=" + h.mongoURI,
		"MONGO_DB_NAME=" + dbName,
		"SECRET_KEY=" + h.secret,
		"BCRYPT_COST=4",
		"MIGRATION_STRATEGY=auto",
		"LOGIN_RATE_PER_MIN=0",
		"WRITE_RATE_PER_MIN=0",
		"LOG_LEVEL=" + h.cfg.ServiceLogLevel,
		"LOG_FORMAT=json",
		// Past saturation, 32 clients queue behind the database for seconds
		// at 10,000 organizations; that is latency to measure, not a 503.
		"DB_TIMEOUT=5m",
	}
	db := h.mongo.Database(dbName)
	if fresh { // a clean slate, also when -mongo points at a kept database
		if err := db.Drop(ctx); err != nil {
			return nil, fmt.Errorf("drop database %s: %w", dbName, err)
		}
	}
	env = append(env, h.cfg.ServiceEnv...)
	p, url, err := startService(ctx, name, h.svcBin, h.dir, append(base, env...))
	if err != nil {
		return nil, err
	}
	h.notef("service %s (pid %d) at %s on database %s %v", name, p.pid, url, dbName, env)
	t := &target{name: name, api: newAPIClient(url, h.cfg.Clients), proc: p, db: db}
	t.stop = func() { t.api.close(); p.stop() }
	return t, nil
}

func (h *harness) notef(format string, args ...any) {
	fmt.Fprintf(h.errw, "orgbench: "+format+"\n", args...)
}

func ptr[T any](v T) *T { return &v }

func round(v float64, digits int) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', digits, 64), 64)
	return f
}

package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync/atomic"
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
	// commit and dirty describe the tree the binaries were built from, read
	// before the build: the run may outlast later commits.
	commit string
	dirty  bool

	svcBin   string
	secret   string
	dbProc   *proc         // the database process the harness started, if any
	mongo    *mongo.Client // nil when the harness has no database address
	mongoURI string

	templates map[string]*template // per organization set, for seeding by cloning
	rep       report

	instances int    // service processes per target in the current pass
	suffix    string // of the current pass's row names: "" for one instance, "@N" for N
}

// target is one service under load, run as one or more instances on one
// database: their APIs, their processes (none when unknown) and the
// database (nil when the harness has no database address).
type target struct {
	name  string
	apis  []*apiClient
	procs []*proc
	db    *mongo.Database
	next  atomic.Uint64 // round robin over apis
	stop  func()
}

// api returns the instance to send the next request to: each in turn, as a
// round-robin load balancer would.
func (t *target) api() *apiClient {
	if len(t.apis) == 1 {
		return t.apis[0]
	}
	return t.apis[(t.next.Add(1)-1)%uint64(len(t.apis))]
}

func newHarness(cfg config, out, errw io.Writer) *harness {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	s := make([]byte, 32)
	_, _ = rand.Read(s)
	return &harness{
		cfg: cfg, out: out, errw: errw, runID: hex.EncodeToString(b), secret: hex.EncodeToString(s),
		templates: map[string]*template{}, instances: 1,
	}
}

// setInstances starts a pass of the scenario groups with n service
// processes per target.
func (h *harness) setInstances(n int) {
	h.instances, h.suffix = n, ""
	if n > 1 {
		h.suffix = "@" + strconv.Itoa(n)
	}
}

// label is the name of a row or ratio in the current pass.
func (h *harness) label(name string) string { return name + h.suffix }

// setUp builds the binaries and starts the database, as the mode needs.
func (h *harness) setUp(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "orgbench-")
	if err != nil {
		return err
	}
	h.dir = dir
	h.mongoURI = h.cfg.Mongo
	h.commit, h.dirty = commit(ctx, h.cfg.Src)
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
// when fresh) with env added to the harness's defaults, as many instances
// as the pass has (named name-1 … name-N when more than one), each with its
// own port and data directory; with -url it returns the running server
// instead.
func (h *harness) newTarget(ctx context.Context, name, dbName string, fresh bool, env ...string) (*target, error) {
	if h.cfg.URL != "" {
		t := &target{name: "server", apis: []*apiClient{newAPIClient(h.cfg.URL, h.cfg.Clients)}}
		if h.cfg.PID > 0 {
			t.procs = []*proc{{name: "server", pid: h.cfg.PID}}
		}
		if h.mongo != nil {
			t.db = h.mongo.Database(h.cfg.DBName)
		}
		t.stop = t.apis[0].close
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
		"HTTP_WRITE_TIMEOUT=10m", // a create among 10,000 collections on FerretDB queues for minutes: latency to measure

	}
	db := h.mongo.Database(dbName)
	if fresh { // a clean slate, also when -mongo points at a kept database
		if err := db.Drop(ctx); err != nil {
			return nil, fmt.Errorf("drop database %s: %w", dbName, err)
		}
	}
	env = append(append(base, env...), h.cfg.ServiceEnv...)
	names := []string{name}
	if h.instances > 1 {
		names = names[:0]
		for i := range h.instances {
			names = append(names, fmt.Sprintf("%s-%d", name, i+1))
		}
	}
	t := &target{name: name, db: db}
	startAll := func(ctx context.Context) error {
		for _, n := range names {
			p, url, err := startService(ctx, n, h.svcBin, h.dir, env)
			if err != nil {
				return err
			}
			h.notef("service %s (pid %d) at %s on database %s %v", n, p.pid, url, dbName, env[len(base):])
			t.procs = append(t.procs, p)
			t.apis = append(t.apis, newAPIClient(url, h.cfg.Clients))
		}
		return nil
	}
	stopAll := func() {
		for i, p := range t.procs {
			t.apis[i].close()
			p.stop()
		}
		t.procs, t.apis = nil, nil
	}
	t.stop = stopAll
	if err := startAll(ctx); err != nil {
		stopAll()
		return nil, err
	}
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

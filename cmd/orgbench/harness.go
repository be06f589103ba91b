package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgservice/orgservice/internal/apiclient"
	"github.com/orgservice/orgservice/internal/procs"
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
	dbProc   *procs.Process // the database process the harness started, if any
	mongo    *mongo.Client  // nil when the harness has no database address
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
	name string
	apis []*apiclient.Client
	svcs []*procs.Process
	db   *mongo.Database
	next atomic.Uint64 // round robin over apis
	stop func()
}

// api returns the instance to send the next request to: each in turn, as a
// round-robin load balancer would.
func (t *target) api() *apiclient.Client {
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
			if h.svcBin, err = procs.Build(ctx, h.cfg.Src, "./cmd/orgservice", dir, h.buildFlags()...); err != nil {
				return err
			}
		}
		if h.mongoURI == "" {
			bin := h.cfg.EmbeddbBin
			if bin == "" {
				h.notef("building ./cmd/embeddb")
				if bin, err = procs.Build(ctx, h.cfg.Src, "./cmd/embeddb", dir, h.buildFlags()...); err != nil {
					return err
				}
			}
			if h.dbProc, h.mongoURI, err = procs.StartDatabase(ctx, bin, dir, filepath.Join(dir, "ferretdb")); err != nil {
				return err
			}
			h.notef("embedded FerretDB (cmd/embeddb, pid %d) at %s", h.dbProc.Pid(), h.mongoURI)
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
	if h.dbProc != nil {
		h.dbProc.Stop()
	}
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
		t := &target{name: "server", apis: []*apiclient.Client{newAPIClient(h.cfg.URL, h.cfg.Clients)}}
		if h.cfg.PID > 0 {
			t.svcs = []*procs.Process{procs.Found("server", h.cfg.PID)}
		}
		if h.mongo != nil {
			t.db = h.mongo.Database(h.cfg.DBName)
		}
		t.stop = t.apis[0].CloseIdleConnections
		return t, nil
	}
	base := []string{
		"MONGO_URL=" + h.mongoURI,
		"MONGO_DB_NAME=" + dbName,
		"SECRET_KEY=" + h.secret,
		"BCRYPT_COST=4",
		"MIGRATION_STRATEGY=auto",
		"LOGIN_RATE_PER_MIN=0",
		"LOGIN_EMAIL_RATE_PER_MIN=0",
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
			p, url, err := h.startService(ctx, n, env)
			if err != nil {
				return err
			}
			h.notef("service %s (pid %d) at %s on database %s %v", n, p.Pid(), url, dbName, env[len(base):])
			t.svcs = append(t.svcs, p)
			t.apis = append(t.apis, newAPIClient(url, h.cfg.Clients))
		}
		return nil
	}
	stopAll := func() {
		for i, p := range t.svcs {
			t.apis[i].CloseIdleConnections()
			p.Stop()
		}
		t.svcs, t.apis = nil, nil
	}
	t.stop = stopAll
	if err := startAll(ctx); err != nil {
		stopAll()
		return nil, err
	}
	return t, nil
}

// buildFlags are the go build flags of the binaries the harness builds.
func (h *harness) buildFlags() []string {
	if h.cfg.race {
		return []string{"-race"}
	}
	return nil
}

// startService runs the service binary as name with env, on a port and a
// data directory of its own, and waits until /readyz answers 200. It
// returns the process and the service's base URL.
func (h *harness) startService(ctx context.Context, name string, env []string) (*procs.Process, string, error) {
	addr, err := procs.FreeAddr()
	if err != nil {
		return nil, "", err
	}
	env = append(env, "HTTP_ADDR="+addr, "DATA_DIR="+filepath.Join(h.dir, name+"-data"))
	p, err := procs.Start(name, h.svcBin, h.dir, nil, env)
	if err != nil {
		return nil, "", err
	}
	base := "http://" + addr
	if err := p.WaitReady(ctx, base, 2*time.Minute); err != nil {
		p.Stop()
		return nil, "", err
	}
	return p, base, nil
}

// newAPIClient returns a client of the server at base with a connection
// pool for clients concurrent clients.
func newAPIClient(base string, clients int) *apiclient.Client {
	return apiclient.New(base, &http.Client{
		// Long enough for a rename that copies a million documents.
		Timeout: 30 * time.Minute,
		Transport: &http.Transport{
			MaxIdleConns:        4 * clients,
			MaxIdleConnsPerHost: 4 * clients,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
	})
}

func (h *harness) notef(format string, args ...any) {
	fmt.Fprintf(h.errw, "orgbench: "+format+"\n", args...)
}

func ptr[T any](v T) *T { return &v }

func round(v float64, digits int) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', digits, 64), 64)
	return f
}

// Package app builds the whole service — stores, directory, domain services,
// metrics and the HTTP API — from its settings and its database handles, and
// runs and stops its background loops. It is the one constructor that main
// and the tests share, so that tests run exactly what production runs.
//
// The build order has no cycle: the stores, then the directory over them,
// the usage ledger over the stores, the documents service over the stores,
// the directory and the ledger, the organization
// service over the stores, the directory and the documents service (renames
// and deletes wait for its writes), authentication over the organization
// service, and the API over all of them. Nothing is set after construction.
package app

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgservice/orgservice/internal/auth"
	"github.com/orgservice/orgservice/internal/directory"
	"github.com/orgservice/orgservice/internal/document"
	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/httpapi"
	"github.com/orgservice/orgservice/internal/metrics"
	"github.com/orgservice/orgservice/internal/mongostore"
	"github.com/orgservice/orgservice/internal/org"
	"github.com/orgservice/orgservice/internal/usage"
)

// DefaultFullReconcileEvery is how often the reconciler reads every
// organization, claim and collection; between, it settles only what the
// directory shows unsettled, every ReconcileEvery.
const DefaultFullReconcileEvery = time.Hour

// Config is every setting of the service, as its parts take them.
// FromSettings fills it from the environment's settings; tests build it
// directly. Zero values take each part's defaults.
type Config struct {
	Org       org.Config
	Directory directory.Config
	Documents document.Config
	Auth      auth.Config
	HTTP      httpapi.Options
	// Quotas are the default quotas of every organization, for both the
	// organization and the documents services (unless their own Config
	// sets them); nil takes org.DefaultQuotas.
	Quotas *org.Quotas
	// CopyBatchSize is how many documents a rename's copy inserts at a time.
	CopyBatchSize int
	// SharedRateLimits counts the rate limits in the database, exactly
	// across every instance that shares it; otherwise each instance counts
	// in its own memory.
	SharedRateLimits bool
	// ReconcileEvery is how often the reconciler settles what the directory
	// shows unsettled (default: the lease TTL); FullReconcileEvery how often
	// it reads everything (default DefaultFullReconcileEvery).
	ReconcileEvery     time.Duration
	FullReconcileEvery time.Duration
	// Clock is the clock of the shared rate limits' windows; nil is
	// time.Now. A seam for tests, as org.Config.AfterStep is.
	Clock func() time.Time
}

// Databases are the handles the service works on.
type Databases struct {
	// Main holds every collection of the service.
	Main *mongo.Database
	// Directory is the same database on a client of its own, so that the
	// directory's refreshes never queue behind the requests' database work;
	// nil uses Main.
	Directory *mongo.Database
}

// App is the whole service, built and ready to Start.
type App struct {
	cfg     Config
	log     *slog.Logger
	stores  *mongostore.Stores
	watcher directory.Watcher
	dir     *directory.Directory
	docs    *document.Service
	orgs    *org.Service
	auth    *auth.Service
	metrics *metrics.Metrics
	api     *httpapi.Server

	mu      sync.Mutex
	started bool
	stop    context.CancelFunc // of the background loops
	loops   sync.WaitGroup
}

// New builds the service over dbs. It touches no database: Start does.
func New(cfg Config, dbs Databases, log *slog.Logger) (*App, error) {
	if dbs.Directory == nil {
		dbs.Directory = dbs.Main
	}
	if cfg.ReconcileEvery <= 0 {
		cfg.ReconcileEvery = cfg.Org.LeaseTTL
		if cfg.ReconcileEvery <= 0 {
			cfg.ReconcileEvery = 30 * time.Second
		}
	}
	if cfg.FullReconcileEvery <= 0 {
		cfg.FullReconcileEvery = DefaultFullReconcileEvery
	}
	if cfg.Org.Quotas == nil {
		cfg.Org.Quotas = cfg.Quotas
	}
	if cfg.Documents.Quotas == nil {
		cfg.Documents.Quotas = cfg.Quotas
	}
	stores := mongostore.Open(dbs.Main, cfg.CopyBatchSize)
	reads := mongostore.Open(dbs.Directory, 0)
	dir := directory.New(directory.Source{
		Metadata: reads.Organizations, Changes: reads.Changes, Leases: reads.Leases, Sessions: reads.Sessions,
	}, cfg.Directory, log)
	mets := metrics.New(dir)
	ledger := usage.New(stores.Usage, stores.Writers, usage.Config{WriterTTL: cfg.Documents.WriterTTL}, log)
	// One hasher for every bcrypt computation, the organization service's
	// and authentication's alike.
	hasher := auth.Bcrypt{Cost: cfg.Auth.BcryptCost}
	docs := document.NewService(document.Deps{
		Store: stores.Documents, Versions: stores.Versions, Registrations: stores.Writers, Directory: dir, Quota: ledger,
	}, cfg.Documents, log)
	orgs := org.NewService(org.Deps{
		Stores: org.Stores{
			Metadata: stores.Organizations, Names: stores.Names, Leases: stores.Leases,
			Changes: stores.Changes, Tenants: stores.Tenants, Audit: stores.Audit,
		},
		Directory: dir,
		Hasher:    hasher,
		Writers:   docs,
		Observer:  mets,
		Usage:     ledger,
		Counter:   docs,
	}, cfg.Org, log)
	authn, err := auth.NewService(auth.Deps{
		Orgs: orgs, Recorder: orgs, Hasher: hasher, Log: log,
		Sessions: auth.Sessions{
			Store: stores.Sessions, Uses: stores.RefreshUses, Ends: stores.SessionEnds, Log: stores.Changes, Ended: dir,
		},
	}, cfg.Auth)
	if err != nil {
		return nil, err
	}
	var rates httpapi.RateStore // nil: counted in memory
	if cfg.SharedRateLimits {
		rates = mongostore.NewRateLimits(dbs.Main, log)
	}
	api := httpapi.New(httpapi.Deps{
		Orgs: orgs, Operator: org.NewOperator(orgs), Auth: authn, Documents: docs, DB: stores, RateStore: rates, Metrics: mets, Now: cfg.Clock,
	}, cfg.HTTP, log)
	return &App{
		cfg: cfg, log: log, stores: stores, watcher: reads.Changes, dir: dir,
		docs: docs, orgs: orgs, auth: authn, metrics: mets, api: api,
	}, nil
}

// Handler is the HTTP API: an http.Handler with its routes.
func (a *App) Handler() *httpapi.Server { return a.api }

// Start prepares the database and starts every background loop: it ensures
// the indexes and loads the directory (retrying while the database cannot
// be reached, until ctx is done), then keeps the directory current (its
// refresh loop, and a change stream where the server has one), migrates
// organizations from before members, and runs the reconciler. The loops
// run until Close. Errors: ctx's, or the database's other than
// errs.Unavailable.
func (a *App) Start(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.started {
		return errors.New("app: started twice")
	}
	if err := a.untilReachable(ctx, a.stores.EnsureIndexes); err != nil {
		return err
	}
	if err := a.untilReachable(ctx, a.dir.Load); err != nil {
		return err
	}
	loops, stop := context.WithCancel(context.WithoutCancel(ctx))
	a.started, a.stop = true, stop
	a.loops.Go(func() { a.dir.Run(loops) })
	a.loops.Go(func() { a.dir.Follow(loops, a.watcher) })
	// Organizations from before members: their admin becomes their owner.
	// Reads see them so already; a failure here is retried at the next start.
	if err := a.orgs.MigrateMembers(ctx); err != nil {
		a.log.Warn("members migration", slog.Any("error", err))
	}
	a.loops.Go(func() { a.orgs.RunReconciler(loops, a.cfg.ReconcileEvery, a.cfg.FullReconcileEvery) })
	// Session ends a crash interrupted are finished as the reconciler
	// settles operations, within ReconcileEvery.
	a.loops.Go(func() { a.auth.RunJanitor(loops, a.cfg.ReconcileEvery) })
	return nil
}

// untilReachable runs step, retrying every second while the database
// cannot be reached.
func (a *App) untilReachable(ctx context.Context, step func(context.Context) error) error {
	for {
		err := step(ctx)
		if err == nil || !errs.Is(err, errs.Unavailable) {
			return err
		}
		a.log.Warn("database not reachable yet; retrying", slog.Any("error", err))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// Close stops the service after its HTTP server has drained: it waits for
// the operations still running (until ctx is done; one that cannot finish
// keeps its lease, and the next start or another instance completes it),
// stops the background loops and waits for them, and gives up this
// process's document writer registrations. It returns ctx's error when
// operations were still running.
func (a *App) Close(ctx context.Context) error {
	err := a.orgs.Wait(ctx)
	if aerr := a.auth.Wait(ctx); err == nil {
		err = aerr // failed logins' events being written
	}
	a.mu.Lock()
	stop := a.stop
	a.mu.Unlock()
	if stop != nil {
		stop()
	}
	a.loops.Wait()
	a.docs.Close(context.WithoutCancel(ctx))
	return err
}

// Orgs is the organization service.
func (a *App) Orgs() *org.Service { return a.orgs }

// Documents is the documents service.
func (a *App) Documents() *document.Service { return a.docs }

// Auth is the authentication service.
func (a *App) Auth() *auth.Service { return a.auth }

// Directory is the in-memory directory of organizations.
func (a *App) Directory() *directory.Directory { return a.dir }

// Stores are the stores over the main database.
func (a *App) Stores() *mongostore.Stores { return a.stores }

// Metrics are the service's metrics.
func (a *App) Metrics() *metrics.Metrics { return a.metrics }

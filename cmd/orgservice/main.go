// Command orgservice runs the Organization Management Service: on MongoDB
// when MONGO_URL is set, else on an embedded FerretDB under DATA_DIR.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/orgservice/orgservice/internal/auth"
	"github.com/orgservice/orgservice/internal/config"
	"github.com/orgservice/orgservice/internal/directory"
	"github.com/orgservice/orgservice/internal/document"
	"github.com/orgservice/orgservice/internal/embeddb"
	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/httpapi"
	"github.com/orgservice/orgservice/internal/metrics"
	"github.com/orgservice/orgservice/internal/mongostore"
	"github.com/orgservice/orgservice/internal/org"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) == 2 && os.Args[1] == "healthcheck" {
		stop()
		os.Exit(healthcheck(context.Background()))
	}
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "orgservice:", err)
		os.Exit(1)
	}
}

// shutdownGrace bounds a graceful shutdown.
const shutdownGrace = 10 * time.Second

// fullReconcileEvery is how often the reconciler reads every organization,
// claim and collection; between, it settles only what the directory shows
// unsettled, every LEASE_TTL.
const fullReconcileEvery = time.Hour

func run(ctx context.Context) error {
	cfg, err := config.Load()
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	log := newLogger(cfg)

	uri := cfg.MongoURL
	if cfg.Embedded() {
		db, err := embeddb.Start(filepath.Join(cfg.DataDir, "ferretdb"), cfg.EmbeddedMongoAddr, ferretLogger(cfg))
		if err != nil {
			return err
		}
		defer db.Close()
		uri = db.URI()
		log.Info("embedded database started", slog.String("mongo_url", uri), slog.String("data_dir", cfg.DataDir))
		if cfg.SecretKey == "" {
			if cfg.SecretKey, err = config.EmbeddedSecret(cfg.DataDir); err != nil {
				return err
			}
		}
	}

	client, err := mongostore.Connect(uri, cfg.DBTimeout)
	if err != nil {
		return err
	}
	defer func() { _ = client.Disconnect(context.WithoutCancel(ctx)) }()
	store := mongostore.New(client.Database(cfg.MongoDBName), cfg.CopyBatchSize)
	if err := untilReachable(ctx, log, store.EnsureIndexes); err != nil {
		return err
	}

	// The directory reads over connections of its own, so that its
	// refreshes never queue behind the requests' database work; two are
	// enough for a loop that reads one thing at a time.
	dirClient, err := mongostore.Connect(uri, cfg.DBTimeout, mongostore.MaxPool(2))
	if err != nil {
		return err
	}
	defer func() { _ = dirClient.Disconnect(context.WithoutCancel(ctx)) }()
	dirSource := mongostore.New(dirClient.Database(cfg.MongoDBName), 0)
	dir := directory.New(dirSource, directory.Config{Staleness: cfg.DirectoryStaleness, Lingering: cfg.LeaseTTL}, log)
	if err := untilReachable(ctx, log, dir.Load); err != nil {
		return err
	}
	go dir.Run(ctx)
	go dir.Follow(ctx, dirSource)
	orgs := org.NewService(store, dir, auth.Bcrypt{Cost: cfg.BcryptCost}, org.Config{
		Strategy: org.Strategy(cfg.MigrationStrategy),
		LeaseTTL: cfg.LeaseTTL,
	}, log)
	authn, err := auth.NewService(orgs, orgs, auth.Config{
		Secret: []byte(cfg.SecretKey), Issuer: cfg.JWTIssuer, TTL: cfg.JWTTTL, BcryptCost: cfg.BcryptCost,
		Lag: cfg.DirectoryStaleness,
	})
	if err != nil {
		return err
	}
	docs := document.NewService(store, orgs, document.Config{MaxBytes: cfg.DocumentMaxBytes}, log)
	defer docs.Close(context.WithoutCancel(ctx))
	mets := metrics.New()
	orgs.SetObserver(mets) // before anything runs operations
	mets.WatchDirectory(dir)
	orgs.SetWriters(docs) // renames and deletes wait for document writes in flight
	// Organizations from before members: their admin becomes their owner.
	// Reads see them so already; a failure here is retried at the next start.
	if err := orgs.MigrateMembers(ctx); err != nil {
		log.Warn("members migration", slog.Any("error", err))
	}
	go orgs.RunReconciler(ctx, cfg.LeaseTTL, fullReconcileEvery)

	trusted, err := cfg.TrustedPrefixes()
	if err != nil {
		return err
	}
	var rates httpapi.RateStore // nil: counted in memory
	if cfg.RateLimitStore == config.RateLimitDatabase {
		rates = mongostore.NewRateLimits(client.Database(cfg.MongoDBName), log)
	}
	api := httpapi.New(orgs, authn, log, httpapi.Options{
		DBTimeout:       cfg.DBTimeout,
		LoginRatePerMin: cfg.LoginRatePerMin,
		WriteRatePerMin: cfg.WriteRatePerMin,
		RateStore:       rates,
		RateFailOpen:    cfg.RateLimitFailOpen(),
		TrustedProxies:  trusted,
		CORSOrigins:     cfg.CORSOrigins,
		Metrics:         mets,
		Documents:       docs,
		DataRatePerMin:  cfg.DataRatePerMin,
		ImportMaxBytes:  cfg.ImportMaxBytes,
	})
	srv := &http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           api,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      cfg.HTTPWriteTimeout,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	log.Info("listening", slog.String("addr", ln.Addr().String()))
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("http shutdown", slog.Any("error", err))
	}
	// Operations in flight finish; one that cannot in time keeps its lease,
	// and the next start (or another instance) completes it.
	if err := orgs.Wait(sctx); err != nil {
		log.Warn("operations still running at shutdown; the reconciler will finish them", slog.Any("error", err))
	}
	return nil
}

// untilReachable runs step (ensuring the indexes, loading the directory),
// retrying while the database is not up yet.
func untilReachable(ctx context.Context, log *slog.Logger, step func(context.Context) error) error {
	for {
		err := step(ctx)
		if err == nil || !errs.Is(err, errs.Unavailable) {
			return err
		}
		log.Warn("database not reachable yet; retrying", slog.Any("error", err))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func newLogger(cfg config.Config) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}

// ferretLogger keeps the embedded database's own logging to errors (its
// warnings include a full dump of every command it does not know).
func ferretLogger(cfg config.Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelError}
	if cfg.LogFormat == "text" {
		return slog.New(slog.NewTextHandler(os.Stderr, opts)).With(slog.String("component", "ferretdb"))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts)).With(slog.String("component", "ferretdb"))
}

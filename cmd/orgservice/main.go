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

	"github.com/orgservice/orgservice/internal/app"
	"github.com/orgservice/orgservice/internal/config"
	"github.com/orgservice/orgservice/internal/embeddb"
	"github.com/orgservice/orgservice/internal/mongostore"
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

// run reads the settings, starts the embedded database when no MONGO_URL is
// set, connects, builds and starts the service, serves it, and on a signal
// drains the server and stops the service.
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
	settings, err := app.FromSettings(cfg)
	if err != nil {
		return err
	}

	client, err := mongostore.Connect(uri, cfg.DBTimeout)
	if err != nil {
		return err
	}
	defer func() { _ = client.Disconnect(context.WithoutCancel(ctx)) }()
	// The directory reads over connections of its own; two are enough for
	// a loop that reads one thing at a time.
	dirClient, err := mongostore.Connect(uri, cfg.DBTimeout, mongostore.MaxPool(2))
	if err != nil {
		return err
	}
	defer func() { _ = dirClient.Disconnect(context.WithoutCancel(ctx)) }()

	svc, err := app.New(settings, app.Databases{
		Main: client.Database(cfg.MongoDBName), Directory: dirClient.Database(cfg.MongoDBName),
	}, log)
	if err != nil {
		return err
	}
	if err := svc.Start(ctx); err != nil {
		return err
	}

	srv := &http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           svc.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      cfg.HTTPWriteTimeout,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		_ = svc.Close(context.WithoutCancel(ctx))
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	log.Info("listening", slog.String("addr", ln.Addr().String()))
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()

	select {
	case err = <-serveErr:
	case <-ctx.Done():
		log.Info("shutting down")
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if serr := srv.Shutdown(sctx); serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		log.Warn("http shutdown", slog.Any("error", serr))
	}
	// Operations in flight finish; one that cannot in time keeps its lease,
	// and the next start (or another instance) completes it.
	if cerr := svc.Close(sctx); cerr != nil {
		log.Warn("operations still running at shutdown; the reconciler will finish them", slog.Any("error", cerr))
	}
	return err
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

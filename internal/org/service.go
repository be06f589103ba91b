package org

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orgservice/orgservice/internal/errs"
)

// Strategy is how a rename moves a tenant collection.
type Strategy string

// The migration strategies. StrategyAuto renames and falls back to copying
// only when the server refuses renameCollection.
const (
	StrategyAuto   Strategy = "auto"
	StrategyRename Strategy = "rename"
	StrategyCopy   Strategy = "copy"
)

// Config tunes a Service. Zero values take the defaults.
type Config struct {
	Strategy Strategy
	// LeaseTTL is how long an operation's lease lives unless renewed; a
	// crashed instance's operation is taken over after it.
	LeaseTTL time.Duration
	// ClaimGrace is how old a claim must be before it can be found stale.
	ClaimGrace time.Duration
	// ProgressEvery is how often a long copy logs its progress.
	ProgressEvery time.Duration
	// AfterStep, when set, is called after every step of a multi-step
	// operation; an error stops the operation there as a crash would: no
	// clean-up, lease left to expire. It is a seam for fault-injection tests.
	AfterStep func(step string) error
}

func (c Config) withDefaults() Config {
	if c.Strategy == "" {
		c.Strategy = StrategyAuto
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 30 * time.Second
	}
	if c.ClaimGrace <= 0 {
		c.ClaimGrace = 2 * c.LeaseTTL
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = 5 * time.Second
	}
	return c
}

// Observer is told about finished operations (for metrics). Any method may
// be a no-op. Migrated's docs counts the documents copied: 0 for a
// renameCollection, which moves none.
type Observer interface {
	OrgCreated()
	OrgDeleted()
	Migrated(strategy Strategy, docs int64, took time.Duration)
}

// Writers holds a rename or delete back until no write to the
// organization's tenant collection can land any more. Quiesce is called
// after the operation's intent is written and before its collection is
// moved or dropped; it returns errs.Busy when writers do not drain in time.
type Writers interface {
	Quiesce(ctx context.Context, orgID string) error
}

type nopWriters struct{}

func (nopWriters) Quiesce(context.Context, string) error { return nil }

type nopObserver struct{}

func (nopObserver) OrgCreated()                             {}
func (nopObserver) OrgDeleted()                             {}
func (nopObserver) Migrated(Strategy, int64, time.Duration) {}

// Service runs every operation on organizations.
type Service struct {
	store    Store // every metadata write through it refreshes dir
	dir      Directory
	hasher   Hasher
	cfg      Config
	log      *slog.Logger
	obs      Observer
	writers  Writers
	instance string       // names this process in lease owners
	leases   atomic.Int64 // numbers this process's lease acquisitions

	ops sync.WaitGroup // detached operations still running

	mu       sync.Mutex
	settling map[string]bool // organizations a background reconcile is working on
}

// NewService returns a Service that writes through store and reads from dir.
func NewService(store Store, dir Directory, hasher Hasher, cfg Config, log *slog.Logger) *Service {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return &Service{
		store:    recorded{Store: store, dir: dir},
		dir:      dir,
		hasher:   hasher,
		cfg:      cfg.withDefaults(),
		log:      log,
		obs:      nopObserver{},
		writers:  nopWriters{},
		instance: "svc-" + hex.EncodeToString(b),
		settling: map[string]bool{},
	}
}

// SetObserver registers o to be told about finished operations.
func (s *Service) SetObserver(o Observer) { s.obs = o }

// SetWriters registers w to be waited for before a tenant collection is
// moved or dropped. Call it before anything runs operations.
func (s *Service) SetWriters(w Writers) { s.writers = w }

// Wait blocks until every detached operation has finished or ctx is done.
func (s *Service) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.ops.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Ping checks that the database answers; errs.Unavailable when it does not.
func (s *Service) Ping(ctx context.Context) error { return s.store.Ping(ctx) }

// halted marks an operation stopped by the AfterStep seam: nothing may run
// after it, as if the process had died.
type halted struct{ err error }

func (h halted) Error() string { return "halted: " + h.err.Error() }
func (h halted) Unwrap() error { return h.err }

func isHalted(err error) bool {
	var h halted
	return errors.As(err, &h)
}

func (s *Service) step(name string) error {
	if s.cfg.AfterStep == nil {
		return nil
	}
	if err := s.cfg.AfterStep(name); err != nil {
		return halted{err}
	}
	return nil
}

// detached runs fn on a context that the caller's cancellation does not
// reach, so that a client that disconnects or a server timeout never cuts a
// multi-step operation half-way. The caller gets fn's result, or its own
// context's error if it stops waiting first.
func (s *Service) detached(ctx context.Context, fn func(context.Context) error) error {
	s.ops.Add(1)
	done := make(chan error, 1)
	go func() {
		defer s.ops.Done()
		done <- fn(context.WithoutCancel(ctx))
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// withLease runs fn holding the lease of orgID, renewing it while fn runs.
// errs.Busy when another live operation holds it. A halted fn leaves the lease
// in place, to expire like a crashed process's.
func (s *Service) withLease(ctx context.Context, orgID string, fn func(context.Context) error) error {
	// Each acquisition has an owner name of its own, so that two operations
	// of one process can never renew or release each other's lease.
	owner := fmt.Sprintf("%s/%d", s.instance, s.leases.Add(1))
	if err := s.store.AcquireLease(ctx, orgID, owner, s.cfg.LeaseTTL); err != nil {
		return err
	}
	// Announced before anything is written: every directory re-reads the
	// organization from this entry on, until the lease is gone.
	if err := s.store.AppendChange(ctx, orgID); err != nil {
		if rerr := s.store.ReleaseLease(context.WithoutCancel(ctx), orgID, owner); rerr != nil {
			s.log.Warn("release lease", slog.String("org_id", orgID), slog.Any("error", rerr))
		}
		return err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	stop := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(s.cfg.LeaseTTL / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if err := s.store.RenewLease(ctx, orgID, owner, s.cfg.LeaseTTL); err != nil && errs.Is(err, errs.Busy) {
					cancel(err) // someone took over: stop before doing any more
					return
				}
			}
		}
	}()
	err := fn(ctx)
	close(stop)
	<-renewed
	cancel(nil)
	if isHalted(err) {
		return err
	}
	if rerr := s.store.ReleaseLease(context.WithoutCancel(ctx), orgID, owner); rerr != nil {
		s.log.Warn("release lease", slog.String("org_id", orgID), slog.Any("error", rerr))
	}
	return err
}

func busy() error {
	return errs.Errorf(errs.Busy, "another operation on this organization is in progress; retry shortly")
}

// recorded is the store as the service writes it: each metadata write is
// followed by a re-read into the directory, so that this process serves its
// own writes at once (a revoked token is refused by the next request).
type recorded struct {
	Store
	dir Directory
}

func (r recorded) InsertOrg(ctx context.Context, o *Organization) error {
	err := r.Store.InsertOrg(ctx, o)
	_ = r.dir.Refresh(ctx, o.ID) // on failure the tail follows it
	return err
}

func (r recorded) UpdateOrg(ctx context.Context, id string, c Changes) error {
	err := r.Store.UpdateOrg(ctx, id, c)
	_ = r.dir.Refresh(ctx, id) // on failure the tail follows it
	return err
}

func (r recorded) DeleteOrg(ctx context.Context, id string) error {
	err := r.Store.DeleteOrg(ctx, id)
	_ = r.dir.Refresh(ctx, id) // on failure the tail follows it
	return err
}

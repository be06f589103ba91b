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
	// Quotas are the default quotas of every organization; nil takes
	// DefaultQuotas.
	Quotas *Quotas
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

// Deps are what a Service works with. Writers and Observer may be nil.
type Deps struct {
	Stores    Stores
	Directory Directory
	Hasher    Hasher
	// Writers holds renames and deletes back until no document write to the
	// organization's collection can land any more.
	Writers Writers
	// Observer is told about finished operations.
	Observer Observer
	// Usage keeps the organizations' document counts and stored bytes, and
	// Counter measures a tenant collection for a recount; nil: no usage is
	// kept (tests of other parts).
	Usage   UsageLedger
	Counter Counter
}

// Service runs every operation on organizations.
type Service struct {
	meta     Metadata // every write through it refreshes dir
	names    NameClaims
	leases   Leases
	changes  ChangeLog
	tenants  Tenants
	audit    AuditLog
	dir      Directory
	hasher   Hasher
	cfg      Config
	log      *slog.Logger
	obs      Observer
	writers  Writers
	usage    UsageLedger
	counter  Counter
	quotas   Quotas
	instance string       // names this process in lease owners
	acquired atomic.Int64 // numbers this process's lease acquisitions

	ops sync.WaitGroup // detached operations still running

	passes     sync.Mutex    // one reconcile pass at a time in this process
	firstPass  chan struct{} // closed once RunReconciler's first full pass has ended
	passClosed sync.Once

	mu       sync.Mutex
	settling map[string]bool // organizations a background reconcile is working on
}

// NewService returns a Service that writes through deps.Stores and reads
// from deps.Directory.
func NewService(deps Deps, cfg Config, log *slog.Logger) *Service {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	s := &Service{
		meta:      recorded{Metadata: deps.Stores.Metadata, dir: deps.Directory},
		names:     deps.Stores.Names,
		leases:    deps.Stores.Leases,
		changes:   deps.Stores.Changes,
		tenants:   deps.Stores.Tenants,
		audit:     deps.Stores.Audit,
		dir:       deps.Directory,
		hasher:    deps.Hasher,
		cfg:       cfg.withDefaults(),
		log:       log,
		obs:       deps.Observer,
		writers:   deps.Writers,
		usage:     deps.Usage,
		counter:   deps.Counter,
		quotas:    DefaultQuotas(),
		instance:  "svc-" + hex.EncodeToString(b),
		settling:  map[string]bool{},
		firstPass: make(chan struct{}),
	}
	if s.obs == nil {
		s.obs = nopObserver{}
	}
	if s.writers == nil {
		s.writers = nopWriters{}
	}
	if cfg.Quotas != nil {
		s.quotas = *cfg.Quotas
	}
	if s.usage == nil {
		s.usage = nopUsage{}
	}
	return s
}

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
	owner := fmt.Sprintf("%s/%d", s.instance, s.acquired.Add(1))
	if err := s.leases.Acquire(ctx, orgID, owner, s.cfg.LeaseTTL); err != nil {
		return err
	}
	// Announced before anything is written: every directory re-reads the
	// organization from this entry on, until the lease is gone.
	if err := s.changes.Append(ctx, orgID); err != nil {
		if rerr := s.leases.Release(context.WithoutCancel(ctx), orgID, owner); rerr != nil {
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
				if err := s.leases.Renew(ctx, orgID, owner, s.cfg.LeaseTTL); err != nil && errs.Is(err, errs.Busy) {
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
	if rerr := s.leases.Release(context.WithoutCancel(ctx), orgID, owner); rerr != nil {
		s.log.Warn("release lease", slog.String("org_id", orgID), slog.Any("error", rerr))
	}
	return err
}

func busy() error {
	return errs.Errorf(errs.Busy, "another operation on this organization is in progress; retry shortly")
}

// recorded is the metadata as the service writes it: each write is
// followed by a re-read into the directory, so that this process serves its
// own writes at once (a revoked token is refused by the next request).
type recorded struct {
	Metadata
	dir Directory
}

func (r recorded) Insert(ctx context.Context, o *Organization) error {
	err := r.Metadata.Insert(ctx, o)
	_ = r.dir.Refresh(ctx, o.ID) // on failure the tail follows it
	return err
}

func (r recorded) Update(ctx context.Context, id string, c Changes) error {
	err := r.Metadata.Update(ctx, id, c)
	_ = r.dir.Refresh(ctx, id) // on failure the tail follows it
	return err
}

func (r recorded) Delete(ctx context.Context, id string) error {
	err := r.Metadata.Delete(ctx, id)
	_ = r.dir.Refresh(ctx, id) // on failure the tail follows it
	return err
}

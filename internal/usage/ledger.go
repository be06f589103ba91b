// Package usage counts what each organization's documents use — how many
// there are and their stored bytes — exactly under any concurrency, on any
// number of instances sharing one database, on servers where the only
// atomic test-and-set is an insert under a unique key.
//
// Each organization's count is a chain of entries numbered 1, 2, 3…
// without gaps, each holding the totals after it. Entry n+1 is taken by an
// insert under the unique key "<org>/<n+1>", and its totals are entry n's
// plus the changes it carries: of two writers that both read entry n, one
// inserts n+1 and the other gets a duplicate key, reads again and tries
// n+2 with the totals that now include the winner's. The chain is a
// counter whose every step is one atomic insert, so a reservation that
// checks "totals + change ≤ quota" before its insert can never be outrun
// by another: concurrent writers racing for the last free slot get it
// exactly once, whichever instances they run on. ($inc, which loses counts
// on FerretDB, and guarded updates, which can both win there, are never used.)
//
// Cheap in the common case: each process keeps the last entry it saw of
// each organization (trusted for HeadTTL), so a write that adds a document
// costs one insert more; the writes of one process to one organization
// that arrive while an insert is on its way are carried by the next one
// together (group commit), so a process issues at most one insert at a
// time per organization however many writers it serves. Old entries are
// pruned, all but the last, once they are older than Retention, well
// beyond HeadTTL, so that nobody can insert at a number already pruned.
//
// What the count can get wrong, and for how long: a writer reserves what it
// adds before it writes and frees what it removed after, so a count is
// only ever too high, by the writes in flight in a process that died (or
// whose write's outcome it never learned): at most one document per
// concurrent write, or one import batch. Such organizations are listed by
// Drifted — a writer registration that expired without being removed (its
// process died), or a mark a live process left — and recounted by the
// organization service (org/recount.go) within a reconcile interval.
package usage

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/org"
)

// Entry is one step of an organization's count: the totals after it.
type Entry struct {
	OrgID  string
	N      int64 // 1, 2, 3… without gaps
	Used   org.Usage
	At     time.Time
	Rebase bool // a recount's measure, not a change
}

// Store holds the chains and the marks of drift. Implementations
// translate their driver's errors into errs kinds.
type Store interface {
	// Append inserts e; errs.Conflict when entry e.N of e.OrgID exists.
	Append(ctx context.Context, e Entry) error
	// Head returns orgID's last entry; errs.NotFound when it has none.
	Head(ctx context.Context, orgID string) (Entry, error)
	// Heads returns the last entry of every organization that has one.
	Heads(ctx context.Context) (map[string]Entry, error)
	// Prune removes orgID's entries numbered below n that were written
	// before before.
	Prune(ctx context.Context, orgID string, n int64, before time.Time) error
	// Forget removes every entry and mark of orgID.
	Forget(ctx context.Context, orgID string) error
	// Mark records that orgID's count may have drifted, at at.
	Mark(ctx context.Context, orgID string, at time.Time) error
	// Marked lists the organizations with marks.
	Marked(ctx context.Context) ([]string, error)
	// Unmark removes orgID's marks made before before.
	Unmark(ctx context.Context, orgID string, before time.Time) error
}

// Writers are the document writer registrations (document/writers.go),
// as far as they tell of writers that died.
type Writers interface {
	// Dead lists the organizations with a registration that expired
	// before before: its process stopped renewing it without removing it.
	Dead(ctx context.Context, before time.Time) ([]string, error)
	// RemoveDead removes orgID's registrations that expired before before.
	RemoveDead(ctx context.Context, orgID string, before time.Time) error
}

// Config tunes a Ledger. Zero values take the defaults.
type Config struct {
	// HeadTTL is how long a process trusts the last entry it saw of an
	// organization before reading it again (15s).
	HeadTTL time.Duration
	// Retention is how old an entry must be to be pruned (2m); it must stay
	// well above HeadTTL.
	Retention time.Duration
	// WriterTTL is the writer registrations' TTL (10s): one expired for a
	// fifth of it is a writer that died.
	WriterTTL time.Duration
}

func (c Config) withDefaults() Config {
	if c.HeadTTL <= 0 {
		c.HeadTTL = 15 * time.Second
	}
	if c.Retention <= 0 {
		c.Retention = 2 * time.Minute
	}
	if c.WriterTTL <= 0 {
		c.WriterTTL = 10 * time.Second
	}
	return c
}

// maxAttempts bounds how often one commit reads again after losing its
// number to another instance.
const maxAttempts = 50

// Ledger is the usage of every organization. It implements
// org.UsageLedger and the documents service's quota.
type Ledger struct {
	store   Store
	writers Writers
	cfg     Config
	log     *slog.Logger

	mu       sync.Mutex
	accounts map[string]*account
	submits  int
}

var _ org.UsageLedger = (*Ledger)(nil)

// account is this process's view of one organization's chain, and the
// requests waiting for its next insert.
type account struct {
	orgID string

	mu      sync.Mutex
	queue   []*request
	busy    bool // a commit is running; it takes the queue when done
	lastUse time.Time

	// Touched by the committer only.
	head      Entry
	learned   time.Time // when head was read or written; zero: unknown
	lastPrune time.Time
}

// request is one caller's change, answered by the commit that carries it.
type request struct {
	deltas []org.Usage // reservations, checked against limits; or one credit
	limits org.Quotas
	check  bool       // reservations are checked; credits never
	prefix bool       // accept the longest prefix that fits, not all or none
	set    *org.Usage // a rebase: the totals become this

	accepted int
	err      error
	done     chan struct{}
}

// New returns a Ledger over store, listing dead writers in writers; log
// (nil: discarded) receives what it cannot report to a caller.
func New(store Store, writers Writers, cfg Config, log *slog.Logger) *Ledger {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Ledger{store: store, writers: writers, cfg: cfg.withDefaults(), log: log, accounts: map[string]*account{}}
}

func notCounted() error {
	return errs.Errorf(errs.Busy, "the organization's usage is being counted; retry shortly")
}

// Reserve takes room in orgID's count for ds, in order, within the quotas
// q, before the writes that add them: all of them, or with prefix the
// longest prefix that fits. It returns how many it took; the error of the
// first that did not fit is errs.QuotaExceeded (with prefix, alongside the
// count). Errors: errs.QuotaExceeded, errs.Busy (not counted yet),
// errs.Unavailable.
func (l *Ledger) Reserve(ctx context.Context, orgID string, q org.Quotas, ds []org.Usage, prefix bool) (int, error) {
	r := &request{deltas: ds, limits: q, check: true, prefix: prefix}
	l.submit(ctx, orgID, r)
	return r.accepted, r.err
}

// Credit applies d — what a write freed (negative parts), or a reservation
// given back — to orgID's count, unchecked. Errors: errs.Busy,
// errs.Unavailable.
func (l *Ledger) Credit(ctx context.Context, orgID string, d org.Usage) error {
	r := &request{deltas: []org.Usage{d}}
	l.submit(ctx, orgID, r)
	return r.err
}

// Suspect marks orgID's count as possibly drifted, for a recount: a write
// ended without an answer and may or may not have happened. A failure is
// logged: the count then stays high by that write until the next recount.
func (l *Ledger) Suspect(ctx context.Context, orgID string) {
	if err := l.store.Mark(context.WithoutCancel(ctx), orgID, time.Now().UTC()); err != nil {
		l.log.Warn("usage: mark for a recount", slog.String("org_id", orgID), slog.Any("error", err))
	}
}

// Init starts orgID's count at zero; starting it again is a no-op.
func (l *Ledger) Init(ctx context.Context, orgID string) error {
	err := l.store.Append(ctx, Entry{OrgID: orgID, N: 1, At: time.Now().UTC()})
	if errs.Is(err, errs.Conflict) {
		return nil
	}
	return err
}

// Current returns orgID's count as the database holds it now.
// Errors: errs.NotFound (not counted yet), errs.Unavailable.
func (l *Ledger) Current(ctx context.Context, orgID string) (org.Usage, error) {
	e, err := l.store.Head(ctx, orgID)
	return e.Used, err
}

// All returns the count of every organization that has one, in one read.
// Errors: errs.Unavailable.
func (l *Ledger) All(ctx context.Context) (map[string]org.Usage, error) {
	heads, err := l.store.Heads(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]org.Usage, len(heads))
	for id, e := range heads {
		out[id] = e.Used
	}
	return out, nil
}

// Rebase sets orgID's count to u: a recount's measure, taken while no
// write of its documents could run.
func (l *Ledger) Rebase(ctx context.Context, orgID string, u org.Usage) error {
	r := &request{set: &u}
	l.submit(ctx, orgID, r)
	return r.err
}

// Forget removes orgID's count and marks (a deleted organization).
func (l *Ledger) Forget(ctx context.Context, orgID string) error {
	l.mu.Lock()
	delete(l.accounts, orgID)
	l.mu.Unlock()
	return l.store.Forget(ctx, orgID)
}

// Drifted lists the organizations whose count may be too high: marked by a
// live process, or with a writer registration that expired (a fifth of a
// writer TTL ago, for clocks) without being removed: its process died
// mid-write.
func (l *Ledger) Drifted(ctx context.Context) ([]string, error) {
	marked, err := l.store.Marked(ctx)
	if err != nil {
		return nil, err
	}
	// Its writes ended before it expired (they run on deadlines before
	// its expiry); the margin is the registry's, for clocks.
	dead, err := l.writers.Dead(ctx, time.Now().Add(-l.cfg.WriterTTL/5))
	if err != nil {
		return nil, err
	}
	ids := append(marked, dead...)
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// Recounted clears orgID's marks made before since and removes its
// registrations that expired before since: a recount that started then
// has measured whatever their writes did.
func (l *Ledger) Recounted(ctx context.Context, orgID string, since time.Time) error {
	if err := l.store.Unmark(ctx, orgID, since); err != nil {
		return err
	}
	return l.writers.RemoveDead(ctx, orgID, since)
}

// Package directory keeps every organization's metadata, and every
// session ended while its access tokens may still be alive, in memory, so
// that lookups by name, token checks and logins cost no database read at
// any number of tenants, and keeps it current across instances that share
// one database.
//
// How it stays current: every operation that may write an organization's
// metadata first takes the organization's lease and then appends an entry
// naming it to the change log, a collection numbered 1, 2, 3… without gaps
// (each number is taken by an insert under a unique key). The directory
// tails the log by number — when nothing changed, one lookup by _id of the
// next number — and re-reads every organization it names, keeps re-reading
// it while its lease exists and lookups could see a change (the operation
// may still be writing), then once more after the lease is gone. A refresh that started at t therefore reflects every write
// committed before t, at a database cost proportional to the changes, not
// to the organizations. Its own process's writes are applied at once
// (Refresh). A directory whose last complete refresh started longer ago than
// its staleness bound answers errs.Unavailable instead of stale data; one
// that may have missed log entries (it was cut off for longer than half the
// log's retention) reloads everything.
//
// Ended sessions travel the same way: ending a session appends an entry
// naming it to the change log, after the session is marked ended in the
// database; a refresh adds it to the directory's set of ended sessions, and
// a full load reads the set from the sessions. An ended session matters
// only until its last access token has expired (JWT_TTL after its end), so
// the set holds only the sessions ended within that long.
package directory

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/org"
)

// Source is what the directory reads: the metadata, the change log, the
// leases and the ended sessions.
type Source struct {
	Metadata Metadata
	Changes  ChangeLog
	Leases   Leases
	Sessions Sessions
}

// Sessions are the sessions as stored.
type Sessions interface {
	// Ended returns the ends of the sessions whose access tokens are
	// refused after t.
	Ended(ctx context.Context, t time.Time) ([]org.SessionEnd, error)
}

// Metadata is the organizations as stored.
type Metadata interface {
	// All lists every organization.
	All(ctx context.Context) ([]*org.Organization, error)
	// ByID returns errs.NotFound when there is none.
	ByID(ctx context.Context, id string) (*org.Organization, error)
	// ByIDs returns the organizations of ids that exist, in one query.
	ByIDs(ctx context.Context, ids []string) ([]*org.Organization, error)
}

// ChangeLog is the log of metadata writes and ended sessions the
// directory tails.
type ChangeLog interface {
	// After returns entries seq+1, seq+2, … in order, at most limit,
	// stopping before the first it does not find.
	After(ctx context.Context, seq int64, limit int) ([]org.Change, error)
	// Head returns the number of the last entry, 0 when there is none.
	Head(ctx context.Context) (int64, error)
	// Prune removes entries written before before, except the last.
	Prune(ctx context.Context, before time.Time) error
}

// Leases are the leases of running operations.
type Leases interface {
	// Leased lists the organizations that have a lease.
	Leased(ctx context.Context) ([]string, error)
}

// Config tunes a Directory. Zero values take the defaults.
type Config struct {
	// Staleness bounds how old the directory may be: other instances'
	// writes show within it, and past it reads fail with errs.Unavailable.
	Staleness time.Duration
	// Every is how often it refreshes: a quarter of Staleness unless set.
	Every time.Duration
	// Retention is how long change-log entries are kept. A directory cut off
	// from the log for half of it reloads everything instead of tailing. It
	// must stay well above the appenders' head hint (15 s): 2 minutes unless
	// set. Short, because on FerretDB a lookup in the log reads through it.
	Retention time.Duration
	// Lingering is how long a lease may be seen before its organization is
	// reported as unsettled (an operation that crashed holding it).
	Lingering time.Duration
}

func (c Config) withDefaults() Config {
	if c.Staleness <= 0 {
		c.Staleness = time.Second
	}
	if c.Every <= 0 {
		c.Every = max(c.Staleness/4, 5*time.Millisecond)
	}
	if c.Retention <= 0 {
		c.Retention = 2 * time.Minute
	}
	if c.Lingering <= 0 {
		c.Lingering = 30 * time.Second
	}
	return c
}

// maxPerCycle caps the log entries one refresh reads; more than that at
// once (organizations written behind the service's back in bulk, a long
// pause) is cheaper to follow by reading everything again.
const maxPerCycle = 1024

// batchReads is how many watched organizations make one query for all of
// them cheaper than one lookup each (on FerretDB either reads through the
// collection; the first at SQLite's speed).
const batchReads = 20

// tombstoneTTL is how long a removed organization's read generation is kept,
// so that a slower read of it that started before its removal is not applied.
const tombstoneTTL = 10 * time.Minute

// entry is one organization as last read, or a tombstone when o is nil.
type entry struct {
	o   *org.Organization
	gen uint64    // the read it came from; a read that started earlier is not applied over it
	at  time.Time // when a tombstone was made
}

// Directory is an in-memory copy of every organization's metadata; it
// implements org.Directory.
type Directory struct {
	src Source
	cfg Config
	log *slog.Logger
	gen atomic.Uint64 // numbers reads, in the order they start

	mu      sync.RWMutex
	byID    map[string]*entry
	bySlug  index
	byEmail index
	fresh   time.Time            // start of the last complete refresh
	watch   map[string]time.Time // organizations whose lease was last seen held → since when
	ended   map[string]time.Time // ended sessions → until when their access tokens are refused

	// The tail's own state: only Load and the Run loop touch it.
	seq       int64     // last log entry read
	loadGen   uint64    // the read generation of the last full load
	loaded    bool      // a full load has completed
	lastTail  time.Time // start of the last refresh that reached the head
	lastPrune time.Time
	failing   bool // the last refresh failed (logged once)
	kick      chan struct{}
	reloads   atomic.Int64
}

var _ org.Directory = (*Directory)(nil)

// New returns an empty Directory over src; Load fills it.
func New(src Source, cfg Config, log *slog.Logger) *Directory {
	return &Directory{
		src: src, cfg: cfg.withDefaults(), log: log,
		byID: map[string]*entry{}, bySlug: index{}, byEmail: index{},
		watch: map[string]time.Time{}, ended: map[string]time.Time{}, kick: make(chan struct{}, 1),
	}
}

func stale() error {
	return errs.Errorf(errs.Unavailable, "the organization directory is out of date; retry shortly")
}

// BySlug returns the organization whose slug is slug.
// Errors: errs.NotFound, errs.Unavailable (older than the bound).
func (d *Directory) BySlug(slug string) (*org.Organization, error) {
	return d.lookup(func() *org.Organization { return d.bySlug.find(d.byID, slug, hasSlug) })
}

// ByEmail returns the organization one of whose members (or whose admin)
// has the (lowercased) email.
// Errors: errs.NotFound, errs.Unavailable.
func (d *Directory) ByEmail(email string) (*org.Organization, error) {
	return d.lookup(func() *org.Organization { return d.byEmail.find(d.byID, email, hasEmail) })
}

// ByID returns the organization with id. Errors: errs.NotFound, errs.Unavailable.
func (d *Directory) ByID(id string) (*org.Organization, error) {
	return d.lookup(func() *org.Organization {
		if e := d.byID[id]; e != nil {
			return e.o
		}
		return nil
	})
}

func (d *Directory) lookup(find func() *org.Organization) (*org.Organization, error) {
	d.mu.RLock()
	if time.Since(d.fresh) > d.cfg.Staleness {
		d.mu.RUnlock()
		return nil, stale()
	}
	o := find()
	d.mu.RUnlock()
	if o == nil {
		return nil, errs.Errorf(errs.NotFound, "organization not found")
	}
	// The members are shared, not copied: a token check of an organization
	// of 1,000 members would copy 120 KB. The directory never changes a
	// stored organization (a refresh replaces it), and callers treat
	// Members as read-only; clipped, an append copies.
	c := *o
	c.Members = slices.Clip(o.Members)
	c.AuditPending = slices.Clip(o.AuditPending)
	if o.Pending != nil { // the intent too: a caller's change must not reach the directory
		p := *o.Pending
		c.Pending = &p
	}
	return &c, nil
}

// All returns every organization the directory holds, as copies (see
// lookup): for the operator's listing, which filters and sorts them in
// memory. Errors: errs.Unavailable (older than the bound).
func (d *Directory) All() ([]*org.Organization, error) {
	d.mu.RLock()
	if time.Since(d.fresh) > d.cfg.Staleness {
		d.mu.RUnlock()
		return nil, stale()
	}
	out := make([]*org.Organization, 0, len(d.byID))
	for _, e := range d.byID {
		if e.o != nil {
			c := *e.o
			c.Members = slices.Clip(e.o.Members)
			c.AuditPending = slices.Clip(e.o.AuditPending)
			out = append(out, &c)
		}
	}
	d.mu.RUnlock()
	return out, nil
}

// SessionEnded reports whether session id has ended (and its access
// tokens may still be alive): a map lookup, no database read.
// Errors: errs.Unavailable (older than the bound).
func (d *Directory) SessionEnded(id string) (bool, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if time.Since(d.fresh) > d.cfg.Staleness {
		return false, stale()
	}
	until, ok := d.ended[id]
	return ok && time.Now().Before(until), nil
}

// EndSession applies an end this process made (or finishes), so that it
// refuses the session's tokens from its next request on.
func (d *Directory) EndSession(e org.SessionEnd) {
	d.mu.Lock()
	d.endSession(e)
	d.mu.Unlock()
}

// endSession adds e to the ended sessions. d.mu is held.
func (d *Directory) endSession(e org.SessionEnd) {
	if e.Until.After(d.ended[e.SessionID]) {
		d.ended[e.SessionID] = e.Until
	}
}

// EndedSessions returns how many ended sessions the directory holds.
func (d *Directory) EndedSessions() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return len(d.ended)
}

// Unsettled lists the organizations with an unfinished operation.
func (d *Directory) Unsettled() []string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	var ids []string
	for id, e := range d.byID {
		if e.o != nil && !e.o.Settled() {
			ids = append(ids, id)
		}
	}
	return ids
}

// Lingering lists the settled (or removed) organizations whose lease has
// been seen for longer than Config.Lingering.
func (d *Directory) Lingering() []string {
	d.mu.RLock()
	defer d.mu.RUnlock()
	var ids []string
	for id, since := range d.watch {
		if e := d.byID[id]; time.Since(since) > d.cfg.Lingering && (e == nil || e.o == nil || e.o.Settled()) {
			ids = append(ids, id)
		}
	}
	return ids
}

// Len returns how many organizations the directory holds.
func (d *Directory) Len() int {
	d.mu.RLock()
	defer d.mu.RUnlock()
	n := 0
	for _, e := range d.byID {
		if e.o != nil {
			n++
		}
	}
	return n
}

// Age returns how long ago the last complete refresh started.
func (d *Directory) Age() time.Duration {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return time.Since(d.fresh)
}

// Reloads returns how many full loads the directory has done.
func (d *Directory) Reloads() int64 { return d.reloads.Load() }

// Refresh re-reads one organization: this process has just written it,
// or a token names what another instance wrote a moment ago. A failed read
// leaves the entry to the tail, which re-reads the organization while its
// lease is held. Errors: errs.Unavailable.
func (d *Directory) Refresh(ctx context.Context, id string) error {
	err := d.read(ctx, id)
	if err != nil {
		d.log.Debug("directory refresh", slog.String("org_id", id), slog.Any("error", err))
	}
	return err
}

// Kick asks for a refresh now rather than at the next tick (a change
// stream's event, where the server has them).
func (d *Directory) Kick() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// read re-reads id and applies what it finds.
func (d *Directory) read(ctx context.Context, id string) error {
	g := d.gen.Add(1)
	o, err := d.src.Metadata.ByID(ctx, id)
	if err != nil && !errs.Is(err, errs.NotFound) {
		return err
	}
	d.mu.Lock()
	d.apply(id, o, g)
	d.mu.Unlock()
	return nil
}

// apply records o (nil: removed) as read by read g, unless a read that
// started later was applied already. d.mu is held.
func (d *Directory) apply(id string, o *org.Organization, g uint64) {
	old := d.byID[id]
	if old != nil && old.gen > g || old == nil && g < d.loadGen {
		return // a newer read was applied, or a full load since found it gone
	}
	if old != nil && old.o != nil {
		d.bySlug.remove(old.o.Slug, id)
		for _, e := range emailsOf(old.o) {
			d.byEmail.remove(e, id)
		}
	}
	if o == nil {
		d.byID[id] = &entry{gen: g, at: time.Now()}
		return
	}
	d.byID[id] = &entry{o: o, gen: g}
	d.bySlug.add(o.Slug, id)
	for _, e := range emailsOf(o) {
		d.byEmail.add(e, id)
	}
}

// Load reads every organization, the log's head and the leases, and
// replaces the directory's content. Writes announced up to the head either
// finished before the leases were read, and show in the organizations read
// after, or still hold their lease, and are watched until it is gone.
func (d *Directory) Load(ctx context.Context) error {
	start := time.Now()
	head, err := d.src.Changes.Head(ctx)
	if err != nil {
		return err
	}
	leased, err := d.src.Leases.Leased(ctx)
	if err != nil {
		return err
	}
	g := d.gen.Add(1)
	all, err := d.src.Metadata.All(ctx)
	if err != nil {
		return err
	}
	// After the head: a session ended since is either in what this reads
	// or in an entry after the head (it is marked ended before its entry).
	ended, err := d.src.Sessions.Ended(ctx, start)
	if err != nil {
		return err
	}
	d.mu.Lock()
	for _, e := range ended { // added to, never replaced: ends only accumulate
		d.endSession(e)
	}
	d.loadGen = g
	byID := make(map[string]*entry, len(all))
	for id, e := range d.byID {
		if e.gen > g { // read while loading: newer than the load
			byID[id] = e
		}
	}
	for _, o := range all {
		if byID[o.ID] == nil {
			byID[o.ID] = &entry{o: o, gen: g}
		}
	}
	d.byID, d.bySlug, d.byEmail = byID, make(index, len(byID)), make(index, len(byID))
	for id, e := range byID {
		if e.o != nil {
			d.bySlug.add(e.o.Slug, id)
			for _, email := range emailsOf(e.o) {
				d.byEmail.add(email, id)
			}
		}
	}
	for _, id := range leased {
		if _, ok := d.watch[id]; !ok {
			d.watch[id] = start
		}
	}
	d.fresh = start
	d.mu.Unlock()
	d.seq, d.loaded, d.lastTail = head, true, start
	d.reloads.Add(1)
	d.log.Info("organization directory loaded", slog.Int("organizations", len(all)),
		slog.Int("ended_sessions", len(ended)), slog.Int64("change_seq", head), slog.Duration("took", time.Since(start)))
	return nil
}

// Run keeps the directory current until ctx is done: a refresh every
// Config.Every, or at once when kicked, and a pruning of the change log
// every quarter of its retention.
func (d *Directory) Run(ctx context.Context) {
	t := time.NewTicker(d.cfg.Every)
	defer t.Stop()
	// A refresh is never cut off half-way: on FerretDB a query cancelled
	// mid-flight closes its connection, and with it the cursors that other
	// requests opened on that connection. The client's timeout bounds it.
	stop, ctx := ctx, context.WithoutCancel(ctx)
	for {
		select {
		case <-stop.Done():
			return
		case <-t.C:
		case <-d.kick:
		}
		err := d.refresh(ctx)
		switch {
		case err != nil && !d.failing:
			d.failing = true
			d.log.Warn("organization directory cannot refresh; lookups fail once it is older than its bound",
				slog.Duration("bound", d.cfg.Staleness), slog.Any("error", err))
		case err == nil && d.failing:
			d.failing = false
			d.log.Info("organization directory refreshing again")
		}
		if err == nil && time.Since(d.lastPrune) > d.cfg.Retention/4 {
			d.lastPrune = time.Now()
			if err := d.src.Changes.Prune(ctx, time.Now().Add(-d.cfg.Retention)); err != nil {
				d.log.Warn("prune change log", slog.Any("error", err))
			}
			d.dropTombstones()
		}
	}
}

// refresh brings the directory up to the log's head: read the new entries,
// then re-read every organization they name or whose lease was held.
func (d *Directory) refresh(ctx context.Context) error {
	start := time.Now()
	if !d.loaded || start.Sub(d.lastTail) > d.cfg.Retention/2 {
		// Entries we have not read may have been pruned: a gap. Start over.
		return d.Load(ctx)
	}
	changes, err := d.src.Changes.After(ctx, d.seq, maxPerCycle)
	if err != nil {
		return err
	}
	if len(changes) == maxPerCycle {
		return d.Load(ctx)
	}
	d.seq += int64(len(changes))
	var ids []string
	d.mu.Lock()
	for _, c := range changes {
		if c.Ended != nil { // an ended session: no metadata to read
			d.endSession(*c.Ended)
			continue
		}
		ids = append(ids, c.OrgID)
		if _, ok := d.watch[c.OrgID]; !ok {
			d.watch[c.OrgID] = start
		}
	}
	d.mu.Unlock()
	if err := d.readWatched(ctx, ids); err != nil {
		return err
	}
	d.lastTail = start
	d.mu.Lock()
	d.fresh = start
	d.mu.Unlock()
	return nil
}

// readWatched re-reads the watched organizations that may have changed in a
// way a lookup would see, and stops watching those whose lease is gone: the
// leases are read first, so the read that follows sees every write a
// finished operation made. fresh are the ones the new entries named, read
// at least once. While its lease is held, an organization last seen absent,
// provisioning or deleting is not read again until the lease is gone: it is
// invisible to lookups either way, and the operation that holds it (a create,
// a delete) makes it visible, or removes it, only at its end. An active one
// — a rename in progress, a change of credentials — is read every refresh.
func (d *Directory) readWatched(ctx context.Context, fresh []string) error {
	d.mu.RLock()
	n := len(d.watch)
	d.mu.RUnlock()
	if n == 0 {
		return nil
	}
	leased, err := d.src.Leases.Leased(ctx)
	if err != nil {
		return err
	}
	held := make(map[string]bool, len(leased))
	for _, id := range leased {
		held[id] = true
	}
	read := map[string]bool{}
	for _, id := range fresh {
		read[id] = true
	}
	d.mu.RLock()
	for id := range d.watch {
		if e := d.byID[id]; !held[id] || e != nil && e.o != nil && e.o.State == org.StateActive {
			read[id] = true
		}
	}
	d.mu.RUnlock()
	ids := make([]string, 0, len(read))
	for id := range read {
		ids = append(ids, id)
	}
	if len(ids) < batchReads {
		for _, id := range ids {
			if err := d.read(ctx, id); err != nil {
				return err
			}
		}
	} else {
		g := d.gen.Add(1)
		orgs, err := d.src.Metadata.ByIDs(ctx, ids)
		if err != nil {
			return err
		}
		found := make(map[string]*org.Organization, len(orgs))
		for _, o := range orgs {
			found[o.ID] = o
		}
		d.mu.Lock()
		for _, id := range ids {
			d.apply(id, found[id], g)
		}
		d.mu.Unlock()
	}
	d.mu.Lock()
	for _, id := range ids {
		if !held[id] {
			delete(d.watch, id)
		}
	}
	d.mu.Unlock()
	return nil
}

// dropTombstones forgets removed organizations after tombstoneTTL, and
// ended sessions once their last access token has expired: what bounds
// the ended sessions held to those ended within JWT_TTL (and a minute).
func (d *Directory) dropTombstones() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for id, e := range d.byID {
		if e.o == nil && time.Since(e.at) > tombstoneTTL {
			delete(d.byID, id)
		}
	}
	now := time.Now()
	for id, until := range d.ended {
		if !now.Before(until) {
			delete(d.ended, id)
		}
	}
}

func hasSlug(o *org.Organization, slug string) bool { return o.Slug == slug }

func hasEmail(o *org.Organization, email string) bool {
	return slices.Contains(emailsOf(o), email)
}

// emailsOf lists the emails that find o: its admin's and every member's.
func emailsOf(o *org.Organization) []string {
	out := []string{o.AdminEmail}
	for _, m := range org.MembersOf(o) {
		if m.Email != o.AdminEmail {
			out = append(out, m.Email)
		}
	}
	return out
}

// index maps a slug or an email to the organizations that have it. Slugs and
// emails are unique in the database, but entries are re-read one at a time,
// so for a moment two may carry the same one (one renamed away, another
// renamed onto it); a lookup then takes the one updated last.
type index map[string][]string

func (x index) add(key, id string) {
	for _, have := range x[key] {
		if have == id {
			return
		}
	}
	x[key] = append(x[key], id)
}

func (x index) remove(key, id string) {
	ids := x[key]
	for i, have := range ids {
		if have == id {
			ids = append(ids[:i], ids[i+1:]...)
			break
		}
	}
	if len(ids) == 0 {
		delete(x, key)
	} else {
		x[key] = ids
	}
}

func (x index) find(byID map[string]*entry, key string, has func(*org.Organization, string) bool) *org.Organization {
	var best *org.Organization
	for _, id := range x[key] {
		e := byID[id]
		if e == nil || e.o == nil || !has(e.o, key) {
			continue
		}
		if best == nil || e.o.UpdatedAt.After(best.UpdatedAt) {
			best = e.o
		}
	}
	return best
}

// Watcher pushes the change log's new entries as they are written: a
// MongoDB change stream. Watch returns an error wrapping
// errors.ErrUnsupported where the server has none.
type Watcher interface {
	Watch(ctx context.Context, notify func()) error
}

// Follow refreshes the directory as soon as w reports a new entry, instead
// of at the next tick, until ctx is done; a broken stream is reopened. It
// returns at once where the server has no change streams. The stream only
// makes refreshes sooner: what the directory holds still comes from reading
// the log by number, so a missed or repeated event can never make it wrong.
func (d *Directory) Follow(ctx context.Context, w Watcher) {
	for ctx.Err() == nil {
		err := w.Watch(ctx, d.Kick)
		if errors.Is(err, errors.ErrUnsupported) {
			d.log.Info("no change streams on this server; the directory polls the change log",
				slog.Duration("every", d.cfg.Every))
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

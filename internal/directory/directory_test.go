package directory_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgservice/orgservice/internal/app"
	"github.com/orgservice/orgservice/internal/app/apptest"
	"github.com/orgservice/orgservice/internal/auth"
	"github.com/orgservice/orgservice/internal/dbtest"
	"github.com/orgservice/orgservice/internal/directory"
	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/mongostore"
	"github.com/orgservice/orgservice/internal/org"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

const (
	password   = "correct-horse"
	testSecret = "test-secret-key-0123456789abcdef0123456789"
)

// newStore returns the stores over db with their indexes, as each process has them.
func newStore(t *testing.T, db *mongo.Database) *mongostore.Stores {
	t.Helper()
	s := mongostore.Open(db, 0)
	require.NoError(t, s.EnsureIndexes(context.Background()))
	return s
}

// sourceOf is what a directory reads of s.
func sourceOf(s *mongostore.Stores) directory.Source {
	return directory.Source{Metadata: s.Organizations, Changes: s.Changes, Leases: s.Leases, Sessions: s.Sessions}
}

// orgStores is what the organization service writes of s.
func orgStores(s *mongostore.Stores) org.Stores {
	return org.Stores{
		Metadata: s.Organizations, Names: s.Names, Leases: s.Leases,
		Changes: s.Changes, Tenants: s.Tenants, Audit: s.Audit,
	}
}

// startDirectory is directory.Start with a Run loop that the test's
// cleanup stops and waits for, so that no refresh (or pruning) of one test
// reaches the next one's database of the same name (-count=n).
func startDirectory(t *testing.T, src directory.Source, cfg directory.Config) *directory.Directory {
	t.Helper()
	d := directory.New(src, cfg, quiet)
	require.NoError(t, d.Load(context.Background()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return d
}

// newService returns an organization service alone over stores and dir,
// whose detached operations are waited for at cleanup: for tests that give
// the service a directory or stores of their own making (counting, failing).
// A whole process of the service is newInstance.
func newService(t *testing.T, stores org.Stores, dir org.Directory, cfg org.Config) *org.Service {
	t.Helper()
	s := org.NewService(org.Deps{Stores: stores, Directory: dir, Hasher: auth.Bcrypt{Cost: 4}}, cfg, quiet)
	t.Cleanup(func() { _ = s.Wait(context.Background()) })
	return s
}

// runReconciler runs svc's reconciler until the test ends.
func runReconciler(t *testing.T, svc *org.Service, every, fullEvery time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); svc.RunReconciler(ctx, every, fullEvery) }()
	t.Cleanup(func() { cancel(); <-done })
}

// instance is one process of the service on a shared database, built by
// the constructor main uses: its own stores, its own directory tailing the
// log, the services reading it and every background loop.
type instance struct {
	app   *app.App
	store *mongostore.Stores
	dir   *directory.Directory
	orgs  *org.Service
	auth  *auth.Service
}

func newInstance(t *testing.T, db *mongo.Database, dcfg directory.Config, ocfg org.Config) *instance {
	t.Helper()
	c := apptest.Config()
	c.Directory, c.Org = dcfg, ocfg
	a := apptest.Start(t, db, c, quiet)
	return &instance{app: a, store: a.Stores(), dir: a.Directory(), orgs: a.Orgs(), auth: a.Auth()}
}

// stop ends the instance as a killed process ends: nothing of it runs after.
func (in *instance) stop() { _ = in.app.Close(context.Background()) }

func (in *instance) create(t *testing.T, name, email string) *org.Organization {
	t.Helper()
	o, err := in.orgs.Create(context.Background(), org.CreateInput{Name: name, Email: email, Password: password})
	require.NoError(t, err)
	return o
}

func strp(s string) *string { return &s }

// principal is the first owner of organization id, read from the database.
func principal(t *testing.T, store *mongostore.Stores, id string) org.Principal {
	t.Helper()
	o, err := store.Organizations.ByID(context.Background(), id)
	require.NoError(t, err)
	m := org.MemberByEmail(o, o.AdminEmail)
	require.NotNil(t, m)
	return org.Principal{OrgID: id, Email: m.Email, OrgName: o.Name, MemberID: m.ID, Role: m.Role}
}

// absent lists lookups that must find nothing: removed organizations,
// names and emails given up.
type absent struct{ ids, slugs, emails []string }

// lookup is one of the directory's three ways to find an organization.
type lookup struct {
	by   string
	find func(d *directory.Directory, o *org.Organization) (*org.Organization, error)
}

var lookups = []lookup{
	{"id", func(d *directory.Directory, o *org.Organization) (*org.Organization, error) { return d.ByID(o.ID) }},
	{"slug", func(d *directory.Directory, o *org.Organization) (*org.Organization, error) { return d.BySlug(o.Slug) }},
	{"email", byEmail},
}

func byEmail(d *directory.Directory, o *org.Organization) (*org.Organization, error) {
	return d.ByEmail(o.AdminEmail)
}

// assertMirrors checks that dir holds exactly what the database holds:
// every organization, found by id, slug and email, equal field by field to
// its metadata, no other, and none of gone.
func assertMirrors(c assert.TestingT, store *mongostore.Stores, dir *directory.Directory, gone absent) {
	all, err := store.Organizations.All(context.Background())
	if !assert.NoError(c, err) {
		return
	}
	assert.Equal(c, len(all), dir.Len(), "organizations in the directory")
	for _, want := range all {
		for _, l := range lookups {
			got, err := l.find(dir, want)
			if assert.NoError(c, err, "%s by %s", want.Slug, l.by) {
				assert.Equal(c, want, got, "%s by %s", want.Slug, l.by)
			}
		}
	}
	notFound := func(what string, err error) {
		assert.True(c, errs.Is(err, errs.NotFound), "%s must not be found, got %v", what, err)
	}
	for _, id := range gone.ids {
		_, err := dir.ByID(id)
		notFound("id "+id, err)
	}
	for _, s := range gone.slugs {
		_, err := dir.BySlug(s)
		notFound("slug "+s, err)
	}
	for _, e := range gone.emails {
		_, err := dir.ByEmail(e)
		notFound("email "+e, err)
	}
}

// collect gathers a check's failures so that it can be polled.
type collect struct{ errs []string }

func (c *collect) Errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
}

// within polls check until it passes, and fails t unless it passed on a
// check that started within bound of since (when the awaited write
// returned). It returns how long after since that check started.
func within(t *testing.T, since time.Time, bound time.Duration, what string, check func(assert.TestingT)) time.Duration {
	t.Helper()
	for {
		at := time.Since(since)
		c := &collect{}
		check(c)
		switch {
		case len(c.errs) == 0 && at <= bound:
			return at
		case len(c.errs) == 0 || time.Since(since) > bound:
			t.Fatalf("%s: not within %v of the write (last check started after %v):\n%s",
				what, bound, at, strings.Join(c.errs, "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// flaky is the real stores as a directory's Source with an outage switch:
// while down, every read fails as an unreachable database does. It injects
// faults over the real server; it mocks nothing.
type flaky struct {
	*mongostore.Stores
	down     atomic.Bool
	failures atomic.Int64 // calls failed by the switch
}

var (
	_ directory.Metadata  = (*flaky)(nil)
	_ directory.ChangeLog = (*flaky)(nil)
	_ directory.Leases    = (*flaky)(nil)
	_ directory.Sessions  = (*flaky)(nil)
)

// source is f as the directory's Source.
func (f *flaky) source() directory.Source {
	return directory.Source{Metadata: f, Changes: f, Leases: f, Sessions: f}
}

func (f *flaky) fail() bool {
	if !f.down.Load() {
		return false
	}
	f.failures.Add(1)
	return true
}

func outage() error {
	return errs.Wrap(errs.Unavailable, errors.New("injected outage"), "the database is unavailable")
}

func (f *flaky) All(ctx context.Context) ([]*org.Organization, error) {
	if f.fail() {
		return nil, outage()
	}
	return f.Organizations.All(ctx)
}

func (f *flaky) ByID(ctx context.Context, id string) (*org.Organization, error) {
	if f.fail() {
		return nil, outage()
	}
	return f.Organizations.ByID(ctx, id)
}

func (f *flaky) ByIDs(ctx context.Context, ids []string) ([]*org.Organization, error) {
	if f.fail() {
		return nil, outage()
	}
	return f.Organizations.ByIDs(ctx, ids)
}

func (f *flaky) After(ctx context.Context, seq int64, limit int) ([]org.Change, error) {
	if f.fail() {
		return nil, outage()
	}
	return f.Changes.After(ctx, seq, limit)
}

func (f *flaky) Head(ctx context.Context) (int64, error) {
	if f.fail() {
		return 0, outage()
	}
	return f.Changes.Head(ctx)
}

func (f *flaky) Prune(ctx context.Context, before time.Time) error {
	if f.fail() {
		return outage()
	}
	return f.Changes.Prune(ctx, before)
}

func (f *flaky) Ended(ctx context.Context, t time.Time) ([]org.SessionEnd, error) {
	if f.fail() {
		return nil, outage()
	}
	return f.Sessions.Ended(ctx, t)
}

func (f *flaky) Leased(ctx context.Context) ([]string, error) {
	if f.fail() {
		return nil, outage()
	}
	return f.Leases.Leased(ctx)
}

// passCounter is a directory that counts the reconciler's periodic passes:
// each calls Lingering once.
type passCounter struct {
	*directory.Directory
	passes atomic.Int64
}

func (p *passCounter) Lingering() []string {
	p.passes.Add(1)
	return p.Directory.Lingering()
}

// waitPasses waits until p has counted n more passes.
func (p *passCounter) waitPasses(t *testing.T, n int64) {
	t.Helper()
	target := p.passes.Load() + n
	require.Eventually(t, func() bool { return p.passes.Load() >= target }, 20*time.Second, 10*time.Millisecond,
		"reconciler passes")
}

func TestOwnWritesAreExactAtOnce(t *testing.T) {
	ctx := context.Background()
	db := dbtest.New(t)
	store := newStore(t, db)
	// No Run loop and an hour's bound: nothing but the service's own
	// refreshes can bring this directory up to date, so a write it does not
	// refresh shows here however fast the tail would be.
	dir := directory.New(sourceOf(store), directory.Config{Staleness: time.Hour}, quiet)
	require.NoError(t, dir.Load(ctx))
	svc := newService(t, orgStores(store), dir, org.Config{})

	var id string
	steps := []struct {
		name  string
		write func() error
		gone  absent // besides the organization itself after a delete
		ends  bool   // the organization is gone afterwards
	}{
		{name: "create", write: func() error {
			o, err := svc.Create(ctx, org.CreateInput{Name: "Acme Corp", Email: "admin@acme.com", Password: password})
			if err == nil {
				id = o.ID
			}
			return err
		}},
		{name: "rename", write: func() error {
			_, err := svc.Update(ctx, principal(t, store, id), org.UpdateInput{Name: strp("Globex Inc")})
			return err
		}, gone: absent{slugs: []string{"acme_corp"}}},
		{name: "email change", write: func() error {
			_, err := svc.Update(ctx, principal(t, store, id), org.UpdateInput{Email: strp("Boss@Globex.com"), CurrentPassword: strp(password)})
			return err
		}, gone: absent{emails: []string{"admin@acme.com"}}},
		{name: "password change", write: func() error {
			_, err := svc.Update(ctx, principal(t, store, id), org.UpdateInput{Password: strp("a-new-password"), CurrentPassword: strp(password)})
			return err
		}},
		{name: "rename with email change", write: func() error {
			_, err := svc.Update(ctx, principal(t, store, id), org.UpdateInput{Name: strp("Initech"), Email: strp("ceo@initech.com"), CurrentPassword: strp("a-new-password")})
			return err
		}, gone: absent{slugs: []string{"acme_corp", "globex_inc"}, emails: []string{"boss@globex.com"}}},
		{name: "delete", write: func() error {
			return svc.Delete(ctx, principal(t, store, id), "Initech")
		}, gone: absent{slugs: []string{"initech"}, emails: []string{"ceo@initech.com"}}, ends: true},
	}
	var prev *org.Organization
	for _, st := range steps {
		require.NoError(t, st.write(), st.name)
		// At once: no sleep, no polling.
		want, err := store.Organizations.ByID(ctx, id)
		if st.ends {
			require.True(t, errs.Is(err, errs.NotFound), "%s: the database still has it: %v", st.name, err)
			for _, l := range lookups {
				_, err := l.find(dir, prev)
				assert.True(t, errs.Is(err, errs.NotFound), "%s: by %s: %v", st.name, l.by, err)
			}
		} else {
			require.NoError(t, err, st.name)
			require.NotEqual(t, prev, want, "%s changed nothing in the database", st.name)
			for _, l := range lookups {
				got, err := l.find(dir, want)
				if assert.NoError(t, err, "%s: by %s", st.name, l.by) {
					assert.Equal(t, want, got, "%s: by %s", st.name, l.by)
				}
			}
		}
		assertMirrors(t, store, dir, st.gone)
		prev = want
	}
}

func TestOtherInstancesFollowWithinTheBound(t *testing.T) {
	const staleness = 300 * time.Millisecond
	const bound = staleness + 500*time.Millisecond
	ctx := context.Background()
	db := dbtest.New(t)
	a := newInstance(t, db, directory.Config{Staleness: staleness}, org.Config{})
	b := newInstance(t, db, directory.Config{Staleness: staleness}, org.Config{})

	// follows checks that b's directory equals the database within the
	// bound of a write on a that returned at since, by a tail, not a reload.
	follows := func(what string, since time.Time, gone absent) {
		t.Helper()
		lag := within(t, since, bound, "B follows A's "+what, func(c assert.TestingT) {
			assertMirrors(c, b.store, b.dir, gone)
		})
		t.Logf("B followed %s after %v", what, lag)
		require.EqualValues(t, 1, b.dir.Reloads(), "B reloaded everything instead of tailing the log")
	}
	// authenticates checks, within the bound, b's answer to token: nil, or
	// the kind of its error.
	authenticates := func(what string, since time.Time, token string, want *errs.Kind) {
		t.Helper()
		within(t, since, bound, "B's auth after A's "+what, func(c assert.TestingT) {
			_, err := b.auth.Authenticate(ctx, token)
			if want == nil {
				assert.NoError(c, err)
			} else {
				assert.True(c, errs.Is(err, *want), "want kind %d, got %v", *want, err)
			}
		})
	}
	unauthorized := errs.Unauthorized
	login := func(email, pw string) string {
		t.Helper()
		tok, err := a.auth.Login(ctx, email, pw)
		require.NoError(t, err)
		return tok.AccessToken
	}

	acme := a.create(t, "Acme Corp", "admin@acme.com")
	follows("create", time.Now(), absent{})
	token1 := login("admin@acme.com", password)
	authenticates("login", time.Now(), token1, nil)

	initech := a.create(t, "Initech", "admin@initech.com")
	follows("second create", time.Now(), absent{})

	_, err := a.orgs.Update(ctx, principal(t, a.store, acme.ID), org.UpdateInput{Name: strp("Globex Inc")})
	require.NoError(t, err)
	follows("rename", time.Now(), absent{slugs: []string{"acme_corp"}})
	_, err = b.auth.Authenticate(ctx, token1)
	require.NoError(t, err, "a rename alone revokes nothing")

	_, err = a.orgs.Update(ctx, principal(t, a.store, initech.ID), org.UpdateInput{Email: strp("ceo@initech.com"), CurrentPassword: strp(password)})
	require.NoError(t, err)
	follows("email change", time.Now(), absent{emails: []string{"admin@initech.com"}})

	_, err = a.orgs.Update(ctx, principal(t, a.store, acme.ID), org.UpdateInput{Password: strp("a-new-password"), CurrentPassword: strp(password)})
	require.NoError(t, err)
	done := time.Now()
	authenticates("password change", done, token1, &unauthorized)
	follows("password change", done, absent{slugs: []string{"acme_corp"}})
	token2 := login("admin@acme.com", "a-new-password")
	authenticates("second login", time.Now(), token2, nil)

	require.NoError(t, a.orgs.Delete(ctx, principal(t, a.store, initech.ID), "Initech"))
	follows("delete", time.Now(), absent{ids: []string{initech.ID}, slugs: []string{"initech"}, emails: []string{"ceo@initech.com"}})

	require.NoError(t, a.orgs.Delete(ctx, principal(t, a.store, acme.ID), "Globex Inc"))
	done = time.Now()
	authenticates("delete of the token's organization", done, token2, &unauthorized)
	follows("second delete", done, absent{ids: []string{acme.ID, initech.ID}, slugs: []string{"globex_inc"}, emails: []string{"admin@acme.com"}})
	_, err = b.store.Organizations.ByID(ctx, acme.ID)
	require.True(t, errs.Is(err, errs.NotFound), "the database still has it: %v", err)
}

func TestStaleMeansUnavailable(t *testing.T) {
	const staleness = 600 * time.Millisecond
	ctx := context.Background()
	db := dbtest.New(t)
	w := newInstance(t, db, directory.Config{}, org.Config{})
	acme := w.create(t, "Acme Corp", "admin@acme.com")

	src := &flaky{Stores: newStore(t, db)}
	dir := startDirectory(t, src.source(), directory.Config{Staleness: staleness})
	// Known and unknown keys alike: a directory past its bound must not
	// claim that an organization does not exist either.
	probes := []struct {
		name  string
		find  func() (*org.Organization, error)
		found bool
	}{
		{"by id", func() (*org.Organization, error) { return dir.ByID(acme.ID) }, true},
		{"by slug", func() (*org.Organization, error) { return dir.BySlug(acme.Slug) }, true},
		{"by email", func() (*org.Organization, error) { return dir.ByEmail(acme.AdminEmail) }, true},
		{"unknown slug", func() (*org.Organization, error) { return dir.BySlug("nobody") }, false},
	}
	answers := func(c assert.TestingT, name string, found bool, o *org.Organization, err error) {
		if found {
			if assert.NoError(c, err, name) {
				assert.Equal(c, acme.ID, o.ID, name)
			}
		} else {
			assert.True(c, errs.Is(err, errs.NotFound), "%s: %v", name, err)
		}
	}
	for _, p := range probes {
		o, err := p.find()
		answers(t, p.name, p.found, o, err)
	}

	src.down.Store(true)
	// Once one refresh has failed, none that started before the outage is
	// still running, and the directory's age only grows.
	require.Eventually(t, func() bool { return src.failures.Load() > 0 }, 5*time.Second, time.Millisecond)
	// Written while the outage lasts, by an instance that can reach the database.
	_, err := w.orgs.Update(ctx, principal(t, w.store, acme.ID), org.UpdateInput{Name: strp("Acme Two")})
	require.NoError(t, err)

	answered, refused := 0, 0
	deadline := time.Now().Add(staleness + 10*time.Second)
	for refused < len(probes) && time.Now().Before(deadline) {
		refused = 0
		for _, p := range probes {
			before := dir.Age()
			o, err := p.find()
			after := dir.Age()
			if err != nil && errs.Is(err, errs.Unavailable) {
				require.Greater(t, after, staleness, "%s refused while the directory was within its bound", p.name)
				refused++
				continue
			}
			require.LessOrEqual(t, before, staleness, "%s answered from a directory past its bound", p.name)
			answers(t, p.name, p.found, o, err)
			answered++
		}
		time.Sleep(5 * time.Millisecond)
	}
	require.Equal(t, len(probes), refused, "lookups must fail with errs.Unavailable once the directory is past its bound")
	t.Logf("during the outage: %d lookups answered, then refused at age %v", answered, dir.Age())

	src.down.Store(false)
	recovered := time.Now()
	lag := within(t, recovered, staleness/4+500*time.Millisecond, "answers after recovery", func(c assert.TestingT) {
		assertMirrors(c, w.store, dir, absent{slugs: []string{"acme_corp"}})
		o, err := dir.BySlug("nobody")
		answers(c, "unknown slug", false, o, err)
	})
	t.Logf("answering again %v after recovery", lag)
	assert.EqualValues(t, 1, dir.Reloads(), "an outage shorter than half the retention needs no reload")
}

func TestGapIsAnsweredByFullReload(t *testing.T) {
	const retention, staleness = 400 * time.Millisecond, 100 * time.Millisecond
	ctx := context.Background()
	db := dbtest.New(t)
	w := newInstance(t, db, directory.Config{}, org.Config{})
	acme := w.create(t, "Acme Corp", "admin@acme.com")
	initech := w.create(t, "Initech", "admin@initech.com")

	src := &flaky{Stores: newStore(t, db)}
	dir := startDirectory(t, src.source(), directory.Config{Retention: retention, Staleness: staleness})
	within(t, time.Now(), time.Second, "current before the outage", func(c assert.TestingT) {
		assertMirrors(c, w.store, dir, absent{})
	})
	require.EqualValues(t, 1, dir.Reloads())
	h0, err := w.store.Changes.Head(ctx)
	require.NoError(t, err)

	src.down.Store(true)
	down := time.Now()
	_, err = w.orgs.Update(ctx, principal(t, w.store, acme.ID), org.UpdateInput{Name: strp("Globex Inc")})
	require.NoError(t, err)
	_, err = w.orgs.Update(ctx, principal(t, w.store, initech.ID), org.UpdateInput{Email: strp("ceo@initech.com"), CurrentPassword: strp(password)})
	require.NoError(t, err)
	hooli := w.create(t, "Hooli", "admin@hooli.com")
	require.NoError(t, w.orgs.Delete(ctx, principal(t, w.store, initech.ID), "Initech"))
	require.NoError(t, w.store.Changes.Prune(ctx, time.Now()))

	// The gap is real: the log moved on, and the entries after the last
	// one the directory read are gone.
	head, err := w.store.Changes.Head(ctx)
	require.NoError(t, err)
	require.Greater(t, head, h0+1)
	_, err = w.store.Changes.At(ctx, h0+1)
	require.True(t, errs.Is(err, errs.NotFound), "entry %d must be pruned: %v", h0+1, err)

	if rest := retention/2 + 100*time.Millisecond - time.Since(down); rest > 0 {
		time.Sleep(rest)
	}
	src.down.Store(false)
	within(t, time.Now(), staleness+2*time.Second, "every write after the gap", func(c assert.TestingT) {
		assertMirrors(c, w.store, dir, absent{
			ids:    []string{initech.ID},
			slugs:  []string{"acme_corp", "initech"},
			emails: []string{"admin@initech.com", "ceo@initech.com"},
		})
		o, err := dir.BySlug("hooli")
		if assert.NoError(c, err) {
			assert.Equal(c, hooli.ID, o.ID)
		}
	})
	assert.Greater(t, dir.Reloads(), int64(1), "the gap must be answered by a full reload")
}

func TestChangeLogHasNoGapsUnderConcurrency(t *testing.T) {
	const appenders, each, ids = 3, 40, 8
	const total = appenders * each
	ctx := context.Background()
	db := dbtest.New(t)
	stores := make([]*mongostore.Stores, appenders)
	for i := range stores {
		stores[i] = mongostore.Open(db, 0) // each with a head hint of its own
	}

	want := map[string]int{}
	for i := range appenders {
		for j := range each {
			want[fmt.Sprintf("org-%d-%d", i, j%ids)]++
		}
	}
	start := make(chan struct{})
	failures := make(chan error, total)
	var wg sync.WaitGroup
	for i, s := range stores {
		wg.Go(func() {
			<-start
			for j := range each {
				if err := s.Changes.Append(ctx, fmt.Sprintf("org-%d-%d", i, j%ids)); err != nil {
					failures <- err
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(failures)
	for err := range failures {
		require.NoError(t, err)
	}

	reader := mongostore.Open(db, 0)
	got := map[string]int{}
	for seq := int64(1); seq <= total; seq++ {
		c, err := reader.Changes.At(ctx, seq)
		require.NoError(t, err, "entry %d", seq)
		got[c.OrgID]++
	}
	_, err := reader.Changes.At(ctx, total+1)
	require.True(t, errs.Is(err, errs.NotFound), "entry past the head: %v", err)
	assert.Equal(t, want, got, "every append exactly once")
	head, err := reader.Changes.Head(ctx)
	require.NoError(t, err)
	require.EqualValues(t, total, head)

	// A stale head hint moves on to the next free number, skipping none:
	// x's hint is one behind when it appends again.
	x, y := mongostore.Open(db, 0), mongostore.Open(db, 0)
	for _, a := range []struct {
		s  *mongostore.Stores
		id string
	}{{x, "x-1"}, {y, "y-1"}, {x, "x-2"}} {
		require.NoError(t, a.s.Changes.Append(ctx, a.id))
	}
	for i, id := range []string{"x-1", "y-1", "x-2"} {
		got, err := reader.Changes.At(ctx, total+1+int64(i))
		require.NoError(t, err, "entry %d", total+1+i)
		assert.Equal(t, id, got.OrgID, "entry %d", total+1+i)
	}
	const appended = total + 3
	_, err = reader.Changes.At(ctx, appended+1)
	require.True(t, errs.Is(err, errs.NotFound), "entry past the head: %v", err)

	last, err := reader.Changes.At(ctx, appended)
	require.NoError(t, err)
	require.NoError(t, reader.Changes.Prune(ctx, time.Now()))
	for seq := int64(1); seq < appended; seq++ {
		_, err := reader.Changes.At(ctx, seq)
		require.True(t, errs.Is(err, errs.NotFound), "entry %d must be pruned: %v", seq, err)
	}
	kept, err := reader.Changes.At(ctx, appended)
	require.NoError(t, err, "the last entry is kept")
	assert.Equal(t, last, kept)

	fresh := mongostore.Open(db, 0)
	require.NoError(t, fresh.Changes.Append(ctx, "org-next"))
	next, err := reader.Changes.At(ctx, appended+1)
	require.NoError(t, err, "a fresh store continues after the kept entry")
	assert.Equal(t, "org-next", next.OrgID)
	head, err = reader.Changes.Head(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, appended+1, head)
}

func TestLookupsReturnCopies(t *testing.T) {
	ctx := context.Background()
	db := dbtest.New(t)
	store := newStore(t, db)
	in := newInstance(t, db, directory.Config{}, org.Config{})
	acme := in.create(t, "Acme Corp", "admin@acme.com")
	for _, e := range []string{"bob@acme.com", "carol@acme.com"} { // three members: decoded with room to spare
		_, err := in.orgs.AddMember(ctx, principal(t, store, acme.ID), org.AddMemberInput{Email: e, Password: password, Role: org.RoleMember})
		require.NoError(t, err)
	}
	// An organization with an unfinished rename: its intent is part of what
	// the directory holds.
	require.NoError(t, store.Organizations.Update(ctx, acme.ID, org.Changes{SetPending: true, UpdatedAt: acme.UpdatedAt,
		Pending: &org.Pending{Op: org.OpRename, FromSlug: "acme_corp", ToSlug: "globex_inc", ToName: "Globex Inc",
			Source: "org_acme_corp", Target: "org_globex_inc", StartedAt: acme.UpdatedAt}}))
	dir := directory.New(sourceOf(store), directory.Config{Staleness: time.Hour}, quiet)
	require.NoError(t, dir.Load(ctx))
	want, err := store.Organizations.ByID(ctx, acme.ID)
	require.NoError(t, err)
	require.NotNil(t, want.Pending)

	for _, l := range lookups {
		got, err := l.find(dir, want)
		require.NoError(t, err, l.by)
		got.Name, got.Pending.ToSlug, got.Pending.Copied = "changed", "changed", 42
		// Members are shared, read-only, and clipped: two callers' appends
		// each copy rather than write one backing array.
		assert.Equal(t, len(got.Members), cap(got.Members), l.by)
	}
	assertMirrors(t, store, dir, absent{})
}

func TestLingeringLeaseIsCleared(t *testing.T) {
	const lingering = 200 * time.Millisecond
	cases := []struct {
		name     string
		ttl      time.Duration
		announce bool // appended to the change log, as withLease does before it crashes
		before   bool // left before the directory loads (a previous process's)
		cleared  bool
	}{
		{name: "left before the directory loaded", ttl: 50 * time.Millisecond, before: true, cleared: true},
		{name: "announced then crashed", ttl: 50 * time.Millisecond, announce: true, cleared: true},
		{name: "live operation", ttl: time.Hour, announce: true, cleared: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			db := dbtest.New(t)
			acme := newInstance(t, db, directory.Config{}, org.Config{}).create(t, "Acme Corp", "admin@acme.com")
			store := newStore(t, db)
			leave := func() {
				require.NoError(t, store.Leases.Acquire(ctx, acme.ID, "crashed-op", tc.ttl))
				if tc.announce {
					require.NoError(t, store.Changes.Append(ctx, acme.ID))
				}
			}
			if tc.before {
				leave()
			}
			loading := time.Now()
			dir := &passCounter{Directory: startDirectory(t, sourceOf(store), directory.Config{Staleness: 200 * time.Millisecond, Lingering: lingering})}
			if tc.before && time.Since(loading) < lingering {
				assert.NotContains(t, dir.Directory.Lingering(), acme.ID, "listed before it lingered")
			}
			if !tc.before {
				leave()
			}
			require.Eventually(t, func() bool { return slices.Equal(dir.Directory.Lingering(), []string{acme.ID}) },
				lingering+5*time.Second, 10*time.Millisecond, "the lease must be listed once it lingers")

			svc := newService(t, orgStores(store), dir, org.Config{})
			runReconciler(t, svc, 100*time.Millisecond, time.Hour)
			if tc.cleared {
				require.Eventually(t, func() bool {
					leased, err := store.Leases.Leased(ctx)
					return err == nil && !slices.Contains(leased, acme.ID) && !slices.Contains(dir.Directory.Lingering(), acme.ID)
				}, 10*time.Second, 10*time.Millisecond, "the lease must be cleared and no longer listed")
			} else {
				dir.waitPasses(t, 5)
				var lease struct {
					Owner string `bson:"owner"`
				}
				require.NoError(t, db.Collection("leases").FindOne(ctx, bson.D{{Key: "_id", Value: acme.ID}}).Decode(&lease))
				assert.Equal(t, "crashed-op", lease.Owner, "a live operation's lease is left alone")
			}
			// Clearing a lease writes no metadata.
			now, err := store.Organizations.ByID(ctx, acme.ID)
			require.NoError(t, err)
			assert.Equal(t, acme.UpdatedAt, now.UpdatedAt)
			assert.Equal(t, acme.Slug, now.Slug)
		})
	}
}

// counting is the real metadata and name claims with a count of the calls
// whose number grows with the organizations: the reconciler's full-pass
// reads, and lookups by id (with the ids looked up).
type counting struct {
	org.Metadata
	org.NameClaims
	mu    sync.Mutex
	calls map[string]int
	byID  map[string]int
}

// countingStores returns s with its metadata and claims counted.
func countingStores(s *mongostore.Stores) (*counting, org.Stores) {
	stores := orgStores(s)
	c := &counting{Metadata: stores.Metadata, NameClaims: stores.Names, calls: map[string]int{}, byID: map[string]int{}}
	stores.Metadata, stores.Names = c, c
	return c, stores
}

func (c *counting) count(method string) {
	c.mu.Lock()
	c.calls[method]++
	c.mu.Unlock()
}

func (c *counting) snapshot() (map[string]int, map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	calls, byID := map[string]int{}, map[string]int{}
	for k, v := range c.calls {
		calls[k] = v
	}
	for k, v := range c.byID {
		byID[k] = v
	}
	return calls, byID
}

func (c *counting) All(ctx context.Context) ([]*org.Organization, error) {
	c.count("Orgs")
	return c.Metadata.All(ctx)
}

func (c *counting) Unsettled(ctx context.Context) ([]*org.Organization, error) {
	c.count("Unsettled")
	return c.Metadata.Unsettled(ctx)
}

func (c *counting) List(ctx context.Context) ([]org.NameClaim, error) {
	c.count("Claims")
	return c.NameClaims.List(ctx)
}

func (c *counting) ByID(ctx context.Context, id string) (*org.Organization, error) {
	c.mu.Lock()
	c.calls["OrgByID"]++
	c.byID[id]++
	c.mu.Unlock()
	return c.Metadata.ByID(ctx, id)
}

func TestPeriodicReconcileCostsChanges(t *testing.T) {
	const n = 30
	ctx := context.Background()
	db := dbtest.New(t)
	creator := newInstance(t, db, directory.Config{}, org.Config{})
	created := make([]*org.Organization, n)
	for i := range created {
		created[i] = creator.create(t, fmt.Sprintf("Org %02d", i), fmt.Sprintf("admin%02d@example.com", i))
	}

	store := newStore(t, db)
	cs, counted := countingStores(store)
	dir := &passCounter{Directory: startDirectory(t, sourceOf(store), directory.Config{Staleness: 200 * time.Millisecond})}
	require.Equal(t, n, dir.Len())
	svc := newService(t, counted, dir, org.Config{})
	runReconciler(t, svc, 30*time.Millisecond, time.Hour)

	// The first periodic pass starts once the full one has finished.
	dir.waitPasses(t, 1)
	full, fullByID := cs.snapshot()
	require.Equal(t, 1, full["Orgs"], "the first pass is a full one")
	require.Equal(t, 1, full["Claims"], "the first pass is a full one")
	require.Equal(t, 1, full["Unsettled"], "the first pass is a full one")

	dir.waitPasses(t, 5)
	calls, byID := cs.snapshot()
	assert.Equal(t, full, calls, "periodic passes over %d settled organizations must read nothing", n)
	assert.Equal(t, fullByID, byID)

	// A change: a rename crashed after writing its intent, its lease left
	// to expire. The periodic pass settles it, reading that one only.
	crash := errors.New("injected crash")
	crasher := newInstance(t, db, directory.Config{}, org.Config{LeaseTTL: 300 * time.Millisecond, AfterStep: func(step string) error {
		if step == "rename:intent" {
			return crash
		}
		return nil
	}})
	victim := created[7]
	_, err := crasher.orgs.Update(ctx, principal(t, crasher.store, victim.ID), org.UpdateInput{Name: strp("Renamed Seven")})
	require.ErrorIs(t, err, crash)
	crasher.stop() // it crashed: nothing of it settles the rename
	pending, err := store.Organizations.ByID(ctx, victim.ID)
	require.NoError(t, err)
	require.NotNil(t, pending.Pending, "the crash must leave the rename pending")

	require.Eventually(t, func() bool {
		o, err := store.Organizations.ByID(ctx, victim.ID)
		return err == nil && o.Pending == nil && o.Slug == "renamed_seven"
	}, 15*time.Second, 20*time.Millisecond, "the periodic pass must finish the rename")
	within(t, time.Now(), time.Second, "the reconciler's directory", func(c assert.TestingT) {
		assertMirrors(c, store, dir.Directory, absent{slugs: []string{victim.Slug}})
	})
	calls, byID = cs.snapshot()
	for _, m := range []string{"Orgs", "Claims", "Unsettled"} {
		assert.Equal(t, full[m], calls[m], "%s: no full read to settle one organization", m)
	}
	for id := range byID {
		if fullByID[id] != byID[id] {
			assert.Equal(t, victim.ID, id, "only the changed organization is read")
		}
	}
	assert.Greater(t, byID[victim.ID], fullByID[victim.ID], "the changed organization is read afresh")
}

// A token another instance issued a moment ago works at once on an
// instance whose directory has not followed the write behind it yet — a
// new organization, a new member — because it is younger than the lag: the
// organization is read afresh for it.
func TestYoungTokenFromAnotherInstance(t *testing.T) {
	ctx := context.Background()
	db := dbtest.New(t)
	a := newInstance(t, db, directory.Config{}, org.Config{})
	b := newInstance(t, db, directory.Config{Staleness: time.Hour, Every: time.Hour}, org.Config{}) // follows nothing in this test
	lagging, err := auth.NewService(auth.Deps{Orgs: b.orgs, Recorder: b.orgs, Sessions: auth.Sessions{
		Store: b.store.Sessions, Uses: b.store.RefreshUses, Ends: b.store.SessionEnds, Log: b.store.Changes, Ended: b.dir,
	}}, auth.Config{Secret: []byte(testSecret), Issuer: "orgservice", TTL: time.Hour, BcryptCost: 4, Lag: time.Second})
	require.NoError(t, err)

	o := a.create(t, "Acme Corp", "admin@acme.com")
	tok, err := a.auth.Login(ctx, "admin@acme.com", password)
	require.NoError(t, err)
	_, err = b.auth.Authenticate(ctx, tok.AccessToken)
	require.True(t, errs.Is(err, errs.Unauthorized), "without a lag, b knows only what it followed: %v", err)
	p, err := lagging.Authenticate(ctx, tok.AccessToken)
	require.NoError(t, err)
	assert.Equal(t, o.ID, p.OrgID)

	m, err := a.orgs.AddMember(ctx, principal(t, a.store, o.ID), org.AddMemberInput{Email: "dev@acme.com", Password: password, Role: org.RoleMember})
	require.NoError(t, err)
	mt, err := a.auth.Login(ctx, "dev@acme.com", password)
	require.NoError(t, err)
	_, err = b.auth.Authenticate(ctx, mt.AccessToken)
	require.True(t, errs.Is(err, errs.Unauthorized), "b has not followed the new member: %v", err)
	p, err = lagging.Authenticate(ctx, mt.AccessToken)
	require.NoError(t, err)
	assert.Equal(t, m.ID, p.MemberID)
	assert.Equal(t, org.RoleMember, p.Role)
}

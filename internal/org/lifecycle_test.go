package org_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgservice/orgservice/internal/app"
	"github.com/orgservice/orgservice/internal/app/apptest"
	"github.com/orgservice/orgservice/internal/dbtest"
	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/mongostore"
	"github.com/orgservice/orgservice/internal/org"
)

// errCrash is what the fault-injection seam returns to stop an operation.
var errCrash = errors.New("injected crash")

// crashLease is the lease of a crashed service in these tests: short, so
// the reconciler may take over soon after.
const crashLease = 300 * time.Millisecond

// fixture is one test's database, its stores, and the processes of the
// service a test starts on it.
type fixture struct {
	t       *testing.T
	db      *mongo.Database
	batch   int
	stores  *mongostore.Stores
	procs   []*app.App
	crashed string // the step a crashingAt service crashed after
}

func newFixture(t *testing.T, batch int) *fixture {
	t.Helper()
	db := dbtest.New(t)
	stores := mongostore.Open(db, batch)
	require.NoError(t, stores.EnsureIndexes(context.Background()))
	return &fixture{t: t, db: db, batch: batch, stores: stores}
}

// process starts the whole service over the fixture's database, as one
// process would run it, through the constructor main uses.
func (f *fixture) process(cfg org.Config) *app.App {
	f.t.Helper()
	return f.processWith(cfg, 0)
}

// processWith is process with the reconciler's period (0: the lease TTL).
func (f *fixture) processWith(cfg org.Config, reconcileEvery time.Duration) *app.App {
	f.t.Helper()
	c := apptest.Config()
	c.Org, c.CopyBatchSize, c.ReconcileEvery = cfg, f.batch, reconcileEvery
	// A crashed process's writer registrations expire soon, so that a
	// recovery does not wait long for them.
	c.Documents.WriterTTL = 3 * time.Second
	a := apptest.Start(f.t, f.db, c, nil)
	f.procs = append(f.procs, a)
	return a
}

// service returns the organization service of a new process.
func (f *fixture) service(cfg org.Config) *org.Service {
	return f.process(cfg).Orgs()
}

// crashingAt returns a service whose k-th step (1-based) crashes, and a
// function that tells whether the crash was reached.
func (f *fixture) crashingAt(k int, strategy org.Strategy) (*org.Service, func() bool) {
	a, reached := f.crashingProcess(k, strategy)
	return a.Orgs(), reached
}

// crashingProcess is crashingAt's process.
func (f *fixture) crashingProcess(k int, strategy org.Strategy) (*app.App, func() bool) {
	var n atomic.Int64
	// Its reconciler keeps to its start-up pass: with a lease this short, a
	// renewal late on a loaded machine would let it take the operation over
	// mid-way, and the crash would land in the takeover instead.
	a := f.processWith(org.Config{Strategy: strategy, LeaseTTL: crashLease, AfterStep: func(step string) error {
		if n.Add(1) == int64(k) {
			f.crashed = step
			return errCrash
		}
		return nil
	}}, time.Hour)
	return a, func() bool { return n.Load() >= int64(k) }
}

// stopAll stops every process the test started: a crashed one is gone,
// its loops with it, as a killed process's would be.
func (f *fixture) stopAll() {
	f.t.Helper()
	for _, a := range f.procs {
		_ = a.Close(context.Background())
	}
	f.procs = nil
}

// recover stands in for the next process: every earlier one is gone, and
// after the crashed one's lease expired, a fresh service reconciles
// everything.
func (f *fixture) recover(strategy org.Strategy) *org.Service {
	f.t.Helper()
	f.stopAll()
	time.Sleep(crashLease + 50*time.Millisecond)
	svc := f.service(org.Config{Strategy: strategy, ClaimGrace: time.Millisecond})
	require.NoError(f.t, svc.Reconcile(context.Background()))
	return svc
}

// seed inserts n documents into collection and returns their ids.
func (f *fixture) seed(collection string, n int) []string {
	f.t.Helper()
	docs := make([]any, n)
	ids := make([]string, n)
	for i := range docs {
		id := bson.NewObjectID()
		ids[i] = id.Hex()
		docs[i] = bson.D{{Key: "_id", Value: id}, {Key: "i", Value: i}, {Key: "payload", Value: strings.Repeat("x", 64)}}
	}
	_, err := f.db.Collection(collection).InsertMany(context.Background(), docs)
	require.NoError(f.t, err)
	sort.Strings(ids)
	return ids
}

// ids returns the sorted _ids of a collection.
func (f *fixture) ids(collection string) []string {
	f.t.Helper()
	cur, err := f.db.Collection(collection).Find(context.Background(), bson.D{})
	require.NoError(f.t, err)
	var docs []struct {
		ID bson.ObjectID `bson:"_id"`
	}
	require.NoError(f.t, cur.All(context.Background(), &docs))
	out := make([]string, len(docs))
	for i, d := range docs {
		out[i] = d.ID.Hex()
	}
	sort.Strings(out)
	return out
}

// tenants lists the org_* collections.
func (f *fixture) tenants() []string {
	f.t.Helper()
	names, err := f.stores.Tenants.List(context.Background())
	require.NoError(f.t, err)
	sort.Strings(names)
	return names
}

// actions returns the actions of orgID's audit events, oldest first.
func (f *fixture) actions(orgID string) []string {
	f.t.Helper()
	evs, err := f.stores.Audit.Events(context.Background(), orgID, "", org.MaxAuditLimit)
	require.NoError(f.t, err)
	out := make([]string, len(evs))
	for i, e := range evs {
		out[len(evs)-1-i] = string(e.Action)
	}
	return out
}

// settledInvariants checks what must hold once nothing is pending: every
// organization active with no intent and no pending audit events, each
// owning exactly its collection, with one org.created event; no orphan
// collections, and claims only for live names and emails.
func (f *fixture) settledInvariants() []*org.Organization {
	f.t.Helper()
	ctx := context.Background()
	unsettled, err := f.stores.Organizations.Unsettled(ctx)
	require.NoError(f.t, err)
	require.Empty(f.t, unsettled, "organizations left unsettled")

	cur, err := f.db.Collection(mongostore.OrganizationsCollection).Find(ctx, bson.D{})
	require.NoError(f.t, err)
	var docs []struct {
		ID         bson.ObjectID `bson:"_id"`
		Slug       string        `bson:"slug"`
		Collection string        `bson:"collection_name"`
		Email      string        `bson:"admin_email"`
	}
	require.NoError(f.t, cur.All(ctx, &docs))
	var orgs []*org.Organization
	wantTenants := []string{}
	wantClaims := map[string]string{}
	for _, d := range docs {
		o, err := f.stores.Organizations.ByID(ctx, d.ID.Hex())
		require.NoError(f.t, err)
		orgs = append(orgs, o)
		acts := f.actions(o.ID)
		require.NotEmpty(f.t, acts, "a settled organization has its org.created event")
		assert.Equal(f.t, "org.created", acts[0], "its first event is org.created")
		assert.Equal(f.t, 1, count(acts, "org.created"), "org.created exactly once: %v", acts)
		assert.Equal(f.t, org.CollectionName(d.Slug), d.Collection)
		wantTenants = append(wantTenants, d.Collection)
		wantClaims["slug/"+d.Slug] = d.ID.Hex()
		wantClaims["email/"+d.Email] = d.ID.Hex()
		for _, m := range o.Members {
			wantClaims["email/"+m.Email] = d.ID.Hex()
		}
	}
	sort.Strings(wantTenants)
	assert.Equal(f.t, wantTenants, f.tenants(), "tenant collections must be exactly those the metadata names")

	claims, err := f.stores.Names.List(ctx)
	require.NoError(f.t, err)
	got := map[string]string{}
	for _, c := range claims {
		got[c.Key] = c.OrgID
	}
	assert.Equal(f.t, wantClaims, got, "claims must be exactly the live names and emails")

	heads, err := f.stores.Usage.Heads(ctx)
	require.NoError(f.t, err)
	var counted, live []string
	for id := range heads {
		counted = append(counted, id)
	}
	for _, o := range orgs {
		live = append(live, o.ID)
	}
	sort.Strings(counted)
	sort.Strings(live)
	assert.Equal(f.t, live, counted, "a usage count for exactly the live organizations")
	return orgs
}

func count(actions []string, action string) int {
	n := 0
	for _, a := range actions {
		if a == action {
			n++
		}
	}
	return n
}

func createInput(name, email string) org.CreateInput {
	return org.CreateInput{Name: name, Email: email, Password: "password-1"}
}

func strp(s string) *string { return &s }

// principal is o's first owner, as a token of theirs authenticates.
func principal(o *org.Organization) org.Principal {
	m := org.MemberByEmail(o, o.AdminEmail)
	return org.Principal{OrgID: o.ID, Email: o.AdminEmail, OrgName: o.Name, MemberID: m.ID, Role: m.Role}
}

// forEachCrashPoint runs op crashing at step 1, 2, … until op runs through
// without reaching the crash, each time in a fresh database, and checks
// after recovery with check.
func forEachCrashPoint(t *testing.T, name string, run func(t *testing.T, k int) (reached bool)) {
	for k := 1; k < 200; k++ {
		var reached bool
		t.Run(fmt.Sprintf("%s/crash_after_step_%d", name, k), func(t *testing.T) { reached = run(t, k) })
		if t.Failed() || !reached {
			return
		}
	}
	t.Fatalf("%s: more than 200 steps", name)
}

func TestCreateSurvivesCrashAtEveryStep(t *testing.T) {
	forEachCrashPoint(t, "create", func(t *testing.T, k int) bool {
		f := newFixture(t, 0)
		svc, reached := f.crashingAt(k, org.StrategyAuto)
		_, err := svc.Create(context.Background(), createInput("Acme Corp", "admin@acme.com"))
		if !reached() {
			require.NoError(t, err)
			f.settledInvariants()
			return false
		}
		require.ErrorIs(t, err, errCrash)

		next := f.recover(org.StrategyAuto)
		orgs := f.settledInvariants()
		if f.crashed == "create:active" || f.crashed == "audit:inserted" {
			// Committed by the write that made it active: it stays, and its
			// event is written once, by the crashed create or by recovery.
			require.Len(t, orgs, 1)
			assert.Equal(t, []string{"org.created"}, f.actions(orgs[0].ID))
			_, err := next.Get(context.Background(), "Acme Corp")
			require.NoError(t, err)
			return true
		}
		assert.Empty(t, orgs)
		// An interrupted create is rolled back: the name and email are free
		// again, and whoever takes them starts with an empty collection.
		o, err := next.Create(context.Background(), createInput("ACME corp", "admin@acme.com"))
		require.NoError(t, err, "name must be free after an interrupted create")
		assert.Empty(t, f.ids(o.CollectionName))
		f.settledInvariants()
		return true
	})
}

func TestRenameSurvivesCrashAtEveryStep(t *testing.T) {
	for _, strategy := range []org.Strategy{org.StrategyRename, org.StrategyCopy} {
		forEachCrashPoint(t, string(strategy), func(t *testing.T, k int) bool {
			f := newFixture(t, 40) // several copy batches
			o, err := f.service(org.Config{}).Create(context.Background(), createInput("Acme Corp", "admin@acme.com"))
			require.NoError(t, err)
			want := f.seed(o.CollectionName, 150)

			svc, reached := f.crashingAt(k, strategy)
			p := principal(o)
			p.SessionID = "the-changing-session"
			_, err = svc.Update(context.Background(), p, org.UpdateInput{Name: strp("Globex Inc"), Email: strp("boss@globex.com"), CurrentPassword: strp("password-1")})
			if !reached() {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, errCrash)
				// Reads keep working while the rename is pending.
				got, err := svc.Get(context.Background(), "acme corp")
				if err == nil {
					assert.Equal(t, o.ID, got.ID)
				} else {
					_, err = svc.Get(context.Background(), "globex inc")
					require.NoError(t, err, "the organization must be readable under one of its names")
				}
			}

			next := f.recover(strategy)
			orgs := f.settledInvariants()
			require.Len(t, orgs, 1)
			got := orgs[0]
			assert.Equal(t, want, f.ids(got.CollectionName), "every document exactly once in the one collection")

			// The name it holds is served; the other is free for anyone.
			current, err := next.Get(context.Background(), got.Name)
			require.NoError(t, err)
			assert.Equal(t, o.ID, current.ID)
			other, otherEmail := "Globex Inc", "boss@globex.com"
			if got.Slug == "globex_inc" {
				other, otherEmail = "Acme Corp", "admin@acme.com"
				assert.Equal(t, "boss@globex.com", got.AdminEmail, "email switches with the rename")
				m := org.MemberByEmail(got, "boss@globex.com")
				assert.Equal(t, int64(1), m.TokenVersion, "every earlier token revoked")
				assert.Equal(t, "the-changing-session", m.KeptSession, "the session that made the change goes on, whoever rolled it forward")
				// Rolled forward: its events once each, whoever wrote them.
				assert.Equal(t, []string{"org.created", "org.renamed", "credentials.changed"}, f.actions(o.ID))
			} else {
				assert.Equal(t, []string{"org.created"}, f.actions(o.ID), "a rename given up before its intent records nothing")
			}
			_, err = next.Get(context.Background(), other)
			assert.True(t, errs.Is(err, errs.NotFound), "other name must not resolve: %v", err)
			n, err := next.Create(context.Background(), createInput(other, otherEmail))
			require.NoError(t, err, "the name not held must be free")
			assert.Empty(t, f.ids(n.CollectionName))
			f.settledInvariants()
			return reached()
		})
	}
}

func TestDeleteSurvivesCrashAtEveryStep(t *testing.T) {
	forEachCrashPoint(t, "delete", func(t *testing.T, k int) bool {
		f := newFixture(t, 0)
		live := f.service(org.Config{})
		o, err := live.Create(context.Background(), createInput("Acme Corp", "admin@acme.com"))
		require.NoError(t, err)
		f.seed(o.CollectionName, 50)
		// Several members, an owner among them: every email must be freed.
		emails := []string{"admin@acme.com"}
		for i, r := range []org.Role{org.RoleOwner, org.RoleAdmin, org.RoleMember} {
			m, err := live.AddMember(context.Background(), principal(o), org.AddMemberInput{
				Email: fmt.Sprintf("m%d@acme.com", i), Password: "password-1", Role: r})
			require.NoError(t, err)
			emails = append(emails, m.Email)
		}
		require.Len(t, f.settledInvariants()[0].Members, 4)

		svc, reached := f.crashingAt(k, org.StrategyAuto)
		err = svc.Delete(context.Background(), principal(o), "Acme Corp")
		if !reached() {
			require.NoError(t, err)
		} else {
			require.ErrorIs(t, err, errCrash)
			// Marked deleting: the organization is gone for readers and tokens at once.
			_, err := svc.ByID(context.Background(), o.ID)
			assert.True(t, errs.Is(err, errs.NotFound), "a deleting organization must not authenticate: %v", err)
		}

		next := f.recover(org.StrategyAuto)
		assert.Empty(t, f.settledInvariants(), "an interrupted delete is finished")
		// Its events outlive it, the delete's once.
		assert.Equal(t, []string{"org.created", "member.added", "member.added", "member.added", "org.deleted"}, f.actions(o.ID))
		n, err := next.Create(context.Background(), createInput("acme-corp", "admin@acme.com"))
		require.NoError(t, err, "name and email free after delete")
		assert.Empty(t, f.ids(n.CollectionName), "no inherited data")
		for i, e := range emails[1:] {
			_, err := next.Create(context.Background(), createInput(fmt.Sprintf("Other %d", i), e))
			require.NoError(t, err, "every member's email is free after delete: %s", e)
		}
		return reached()
	})
}

// A leftover collection under the new name (nobody's: its name was not
// claimed) is replaced, never merged into the renamed organization's data.
func TestRenameOntoLeftoverCollectionDoesNotMerge(t *testing.T) {
	for _, strategy := range []org.Strategy{org.StrategyRename, org.StrategyCopy} {
		t.Run(string(strategy), func(t *testing.T) {
			f := newFixture(t, 0)
			svc := f.service(org.Config{Strategy: strategy})
			o, err := svc.Create(context.Background(), createInput("Acme", "admin@acme.com"))
			require.NoError(t, err)
			want := f.seed(o.CollectionName, 30)
			f.seed("org_globex", 5) // a leftover

			_, err = svc.Update(context.Background(), principal(o), org.UpdateInput{Name: strp("Globex")})
			require.NoError(t, err)
			orgs := f.settledInvariants()
			require.Len(t, orgs, 1)
			assert.Equal(t, want, f.ids("org_globex"))
		})
	}
}

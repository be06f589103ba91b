//go:build cluster

package cluster

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgservice/orgservice/internal/apiclient"
)

// dbOrg is an organizations document, as the README's schema gives it.
type dbOrg struct {
	ID         bson.ObjectID `bson:"_id"`
	Name       string        `bson:"organization_name"`
	Slug       string        `bson:"slug"`
	Collection string        `bson:"collection_name"`
	Email      string        `bson:"admin_email"`
	State      string        `bson:"state"`
	Pending    bson.Raw      `bson:"pending"`
	Members    []struct {
		ID    string `bson:"id"`
		Email string `bson:"email"`
	} `bson:"members"`
	CreatedAt time.Time `bson:"created_at"`
	UpdatedAt time.Time `bson:"updated_at"`
}

// dbState is what the database holds, read straight through the driver.
type dbState struct {
	orgs    []dbOrg
	claims  map[string]string // name and email claims: key → org id
	tenants []string          // org_* collections, sorted
}

func (e *env) readDB(t *testing.T) dbState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var s dbState
	cur, err := e.db.Collection("organizations").Find(ctx, bson.D{})
	require.NoError(t, err)
	require.NoError(t, cur.All(ctx, &s.orgs))

	cur, err = e.db.Collection("claims").Find(ctx, bson.D{})
	require.NoError(t, err)
	var claims []struct {
		Key   string `bson:"_id"`
		OrgID string `bson:"org_id"`
	}
	require.NoError(t, cur.All(ctx, &claims))
	s.claims = map[string]string{}
	for _, c := range claims {
		// Only the name and email claims: other keys (a shared store's, say)
		// are not this invariant's business.
		if strings.HasPrefix(c.Key, "slug/") || strings.HasPrefix(c.Key, "email/") {
			s.claims[c.Key] = c.OrgID
		}
	}

	names, err := e.db.ListCollectionNames(ctx, bson.D{})
	require.NoError(t, err)
	for _, n := range names {
		if strings.HasPrefix(n, "org_") {
			s.tenants = append(s.tenants, n)
		}
	}
	slices.Sort(s.tenants)
	return s
}

// settledProblems lists what breaks the invariants of the fault-injection
// tests (internal/org/lifecycle_test.go, test/crash): every organization
// active with no intent and owning exactly the collection of its slug, no
// other org_* collection, and claims exactly the live names and emails
// (the admin's, and every member's).
func (s dbState) settledProblems() []string {
	var out []string
	wantTenants := []string{}
	wantClaims := map[string]string{}
	for _, o := range s.orgs {
		if o.State != "active" || o.Pending != nil {
			out = append(out, fmt.Sprintf("organization %s (%s) is %s with intent %v", o.ID.Hex(), o.Name, o.State, o.Pending))
		}
		if o.Collection != "org_"+o.Slug || o.Slug != slug(o.Name) {
			out = append(out, fmt.Sprintf("organization %s: name %q, slug %q, collection %q", o.ID.Hex(), o.Name, o.Slug, o.Collection))
		}
		wantTenants = append(wantTenants, o.Collection)
		wantClaims["slug/"+o.Slug] = o.ID.Hex()
		wantClaims["email/"+o.Email] = o.ID.Hex()
		for _, m := range o.Members {
			wantClaims["email/"+m.Email] = o.ID.Hex()
		}
	}
	slices.Sort(wantTenants)
	if !slices.Equal(wantTenants, s.tenants) {
		out = append(out, fmt.Sprintf("tenant collections %v, the metadata names %v", s.tenants, wantTenants))
	}
	for k, id := range wantClaims {
		if s.claims[k] != id {
			out = append(out, fmt.Sprintf("claim %s held by %q, want %s", k, s.claims[k], id))
		}
	}
	for k, id := range s.claims {
		if _, ok := wantClaims[k]; !ok {
			out = append(out, fmt.Sprintf("claim %s held by %s, which no organization has", k, id))
		}
	}
	return out
}

// invariants waits (bounded: the reconciler frees stale claims after
// 2×LEASE_TTL, on a pass every LEASE_TTL) for the database to settle, then
// checks it against the invariants and against the model of what the
// traffic was answered: every create answered 201 is there, every delete
// answered 204 is gone, every rename, email change answered 200 shows.
func (e *env) invariants(t *testing.T) {
	deadline := time.Now().Add(4*leaseTTL + 10*time.Second)
	var s dbState
	for {
		s = e.readDB(t)
		if len(s.settledProblems()) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	for _, p := range s.settledProblems() {
		t.Error(p)
	}

	inDB := map[string]dbOrg{}
	for _, o := range s.orgs {
		inDB[o.ID.Hex()] = o
	}
	live := e.m.live()
	assert.Len(t, s.orgs, len(live), "organizations in the database, against the creates answered 201 less the deletes answered 204")
	for _, o := range live {
		d, ok := inDB[o.id]
		if !assert.True(t, ok, "organization %s (%q) was answered 201 and not deleted, but is not in the database", o.id, o.name) {
			continue
		}
		assert.Equal(t, o.name, d.Name, "organization %s: name", o.id)
		assert.Equal(t, o.email, d.Email, "organization %s: email", o.id)
	}
	for _, o := range e.m.all() {
		if _, ok := inDB[o.id]; o.deleted && ok {
			t.Errorf("organization %s (%q) was deleted (204) but is in the database", o.id, o.name)
		}
	}
	t.Logf("%d organizations, %d tenant collections, %d name and email claims", len(s.orgs), len(s.tenants), len(s.claims))
}

// agree waits the staleness bound, then asks every instance for every
// organization the database holds, by its name and by another spelling of
// it, for every name no organization holds, and with every token the
// traffic minted: each instance answers exactly what the database says.
func (e *env) agree(t *testing.T) {
	time.Sleep(bound())
	s := e.readDB(t)
	liveBySlug := map[string]string{}
	for _, o := range s.orgs {
		liveBySlug[o.Slug] = o.ID.Hex()
	}
	// A token of each live organization's owner, minted now: a GET with it
	// answers all of the organization, anonymous ones what anyone sees.
	owners := map[string]string{}
	for _, o := range e.m.all() {
		if o.deleted {
			continue
		}
		if o.id == e.limitOrg.id { // its email's window is spent by the burst, whose logins got tokens
			owners[o.id] = e.limitToken
			continue
		}
		if a := e.c.login(e.inst(), o.email, o.password); a.Status == http.StatusOK {
			owners[o.id] = accessToken(a)
		}
	}
	var tasks []func()
	var mu sync.Mutex
	checked := 0
	for inst := range instances {
		for _, o := range s.orgs {
			token, ok := owners[o.ID.Hex()]
			if !ok {
				t.Errorf("organization %q (%s) is in the database, but its owner could not log in", o.Name, o.ID.Hex())
			}
			for _, name := range []string{o.Name, strings.ToUpper(o.Slug)} {
				tasks = append(tasks, func() {
					a := e.c.getAs(inst, name, token)
					got, err := decodeOrg(a)
					want := apiclient.Organization{ID: o.ID.Hex(), Name: o.Name, Slug: o.Slug, CollectionName: o.Collection,
						AdminEmail: o.Email, CreatedAt: o.CreatedAt.UTC(), UpdatedAt: o.UpdatedAt.UTC()}
					if a.Status != http.StatusOK || err != nil || got.ID != want.ID || got.Name != want.Name || got.Slug != want.Slug ||
						got.CollectionName != want.CollectionName || got.AdminEmail != want.AdminEmail ||
						!got.CreatedAt.Equal(want.CreatedAt) || !got.UpdatedAt.Equal(want.UpdatedAt) {
						t.Errorf("GET %q with its owner's token on instance %d: %s; the database holds %+v", name, inst, a, want)
					}
					a = e.c.get(inst, name)
					got, err = decodeOrg(a)
					if a.Status != http.StatusOK || err != nil || got != (apiclient.Organization{Name: want.Name, Slug: want.Slug,
						CollectionName: want.CollectionName, CreatedAt: got.CreatedAt}) || !got.CreatedAt.Equal(want.CreatedAt) {
						t.Errorf("anonymous GET %q on instance %d: %s; the database holds %+v", name, inst, a, want)
					}
					mu.Lock()
					checked++
					mu.Unlock()
				})
			}
		}
		for _, name := range e.m.knownNames() {
			if _, ok := liveBySlug[name]; ok {
				continue
			}
			tasks = append(tasks, func() {
				a := e.c.get(inst, name)
				assert.Equal(t, http.StatusNotFound, a.Status, "GET %q, held by no organization, on instance %d: %s", name, inst, a)
			})
		}
		for _, o := range e.m.all() {
			if o.token == "" {
				continue
			}
			want := http.StatusUnauthorized
			if tokenExpected(o, liveBySlug) {
				want = http.StatusBadRequest // accepted, then refused for want of a name
			}
			tasks = append(tasks, func() {
				a := e.c.probe(inst, o.token)
				assert.Equal(t, want, a.Status, "token of %q (minted as %q; deleted %v, credentials changed %v) on instance %d: %s",
					o.name, o.tokenName, o.deleted, o.revoked, inst, a)
			})
		}
	}
	parallel(workers, tasks)
	t.Logf("%d GETs of live organizations, with a token and without, matched the database on every instance", checked)
}

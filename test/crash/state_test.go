//go:build crash

package crash

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgservice/orgservice/internal/mongostore"
)

// metaDoc is an organizations document: the fields the tests read,
// straight through the driver, as the README's schema gives them.
type metaDoc struct {
	ID           bson.ObjectID `bson:"_id"`
	Name         string        `bson:"organization_name"`
	Slug         string        `bson:"slug"`
	Collection   string        `bson:"collection_name"`
	State        string        `bson:"state"`
	Pending      bson.Raw      `bson:"pending"`
	AuditPending []bson.Raw    `bson:"audit_pending"`
	Members      []memberDoc   `bson:"members"`
}

type memberDoc struct {
	ID    string `bson:"id"`
	Email string `bson:"email"`
	Role  string `bson:"role"`
}

// settled: active, no intent, no audit events waiting to be inserted.
func (m *metaDoc) settled() bool {
	return m.State == "active" && m.Pending == nil && len(m.AuditPending) == 0
}

func (m *metaDoc) byEmail(email string) *memberDoc {
	for i := range m.Members {
		if m.Members[i].Email == email {
			return &m.Members[i]
		}
	}
	return nil
}

func (m *metaDoc) byID(id string) *memberDoc {
	for i := range m.Members {
		if m.Members[i].ID == id {
			return &m.Members[i]
		}
	}
	return nil
}

// claimKeys are the claims a settled organization uses: its name and every
// member's email.
func (m *metaDoc) claimKeys() []string {
	keys := []string{"slug/" + m.Slug}
	for _, mb := range m.Members {
		keys = append(keys, "email/"+mb.Email)
	}
	return keys
}

func dbCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

// readOrg returns organization id's metadata, nil when there is none.
func readOrg(t *testing.T, db *mongo.Database, id string) *metaDoc {
	t.Helper()
	oid, err := bson.ObjectIDFromHex(id)
	require.NoError(t, err)
	ctx, cancel := dbCtx()
	defer cancel()
	var m metaDoc
	err = db.Collection(mongostore.OrganizationsCollection).FindOne(ctx, bson.D{{Key: "_id", Value: oid}}).Decode(&m)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil
	}
	require.NoError(t, err)
	return &m
}

func readOrgs(t *testing.T, db *mongo.Database) []metaDoc {
	t.Helper()
	ctx, cancel := dbCtx()
	defer cancel()
	cur, err := db.Collection(mongostore.OrganizationsCollection).Find(ctx, bson.D{})
	require.NoError(t, err)
	var out []metaDoc
	require.NoError(t, cur.All(ctx, &out))
	return out
}

// readClaims returns every name and email claim: key → the holder's id.
func readClaims(t *testing.T, db *mongo.Database) map[string]string {
	t.Helper()
	ctx, cancel := dbCtx()
	defer cancel()
	cur, err := db.Collection("claims").Find(ctx, bson.D{})
	require.NoError(t, err)
	var cs []struct {
		Key   string `bson:"_id"`
		OrgID string `bson:"org_id"`
	}
	require.NoError(t, cur.All(ctx, &cs))
	out := map[string]string{}
	for _, c := range cs {
		if strings.HasPrefix(c.Key, "slug/") || strings.HasPrefix(c.Key, "email/") {
			out[c.Key] = c.OrgID
		}
	}
	return out
}

// tenants returns the org_* collections, sorted.
func tenants(t *testing.T, db *mongo.Database) []string {
	t.Helper()
	ctx, cancel := dbCtx()
	defer cancel()
	names, err := db.ListCollectionNames(ctx, bson.D{})
	require.NoError(t, err)
	out := []string{}
	for _, n := range names {
		if strings.HasPrefix(n, "org_") {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// waitSettled waits until every organization is settled (one being
// deleted settles by disappearing) and returns them.
func waitSettled(t *testing.T, db *mongo.Database) []metaDoc {
	t.Helper()
	var orgs []metaDoc
	require.Eventually(t, func() bool {
		orgs = readOrgs(t, db)
		for i := range orgs {
			if !orgs[i].settled() {
				return false
			}
		}
		return true
	}, 3*time.Minute, 200*time.Millisecond, "every organization settles")
	return orgs
}

// checkStore checks what every settled store holds: exactly one tenant
// collection per organization, the one its metadata names; each of an
// organization's claims held by it. When exact, no claim beyond those
// either — stale claims a kill left behind are freed only by a claim
// attempt or a reconciler pass, so a test asks for exactness once it has
// proved them free.
func checkStore(t *testing.T, db *mongo.Database, exact bool) {
	t.Helper()
	orgs := readOrgs(t, db)
	want := []string{}
	wantClaims := map[string]string{}
	for _, o := range orgs {
		assert.Equal(t, "org_"+o.Slug, o.Collection, "organization %s", o.Name)
		want = append(want, o.Collection)
		for _, k := range o.claimKeys() {
			wantClaims[k] = o.ID.Hex()
		}
	}
	slices.Sort(want)
	assert.Equal(t, want, tenants(t, db), "tenant collections: exactly those the metadata names")
	claims := readClaims(t, db)
	for k, id := range wantClaims {
		assert.Equal(t, id, claims[k], "claim %s", k)
	}
	if exact {
		for k, id := range claims {
			if _, ok := wantClaims[k]; !ok {
				t.Errorf("claim %s held by %s, which no organization uses", k, id)
			}
		}
	}
}

// change is an audited change the test knows was committed: what the audit
// log must record for it, exactly once.
type change struct {
	action, target string // target: the organization's or the member's id
	details        map[string]string
}

func (c change) String() string {
	keys := make([]string, 0, len(c.details))
	for k := range c.details {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", c.action, c.target)
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%s", k, c.details[k])
	}
	return b.String()
}

// ledger holds, for each organization, the changes committed to it.
type ledger map[string][]change

// add records a committed change; kv are the details, key then value.
func (l ledger) add(orgID, action, target string, kv ...string) {
	d := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		d[kv[i]] = kv[i+1]
	}
	l[orgID] = append(l[orgID], change{action: action, target: target, details: d})
}

// auditEvent is an audit document, read straight through the driver.
type auditEvent struct {
	ID     string `bson:"_id"`
	OrgID  string `bson:"org_id"`
	Action string `bson:"action"`
	Target struct {
		Type string `bson:"type"`
		ID   string `bson:"id"`
	} `bson:"target"`
	Details map[string]string `bson:"details"`
}

// readEvents returns every audit event of orgID.
func readEvents(t *testing.T, db *mongo.Database, orgID string) []auditEvent {
	t.Helper()
	ctx, cancel := dbCtx()
	defer cancel()
	cur, err := db.Collection(mongostore.AuditCollection).Find(ctx, bson.D{{Key: "org_id", Value: orgID}})
	require.NoError(t, err)
	var evs []auditEvent
	require.NoError(t, cur.All(ctx, &evs))
	return evs
}

var auditID = regexp.MustCompile(`^[0-9a-f]{24}/[0-9]{19}-[0-9a-f]{8}$`)

// checkAudit: the audit log of orgID, logins aside, records each change of
// the ledger exactly once, and nothing else — no change that did not
// commit, none twice.
func (l ledger) checkAudit(t *testing.T, db *mongo.Database, orgID string) bool {
	t.Helper()
	var got []string
	for _, e := range readEvents(t, db, orgID) {
		if strings.HasPrefix(e.Action, "login.") {
			continue
		}
		assert.Regexp(t, auditID, e.ID, "audit _id")
		assert.True(t, strings.HasPrefix(e.ID, orgID+"/"), "audit _id %s of organization %s", e.ID, orgID)
		wantType := "member"
		if strings.HasPrefix(e.Action, "org.") {
			wantType = "organization"
		}
		assert.Equal(t, wantType, e.Target.Type, "event %s %s", e.ID, e.Action)
		got = append(got, change{action: e.Action, target: e.Target.ID, details: e.Details}.String())
	}
	var want []string
	for _, c := range l[orgID] {
		want = append(want, c.String())
	}
	slices.Sort(got)
	slices.Sort(want)
	return assert.Equal(t, want, got, "audit events of organization %s (logins aside): each committed change exactly once", orgID)
}

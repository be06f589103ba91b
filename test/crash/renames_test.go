//go:build crash

package crash

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgservice/orgservice/internal/apiclient"
)

// TestSIGKILLDuringRenames kills the service at random moments of copy
// renames of an organization of four members holding 100,000 documents,
// while documents are written through the API.
func TestSIGKILLDuringRenames(t *testing.T) {
	rng := newRand(t)
	r := newRig(t)
	db := r.db
	led := ledger{}

	body := r.do(apiclient.CreateOrg("Crash Test 0", "crash@example.com", password), http.StatusCreated)
	orgID := str(body["id"])
	led.add(orgID, "org.created", orgID, "slug", "crash_test_0")
	body = r.do(apiclient.Login("crash@example.com", password), http.StatusOK)
	token := str(body["access_token"])
	// Members whose emails the renames must keep claimed, as a client adds them.
	for _, role := range []string{"admin", "member", "owner"} {
		m := r.do(apiclient.AddMember(token, fmt.Sprintf("crash-%s@example.com", role), password, role), http.StatusCreated)
		led.add(orgID, "member.added", str(m["id"]), "role", role)
	}

	start := time.Now()
	seedDocs(t, db.Collection("org_crash_test_0"), *docs)
	t.Logf("seeded %d documents in %s", *docs, time.Since(start).Round(time.Millisecond))
	api := newAPIDocs()
	for i := range 200 {
		api.post(r, token, fmt.Sprintf("before-%03d", i))
	}
	require.Len(t, api.confirmed, 200, "documents written through the API")

	// A rename that runs to the end gives the scale for choosing kill moments.
	start = time.Now()
	status, body := r.call(apiclient.UpdateOrg(token, apiclient.OrgUpdate{Name: "Crash Test 1"}))
	require.Equal(t, http.StatusOK, status, "%v", body)
	full := time.Since(start)
	t.Logf("an uninterrupted copy rename of %d documents takes %s", *docs, full.Round(time.Millisecond))
	led.add(orgID, "org.renamed", orgID, renamed(0, 1)...)
	waitSettled(t, db)
	checkInvariants(t, r, orgID, "crash_test_1", *docs, api, token, led)

	current := 1
	for round := 1; round <= *rounds; round++ {
		next := current + 1
		// Writers keep writing documents through the API during the rename
		// and its kill: every one answered 201 must survive.
		stopWriters := make(chan struct{})
		writersDone := make(chan struct{})
		go func() {
			defer close(writersDone)
			for i := 0; ; i++ {
				select {
				case <-stopWriters:
					return
				default:
				}
				api.post(r, token, fmt.Sprintf("round%d-%05d", round, i))
				time.Sleep(20 * time.Millisecond)
			}
		}()
		time.Sleep(200 * time.Millisecond) // some land before the rename starts, some race it
		go r.call(apiclient.UpdateOrg(token, apiclient.OrgUpdate{Name: fmt.Sprintf("Crash Test %d", next)}))
		after := time.Duration(rng.Int64N(int64(full)))
		time.Sleep(after)
		r.svc.Kill()
		close(stopWriters)
		<-writersDone
		t.Logf("round %d: killed %s into the rename to crash_test_%d", round, after.Round(time.Millisecond), next)

		var again time.Duration
		if rng.IntN(2) == 0 { // sometimes kill the recovery too
			again = 2*time.Second + time.Duration(rng.Int64N(int64(full)))
		}
		r.restart(again)
		if again > 0 {
			t.Logf("round %d: killed the recovering service %s after restart", round, again.Round(time.Millisecond))
		}
		orgs := waitSettled(t, db)
		require.Len(t, orgs, 1, "organizations")
		switch slug := orgs[0].Slug; slug {
		case fmt.Sprintf("crash_test_%d", next):
			// The rename committed: its event, once.
			led.add(orgID, "org.renamed", orgID, renamed(current, next)...)
			current = next
		case fmt.Sprintf("crash_test_%d", current):
		default:
			t.Fatalf("round %d: organization ended at %q", round, slug)
		}
		slug := fmt.Sprintf("crash_test_%d", current)
		checkInvariants(t, r, orgID, slug, *docs, api, token, led)
		t.Logf("round %d: settled at %s, all %d documents present once, and all %d written through the API; claims and audit log match",
			round, slug, *docs, len(api.confirmed))
	}
}

// renamed is the details of the org.renamed event of a rename from
// "Crash Test <from>" to "Crash Test <to>".
func renamed(from, to int) []string {
	return []string{
		"from", fmt.Sprintf("Crash Test %d", from), "to", fmt.Sprintf("Crash Test %d", to),
		"from_slug", fmt.Sprintf("crash_test_%d", from), "to_slug", fmt.Sprintf("crash_test_%d", to),
	}
}

func seedDocs(t *testing.T, coll *mongo.Collection, n int) {
	t.Helper()
	const batch = 5000
	for i := 0; i < n; i += batch {
		docs := make([]any, 0, batch)
		for j := i; j < i+batch && j < n; j++ {
			docs = append(docs, bson.D{{Key: "_id", Value: j}, {Key: "name", Value: fmt.Sprintf("doc-%d", j)}, {Key: "v", Value: j * 7}})
		}
		_, err := coll.InsertMany(context.Background(), docs)
		require.NoError(t, err)
	}
}

// checkInvariants: one organization, settled at slug with its four
// members, exactly one tenant collection — the one its metadata names —
// holding every document exactly once, GET by the current name 200, the
// claims exactly its name and its members' emails, and its audit log
// exactly the ledger's changes.
func checkInvariants(t *testing.T, r *rig, orgID, slug string, n int, api *apiDocs, token string, led ledger) {
	t.Helper()
	ctx := context.Background()
	meta := readOrg(t, r.db, orgID)
	require.NotNil(t, meta, "organization %s", orgID)
	require.Equal(t, slug, meta.Slug)
	require.Equal(t, "org_"+slug, meta.Collection)
	require.Len(t, meta.Members, 4, "members")
	require.Equal(t, []string{meta.Collection}, tenants(t, r.db), "exactly one tenant collection")
	checkStore(t, r.db, true)
	require.True(t, led.checkAudit(t, r.db, orgID))

	coll := r.db.Collection(meta.Collection)
	count, err := coll.CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	// A write whose answer a kill cut off may or may not have happened.
	require.GreaterOrEqual(t, count, int64(n+len(api.confirmed)), "document count")
	require.LessOrEqual(t, count, int64(n+len(api.confirmed)+len(api.unanswered)), "document count")
	api.check(t, r, token)
	// _id is unique in a collection, so n documents with _ids in [0, n) are each of them exactly once.
	inRange, err := coll.CountDocuments(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: 0}, {Key: "$lt", Value: n}}}})
	require.NoError(t, err)
	require.EqualValues(t, n, inRange, "every seeded _id")

	status, body := r.call(apiclient.GetOrg(meta.Name))
	require.Equal(t, http.StatusOK, status, "%v", body)
}

// apiDocs are the documents written through the API: those answered 201,
// and those whose answer never came (the service was killed).
type apiDocs struct {
	confirmed  map[string]string // id → the body sent
	unanswered map[string]bool
}

func newAPIDocs() *apiDocs {
	return &apiDocs{confirmed: map[string]string{}, unanswered: map[string]bool{}}
}

// post writes one document; refusals while a rename is pending (409) are expected.
func (a *apiDocs) post(r *rig, token, id string) {
	body := fmt.Sprintf(`{"id":%q,"n":%d,"s":"survives every crash"}`, id, len(id))
	status, resp := r.call(apiclient.CreateDocument(token, []byte(body)))
	switch status {
	case http.StatusCreated:
		a.confirmed[id] = body
	case 0:
		a.unanswered[id] = true
	case http.StatusConflict, http.StatusServiceUnavailable:
	default:
		r.t.Errorf("write %s: %d %v", id, status, resp)
	}
}

// check reads every confirmed document back through the API.
func (a *apiDocs) check(t *testing.T, r *rig, token string) {
	t.Helper()
	for id, body := range a.confirmed {
		status, got := r.call(apiclient.GetDocument(token, id))
		require.Equal(t, http.StatusOK, status, "document %s, answered 201, must be readable: %v", id, got)
		var want map[string]any
		require.NoError(t, json.Unmarshal([]byte(body), &want))
		delete(want, "id")
		require.Equal(t, want, got["data"], "document %s", id)
		require.EqualValues(t, 1, got["version"], "document %s", id)
	}
}

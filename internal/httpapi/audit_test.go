package httpapi_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgservice/orgservice/internal/mongostore"
)

const auditURL = "/api/v1/org/audit"

// testIP is the client address of every request httptest makes.
const testIP = "192.0.2.1"

// event is an audit event as the API shows it and, with its organization,
// as the audit collection stores it (under _id "<org_id>/<id>").
type event struct {
	ID        string            `json:"id" bson:"_id"`
	OrgID     string            `json:"-" bson:"org_id"`
	Time      time.Time         `json:"time" bson:"time"`
	Actor     eventActor        `json:"actor" bson:"actor"`
	Action    string            `json:"action" bson:"action"`
	Target    eventTarget       `json:"target" bson:"target"`
	Details   map[string]string `json:"details" bson:"details"`
	RequestID string            `json:"request_id" bson:"request_id"`
}

type eventActor struct {
	MemberID string `json:"member_id" bson:"member_id"`
	Email    string `json:"email" bson:"email"`
}

type eventTarget struct {
	Type string `json:"type" bson:"type"`
	ID   string `json:"id" bson:"id"`
	Name string `json:"name" bson:"name"`
}

// what is the event without its id and time, which no test can predict.
func (ev event) what() event {
	ev.ID, ev.Time = "", time.Time{}
	return ev
}

// storedEvent decodes one document of the audit collection, given as
// canonical extended JSON, into the event the API would show.
func storedEvent(t testing.TB, doc string) event {
	t.Helper()
	var ev event
	require.NoError(t, bson.UnmarshalExtJSON([]byte(doc), true, &ev), "%s", doc)
	id, ok := strings.CutPrefix(ev.ID, ev.OrgID+"/")
	require.True(t, ok, "an event's _id starts with its org_id: %s", doc)
	ev.ID, ev.Time = id, ev.Time.UTC()
	if ev.Details == nil {
		ev.Details = map[string]string{}
	}
	return ev
}

// events reads an organization's events straight from the audit
// collection, by org_id, oldest first.
func (e *env) events(orgID string) []event {
	e.t.Helper()
	cur, err := e.db.Collection(mongostore.AuditCollection).Find(context.Background(),
		bson.D{{Key: "org_id", Value: orgID}}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	require.NoError(e.t, err)
	var raws []bson.Raw
	require.NoError(e.t, cur.All(context.Background(), &raws))
	out := make([]event, len(raws))
	for i, r := range raws {
		doc, err := bson.MarshalExtJSON(r, true, false)
		require.NoError(e.t, err)
		out[i] = storedEvent(e.t, string(doc))
	}
	return out
}

// addedEvents returns the events in the audit collection's contents after
// that were not in before, oldest first, and checks that none of before's
// was changed or removed.
func addedEvents(t testing.TB, before, after map[string]string) []event {
	t.Helper()
	for id, doc := range before {
		assert.Equal(t, doc, after[id], "event %s is kept as it was", id)
	}
	var added []event
	for id, doc := range after {
		if _, ok := before[id]; !ok {
			added = append(added, storedEvent(t, doc))
		}
	}
	slices.SortFunc(added, func(a, b event) int { return strings.Compare(a.ID, b.ID) })
	return added
}

// onlyAuditAdded checks that between two snapshots nothing but the audit
// collection changed, and that only by new events, which it returns.
func onlyAuditAdded(t testing.TB, before, after map[string]map[string]string) []event {
	t.Helper()
	rest := func(s map[string]map[string]string) map[string]map[string]string {
		out := maps.Clone(s)
		delete(out, mongostore.AuditCollection)
		return out
	}
	assert.Equal(t, rest(before), rest(after), "nothing but the audit log changed")
	return addedEvents(t, before[mongostore.AuditCollection], after[mongostore.AuditCollection])
}

// auditPage is one page of GET /org/audit.
type auditPage struct {
	Items []event `json:"items"`
	Next  *string `json:"next"`
}

func decodePage(t testing.TB, r resp) auditPage {
	t.Helper()
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	var p auditPage
	require.NoError(t, json.Unmarshal(r.Body, &p), "%s", r.Body)
	for i := range p.Items {
		p.Items[i].Time = p.Items[i].Time.UTC()
	}
	return p
}

// walkAudit reads every page of the token's organization's audit log,
// limit at a time, following the Link header, and returns the events in
// the order given.
func (e *env) walkAudit(token string, limit string) []event {
	e.t.Helper()
	var all []event
	target := auditURL + "?limit=" + limit
	for pages := 0; target != ""; pages++ {
		require.Less(e.t, pages, 100, "the walk ends")
		r := e.do(http.MethodGet, target, "", token)
		p := decodePage(e.t, r)
		all = append(all, p.Items...)
		target = nextLink(e.t, r)
		if p.Next == nil {
			assert.Empty(e.t, r.Header.Get("Link"), "no Link on the last page")
		} else {
			require.NotEmpty(e.t, p.Items)
			assert.Equal(e.t, p.Items[len(p.Items)-1].ID, *p.Next, "next is the page's last event")
			assert.Equal(e.t, auditURL+"?after="+*p.Next+"&limit="+limit, target, "Link is the next page")
		}
	}
	return all
}

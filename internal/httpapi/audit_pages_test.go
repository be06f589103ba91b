package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgservice/orgservice/internal/mongostore"
	"github.com/orgservice/orgservice/internal/org"
)

// newestFirst is an organization's stored events (oldest first) as GET
// /org/audit lists them.
func newestFirst(evs []event) []event {
	out := make([]event, len(evs))
	for i, ev := range evs {
		out[len(evs)-1-i] = withoutOrg(ev)
	}
	return out
}

// failLogin sends a wrong password for email, which the audit log records.
func (e *env) failLogin(email string) {
	e.t.Helper()
	assertProblem(e.t, e.do(http.MethodPost, loginURL, loginJSON(e.t, email, "wrong-password"), ""), http.StatusUnauthorized)
	require.NoError(e.t, e.auth.Wait(context.Background())) // written just after the answer
}

// TestAuditPaging: newest first, limit at a time; next and Link walk every
// event once, the last page says null and has no Link; events recorded
// during a walk do not disturb it.
func TestAuditPaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	tm := e.team("Pages")
	for range 4 {
		e.failLogin(tm.slug + "-member@example.com")
	}
	stored := e.events(tm.id)
	require.Len(t, stored, 11, "created, 3 logins, 3 members added, 4 failed logins")
	want := newestFirst(stored)
	admin := tm.tokens[org.RoleAdmin]

	r := e.do(http.MethodGet, auditURL, "", admin)
	p := decodePage(t, r)
	assert.Equal(t, want, p.Items, "by default one page of up to 50, newest first")
	assert.Nil(t, p.Next)
	assert.Empty(t, r.Header.Get("Link"))
	assert.Equal(t, "null", string(jsonField(t, r, "next")), "next is null, not absent")

	for _, limit := range []string{"1", "3", "10", "11", "200"} {
		t.Run("limit "+limit, func(t *testing.T) {
			assert.Equal(t, want, e.walkAudit(admin, limit))
		})
	}

	// A page exactly as long as what is left is the last one.
	p = decodePage(t, e.do(http.MethodGet, auditURL+"?limit=11", "", admin))
	assert.Len(t, p.Items, 11)
	assert.Nil(t, p.Next)
	r = e.do(http.MethodGet, auditURL+"?limit=10", "", admin)
	p = decodePage(t, r)
	require.NotNil(t, p.Next)
	assert.Equal(t, want[9].ID, *p.Next)
	r = e.do(http.MethodGet, nextLink(t, r), "", admin)
	p = decodePage(t, r)
	assert.Equal(t, want[10:], p.Items)
	assert.Nil(t, p.Next)

	// Events recorded during a walk are newer than its cursor: the walk
	// lists the events there when it began, each once; a new walk starts
	// with the new ones.
	r = e.do(http.MethodGet, auditURL+"?limit=4", "", admin)
	walked := decodePage(t, r).Items
	e.failLogin(tm.slug + "-admin@example.com")
	e.failLogin(tm.slug + "-owner@example.com")
	for target := nextLink(t, r); target != ""; target = nextLink(t, r) {
		r = e.do(http.MethodGet, target, "", admin)
		walked = append(walked, decodePage(t, r).Items...)
	}
	assert.Equal(t, want, walked)
	again := e.walkAudit(admin, "4")
	require.Len(t, again, 13)
	assert.Equal(t, "login.failed", again[0].Action)
	assert.Equal(t, tm.slug+"-owner@example.com", again[0].Actor.Email)
	assert.Equal(t, want, again[2:])
}

// jsonField returns the raw JSON of a top-level field of r's body.
func jsonField(t testing.TB, r resp, name string) json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(r.Body, &m))
	require.Contains(t, m, name)
	return m[name]
}

// TestAuditBadQuery: a limit out of 1–200 or not an integer, a repeated or
// unknown parameter, or an after that is not an event id is a 400 problem
// that changes nothing.
func TestAuditBadQuery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	tm := e.team("Bad Query")
	admin := tm.tokens[org.RoleAdmin]
	id := e.events(tm.id)[0].ID
	before := e.snapshot()
	bad := []string{
		"limit=0", "limit=201", "limit=-1", "limit=x", "limit=", "limit=1.5", "limit=%201",
		"limit=1&limit=2", "limit=5&limit=5", "after=" + id + "&after=" + id,
		"foo=1", "Limit=5", "limit=5&org_id=" + tm.id,
		"after=", "after=abc", "after=" + id[1:], "after=" + tm.id + "/" + id, "after=" + id + "0",
	}
	if upper := strings.ToUpper(id); upper != id { // an id of digits only has no upper case
		bad = append(bad, "after="+upper)
	}
	for _, q := range bad {
		t.Run(q, func(t *testing.T) {
			p := assertProblem(t, e.do(http.MethodGet, auditURL+"?"+q, "", admin), http.StatusBadRequest)
			assert.Equal(t, "https://orgservice.dev/problems/bad-request", p["type"])
		})
	}
	assert.Equal(t, before, e.snapshot(), "nothing changed")

	// The bounds themselves, and a well-formed cursor nobody has, are fine.
	assert.Len(t, decodePage(t, e.do(http.MethodGet, auditURL+"?limit=1", "", admin)).Items, 1)
	assert.Len(t, decodePage(t, e.do(http.MethodGet, auditURL+"?limit=200", "", admin)).Items, 7)
	assert.Empty(t, decodePage(t, e.do(http.MethodGet, auditURL+"?after=0000000000000000001-00000000", "", admin)).Items)
	assertUnauthorized(t, e.do(http.MethodGet, auditURL, "", ""))
	assert.Equal(t, before, e.snapshot(), "reading changes nothing")
}

// TestAuditIsolation: an organization's log shows its own events only,
// even with a cursor taken from another organization's log.
func TestAuditIsolation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	a, b := e.team("Iso A"), e.team("Iso B")
	// Interleave the two organizations' events.
	for _, tm := range []*team{a, b, a, b} {
		e.failLogin(tm.slug + "-member@example.com")
	}
	as, bs := e.events(a.id), e.events(b.id)
	require.Len(t, as, 9)
	require.Len(t, bs, 9)
	assert.Equal(t, newestFirst(as), e.walkAudit(a.tokens[org.RoleOwner], "4"))
	assert.Equal(t, newestFirst(bs), e.walkAudit(b.tokens[org.RoleAdmin], "4"))

	for _, cursor := range []event{bs[0], bs[len(bs)-2], bs[len(bs)-1]} {
		r := e.do(http.MethodGet, auditURL+"?after="+cursor.ID, "", a.tokens[org.RoleAdmin])
		var want []event
		for _, ev := range newestFirst(as) {
			if ev.ID < cursor.ID {
				want = append(want, ev)
			}
		}
		got := decodePage(t, r).Items
		if want == nil {
			want = []event{}
		}
		assert.Equal(t, want, got, "A's events older than B's %s", cursor.Action)
		assert.NotContains(t, string(r.Body), b.slug, "nothing of B")
	}
}

// TestAuditKeptAfterDelete: deleting an organization keeps its events, and
// adds exactly one org.deleted, in the audit collection, for the operator;
// nobody reads them through the API any more, not even a new organization
// of the same name.
func TestAuditKeptAfterDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	tm, other := e.team("Doomed"), e.team("Survivor")
	before, otherBefore := e.events(tm.id), e.events(other.id)

	r := e.call(http.MethodDelete, byName(deleteURL, tm.name), "", tm.tokens[org.RoleOwner], "", "X-Request-ID", "delete-doomed")
	require.Equal(t, http.StatusNoContent, r.Status, "%s", r.Body)
	assert.Nil(t, e.orgDoc(tm.slug))

	after := e.events(tm.id)
	require.Len(t, after, len(before)+1)
	assert.Equal(t, before, after[:len(before)], "the organization's events are kept as they were")
	assert.Equal(t, event{OrgID: tm.id, Action: "org.deleted",
		Actor:   eventActor{MemberID: tm.ids[org.RoleOwner], Email: tm.slug + "-owner@example.com"},
		Target:  eventTarget{Type: "organization", ID: tm.id, Name: tm.name},
		Details: map[string]string{"slug": tm.slug}, RequestID: r.Header.Get("X-Request-ID"), ClientRequestID: "delete-doomed"},
		after[len(before)].what())
	n, err := e.db.Collection(mongostore.AuditCollection).CountDocuments(context.Background(),
		bson.D{{Key: "org_id", Value: tm.id}, {Key: "action", Value: "org.deleted"}})
	require.NoError(t, err)
	assert.EqualValues(t, 1, n, "exactly one org.deleted")
	assert.Equal(t, otherBefore, e.events(other.id), "another organization's log is untouched")

	assertUnauthorized(t, e.do(http.MethodGet, auditURL, "", tm.tokens[org.RoleAdmin]))
	again := e.create(tm.name, "again@example.com", "password-1")
	fresh := e.walkAudit(e.login("again@example.com", "password-1"), "50")
	assert.Equal(t, newestFirst(e.events(again["id"].(string))), fresh)
	assert.Len(t, fresh, 2, "created and logged in, nothing inherited")
	assert.Len(t, e.events(tm.id), len(before)+1, "the old events are still there")
}

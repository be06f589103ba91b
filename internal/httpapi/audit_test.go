package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
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
	"github.com/orgservice/orgservice/internal/org"
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

// TestAuditEvents: every audited action, sent with an X-Request-ID, adds
// exactly its event to the audit collection, with its actor, target,
// details and request id, and GET /org/audit shows it as stored. A login
// with an email nobody has adds nothing.
func TestAuditEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	email := func(tm *team, who string) string { return tm.slug + "-" + who + "@example.com" }
	actor := func(tm *team, r org.Role) eventActor {
		return eventActor{MemberID: tm.ids[r], Email: email(tm, string(r))}
	}
	member := func(tm *team, r org.Role) eventTarget {
		return eventTarget{Type: "member", ID: tm.ids[r], Name: email(tm, string(r))}
	}
	orgTarget := func(tm *team, name string) eventTarget {
		return eventTarget{Type: "organization", ID: tm.id, Name: name}
	}
	tests := []struct {
		name   string
		role   org.Role // whose token is sent; "" for none
		req    func(tm *team) (method, target, body string)
		status int
		want   func(tm *team, r resp) []event // OrgID, Actor, Action, Target, Details
	}{
		{"organization created", "", func(tm *team) (string, string, string) {
			return http.MethodPost, createURL, createBody(t, tm.name+" New", email(tm, "founder"), "password-1")
		}, http.StatusCreated, func(tm *team, r resp) []event {
			id, slug := r.JSON(t)["id"].(string), tm.slug+"_new"
			return []event{{OrgID: id, Action: "org.created",
				Actor:   eventActor{MemberID: e.members(slug)[0]["id"].(string), Email: email(tm, "founder")},
				Target:  eventTarget{Type: "organization", ID: id, Name: tm.name + " New"},
				Details: map[string]string{"slug": slug}}}
		}},
		{"renamed", org.RoleOwner, func(tm *team) (string, string, string) {
			return http.MethodPut, updateURL, `{"organization_name":"` + tm.name + ` Renamed"}`
		}, http.StatusOK, func(tm *team, _ resp) []event {
			return []event{{OrgID: tm.id, Action: "org.renamed", Actor: actor(tm, org.RoleOwner),
				Target:  orgTarget(tm, tm.name+" Renamed"),
				Details: map[string]string{"from": tm.name, "to": tm.name + " Renamed", "from_slug": tm.slug, "to_slug": tm.slug + "_renamed"}}}
		}},
		{"name changed, slug kept", org.RoleOwner, func(tm *team) (string, string, string) {
			return http.MethodPut, updateURL, `{"organization_name":"` + strings.ToUpper(tm.name) + `"}`
		}, http.StatusOK, func(tm *team, _ resp) []event {
			return []event{{OrgID: tm.id, Action: "org.renamed", Actor: actor(tm, org.RoleOwner),
				Target:  orgTarget(tm, strings.ToUpper(tm.name)),
				Details: map[string]string{"from": tm.name, "to": strings.ToUpper(tm.name), "from_slug": tm.slug, "to_slug": tm.slug}}}
		}},
		{"email and password changed by update", org.RoleOwner, func(tm *team) (string, string, string) {
			return http.MethodPut, updateURL, `{"email":"` + email(tm, "boss") + `","password":"password-9"}`
		}, http.StatusOK, func(tm *team, _ resp) []event {
			return []event{{OrgID: tm.id, Action: "credentials.changed", Actor: actor(tm, org.RoleOwner),
				Target: member(tm, org.RoleOwner),
				Details: map[string]string{"email_changed": "true", "password_changed": "true",
					"from_email": email(tm, "owner"), "to_email": email(tm, "boss")}}}
		}},
		{"password changed by update", org.RoleOwner, func(tm *team) (string, string, string) {
			return http.MethodPut, updateURL, `{"password":"password-9"}`
		}, http.StatusOK, func(tm *team, _ resp) []event {
			return []event{{OrgID: tm.id, Action: "credentials.changed", Actor: actor(tm, org.RoleOwner),
				Target: member(tm, org.RoleOwner), Details: map[string]string{"email_changed": "false", "password_changed": "true"}}}
		}},
		{"renamed and email changed by one update", org.RoleOwner, func(tm *team) (string, string, string) {
			return http.MethodPut, updateURL, `{"organization_name":"` + tm.name + ` Two","email":"` + email(tm, "boss") + `"}`
		}, http.StatusOK, func(tm *team, _ resp) []event {
			return []event{
				{OrgID: tm.id, Action: "org.renamed", Actor: actor(tm, org.RoleOwner), Target: orgTarget(tm, tm.name+" Two"),
					Details: map[string]string{"from": tm.name, "to": tm.name + " Two", "from_slug": tm.slug, "to_slug": tm.slug + "_two"}},
				{OrgID: tm.id, Action: "credentials.changed", Actor: actor(tm, org.RoleOwner), Target: member(tm, org.RoleOwner),
					Details: map[string]string{"email_changed": "true", "password_changed": "false",
						"from_email": email(tm, "owner"), "to_email": email(tm, "boss")}},
			}
		}},
		{"own password changed", org.RoleMember, func(*team) (string, string, string) {
			return http.MethodPatch, membersURL + "/me", `{"password":"password-9"}`
		}, http.StatusOK, func(tm *team, _ resp) []event {
			return []event{{OrgID: tm.id, Action: "credentials.changed", Actor: actor(tm, org.RoleMember),
				Target: member(tm, org.RoleMember), Details: map[string]string{"email_changed": "false", "password_changed": "true"}}}
		}},
		{"own email changed", org.RoleMember, func(tm *team) (string, string, string) {
			return http.MethodPatch, membersURL + "/me", `{"email":"` + email(tm, "renamed") + `"}`
		}, http.StatusOK, func(tm *team, _ resp) []event {
			return []event{{OrgID: tm.id, Action: "credentials.changed", Actor: actor(tm, org.RoleMember),
				Target: member(tm, org.RoleMember),
				Details: map[string]string{"email_changed": "true", "password_changed": "false",
					"from_email": email(tm, "member"), "to_email": email(tm, "renamed")}}}
		}},
		{"member added", org.RoleAdmin, func(tm *team) (string, string, string) {
			return http.MethodPost, membersURL, `{"email":"` + email(tm, "new") + `","password":"password-2","role":"member"}`
		}, http.StatusCreated, func(tm *team, r resp) []event {
			return []event{{OrgID: tm.id, Action: "member.added", Actor: actor(tm, org.RoleAdmin),
				Target:  eventTarget{Type: "member", ID: r.JSON(t)["id"].(string), Name: email(tm, "new")},
				Details: map[string]string{"role": "member"}}}
		}},
		{"role changed", org.RoleOwner, func(tm *team) (string, string, string) {
			return http.MethodPatch, membersURL + "/" + tm.target, `{"role":"admin"}`
		}, http.StatusOK, func(tm *team, _ resp) []event {
			return []event{{OrgID: tm.id, Action: "member.role_changed", Actor: actor(tm, org.RoleOwner),
				Target:  eventTarget{Type: "member", ID: tm.target, Name: email(tm, "target")},
				Details: map[string]string{"from": "member", "to": "admin"}}}
		}},
		{"member removed", org.RoleAdmin, func(tm *team) (string, string, string) {
			return http.MethodDelete, membersURL + "/" + tm.target, ""
		}, http.StatusNoContent, func(tm *team, _ resp) []event {
			return []event{{OrgID: tm.id, Action: "member.removed", Actor: actor(tm, org.RoleAdmin),
				Target:  eventTarget{Type: "member", ID: tm.target, Name: email(tm, "target")},
				Details: map[string]string{"role": "member"}}}
		}},
		{"login succeeded", "", func(tm *team) (string, string, string) {
			return http.MethodPost, loginURL, loginJSON(t, strings.ToUpper(email(tm, "member")), "password-1")
		}, http.StatusOK, func(tm *team, _ resp) []event {
			return []event{{OrgID: tm.id, Action: "login.succeeded", Actor: actor(tm, org.RoleMember),
				Target: member(tm, org.RoleMember), Details: map[string]string{"ip": testIP}}}
		}},
		{"login failed", "", func(tm *team) (string, string, string) {
			return http.MethodPost, loginURL, loginJSON(t, email(tm, "member"), "wrong-password")
		}, http.StatusUnauthorized, func(tm *team, _ resp) []event {
			return []event{{OrgID: tm.id, Action: "login.failed", Actor: actor(tm, org.RoleMember),
				Target: member(tm, org.RoleMember), Details: map[string]string{"ip": testIP, "reason": "wrong password"}}}
		}},
		{"login with an unknown email", "", func(tm *team) (string, string, string) {
			return http.MethodPost, loginURL, loginJSON(t, email(tm, "nobody"), "password-1")
		}, http.StatusUnauthorized, func(*team, resp) []event { return nil }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tm := e.team(fmt.Sprintf("Audit %d", i))
			reqID := fmt.Sprintf("audit-case-%d", i)
			before := e.docs(mongostore.AuditCollection)
			method, target, body := tt.req(tm)
			r := e.call(method, target, body, tm.tokens[tt.role], "", "X-Request-ID", reqID)
			require.Equal(t, tt.status, r.Status, "%s", r.Body)
			assert.Equal(t, reqID, r.Header.Get("X-Request-ID"))

			added := addedEvents(t, before, e.docs(mongostore.AuditCollection))
			want := tt.want(tm, r)
			for i := range want {
				want[i].RequestID = reqID
			}
			got := make([]event, len(added))
			for i, ev := range added {
				got[i] = ev.what()
				assert.WithinDuration(t, time.Now(), ev.Time, time.Minute)
			}
			assert.ElementsMatch(t, want, got, "exactly the action's events")

			// The organization's owners and admins read them as stored.
			if len(added) == 0 {
				return
			}
			reader := tm.tokens[org.RoleAdmin]
			if added[0].OrgID != tm.id {
				reader = e.login(email(tm, "founder"), "password-1")
			}
			shown := e.walkAudit(reader, "200")
			for _, ev := range added {
				assert.Contains(t, shown, withoutOrg(ev), "GET /org/audit shows %s", ev.Action)
			}
		})
	}
}

// withoutOrg is ev as the API shows it: without its organization's id.
func withoutOrg(ev event) event {
	ev.OrgID = ""
	return ev
}

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
	for _, q := range []string{
		"limit=0", "limit=201", "limit=-1", "limit=x", "limit=", "limit=1.5", "limit=%201",
		"limit=1&limit=2", "limit=5&limit=5", "after=" + id + "&after=" + id,
		"foo=1", "Limit=5", "limit=5&org_id=" + tm.id,
		"after=", "after=abc", "after=" + strings.ToUpper(id), "after=" + id[1:], "after=" + tm.id + "/" + id, "after=" + id + "0",
	} {
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
		Details: map[string]string{"slug": tm.slug}, RequestID: "delete-doomed"}, after[len(before)].what())
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

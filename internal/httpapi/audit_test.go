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
	// ClientRequestID is absent from both when the client sent none.
	ClientRequestID string `json:"client_request_id,omitempty" bson:"client_request_id,omitempty"`
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
		delete(out, mongostore.SessionsCollection) // a login opens a session
		return out
	}
	assert.Equal(t, rest(before), rest(after), "nothing but the audit log (and the sessions) changed")
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
// details, the server's request id and the client's beside it, and GET
// /org/audit shows it as stored. A login with an email nobody has adds
// nothing.
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
			return http.MethodPut, updateURL, `{"email":"` + email(tm, "boss") + `","password":"password-9","current_password":"password-1"}`
		}, http.StatusOK, func(tm *team, _ resp) []event {
			return []event{{OrgID: tm.id, Action: "credentials.changed", Actor: actor(tm, org.RoleOwner),
				Target: member(tm, org.RoleOwner),
				Details: map[string]string{"email_changed": "true", "password_changed": "true",
					"from_email": email(tm, "owner"), "to_email": email(tm, "boss")}}}
		}},
		{"password changed by update", org.RoleOwner, func(tm *team) (string, string, string) {
			return http.MethodPut, updateURL, `{"password":"password-9","current_password":"password-1"}`
		}, http.StatusOK, func(tm *team, _ resp) []event {
			return []event{{OrgID: tm.id, Action: "credentials.changed", Actor: actor(tm, org.RoleOwner),
				Target: member(tm, org.RoleOwner), Details: map[string]string{"email_changed": "false", "password_changed": "true"}}}
		}},
		{"renamed and email changed by one update", org.RoleOwner, func(tm *team) (string, string, string) {
			return http.MethodPut, updateURL, `{"organization_name":"` + tm.name + ` Two","email":"` + email(tm, "boss") + `","current_password":"password-1"}`
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
			return http.MethodPatch, membersURL + "/me", `{"password":"password-9","current_password":"password-1"}`
		}, http.StatusOK, func(tm *team, _ resp) []event {
			return []event{{OrgID: tm.id, Action: "credentials.changed", Actor: actor(tm, org.RoleMember),
				Target: member(tm, org.RoleMember), Details: map[string]string{"email_changed": "false", "password_changed": "true"}}}
		}},
		{"own email changed", org.RoleMember, func(tm *team) (string, string, string) {
			return http.MethodPatch, membersURL + "/me", `{"email":"` + email(tm, "renamed") + `","current_password":"password-1"}`
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
		{"wrong current password", org.RoleMember, func(tm *team) (string, string, string) {
			return http.MethodPatch, membersURL + "/me", `{"password":"password-9","current_password":"password-2"}`
		}, http.StatusForbidden, func(tm *team, _ resp) []event {
			return []event{{OrgID: tm.id, Action: "login.failed", Actor: actor(tm, org.RoleMember),
				Target: member(tm, org.RoleMember), Details: map[string]string{"ip": testIP, "reason": "wrong current password"}}}
		}},
		{"logout", org.RoleMember, func(*team) (string, string, string) {
			return http.MethodPost, logoutURL, ""
		}, http.StatusNoContent, func(tm *team, _ resp) []event {
			return []event{{OrgID: tm.id, Action: "session.ended", Actor: actor(tm, org.RoleMember),
				Target: member(tm, org.RoleMember), Details: map[string]string{"ip": testIP, "reason": "logout",
					"session_id": e.sessionOf(tm.tokens[org.RoleMember])}}}
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tm := e.team(fmt.Sprintf("Audit %d", i))
			reqID := fmt.Sprintf("audit-case-%d", i)
			before := e.docs(mongostore.AuditCollection)
			method, target, body := tt.req(tm)
			r := e.call(method, target, body, tm.tokens[tt.role], "", "X-Request-ID", reqID)
			require.Equal(t, tt.status, r.Status, "%s", r.Body)
			own := r.Header.Get("X-Request-ID")
			assert.Regexp(t, `^[0-9a-f]{24}$`, own, "the server's own id answers, not the client's")
			require.NoError(t, e.auth.Wait(context.Background())) // a failed login's event follows its answer

			added := addedEvents(t, before, e.docs(mongostore.AuditCollection))
			want := tt.want(tm, r)
			for i := range want {
				want[i].RequestID, want[i].ClientRequestID = own, reqID
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

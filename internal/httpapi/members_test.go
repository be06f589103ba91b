package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgservice/orgservice/internal/mongostore"
	"github.com/orgservice/orgservice/internal/org"
)

const membersURL = "/api/v1/org/members"

// team is an organization with one member of each role, plus a target
// member for the routes that act on one, and a token for each role.
type team struct {
	id, name, slug string
	tokens         map[org.Role]string
	ids            map[org.Role]string
	target         string
}

func (e *env) team(name string) *team {
	e.t.Helper()
	tm := &team{name: name, slug: org.Slug(name), tokens: map[org.Role]string{}, ids: map[org.Role]string{}}
	owner := tm.slug + "-owner@example.com"
	tm.id = e.create(name, owner, "password-1")["id"].(string)
	tm.tokens[org.RoleOwner] = e.login(owner, "password-1")
	p, err := e.auth.Authenticate(context.Background(), tm.tokens[org.RoleOwner])
	require.NoError(e.t, err)
	tm.ids[org.RoleOwner] = p.MemberID
	for _, r := range []org.Role{org.RoleAdmin, org.RoleMember} {
		m, err := e.orgs.AddMember(context.Background(), p, org.AddMemberInput{Email: tm.slug + "-" + string(r) + "@example.com", Password: "password-1", Role: r})
		require.NoError(e.t, err)
		tm.ids[r] = m.ID
		tm.tokens[r] = e.login(m.Email, "password-1")
	}
	m, err := e.orgs.AddMember(context.Background(), p, org.AddMemberInput{Email: tm.slug + "-target@example.com", Password: "password-1", Role: org.RoleMember})
	require.NoError(e.t, err)
	tm.target = m.ID
	return tm
}

// members reads the organization's members straight from the database.
func (e *env) members(slug string) []bson.M {
	e.t.Helper()
	d := e.orgDoc(slug)
	require.NotNil(e.t, d, "organization %s", slug)
	var out []bson.M
	for _, x := range d["members"].(bson.A) {
		m := asM(x)
		delete(m, "password_hash")
		out = append(out, m)
	}
	return out
}

func roleOf(ms []bson.M, id string) string {
	for _, m := range ms {
		if m["id"] == id {
			return m["role"].(string)
		}
	}
	return ""
}

// TestMemberRolesByRoute sends every role to every authenticated route:
// an allowed role gets a 2xx; any other a 403 problem, with the
// organization's metadata and documents unchanged.
func TestMemberRolesByRoute(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	all := []org.Role{org.RoleOwner, org.RoleAdmin, org.RoleMember}
	routes := []struct {
		name    string
		allowed []org.Role
		req     func(tm *team) (method, target, body string)
	}{
		{"list members", []org.Role{org.RoleOwner, org.RoleAdmin}, func(*team) (string, string, string) {
			return http.MethodGet, membersURL, ""
		}},
		{"add member", []org.Role{org.RoleOwner, org.RoleAdmin}, func(tm *team) (string, string, string) {
			return http.MethodPost, membersURL, fmt.Sprintf(`{"email":"new-%s@example.com","password":"password-2","role":"member"}`, tm.slug)
		}},
		{"change role", []org.Role{org.RoleOwner}, func(tm *team) (string, string, string) {
			return http.MethodPatch, membersURL + "/" + tm.target, `{"role":"admin"}`
		}},
		{"remove member", []org.Role{org.RoleOwner, org.RoleAdmin}, func(tm *team) (string, string, string) {
			return http.MethodDelete, membersURL + "/" + tm.target, ""
		}},
		{"get me", all, func(*team) (string, string, string) { return http.MethodGet, membersURL + "/me", "" }},
		{"patch me", all, func(*team) (string, string, string) {
			return http.MethodPatch, membersURL + "/me", `{"password":"password-3","current_password":"password-1"}`
		}},
		{"update organization", []org.Role{org.RoleOwner}, func(tm *team) (string, string, string) {
			return http.MethodPut, updateURL, `{"organization_name":"` + tm.name + ` Renamed"}`
		}},
		{"delete organization", []org.Role{org.RoleOwner}, func(tm *team) (string, string, string) {
			return http.MethodDelete, byName(deleteURL, tm.name), ""
		}},
		{"write a document", all, func(*team) (string, string, string) {
			return http.MethodPost, "/api/v1/org/documents", `{"id":"d1","x":1}`
		}},
		{"list documents", all, func(*team) (string, string, string) { return http.MethodGet, "/api/v1/org/documents", "" }},
		{"read the audit log", []org.Role{org.RoleOwner, org.RoleAdmin}, func(*team) (string, string, string) {
			return http.MethodGet, auditURL, ""
		}},
	}
	n := 0
	for _, rt := range routes {
		for _, role := range all {
			n++
			t.Run(rt.name+"/"+string(role), func(t *testing.T) {
				tm := e.team(fmt.Sprintf("Team %d", n))
				before := e.orgDoc(tm.slug)
				docsBefore := e.docs(org.CollectionName(tm.slug))
				method, target, body := rt.req(tm)
				r := e.do(method, target, body, tm.tokens[role])
				allowed := false
				for _, a := range rt.allowed {
					allowed = allowed || a == role
				}
				if allowed {
					assert.True(t, r.Status >= 200 && r.Status < 300, "%s as %s: %d %s", rt.name, role, r.Status, r.Body)
					return
				}
				assertProblem(t, r, http.StatusForbidden)
				assert.Equal(t, before, e.orgDoc(tm.slug), "a refused request changes nothing")
				assert.Equal(t, docsBefore, e.docs(org.CollectionName(tm.slug)), "nor any document")
			})
		}
	}
}

// TestMembersLifecycle walks the README's story: add a member, log in as
// them, promote them, hand over ownership; with the rules on the way.
func TestMembersLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	e.create("Acme Corp", "boss@acme.com", "password-1")
	boss := e.login("boss@acme.com", "password-1")

	r := e.do(http.MethodPost, membersURL, `{"email":"Dev@Acme.com","password":"password-2","role":"member"}`, boss)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	dev := r.JSON(t)
	assert.Equal(t, "dev@acme.com", dev["email"])
	assert.Equal(t, "member", dev["role"])
	assert.Equal(t, membersURL+"/"+dev["id"].(string), r.Header.Get("Location"))
	assertNoSecrets(t, r.Body, "password-2")
	devTok := e.login("dev@acme.com", "password-2")

	r = e.do(http.MethodGet, membersURL, "", boss)
	require.Equal(t, http.StatusOK, r.Status)
	assert.Len(t, r.JSON(t)["items"], 2)
	assertNoSecrets(t, r.Body, "password-1")
	got := e.do(http.MethodGet, byName(getURL, "Acme Corp"), "", boss).JSON(t)
	assert.EqualValues(t, 2, got["member_count"])

	// The email is taken everywhere: here and as another organization's.
	assertProblem(t, e.do(http.MethodPost, membersURL, `{"email":"dev@acme.com","password":"password-2","role":"member"}`, boss), http.StatusConflict)
	e.create("Initech", "bill@initech.com", "password-1")
	assertProblem(t, e.do(http.MethodPost, membersURL, `{"email":"bill@initech.com","password":"password-2","role":"member"}`, boss), http.StatusConflict)
	assertProblem(t, e.do(http.MethodPost, "/api/v1/org/create", `{"organization_name":"Dev Co","email":"dev@acme.com","password":"password-2"}`, ""), http.StatusConflict)

	// Bad input: unknown fields (no role smuggled into /me, no org_id), bad values.
	assertProblem(t, e.do(http.MethodPatch, membersURL+"/me", `{"role":"owner"}`, devTok), http.StatusBadRequest)
	assertProblem(t, e.do(http.MethodPost, membersURL, `{"email":"x@acme.com","password":"password-2","role":"member","org_id":"x"}`, boss), http.StatusBadRequest)
	assertProblem(t, e.do(http.MethodPost, membersURL, `{"email":"x@acme.com","password":"short","role":"king"}`, boss), http.StatusUnprocessableEntity)
	assertProblem(t, e.do(http.MethodPatch, membersURL+"/"+dev["id"].(string), `{"role":"king"}`, boss), http.StatusUnprocessableEntity)
	assertProblem(t, e.do(http.MethodPatch, membersURL+"/me", `{}`, devTok), http.StatusUnprocessableEntity)
	assert.Len(t, e.members("acme_corp"), 2, "nothing added")

	// A member of another organization is not found here.
	bill := e.login("bill@initech.com", "password-1")
	billMe := e.do(http.MethodGet, membersURL+"/me", "", bill).JSON(t)
	assertProblem(t, e.do(http.MethodPatch, membersURL+"/"+billMe["id"].(string), `{"role":"member"}`, boss), http.StatusNotFound)
	assertProblem(t, e.do(http.MethodDelete, membersURL+"/"+billMe["id"].(string), "", boss), http.StatusNotFound)
	assert.Equal(t, "owner", roleOf(e.members("initech"), billMe["id"].(string)))

	// The last owner can be neither demoted nor removed.
	bossMe := e.do(http.MethodGet, membersURL+"/me", "", boss).JSON(t)
	r = e.do(http.MethodPatch, membersURL+"/"+bossMe["id"].(string), `{"role":"admin"}`, boss)
	assertProblem(t, r, http.StatusConflict)
	assert.Contains(t, string(r.Body), "at least one owner")
	assertProblem(t, e.do(http.MethodDelete, membersURL+"/"+bossMe["id"].(string), "", boss), http.StatusConflict)

	// A role change takes effect on the next request, with the same token.
	assertProblem(t, e.do(http.MethodGet, membersURL, "", devTok), http.StatusForbidden)
	require.Equal(t, http.StatusOK, e.do(http.MethodPatch, membersURL+"/"+dev["id"].(string), `{"role":"admin"}`, boss).Status)
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, membersURL, "", devTok).Status)
	// An admin may not add or remove an owner.
	assertProblem(t, e.do(http.MethodPost, membersURL, `{"email":"o2@acme.com","password":"password-2","role":"owner"}`, devTok), http.StatusForbidden)
	assertProblem(t, e.do(http.MethodDelete, membersURL+"/"+bossMe["id"].(string), "", devTok), http.StatusForbidden)
	assert.Len(t, e.members("acme_corp"), 2)

	// Hand over ownership: promote, then demote yourself.
	require.Equal(t, http.StatusOK, e.do(http.MethodPatch, membersURL+"/"+dev["id"].(string), `{"role":"owner"}`, boss).Status)
	require.Equal(t, http.StatusOK, e.do(http.MethodPatch, membersURL+"/"+bossMe["id"].(string), `{"role":"member"}`, boss).Status)
	ms := e.members("acme_corp")
	assert.Equal(t, "owner", roleOf(ms, dev["id"].(string)))
	assert.Equal(t, "member", roleOf(ms, bossMe["id"].(string)))
	assert.Equal(t, "dev@acme.com", e.orgDoc("acme_corp")["admin_email"], "admin_email is the first current owner's")
	assertProblem(t, e.do(http.MethodPut, updateURL, `{"organization_name":"Boss Co"}`, boss), http.StatusForbidden)

	// Own credentials: the member's older tokens die, nobody else's.
	r = e.do(http.MethodPatch, membersURL+"/me", `{"email":"Boss2@Acme.com","password":"password-9","current_password":"password-1"}`, boss)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.Equal(t, "boss2@acme.com", r.JSON(t)["email"])
	assertUnauthorized(t, e.do(http.MethodGet, membersURL+"/me", "", boss))
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, membersURL+"/me", "", devTok).Status)
	boss = e.login("boss2@acme.com", "password-9")
	e.create("Old Boss Co", "boss@acme.com", "password-1") // the old email is free

	// Removal: the member's tokens die at once, the email is free again.
	require.Equal(t, http.StatusNoContent, e.do(http.MethodDelete, membersURL+"/"+bossMe["id"].(string), "", devTok).Status)
	assertUnauthorized(t, e.do(http.MethodGet, membersURL+"/me", "", boss))
	assertProblem(t, e.do(http.MethodPost, loginURL, `{"email":"boss2@acme.com","password":"password-9"}`, ""), http.StatusUnauthorized)
	assert.Len(t, e.members("acme_corp"), 1)
	n, err := e.db.Collection("claims").CountDocuments(context.Background(), bson.D{{Key: "_id", Value: "email/boss2@acme.com"}})
	require.NoError(t, err)
	assert.Zero(t, n, "the removed member's email claim is released")
}

// TestOwnersDemoteEachOtherAtOnce: two owners demoting each other at the
// same moment leave exactly one owner, every time.
func TestOwnersDemoteEachOtherAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	for i := range 5 {
		tm := e.team(fmt.Sprintf("Pair %d", i))
		require.Equal(t, http.StatusOK, e.do(http.MethodPatch, membersURL+"/"+tm.ids[org.RoleAdmin], `{"role":"owner"}`, tm.tokens[org.RoleOwner]).Status)
		a, b := tm.tokens[org.RoleOwner], tm.tokens[org.RoleAdmin]
		var wg sync.WaitGroup
		statuses := make([]int, 2)
		for k, c := range []struct{ tok, victim string }{{a, tm.ids[org.RoleAdmin]}, {b, tm.ids[org.RoleOwner]}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses[k] = e.do(http.MethodPatch, membersURL+"/"+c.victim, `{"role":"member"}`, c.tok).Status
			}()
		}
		wg.Wait()
		owners := 0
		for _, m := range e.members(tm.slug) {
			if m["role"] == "owner" {
				owners++
			}
		}
		assert.Equal(t, 1, owners, "round %d: statuses %v", i, statuses)
		assert.Contains(t, statuses, http.StatusOK, "round %d", i)
	}
}

// A member's own email again, or a member's role again, changes nothing:
// 200 with the member as it is, no write, no token revoked, no event.
func TestMemberNoChangeIsNoEvent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	tm := e.team("Acme Corp")
	before := e.orgDoc(tm.slug)
	audit := e.docs(mongostore.AuditCollection)

	r := e.do(http.MethodPatch, membersURL+"/me", `{"email":"`+strings.ToUpper(tm.slug)+`-MEMBER@example.com","current_password":"password-1"}`, tm.tokens[org.RoleMember])
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.Equal(t, tm.slug+"-member@example.com", r.JSON(t)["email"])
	r = e.do(http.MethodPatch, membersURL+"/"+tm.ids[org.RoleAdmin], `{"role":"admin"}`, tm.tokens[org.RoleOwner])
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.Equal(t, "admin", r.JSON(t)["role"])

	assert.Equal(t, before, e.orgDoc(tm.slug), "nothing written")
	assert.Equal(t, audit, e.docs(mongostore.AuditCollection), "nothing recorded")
	assert.Equal(t, http.StatusOK, e.do(http.MethodGet, membersURL+"/me", "", tm.tokens[org.RoleMember]).Status, "the member's token still works")
}

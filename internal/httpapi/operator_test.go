package httpapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orgservice/orgservice/internal/dbtest"
	"github.com/orgservice/orgservice/internal/org"
)

// TestOperatorOff: without OPERATOR_API_KEY the operator API does not
// exist, whatever the request carries.
func TestOperatorOff(t *testing.T) {
	e := newEnv(t, org.Config{})
	o := e.create("Off", "admin@off.com", "correct-horse")
	for _, target := range []string{operatorURL, operatorURL + "/" + o["id"].(string)} {
		r := e.do(http.MethodGet, target, "", operatorKey)
		assert.Equal(t, http.StatusNotFound, r.Status, target)
		assert.Equal(t, "https://orgservice.dev/problems/not-found", r.JSON(t)["type"])
	}
	r := e.do(http.MethodPatch, operatorURL+"/"+o["id"].(string), `{"status":"suspended"}`, "")
	assert.Equal(t, http.StatusNotFound, r.Status)
}

// TestOperatorAuth: only the operator key opens the operator API; a
// missing or wrong key, another scheme or a member's own token is a 401
// and changes nothing.
func TestOperatorAuth(t *testing.T) {
	e := newOperatorEnv(t, dbtest.New(t))
	o := e.create("Keyed", "admin@keyed.com", "correct-horse")
	tok := e.login("admin@keyed.com", "correct-horse")
	target := operatorURL + "/" + o["id"].(string)
	for name, authz := range map[string]string{
		"none":         "",
		"member token": "Bearer " + tok,
		"wrong key":    "Bearer " + strings.Repeat("k", len(operatorKey)),
		"prefix":       "Bearer " + operatorKey[:len(operatorKey)-1],
		"longer":       "Bearer " + operatorKey + "x",
		"basic":        "Basic " + operatorKey,
		"bare key":     operatorKey,
	} {
		r := e.doAuth(http.MethodPatch, target, `{"status":"suspended"}`, authz)
		assert.Equal(t, http.StatusUnauthorized, r.Status, name)
		assert.NotEmpty(t, r.Header.Get("WWW-Authenticate"), name)
	}
	assert.Equal(t, "active", e.operator(http.MethodGet, target, "").JSON(t)["status"], "nothing changed")
	assert.Equal(t, http.StatusOK, e.doAuth(http.MethodGet, target, "", "bearer "+operatorKey).Status)
	// The operator key is no member's token either.
	assert.Equal(t, http.StatusUnauthorized, e.do(http.MethodGet, docsURL, "", operatorKey).Status)
}

// TestOperatorListing: search by name, slug or admin email prefix, any
// case; filter by status; sort by usage; page with the cursor, each
// organization once.
func TestOperatorListing(t *testing.T) {
	e := newOperatorEnv(t, dbtest.New(t))
	ids := map[string]string{}
	for i, name := range []string{"Alpha Co", "Alpine Ltd", "Beta", "Gamma", "Delta"} {
		email := fmt.Sprintf("boss@%s.com", strings.ToLower(strings.Fields(name)[0]))
		ids[name] = e.create(name, email, "correct-horse")["id"].(string)
		tok := e.login(email, "correct-horse")
		for d := range i {
			require.Equal(t, http.StatusCreated, e.do(http.MethodPost, docsURL, fmt.Sprintf(`{"id":"d%d"}`, d), tok).Status)
		}
	}
	names := func(r resp) []string {
		t.Helper()
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		var out []string
		for _, it := range r.JSON(t)["items"].([]any) {
			out = append(out, it.(map[string]any)["organization_name"].(string))
		}
		return out
	}
	list := func(q string) resp { return e.operator(http.MethodGet, operatorURL+q, "") }
	assert.Equal(t, []string{"Alpha Co", "Alpine Ltd", "Beta", "Delta", "Gamma"}, names(list("")))
	assert.Equal(t, []string{"Alpha Co", "Alpine Ltd"}, names(list("?q=ALP")))
	assert.Equal(t, []string{"Alpha Co"}, names(list("?q=alpha_c")), "by slug")
	assert.Equal(t, []string{"Gamma"}, names(list("?q=Boss@Gam")), "by admin email")
	assert.Equal(t, []string{"Delta", "Gamma", "Beta", "Alpine Ltd", "Alpha Co"}, names(list("?sort=-documents")))
	assert.Equal(t, []string{"Alpha Co", "Alpine Ltd", "Beta", "Gamma", "Delta"}, names(list("?sort=created_at")))
	first := list("?sort=-storage_bytes&limit=1").JSON(t)["items"].([]any)[0].(map[string]any)
	assert.Equal(t, "Delta", first["organization_name"])
	assert.Equal(t, float64(4), first["usage"].(map[string]any)["documents"])

	r := e.operator(http.MethodPatch, operatorURL+"/"+ids["Beta"], `{"status":"suspended"}`)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.Equal(t, []string{"Beta"}, names(list("?status=suspended")))
	assert.Equal(t, []string{"Alpha Co", "Alpine Ltd", "Delta", "Gamma"}, names(list("?status=active")))

	// Paging: every organization once, in order; Link gives the next page.
	var seen []string
	target := operatorURL + "?sort=-documents&limit=2"
	for pages := 0; target != ""; pages++ {
		require.Less(t, pages, 5)
		r := e.operator(http.MethodGet, target, "")
		seen = append(seen, names(r)...)
		target = ""
		if next, ok := r.JSON(t)["next"].(string); ok {
			target = operatorURL + "?sort=-documents&limit=2&after=" + url.QueryEscape(next)
			assert.Contains(t, r.Header.Get("Link"), "after=")
		}
	}
	assert.Equal(t, []string{"Delta", "Gamma", "Beta", "Alpine Ltd", "Alpha Co"}, seen)

	next := list("?limit=2").JSON(t)["next"].(string)
	for _, q := range []string{"?status=paused", "?sort=size", "?limit=0", "?limit=201", "?x=1", "?q=a&q=b",
		"?after=" + url.QueryEscape(next) + "&sort=documents", "?after=garbage"} {
		r := list(q)
		assert.Equal(t, http.StatusBadRequest, r.Status, q)
	}
}

// TestOperatorSuspension: a suspended organization's members cannot log
// in and its tokens get 403 organization-suspended on every route, on a
// second instance too; nothing is deleted, and reactivation restores
// everything, the old tokens included. Both are audited with the
// operator as actor.
func TestOperatorSuspension(t *testing.T) {
	db := dbtest.New(t)
	a, b := newOperatorEnv(t, db), newOperatorEnv(t, db)
	o := a.create("Sleepy", "owner@sleepy.com", "correct-horse")
	id := o["id"].(string)
	tok := a.login("owner@sleepy.com", "correct-horse")
	require.Equal(t, http.StatusCreated, a.do(http.MethodPost, docsURL, `{"id":"keep"}`, tok).Status)

	r := a.operator(http.MethodPatch, operatorURL+"/"+id, `{"status":"suspended","metadata":{"reason":"unpaid"}}`)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.Equal(t, "suspended", r.JSON(t)["status"])
	assert.Equal(t, map[string]any{"reason": "unpaid"}, r.JSON(t)["metadata"])

	suspended := func(e *env, method, target, body string) {
		t.Helper()
		r := e.do(method, target, body, tok)
		require.Equal(t, http.StatusForbidden, r.Status, "%s %s: %s", method, target, r.Body)
		assert.Equal(t, "https://orgservice.dev/problems/organization-suspended", r.JSON(t)["type"])
	}
	// The second instance sees it within its directory's refresh.
	require.Eventually(t, func() bool {
		return b.do(http.MethodGet, docsURL+"/keep", "", tok).Status == http.StatusForbidden
	}, 5*time.Second, 10*time.Millisecond)
	for _, e := range []*env{a, b} {
		suspended(e, http.MethodGet, docsURL+"/keep", "")
		suspended(e, http.MethodPost, docsURL, `{"id":"new"}`)
		suspended(e, http.MethodGet, "/api/v1/org/members/me", "")
		suspended(e, http.MethodGet, usageURL, "")
		suspended(e, http.MethodGet, "/api/v1/org/audit", "")
		suspended(e, http.MethodPut, "/api/v1/org/update", `{"organization_name":"Awake"}`)
		suspended(e, http.MethodPost, "/api/v1/admin/login", `{"email":"owner@sleepy.com","password":"correct-horse"}`)
		// A wrong password learns nothing of the suspension.
		r := e.do(http.MethodPost, "/api/v1/admin/login", `{"email":"owner@sleepy.com","password":"wrong-horse"}`, "")
		assert.Equal(t, http.StatusUnauthorized, r.Status)
	}
	assert.Equal(t, int64(1), a.countIn("org_sleepy"), "nothing deleted")
	assert.Equal(t, http.StatusOK, a.do(http.MethodGet, "/api/v1/org/get?organization_name=Sleepy", "", "").Status)

	r = b.operator(http.MethodPatch, operatorURL+"/"+id, `{"status":"active"}`)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	require.Eventually(t, func() bool {
		return a.do(http.MethodGet, docsURL+"/keep", "", tok).Status == http.StatusOK
	}, 5*time.Second, 10*time.Millisecond, "the old token works again")
	require.Equal(t, http.StatusCreated, b.do(http.MethodPost, docsURL, `{"id":"after"}`, tok).Status)

	r = a.do(http.MethodGet, "/api/v1/org/audit?limit=10", "", tok)
	require.Equal(t, http.StatusOK, r.Status)
	var actions []string
	for _, it := range r.JSON(t)["items"].([]any) {
		ev := it.(map[string]any)
		actions = append(actions, ev["action"].(string))
		switch ev["action"] {
		case "org.suspended", "org.reactivated":
			assert.Equal(t, map[string]any{"type": "operator", "member_id": "", "email": ""}, ev["actor"])
		case "login.failed":
			assert.Contains(t, []any{"organization suspended", "wrong password"}, ev["details"].(map[string]any)["reason"])
		}
	}
	assert.Contains(t, actions, "org.suspended")
	assert.Contains(t, actions, "org.reactivated")
	assert.Less(t, indexOf(actions, "org.reactivated"), indexOf(actions, "org.suspended"), "newest first")
}

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}

// TestOperatorBadInput: an unknown field, status or quota name, a negative,
// absurd or fractional quota and metadata out of bounds are 400 or 422,
// and change nothing: no write, no event.
func TestOperatorBadInput(t *testing.T) {
	e := newOperatorEnv(t, dbtest.New(t))
	o := e.create("Careful", "admin@careful.com", "correct-horse")
	tok := e.login("admin@careful.com", "correct-horse")
	target := operatorURL + "/" + o["id"].(string)
	before := e.operator(http.MethodGet, target, "").JSON(t)
	tooMany := map[string]string{}
	for i := range org.MaxMetadataKeys + 1 {
		tooMany[fmt.Sprintf("k%d", i)] = "v"
	}
	for _, tc := range []struct {
		body   string
		status int
	}{
		{`{"state":"suspended"}`, http.StatusBadRequest},
		{`{"quotas":{"docs":5}}`, http.StatusBadRequest},
		{`{"quotas":{"documents":1.5}}`, http.StatusBadRequest},
		{`{"quotas":{"documents":"5"}}`, http.StatusBadRequest},
		{`{"status":1}`, http.StatusBadRequest},
		{`{"metadata":["a"]}`, http.StatusBadRequest},
		{`{"metadata":{"a":1}}`, http.StatusBadRequest},
		{`{"status":"paused"}`, http.StatusUnprocessableEntity},
		{`{"status":"suspended","quotas":{"documents":-1}}`, http.StatusUnprocessableEntity},
		{`{"quotas":{"storage_bytes":99999999999999999999}}`, http.StatusUnprocessableEntity},
		{`{"quotas":{"members":10001}}`, http.StatusUnprocessableEntity},
		{`{"quotas":{"documents":1000000001}}`, http.StatusUnprocessableEntity},
		{`{"status":"suspended","metadata":{"bad key":"v"}}`, http.StatusUnprocessableEntity},
		{`{"metadata":{"k":"` + strings.Repeat("v", 257) + `"}}`, http.StatusUnprocessableEntity},
		{mustJSON(t, map[string]any{"metadata": tooMany}), http.StatusUnprocessableEntity},
	} {
		r := e.operator(http.MethodPatch, target, tc.body)
		assert.Equal(t, tc.status, r.Status, "%s: %s", tc.body, r.Body)
	}
	assert.Equal(t, before, e.operator(http.MethodGet, target, "").JSON(t), "nothing changed")
	assert.Equal(t, http.StatusNotFound, e.operator(http.MethodGet, operatorURL+"/665f1c2e8b3a4d0012ab34cd", "").Status)
	assert.Equal(t, http.StatusNotFound, e.operator(http.MethodPatch, operatorURL+"/nope", `{"status":"active"}`).Status)
	r := e.do(http.MethodGet, "/api/v1/org/audit", "", tok)
	for _, it := range r.JSON(t)["items"].([]any) {
		assert.NotContains(t, []string{"org.suspended", "org.quotas_changed"}, it.(map[string]any)["action"])
	}
}

// TestOperatorQuotas: a quota change is audited with from and to, null
// gives the default back, and the same values again change nothing.
func TestOperatorQuotas(t *testing.T) {
	e := newOperatorEnv(t, dbtest.New(t))
	o := e.create("Capped", "admin@capped.com", "correct-horse")
	tok := e.login("admin@capped.com", "correct-horse")
	target := operatorURL + "/" + o["id"].(string)
	r := e.operator(http.MethodPatch, target, `{"quotas":{"documents":10,"members":5}}`)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.Equal(t, map[string]any{"documents": float64(10), "storage_bytes": float64(org.DefaultQuotaStorageBytes), "members": float64(5)}, r.JSON(t)["quotas"])
	updated := r.JSON(t)["updated_at"]
	r = e.operator(http.MethodPatch, target, `{"quotas":{"documents":10}}`)
	assert.Equal(t, updated, r.JSON(t)["updated_at"], "nothing changed, nothing written")
	r = e.operator(http.MethodPatch, target, `{"quotas":{"documents":null},"metadata":{"plan":"pro"}}`)
	assert.Equal(t, float64(org.DefaultQuotaDocuments), r.JSON(t)["quotas"].(map[string]any)["documents"])
	r = e.operator(http.MethodPatch, target, `{"metadata":{"plan":null,"crm":"42"}}`)
	assert.Equal(t, map[string]any{"crm": "42"}, r.JSON(t)["metadata"])

	r = e.do(http.MethodGet, "/api/v1/org/audit", "", tok)
	var changes []map[string]any
	for _, it := range r.JSON(t)["items"].([]any) {
		if ev := it.(map[string]any); ev["action"] == "org.quotas_changed" {
			changes = append(changes, ev["details"].(map[string]any))
		}
	}
	require.Len(t, changes, 2)
	assert.Equal(t, map[string]any{"documents_from": "10", "documents_to": "1000000"}, changes[0])
	assert.Equal(t, map[string]any{"documents_from": "1000000", "documents_to": "10", "members_from": "1000", "members_to": "5"}, changes[1])
}

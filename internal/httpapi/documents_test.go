package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgservice/orgservice/internal/httpapi"
	"github.com/orgservice/orgservice/internal/org"
)

const (
	docsURL   = "/api/v1/org/documents"
	exportURL = "/api/v1/org/export"
	importURL = "/api/v1/org/import"
)

// tenant is an organization and its first owner's token.
type tenant struct {
	id, name, coll, token string
}

// tenants numbers the first owners' emails, so that a name may be created again.
var tenants atomic.Int64

// tenant creates an organization and logs its first owner in.
func (e *env) tenant(name string) tenant {
	e.t.Helper()
	email := fmt.Sprintf("%s-%d@example.com", strings.ToLower(strings.ReplaceAll(name, " ", "")), tenants.Add(1))
	o := e.create(name, email, "password-1")
	return tenant{id: o["id"].(string), name: name, coll: o["collection_name"].(string), token: e.login(email, "password-1")}
}

// call sends a request with a body of content type ct (JSON when "" and a
// body is given) and extra headers as name, value pairs.
func (e *env) call(method, target, body, token, ct string, hdr ...string) resp {
	e.t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if body != "" {
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	return e.send(req)
}

// post creates a document and fails the test unless it is created.
func (e *env) post(tn tenant, body string) map[string]any {
	e.t.Helper()
	r := e.call(http.MethodPost, docsURL, body, tn.token, "")
	require.Equal(e.t, http.StatusCreated, r.Status, "%s", r.Body)
	return r.JSON(e.t)
}

// stored returns the raw documents of a collection by _id.
func (e *env) stored(coll string) map[string]bson.M {
	e.t.Helper()
	cur, err := e.db.Collection(coll).Find(context.Background(), bson.D{})
	require.NoError(e.t, err)
	var docs []bson.M
	require.NoError(e.t, cur.All(context.Background(), &docs))
	out := map[string]bson.M{}
	for _, d := range docs {
		out[fmt.Sprint(d["_id"])] = d
	}
	return out
}

func TestDocumentsCRUD(t *testing.T) {
	e := newEnv(t, org.Config{})
	a := e.tenant("Acme")

	r := e.call(http.MethodPost, docsURL, `{"id":"inv-1","customer":"Initech","total":1250.5,"qty":3,"tags":["a","b"],"meta":{"paid":false}}`, a.token, "")
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	assert.Equal(t, docsURL+"/inv-1", r.Header.Get("Location"))
	assert.Equal(t, `"1"`, r.Header.Get("ETag"))
	doc := r.JSON(t)
	assert.Equal(t, "inv-1", doc["id"])
	assert.EqualValues(t, 1, doc["version"])
	assert.Equal(t, map[string]any{"customer": "Initech", "total": 1250.5, "qty": 3.0, "tags": []any{"a", "b"}, "meta": map[string]any{"paid": false}}, doc["data"])
	assert.Equal(t, doc["created_at"], doc["updated_at"])
	assert.Contains(t, string(r.Body), `{"customer":"Initech","total":1250.5,"qty":3,`, "members keep their order")

	// Stored as the API shows it, in the organization's own collection.
	st := e.stored(a.coll)["inv-1"]
	require.NotNil(t, st)
	assert.ElementsMatch(t, []string{"_id", "data", "version", "created_at", "updated_at"}, keys(st))
	assert.Equal(t, int32(1), st["version"])
	assert.Equal(t, "Initech", dataOf(st)["customer"])
	assert.Equal(t, int32(3), dataOf(st)["qty"])

	// Without an id the server makes one.
	gen := e.post(a, `{"customer":"Initrode"}`)
	assert.Regexp(t, `^[0-9a-f]{24}$`, gen["id"])
	assert.NotContains(t, gen["data"], "id")

	// The same id again is a conflict and changes nothing.
	r = e.call(http.MethodPost, docsURL, `{"id":"inv-1","customer":"Other"}`, a.token, "")
	assertProblem(t, r, http.StatusConflict)
	assert.Equal(t, "Initech", dataOf(e.stored(a.coll)["inv-1"])["customer"])

	// GET, and If-None-Match.
	r = e.call(http.MethodGet, docsURL+"/inv-1", "", a.token, "")
	require.Equal(t, http.StatusOK, r.Status)
	assert.Equal(t, `"1"`, r.Header.Get("ETag"))
	assert.JSONEq(t, mustJSON(t, doc), string(r.Body))
	r = e.call(http.MethodGet, docsURL+"/inv-1", "", a.token, "", "If-None-Match", `"1"`)
	require.Equal(t, http.StatusNotModified, r.Status)
	assert.Empty(t, r.Body)
	assert.Equal(t, `"1"`, r.Header.Get("ETag"))
	r = e.call(http.MethodGet, docsURL+"/inv-1", "", a.token, "", "If-None-Match", `"0", W/"7"`)
	require.Equal(t, http.StatusOK, r.Status)

	// PUT replaces data; version + 1.
	r = e.call(http.MethodPut, docsURL+"/inv-1", `{"customer":"Initech","total":99}`, a.token, "", "If-Match", `"1"`)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.Equal(t, `"2"`, r.Header.Get("ETag"))
	put := r.JSON(t)
	assert.Equal(t, map[string]any{"customer": "Initech", "total": 99.0}, put["data"])
	assert.Equal(t, doc["created_at"], put["created_at"])
	r = e.call(http.MethodPut, docsURL+"/inv-1", `{"total":1}`, a.token, "", "If-Match", `"1"`)
	assertProblem(t, r, http.StatusPreconditionFailed)
	r = e.call(http.MethodPut, docsURL+"/inv-1", `{"id":"other","total":1}`, a.token, "")
	assertProblem(t, r, http.StatusUnprocessableEntity)

	// PATCH merges; version + 1.
	r = e.call(http.MethodPatch, docsURL+"/inv-1", `{"total":null,"paid":true,"meta":{"n":1}}`, a.token, "application/merge-patch+json", "If-Match", `"2"`)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.Equal(t, `"3"`, r.Header.Get("ETag"))
	assert.Equal(t, map[string]any{"customer": "Initech", "paid": true, "meta": map[string]any{"n": 1.0}}, r.JSON(t)["data"])
	r = e.call(http.MethodPatch, docsURL+"/inv-1", `{"paid":false}`, a.token, "application/json")
	assertProblem(t, r, http.StatusUnsupportedMediaType)
	st = e.stored(a.coll)["inv-1"]
	assert.Equal(t, int32(3), st["version"])
	assert.Equal(t, true, dataOf(st)["paid"])

	// DELETE honours If-Match.
	r = e.call(http.MethodDelete, docsURL+"/inv-1", "", a.token, "", "If-Match", `"2"`)
	assertProblem(t, r, http.StatusPreconditionFailed)
	r = e.call(http.MethodDelete, docsURL+"/inv-1", "", a.token, "", "If-Match", `"3"`)
	require.Equal(t, http.StatusNoContent, r.Status, "%s", r.Body)
	assert.NotContains(t, e.stored(a.coll), "inv-1")
	for _, m := range []string{http.MethodGet, http.MethodDelete} {
		assertProblem(t, e.call(m, docsURL+"/inv-1", "", a.token, ""), http.StatusNotFound)
	}
	assertProblem(t, e.call(http.MethodPut, docsURL+"/inv-1", `{}`, a.token, ""), http.StatusNotFound)

	// Created again, it starts over at version 1.
	again := e.post(a, `{"id":"inv-1","v":2}`)
	assert.EqualValues(t, 1, again["version"])
	r = e.call(http.MethodPut, docsURL+"/inv-1", `{"v":3}`, a.token, "", "If-Match", `"1"`)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)

	// No version claim is left behind.
	n, err := e.db.Collection("doc_versions").CountDocuments(context.Background(), bson.D{})
	require.NoError(t, err)
	assert.Zero(t, n)

	// Every route needs the token.
	for _, c := range [][2]string{{http.MethodGet, docsURL}, {http.MethodPost, docsURL}, {http.MethodGet, docsURL + "/x"},
		{http.MethodPut, docsURL + "/x"}, {http.MethodPatch, docsURL + "/x"}, {http.MethodDelete, docsURL + "/x"},
		{http.MethodGet, exportURL}, {http.MethodPost, importURL}} {
		assertProblem(t, e.call(c[0], c[1], "", "", ""), http.StatusUnauthorized)
	}
}

// Every bad input is a 4xx problem and writes nothing.
func TestDocumentsBadInputChangesNothing(t *testing.T) {
	e := newEnv(t, org.Config{})
	a := e.tenant("Acme")
	e.post(a, `{"id":"keep","n":1}`)

	big := `{"s":"` + strings.Repeat("x", 256<<10) + `"}`
	deep := strings.Repeat(`{"a":`, 32) + "{}" + strings.Repeat("}", 32)
	tests := []struct {
		name, method, target, body, ct string
		status                         int
	}{
		{"array", http.MethodPost, docsURL, `[{"a":1}]`, "", 400},
		{"string", http.MethodPost, docsURL, `"x"`, "", 400},
		{"malformed", http.MethodPost, docsURL, `{"a":`, "", 400},
		{"empty", http.MethodPost, docsURL, ``, "", 400},
		{"trailing", http.MethodPost, docsURL, `{"a":1}{"b":2}`, "", 400},
		{"$where", http.MethodPost, docsURL, `{"$where":"sleep(100)"}`, "", 422},
		{"nested $gt", http.MethodPost, docsURL, `{"a":{"$gt":1}}`, "", 422},
		{"$ in array", http.MethodPost, docsURL, `{"a":[{"$set":{"x":1}}]}`, "", 422},
		{"dot key", http.MethodPost, docsURL, `{"a.b":1}`, "", 422},
		{"NUL key", http.MethodPost, docsURL, `{"a\u0000":1}`, "", 422},
		{"repeated key", http.MethodPost, docsURL, `{"a":1,"a":2}`, "", 422},
		{"too deep", http.MethodPost, docsURL, deep, "", 422},
		{"too large", http.MethodPost, docsURL, big, "", 413},
		{"id not a string", http.MethodPost, docsURL, `{"id":7}`, "", 422},
		{"id with a space", http.MethodPost, docsURL, `{"id":"a b"}`, "", 422},
		{"id too long", http.MethodPost, docsURL, `{"id":"` + strings.Repeat("x", 129) + `"}`, "", 422},
		{"id ..", http.MethodPost, docsURL, `{"id":".."}`, "", 422},
		{"put $ key", http.MethodPut, docsURL + "/keep", `{"$inc":{"n":1}}`, "", 422},
		{"put too large", http.MethodPut, docsURL + "/keep", big, "", 413},
		{"put not an object", http.MethodPut, docsURL + "/keep", `[]`, "", 400},
		{"patch $ key", http.MethodPatch, docsURL + "/keep", `{"$set":{"n":2}}`, "application/merge-patch+json", 422},
		{"patch not an object", http.MethodPatch, docsURL + "/keep", `null`, "application/merge-patch+json", 400},
		{"patch too deep", http.MethodPatch, docsURL + "/keep", deep, "application/merge-patch+json", 422},
		{"patch wrong type", http.MethodPatch, docsURL + "/keep", `{"n":2}`, "text/plain", 415},
		{"patch changes id", http.MethodPatch, docsURL + "/keep", `{"id":"other"}`, "application/merge-patch+json", 422},
		{"invalid id in path", http.MethodGet, docsURL + "/a%20b", "", "", 404},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.stored(a.coll)
			r := e.call(tt.method, tt.target, tt.body, a.token, tt.ct)
			assertProblem(t, r, tt.status)
			assert.Equal(t, before, e.stored(a.coll), "nothing written")
		})
	}
	// A patch whose result nests too deep is refused too.
	r := e.call(http.MethodPut, docsURL+"/keep", strings.Repeat(`{"a":`, 31)+"{}"+strings.Repeat("}", 31), a.token, "")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	before := e.stored(a.coll)
	patch := `{"a":` + strings.Repeat(`{"a":`, 30) + `{"b":{"c":1}}` + strings.Repeat("}", 30) + `}`
	assertProblem(t, e.call(http.MethodPatch, docsURL+"/keep", patch, a.token, "application/merge-patch+json"), http.StatusUnprocessableEntity)
	assert.Equal(t, before, e.stored(a.coll))
}

// A token of A never reads, lists, changes, exports or deletes B's
// documents, even by id; and the answers never tell whether B has an id.
func TestDocumentsIsolation(t *testing.T) {
	e := newEnv(t, org.Config{})
	a, b := e.tenant("Acme"), e.tenant("Globex")
	e.post(b, `{"id":"b-only","secret":"b"}`)
	e.post(b, `{"id":"shared","owner":"b"}`)
	e.post(a, `{"id":"shared","owner":"a"}`)
	bBefore := e.stored(b.coll)

	for _, id := range []string{"b-only", "never-existed"} {
		for _, c := range []struct{ method, body, ct string }{
			{http.MethodGet, "", ""},
			{http.MethodPut, `{"owner":"a"}`, ""},
			{http.MethodPatch, `{"owner":"a"}`, "application/merge-patch+json"},
			{http.MethodDelete, "", ""},
		} {
			r := e.call(c.method, docsURL+"/"+id, c.body, a.token, c.ct)
			p := assertProblem(t, r, http.StatusNotFound)
			assert.Equal(t, "document not found", p["detail"], "the same answer whether or not B has %s", id)
		}
	}
	r := e.call(http.MethodGet, docsURL+"/shared", "", a.token, "")
	require.Equal(t, http.StatusOK, r.Status)
	assert.Equal(t, "a", r.JSON(t)["data"].(map[string]any)["owner"])

	r = e.call(http.MethodGet, docsURL, "", a.token, "")
	require.Equal(t, http.StatusOK, r.Status)
	assert.Equal(t, []string{"shared"}, itemIDs(t, r))
	r = e.call(http.MethodGet, docsURL+"?filter[secret]=b", "", a.token, "")
	assert.Empty(t, itemIDs(t, r))

	r = e.call(http.MethodGet, exportURL, "", a.token, "")
	require.Equal(t, http.StatusOK, r.Status)
	assert.NotContains(t, string(r.Body), "b-only")
	assert.Equal(t, 1, strings.Count(string(r.Body), "\n"))

	// An import by A with B's ids lands in A's collection only.
	r = e.call(http.MethodPost, importURL, `{"id":"b-only","data":{"owner":"a"}}`+"\n", a.token, "application/x-ndjson")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.EqualValues(t, 1, r.JSON(t)["inserted"])
	assert.Equal(t, "a", dataOf(e.stored(a.coll)["b-only"])["owner"])

	assert.Equal(t, bBefore, e.stored(b.coll), "B's collection is untouched")
	r = e.call(http.MethodGet, docsURL+"/b-only", "", b.token, "")
	assert.Equal(t, "b", r.JSON(t)["data"].(map[string]any)["secret"])
}

// dataOf returns the data of a stored document.
func dataOf(st bson.M) bson.M {
	out := bson.M{}
	d, _ := st["data"].(bson.D)
	for _, e := range d {
		out[e.Key] = e.Value
	}
	return out
}

func itemIDs(t testing.TB, r resp) []string {
	t.Helper()
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	var out []string
	for _, it := range r.JSON(t)["items"].([]any) {
		out = append(out, it.(map[string]any)["id"].(string))
	}
	return out
}

// After a delete the token is dead and the documents are gone; a new
// organization of the same name starts empty.
func TestDocumentsAfterOrganizationDelete(t *testing.T) {
	e := newEnv(t, org.Config{})
	a := e.tenant("Acme")
	for i := range 5 {
		e.post(a, fmt.Sprintf(`{"id":"d%d"}`, i))
	}
	r := e.call(http.MethodDelete, "/api/v1/org/delete?organization_name=Acme", "", a.token, "")
	require.Equal(t, http.StatusNoContent, r.Status, "%s", r.Body)
	assert.Empty(t, e.collections())
	for _, c := range [][2]string{{http.MethodGet, docsURL}, {http.MethodGet, docsURL + "/d1"}, {http.MethodGet, exportURL}} {
		assertProblem(t, e.call(c[0], c[1], "", a.token, ""), http.StatusUnauthorized)
	}
	assertProblem(t, e.call(http.MethodPost, docsURL, `{"id":"d9"}`, a.token, ""), http.StatusUnauthorized)
	assert.Empty(t, e.collections(), "a refused write re-creates no collection")

	again := e.tenant("Acme")
	r = e.call(http.MethodGet, docsURL, "", again.token, "")
	assert.Empty(t, itemIDs(t, r))
	assertProblem(t, e.call(http.MethodGet, docsURL+"/d1", "", again.token, ""), http.StatusNotFound)
}

func TestDocumentsRateLimitPerOrganization(t *testing.T) {
	e := newEnvWith(t, org.Config{}, httpapiOptions(3))
	a, b := e.tenant("Acme"), e.tenant("Globex")
	for range 3 {
		require.Equal(t, http.StatusOK, e.call(http.MethodGet, docsURL, "", a.token, "").Status)
	}
	r := e.call(http.MethodPost, docsURL, `{"id":"x"}`, a.token, "")
	assertProblem(t, r, http.StatusTooManyRequests)
	assert.NotEmpty(t, r.Header.Get("Retry-After"))
	assert.NotContains(t, e.stored(a.coll), "x", "a limited write writes nothing")
	require.Equal(t, http.StatusOK, e.call(http.MethodGet, docsURL, "", b.token, "").Status, "another organization has its own budget")
	assert.Contains(t, e.metricsText(), `orgservice_rate_limited_total{limit="data"} 1`)
}

func TestDocumentsMetricsByRoute(t *testing.T) {
	e := newEnv(t, org.Config{})
	a := e.tenant("Acme")
	e.post(a, `{"id":"m1"}`)
	e.call(http.MethodGet, docsURL+"/m1", "", a.token, "")
	e.call(http.MethodGet, docsURL+"/nope", "", a.token, "")
	text := e.metricsText()
	assert.Contains(t, text, `http_requests_total{method="POST",route="/api/v1/org/documents",status="201"} 1`)
	assert.Contains(t, text, `http_requests_total{method="GET",route="/api/v1/org/documents/{id}",status="200"} 1`)
	assert.Contains(t, text, `http_requests_total{method="GET",route="/api/v1/org/documents/{id}",status="404"} 1`)
	assert.NotContains(t, text, "m1")
}

// waitFor polls cond for up to d.
func waitFor(t testing.TB, d time.Duration, cond func() bool, msg string) {
	t.Helper()
	require.Eventually(t, cond, d, 20*time.Millisecond, msg)
}

// httpapiOptions are the Options of a server whose data limit is rate a minute.
func httpapiOptions(rate int) httpapi.Options { return httpapi.Options{DataRatePerMin: rate} }

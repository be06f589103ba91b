package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgservice/orgservice/internal/app/apptest"
	"github.com/orgservice/orgservice/internal/dbtest"
	"github.com/orgservice/orgservice/internal/document"
	"github.com/orgservice/orgservice/internal/org"
	"github.com/orgservice/orgservice/internal/usage"
)

const (
	usageURL    = "/api/v1/org/usage"
	operatorKey = "operator-key-0123456789abcdef-0123456789abcdef"
	operatorURL = "/api/v1/operator/organizations"
)

// newOperatorEnv is one instance of the service over db with the operator
// API on.
func newOperatorEnv(t testing.TB, db *mongo.Database) *env {
	t.Helper()
	c := apptest.Config()
	c.HTTP.OperatorAPIKey = operatorKey
	return newEnvFrom(t, db, c)
}

// operator sends a request with the operator key.
func (e *env) operator(method, target, body string) resp {
	e.t.Helper()
	return e.do(method, target, body, operatorKey)
}

// setQuotas caps organization id through the operator API.
func (e *env) setQuotas(id string, quotas map[string]any) {
	e.t.Helper()
	r := e.operator(http.MethodPatch, operatorURL+"/"+id, mustJSON(e.t, map[string]any{"quotas": quotas}))
	require.Equal(e.t, http.StatusOK, r.Status, "%s", r.Body)
}

// usage reads the organization's usage with token.
func (e *env) usage(token string) map[string]any {
	e.t.Helper()
	r := e.do(http.MethodGet, usageURL, "", token)
	require.Equal(e.t, http.StatusOK, r.Status, "%s", r.Body)
	return r.JSON(e.t)
}

func used(u map[string]any, quota string) int64 {
	return int64(u[quota].(map[string]any)["used"].(float64))
}

func limitOf(u map[string]any, quota string) int64 {
	return int64(u[quota].(map[string]any)["limit"].(float64))
}

// countIn counts the documents of a tenant collection.
func (e *env) countIn(coll string) int64 {
	e.t.Helper()
	n, err := e.db.Collection(coll).CountDocuments(context.Background(), bson.D{})
	require.NoError(e.t, err)
	return n
}

// TestQuotaLastSlotsAcrossInstances: writers on two instances sharing one
// database race for the last free documents of a quota; exactly the free
// ones are created, the rest get 403 quota-exceeded naming the quota, its
// limit and the usage, and the count says what the collection holds.
func TestQuotaLastSlotsAcrossInstances(t *testing.T) {
	db := dbtest.New(t)
	a, b := newOperatorEnv(t, db), newOperatorEnv(t, db)
	o := a.create("Racy", "admin@racy.com", "correct-horse")
	tok := a.login("admin@racy.com", "correct-horse")
	id := o["id"].(string)
	for i := range 5 {
		r := a.do(http.MethodPost, docsURL, fmt.Sprintf(`{"id":"pre-%d"}`, i), tok)
		require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	}
	a.setQuotas(id, map[string]any{"documents": 12})
	require.Eventually(t, func() bool {
		return b.operator(http.MethodGet, operatorURL+"/"+id, "").JSON(t)["quotas"].(map[string]any)["documents"] == float64(12)
	}, 5*time.Second, 20*time.Millisecond, "the second instance sees the quota")

	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for w := range 30 {
		wg.Go(func() {
			e := []*env{a, b}[w%2]
			r := e.do(http.MethodPost, docsURL, fmt.Sprintf(`{"id":"w-%d","n":%d}`, w, w), tok)
			mu.Lock()
			statuses[r.Status]++
			mu.Unlock()
			if r.Status == http.StatusForbidden {
				p := r.JSON(t)
				assert.Equal(t, "https://orgservice.dev/problems/quota-exceeded", p["type"])
				assert.Equal(t, "documents", p["quota"])
				assert.Equal(t, float64(12), p["limit"])
				assert.Equal(t, float64(12), p["used"])
			}
		})
	}
	wg.Wait()
	assert.Equal(t, map[int]int{http.StatusCreated: 7, http.StatusForbidden: 23}, statuses)
	assert.Equal(t, int64(12), a.countIn("org_racy"), "never past the quota")
	u := b.usage(tok)
	assert.Equal(t, int64(12), used(u, "documents"))
	assert.Equal(t, int64(12), limitOf(u, "documents"))
	// A delete frees a slot, for either instance.
	require.Equal(t, http.StatusNoContent, a.do(http.MethodDelete, docsURL+"/pre-0", "", tok).Status)
	t.Logf("after delete: %v", a.usage(tok))
	rr := b.do(http.MethodPost, docsURL, `{"id":"late"}`, tok)
	require.Equal(t, http.StatusCreated, rr.Status, "%s", rr.Body)
	require.Equal(t, http.StatusForbidden, a.do(http.MethodPost, docsURL, `{"id":"later"}`, tok).Status)
}

// TestStorageQuota: a document counts for its JSON as the API returns it;
// a write that would grow past the storage quota is refused and writes
// nothing, one that shrinks always passes, and a delete frees its bytes.
func TestStorageQuota(t *testing.T) {
	e := newOperatorEnv(t, dbtest.New(t))
	o := e.create("Store", "admin@store.com", "correct-horse")
	tok := e.login("admin@store.com", "correct-horse")
	r := e.do(http.MethodPost, docsURL, `{"id":"d1","text":"hello"}`, tok)
	require.Equal(t, http.StatusCreated, r.Status)
	size := int64(len(strings.TrimSpace(string(r.Body))))
	u := e.usage(tok)
	assert.Equal(t, int64(1), used(u, "documents"))
	assert.Equal(t, size, used(u, "storage_bytes"), "stored size is the document's JSON as answered")
	assert.Equal(t, int64(1), used(u, "members"))
	assert.Equal(t, int64(org.DefaultQuotaStorageBytes), limitOf(u, "storage_bytes"))

	e.setQuotas(o["id"].(string), map[string]any{"storage_bytes": size + 20})
	big := `{"text":"` + strings.Repeat("x", 100) + `"}`
	r = e.do(http.MethodPut, docsURL+"/d1", big, tok)
	require.Equal(t, http.StatusForbidden, r.Status, "%s", r.Body)
	assert.Equal(t, "storage_bytes", r.JSON(t)["quota"])
	r = e.do(http.MethodGet, docsURL+"/d1", "", tok)
	assert.Contains(t, string(r.Body), `"hello"`, "nothing written")
	assert.Equal(t, float64(1), r.JSON(t)["version"])
	r = e.do(http.MethodPost, docsURL, big, tok)
	require.Equal(t, http.StatusForbidden, r.Status)

	// The operator lowers the quota below the usage: shrinking still passes.
	e.setQuotas(o["id"].(string), map[string]any{"storage_bytes": 10})
	r = e.do(http.MethodPut, docsURL+"/d1", `{"t":"h"}`, tok)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.Equal(t, int64(len(strings.TrimSpace(string(r.Body)))), used(e.usage(tok), "storage_bytes"))
	require.Equal(t, http.StatusNoContent, e.do(http.MethodDelete, docsURL+"/d1", "", tok).Status)
	u = e.usage(tok)
	assert.Equal(t, int64(0), used(u, "documents"))
	assert.Equal(t, int64(0), used(u, "storage_bytes"))
}

// TestImportPastQuota: an import takes the lines that fit and rejects each
// line past the quota by its number; importing again skips what exists.
func TestImportPastQuota(t *testing.T) {
	e := newOperatorEnv(t, dbtest.New(t))
	o := e.create("Importer", "admin@importer.com", "correct-horse")
	tok := e.login("admin@importer.com", "correct-horse")
	e.setQuotas(o["id"].(string), map[string]any{"documents": 3})
	var lines []string
	for i := range 5 {
		lines = append(lines, fmt.Sprintf(`{"id":"i%d","data":{"n":%d}}`, i, i))
	}
	body := strings.Join(lines, "\n") + "\n"
	res := e.importBody(tok, body)
	assert.Equal(t, float64(3), res["inserted"])
	rej := res["rejected"].([]any)
	require.Len(t, rej, 2)
	assert.Equal(t, float64(4), rej[0].(map[string]any)["line"])
	assert.Equal(t, float64(5), rej[1].(map[string]any)["line"])
	assert.Contains(t, rej[0].(map[string]any)["message"], "documents quota")
	assert.Equal(t, int64(3), e.countIn("org_importer"))
	assert.Equal(t, int64(3), used(e.usage(tok), "documents"))

	// Room freed, the same import again: the lines that exist are
	// skipped and their room given back, and the rest fit.
	require.Equal(t, http.StatusNoContent, e.do(http.MethodDelete, docsURL+"/i0", "", tok).Status)
	e.setQuotas(o["id"].(string), map[string]any{"documents": 5})
	res = e.importBody(tok, body)
	assert.Equal(t, float64(3), res["inserted"], "%v", res)
	assert.Equal(t, float64(2), res["skipped_existing"])
	assert.Empty(t, res["rejected"])
	assert.Equal(t, int64(5), used(e.usage(tok), "documents"))
	assert.Equal(t, int64(5), e.countIn("org_importer"))
}

func (e *env) importBody(token, body string) map[string]any {
	e.t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/api/v1/org/import", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-ndjson")
	req.Header.Set("Authorization", "Bearer "+token)
	r := e.send(req)
	require.Equal(e.t, http.StatusOK, r.Status, "%s", r.Body)
	return r.JSON(e.t)
}

// TestUsageAcrossRenameAndDelete: a rename moves the documents and keeps
// the count; a deleted organization's count goes with it, and one created
// again under the name starts at zero.
func TestUsageAcrossRenameAndDelete(t *testing.T) {
	e := newOperatorEnv(t, dbtest.New(t))
	e.create("Mover", "admin@mover.com", "correct-horse")
	tok := e.login("admin@mover.com", "correct-horse")
	for i := range 4 {
		require.Equal(t, http.StatusCreated, e.do(http.MethodPost, docsURL, fmt.Sprintf(`{"id":"m%d"}`, i), tok).Status)
	}
	before := e.usage(tok)
	r := e.do(http.MethodPut, "/api/v1/org/update", `{"organization_name":"Moved"}`, tok)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.Equal(t, before, e.usage(tok))
	assert.Equal(t, int64(4), e.countIn("org_moved"))
	require.Equal(t, http.StatusNoContent, e.do(http.MethodDelete, "/api/v1/org/delete?organization_name=Moved", "", tok).Status)
	n, err := e.db.Collection("usage").CountDocuments(context.Background(), bson.D{})
	require.NoError(t, err)
	assert.Equal(t, int64(0), n, "a deleted organization's count is removed")
	e.create("Moved", "admin@mover.com", "correct-horse")
	tok = e.login("admin@mover.com", "correct-horse")
	assert.Equal(t, int64(0), used(e.usage(tok), "documents"))
}

// TestMembersQuota: the members quota refuses the member past it with 403
// quota-exceeded, exactly, since members are written under the lease.
func TestMembersQuota(t *testing.T) {
	e := newOperatorEnv(t, dbtest.New(t))
	o := e.create("Team", "owner@team.com", "correct-horse")
	tok := e.login("owner@team.com", "correct-horse")
	e.setQuotas(o["id"].(string), map[string]any{"members": 2})
	add := func(email string) resp {
		return e.do(http.MethodPost, "/api/v1/org/members", mustJSON(t, map[string]string{"email": email, "password": "password-1", "role": "member"}), tok)
	}
	require.Equal(t, http.StatusCreated, add("a@team.com").Status)
	r := add("b@team.com")
	require.Equal(t, http.StatusForbidden, r.Status, "%s", r.Body)
	p := r.JSON(t)
	assert.Equal(t, "members", p["quota"])
	assert.Equal(t, float64(2), p["limit"])
	assert.Equal(t, float64(2), p["used"])
	u := e.usage(tok)
	assert.Equal(t, int64(2), used(u, "members"))
	assert.Equal(t, int64(2), limitOf(u, "members"))
	// The email was not kept: another organization may take it.
	e.create("Other", "b@team.com", "correct-horse")
}

// TestUsageRoles: owners and admins read the usage, members do not.
func TestUsageRoles(t *testing.T) {
	e := newOperatorEnv(t, dbtest.New(t))
	e.create("Roles", "owner@roles.com", "correct-horse")
	tok := e.login("owner@roles.com", "correct-horse")
	r := e.do(http.MethodPost, "/api/v1/org/members", `{"email":"m@roles.com","password":"password-1","role":"member"}`, tok)
	require.Equal(t, http.StatusCreated, r.Status)
	mtok := e.login("m@roles.com", "password-1")
	assert.Equal(t, http.StatusForbidden, e.do(http.MethodGet, usageURL, "", mtok).Status)
	assert.Equal(t, http.StatusUnauthorized, e.do(http.MethodGet, usageURL, "", "").Status)
	assert.Equal(t, http.StatusBadRequest, e.do(http.MethodGet, usageURL+"?x=1", "", tok).Status)
}

// TestRecountRepairsDrift: a count left high by a writer that died (its
// registration expired in place) or marked by a live one is recounted by
// the reconciler from the collection.
func TestRecountRepairsDrift(t *testing.T) {
	e := newOperatorEnv(t, dbtest.New(t))
	o := e.create("Drift", "admin@drift.com", "correct-horse")
	id := o["id"].(string)
	tok := e.login("admin@drift.com", "correct-horse")
	for i := range 3 {
		require.Equal(t, http.StatusCreated, e.do(http.MethodPost, docsURL, fmt.Sprintf(`{"id":"d%d"}`, i), tok).Status)
	}
	truth := e.usage(tok)
	ctx := context.Background()

	// A process died after reserving two documents it never wrote.
	skew := func() {
		head, err := e.stores.Usage.Head(ctx, id)
		require.NoError(t, err)
		head.N++
		head.Used.Documents += 2
		head.Used.StorageBytes += 500
		require.NoError(t, e.stores.Usage.Append(ctx, head))
	}
	skew()
	now := time.Now()
	require.NoError(t, e.stores.Writers.Register(ctx, document.Registration{
		Key: id + "/dead/1", OrgID: id, RegisteredAt: now.Add(-time.Minute), ExpiresAt: now.Add(-20 * time.Second),
	}))
	assert.Equal(t, used(truth, "documents")+2, used(e.usage(tok), "documents"))
	require.NoError(t, e.orgs.Reconcile(ctx))
	assert.Equal(t, truth, e.usage(tok))
	regs, err := e.stores.Writers.Of(ctx, id)
	require.NoError(t, err)
	assert.Empty(t, regs, "the dead registration is removed once counted")

	// A live process marked a write whose outcome it never learned.
	skew()
	usage.New(e.stores.Usage, e.stores.Writers, usage.Config{}, nil).Suspect(ctx, id)
	require.NoError(t, e.orgs.Reconcile(ctx))
	assert.Equal(t, truth, e.usage(tok))

	// The operator may ask for it too.
	skew()
	r := e.operator(http.MethodPost, operatorURL+"/"+id+"/recount", "")
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.Equal(t, float64(3), r.JSON(t)["usage"].(map[string]any)["documents"])
	assert.Equal(t, truth, e.usage(tok))
}

package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"golang.org/x/crypto/bcrypt"

	"github.com/orgservice/orgservice/internal/mongostore"
	"github.com/orgservice/orgservice/internal/org"
)

// ---- helpers ---------------------------------------------------------------

const (
	createURL = "/api/v1/org/create"
	getURL    = "/api/v1/org/get"
	updateURL = "/api/v1/org/update"
	deleteURL = "/api/v1/org/delete"
	loginURL  = "/api/v1/admin/login"
)

func byName(base, name string) string { return base + "?organization_name=" + url.QueryEscape(name) }

func createBody(t testing.TB, name, email, password string) string {
	return mustJSON(t, map[string]string{"organization_name": name, "email": email, "password": password})
}

// assertProblem checks that r is an RFC 9457 problem with status.
func assertProblem(t testing.TB, r resp, status int) map[string]any {
	t.Helper()
	require.Equal(t, status, r.Status, "body: %s", r.Body)
	assert.Equal(t, "application/problem+json", r.Header.Get("Content-Type"))
	p := r.JSON(t)
	assert.Equal(t, float64(status), p["status"], "problem status")
	for _, k := range []string{"type", "title", "detail"} {
		s, _ := p[k].(string)
		assert.NotEmpty(t, s, "problem %s", k)
	}
	return p
}

// problemFields returns the field names of a validation problem's errors.
func problemFields(t testing.TB, p map[string]any) []string {
	t.Helper()
	list, _ := p["errors"].([]any)
	var out []string
	for _, e := range list {
		m, _ := e.(map[string]any)
		f, _ := m["field"].(string)
		msg, _ := m["message"].(string)
		assert.NotEmpty(t, msg, "every field error has a message")
		out = append(out, f)
	}
	return out
}

// assertNoSecrets checks that a response body carries no credential.
func assertNoSecrets(t testing.TB, body []byte, password string) {
	t.Helper()
	s := string(body)
	assert.NotContains(t, s, `"password":`)
	assert.NotContains(t, s, `"password_hash"`)
	assert.NotContains(t, s, "$2a$")
	if len(password) >= 8 {
		assert.NotContains(t, s, password)
	}
}

// orgDoc returns the raw metadata document with slug, or nil.
func (e *env) orgDoc(slug string) bson.M {
	e.t.Helper()
	var m bson.M
	err := e.db.Collection(mongostore.OrganizationsCollection).FindOne(context.Background(), bson.D{{Key: "slug", Value: slug}}).Decode(&m)
	if err != nil {
		require.ErrorContains(e.t, err, "no documents")
		return nil
	}
	// The credentials live on the members now: token_version and
	// password_hash are the first owner's, as the organization's were.
	if ms, ok := m["members"].(bson.A); ok {
		for _, x := range ms {
			if mm := asM(x); mm["email"] == m["admin_email"] {
				m["token_version"], m["password_hash"] = mm["token_version"], mm["password_hash"]
			}
		}
	}
	return m
}

func asM(x any) bson.M {
	switch v := x.(type) {
	case bson.M:
		return v
	case bson.D:
		out := bson.M{}
		for _, e := range v {
			out[e.Key] = e.Value
		}
		return out
	}
	return nil
}

// seed inserts n varied documents straight into a tenant collection and
// returns them by _id, in canonical extended JSON (computed here, not read
// back: reading thousands of documents from FerretDB under -race is slow).
func (e *env) seed(coll string, n int) map[string]string {
	e.t.Helper()
	docs := make([]any, 0, n)
	want := make(map[string]string, n)
	for i := range n {
		var id any = bson.NewObjectID()
		switch i % 10 { // not every _id is an ObjectID
		case 3:
			id = fmt.Sprintf("str-%d", i)
		case 7:
			id = int64(1_000_000 + i)
		}
		d := bson.D{
			{Key: "_id", Value: id},
			{Key: "i", Value: int32(i)},
			{Key: "name", Value: fmt.Sprintf("document %d — ünïcødé ✓", i)},
			{Key: "price", Value: float64(i) / 7},
			{Key: "active", Value: i%2 == 0},
			{Key: "at", Value: bson.NewDateTimeFromTime(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Minute))},
			{Key: "tags", Value: bson.A{"a", int32(i % 3), bson.D{{Key: "k", Value: "v"}}}},
			{Key: "nested", Value: bson.D{{Key: "x", Value: int64(i) * 1_000_000_000}, {Key: "none", Value: nil}}},
		}
		docs = append(docs, d)
		k, err := bson.MarshalExtJSON(bson.D{{Key: "_id", Value: id}}, true, false)
		require.NoError(e.t, err)
		v, err := bson.MarshalExtJSON(d, true, false)
		require.NoError(e.t, err)
		want[string(k)] = string(v)
	}
	for chunk := range slices.Chunk(docs, 1000) {
		_, err := e.db.Collection(coll).InsertMany(context.Background(), chunk)
		require.NoError(e.t, err)
	}
	return want
}

// count returns the number of documents in a collection.
func (e *env) count(coll string) int64 {
	e.t.Helper()
	n, err := e.db.Collection(coll).CountDocuments(context.Background(), bson.D{})
	require.NoError(e.t, err)
	return n
}

// docs returns every document of a collection by _id, in canonical extended JSON.
func (e *env) docs(coll string) map[string]string {
	e.t.Helper()
	cur, err := e.db.Collection(coll).Find(context.Background(), bson.D{})
	require.NoError(e.t, err)
	var raws []bson.Raw
	require.NoError(e.t, cur.All(context.Background(), &raws))
	out := make(map[string]string, len(raws))
	for _, r := range raws {
		id, err := bson.MarshalExtJSON(bson.D{{Key: "_id", Value: r.Lookup("_id")}}, true, false)
		require.NoError(e.t, err)
		doc, err := bson.MarshalExtJSON(r, true, false)
		require.NoError(e.t, err)
		out[string(id)] = string(doc)
	}
	return out
}

// assertSameDocs compares two collections' contents document by document.
func assertSameDocs(t testing.TB, want, got map[string]string) {
	t.Helper()
	assert.Equal(t, len(want), len(got), "document count")
	bad := 0
	for id, w := range want {
		g, ok := got[id]
		switch {
		case !ok:
			t.Errorf("document %s is missing", id)
		case g != w:
			t.Errorf("document %s changed:\nwant %s\n got %s", id, w, g)
		default:
			continue
		}
		if bad++; bad == 5 {
			t.Errorf("… more differences not shown")
			return
		}
	}
}

// snapshot captures every document of every collection (leases, which only
// live while an operation runs, aside), to prove that a request changed nothing.
func (e *env) snapshot() map[string]map[string]string {
	e.t.Helper()
	names, err := e.db.ListCollectionNames(context.Background(), bson.D{})
	require.NoError(e.t, err)
	out := map[string]map[string]string{}
	for _, n := range names {
		if n != "leases" && n != "changes" { // an operation's traces, not state
			out[n] = e.docs(n)
		}
	}
	return out
}

// tokenFor creates an organization and logs its first owner in.
func (e *env) tokenFor(name, email, password string) (map[string]any, string) {
	e.t.Helper()
	o := e.create(name, email, password)
	return o, e.login(email, password)
}

// ---- create -----------------------------------------------------------------

func TestCreate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	const pw = "s3cret-passw0rd"
	before := time.Now().UTC().Add(-time.Second)

	r := e.do(http.MethodPost, createURL, createBody(t, "  Acme Corp  ", "Admin@Acme.COM", pw), "")
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
	assert.Equal(t, "/api/v1/org/get?organization_name=Acme+Corp", r.Header.Get("Location"))
	assertNoSecrets(t, r.Body, pw)

	body := r.JSON(t)
	assert.ElementsMatch(t, []string{"id", "organization_name", "slug", "collection_name", "admin_email", "member_count", "created_at", "updated_at"},
		keys(body), "exactly the Organization resource")
	assert.Equal(t, "acme_corp", body["slug"])
	assert.Regexp(t, `^[0-9a-f]{24}$`, body["id"])
	assert.Equal(t, "Acme Corp", body["organization_name"], "trimmed, as given")
	assert.Equal(t, "org_acme_corp", body["collection_name"])
	assert.Equal(t, "admin@acme.com", body["admin_email"], "lowercased")
	created, err := time.Parse(time.RFC3339Nano, body["created_at"].(string))
	require.NoError(t, err)
	updated, err := time.Parse(time.RFC3339Nano, body["updated_at"].(string))
	require.NoError(t, err)
	assert.Equal(t, created, updated)
	assert.WithinRange(t, created, before, time.Now().UTC().Add(time.Second))

	// The Location answers with the same organization: all of it to its
	// member, what the name tells to anyone.
	g := e.do(http.MethodGet, r.Header.Get("Location"), "", e.login("admin@acme.com", pw))
	require.Equal(t, http.StatusOK, g.Status, "%s", g.Body)
	assert.Equal(t, body, g.JSON(t))
	g = e.do(http.MethodGet, r.Header.Get("Location"), "", "")
	require.Equal(t, http.StatusOK, g.Status, "%s", g.Body)
	assert.Equal(t, publicOf(body), g.JSON(t))

	// Database: one metadata document as issue 2 describes it, one empty collection.
	assert.Equal(t, int64(1), e.orgDocs())
	d := e.orgDoc("acme_corp")
	require.NotNil(t, d)
	oid, ok := d["_id"].(bson.ObjectID)
	require.True(t, ok, "_id is an ObjectID: %T", d["_id"])
	assert.Equal(t, body["id"], oid.Hex())
	assert.Equal(t, "Acme Corp", d["organization_name"])
	assert.Equal(t, "org_acme_corp", d["collection_name"])
	assert.Equal(t, "admin@acme.com", d["admin_email"])
	assert.EqualValues(t, 0, d["token_version"])
	assert.NotContains(t, d, "pending")
	assert.IsType(t, bson.DateTime(0), d["created_at"])
	assert.IsType(t, bson.DateTime(0), d["updated_at"])
	hash, _ := d["password_hash"].(string)
	assert.NoError(t, bcrypt.CompareHashAndPassword([]byte(hash), []byte(pw)), "password_hash is the bcrypt of the password")
	assert.NotContains(t, d, "password")
	assert.Equal(t, []string{"org_acme_corp"}, e.collections())
	assert.Empty(t, e.docs("org_acme_corp"), "created empty, no dummy document")

	// Unicode names keep their letters in the collection name.
	r = e.do(http.MethodPost, createURL, createBody(t, "Café Zürich", "zurich@example.com", pw), "")
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	assert.Equal(t, "org_café_zürich", r.JSON(t)["collection_name"])
	assert.Equal(t, "/api/v1/org/get?organization_name="+url.QueryEscape("Café Zürich"), r.Header.Get("Location"))
	assert.ElementsMatch(t, []string{"org_acme_corp", "org_café_zürich"}, e.collections())
	assert.Equal(t, int64(2), e.orgDocs())
}

func keys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestCreateConflict(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	e.create("Acme Corp", "admin@acme.com", "s3cretpass")
	before := e.snapshot()

	tests := []struct {
		name, orgName, email string
	}{
		{"same name", "Acme Corp", "other1@acme.com"},
		{"hyphenated", "acme-corp", "other2@acme.com"},
		{"padded, upper, underscores, bang", " ACME__corp!", "other3@acme.com"},
		{"fullwidth", "ＡＣＭＥ Ｃｏｒｐ", "other4@acme.com"},
		{"email same", "Globex", "admin@acme.com"},
		{"email upper case", "Globex", "ADMIN@ACME.COM"},
		{"email padded", "Globex", "  Admin@Acme.com "},
		{"both taken", "acme corp", "admin@acme.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(http.MethodPost, createURL, createBody(t, tt.orgName, tt.email, "s3cretpass"), "")
			assertProblem(t, r, http.StatusConflict)
			assert.Equal(t, before, e.snapshot(), "nothing changed")
		})
	}
	assert.Equal(t, int64(1), e.orgDocs())
	assert.Equal(t, []string{"org_acme_corp"}, e.collections())

	// The losers left no claim behind: their free halves are still free.
	e.create("Globex", "other1@acme.com", "s3cretpass")
}

func TestCreateValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	const (
		name  = "Acme"
		email = "admin@acme.com"
		pw    = "s3cretpass"
	)
	long := func(s string, n int) string { return strings.Repeat(s, n) }
	tests := []struct {
		name               string
		orgName, email, pw string
		fields             []string
	}{
		{"email not an address", name, "not-an-email", pw, []string{"email"}},
		{"email without domain", name, "admin@", pw, []string{"email"}},
		{"two addresses", name, "a@acme.com, b@acme.com", pw, []string{"email"}},
		{"two addresses without space", name, "a@acme.com,b@acme.com", pw, []string{"email"}},
		{"address with display name", name, "Admin <admin@acme.com>", pw, []string{"email"}},
		{"address in angle brackets", name, "<admin@acme.com>", pw, []string{"email"}},
		{"email over 254 chars", name, long("a", 64) + "@" + long("b", 186) + ".com", pw, []string{"email"}},
		{"email blank", name, "  ", pw, []string{"email"}},
		{"password 7 chars", name, email, "1234567", []string{"password"}},
		{"password 7 multibyte chars", name, email, "ééééééé", []string{"password"}},
		{"password empty", name, email, "", []string{"password"}},
		{"password 73 bytes", name, email, long("p", 73), []string{"password"}},
		{"password 37 two-byte chars (74 bytes)", name, email, long("é", 37), []string{"password"}},
		{"name blank", "   ", email, pw, []string{"organization_name"}},
		{"name empty", "", email, pw, []string{"organization_name"}},
		{"name 101 chars", long("a", 101), email, pw, []string{"organization_name"}},
		{"name without letters or digits", "!!!", email, pw, []string{"organization_name"}},
		{"name of emoji", "🚀🚀", email, pw, []string{"organization_name"}},
		{"slug 65 bytes", long("a", 65), email, pw, []string{"organization_name"}},
		{"slug over 64 bytes from 33 chars", long("é", 33), email, pw, []string{"organization_name"}},
		{"everything wrong", "!!!", "nope", "short", []string{"organization_name", "email", "password"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(http.MethodPost, createURL, createBody(t, tt.orgName, tt.email, tt.pw), "")
			p := assertProblem(t, r, http.StatusUnprocessableEntity)
			assert.ElementsMatch(t, tt.fields, problemFields(t, p))
			assertNoSecrets(t, r.Body, tt.pw)
		})
	}
	t.Run("missing fields", func(t *testing.T) {
		p := assertProblem(t, e.do(http.MethodPost, createURL, `{}`, ""), http.StatusUnprocessableEntity)
		assert.ElementsMatch(t, []string{"organization_name", "email", "password"}, problemFields(t, p))
	})
	assert.Zero(t, e.orgDocs(), "no organization created")
	assert.Empty(t, e.collections(), "no collection created")

	// The limits themselves are allowed.
	t.Run("at the limits", func(t *testing.T) {
		n100 := long("a", 64) + long("-", 36) // 100 characters, 64-byte slug
		r := e.do(http.MethodPost, createURL, createBody(t, n100, long("a", 64)+"@"+long("b", 185)+".com", long("p", 72)), "")
		require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
		assert.Equal(t, "org_"+long("a", 64), r.JSON(t)["collection_name"])
		r = e.do(http.MethodPost, createURL, createBody(t, long("é", 32), "b@acme.com", "éééééééé"), "")
		require.Equal(t, http.StatusCreated, r.Status, "32 two-byte letters make a 64-byte slug; 8 characters is a password: %s", r.Body)
		assert.Equal(t, int64(2), e.orgDocs())
		assert.Len(t, e.collections(), 2)
	})
}

func TestCreateBadRequest(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	valid := createBody(t, "Acme", "admin@acme.com", "s3cretpass")
	tests := []struct{ name, body string }{
		{"malformed", `{"organization_name": "Acme", `},
		{"not json", `organization_name=Acme`},
		{"unquoted key", `{organization_name: "Acme"}`},
		{"name is a number", `{"organization_name": 1, "email": "admin@acme.com", "password": "s3cretpass"}`},
		{"password is a bool", `{"organization_name": "Acme", "email": "admin@acme.com", "password": true}`},
		{"email is an object", `{"organization_name": "Acme", "email": {}, "password": "s3cretpass"}`},
		{"email is null-ish array", `{"organization_name": "Acme", "email": ["admin@acme.com"], "password": "s3cretpass"}`},
		{"unknown field", `{"organization_name": "Acme", "email": "admin@acme.com", "password": "s3cretpass", "role": "root"}`},
		{"unknown field collection_name", `{"organization_name": "Acme", "email": "admin@acme.com", "password": "s3cretpass", "collection_name": "org_x"}`},
		{"empty body", ""},
		{"only whitespace", "  \n "},
		{"trailing object", valid + valid},
		{"trailing garbage", valid + " x"},
		{"trailing bracket", valid + "}"},
		{"null", "null"},
		{"array", "[]"},
		{"array of the object", "[" + valid + "]"},
		{"string", `"Acme"`},
		{"number", `42`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertProblem(t, e.do(http.MethodPost, createURL, tt.body, ""), http.StatusBadRequest)
		})
	}
	assert.Zero(t, e.orgDocs(), "no organization created")
	assert.Empty(t, e.collections(), "no collection created")
	// Trailing whitespace is not trailing data.
	r := e.do(http.MethodPost, createURL, valid+"\n\n", "")
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
}

func TestCreateTooLarge(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	big := strings.Repeat("x", 1<<20)
	tests := []struct{ name, body string }{
		{"huge field", createBody(t, "Acme", "admin@acme.com", big)},
		{"huge unknown field", `{"organization_name":"Acme","email":"admin@acme.com","password":"s3cretpass","x":"` + big + `"}`},
		{"valid object then 1 MiB of whitespace", createBody(t, "Acme", "admin@acme.com", "s3cretpass") + strings.Repeat(" ", 1<<20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertProblem(t, e.do(http.MethodPost, createURL, tt.body, ""), http.StatusRequestEntityTooLarge)
		})
	}
	assert.Zero(t, e.orgDocs())
	assert.Empty(t, e.collections())
	assertProblem(t, e.do(http.MethodPost, loginURL, `{"email":"a@b.co","password":"`+big+`"}`, ""), http.StatusRequestEntityTooLarge)
}

// A new organization never inherits documents, not even from a leftover
// collection of its name that no organization refers to.
func TestCreateOverLeftoverCollection(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	e.seed("org_acme_corp", 5)
	r := e.do(http.MethodPost, createURL, createBody(t, "Acme Corp", "admin@acme.com", "s3cretpass"), "")
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	assert.Equal(t, []string{"org_acme_corp"}, e.collections())
	assert.Empty(t, e.docs("org_acme_corp"), "no data inherited")
}

// 20 concurrent creates of one name: one 201, nineteen 409, one document, one collection.
func TestCreateConcurrent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	spellings := []string{"Acme Corp", "acme-corp", " ACME__corp!", "ACME CORP", "acme.corp"}
	const n = 20
	statuses := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			r := e.do(http.MethodPost, createURL, createBody(t, spellings[i%len(spellings)], fmt.Sprintf("admin%d@acme.com", i), "s3cretpass"), "")
			statuses[i] = r.Status
		})
	}
	close(start)
	wg.Wait()
	assert.Equal(t, 1, count(statuses, http.StatusCreated), "statuses: %v", statuses)
	assert.Equal(t, n-1, count(statuses, http.StatusConflict), "statuses: %v", statuses)
	assert.Equal(t, int64(1), e.orgDocs())
	assert.Equal(t, []string{"org_acme_corp"}, e.collections())

	// And one email under 20 concurrent names.
	for i := range n {
		wg.Go(func() {
			<-start
			r := e.do(http.MethodPost, createURL, createBody(t, fmt.Sprintf("Org %d", i), "Same@Example.com", "s3cretpass"), "")
			statuses[i] = r.Status
		})
	}
	wg.Wait()
	assert.Equal(t, 1, count(statuses, http.StatusCreated), "statuses: %v", statuses)
	assert.Equal(t, n-1, count(statuses, http.StatusConflict), "statuses: %v", statuses)
	assert.Equal(t, int64(2), e.orgDocs())
	assert.Len(t, e.collections(), 2)
}

// publicOf is the Organization o as anyone who is not its member sees it.
func publicOf(o map[string]any) map[string]any {
	return map[string]any{"organization_name": o["organization_name"], "slug": o["slug"],
		"collection_name": o["collection_name"], "created_at": o["created_at"]}
}

func count(xs []int, x int) int {
	n := 0
	for _, v := range xs {
		if v == x {
			n++
		}
	}
	return n
}

// ---- get --------------------------------------------------------------------

func TestGet(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	created := e.create("Café Zürich", "admin@cafe.ch", "s3cretpass")
	e.create("Acme Corp", "admin@acme.com", "s3cretpass")
	own, other := e.login("admin@cafe.ch", "s3cretpass"), e.login("admin@acme.com", "s3cretpass")
	before := e.snapshot()

	for _, name := range []string{
		"Café Zürich", "café zürich", "CAFÉ-ZÜRICH", "  café__zürich! ", "Cafe\u0301 Zu\u0308rich", "ＣＡＦÉ ＺÜＲＩＣＨ",
	} {
		t.Run("200 "+name, func(t *testing.T) {
			r := e.do(http.MethodGet, byName(getURL, name), "", "")
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
			assert.Equal(t, publicOf(created), r.JSON(t), "anyone: what the name tells, and the creation time")
			assertNoSecrets(t, r.Body, "s3cretpass")
			assert.NotContains(t, string(r.Body), "admin@cafe.ch")
		})
	}
	t.Run("200 with a token of the organization", func(t *testing.T) {
		r := e.do(http.MethodGet, byName(getURL, "Café Zürich"), "", own)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		assert.Equal(t, created, r.JSON(t), "its members see all of it")
	})
	t.Run("200 with another organization's token", func(t *testing.T) {
		r := e.do(http.MethodGet, byName(getURL, "Café Zürich"), "", other)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		assert.Equal(t, publicOf(created), r.JSON(t))
	})
	t.Run("401 with a bad token", func(t *testing.T) {
		assertProblem(t, e.do(http.MethodGet, byName(getURL, "Café Zürich"), "", "not-a-token"), http.StatusUnauthorized)
	})
	for _, name := range []string{"Globex", "Café", "café_zürich_ag", "!!!", strings.Repeat("a", 65)} {
		t.Run("404 "+name, func(t *testing.T) {
			assertProblem(t, e.do(http.MethodGet, byName(getURL, name), "", ""), http.StatusNotFound)
		})
	}
	for _, target := range []string{getURL, getURL + "?organization_name=", getURL + "?organization_name=%20%20", getURL + "?name=Acme+Corp"} {
		t.Run("400 "+target, func(t *testing.T) {
			r := e.do(http.MethodGet, target, "", "")
			assertProblem(t, r, http.StatusBadRequest)
		})
	}
	assert.Equal(t, before, e.snapshot(), "reads change nothing")
}

// ---- update -----------------------------------------------------------------

// Renaming moves every document, with its _id, to the new collection: by
// renameCollection (5,000 documents), and by the batched copy the service
// falls back to (1,200 documents: two batches of the default 1,000).
func TestUpdateRename(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		strategy org.Strategy
		docs     int
	}{
		{org.StrategyAuto, 5000},
		{org.StrategyCopy, 1200},
	} {
		t.Run(string(tt.strategy), func(t *testing.T) {
			e := newEnv(t, org.Config{Strategy: tt.strategy})
			created, tok := e.tokenFor("Acme Corp", "admin@acme.com", "s3cretpass")
			want := e.seed("org_acme_corp", tt.docs)
			require.Len(t, want, tt.docs)
			other := e.create("Bystander", "b@bystander.com", "s3cretpass")
			otherDocs := e.seed("org_bystander", 10)
			verBefore := e.orgDoc("acme_corp")["token_version"]

			r := e.do(http.MethodPut, updateURL, `{"organization_name": "Globex Inc"}`, tok)
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			body := r.JSON(t)
			assert.Equal(t, created["id"], body["id"])
			assert.Equal(t, "Globex Inc", body["organization_name"])
			assert.Equal(t, "org_globex_inc", body["collection_name"])
			assert.Equal(t, "admin@acme.com", body["admin_email"])
			assert.Equal(t, created["created_at"], body["created_at"])
			assertNoSecrets(t, r.Body, "s3cretpass")

			assert.ElementsMatch(t, []string{"org_globex_inc", "org_bystander"}, e.collections(), "old collection gone")
			assertSameDocs(t, want, e.docs("org_globex_inc"))
			assertSameDocs(t, otherDocs, e.docs("org_bystander"))

			assert.Nil(t, e.orgDoc("acme_corp"))
			d := e.orgDoc("globex_inc")
			require.NotNil(t, d)
			assert.Equal(t, "Globex Inc", d["organization_name"])
			assert.Equal(t, "org_globex_inc", d["collection_name"])
			assert.Equal(t, verBefore, d["token_version"], "renaming does not revoke tokens")
			assert.NotContains(t, d, "pending", "the operation finished")
			assert.Equal(t, int64(2), e.orgDocs())

			assertProblem(t, e.do(http.MethodGet, byName(getURL, "Acme Corp"), "", ""), http.StatusNotFound)
			g := e.do(http.MethodGet, byName(getURL, "globex-inc"), "", tok)
			require.Equal(t, http.StatusOK, g.Status, "%s", g.Body)
			assert.Equal(t, body, g.JSON(t))
			g = e.do(http.MethodGet, byName(getURL, "Bystander"), "", "")
			require.Equal(t, http.StatusOK, g.Status, "%s", g.Body)
			assert.Equal(t, publicOf(other), g.JSON(t))

			if tt.strategy != org.StrategyCopy {
				return // the rest is the same for both strategies, and cheaper with fewer documents
			}
			// The token survives the rename, and the old name is free again.
			r = e.do(http.MethodPut, updateURL, `{"organization_name": "Globex Incorporated"}`, tok)
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			assert.ElementsMatch(t, []string{"org_globex_incorporated", "org_bystander"}, e.collections())
			assert.Equal(t, int64(tt.docs), e.count("org_globex_incorporated"))
			e.create("acme corp", "new@acme.com", "s3cretpass")
			assert.Zero(t, e.count("org_acme_corp"), "the new holder of the old name inherits nothing")
		})
	}
}

// A rename onto a taken name is a 409 that moves nothing.
func TestUpdateRenameConflict(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	_, tok := e.tokenFor("Acme Corp", "admin@acme.com", "s3cretpass")
	e.create("Globex", "admin@globex.com", "s3cretpass")
	acmeDocs := e.seed("org_acme_corp", 30)
	globexDocs := e.seed("org_globex", 20)
	before := e.snapshot()

	for _, name := range []string{"Globex", "GLOBEX!", " globex "} {
		r := e.do(http.MethodPut, updateURL, mustJSON(t, map[string]string{"organization_name": name}), tok)
		assertProblem(t, r, http.StatusConflict)
		assert.Equal(t, before, e.snapshot(), "nothing moved")
	}
	// Together with an email change: neither is applied.
	r := e.do(http.MethodPut, updateURL, `{"organization_name": "Globex", "email": "new@acme.com", "current_password": "s3cretpass"}`, tok)
	assertProblem(t, r, http.StatusConflict)
	assert.Equal(t, before, e.snapshot(), "nothing moved")
	// An email taken by another organization.
	r = e.do(http.MethodPut, updateURL, `{"email": "ADMIN@globex.com", "current_password": "s3cretpass"}`, tok)
	assertProblem(t, r, http.StatusConflict)
	assert.Equal(t, before, e.snapshot(), "nothing changed")

	assert.ElementsMatch(t, []string{"org_acme_corp", "org_globex"}, e.collections())
	assertSameDocs(t, acmeDocs, e.docs("org_acme_corp"))
	assertSameDocs(t, globexDocs, e.docs("org_globex"))

	// The token still works and nothing was left claimed.
	r = e.do(http.MethodPut, updateURL, `{"organization_name": "Initech", "email": "new@acme.com", "current_password": "s3cretpass"}`, tok)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assertSameDocs(t, acmeDocs, e.docs("org_initech"))
	e.login("new@acme.com", "s3cretpass")
}

// Renaming to a name with the same slug changes the display name only.
func TestUpdateRenameSameSlug(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	created, tok := e.tokenFor("Acme Corp", "admin@acme.com", "s3cretpass")
	docs := e.seed("org_acme_corp", 25)
	before := e.orgDoc("acme_corp")

	r := e.do(http.MethodPut, updateURL, `{"organization_name": "ACME-corp"}`, tok)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	body := r.JSON(t)
	assert.Equal(t, created["id"], body["id"])
	assert.Equal(t, "ACME-corp", body["organization_name"], "display name may change")
	assert.Equal(t, "org_acme_corp", body["collection_name"])

	assert.Equal(t, []string{"org_acme_corp"}, e.collections())
	assertSameDocs(t, docs, e.docs("org_acme_corp"))
	after := e.orgDoc("acme_corp")
	require.NotNil(t, after)
	assert.Equal(t, "ACME-corp", after["organization_name"])
	assert.Equal(t, before["collection_name"], after["collection_name"])
	assert.Equal(t, before["token_version"], after["token_version"])
	assert.Equal(t, before["password_hash"], after["password_hash"])
	assert.NotContains(t, after, "pending")

	// Same name exactly: still a 200, and the token still works.
	r = e.do(http.MethodPut, updateURL, `{"organization_name": "ACME-corp"}`, tok)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.Equal(t, []string{"org_acme_corp"}, e.collections())
	assertSameDocs(t, docs, e.docs("org_acme_corp"))
}

// Changing the email or the password revokes every earlier token.
func TestUpdateCredentials(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})

	t.Run("email", func(t *testing.T) {
		created, tok := e.tokenFor("Acme Corp", "admin@acme.com", "s3cretpass")
		r := e.do(http.MethodPut, updateURL, `{"email": "Boss@Acme.com", "current_password": "s3cretpass"}`, tok)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		assert.Equal(t, "boss@acme.com", r.JSON(t)["admin_email"])
		assert.Equal(t, created["id"], r.JSON(t)["id"])
		d := e.orgDoc("acme_corp")
		assert.Equal(t, "boss@acme.com", d["admin_email"])
		assert.EqualValues(t, 1, d["token_version"])

		assertUnauthorized(t, e.do(http.MethodPut, updateURL, `{"organization_name": "Other"}`, tok))
		assertUnauthorized(t, e.do(http.MethodDelete, byName(deleteURL, "Acme Corp"), "", tok))
		assertProblem(t, e.do(http.MethodPost, loginURL, `{"email":"admin@acme.com","password":"s3cretpass"}`, ""), http.StatusUnauthorized)
		tok2 := e.login("boss@acme.com", "s3cretpass")
		r = e.do(http.MethodPut, updateURL, `{"organization_name": "Acme Corp"}`, tok2)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		// The old email is free again.
		e.create("Other Org", "admin@acme.com", "s3cretpass")
	})

	t.Run("password", func(t *testing.T) {
		_, tok := e.tokenFor("Globex", "admin@globex.com", "old-password")
		r := e.do(http.MethodPut, updateURL, `{"password": "new-password", "current_password": "old-password"}`, tok)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		assertNoSecrets(t, r.Body, "new-password")
		d := e.orgDoc("globex")
		assert.EqualValues(t, 1, d["token_version"])
		assert.NoError(t, bcrypt.CompareHashAndPassword([]byte(d["password_hash"].(string)), []byte("new-password")))

		assertUnauthorized(t, e.do(http.MethodPut, updateURL, `{"organization_name": "Other"}`, tok))
		assertProblem(t, e.do(http.MethodPost, loginURL, `{"email":"admin@globex.com","password":"old-password"}`, ""), http.StatusUnauthorized)
		tok2 := e.login("admin@globex.com", "new-password")
		require.Equal(t, http.StatusOK, e.do(http.MethodPut, updateURL, `{"organization_name": "Globex"}`, tok2).Status)
		assert.Equal(t, "org_globex", e.orgDoc("globex")["collection_name"])
	})

	t.Run("rename with email change", func(t *testing.T) {
		_, tok := e.tokenFor("Initech", "admin@initech.com", "s3cretpass")
		docs := e.seed("org_initech", 40)
		r := e.do(http.MethodPut, updateURL, `{"organization_name": "Initrode", "email": "admin@initrode.com", "password": "fresh-password", "current_password": "s3cretpass"}`, tok)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		assertSameDocs(t, docs, e.docs("org_initrode"))
		assert.NotContains(t, e.collections(), "org_initech")
		assert.EqualValues(t, 1, e.orgDoc("initrode")["token_version"])
		assertUnauthorized(t, e.do(http.MethodPut, updateURL, `{"organization_name": "Other"}`, tok))
		e.login("admin@initrode.com", "fresh-password")
	})
}

func assertUnauthorized(t testing.TB, r resp) {
	t.Helper()
	assertProblem(t, r, http.StatusUnauthorized)
	assert.True(t, strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer"), "WWW-Authenticate: %q", r.Header.Get("WWW-Authenticate"))
}

// Fields that are not part of the update request are refused, and nothing changes.
func TestUpdateMassAssignment(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	created, tok := e.tokenFor("Acme Corp", "admin@acme.com", "s3cretpass")
	e.seed("org_acme_corp", 5)
	before := e.snapshot()

	tests := []struct{ name, body string }{
		{"collection_name", `{"collection_name": "org_hijack"}`},
		{"password_hash", `{"password_hash": "$2a$04$abcdefghijklmnopqrstuuvwxyzabcdefghijklmnopqrstuvwxyz"}`},
		{"id", mustJSON(t, map[string]any{"id": "65f0000000000000000000ff"})},
		{"_id", `{"_id": "65f0000000000000000000ff"}`},
		{"token_version", `{"token_version": 99}`},
		{"slug", `{"slug": "hijack"}`},
		{"admin_email", `{"admin_email": "mallory@evil.com"}`},
		{"created_at", `{"created_at": "2000-01-01T00:00:00Z"}`},
		{"allowed field with a forbidden one", `{"organization_name": "Renamed", "collection_name": "org_hijack"}`},
		{"allowed email with token_version", `{"email": "new@acme.com", "token_version": 0}`},
		{"allowed password with password_hash", `{"password": "new-password", "password_hash": "x"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(http.MethodPut, updateURL, tt.body, tok)
			assertProblem(t, r, http.StatusBadRequest)
			assert.Equal(t, before, e.snapshot(), "nothing changed")
		})
	}
	// The token is still good and the organization as it was.
	g := e.do(http.MethodGet, byName(getURL, "Acme Corp"), "", tok)
	require.Equal(t, http.StatusOK, g.Status)
	assert.Equal(t, created, g.JSON(t))
	require.Equal(t, http.StatusOK, e.do(http.MethodPut, updateURL, `{"organization_name": "Acme Corp"}`, tok).Status)
}

func TestUpdateInvalid(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	_, tok := e.tokenFor("Acme Corp", "admin@acme.com", "s3cretpass")
	before := e.snapshot()

	for _, tt := range []struct {
		name, body string
		status     int
		fields     []string
	}{
		{"empty object", `{}`, http.StatusUnprocessableEntity, nil},
		{"all null", `{"organization_name": null, "email": null, "password": null}`, http.StatusUnprocessableEntity, nil},
		{"blank name", `{"organization_name": "  "}`, http.StatusUnprocessableEntity, []string{"organization_name"}},
		{"name without letters", `{"organization_name": "!!!"}`, http.StatusUnprocessableEntity, []string{"organization_name"}},
		{"name too long", mustJSON(t, map[string]string{"organization_name": strings.Repeat("n", 101)}), http.StatusUnprocessableEntity, []string{"organization_name"}},
		{"bad email", `{"email": "nope", "current_password": "s3cretpass"}`, http.StatusUnprocessableEntity, []string{"email"}},
		{"short password", `{"password": "short", "current_password": "s3cretpass"}`, http.StatusUnprocessableEntity, []string{"password"}},
		{"long password", mustJSON(t, map[string]string{"password": strings.Repeat("p", 73), "current_password": "s3cretpass"}), http.StatusUnprocessableEntity, []string{"password"}},
		{"valid name, bad email", `{"organization_name": "Globex", "email": "nope", "current_password": "s3cretpass"}`, http.StatusUnprocessableEntity, []string{"email"}},
		{"email without current_password", `{"email": "new@acme.com"}`, http.StatusUnprocessableEntity, []string{"current_password"}},
		{"password without current_password", `{"password": "new-password"}`, http.StatusUnprocessableEntity, []string{"current_password"}},
		{"empty current_password", `{"password": "new-password", "current_password": ""}`, http.StatusUnprocessableEntity, []string{"current_password"}},
		{"bad email, no current_password", `{"email": "nope"}`, http.StatusUnprocessableEntity, []string{"email", "current_password"}},
		{"current_password not a string", `{"password": "new-password", "current_password": 1}`, http.StatusBadRequest, nil},
		{"malformed", `{"organization_name": `, http.StatusBadRequest, nil},
		{"wrong type", `{"organization_name": 5}`, http.StatusBadRequest, nil},
		{"empty body", ``, http.StatusBadRequest, nil},
		{"null", `null`, http.StatusBadRequest, nil},
		{"array", `[{"organization_name": "Globex"}]`, http.StatusBadRequest, nil},
		{"trailing data", `{"organization_name": "Globex"} {}`, http.StatusBadRequest, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := assertProblem(t, e.do(http.MethodPut, updateURL, tt.body, tok), tt.status)
			if tt.fields != nil {
				assert.ElementsMatch(t, tt.fields, problemFields(t, p))
			}
			assert.Equal(t, before, e.snapshot(), "nothing changed")
		})
	}
}

// Missing, malformed or forged tokens are 401 with WWW-Authenticate, on
// every protected route, and change nothing.
func TestProtectedRoutesRequireToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	e.create("Acme Corp", "admin@acme.com", "s3cretpass")
	before := e.snapshot()
	forged := forgeToken(t, e, "wrong-secret-0123456789abcdef0123456789")

	for _, route := range []struct{ method, target, body string }{
		{http.MethodPut, updateURL, `{"organization_name": "Hijacked"}`},
		{http.MethodDelete, byName(deleteURL, "Acme Corp"), ""},
	} {
		for _, tt := range []struct{ name, header string }{
			{"no header", ""},
			{"garbage token", "Bearer garbage"},
			{"three garbage parts", "Bearer aaa.bbb.ccc"},
			{"empty bearer", "Bearer "},
			{"basic scheme", "Basic YWRtaW46czNjcmV0cGFzcw=="},
			{"token without scheme", forgeToken(t, e, testSecret)},
			{"token signed with another key", "Bearer " + forged},
		} {
			t.Run(route.method+" "+tt.name, func(t *testing.T) {
				r := e.doAuth(route.method, route.target, route.body, tt.header)
				assertUnauthorized(t, r)
				assert.Equal(t, before, e.snapshot(), "nothing changed")
			})
		}
	}
	// The same forged claims with the real key do work: the 401s above are about the token.
	r := e.doAuth(http.MethodPut, updateURL, `{"organization_name": "Acme Corp"}`, "Bearer "+forgeToken(t, e, testSecret))
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
}

// ---- delete -----------------------------------------------------------------

func TestDelete(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	acme, tok := e.tokenFor("Acme Corp", "admin@acme.com", "s3cretpass")
	globex := e.create("Globex", "admin@globex.com", "s3cretpass")
	e.seed("org_acme_corp", 50)
	globexDocs := e.seed("org_globex", 7)
	before := e.snapshot()

	for _, tt := range []struct {
		name, target string
		status       int
	}{
		{"another organization", byName(deleteURL, "Globex"), http.StatusForbidden},
		{"another organization, other spelling", byName(deleteURL, "GLOBEX!"), http.StatusForbidden},
		{"a name nobody has", byName(deleteURL, "Initech"), http.StatusForbidden},
		{"a name without a slug", byName(deleteURL, "!!!"), http.StatusForbidden},
		{"missing parameter", deleteURL, http.StatusBadRequest},
		{"blank parameter", deleteURL + "?organization_name=%20", http.StatusBadRequest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assertProblem(t, e.do(http.MethodDelete, tt.target, "", tok), tt.status)
			assert.Equal(t, before, e.snapshot(), "nothing changed")
		})
	}

	r := e.do(http.MethodDelete, byName(deleteURL, "acme-corp"), "", tok)
	require.Equal(t, http.StatusNoContent, r.Status, "%s", r.Body)
	assert.Empty(t, r.Body)
	assert.Nil(t, e.orgDoc("acme_corp"))
	assert.Equal(t, int64(1), e.orgDocs())
	assert.Equal(t, []string{"org_globex"}, e.collections())
	assertSameDocs(t, globexDocs, e.docs("org_globex"))

	// Afterwards the token and the login are dead.
	assertUnauthorized(t, e.do(http.MethodDelete, byName(deleteURL, "acme-corp"), "", tok))
	assertUnauthorized(t, e.do(http.MethodPut, updateURL, `{"organization_name": "Zombie"}`, tok))
	assertProblem(t, e.do(http.MethodPost, loginURL, `{"email":"admin@acme.com","password":"s3cretpass"}`, ""), http.StatusUnauthorized)
	assertProblem(t, e.do(http.MethodGet, byName(getURL, "Acme Corp"), "", ""), http.StatusNotFound)
	g := e.do(http.MethodGet, byName(getURL, "Globex"), "", "")
	require.Equal(t, http.StatusOK, g.Status)
	assert.Equal(t, publicOf(globex), g.JSON(t))

	// The name and the email can be registered again, with nothing inherited.
	again, tok2 := e.tokenFor("Acme Corp", "admin@acme.com", "another-pass")
	assert.NotEqual(t, acme["id"], again["id"])
	assert.Equal(t, "org_acme_corp", again["collection_name"])
	assert.Contains(t, e.collections(), "org_acme_corp")
	assert.Empty(t, e.docs("org_acme_corp"), "no data inherited")
	assert.EqualValues(t, 0, e.orgDoc("acme_corp")["token_version"])
	assertUnauthorized(t, e.do(http.MethodPut, updateURL, `{"organization_name": "Zombie"}`, tok))
	assertProblem(t, e.do(http.MethodPost, loginURL, `{"email":"admin@acme.com","password":"s3cretpass"}`, ""), http.StatusUnauthorized)
	require.Equal(t, http.StatusOK, e.do(http.MethodPut, updateURL, `{"organization_name": "Acme Corp"}`, tok2).Status)
}

// A token is bound to its organization's id, not to a name. A rename does
// not revoke it; but once another organization takes the old name, a token
// whose org_name claim carries that name is refused (401), and a fresh token
// still acts on its own organization only.
func TestTokenBoundToOrganization(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	a, tokA := e.tokenFor("Acme Corp", "admin@acme.com", "s3cretpass")
	e.seed("org_acme_corp", 3)
	require.Equal(t, http.StatusOK, e.do(http.MethodPut, updateURL, `{"organization_name": "Acme Renamed"}`, tokA).Status)
	b, tokB := e.tokenFor("Acme Corp", "admin@newacme.com", "s3cretpass")
	bDocs := e.seed("org_acme_corp", 4)
	before := e.snapshot()

	assertUnauthorized(t, e.do(http.MethodDelete, byName(deleteURL, "Acme Corp"), "", tokA))
	assertUnauthorized(t, e.do(http.MethodPut, updateURL, `{"organization_name": "Acme Again"}`, tokA))
	assert.Equal(t, before, e.snapshot(), "nothing changed")

	tokA = e.login("admin@acme.com", "s3cretpass")
	after := e.snapshot()
	added := onlyAuditAdded(t, before, after)
	require.Len(t, added, 1, "the login is recorded, and nothing else changed")
	assert.Equal(t, "login.succeeded", added[0].Action)
	assert.Equal(t, a["id"], added[0].OrgID, "in A's audit log")
	before = after
	assertProblem(t, e.do(http.MethodDelete, byName(deleteURL, "Acme Corp"), "", tokA), http.StatusForbidden)
	assert.Equal(t, before, e.snapshot(), "B untouched")
	assertProblem(t, e.do(http.MethodDelete, byName(deleteURL, "Acme Renamed"), "", tokB), http.StatusForbidden)
	assert.Equal(t, before, e.snapshot(), "A untouched")

	r := e.do(http.MethodPut, updateURL, `{"organization_name": "Acme Again"}`, tokA)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.Equal(t, a["id"], r.JSON(t)["id"], "the update went to A")
	assertSameDocs(t, bDocs, e.docs("org_acme_corp"))

	require.Equal(t, http.StatusNoContent, e.do(http.MethodDelete, byName(deleteURL, "Acme Again"), "", tokA).Status)
	g := e.do(http.MethodGet, byName(getURL, "Acme Corp"), "", tokB)
	require.Equal(t, http.StatusOK, g.Status)
	assert.Equal(t, b["id"], g.JSON(t)["id"])
	assert.Equal(t, []string{"org_acme_corp"}, e.collections())
	assertSameDocs(t, bDocs, e.docs("org_acme_corp"))
}

// Concurrent renames of one organization leave exactly one collection with
// every document, and the metadata pointing at it.
func TestUpdateRenameConcurrent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	created, tok := e.tokenFor("Acme Corp", "admin@acme.com", "s3cretpass")
	want := e.seed("org_acme_corp", 500)

	const n = 5
	statuses := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			statuses[i] = e.do(http.MethodPut, updateURL, fmt.Sprintf(`{"organization_name": "Name %d"}`, i), tok).Status
		})
	}
	close(start)
	wg.Wait()
	require.NoError(t, e.orgs.Wait(context.Background()))

	for i, s := range statuses {
		assert.Contains(t, []int{http.StatusOK, http.StatusConflict}, s, "rename %d", i)
	}
	assert.GreaterOrEqual(t, count(statuses, http.StatusOK), 1, "statuses: %v", statuses)

	colls := e.collections()
	require.Len(t, colls, 1, "exactly one tenant collection: %v", colls)
	assertSameDocs(t, want, e.docs(colls[0]))
	require.Equal(t, int64(1), e.orgDocs())
	var d bson.M
	require.NoError(t, e.db.Collection(mongostore.OrganizationsCollection).FindOne(context.Background(), bson.D{}).Decode(&d))
	assert.Equal(t, colls[0], d["collection_name"], "metadata points at the collection")
	assert.Equal(t, "org_"+d["slug"].(string), d["collection_name"])
	assert.NotContains(t, d, "pending")
	assert.Regexp(t, regexp.MustCompile(`^Name [0-4]$`), d["organization_name"])

	g := e.do(http.MethodGet, byName(getURL, d["organization_name"].(string)), "", tok)
	require.Equal(t, http.StatusOK, g.Status)
	assert.Equal(t, created["id"], g.JSON(t)["id"])
	assertProblem(t, e.do(http.MethodGet, byName(getURL, "Acme Corp"), "", ""), http.StatusNotFound)

	// No name was left claimed: every other name is free again.
	for i := range n {
		name := fmt.Sprintf("Name %d", i)
		if name != d["organization_name"] {
			e.create(name, fmt.Sprintf("x%d@acme.com", i), "s3cretpass")
		}
	}
	e.create("Acme Corp", "old@acme.com", "s3cretpass")
}

// Renaming away and back frees and retakes the name, with the data.
func TestUpdateRenameBack(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	created, tok := e.tokenFor("Acme Corp", "admin@acme.com", "s3cretpass")
	docs := e.seed("org_acme_corp", 20)
	for _, name := range []string{"Globex", "Acme Corp", "globex", "ACME corp"} {
		r := e.do(http.MethodPut, updateURL, mustJSON(t, map[string]string{"organization_name": name}), tok)
		require.Equal(t, http.StatusOK, r.Status, "rename to %q: %s", name, r.Body)
		want := org.CollectionName(org.Slug(name))
		assert.Equal(t, want, r.JSON(t)["collection_name"])
		assert.Equal(t, []string{want}, e.collections())
		assertSameDocs(t, docs, e.docs(want))
	}
	g := e.do(http.MethodGet, byName(getURL, "acme-corp"), "", tok)
	require.Equal(t, http.StatusOK, g.Status)
	assert.Equal(t, created["id"], g.JSON(t)["id"])
	assert.Equal(t, "ACME corp", g.JSON(t)["organization_name"])
	assertProblem(t, e.do(http.MethodGet, byName(getURL, "Globex"), "", ""), http.StatusNotFound)
	e.create("Globex", "admin@globex.com", "s3cretpass")
}

// Changing the email to the one the admin already has, in another case,
// changes nothing and revokes nothing.
func TestUpdateSameEmail(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	_, tok := e.tokenFor("Acme Corp", "admin@acme.com", "s3cretpass")
	audit := e.docs(mongostore.AuditCollection)
	r := e.do(http.MethodPut, updateURL, `{"email": "ADMIN@Acme.com", "current_password": "s3cretpass"}`, tok)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.Equal(t, "admin@acme.com", r.JSON(t)["admin_email"])
	assert.EqualValues(t, 0, e.orgDoc("acme_corp")["token_version"])
	assert.Equal(t, audit, e.docs(mongostore.AuditCollection), "no credentials.changed for no change")
	assertProblem(t, e.do(http.MethodDelete, byName(deleteURL, "Globex"), "", tok), http.StatusForbidden) // still authenticated
}

// Deletes and renames of one organization racing each other leave it either
// gone entirely or whole: one collection with every document, pointed at by
// its metadata.
func TestDeleteConcurrent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	_, tok := e.tokenFor("Acme Corp", "admin@acme.com", "s3cretpass")
	want := e.seed("org_acme_corp", 200)

	type call struct{ method, target, body string }
	calls := []call{
		{http.MethodDelete, byName(deleteURL, "Acme Corp"), ""},
		{http.MethodPut, updateURL, `{"organization_name": "Renamed 1"}`},
		{http.MethodDelete, byName(deleteURL, "acme-corp"), ""},
		{http.MethodPut, updateURL, `{"organization_name": "Renamed 2"}`},
		{http.MethodDelete, byName(deleteURL, "ACME CORP"), ""},
	}
	statuses := make([]int, len(calls))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, c := range calls {
		wg.Go(func() {
			<-start
			statuses[i] = e.do(c.method, c.target, c.body, tok).Status
		})
	}
	close(start)
	wg.Wait()
	require.NoError(t, e.orgs.Wait(context.Background()))

	deleted := 0
	for i, s := range statuses {
		if calls[i].method == http.MethodDelete {
			assert.Contains(t, []int{http.StatusNoContent, http.StatusUnauthorized, http.StatusForbidden, http.StatusConflict}, s, "call %d: %v", i, statuses)
			if s == http.StatusNoContent {
				deleted++
			}
		} else {
			assert.Contains(t, []int{http.StatusOK, http.StatusUnauthorized, http.StatusConflict}, s, "call %d: %v", i, statuses)
		}
	}
	assert.LessOrEqual(t, deleted, 1, "statuses: %v", statuses)
	if deleted == 1 {
		assert.Zero(t, e.orgDocs(), "statuses: %v", statuses)
		assert.Empty(t, e.collections(), "statuses: %v", statuses)
		assertUnauthorized(t, e.do(http.MethodPut, updateURL, `{"organization_name": "Zombie"}`, tok))
		return
	}
	require.Equal(t, int64(1), e.orgDocs(), "statuses: %v", statuses)
	var d bson.M
	require.NoError(t, e.db.Collection(mongostore.OrganizationsCollection).FindOne(context.Background(), bson.D{}).Decode(&d))
	assert.NotContains(t, d, "pending")
	assert.Equal(t, []string{d["collection_name"].(string)}, e.collections(), "statuses: %v", statuses)
	assertSameDocs(t, want, e.docs(d["collection_name"].(string)))
}

// A client that goes away mid-rename does not leave the rename half-done.
func TestUpdateRenameClientGone(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	_, tok := e.tokenFor("Acme Corp", "admin@acme.com", "s3cretpass")
	want := e.seed("org_acme_corp", 300)

	for i, after := range []time.Duration{5 * time.Millisecond, 30 * time.Millisecond, 100 * time.Millisecond} {
		ctx, cancel := context.WithCancel(context.Background())
		req := httptest.NewRequestWithContext(ctx, http.MethodPut, updateURL, strings.NewReader(fmt.Sprintf(`{"organization_name": "Gone %d"}`, i)))
		req.Header.Set("Authorization", "Bearer "+tok)
		time.AfterFunc(after, cancel)
		e.srv.ServeHTTP(httptest.NewRecorder(), req) // nobody reads the answer
		cancel()
		require.NoError(t, e.orgs.Wait(context.Background()))

		require.Equal(t, int64(1), e.orgDocs())
		var d bson.M
		require.NoError(t, e.db.Collection(mongostore.OrganizationsCollection).FindOne(context.Background(), bson.D{}).Decode(&d))
		assert.NotContains(t, d, "pending", "the rename finished or never began")
		assert.Equal(t, []string{d["collection_name"].(string)}, e.collections())
		assertSameDocs(t, want, e.docs(d["collection_name"].(string)))
	}
}

// ---- routes -----------------------------------------------------------------

func TestRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})

	t.Run("healthz", func(t *testing.T) {
		r := e.do(http.MethodGet, "/healthz", "", "")
		require.Equal(t, http.StatusOK, r.Status)
		assert.Equal(t, "ok", r.JSON(t)["status"])
	})
	t.Run("readyz", func(t *testing.T) {
		r := e.do(http.MethodGet, "/readyz", "", "")
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		assert.Equal(t, "ready", r.JSON(t)["status"])
	})
	for _, target := range []string{"/", "/nope", "/api/v1/nope", "/api/v1/org", "/api/v1/org/create/extra", "/api/v2/org/create"} {
		t.Run("404 "+target, func(t *testing.T) {
			assertProblem(t, e.do(http.MethodGet, target, "", ""), http.StatusNotFound)
		})
	}
	for _, tt := range []struct{ method, target, allow string }{
		{http.MethodGet, createURL, "POST"},
		{http.MethodPut, createURL, "POST"},
		{http.MethodPost, getURL, "GET"},
		{http.MethodDelete, getURL, "GET"},
		{http.MethodGet, loginURL, "POST"},
		{http.MethodPost, updateURL, "PUT"},
		{http.MethodGet, deleteURL, "DELETE"},
		{http.MethodPost, "/healthz", "GET"},
	} {
		t.Run("405 "+tt.method+" "+tt.target, func(t *testing.T) {
			r := e.do(tt.method, tt.target, "", "")
			assertProblem(t, r, http.StatusMethodNotAllowed)
			allow := strings.Split(r.Header.Get("Allow"), ", ")
			assert.Contains(t, allow, tt.allow, "Allow: %q", r.Header.Get("Allow"))
			assert.NotContains(t, allow, tt.method, "Allow: %q", r.Header.Get("Allow"))
		})
	}
	assert.Zero(t, e.orgDocs())
	assert.Empty(t, e.collections())
}

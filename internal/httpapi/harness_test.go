package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgservice/orgservice/internal/auth"
	"github.com/orgservice/orgservice/internal/dbtest"
	"github.com/orgservice/orgservice/internal/directory"
	"github.com/orgservice/orgservice/internal/document"
	"github.com/orgservice/orgservice/internal/httpapi"
	"github.com/orgservice/orgservice/internal/metrics"
	"github.com/orgservice/orgservice/internal/mongostore"
	"github.com/orgservice/orgservice/internal/org"
)

// testSecret signs tokens in tests.
const testSecret = "test-secret-key-0123456789abcdef0123456789"

// docsConfig is the documents service's configuration in tests: TTLs
// shorter than the defaults, so that a test that stops a writer does not
// wait long for it, yet long enough that a write's deadline (a fraction of
// them) holds on a loaded machine under the race detector.
var docsConfig = document.Config{WriterTTL: 5 * time.Second, ClaimTTL: 9 * time.Second}

// env is one test's service over its own database, reached through the real router.
type env struct {
	t      testing.TB
	db     *mongo.Database
	store  *mongostore.Store
	orgs   *org.Service
	auth   *auth.Service
	docSvc *document.Service
	srv    *httpapi.Server
}

// newEnv builds the whole service over a fresh database, with the default
// Options (no rate limits).
func newEnv(t testing.TB, cfg org.Config) *env {
	t.Helper()
	return newEnvWith(t, cfg, httpapi.Options{})
}

// newEnvWith is newEnv with the server's Options. Without opts.Metrics the
// env gets metrics of its own, wired to the service as in main.
func newEnvWith(t testing.TB, cfg org.Config, opts httpapi.Options) *env {
	t.Helper()
	return newEnvOn(t, dbtest.New(t), cfg, opts)
}

// testDirectory refreshes often but tolerates a minute without a refresh:
// these tests run in parallel under the race detector on a small machine,
// and staleness is tested where it is the subject (internal/directory).
var testDirectory = directory.Config{Staleness: time.Minute, Every: 50 * time.Millisecond}

// newEnvOn is newEnvWith over db, which other envs may share: each is one
// instance of the service, as separate processes would be.
func newEnvOn(t testing.TB, db *mongo.Database, cfg org.Config, opts httpapi.Options) *env {
	t.Helper()
	store := mongostore.New(db, 0)
	require.NoError(t, store.EnsureIndexes(context.Background()))
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithCancel(context.Background())
	dir, err := directory.Start(ctx, store, testDirectory, log)
	require.NoError(t, err)
	orgs := org.NewService(store, dir, auth.Bcrypt{Cost: 4}, cfg, log)
	authn, err := auth.NewService(orgs, orgs, auth.Config{Secret: []byte(testSecret), Issuer: "orgservice", TTL: time.Hour, BcryptCost: 4})
	require.NoError(t, err)
	t.Cleanup(func() { _ = orgs.Wait(context.Background()); cancel() })
	if opts.Metrics == nil {
		m := metrics.New()
		orgs.SetObserver(m)
		opts.Metrics = m
	}
	docs := document.NewService(store, orgs, docsConfig, log)
	t.Cleanup(func() { docs.Close(context.Background()) })
	orgs.SetWriters(docs)
	if opts.Documents == nil {
		opts.Documents = docs
	}
	return &env{t: t, db: db, store: store, orgs: orgs, auth: authn, docSvc: docs, srv: httpapi.New(orgs, authn, log, opts)}
}

// resp is a recorded response.
type resp struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into a map.
func (r resp) JSON(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &m), "body: %s", r.Body)
	return m
}

// do sends one request through the router. body is sent as is; token, when
// set, as a bearer token.
func (e *env) do(method, target, body, token string) resp {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return e.send(req)
}

// send serves req through the router and checks the response against the
// OpenAPI spec (see contract_test.go).
func (e *env) send(req *http.Request) resp {
	e.t.Helper()
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	r := resp{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
	checkContract(e.t, e.srv, req, r)
	return r
}

// create makes an organization and fails the test unless it is created.
func (e *env) create(name, email, password string) map[string]any {
	e.t.Helper()
	r := e.do(http.MethodPost, "/api/v1/org/create", mustJSON(e.t, map[string]string{
		"organization_name": name, "email": email, "password": password,
	}), "")
	require.Equal(e.t, http.StatusCreated, r.Status, "create %q: %s", name, r.Body)
	return r.JSON(e.t)
}

// login returns an access token and fails the test unless the login succeeds.
func (e *env) login(email, password string) string {
	e.t.Helper()
	r := e.do(http.MethodPost, "/api/v1/admin/login", mustJSON(e.t, map[string]string{"email": email, "password": password}), "")
	require.Equal(e.t, http.StatusOK, r.Status, "login %q: %s", email, r.Body)
	return r.JSON(e.t)["access_token"].(string)
}

// collections lists the tenant collections in the test's database.
func (e *env) collections() []string {
	e.t.Helper()
	names, err := e.db.ListCollectionNames(context.Background(), bson.D{})
	require.NoError(e.t, err)
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, org.CollectionPrefix) {
			out = append(out, n)
		}
	}
	return out
}

// orgDocs counts the documents in the master collection.
func (e *env) orgDocs() int64 {
	e.t.Helper()
	n, err := e.db.Collection(mongostore.OrganizationsCollection).CountDocuments(context.Background(), bson.D{})
	require.NoError(e.t, err)
	return n
}

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

package httpapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgservice/orgservice/internal/app"
	"github.com/orgservice/orgservice/internal/app/apptest"
	"github.com/orgservice/orgservice/internal/auth"
	"github.com/orgservice/orgservice/internal/dbtest"
	"github.com/orgservice/orgservice/internal/httpapi"
	"github.com/orgservice/orgservice/internal/mongostore"
	"github.com/orgservice/orgservice/internal/org"
)

// testSecret signs tokens in tests.
const testSecret = apptest.Secret

// env is one test's service over its own database, reached through the real router.
type env struct {
	t      testing.TB
	db     *mongo.Database
	app    *app.App
	stores *mongostore.Stores
	orgs   *org.Service
	auth   *auth.Service
	srv    *httpapi.Server
}

// newEnv builds the whole service over a fresh database, with the default
// Options (no rate limits).
func newEnv(t testing.TB, cfg org.Config) *env {
	t.Helper()
	return newEnvWith(t, cfg, httpapi.Options{})
}

// newEnvWith is newEnv with the server's Options.
func newEnvWith(t testing.TB, cfg org.Config, opts httpapi.Options) *env {
	t.Helper()
	return newEnvOn(t, dbtest.New(t), cfg, opts)
}

// newEnvOn is newEnvWith over db, which other envs may share: each is one
// instance of the service, as separate processes would be.
func newEnvOn(t testing.TB, db *mongo.Database, cfg org.Config, opts httpapi.Options) *env {
	t.Helper()
	c := apptest.Config()
	c.Org, c.HTTP = cfg, opts
	return newEnvFrom(t, db, c)
}

// newEnvFrom starts the service over db with c, through the constructor
// main uses.
func newEnvFrom(t testing.TB, db *mongo.Database, c app.Config) *env {
	t.Helper()
	a := apptest.Start(t, db, c, nil)
	return &env{t: t, db: db, app: a, stores: a.Stores(), orgs: a.Orgs(), auth: a.Auth(), srv: a.Handler()}
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

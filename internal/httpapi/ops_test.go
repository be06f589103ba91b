package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgservice/orgservice/api"
	"github.com/orgservice/orgservice/internal/httpapi"
	"github.com/orgservice/orgservice/internal/org"
)

// newBareEnv is an env without a database, for routes that need none.
func newBareEnv(t testing.TB, opts httpapi.Options) *env {
	t.Helper()
	return &env{t: t, srv: httpapi.New(httpapi.Deps{}, opts, slog.New(slog.DiscardHandler))}
}

// metricsText scrapes /metrics.
func (e *env) metricsText() string {
	e.t.Helper()
	r := e.do(http.MethodGet, "/metrics", "", "")
	require.Equal(e.t, http.StatusOK, r.Status)
	return string(r.Body)
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t, org.Config{})
	e.create("Acme", "admin@acme.com", "s3cretpass")
	tests := []struct {
		method, target, body string
		status               int
		api                  bool
	}{
		{http.MethodGet, "/healthz", "", http.StatusOK, false},
		{http.MethodGet, "/openapi.yaml", "", http.StatusOK, false},
		{http.MethodGet, "/metrics", "", http.StatusOK, false},
		{http.MethodGet, "/no/such/route", "", http.StatusNotFound, false},
		{http.MethodGet, "/api/v1/org/get?organization_name=acme", "", http.StatusOK, true},
		{http.MethodGet, "/api/v1/org/get?organization_name=nope", "", http.StatusNotFound, true},
		{http.MethodPost, "/api/v1/admin/login", `{"email":"admin@acme.com","password":"s3cretpass"}`, http.StatusOK, true},
		{http.MethodPatch, "/api/v1/org/update", "", http.StatusMethodNotAllowed, true},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.target, func(t *testing.T) {
			r := e.do(tt.method, tt.target, tt.body, "")
			require.Equal(t, tt.status, r.Status, "%s", r.Body)
			assert.Equal(t, "nosniff", r.Header.Get("X-Content-Type-Options"))
			assert.Equal(t, "no-referrer", r.Header.Get("Referrer-Policy"))
			if tt.api {
				assert.Equal(t, "no-store", r.Header.Get("Cache-Control"))
			}
		})
	}
}

func TestRequestID(t *testing.T) {
	var logs bytes.Buffer
	srv := httpapi.New(httpapi.Deps{}, httpapi.Options{}, slog.New(slog.NewJSONHandler(&logs, nil)))
	send := func(id string) string {
		req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
		if id != "" {
			req.Header.Set("X-Request-ID", id)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		require.Equal(t, http.StatusOK, rec.Code)
		return rec.Header().Get("X-Request-ID")
	}
	generated := regexp.MustCompile(`^[0-9a-f]{24}$`)

	own := send("abc-123_X.y")
	assert.Regexp(t, generated, own, "the server's own id, never the client's")
	assert.Contains(t, logs.String(), `"request_id":"`+own+`"`, "logged")
	assert.Contains(t, logs.String(), `"client_request_id":"abc-123_X.y"`, "a sane client id is logged beside it")
	assert.Contains(t, logs.String(), `"client_ip":"192.0.2.1"`, "the access line names the client")
	for _, insane := range []string{strings.Repeat("a", 65), "has space", "semi;colon", "<script>", "ünï"} {
		got := send(insane)
		assert.Regexp(t, generated, got, "%q is not used", insane)
		assert.NotContains(t, logs.String(), insane, "nor logged")
	}
	a, b := send(""), send("")
	assert.Regexp(t, generated, a)
	assert.NotEqual(t, a, b)
	assert.Contains(t, logs.String(), `"request_id":"`+b+`"`)
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, org.Config{})
	e.create("Acme", "admin@acme.com", "s3cretpass")
	tok := e.login("admin@acme.com", "s3cretpass")
	_, err := e.db.Collection("org_acme").InsertMany(context.Background(), []any{bson.D{{Key: "n", Value: 1}}, bson.D{{Key: "n", Value: 2}}})
	require.NoError(t, err)
	r := e.do(http.MethodPut, "/api/v1/org/update", `{"organization_name":"Globex"}`, tok)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	e.do(http.MethodGet, "/api/v1/org/get?organization_name=nobody-here-42", "", "")
	e.do(http.MethodGet, "/secret/path/123", "", "")
	r = e.do(http.MethodDelete, "/api/v1/org/delete?organization_name=globex", "", tok)
	require.Equal(t, http.StatusNoContent, r.Status, "%s", r.Body)

	r = e.do(http.MethodGet, "/metrics", "", "")
	require.Equal(t, http.StatusOK, r.Status)
	assert.Contains(t, r.Header.Get("Content-Type"), "text/plain")
	text := string(r.Body)
	for _, want := range []string{
		`http_requests_total{method="POST",route="/api/v1/org/create",status="201"} 1`,
		`http_requests_total{method="GET",route="/api/v1/org/get",status="404"} 1`,
		`http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`http_request_duration_seconds_bucket{method="POST",route="/api/v1/admin/login",status="200",le="+Inf"} 1`,
		`orgservice_organizations_created_total 1`,
		`orgservice_organizations_deleted_total 1`,
		`orgservice_migration_duration_seconds_count{strategy=`,
		`go_goroutines `,
		`process_cpu_seconds_total `,
	} {
		assert.True(t, strings.Contains(text, want), "/metrics lacks %s", want)
	}
	assert.Regexp(t, `orgservice_migrations_total\{strategy="(rename|copy)"\} 1`, text)
	// A renameCollection copies no document; a copy (where the server refuses it) copies both.
	assert.Regexp(t, `orgservice_migration_documents_total\{strategy="rename"\} 0|orgservice_migration_documents_total\{strategy="copy"\} 2`, text)
	assert.NotContains(t, text, "nobody-here-42", "labels carry route patterns, never raw paths")
	assert.NotContains(t, text, "/secret/path/123")
}

// htmlRefs finds the URLs an HTML page loads: src and href attributes.
var htmlRefs = regexp.MustCompile(`(?i)\b(?:src|href)\s*=\s*["']([^"']*)["']`)

func TestSwaggerUIOffline(t *testing.T) {
	e := newBareEnv(t, httpapi.Options{})
	for _, path := range []string{"/docs", "/docs/"} {
		r := e.do(http.MethodGet, path, "", "")
		require.Equal(t, http.StatusOK, r.Status, path)
		assert.Contains(t, r.Header.Get("Content-Type"), "text/html")
		csp := r.Header.Get("Content-Security-Policy")
		assert.Contains(t, csp, "default-src 'self'")
		assert.Contains(t, csp, "script-src 'self' 'unsafe-inline'", "the page's configuration is an inline script")
		assert.Contains(t, csp, "style-src 'self' 'unsafe-inline'", "the page has an inline style")
		assert.Contains(t, csp, "connect-src 'self'", "it fetches /openapi.yaml and runs Try it out on this origin")
		assert.NotContains(t, csp, "unsafe-eval")
		assert.Equal(t, "nosniff", r.Header.Get("X-Content-Type-Options"))

		page := string(r.Body)
		assert.Contains(t, page, `"swaggerJsonUrl":"/openapi.yaml"`)
		refs := htmlRefs.FindAllStringSubmatch(page, -1)
		require.GreaterOrEqual(t, len(refs), 3, "the page loads its CSS and scripts")
		for _, m := range refs {
			ref := m[1]
			assert.True(t, strings.HasPrefix(ref, "/") && !strings.HasPrefix(ref, "//"), "asset %q is not local", ref)
			a := e.do(http.MethodGet, ref, "", "")
			assert.Equal(t, http.StatusOK, a.Status, "asset %s", ref)
			assert.NotEmpty(t, a.Body, "asset %s", ref)
		}
		assert.NotRegexp(t, `(?i)(src|href)\s*=\s*["']?(https?:)?//`, page, "no CDN")
	}
	for _, missing := range []string{"/docs/nope.js", "/docs/../openapi.yaml", "/docs/swagger-ui.css/x"} {
		r := e.do(http.MethodGet, missing, "", "")
		assert.Equal(t, http.StatusNotFound, r.Status, missing)
		assert.Equal(t, "application/problem+json", r.Header.Get("Content-Type"), missing)
	}
	js := e.do(http.MethodGet, "/docs/swagger-ui-bundle.js", "", "")
	require.Equal(t, http.StatusOK, js.Status)
	assert.Contains(t, js.Header.Get("Content-Type"), "javascript")
	assert.Greater(t, len(js.Body), 100_000, "the whole bundle is embedded")
}

func TestOpenAPIServed(t *testing.T) {
	e := newBareEnv(t, httpapi.Options{})
	r := e.do(http.MethodGet, "/openapi.yaml", "", "")
	require.Equal(t, http.StatusOK, r.Status)
	assert.Equal(t, "application/yaml", r.Header.Get("Content-Type"))
	assert.Equal(t, api.Spec, r.Body)
	doc, err := openapi3.NewLoader().LoadFromData(r.Body)
	require.NoError(t, err)
	require.NoError(t, doc.Validate(context.Background()))
	assert.Equal(t, "3.0.3", doc.OpenAPI)
	assert.Contains(t, doc.Components.SecuritySchemes, "bearerAuth")
}

func preflight(origin, method string) *http.Request {
	req := httptest.NewRequest(http.MethodOptions, "/api/v1/org/update", nil)
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", method)
	req.Header.Set("Access-Control-Request-Headers", "authorization, content-type, x-request-id")
	return req
}

func TestCORS(t *testing.T) {
	t.Run("any origin by default, without credentials", func(t *testing.T) {
		e := newBareEnv(t, httpapi.Options{})
		r := e.send(preflight("https://app.example", http.MethodPut))
		assert.Less(t, r.Status, 300)
		assert.Equal(t, "*", r.Header.Get("Access-Control-Allow-Origin"))
		assert.Equal(t, "PUT", r.Header.Get("Access-Control-Allow-Methods"))
		allowed := strings.ToLower(r.Header.Get("Access-Control-Allow-Headers"))
		for _, h := range []string{"authorization", "content-type", "x-request-id"} {
			assert.Contains(t, allowed, h)
		}
		assert.Empty(t, r.Header.Get("Access-Control-Allow-Credentials"))

		// The member and document routes PATCH, and documents take If-Match.
		req := preflight("https://app.example", http.MethodPatch)
		req.Header.Set("Access-Control-Request-Headers", "authorization, content-type, if-match")
		r = e.send(req)
		assert.Equal(t, "PATCH", r.Header.Get("Access-Control-Allow-Methods"))
		assert.Contains(t, strings.ToLower(r.Header.Get("Access-Control-Allow-Headers")), "if-match")
	})
	t.Run("explicit list", func(t *testing.T) {
		e := newBareEnv(t, httpapi.Options{CORSOrigins: []string{"https://app.example", " https://admin.example "}})
		r := e.send(preflight("https://admin.example", http.MethodDelete))
		assert.Equal(t, "https://admin.example", r.Header.Get("Access-Control-Allow-Origin"))
		assert.Empty(t, r.Header.Get("Access-Control-Allow-Credentials"))
		assert.Contains(t, r.Header.Values("Vary"), "Origin")

		r = e.send(preflight("https://evil.example", http.MethodDelete))
		assert.Empty(t, r.Header.Get("Access-Control-Allow-Origin"), "an origin outside the list")
		assert.Empty(t, r.Header.Get("Access-Control-Allow-Methods"))

		req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
		req.Header.Set("Origin", "https://app.example")
		r = e.send(req)
		assert.Equal(t, "https://app.example", r.Header.Get("Access-Control-Allow-Origin"))
		exposed := r.Header.Get("Access-Control-Expose-Headers")
		for _, h := range []string{"X-Request-Id", "Location", "Retry-After", "Etag", "Link", "X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset"} {
			assert.Contains(t, exposed, h)
		}

		req = httptest.NewRequest(http.MethodGet, "/healthz", nil)
		req.Header.Set("Origin", "https://evil.example")
		r = e.send(req)
		assert.Equal(t, http.StatusOK, r.Status)
		assert.Empty(t, r.Header.Get("Access-Control-Allow-Origin"))
	})
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	e := newBareEnv(t, httpapi.Options{})
	r := e.do(http.MethodGet, "/api/v1/nope", "", "")
	require.Equal(t, http.StatusNotFound, r.Status)
	assert.Equal(t, httpapi.ProblemBase+"not-found", r.JSON(t)["type"])

	r = e.do(http.MethodPost, "/api/v1/org/get", "", "")
	require.Equal(t, http.StatusMethodNotAllowed, r.Status)
	assert.Equal(t, "GET", r.Header.Get("Allow"))
	var p map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &p))
	assert.Equal(t, httpapi.ProblemBase+"method-not-allowed", p["type"])
}

// TestMetricsMemberAndAuditRoutes: the member routes and the audit route
// are counted under their route patterns (never a member's id), with the
// status each request got, refusals included.
func TestMetricsMemberAndAuditRoutes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	tm := e.team("Metered")
	owner, admin, member := tm.tokens[org.RoleOwner], tm.tokens[org.RoleAdmin], tm.tokens[org.RoleMember]

	require.Equal(t, http.StatusOK, e.do(http.MethodGet, membersURL, "", owner).Status)
	r := e.do(http.MethodPost, membersURL, `{"email":"metered-new@example.com","password":"password-2","role":"member"}`, admin)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	id := r.JSON(t)["id"].(string)
	require.Equal(t, http.StatusOK, e.do(http.MethodPatch, membersURL+"/"+id, `{"role":"admin"}`, owner).Status)
	require.Equal(t, http.StatusNoContent, e.do(http.MethodDelete, membersURL+"/"+id, "", owner).Status)
	require.Equal(t, http.StatusNotFound, e.do(http.MethodDelete, membersURL+"/"+id, "", owner).Status)
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, membersURL+"/me", "", member).Status)
	require.Equal(t, http.StatusOK, e.do(http.MethodPatch, membersURL+"/me", `{"password":"password-3","current_password":"password-1"}`, admin).Status)
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, auditURL, "", owner).Status)
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, auditURL+"?limit=1", "", owner).Status)
	assertProblem(t, e.do(http.MethodGet, auditURL, "", member), http.StatusForbidden)
	assertProblem(t, e.do(http.MethodGet, auditURL+"?limit=0", "", owner), http.StatusBadRequest)
	assertUnauthorized(t, e.do(http.MethodGet, auditURL, "", ""))

	text := e.metricsText()
	for _, want := range []string{
		`http_requests_total{method="GET",route="/api/v1/org/members",status="200"} 1`,
		`http_requests_total{method="POST",route="/api/v1/org/members",status="201"} 1`,
		`http_requests_total{method="PATCH",route="/api/v1/org/members/{id}",status="200"} 1`,
		`http_requests_total{method="DELETE",route="/api/v1/org/members/{id}",status="204"} 1`,
		`http_requests_total{method="DELETE",route="/api/v1/org/members/{id}",status="404"} 1`,
		`http_requests_total{method="GET",route="/api/v1/org/members/me",status="200"} 1`,
		`http_requests_total{method="PATCH",route="/api/v1/org/members/me",status="200"} 1`,
		`http_requests_total{method="GET",route="/api/v1/org/audit",status="200"} 2`,
		`http_requests_total{method="GET",route="/api/v1/org/audit",status="403"} 1`,
		`http_requests_total{method="GET",route="/api/v1/org/audit",status="400"} 1`,
		`http_requests_total{method="GET",route="/api/v1/org/audit",status="401"} 1`,
		`http_request_duration_seconds_count{method="GET",route="/api/v1/org/audit",status="200"} 2`,
		`http_request_duration_seconds_count{method="PATCH",route="/api/v1/org/members/{id}",status="200"} 1`,
	} {
		assert.True(t, strings.Contains(text, want), "/metrics lacks %s", want)
	}
	assert.NotContains(t, text, id, "a member's id is never a label")
	assert.NotContains(t, text, "limit=", "nor a query")
}

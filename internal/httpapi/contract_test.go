package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orgservice/orgservice/api"
	"github.com/orgservice/orgservice/internal/httpapi"
)

// unspecified are the routes served outside the spec: Swagger UI's assets.
var unspecified = map[string]bool{"GET /docs/*": true}

// specIndex is the embedded spec, loaded, validated and routed once per test binary.
type specIndex struct {
	doc    *openapi3.T
	router routers.Router
}

var loadSpec = sync.OnceValues(func() (*specIndex, error) {
	doc, err := openapi3.NewLoader().LoadFromData(api.Spec)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, err
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, err
	}
	return &specIndex{doc: doc, router: router}, nil
})

// checkContract fails t unless the response r to req is one the spec
// allows: for a spec operation, a documented status with its headers and
// body schema; for anything else the router answers (unknown path, wrong
// method), a 404 or 405 problem. Every problem's status must be the
// response's. It reports with t.Errorf, so it may run on any goroutine.
func checkContract(t testing.TB, srv *httpapi.Server, req *http.Request, r resp) {
	t.Helper()
	if req.Method == http.MethodOptions && req.Header.Get("Access-Control-Request-Method") != "" {
		return // a CORS preflight, answered by the CORS middleware, not an API operation
	}
	sp, err := loadSpec()
	if err != nil {
		t.Errorf("load the spec: %v", err)
		return
	}
	checkProblemStatus(t, req, r)
	route, params, err := sp.router.FindRoute(req)
	if err != nil {
		pattern := srv.Router().Find(chi.NewRouteContext(), req.Method, req.URL.Path)
		if unspecified[req.Method+" "+pattern] {
			return
		}
		checkUnrouted(t, sp, req, r)
		return
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 r.Status,
		Header:                 r.Header,
		Body:                   io.NopCloser(bytes.NewReader(r.Body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("%s %s answered %d, which the spec does not allow: %s\nbody: %.300s", req.Method, req.URL, r.Status, briefly(err), r.Body)
	}
}

// briefly shortens kin-openapi's errors, which quote whole schemas and values.
func briefly(err error) string {
	var re *openapi3filter.ResponseError
	if !errors.As(err, &re) {
		return err.Error()
	}
	msg := re.Reason
	var me openapi3.MultiError
	var se *openapi3.SchemaError
	switch {
	case errors.As(re.Err, &me):
		for _, e := range me {
			if errors.As(e, &se) {
				msg += "; " + strings.Join(se.JSONPointer(), "/") + ": " + se.Reason
			} else {
				msg += "; " + firstLine(e.Error())
			}
		}
	case errors.As(re.Err, &se):
		msg += "; " + strings.Join(se.JSONPointer(), "/") + ": " + se.Reason
	case re.Err != nil:
		msg += "; " + firstLine(re.Err.Error())
	}
	return msg
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}

// checkUnrouted checks an answer for a request no spec operation matches:
// a 404 (unknown path) or 405 with Allow (known path, wrong method) problem.
func checkUnrouted(t testing.TB, sp *specIndex, req *http.Request, r resp) {
	t.Helper()
	if r.Status != http.StatusNotFound && r.Status != http.StatusMethodNotAllowed {
		t.Errorf("%s %s is not in the spec but answered %d (want a 404 or 405 problem)", req.Method, req.URL, r.Status)
		return
	}
	if r.Status == http.StatusMethodNotAllowed && r.Header.Get("Allow") == "" {
		t.Errorf("%s %s: 405 without Allow", req.Method, req.URL)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("%s %s: %d with Content-Type %q, want application/problem+json", req.Method, req.URL, r.Status, ct)
		return
	}
	var body any
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Errorf("%s %s: problem body is not JSON: %v", req.Method, req.URL, err)
		return
	}
	if err := sp.doc.Components.Schemas["Problem"].Value.VisitJSON(body, openapi3.VisitAsResponse()); err != nil {
		t.Errorf("%s %s: %d body does not match Problem: %s", req.Method, req.URL, r.Status, firstLine(err.Error()))
	}
}

// checkProblemStatus checks that a problem body's status is the HTTP status.
func checkProblemStatus(t testing.TB, req *http.Request, r resp) {
	t.Helper()
	if r.Header.Get("Content-Type") != "application/problem+json" {
		return
	}
	var p struct {
		Status int `json:"status"`
	}
	if err := json.Unmarshal(r.Body, &p); err != nil || p.Status != r.Status {
		t.Errorf("%s %s: problem status %d in a %d response (%v)", req.Method, req.URL, p.Status, r.Status, err)
	}
}

// TestContractRoutesMatchSpec: every route the router serves is a spec
// operation, and every spec operation is routed.
func TestContractRoutesMatchSpec(t *testing.T) {
	sp, err := loadSpec()
	require.NoError(t, err)
	srv := httpapi.New(httpapi.Deps{}, httpapi.Options{}, slog.New(slog.DiscardHandler))

	var routed []string
	require.NoError(t, chi.Walk(srv.Router(), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if op := method + " " + route; !unspecified[op] {
			routed = append(routed, op)
		}
		return nil
	}))
	var specified []string
	for path, item := range sp.doc.Paths.Map() {
		for method := range item.Operations() {
			specified = append(specified, method+" "+path)
		}
	}
	sort.Strings(routed)
	sort.Strings(specified)
	require.NotEmpty(t, routed)
	for _, op := range routed {
		assert.Contains(t, specified, op, "routed but not in api/openapi.yaml")
	}
	for _, op := range specified {
		assert.Contains(t, routed, op, "in api/openapi.yaml but not routed")
	}
	for op := range unspecified {
		method, route, _ := strings.Cut(op, " ")
		assert.True(t, srv.Router().Match(chi.NewRouteContext(), method, strings.TrimSuffix(route, "*")+"swagger-ui.css"),
			"%s is exempted from the spec but not routed", op)
	}
}

// TestContractProblemTypes: the spec's problem type list is exactly the
// types the server answers with, and the bearer-protected operations are
// exactly update, delete, the members, the audit log, the usage and the
// documents operations; the operator API takes the operator key.
func TestContractProblemTypes(t *testing.T) {
	sp, err := loadSpec()
	require.NoError(t, err)
	var types []string
	for _, v := range sp.doc.Components.Schemas["Problem"].Value.Properties["type"].Value.Enum {
		types = append(types, strings.TrimPrefix(v.(string), httpapi.ProblemBase))
	}
	want := []string{"bad-request", "validation", "unauthorized", "forbidden", "not-found", "conflict",
		"operation-in-progress", "payload-too-large", "method-not-allowed", "rate-limited", "unavailable", "internal",
		"precondition-failed", "unsupported-media-type", "quota-exceeded", "organization-suspended"}
	assert.ElementsMatch(t, want, types)

	var secured, operator []string
	for path, item := range sp.doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.Security == nil || len(*op.Security) == 0 {
				continue
			}
			if _, ok := (*op.Security)[0]["operatorKey"]; ok && len(*op.Security) == 1 {
				operator = append(operator, method+" "+path)
			} else {
				secured = append(secured, method+" "+path)
			}
		}
	}
	slices.Sort(secured)
	slices.Sort(operator)
	assert.Equal(t, []string{
		"GET /api/v1/operator/organizations", "GET /api/v1/operator/organizations/{id}",
		"PATCH /api/v1/operator/organizations/{id}", "POST /api/v1/operator/organizations/{id}/recount",
	}, operator, "the operator API, and only it, takes the operator key")
	assert.Equal(t, []string{
		"DELETE /api/v1/org/delete", "DELETE /api/v1/org/documents/{id}", "DELETE /api/v1/org/members/me/sessions/{id}",
		"DELETE /api/v1/org/members/{id}",
		"GET /api/v1/org/audit", "GET /api/v1/org/documents", "GET /api/v1/org/documents/{id}", "GET /api/v1/org/export",
		"GET /api/v1/org/get", // optional: anonymous or with a token
		"GET /api/v1/org/members", "GET /api/v1/org/members/me", "GET /api/v1/org/members/me/sessions", "GET /api/v1/org/usage",
		"PATCH /api/v1/org/documents/{id}", "PATCH /api/v1/org/members/me", "PATCH /api/v1/org/members/{id}",
		"POST /api/v1/admin/logout", "POST /api/v1/org/documents", "POST /api/v1/org/import", "POST /api/v1/org/members",
		"PUT /api/v1/org/documents/{id}", "PUT /api/v1/org/update",
	}, secured)
}

// failures collects what a checker reports instead of failing the test.
type failures struct {
	testing.TB
	msgs []string
}

func (f *failures) Helper() {}

func (f *failures) Errorf(format string, args ...any) {
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
}

// TestContractCheckerCatchesMismatches: the response check can fail.
func TestContractCheckerCatchesMismatches(t *testing.T) {
	srv := httpapi.New(httpapi.Deps{}, httpapi.Options{}, slog.New(slog.DiscardHandler))
	header := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	const (
		ct      = "Content-Type"
		rid     = "X-Request-ID"
		jsonCT  = "application/json"
		probCT  = "application/problem+json"
		get     = "/api/v1/org/get?organization_name=acme"
		orgJSON = `{"id":"665f1c2e8b3a4d0012ab34cd","organization_name":"Acme","slug":"acme","collection_name":"org_acme",` +
			`"admin_email":"a@acme.com","member_count":1,"created_at":"2024-06-04T09:15:26Z","updated_at":"2024-06-04T09:15:26Z"}`
	)
	tests := []struct {
		name, method, target string
		r                    resp
		ok                   bool
	}{
		{"valid organization", http.MethodGet, get, resp{200, header(ct, jsonCT, rid, "abc"), []byte(orgJSON)}, true},
		{"undocumented status", http.MethodGet, get, resp{418, header(ct, jsonCT, rid, "abc"), []byte(`{}`)}, false},
		{"body off schema", http.MethodGet, get, resp{200, header(ct, jsonCT, rid, "abc"), []byte(`{"id":"x"}`)}, false},
		{"valid public organization", http.MethodGet, get, resp{200, header(ct, jsonCT, rid, "abc"),
			[]byte(`{"organization_name":"Acme","slug":"acme","collection_name":"org_acme","created_at":"2024-06-04T09:15:26Z"}`)}, true},
		{"public organization with the admin's email", http.MethodGet, get, resp{200, header(ct, jsonCT, rid, "abc"),
			[]byte(`{"organization_name":"Acme","slug":"acme","collection_name":"org_acme","created_at":"2024-06-04T09:15:26Z","admin_email":"a@acme.com"}`)}, false},
		{"password leaked", http.MethodGet, get, resp{200, header(ct, jsonCT, rid, "abc"),
			[]byte(strings.Replace(orgJSON, `{`, `{"password_hash":"$2a$",`, 1))}, false},
		{"no X-Request-ID", http.MethodGet, "/healthz", resp{200, header(ct, jsonCT), []byte(`{"status":"ok"}`)}, false},
		{"problem status differs", http.MethodGet, get, resp{404, header(ct, probCT, rid, "abc"),
			[]byte(`{"type":"https://orgservice.dev/problems/not-found","title":"Not found","status":400,"detail":"x"}`)}, false},
		{"unknown problem type", http.MethodGet, get, resp{404, header(ct, probCT, rid, "abc"),
			[]byte(`{"type":"https://orgservice.dev/problems/gone","title":"Gone","status":404,"detail":"x"}`)}, false},
		{"unknown route answered 200", http.MethodGet, "/nope", resp{200, header(ct, jsonCT, rid, "abc"), []byte(`{}`)}, false},
		{"405 without Allow", http.MethodPost, "/healthz", resp{405, header(ct, probCT, rid, "abc"),
			[]byte(`{"type":"https://orgservice.dev/problems/method-not-allowed","title":"t","status":405,"detail":"d"}`)}, false},
		{"401 without WWW-Authenticate", http.MethodPut, "/api/v1/org/update", resp{401, header(ct, probCT, rid, "abc"),
			[]byte(`{"type":"https://orgservice.dev/problems/unauthorized","title":"t","status":401,"detail":"d"}`)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &failures{TB: t}
			checkContract(f, srv, httptest.NewRequest(tt.method, tt.target, nil), tt.r)
			if tt.ok {
				assert.Empty(t, f.msgs)
			} else {
				assert.NotEmpty(t, f.msgs, "the checker let it pass")
			}
		})
	}
}

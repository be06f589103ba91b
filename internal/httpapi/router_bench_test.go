package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/orgservice/orgservice/internal/auth"
	"github.com/orgservice/orgservice/internal/httpapi"
	"github.com/orgservice/orgservice/internal/org"
)

// The router benchmarks send requests through the real router and every
// middleware (request id, access log, metrics, CORS, …). The Router ones
// answer from memory, so they measure the HTTP layer alone; the others run
// the whole service over the embedded database, as cmd/orgbench does, and
// are what `go test -cpuprofile` profiles. Run them with
//
//	go test -run '^$' -bench . -benchmem ./internal/httpapi

// stubOrgs answers every call with one organization, from memory; the
// member calls, which the benchmarks do not make, are left to the nil Orgs.
type stubOrgs struct {
	httpapi.Orgs
	o *org.Organization
}

func (s stubOrgs) Create(context.Context, org.CreateInput) (*org.Organization, error) {
	return s.o, nil
}
func (s stubOrgs) Get(context.Context, string) (*org.Organization, error) { return s.o, nil }
func (s stubOrgs) Update(context.Context, org.Principal, org.UpdateInput) (*org.Organization, error) {
	return s.o, nil
}
func (s stubOrgs) Delete(context.Context, org.Principal, string) error { return nil }
func (s stubOrgs) Ping(context.Context) error                          { return nil }

// stubAuth logs in and authenticates without bcrypt, a signature or a lookup.
type stubAuth struct{ o *org.Organization }

func (s stubAuth) Login(context.Context, string, string) (auth.Token, error) {
	return auth.Token{AccessToken: "header.payload.signature", TokenType: "Bearer", ExpiresIn: 3600}, nil
}
func (s stubAuth) Authenticate(context.Context, string) (org.Principal, error) {
	return org.Principal{OrgID: s.o.ID, Email: s.o.AdminEmail, OrgName: s.o.Name, MemberID: s.o.ID, Role: org.RoleOwner}, nil
}
func (s stubAuth) Refresh(ctx context.Context, _ string) (auth.Token, error) {
	return s.Login(ctx, "", "")
}
func (s stubAuth) Logout(context.Context, org.Principal) error { return nil }
func (s stubAuth) Sessions(context.Context, org.Principal) ([]org.Session, error) {
	return nil, nil
}
func (s stubAuth) EndSession(context.Context, org.Principal, string) error { return nil }

// benchWriter is a ResponseWriter that keeps the status and reuses its headers.
type benchWriter struct {
	h      http.Header
	status int
}

func (w *benchWriter) Header() http.Header         { return w.h }
func (w *benchWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *benchWriter) WriteHeader(status int)      { w.status = status }
func (w *benchWriter) reset()                      { clear(w.h); w.status = 0 }

// serve runs req (its body from body, when set) through srv b.N times and
// fails unless every answer has status want.
func serve(b *testing.B, srv http.Handler, method, target, body string, want int) {
	b.Helper()
	w := &benchWriter{h: http.Header{}}
	req := httptest.NewRequest(method, target, nil)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	b.ReportAllocs()
	for b.Loop() {
		w.reset()
		if body != "" {
			req.Body = io.NopCloser(strings.NewReader(body))
		}
		srv.ServeHTTP(w, req)
		if w.status != want && !(want == http.StatusOK && w.status == 0) {
			b.Fatalf("%s %s: status %d, want %d", method, target, w.status, want)
		}
	}
}

func stubServer() *httpapi.Server {
	o := &org.Organization{
		ID: "65f0c0ffee0123456789abcd", Name: "Acme Corp", Slug: "acme_corp", CollectionName: "org_acme_corp",
		AdminEmail: "admin@acme.com", State: org.StateActive, CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC(),
	}
	// The production log handler, its output discarded.
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	return httpapi.New(httpapi.Deps{Orgs: stubOrgs{o: o}, Auth: stubAuth{o}}, httpapi.Options{}, log)
}

func BenchmarkRouterGetOrg(b *testing.B) {
	serve(b, stubServer(), http.MethodGet, "/api/v1/org/get?organization_name=Acme%20Corp", "", http.StatusOK)
}

func BenchmarkRouterLogin(b *testing.B) {
	serve(b, stubServer(), http.MethodPost, "/api/v1/admin/login",
		`{"email":"admin@acme.com","password":"s3cretpass"}`, http.StatusOK)
}

// BenchmarkGetOrg is a GET of one of 100 organizations, through the whole
// service over the embedded database (in this process, so a CPU profile
// shows the database too: focus on the service with
// -focus 'orgservice|net/http|chi|mongo-driver').
func BenchmarkGetOrg(b *testing.B) {
	e := newEnv(b, org.Config{})
	for i := range 100 {
		e.create(benchName(i), benchEmail(i), "s3cretpass")
	}
	serve(b, e.srv, http.MethodGet, "/api/v1/org/get?organization_name="+url.QueryEscape(benchName(50)), "", http.StatusOK)
}

// BenchmarkLogin is a login through the whole service over the embedded
// database, at bcrypt cost 4 (the test cost) so that the rest of the path shows.
func BenchmarkLogin(b *testing.B) {
	e := newEnv(b, org.Config{})
	for i := range 100 {
		e.create(benchName(i), benchEmail(i), "s3cretpass")
	}
	serve(b, e.srv, http.MethodPost, "/api/v1/admin/login",
		`{"email":"`+benchEmail(50)+`","password":"s3cretpass"}`, http.StatusOK)
}

// BenchmarkRefresh is a refresh through the whole service over the
// embedded database, with 1,000 other sessions stored: the session read, the
// insert of the used token's record, the organization read afresh only when
// the directory refuses, the rotation, a new access token. Each refresh
// uses the token the last one answered.
func BenchmarkRefresh(b *testing.B) {
	e := newEnv(b, org.Config{})
	for i := range 10 {
		e.create(benchName(i), benchEmail(i), "s3cretpass")
	}
	for i := range 1000 {
		e.login(benchEmail(i%10), "s3cretpass")
	}
	r := e.do(http.MethodPost, "/api/v1/admin/login", `{"email":"`+benchEmail(5)+`","password":"s3cretpass"}`, "")
	refresh := r.JSON(b)["refresh_token"].(string)
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		w = httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/api/v1/admin/refresh", strings.NewReader(`{"refresh_token":"`+refresh+`"}`))
		req.Header.Set("Content-Type", "application/json")
		e.srv.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
		var t struct {
			Refresh string `json:"refresh_token"`
		}
		if err := json.Unmarshal(w.Body.Bytes(), &t); err != nil {
			b.Fatal(err)
		}
		refresh = t.Refresh
	}
}

func benchName(i int) string  { return fmt.Sprintf("Bench Org %03d", i) }
func benchEmail(i int) string { return fmt.Sprintf("admin%03d@bench.test", i) }

// BenchmarkDocumentCreate is a POST /api/v1/org/documents through the whole
// service over the embedded database: token check, writer registration,
// parsing, one insert, the answer.
func BenchmarkDocumentCreate(b *testing.B) {
	e := newEnv(b, org.Config{})
	_, token := e.tokenFor(benchName(0), benchEmail(0), "s3cretpass")
	body := `{"sku":"SKU-000000001","price":10.99,"active":true,"tags":["bench","doc"],"note":"` + strings.Repeat("x", 96) + `"}`
	w := &benchWriter{h: http.Header{}}
	req := httptest.NewRequest(http.MethodPost, "/api/v1/org/documents", nil)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	b.ReportAllocs()
	for b.Loop() {
		w.reset()
		req.Body = io.NopCloser(strings.NewReader(body))
		e.srv.ServeHTTP(w, req)
		if w.status != http.StatusCreated {
			b.Fatalf("status %d, want 201", w.status)
		}
	}
}

package apiclient

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// seen is what the test server received.
type seen struct {
	Method, URI, Auth, ContentType, XFF, IfMatch string
	Body                                         string
}

// echo answers every request with what it received, as JSON, with the
// status the query's status parameter names (200 when none).
func echo(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		status := http.StatusOK
		if r.URL.Query().Get("organization_name") == "teapot" {
			status = http.StatusTeapot
		}
		w.Header().Set("X-Seen", "yes")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(seen{
			Method: r.Method, URI: r.RequestURI, Auth: r.Header.Get("Authorization"),
			ContentType: r.Header.Get("Content-Type"), XFF: r.Header.Get("X-Forwarded-For"),
			IfMatch: r.Header.Get("If-Match"), Body: string(b),
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestRequests(t *testing.T) {
	c := New(echo(t).URL+"/", nil)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		req  Request
		want seen
	}{
		{"create", CreateOrg("Acme Corp", "a@acme.test", "pw-123456"), seen{Method: "POST", URI: "/api/v1/org/create",
			ContentType: "application/json", Body: `{"email":"a@acme.test","organization_name":"Acme Corp","password":"pw-123456"}`}},
		{"get", GetOrg("Café & Co"), seen{Method: "GET", URI: "/api/v1/org/get?organization_name=Caf%C3%A9+%26+Co"}},
		{"login from", Login("a@acme.test", "pw").With("X-Forwarded-For", "127.10.0.1"), seen{Method: "POST", URI: "/api/v1/admin/login",
			ContentType: "application/json", XFF: "127.10.0.1", Body: `{"email":"a@acme.test","password":"pw"}`}},
		{"rename", UpdateOrg("tok", OrgUpdate{Name: "Globex"}), seen{Method: "PUT", URI: "/api/v1/org/update", Auth: "Bearer tok",
			ContentType: "application/json", Body: `{"organization_name":"Globex"}`}},
		{"delete", DeleteOrg("tok", "Doomed 0"), seen{Method: "DELETE", URI: "/api/v1/org/delete?organization_name=Doomed+0", Auth: "Bearer tok"}},
		{"add member", AddMember("tok", "m@acme.test", "pw", "admin"), seen{Method: "POST", URI: "/api/v1/org/members", Auth: "Bearer tok",
			ContentType: "application/json", Body: `{"email":"m@acme.test","password":"pw","role":"admin"}`}},
		{"set role", SetRole("tok", "m1", "owner"), seen{Method: "PATCH", URI: "/api/v1/org/members/m1", Auth: "Bearer tok",
			ContentType: "application/json", Body: `{"role":"owner"}`}},
		{"remove member", RemoveMember("tok", "m1"), seen{Method: "DELETE", URI: "/api/v1/org/members/m1", Auth: "Bearer tok"}},
		{"me", Me("tok"), seen{Method: "GET", URI: "/api/v1/org/members/me", Auth: "Bearer tok"}},
		{"create document", CreateDocument("tok", []byte(`{"id":"d1"}`)), seen{Method: "POST", URI: "/api/v1/org/documents",
			Auth: "Bearer tok", ContentType: "application/json", Body: `{"id":"d1"}`}},
		{"get document", GetDocument("tok", "d1"), seen{Method: "GET", URI: "/api/v1/org/documents/d1", Auth: "Bearer tok"}},
		{"list documents", ListDocuments("tok", url.Values{"limit": {"100"}, "filter[paid]": {"true"}}), seen{Method: "GET",
			URI: "/api/v1/org/documents?filter%5Bpaid%5D=true&limit=100", Auth: "Bearer tok"}},
		{"list all", ListDocuments("tok", nil), seen{Method: "GET", URI: "/api/v1/org/documents", Auth: "Bearer tok"}},
		{"patch document", PatchDocument("tok", "d1", []byte(`{"paid":true}`)).With("If-Match", `"1"`), seen{Method: "PATCH",
			URI: "/api/v1/org/documents/d1", Auth: "Bearer tok", ContentType: "application/merge-patch+json", IfMatch: `"1"`, Body: `{"paid":true}`}},
		{"export", Export("tok"), seen{Method: "GET", URI: "/api/v1/org/export", Auth: "Bearer tok"}},
		{"import", Import("tok", []byte("{}\n")), seen{Method: "POST", URI: "/api/v1/org/import", Auth: "Bearer tok",
			ContentType: "application/x-ndjson", Body: "{}\n"}},
		{"audit", ReadAudit("tok", "", 0), seen{Method: "GET", URI: "/api/v1/org/audit", Auth: "Bearer tok"}},
		{"audit page", ReadAudit("tok", "1717492526120000000-3fa2c9d1", 20), seen{Method: "GET",
			URI: "/api/v1/org/audit?after=1717492526120000000-3fa2c9d1&limit=20", Auth: "Bearer tok"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := c.Do(ctx, tc.req)
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, r.Status)
			assert.Equal(t, "yes", r.Header.Get("X-Seen"))
			var got seen
			require.NoError(t, r.JSON(&got))
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestWithCopies(t *testing.T) {
	a := Login("a@acme.test", "pw").With("X-Forwarded-For", "127.10.0.1")
	b := a.With("X-Forwarded-For", "127.10.0.2")
	assert.Equal(t, "127.10.0.1", a.Header.Get("X-Forwarded-For"), "With leaves the original alone")
	assert.Equal(t, "127.10.0.2", b.Header.Get("X-Forwarded-For"))
}

func TestStatuses(t *testing.T) {
	c := New(echo(t).URL, nil)
	ctx := context.Background()

	r, err := c.Do(ctx, GetOrg("teapot"))
	require.NoError(t, err, "Do answers any status")
	assert.Equal(t, http.StatusTeapot, r.Status)
	assert.Contains(t, r.String(), "418 {")

	var got seen
	require.NoError(t, c.Call(ctx, GetOrg("acme"), http.StatusOK, &got))
	assert.Equal(t, "GET", got.Method)
	require.NoError(t, c.Send(ctx, GetOrg("acme"), http.StatusOK))

	for _, err := range []error{c.Call(ctx, GetOrg("teapot"), http.StatusOK, &got), c.Send(ctx, GetOrg("teapot"), http.StatusOK)} {
		var se *StatusError
		require.True(t, errors.As(err, &se), "%v", err)
		assert.Equal(t, http.StatusTeapot, se.Status)
		assert.Regexp(t, `^GET /api/v1/org/get\?organization_name=teapot: status 418: \{`, se.Error())
	}

	_, err = New("http://127.0.0.1:1", nil).Do(ctx, GetOrg("acme"))
	assert.Error(t, err, "no answer")
}

func TestToken(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b map[string]string
		_ = json.NewDecoder(r.Body).Decode(&b)
		switch b["password"] {
		case "right":
			_, _ = io.WriteString(w, `{"access_token":"tok","token_type":"Bearer","expires_in":3600}`)
		case "empty":
			_, _ = io.WriteString(w, `{}`)
		default:
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	c := New(srv.URL, srv.Client())
	ctx := context.Background()
	tok, err := c.Token(ctx, "a@acme.test", "right")
	require.NoError(t, err)
	assert.Equal(t, "tok", tok)
	_, err = c.Token(ctx, "a@acme.test", "empty")
	assert.ErrorContains(t, err, "no access_token")
	_, err = c.Token(ctx, "a@acme.test", "wrong")
	var se *StatusError
	assert.True(t, errors.As(err, &se) && se.Status == http.StatusUnauthorized, "%v", err)
}

// Send, the load path, never reads an answer's body into memory.
func TestSendDiscards(t *testing.T) {
	big := make([]byte, 1<<20)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(big) }))
	defer srv.Close()
	c := New(srv.URL, srv.Client())
	ctx, req := context.Background(), Export("tok")
	require.NoError(t, c.Send(ctx, req, http.StatusOK)) // a connection to reuse
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 20 {
		require.NoError(t, c.Send(ctx, req, http.StatusOK))
	}
	runtime.ReadMemStats(&after)
	assert.Less(t, (after.TotalAlloc-before.TotalAlloc)/20, uint64(256<<10), "bytes allocated per 1 MiB answer")
}

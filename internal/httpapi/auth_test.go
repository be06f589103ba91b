package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgservice/orgservice/internal/org"
)

// doAuth sends a request with a raw Authorization header (or none), for
// the cases e.do cannot express: other schemes, a token without a scheme.
func (e *env) doAuth(method, target, body, authorization string) resp {
	e.t.Helper()
	var req *http.Request
	if body != "" {
		req = httptest.NewRequest(method, target, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
	} else {
		req = httptest.NewRequest(method, target, nil)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	return e.send(req)
}

// forgeToken signs, with secret, the claims a real token of the only
// organization in e's database carries.
func forgeToken(t testing.TB, e *env, secret string) string {
	t.Helper()
	var d bson.M
	require.NoError(t, e.db.Collection("organizations").FindOne(t.Context(), bson.D{}).Decode(&d))
	now := time.Now()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": d["admin_email"], "org_name": d["organization_name"], "org_id": d["_id"].(bson.ObjectID).Hex(),
		"ver": d["token_version"], "iss": "orgservice", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"sid": "0123456789abcdef0123456789abcdef", // no such session: a token is checked without reading sessions
	}).SignedString([]byte(secret))
	require.NoError(t, err)
	return s
}

func loginJSON(t testing.TB, email, password string) string {
	return mustJSON(t, map[string]string{"email": email, "password": password})
}

func TestLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	created := e.create("Acme Corp", "admin@acme.com", "s3cretpass")
	before := e.snapshot()
	var succeeded, failed []string // the request ids of the logins the audit log records

	for _, email := range []string{"admin@acme.com", "ADMIN@ACME.COM", "Admin@Acme.com", "  admin@acme.com "} {
		t.Run("200 "+email, func(t *testing.T) {
			r := e.do(http.MethodPost, loginURL, loginJSON(t, email, "s3cretpass"), "")
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			succeeded = append(succeeded, r.Header.Get("X-Request-ID"))
			assert.Equal(t, "application/json", r.Header.Get("Content-Type"))
			assert.Equal(t, "no-store", r.Header.Get("Cache-Control"))
			body := r.JSON(t)
			assert.ElementsMatch(t, []string{"access_token", "token_type", "expires_in", "refresh_token"}, keys(body))
			assert.Regexp(t, `^[0-9a-f]{32}\.[A-Za-z0-9_-]{43}$`, body["refresh_token"])
			assert.Equal(t, "Bearer", body["token_type"])
			assert.Equal(t, float64(3600), body["expires_in"])
			tok, _ := body["access_token"].(string)
			require.NotEmpty(t, tok)

			// The token is HS256 with the claims issue 2 lists.
			var c jwt.MapClaims
			parsed, err := jwt.ParseWithClaims(tok, &c, func(*jwt.Token) (any, error) { return []byte(testSecret), nil })
			require.NoError(t, err)
			assert.Equal(t, "HS256", parsed.Method.Alg())
			assert.Equal(t, "admin@acme.com", c["sub"])
			assert.Equal(t, created["id"], c["org_id"])
			assert.Equal(t, "Acme Corp", c["org_name"])
			assert.Equal(t, "orgservice", c["iss"])
			assert.EqualValues(t, 0, c["ver"])
			assert.Regexp(t, `^[0-9a-f]{32}$`, c["sid"], "its session")
			for _, k := range []string{"iat", "exp"} {
				assert.Contains(t, c, k)
			}

			// And it authenticates (403, not 401: another name, nothing changes).
			assertProblem(t, e.do(http.MethodDelete, byName(deleteURL, "Globex"), "", tok), http.StatusForbidden)
		})
	}

	t.Run("401 alike for a wrong password and an unknown email", func(t *testing.T) {
		wrong := e.do(http.MethodPost, loginURL, loginJSON(t, "admin@acme.com", "wrong-password"), "")
		unknown := e.do(http.MethodPost, loginURL, loginJSON(t, "nobody@acme.com", "wrong-password"), "")
		assertProblem(t, wrong, http.StatusUnauthorized)
		assertProblem(t, unknown, http.StatusUnauthorized)
		failed = append(failed, wrong.Header.Get("X-Request-ID"))
		assert.Equal(t, string(wrong.Body), string(unknown.Body), "identical bodies")
		assert.Equal(t, wrong.Header.Get("WWW-Authenticate"), unknown.Header.Get("WWW-Authenticate"))
		assert.NotContains(t, string(wrong.Body), "admin@acme.com")
	})

	for _, tt := range []struct {
		name, body string
		fields     []string
	}{
		{"blank email", loginJSON(t, "  ", "s3cretpass"), []string{"email"}},
		{"blank password", loginJSON(t, "admin@acme.com", "   "), []string{"password"}},
		{"empty password", loginJSON(t, "admin@acme.com", ""), []string{"password"}},
		{"missing both", `{}`, []string{"email", "password"}},
		{"missing password", `{"email": "admin@acme.com"}`, []string{"password"}},
	} {
		t.Run("422 "+tt.name, func(t *testing.T) {
			p := assertProblem(t, e.do(http.MethodPost, loginURL, tt.body, ""), http.StatusUnprocessableEntity)
			assert.ElementsMatch(t, tt.fields, problemFields(t, p))
		})
	}

	for _, tt := range []struct{ name, body string }{
		{"malformed", `{"email": `},
		{"wrong type", `{"email": "admin@acme.com", "password": 12345678}`},
		{"unknown field", `{"email": "admin@acme.com", "password": "s3cretpass", "remember": true}`},
		{"empty body", ``},
		{"trailing data", loginJSON(t, "admin@acme.com", "s3cretpass") + `{}`},
		{"null", `null`},
		{"array", `[]`},
	} {
		t.Run("400 "+tt.name, func(t *testing.T) {
			assertProblem(t, e.do(http.MethodPost, loginURL, tt.body, ""), http.StatusBadRequest)
		})
	}

	// Logging in changes nothing but the audit log (and opens sessions): one
	// event per login as the member, none for the unknown email nor for a
	// refused request. A failed login's event follows its answer.
	require.NoError(t, e.auth.Wait(t.Context()))
	added := onlyAuditAdded(t, before, e.snapshot())
	me := eventActor{MemberID: e.members("acme_corp")[0]["id"].(string), Email: "admin@acme.com"}
	target := eventTarget{Type: "member", ID: me.MemberID, Name: "admin@acme.com"}
	var ok, bad []string
	for _, ev := range added {
		assert.Equal(t, created["id"], ev.OrgID)
		assert.Equal(t, me, ev.Actor)
		assert.Equal(t, target, ev.Target)
		switch ev.Action {
		case "login.succeeded":
			ok = append(ok, ev.RequestID)
			assert.Equal(t, map[string]string{"ip": testIP}, ev.Details)
		case "login.failed":
			bad = append(bad, ev.RequestID)
			assert.Equal(t, map[string]string{"ip": testIP, "reason": "wrong password"}, ev.Details)
		default:
			t.Errorf("a login recorded %s", ev.Action)
		}
	}
	require.Len(t, succeeded, 4)
	assert.ElementsMatch(t, succeeded, ok, "each successful login once, under its request id")
	assert.Equal(t, failed, bad, "the wrong password once; the unknown email not at all")
}

// bcrypt reads only 72 bytes: a 73-byte password must not log in as its
// 72-byte prefix.
func TestLoginPasswordEdge(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	p72 := strings.Repeat("a", 60) + "-0123456789!"
	require.Len(t, p72, 72)
	e.create("Acme Corp", "admin@acme.com", p72)

	e.login("admin@acme.com", p72)
	for _, pw := range []string{p72 + "x", p72 + p72, p72[:71]} {
		r := e.do(http.MethodPost, loginURL, loginJSON(t, "admin@acme.com", pw), "")
		assertProblem(t, r, http.StatusUnauthorized)
	}

	// The same edge through a password change.
	tok := e.login("admin@acme.com", p72)
	q72 := strings.Repeat("é", 36)
	require.Len(t, q72, 72)
	require.Equal(t, http.StatusOK, e.do(http.MethodPut, updateURL, mustJSON(t, map[string]string{"password": q72, "current_password": p72}), tok).Status)
	e.login("admin@acme.com", q72)
	assertProblem(t, e.do(http.MethodPost, loginURL, loginJSON(t, "admin@acme.com", q72+"é"), ""), http.StatusUnauthorized)
	assertProblem(t, e.do(http.MethodPost, loginURL, loginJSON(t, "admin@acme.com", q72+"x"), ""), http.StatusUnauthorized)
}

// A password the login would refuse as blank cannot be set either: an
// account nobody can ever log into is not created.
func TestBlankPasswordRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	blank := strings.Repeat(" ", 8)
	p := assertProblem(t, e.do(http.MethodPost, createURL, createBody(t, "Acme Corp", "admin@acme.com", blank), ""), http.StatusUnprocessableEntity)
	assert.Equal(t, []string{"password"}, problemFields(t, p))
	assert.Zero(t, e.orgDocs())
	assert.Empty(t, e.collections())

	_, tok := e.tokenFor("Acme Corp", "admin@acme.com", "s3cretpass")
	before := e.snapshot()
	p = assertProblem(t, e.do(http.MethodPut, updateURL, mustJSON(t, map[string]string{"password": "\t\t\t\t        ", "current_password": "s3cretpass"}), tok), http.StatusUnprocessableEntity)
	assert.Equal(t, []string{"password"}, problemFields(t, p))
	assert.Equal(t, before, e.snapshot(), "nothing changed")
	e.login("admin@acme.com", "s3cretpass")
}

package httpapi_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orgservice/orgservice/internal/httpapi"
	"github.com/orgservice/orgservice/internal/org"
)

// from sends a request from the client at remote ("ip:port"), with extra
// headers given as name, value pairs.
func (e *env) from(remote, method, target, body string, headers ...string) resp {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	req.RemoteAddr = remote
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	return e.send(req)
}

func loginBody(email, password string) string {
	return fmt.Sprintf(`{"email":%q,"password":%q}`, email, password)
}

// assertLimited checks a 429 rate-limited problem with its headers.
func assertLimited(t *testing.T, r resp, limit int) {
	t.Helper()
	require.Equal(t, http.StatusTooManyRequests, r.Status, "%s", r.Body)
	assert.Equal(t, "application/problem+json", r.Header.Get("Content-Type"))
	assert.Equal(t, httpapi.ProblemBase+"rate-limited", r.JSON(t)["type"])
	assert.Equal(t, "60", r.Header.Get("Retry-After"))
	assert.Equal(t, fmt.Sprint(limit), r.Header.Get("X-RateLimit-Limit"))
	assert.Equal(t, "0", r.Header.Get("X-RateLimit-Remaining"))
	assert.NotEmpty(t, r.Header.Get("X-RateLimit-Reset"))
}

func TestLoginRateLimitPerIP(t *testing.T) {
	e := newEnvWith(t, org.Config{}, httpapi.Options{LoginRatePerMin: 5})
	e.create("Acme", "admin@acme.com", "s3cretpass")
	const ip = "203.0.113.7:4000"
	for i := range 5 {
		// A different email each time: only the per-IP limit is at work.
		r := e.from(ip, http.MethodPost, "/api/v1/admin/login", loginBody(fmt.Sprintf("u%d@x.com", i), "wrongpass1"))
		require.Equal(t, http.StatusUnauthorized, r.Status, "login %d: %s", i+1, r.Body)
		assert.Equal(t, "5", r.Header.Get("X-RateLimit-Limit"))
	}
	r := e.from(ip, http.MethodPost, "/api/v1/admin/login", loginBody("admin@acme.com", "s3cretpass"))
	assertLimited(t, r, 5)

	// A forged X-Forwarded-For or X-Real-IP does not make a new client.
	r = e.from("203.0.113.7:4001", http.MethodPost, "/api/v1/admin/login", loginBody("admin@acme.com", "s3cretpass"),
		"X-Forwarded-For", "198.51.100.99")
	assertLimited(t, r, 5)
	r = e.from("203.0.113.7:4002", http.MethodPost, "/api/v1/admin/login", loginBody("admin@acme.com", "s3cretpass"),
		"X-Real-IP", "198.51.100.98")
	assertLimited(t, r, 5)
	// Another client is unaffected...
	r = e.from("198.51.100.1:4000", http.MethodPost, "/api/v1/admin/login", loginBody("admin@acme.com", "s3cretpass"))
	assert.Equal(t, http.StatusOK, r.Status, "%s", r.Body)

	// ... nor can a forged header lock another client out.
	for range 6 {
		e.from("203.0.113.8:4000", http.MethodPost, "/api/v1/admin/login", loginBody("zz@x.com", "wrongpass1"),
			"X-Forwarded-For", "198.51.100.2")
	}
	r = e.from("198.51.100.2:4000", http.MethodPost, "/api/v1/admin/login", loginBody("admin@acme.com", "s3cretpass"))
	assert.Equal(t, http.StatusOK, r.Status, "%s", r.Body)

	assert.Contains(t, e.metricsText(), `orgservice_rate_limited_total{limit="login_ip"} 4`)
}

func TestLoginRateLimitPerEmail(t *testing.T) {
	e := newEnvWith(t, org.Config{}, httpapi.Options{LoginRatePerMin: 5, LoginEmailRatePerMin: 8})
	e.create("Acme", "admin@acme.com", "s3cretpass")
	// Eight addresses, one email: the email's budget is spent, in any spelling.
	for i := range 8 {
		email := "admin@acme.com"
		if i%2 == 1 {
			email = " ADMIN@Acme.com"
		}
		r := e.from(fmt.Sprintf("203.0.113.%d:4000", i+1), http.MethodPost, "/api/v1/admin/login", loginBody(email, "wrongpass1"))
		require.Equal(t, http.StatusUnauthorized, r.Status, "attempt %d: %s", i+1, r.Body)
	}
	r := e.from("203.0.113.99:4000", http.MethodPost, "/api/v1/admin/login", loginBody("Admin@acme.com", "s3cretpass"))
	assertLimited(t, r, 8)

	// The same fresh address may still log in as someone else.
	e.create("Globex", "boss@globex.com", "s3cretpass")
	r = e.from("203.0.113.99:4000", http.MethodPost, "/api/v1/admin/login", loginBody("boss@globex.com", "s3cretpass"))
	assert.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.Contains(t, e.metricsText(), `orgservice_rate_limited_total{limit="login_email"} 1`)
}

// Failed logins from one address cannot lock the account's owner out
// elsewhere: that address is refused, the owner logs in from another. The
// per-address limit is checked first, so that attempts it refuses do not
// count against the email (OWASP Authentication Cheat Sheet, "Account
// Lockout": a lockout must not become a denial of service).
func TestLoginRateLimitNoLockout(t *testing.T) {
	e := newEnvWith(t, org.Config{}, httpapi.Options{LoginRatePerMin: 5, LoginEmailRatePerMin: 8})
	e.create("Acme", "admin@acme.com", "s3cretpass")
	const attacker = "203.0.113.66:4000"
	for i := range 50 { // far more than either limit
		r := e.from(attacker, http.MethodPost, "/api/v1/admin/login", loginBody("admin@acme.com", fmt.Sprintf("guess-%d", i)))
		if i < 5 {
			require.Equal(t, http.StatusUnauthorized, r.Status, "guess %d: %s", i+1, r.Body)
		} else {
			assertLimited(t, r, 5)
		}
	}
	r := e.from("198.51.100.20:4000", http.MethodPost, "/api/v1/admin/login", loginBody("admin@acme.com", "s3cretpass"))
	assert.Equal(t, http.StatusOK, r.Status, "the owner, elsewhere: %s", r.Body)
	assert.Equal(t, "2", r.Header.Get("X-RateLimit-Remaining"), "8 less the attacker's 5 allowed attempts and this one: the 45 refused cost the email nothing")
	metrics := e.metricsText()
	assert.Contains(t, metrics, `orgservice_rate_limited_total{limit="login_ip"} 45`)
	assert.NotContains(t, metrics, `limit="login_email"`)
}

func TestLoginRateLimitKeepsBody(t *testing.T) {
	e := newEnvWith(t, org.Config{}, httpapi.Options{LoginRatePerMin: 5})
	e.create("Acme", "admin@acme.com", "s3cretpass")
	// The limiter reads the body for the email; the handler must still see all of it.
	assert.NotEmpty(t, e.login("admin@acme.com", "s3cretpass"))
	r := e.do(http.MethodPost, "/api/v1/admin/login", `{"email":"admin@acme.com","password":"s3cretpass","x":1}`, "")
	assert.Equal(t, http.StatusBadRequest, r.Status, "%s", r.Body)
	r = e.do(http.MethodPost, "/api/v1/admin/login", `{"email":"admin@acme.com","password":"`+strings.Repeat("a", httpapi.MaxBodyBytes)+`"}`, "")
	assert.Equal(t, http.StatusRequestEntityTooLarge, r.Status, "%s", r.Body)
}

func TestWriteRateLimit(t *testing.T) {
	e := newEnvWith(t, org.Config{}, httpapi.Options{WriteRatePerMin: 3})
	const ip = "203.0.113.7:4000"
	for i := range 3 {
		r := e.from(ip, http.MethodPost, "/api/v1/org/create", fmt.Sprintf(`{"organization_name":"Org %d","email":"a%d@x.com","password":"s3cretpass"}`, i, i))
		require.Equal(t, http.StatusCreated, r.Status, "%s", r.Body)
	}
	// The 4th write is refused before any work: no organization is created,
	// and a bad token is not even looked at (429, not 401).
	r := e.from(ip, http.MethodPost, "/api/v1/org/create", `{"organization_name":"Org 9","email":"a9@x.com","password":"s3cretpass"}`)
	assertLimited(t, r, 3)
	assert.EqualValues(t, 3, e.orgDocs())
	r = e.from(ip, http.MethodPut, "/api/v1/org/update", `{"organization_name":"New"}`, "Authorization", "Bearer not-a-token")
	assertLimited(t, r, 3)
	r = e.from(ip, http.MethodDelete, "/api/v1/org/delete?organization_name=Org+0", "", "Authorization", "Bearer not-a-token")
	assertLimited(t, r, 3)
	// Reads are not writes.
	r = e.from(ip, http.MethodGet, "/api/v1/org/get?organization_name=Org+0", "")
	assert.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	// Logins have their own limit (off here).
	r = e.from(ip, http.MethodPost, "/api/v1/admin/login", loginBody("a0@x.com", "s3cretpass"))
	assert.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.Contains(t, e.metricsText(), `orgservice_rate_limited_total{limit="write"} 3`)
}

func TestWriteRateLimitIPv6Per64(t *testing.T) {
	e := newEnvWith(t, org.Config{}, httpapi.Options{WriteRatePerMin: 3})
	bad := `{"organization_name":""}` // a 422: cheap, and still a write
	for _, ip := range []string{"[2001:db8:1:2::1]:1", "[2001:db8:1:2::2]:1", "[2001:db8:1:2:ffff::3]:1"} {
		r := e.from(ip, http.MethodPost, "/api/v1/org/create", bad)
		require.Equal(t, http.StatusUnprocessableEntity, r.Status, "%s", r.Body)
	}
	assertLimited(t, e.from("[2001:db8:1:2:abcd::9]:1", http.MethodPost, "/api/v1/org/create", bad), 3)
	r := e.from("[2001:db8:1:3::1]:1", http.MethodPost, "/api/v1/org/create", bad)
	assert.Equal(t, http.StatusUnprocessableEntity, r.Status, "another /64 is another client")
}

func TestRateLimitBehindTrustedProxy(t *testing.T) {
	e := newEnvWith(t, org.Config{}, httpapi.Options{
		WriteRatePerMin: 2,
		TrustedProxies:  []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")},
	})
	const proxy = "10.0.0.2:5000"
	bad := `{"organization_name":""}`
	send := func(xff string) resp {
		return e.from(proxy, http.MethodPost, "/api/v1/org/create", bad, "X-Forwarded-For", xff)
	}
	// Clients are told apart by the proxy's header; what they wrote left of it does not count.
	require.Equal(t, http.StatusUnprocessableEntity, send("198.51.100.1").Status)
	require.Equal(t, http.StatusUnprocessableEntity, send("6.6.6.6, 198.51.100.1").Status)
	assertLimited(t, send("7.7.7.7, 198.51.100.1"), 2)
	assert.Equal(t, http.StatusUnprocessableEntity, send("198.51.100.2").Status)
	// An untrusted peer's header is ignored: it is limited by its own address.
	for range 2 {
		e.from("203.0.113.5:1", http.MethodPost, "/api/v1/org/create", bad, "X-Forwarded-For", "198.51.100.3")
	}
	assert.Equal(t, http.StatusUnprocessableEntity, send("198.51.100.3").Status)
}

func TestRateLimitsOffByDefault(t *testing.T) {
	e := newEnv(t, org.Config{})
	for i := range 12 {
		r := e.do(http.MethodPost, "/api/v1/admin/login", loginBody("nobody@x.com", "wrongpass1"), "")
		require.Equal(t, http.StatusUnauthorized, r.Status, "login %d: %s", i+1, r.Body)
		assert.Empty(t, r.Header.Get("X-RateLimit-Limit"))
	}
}

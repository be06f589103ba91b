package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgservice/orgservice/internal/app/apptest"
	"github.com/orgservice/orgservice/internal/dbtest"
	"github.com/orgservice/orgservice/internal/directory"
	"github.com/orgservice/orgservice/internal/httpapi"
	"github.com/orgservice/orgservice/internal/mongostore"
	"github.com/orgservice/orgservice/internal/org"
)

const (
	refreshURL  = "/api/v1/admin/refresh"
	logoutURL   = "/api/v1/admin/logout"
	sessionsURL = "/api/v1/org/members/me/sessions"
)

// pair is a session's tokens, as login and refresh answer them.
type pair struct{ access, refresh string }

func pairOf(t testing.TB, r resp) pair {
	t.Helper()
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	b := r.JSON(t)
	return pair{access: b["access_token"].(string), refresh: b["refresh_token"].(string)}
}

// loginAs logs in from the client at remote with user agent ua.
func (e *env) loginAs(email, password, remote, ua string) pair {
	e.t.Helper()
	return pairOf(e.t, e.from(remote, http.MethodPost, loginURL, loginBody(email, password), "User-Agent", ua))
}

func (e *env) refresh(token string) resp {
	e.t.Helper()
	return e.do(http.MethodPost, refreshURL, mustJSON(e.t, map[string]string{"refresh_token": token}), "")
}

// sessionOf is the session an access token names (read, not verified).
func (e *env) sessionOf(token string) string {
	e.t.Helper()
	var c jwt.MapClaims
	_, _, err := jwt.NewParser().ParseUnverified(token, &c)
	require.NoError(e.t, err)
	return c["sid"].(string)
}

// sessionList is GET /org/members/me/sessions.
type sessionList struct {
	Items []struct {
		ID         string    `json:"id"`
		CreatedAt  time.Time `json:"created_at"`
		LastUsedAt time.Time `json:"last_used_at"`
		ExpiresAt  time.Time `json:"expires_at"`
		ClientIP   string    `json:"client_ip"`
		UserAgent  string    `json:"user_agent"`
		Current    bool      `json:"current"`
	} `json:"items"`
}

func (e *env) sessions(token string) sessionList {
	e.t.Helper()
	r := e.do(http.MethodGet, sessionsURL, "", token)
	require.Equal(e.t, http.StatusOK, r.Status, "%s", r.Body)
	var l sessionList
	require.NoError(e.t, json.Unmarshal(r.Body, &l))
	return l
}

// Login answers a pair; a refresh answers the next one and uses the
// refresh token up; logout ends the session at once. Every refused refresh
// token gets one and the same answer.
func TestRefreshAndLogout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	e.create("Acme Corp", "admin@acme.com", "s3cretpass")
	first := pairOf(t, e.do(http.MethodPost, loginURL, loginBody("admin@acme.com", "s3cretpass"), ""))

	r := e.refresh(first.refresh)
	next := pairOf(t, r)
	assert.ElementsMatch(t, []string{"access_token", "token_type", "expires_in", "refresh_token"}, keys(r.JSON(t)))
	assert.Equal(t, e.sessionOf(first.access), e.sessionOf(next.access), "the same session")
	assert.NotEqual(t, first.refresh, next.refresh, "rotated")
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, membersURL+"/me", "", next.access).Status)

	// Refused alike: malformed, unknown, and a token used already — which
	// also ends the session, the new pair with it.
	refusal := func(token string) string {
		t.Helper()
		r := e.refresh(token)
		assertUnauthorized(t, r)
		return string(r.Body)
	}
	malformed := refusal("not-a-refresh-token")
	assert.Equal(t, malformed, refusal(strings.Repeat("0", 32)+next.refresh[32:]), "unknown session")
	assert.Equal(t, malformed, refusal(first.refresh), "reused")
	assertUnauthorized(t, e.do(http.MethodGet, membersURL+"/me", "", next.access))
	assert.Equal(t, malformed, refusal(next.refresh), "its session ended by the reuse")

	// Bad requests.
	for _, body := range []string{`{"refresh_token": "x", "remember": true}`, `{"refresh_token": 1}`, ``, `[]`} {
		assertProblem(t, e.do(http.MethodPost, refreshURL, body, ""), http.StatusBadRequest)
	}
	for _, body := range []string{`{}`, `{"refresh_token": ""}`} {
		p := assertProblem(t, e.do(http.MethodPost, refreshURL, body, ""), http.StatusUnprocessableEntity)
		assert.Equal(t, []string{"refresh_token"}, problemFields(t, p))
	}

	// Logout: the session's tokens die at once; another session lives on.
	s := e.loginAs("admin@acme.com", "s3cretpass", "203.0.113.1:1", "a")
	other := e.loginAs("admin@acme.com", "s3cretpass", "203.0.113.2:1", "b")
	assertProblem(t, e.do(http.MethodPost, logoutURL, `{"all": true}`, s.access), http.StatusBadRequest)
	r = e.do(http.MethodPost, logoutURL, "", s.access)
	require.Equal(t, http.StatusNoContent, r.Status, "%s", r.Body)
	assert.Empty(t, r.Body)
	assertUnauthorized(t, e.do(http.MethodGet, membersURL+"/me", "", s.access))
	assertUnauthorized(t, e.do(http.MethodPost, logoutURL, "", s.access))
	assert.Equal(t, malformed, refusal(s.refresh), "a logged-out session's")
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, membersURL+"/me", "", other.access).Status)
	require.Equal(t, http.StatusNoContent, e.do(http.MethodPost, logoutURL, "{}", other.access).Status, "an empty object is no body")
	assertUnauthorized(t, e.do(http.MethodPost, logoutURL, "", ""))
}

// An expired refresh token gets the same answer as any other bad one.
func TestRefreshExpired(t *testing.T) {
	t.Parallel()
	c := apptest.Config()
	c.Auth.TTL, c.Auth.RefreshTTL = time.Second, 2*time.Second
	e := newEnvFrom(t, dbtest.New(t), c)
	e.create("Acme Corp", "admin@acme.com", "s3cretpass")
	p := pairOf(t, e.do(http.MethodPost, loginURL, loginBody("admin@acme.com", "s3cretpass"), ""))
	bad := e.refresh("not-a-refresh-token")
	time.Sleep(2100 * time.Millisecond)
	r := e.refresh(p.refresh)
	assertUnauthorized(t, r)
	assert.Equal(t, string(bad.Body), string(r.Body))
}

// Two refreshes racing with one refresh token through the API: at most one
// gets a pair, and the session ends (a race is a reuse).
func TestRefreshRaceHTTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	e.create("Acme Corp", "admin@acme.com", "s3cretpass")
	for round := range 4 {
		p := pairOf(t, e.do(http.MethodPost, loginURL, loginBody("admin@acme.com", "s3cretpass"), ""))
		var wg sync.WaitGroup
		start := make(chan struct{})
		statuses := make([]int, 2)
		for i := range statuses {
			wg.Go(func() {
				<-start
				statuses[i] = e.refresh(p.refresh).Status
			})
		}
		close(start)
		wg.Wait()
		assert.LessOrEqual(t, count(statuses, http.StatusOK), 1, "round %d: %v", round, statuses)
		assert.Equal(t, 2, count(statuses, http.StatusOK)+count(statuses, http.StatusUnauthorized), "round %d: %v", round, statuses)
		assertUnauthorized(t, e.do(http.MethodGet, membersURL+"/me", "", p.access))
	}
}

// A member lists their sessions — the current one marked — and ends one;
// another member's session, or an unknown one, is not found.
func TestMySessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	tm := e.team("Sessions")
	email := tm.slug + "-member@example.com"
	laptop := e.loginAs(email, "password-1", "203.0.113.10:5000", "Laptop/1.0")
	phone := e.loginAs(email, "password-1", "[2001:db8::7]:5000", "Phone/2.0\x01")

	l := e.sessions(laptop.access)
	require.Len(t, l.Items, 3, "the team's login and these two")
	byID := map[string]int{}
	for i, s := range l.Items {
		byID[s.ID] = i
		assert.Regexp(t, `^[0-9a-f]{32}$`, s.ID)
		assert.False(t, s.LastUsedAt.Before(s.CreatedAt))
		assert.WithinDuration(t, s.LastUsedAt.Add(30*24*time.Hour), s.ExpiresAt, time.Second, "REFRESH_TTL after its last use")
	}
	assert.Equal(t, e.sessionOf(phone.access), l.Items[0].ID, "newest first")
	me := l.Items[byID[e.sessionOf(laptop.access)]]
	assert.True(t, me.Current)
	assert.Equal(t, "203.0.113.10", me.ClientIP)
	assert.Equal(t, "Laptop/1.0", me.UserAgent)
	ph := l.Items[byID[e.sessionOf(phone.access)]]
	assert.False(t, ph.Current)
	assert.Equal(t, "2001:db8::7", ph.ClientIP)
	assert.Equal(t, "Phone/2.0?", ph.UserAgent, "no control characters")
	assertNoSecrets(t, e.do(http.MethodGet, sessionsURL, "", laptop.access).Body, laptop.refresh[33:])

	// After a refresh, last use and address are the refresh's.
	phone = pairOf(t, e.from("198.51.100.3:1", http.MethodPost, refreshURL, mustJSON(t, map[string]string{"refresh_token": phone.refresh})))
	ph2 := e.sessions(phone.access).Items[0]
	assert.Equal(t, ph.ID, ph2.ID)
	assert.True(t, ph2.Current)
	assert.Equal(t, "198.51.100.3", ph2.ClientIP)
	assert.True(t, ph2.LastUsedAt.After(ph.LastUsedAt) || ph2.LastUsedAt.Equal(ph.LastUsedAt))

	// Not found: unknown, malformed, another member's.
	owner := e.sessionOf(tm.tokens[org.RoleOwner])
	for _, id := range []string{strings.Repeat("a", 32), "nope", owner} {
		assertProblem(t, e.do(http.MethodDelete, sessionsURL+"/"+id, "", laptop.access), http.StatusNotFound)
	}
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, membersURL+"/me", "", tm.tokens[org.RoleOwner]).Status, "the owner's session lives")

	// End the phone's from the laptop: the phone is out, the laptop in.
	require.Equal(t, http.StatusNoContent, e.do(http.MethodDelete, sessionsURL+"/"+ph.ID, "", laptop.access).Status)
	assertUnauthorized(t, e.do(http.MethodGet, membersURL+"/me", "", phone.access))
	assertUnauthorized(t, e.refresh(phone.refresh))
	l = e.sessions(laptop.access)
	require.Len(t, l.Items, 2)
	for _, s := range l.Items {
		assert.NotEqual(t, ph.ID, s.ID)
	}
	// Ending one's own session is a logout.
	require.Equal(t, http.StatusNoContent, e.do(http.MethodDelete, sessionsURL+"/"+me.ID, "", laptop.access).Status)
	assertUnauthorized(t, e.do(http.MethodGet, sessionsURL, "", laptop.access))
}

// Changing one's credentials needs the current password: missing is a 422
// naming it, wrong a 403 recorded as a failed login; nothing changes either
// way. Right, it ends every other session of the member; the caller's goes
// on through its refresh token.
func TestCurrentPassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	tm := e.team("Reauth")
	email := tm.slug + "-member@example.com"
	caller := e.loginAs(email, "password-1", "203.0.113.1:1", "here")
	elsewhere := e.loginAs(email, "password-1", "203.0.113.2:1", "there")

	for _, route := range []struct{ method, target, role string }{
		{http.MethodPatch, membersURL + "/me", "member"},
		{http.MethodPut, updateURL, "owner"},
	} {
		token := caller.access
		if route.role == "owner" {
			token = tm.tokens[org.RoleOwner]
		}
		before := e.snapshot()
		for _, body := range []string{`{"password":"password-9"}`, `{"email":"x@example.com"}`, `{"password":"password-9","current_password":""}`} {
			p := assertProblem(t, e.do(route.method, route.target, body, token), http.StatusUnprocessableEntity)
			assert.Equal(t, []string{"current_password"}, problemFields(t, p), "%s %s", route.method, body)
		}
		assert.Equal(t, before, e.snapshot(), "%s: nothing changed", route.method)

		r := e.do(route.method, route.target, `{"password":"password-9","current_password":"password-2"}`, token)
		assertProblem(t, r, http.StatusForbidden)
		assert.Contains(t, string(r.Body), "current_password is wrong")
		added := onlyAuditAdded(t, before, e.snapshot())
		require.Len(t, added, 1, "%s: recorded as a failed login, nothing else", route.method)
		assert.Equal(t, "login.failed", added[0].Action)
		assert.Equal(t, "wrong current password", added[0].Details["reason"])
		require.Equal(t, http.StatusOK, e.do(http.MethodGet, membersURL+"/me", "", token).Status, "the token still works")
	}
	e.login(email, "password-1") // the password did not change

	r := e.do(http.MethodPatch, membersURL+"/me", `{"password":"password-9","current_password":"password-1"}`, caller.access)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	// Every access token of the member is refused, and every other session
	// ended; the caller's session renews its access token.
	assertUnauthorized(t, e.do(http.MethodGet, membersURL+"/me", "", caller.access))
	assertUnauthorized(t, e.do(http.MethodGet, membersURL+"/me", "", elsewhere.access))
	assertUnauthorized(t, e.refresh(elsewhere.refresh))
	renewed := pairOf(t, e.refresh(caller.refresh))
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, membersURL+"/me", "", renewed.access).Status)
	l := e.sessions(renewed.access)
	require.Len(t, l.Items, 1, "only the caller's session is left")
	assert.Equal(t, e.sessionOf(caller.access), l.Items[0].ID)
	assert.True(t, l.Items[0].Current)
	e.login(email, "password-9")
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, membersURL+"/me", "", tm.tokens[org.RoleAdmin]).Status, "nobody else's")

	// A rename alone needs no current password; given, it is checked.
	require.Equal(t, http.StatusOK, e.do(http.MethodPut, updateURL, `{"organization_name":"Reauth Two"}`, tm.tokens[org.RoleOwner]).Status)
	assertProblem(t, e.do(http.MethodPut, updateURL, `{"organization_name":"Reauth Three","current_password":"nope-nope"}`, tm.tokens[org.RoleOwner]), http.StatusForbidden)
	assertProblem(t, e.do(http.MethodGet, byName(getURL, "Reauth Three"), "", ""), http.StatusNotFound)
}

// A wrong current password is counted and limited like a failed login: with
// the logins of its address and of its email.
func TestCurrentPasswordLimited(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, org.Config{}, httpapi.Options{LoginRatePerMin: 3, LoginEmailRatePerMin: 10})
	e.create("Acme", "admin@acme.com", "s3cretpass")
	const ip = "203.0.113.5:1"
	tok := pairOf(t, e.from(ip, http.MethodPost, loginURL, loginBody("admin@acme.com", "s3cretpass"))).access
	for i := range 2 {
		r := e.from(ip, http.MethodPatch, membersURL+"/me", `{"password":"password-9","current_password":"guess"}`, "Authorization", "Bearer "+tok)
		require.Equal(t, http.StatusForbidden, r.Status, "guess %d: %s", i+1, r.Body)
	}
	// The login and two guesses used the address's three attempts.
	r := e.from(ip, http.MethodPatch, membersURL+"/me", `{"password":"password-9","current_password":"s3cretpass"}`, "Authorization", "Bearer "+tok)
	assertLimited(t, r, 3)
	assertLimited(t, e.from(ip, http.MethodPost, loginURL, loginBody("admin@acme.com", "s3cretpass")), 3)
	// Nothing changed, and a request that tries no password is not counted.
	e.login("admin@acme.com", "s3cretpass")
	r = e.from(ip, http.MethodPut, updateURL, `{"organization_name":"Acme"}`, "Authorization", "Bearer "+tok)
	assert.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
}

// A logout on one instance is seen by another within its directory's
// bound; one started afterwards knows it from the start.
func TestLogoutSeenByAnotherInstance(t *testing.T) {
	t.Parallel()
	db := dbtest.New(t)
	cfg := apptest.Config()
	cfg.Directory = directory.Config{Staleness: time.Second, Every: 50 * time.Millisecond}
	a, b := newEnvFrom(t, db, cfg), newEnvFrom(t, db, cfg)
	a.create("Acme Corp", "admin@acme.com", "s3cretpass")
	for what, end := range map[string]func(p pair){
		"logout": func(p pair) {
			require.Equal(t, http.StatusNoContent, a.do(http.MethodPost, logoutURL, "", p.access).Status)
		},
		"session deleted": func(p pair) {
			other := a.login("admin@acme.com", "s3cretpass")
			require.Equal(t, http.StatusNoContent, a.do(http.MethodDelete, sessionsURL+"/"+a.sessionOf(p.access), "", other).Status)
		},
		"refresh token reused": func(p pair) {
			pairOf(t, a.refresh(p.refresh))
			assertUnauthorized(t, a.refresh(p.refresh))
		},
	} {
		p := pairOf(t, a.do(http.MethodPost, loginURL, loginBody("admin@acme.com", "s3cretpass"), ""))
		require.Eventually(t, func() bool {
			return b.do(http.MethodGet, membersURL+"/me", "", p.access).Status == http.StatusOK
		}, 10*time.Second, 20*time.Millisecond, "%s: b knows the session", what)
		end(p)
		assertUnauthorized(t, a.do(http.MethodGet, membersURL+"/me", "", p.access))
		ended := time.Now()
		require.Eventually(t, func() bool {
			return b.do(http.MethodGet, membersURL+"/me", "", p.access).Status == http.StatusUnauthorized
		}, 10*time.Second, 10*time.Millisecond, "%s: b refuses the token", what)
		t.Logf("%s: refused by the other instance %v after the end", what, time.Since(ended).Round(time.Millisecond))
		late := newEnvFrom(t, db, cfg)
		assertUnauthorized(t, late.do(http.MethodGet, membersURL+"/me", "", p.access))
	}
}

// The audit log records the server's request id; a client's X-Request-ID
// only beside it, and only a sane one.
func TestAuditRequestIDs(t *testing.T) {
	t.Parallel()
	e := newEnv(t, org.Config{})
	created := e.create("Acme Corp", "admin@acme.com", "s3cretpass")
	login := func(clientID string) resp {
		req := httptest.NewRequest(http.MethodPost, loginURL, strings.NewReader(loginBody("admin@acme.com", "s3cretpass")))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Request-ID", clientID)
		r := e.send(req)
		require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
		return r
	}
	sane, insane := login("order-42"), login("<script>alert(1)</script>")
	evs := e.events(created["id"].(string))
	byRequest := map[string]event{}
	for _, ev := range evs {
		byRequest[ev.RequestID] = ev
	}
	ev, ok := byRequest[sane.Header.Get("X-Request-ID")]
	require.True(t, ok, "recorded under the server's id")
	assert.Equal(t, "order-42", ev.ClientRequestID, "the client's beside it")
	ev, ok = byRequest[insane.Header.Get("X-Request-ID")]
	require.True(t, ok)
	assert.Empty(t, ev.ClientRequestID, "an insane one is not recorded")
	raw, err := e.db.Collection(mongostore.AuditCollection).CountDocuments(context.Background(),
		bson.D{{Key: "client_request_id", Value: bson.D{{Key: "$regex", Value: "script"}}}})
	require.NoError(t, err)
	assert.Zero(t, raw)
}

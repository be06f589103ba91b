//go:build cluster

package cluster

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/orgservice/orgservice/internal/apiclient"
)

// revocation changes a password, an email, deletes an organization, logs
// out, and presents a used refresh token again, each on an instance A, with
// a token minted on A: the token is refused on A at once, and on the two
// others within the staleness bound; after the bound, logins and refreshes
// everywhere see the change. The five run at once.
func (e *env) revocation(t *testing.T) {
	var wg sync.WaitGroup
	for i, c := range []struct {
		kind string
		o    orgModel
	}{{"password change", e.revokePwd}, {"email change", e.revokeEmail}, {"delete", e.revokeDel},
		{"logout", e.revokeLogout}, {"refresh reuse", e.revokeReuse}} {
		if c.o.id == "" {
			t.Errorf("%s: its organization was not created", c.kind)
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); e.revokeOn(t, c.kind, i%instances, c.o) }()
	}
	wg.Wait()
}

func (e *env) revokeOn(t *testing.T, kind string, a int, o orgModel) {
	var others []int
	for i := range instances {
		if i != a {
			others = append(others, i)
		}
	}
	login := e.c.login(a, o.email, o.password)
	if !assert.Equal(t, http.StatusOK, login.Status, "%s: login on instance %d: %s", kind, a, login) {
		return
	}
	token, refresh := accessToken(login), refreshToken(login)
	for i := range instances { // the precondition: the token works everywhere
		if p := e.c.probe(i, token); !assert.Equal(t, http.StatusBadRequest, p.Status,
			"%s: the fresh token on instance %d (400: accepted, then refused for want of a name): %s", kind, i, p) {
			return
		}
	}

	var change answer
	var renewed answer // refresh reuse: the pair the session's first refresh got, on another instance
	newEmail, newPassword := "moved-"+o.email, "changed-"+o.password
	switch kind {
	case "password change":
		change = e.c.update(a, token, apiclient.OrgUpdate{Password: newPassword, CurrentPassword: o.password})
	case "email change":
		change = e.c.update(a, token, apiclient.OrgUpdate{Email: newEmail, CurrentPassword: o.password})
	case "delete":
		change = e.c.remove(a, token, o.name)
	case "logout":
		change = e.c.logout(a, token)
	case "refresh reuse":
		renewed = e.c.refresh(others[0], refresh)
		if !assert.Equal(t, http.StatusOK, renewed.Status, "%s: the first refresh, on instance %d: %s", kind, others[0], renewed) {
			return
		}
		change = e.c.refresh(a, refresh) // used already: the session ends
		if !assert.Equal(t, http.StatusUnauthorized, change.Status, "%s on instance %d: %s", kind, a, change) {
			return
		}
		change.Status = http.StatusNoContent
	}
	done := time.Now()
	if !assert.Contains(t, []int{http.StatusOK, http.StatusNoContent}, change.Status, "%s on instance %d: %s", kind, a, change) {
		return
	}
	tokens := []string{token}
	if kind == "refresh reuse" {
		tokens = append(tokens, accessToken(renewed)) // the session's, issued after the first
	}
	e.m.update(o.id, func(m *orgModel) {
		switch kind {
		case "password change":
			m.password = newPassword
			m.committed["credentials.changed"]++
		case "email change":
			m.email = newEmail
			m.committed["credentials.changed"]++
		case "delete":
			m.deleted = true
			m.committed["org.deleted"]++
		case "logout", "refresh reuse":
			m.committed["session.ended"]++
		}
	})
	for _, tok := range tokens {
		p := e.c.probe(a, tok)
		assert.Equal(t, http.StatusUnauthorized, p.Status, "%s: instance %d, which made it, must refuse the old token at once: %s", kind, a, p)
	}

	var wg sync.WaitGroup
	for _, b := range others {
		for _, tok := range tokens {
			wg.Add(1)
			go func() {
				defer wg.Done()
				after, ok := e.refusedAfter(t, b, tok, done, bound()+5*time.Second)
				switch {
				case !ok:
					t.Errorf("%s on instance %d: instance %d still accepts the old token %s later", kind, a, b, bound()+5*time.Second)
				case after > bound():
					t.Errorf("%s on instance %d: instance %d refused the old token only after %s (staleness %s + margin %s)",
						kind, a, b, after.Round(time.Millisecond), *staleness, *margin)
				default:
					t.Logf("%s on instance %d: instance %d refused the old token after %s", kind, a, b, after.Round(time.Millisecond))
				}
			}()
		}
	}
	wg.Wait()

	// After the bound the logins everywhere see the change (at most four
	// logins per email, under the limit of five a minute).
	time.Sleep(time.Until(done.Add(bound())))
	b, c := others[0], others[1]
	switch kind {
	case "password change":
		e.wantLogin(t, b, o.email, o.password, http.StatusUnauthorized, "the old password")
		e.wantLogin(t, b, o.email, newPassword, http.StatusOK, "the new password")
		e.wantLogin(t, c, o.email, newPassword, http.StatusOK, "the new password")
	case "email change":
		for _, i := range others {
			e.wantLogin(t, i, o.email, o.password, http.StatusUnauthorized, "the old email")
			e.wantLogin(t, i, newEmail, o.password, http.StatusOK, "the new email")
		}
	case "delete":
		for _, i := range others {
			e.wantLogin(t, i, o.email, o.password, http.StatusUnauthorized, "a deleted organization's admin")
			g := e.c.get(i, o.name)
			assert.Equal(t, http.StatusNotFound, g.Status, "GET of deleted %q on instance %d: %s", o.name, i, g)
		}
	case "logout", "refresh reuse":
		refreshes := []string{refresh}
		if kind == "refresh reuse" {
			refreshes = append(refreshes, refreshToken(renewed))
		}
		for i := range instances {
			for _, r := range refreshes {
				got := e.c.refresh(i, r)
				assert.Equal(t, http.StatusUnauthorized, got.Status, "%s: a refresh token of the ended session on instance %d: %s", kind, i, got)
			}
		}
		e.wantLogin(t, b, o.email, o.password, http.StatusOK, "the same credentials, in a new session")
	}
}

// refusedAfter polls instance inst with token until it answers 401, at most
// for limit after since. It returns how long after since the first 401
// came, and checks that the next few answers stay 401.
func (e *env) refusedAfter(t *testing.T, inst int, token string, since time.Time, limit time.Duration) (time.Duration, bool) {
	for time.Since(since) < limit {
		p := e.c.probe(inst, token)
		if p.Status == http.StatusUnauthorized {
			after := time.Since(since)
			for range 3 {
				time.Sleep(50 * time.Millisecond)
				if p := e.c.probe(inst, token); p.Status != http.StatusUnauthorized {
					t.Errorf("instance %d refused a revoked token, then answered %s", inst, p)
				}
			}
			return after, true
		}
		if p.Status != http.StatusBadRequest {
			t.Errorf("probe of a token on instance %d: %s (want 400 while accepted, 401 once refused)", inst, p)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0, false
}

func (e *env) wantLogin(t *testing.T, inst int, email, password string, want int, what string) {
	a := e.c.login(inst, email, password)
	assert.Equal(t, want, a.Status, "login with %s (%s) on instance %d: %s", what, email, inst, a)
}

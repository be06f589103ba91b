//go:build cluster

package cluster

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// burst is how many concurrent logins each limit gets, spread evenly over
// the instances.
const burst = 30

// limitResult is what the login bursts were answered.
type limitResult struct {
	email   []answer // one email, each login from its own address
	ip      []answer // one address, each login with its own unknown email
	lockout []answer // one email from one address, every password wrong
	owner   answer   // that email's owner, from another address, right after
	at      time.Time
}

// limitBurst sends, all at once and spread over the instances, burst
// logins for the limit organization's email (each from another client
// address, so that only the per-email limit applies) and burst logins from
// one client address (each for another unknown email, so that only the
// per-IP limit applies), and burst wrong passwords for the lockout
// organization's email from one address, after which its owner logs in
// from another. It runs within one minute of the clock: the limiter's
// windows are minutes, and a burst across a boundary would rightly let
// more through.
func (e *env) limitBurst() limitResult {
	now := time.Now()
	if left := now.Truncate(time.Minute).Add(time.Minute).Sub(now); left < 10*time.Second {
		time.Sleep(left + 200*time.Millisecond)
	}
	ip := e.c.nextIP()
	var fns []func() answer
	for i := range burst {
		fns = append(fns, func() answer { return e.c.login(i%instances, e.limitOrg.email, password) })
	}
	for i := range burst {
		fns = append(fns, func() answer {
			return e.c.loginFrom(i%instances, fmt.Sprintf("nobody%02d@cluster.test", i), password, ip)
		})
	}
	attacker := e.c.nextIP()
	for i := range burst {
		fns = append(fns, func() answer {
			return e.c.loginFrom(i%instances, e.lockoutOrg.email, fmt.Sprintf("guess-%02d", i), attacker)
		})
	}
	at := time.Now()
	as := race(fns...)
	owner := e.c.login(e.inst(), e.lockoutOrg.email, e.lockoutOrg.password)
	return limitResult{email: as[:burst], ip: as[burst : 2*burst], lockout: as[2*burst:], owner: owner, at: at}
}

// checkLimits: of each burst exactly its limit reached the login (a 200
// for the right password, a 401 for a wrong one or an unknown email) and
// the rest were 429, whichever instance each went to: the instances share
// one count. The owner of the email tried from one address logged in from
// another: no lockout.
func (e *env) checkLimits(t *testing.T, r limitResult) {
	t.Logf("bursts sent at %s", r.at.Format("15:04:05.000"))
	for _, c := range []struct {
		what   string
		as     []answer
		passed int // the status of a login that got through
		limit  int
	}{
		{"one email from " + fmt.Sprint(burst) + " addresses (per-email limit)", r.email, http.StatusOK, emailLimit},
		{"one address for " + fmt.Sprint(burst) + " emails (per-IP limit)", r.ip, http.StatusUnauthorized, loginLimit},
		{"one address for one email (per-IP limit first)", r.lockout, http.StatusUnauthorized, loginLimit},
	} {
		through := count(c.as, c.passed)
		limited := count(c.as, http.StatusTooManyRequests)
		assert.Equal(t, len(c.as), through+limited, "%s: every answer is %d or 429: %v", c.what, c.passed, c.as)
		assert.Equal(t, c.limit, through,
			"%s: %d logins got through %d instances, want exactly %d (the instances must share one count: RATE_LIMIT_STORE=database)",
			c.what, through, instances, c.limit)
		for _, a := range c.as {
			if a.Status == http.StatusTooManyRequests && a.Header.Get("Retry-After") == "" {
				t.Errorf("%s: a 429 without Retry-After: %s", c.what, a)
				break
			}
		}
	}
	assert.Equal(t, http.StatusOK, r.owner.Status, "the owner of the email guessed at from one address, from another, right after: %s", r.owner)
}

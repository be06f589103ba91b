package httpapi

import (
	"net/http"
	"time"

	"github.com/go-chi/httprate"
)

// The rate limits, as named in metrics.
const (
	limitLoginIP      = "login_ip"
	limitLoginEmailIP = "login_email_ip"
	limitLoginEmail   = "login_email"
	limitWrite        = "write"
	limitData         = "data"
)

// rateLimits are the limiter middlewares. They run before authentication
// and handlers, so a limited request costs no bcrypt and no database work.
type rateLimits struct {
	// Password attempts (logins, and current_password checks, see
	// attempts.go): per client address whatever the email; per email and
	// address together; and per email whatever the address, at a rate one
	// address cannot use up, so that failures from one address never lock
	// the account's owner out elsewhere (OWASP Authentication Cheat Sheet,
	// "Account Lockout": a lockout must not become a denial of service).
	loginIP      func(http.Handler) http.Handler
	loginEmailIP func(http.Handler) http.Handler
	loginEmail   func(http.Handler) http.Handler
	write        func(http.Handler) http.Handler // creates, updates and deletes per client IP
	data         func(http.Handler) http.Handler // document requests per organization, after authentication

	failOpenLog *throttle // warnings of requests let through while the RateStore fails
}

func (s *Server) newRateLimits() rateLimits {
	return rateLimits{
		loginIP:      s.limiter(limitLoginIP, s.opts.LoginRatePerMin, s.attemptIP),
		loginEmailIP: s.limiter(limitLoginEmailIP, s.opts.LoginRatePerMin, s.attemptEmailIP),
		loginEmail:   s.limiter(limitLoginEmail, s.opts.LoginEmailRatePerMin, attemptEmail),
		write:        s.limiter(limitWrite, s.opts.WriteRatePerMin, s.ips.key),
		failOpenLog:  &throttle{every: failOpenLogEvery},
		data:         s.limiter(limitData, s.opts.DataRatePerMin, principalOrg),
	}
}

// limiter allows perMin requests a minute per key; perMin 0 disables it. A
// request whose key is "" is not limited by it. With Deps.RateStore the
// count is the store's, shared by every instance (fixed windows, see
// storeLimiter); without, it is this process's own (httprate's sliding
// window).
func (s *Server) limiter(name string, perMin int, key func(*http.Request) string) func(http.Handler) http.Handler {
	if perMin <= 0 {
		return func(next http.Handler) http.Handler { return next }
	}
	if s.rates != nil {
		return s.storeLimiter(name, perMin, key)
	}
	rl := httprate.NewRateLimiter(perMin, time.Minute,
		httprate.WithLimitHandler(func(w http.ResponseWriter, r *http.Request) { s.rateLimited(w, r, name) }),
		httprate.WithErrorHandler(func(w http.ResponseWriter, r *http.Request, err error) { s.fail(w, r, err) }),
	)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if k := key(r); k != "" && rl.RespondOnLimit(w, r, name+":"+k) {
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// principalOrg keys a limit by the authenticated organization.
func principalOrg(r *http.Request) string {
	p, _ := principal(r.Context())
	return p.OrgID
}

// rateLimited answers a limited request; its limiter has already set
// Retry-After and the X-RateLimit-* headers.
func (s *Server) rateLimited(w http.ResponseWriter, r *http.Request, name string) {
	s.metrics.RateLimited(name)
	s.fail(w, r, &requestError{http.StatusTooManyRequests, "rate-limited", "Too many requests",
		"too many requests; retry after " + w.Header().Get("Retry-After") + " seconds"})
}

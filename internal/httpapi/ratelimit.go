package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"time"

	"github.com/go-chi/httprate"

	"github.com/orgservice/orgservice/internal/org"
)

// The rate limits, as named in metrics.
const (
	limitLoginIP    = "login_ip"
	limitLoginEmail = "login_email"
	limitWrite      = "write"
	limitData       = "data"
)

// rateLimits are the limiter middlewares. They run before authentication
// and handlers, so a limited request costs no bcrypt and no database work.
type rateLimits struct {
	loginIP    func(http.Handler) http.Handler // logins per client IP
	loginEmail func(http.Handler) http.Handler // logins per email, whatever the IP
	write      func(http.Handler) http.Handler // creates, updates and deletes per client IP
	data       func(http.Handler) http.Handler // document requests per organization, after authentication

	failOpenLog *throttle // warnings of requests let through while the RateStore fails
}

func (s *Server) newRateLimits() rateLimits {
	return rateLimits{
		loginIP:     s.limiter(limitLoginIP, s.opts.LoginRatePerMin, s.ips.key),
		loginEmail:  s.limiter(limitLoginEmail, s.opts.LoginRatePerMin, loginEmail),
		write:       s.limiter(limitWrite, s.opts.WriteRatePerMin, s.ips.key),
		failOpenLog: &throttle{every: failOpenLogEvery},
		data:        s.limiter(limitData, s.opts.DataRatePerMin, principalOrg),
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

// loginEmail returns the normalized email of a login body, or "" when the
// body holds none. It reads at most MaxBodyBytes+1 bytes and puts them back
// in front of the rest of the body, so the handler decodes (and caps) the
// body exactly as if it had not been read.
func loginEmail(r *http.Request) string {
	if r.Body == nil || r.Body == http.NoBody {
		return ""
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	r.Body = replayBody{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
	if err != nil {
		return ""
	}
	var v struct {
		Email string `json:"email"`
	}
	if json.Unmarshal(buf, &v) != nil {
		return ""
	}
	return org.NormalizeEmail(v.Email)
}

// replayBody reads buffered bytes then the rest, and closes the original.
type replayBody struct {
	io.Reader
	io.Closer
}

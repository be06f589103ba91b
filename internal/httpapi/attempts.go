package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"

	"github.com/orgservice/orgservice/internal/org"
)

// attempt is a password attempt a request makes on the account of email:
// a login, or a change of credentials that carries current_password. The
// password limits count attempts, whether they fail or not.
type attempt struct{ email string }

type attemptKey struct{}

func withAttempt(r *http.Request, a attempt) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), attemptKey{}, a))
}

func attemptOf(r *http.Request) (attempt, bool) {
	a, ok := r.Context().Value(attemptKey{}).(attempt)
	return a, ok
}

// loginAttempt marks a login as an attempt on the email its body names
// ("" when it names none: then only the per-address limit counts it).
func loginAttempt(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v struct {
			Email string `json:"email"`
		}
		peekJSON(r, &v)
		next.ServeHTTP(w, withAttempt(r, attempt{email: org.NormalizeEmail(v.Email)}))
	})
}

// reauthAttempt marks an authenticated request whose body carries
// current_password as an attempt on the principal's account, so that it
// is counted and limited with the logins: a stolen token must not try
// passwords faster than a login could. It runs after authenticate.
func reauthAttempt(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v struct {
			Current *string `json:"current_password"`
		}
		if p, ok := principal(r.Context()); ok && peekJSON(r, &v) && v.Current != nil {
			r = withAttempt(r, attempt{email: p.Email})
		}
		next.ServeHTTP(w, r)
	})
}

// passwordLimits runs the three password-attempt limits, per address first:
// an attempt it refuses never reaches, and never counts against, the
// email's limits, so that one address cannot use up an account's budget
// and lock its owner out elsewhere.
func (s *Server) passwordLimits(next http.Handler) http.Handler {
	return s.limits.loginIP(s.limits.loginEmailIP(s.limits.loginEmail(next)))
}

// attemptIP keys an attempt by its client address; a request that makes
// none is not limited.
func (s *Server) attemptIP(r *http.Request) string {
	if _, ok := attemptOf(r); !ok {
		return ""
	}
	return s.ips.key(r)
}

// attemptEmailIP keys an attempt by its email and client address together.
func (s *Server) attemptEmailIP(r *http.Request) string {
	a, ok := attemptOf(r)
	if !ok || a.email == "" {
		return ""
	}
	return a.email + "|" + s.ips.key(r)
}

// attemptEmail keys an attempt by its email, whatever the address.
func attemptEmail(r *http.Request) string {
	a, _ := attemptOf(r)
	return a.email
}

// peekJSON decodes r's body into v, if it can, and reports whether it
// could. It reads at most MaxBodyBytes+1 bytes and puts them back in front
// of the rest of the body, so that the handler decodes (and caps) the body
// exactly as if it had not been read.
func peekJSON(r *http.Request, v any) bool {
	if r.Body == nil || r.Body == http.NoBody {
		return false
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	r.Body = replayBody{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
	return err == nil && json.Unmarshal(buf, v) == nil
}

// replayBody reads buffered bytes then the rest, and closes the original.
type replayBody struct {
	io.Reader
	io.Closer
}

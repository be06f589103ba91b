package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"github.com/orgservice/orgservice/internal/org"
)

// requestID gives every request an id of the server's own, echoed in the
// X-Request-ID response header. A client's X-Request-ID is kept beside it
// when it is sane (1–64 characters of [A-Za-z0-9._-]), never instead of
// it: a client could name another request's id. Both, the client's address
// and its user agent go into the request's org.Origin, which the audit
// events and the sessions it causes record.
func (s *Server) requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		o := org.Origin{RequestID: hex.EncodeToString(b), ClientIP: s.ips.address(r), UserAgent: userAgent(r)}
		if id := r.Header.Get("X-Request-ID"); saneRequestID(id) {
			o.ClientRequestID = id
		}
		w.Header().Set("X-Request-ID", o.RequestID)
		next.ServeHTTP(w, r.WithContext(org.WithOrigin(r.Context(), o)))
	})
}

// maxUserAgent is the most of a User-Agent header a session records.
const maxUserAgent = 256

// userAgent returns r's User-Agent, cut to maxUserAgent bytes, with
// anything but printable ASCII replaced: it is shown to the member in
// their sessions and must not carry control characters into a terminal.
func userAgent(r *http.Request) string {
	ua := r.Header.Get("User-Agent")
	if len(ua) > maxUserAgent {
		ua = ua[:maxUserAgent]
	}
	return strings.Map(func(c rune) rune {
		if c < 0x20 || c > 0x7e {
			return '?'
		}
		return c
	}, ua)
}

func saneRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return false
		}
	}
	return true
}

// observe writes one access log line per request and records it in the
// metrics: one wrapped writer, one clock and one route lookup serve both.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		li := &logInfo{}
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		next.ServeHTTP(ww, r.WithContext(context.WithValue(r.Context(), logInfoKey, li)))
		took := time.Since(start)
		route, status := routePattern(r), ww.Status()
		if status == 0 { // nothing written: net/http answers 200
			status = http.StatusOK
		}
		s.metrics.ObserveRequest(route, methodLabel(r.Method), status, took)
		origin := org.OriginOf(r.Context()) // set by requestID, before this
		attrs := []slog.Attr{
			slog.String("request_id", origin.RequestID),
			slog.String("method", r.Method),
			slog.String("route", route),
			slog.String("client_ip", origin.ClientIP),
			slog.Int("status", status),
			slog.Int("bytes", ww.BytesWritten()),
			slog.Duration("duration", took),
		}
		if origin.ClientRequestID != "" {
			attrs = append(attrs, slog.String("client_request_id", origin.ClientRequestID))
		}
		if li.orgID != "" {
			attrs = append(attrs, slog.String("org_id", li.orgID))
		}
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
	})
}

// routePattern returns the matched route pattern, or "unmatched", so that
// logs and metrics never take raw paths as labels.
func routePattern(r *http.Request) string {
	if rc := chi.RouteContext(r.Context()); rc != nil {
		if p := rc.RoutePattern(); p != "" {
			return p
		}
	}
	return "unmatched"
}

// recoverer turns a panic into a logged 500 problem.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.fail(w, r, fmt.Errorf("panic: %v", v))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// securityHeaders sets the headers every response carries.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// noStore keeps API answers out of caches.
func noStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// authenticate requires a valid bearer token and puts its principal in the context.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.bearer(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		info(r.Context()).orgID = p.OrgID
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey, p)))
	})
}

// bearer returns the principal of r's bearer token. Errors: a 401
// requestError when there is none, and Authenticate's.
func (s *Server) bearer(r *http.Request) (org.Principal, error) {
	scheme, raw, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(raw) == "" {
		return org.Principal{}, &requestError{http.StatusUnauthorized, "unauthorized", "Unauthorized",
			"a bearer token is required: Authorization: Bearer <token>"}
	}
	return s.auth.Authenticate(r.Context(), strings.TrimSpace(raw))
}

// allow lets through only principals whose role may do a: the one place
// where routes meet the role policy (org.Authorize). A refused request is a
// 403 problem and changes nothing. It runs after authenticate, whose
// principal carries the member's role as the directory has it now.
func (s *Server) allow(a org.Action) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, _ := principal(r.Context())
			if err := org.Authorize(p.Role, a); err != nil {
				s.fail(w, r, err)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

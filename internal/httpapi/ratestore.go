package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/orgservice/orgservice/internal/errs"
)

// RateStore counts rate-limited requests where every instance that shares
// it sees the same counts (mongostore.RateLimits keeps them in the database).
type RateStore interface {
	// Take takes one of limit tokens of key under the limit name in the
	// window [start, end): allowed reports whether it got one, remaining how
	// many the window has left. Any error means the store could not answer.
	Take(ctx context.Context, name, key string, limit int, start, end time.Time) (allowed bool, remaining int, err error)
}

// rateWindow is the length of a RateStore window.
const rateWindow = time.Minute

// failOpenLogEvery spaces the warnings of requests let through unlimited.
const failOpenLogEvery = 10 * time.Second

// storeLimiter is limiter over Deps.RateStore: fixed one-minute windows,
// counted together by every instance sharing the store. Each check is bounded
// by Options.RateTimeout; when the store fails the request gets a 503 or,
// with Options.RateFailOpen, passes unlimited.
func (s *Server) storeLimiter(name string, perMin int, key func(*http.Request) string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			k := key(r)
			if k == "" {
				next.ServeHTTP(w, r)
				return
			}
			now := s.now()
			start := now.Truncate(rateWindow)
			end := start.Add(rateWindow)
			ctx, cancel := context.WithTimeout(r.Context(), s.opts.RateTimeout)
			allowed, remaining, err := s.rates.Take(ctx, name, k, perMin, start, end)
			cancel()
			if err != nil {
				if s.rateStoreFailed(w, r, name, err) {
					return
				}
				next.ServeHTTP(w, r)
				return
			}
			h := w.Header()
			h.Set("X-RateLimit-Limit", strconv.Itoa(perMin))
			h.Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
			h.Set("X-RateLimit-Reset", strconv.FormatInt(end.Unix(), 10))
			if !allowed {
				// The window frees at its end: wait until then, at least a second.
				wait := int64((end.Sub(now) + time.Second - 1) / time.Second)
				h.Set("Retry-After", strconv.FormatInt(max(wait, 1), 10))
				s.rateLimited(w, r, name)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// rateStoreFailed handles a RateStore error and reports whether it answered
// the request. Closed (the default) answers 503 unavailable; open lets the
// request pass and warns, at most once every failOpenLogEvery.
func (s *Server) rateStoreFailed(w http.ResponseWriter, r *http.Request, name string, err error) bool {
	if r.Context().Err() != nil {
		s.fail(w, r, r.Context().Err()) // the client left; nobody reads an answer
		return true
	}
	if !s.opts.RateFailOpen {
		s.fail(w, r, errs.Wrap(errs.Unavailable, err, "rate limits cannot be checked right now; retry shortly"))
		return true
	}
	if s.limits.failOpenLog.allow(time.Now()) {
		s.log.WarnContext(r.Context(), "rate limit store unavailable; letting requests through unlimited",
			slog.String("limit", name), slog.String("request_id", RequestID(r.Context())), slog.Any("error", err))
	}
	return false
}

// throttle lets an event through at most once per every.
type throttle struct {
	every time.Duration
	last  atomic.Int64 // Unix nanoseconds of the last event let through
}

func (t *throttle) allow(now time.Time) bool {
	last := t.last.Load()
	if last != 0 && now.UnixNano()-last < int64(t.every) {
		return false
	}
	return t.last.CompareAndSwap(last, now.UnixNano())
}

package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/orgservice/orgservice/internal/errs"
)

// ProblemBase prefixes every problem type URI.
const ProblemBase = "https://orgservice.dev/problems/"

// statusClientClosed is the status logged for a request whose client left
// before its answer (nginx's 499); nobody receives it.
const statusClientClosed = 499

// problem is an RFC 9457 problem details object.
type problem struct {
	Type     string            `json:"type"`
	Title    string            `json:"title"`
	Status   int               `json:"status"`
	Detail   string            `json:"detail"`
	Instance string            `json:"instance,omitempty"`
	Errors   []errs.FieldError `json:"errors,omitempty"`
	// Quota, Limit and Used name the quota a quota-exceeded write would pass.
	Quota string `json:"quota,omitempty"`
	Limit *int64 `json:"limit,omitempty"`
	Used  *int64 `json:"used,omitempty"`
}

// problemKind is how one kind of error is answered.
type problemKind struct {
	status int
	slug   string
	title  string
}

// kinds maps every domain error kind to its answer: the one place where
// error kinds become statuses.
var kinds = map[errs.Kind]problemKind{
	errs.Invalid:      {http.StatusUnprocessableEntity, "validation", "Validation failed"},
	errs.Conflict:     {http.StatusConflict, "conflict", "Conflict"},
	errs.NotFound:     {http.StatusNotFound, "not-found", "Not found"},
	errs.Unauthorized: {http.StatusUnauthorized, "unauthorized", "Unauthorized"},
	errs.Forbidden:    {http.StatusForbidden, "forbidden", "Forbidden"},
	errs.Busy:         {http.StatusConflict, "operation-in-progress", "Operation in progress"},
	errs.Unavailable:  {http.StatusServiceUnavailable, "unavailable", "Service unavailable"},
	errs.Internal:     {http.StatusInternalServerError, "internal", "Internal server error"},
	errs.Precondition: {http.StatusPreconditionFailed, "precondition-failed", "Precondition failed"},
	errs.TooLarge:     {http.StatusRequestEntityTooLarge, "payload-too-large", "Payload too large"},
	// Quotas and suspension are the operator's decisions, not the input's
	// fault: no retry or correction of the request gets it through.
	errs.QuotaExceeded: {http.StatusForbidden, "quota-exceeded", "Quota exceeded"},
	errs.Suspended:     {http.StatusForbidden, "organization-suspended", "Organization suspended"},
}

// requestError is a problem with the HTTP request itself (its body, its
// parameters, its route), found before the domain is asked.
type requestError struct {
	status int
	slug   string
	title  string
	detail string
}

func (e *requestError) Error() string { return e.detail }

func badRequest(detail string) error {
	return &requestError{http.StatusBadRequest, "bad-request", "Bad request", detail}
}

// fail answers err as problem+json. Domain errors carry a client-safe
// message; anything else is logged here, once, and answered as a bare 500.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away and reads no answer; any operation it started
		// goes on detached. Logged and counted as 499, as proxies do.
		w.WriteHeader(statusClientClosed)
		return
	}
	p := problem{Instance: r.URL.Path}
	var re *requestError
	var de *errs.Error
	switch {
	case errors.As(err, &re):
		p.Type, p.Title, p.Status, p.Detail = ProblemBase+re.slug, re.title, re.status, re.detail
	case errors.As(err, &de) && de.Kind != errs.Internal:
		k := kinds[de.Kind]
		p.Type, p.Title, p.Status, p.Detail, p.Errors = ProblemBase+k.slug, k.title, k.status, de.Message, de.Fields
		if q := de.Quota; q != nil {
			p.Quota, p.Limit, p.Used = q.Name, &q.Limit, &q.Used
		}
		if de.Kind == errs.Unavailable || de.Kind == errs.Busy {
			w.Header().Set("Retry-After", "2")
		}
		if de.Kind == errs.Unavailable {
			s.log.WarnContext(r.Context(), "database unavailable", slog.String("request_id", RequestID(r.Context())), slog.Any("error", err))
		}
	default:
		k := kinds[errs.Internal]
		p.Type, p.Title, p.Status, p.Detail = ProblemBase+k.slug, k.title, k.status, "an internal error occurred; it has been logged"
		s.log.ErrorContext(r.Context(), "internal error", slog.String("request_id", RequestID(r.Context())),
			slog.String("path", r.URL.Path), slog.Any("error", err))
	}
	if p.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="orgservice"`)
	}
	writeProblem(w, p)
}

func writeProblem(w http.ResponseWriter, p problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

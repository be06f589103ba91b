package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/orgservice/orgservice/internal/org"
)

// ProblemBase prefixes every problem type URI.
const ProblemBase = "https://orgservice.dev/problems/"

// statusClientClosed is the status logged for a request whose client left
// before its answer (nginx's 499); nobody receives it.
const statusClientClosed = 499

// problem is an RFC 9457 problem details object.
type problem struct {
	Type     string           `json:"type"`
	Title    string           `json:"title"`
	Status   int              `json:"status"`
	Detail   string           `json:"detail"`
	Instance string           `json:"instance,omitempty"`
	Errors   []org.FieldError `json:"errors,omitempty"`
}

// problemKind is how one kind of error is answered.
type problemKind struct {
	status int
	slug   string
	title  string
}

// kinds maps every domain error kind to its answer: the one place where
// error kinds become statuses.
var kinds = map[org.Kind]problemKind{
	org.KindInvalid:      {http.StatusUnprocessableEntity, "validation", "Validation failed"},
	org.KindConflict:     {http.StatusConflict, "conflict", "Conflict"},
	org.KindNotFound:     {http.StatusNotFound, "not-found", "Not found"},
	org.KindUnauthorized: {http.StatusUnauthorized, "unauthorized", "Unauthorized"},
	org.KindForbidden:    {http.StatusForbidden, "forbidden", "Forbidden"},
	org.KindBusy:         {http.StatusConflict, "operation-in-progress", "Operation in progress"},
	org.KindUnavailable:  {http.StatusServiceUnavailable, "unavailable", "Service unavailable"},
	org.KindInternal:     {http.StatusInternalServerError, "internal", "Internal server error"},
	org.KindPrecondition: {http.StatusPreconditionFailed, "precondition-failed", "Precondition failed"},
	org.KindTooLarge:     {http.StatusRequestEntityTooLarge, "payload-too-large", "Payload too large"},
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
	var de *org.Error
	switch {
	case errors.As(err, &re):
		p.Type, p.Title, p.Status, p.Detail = ProblemBase+re.slug, re.title, re.status, re.detail
	case errors.As(err, &de) && de.Kind != org.KindInternal:
		k := kinds[de.Kind]
		p.Type, p.Title, p.Status, p.Detail, p.Errors = ProblemBase+k.slug, k.title, k.status, de.Message, de.Fields
		if de.Kind == org.KindUnavailable || de.Kind == org.KindBusy {
			w.Header().Set("Retry-After", "2")
		}
		if de.Kind == org.KindUnavailable {
			s.log.WarnContext(r.Context(), "database unavailable", slog.String("request_id", RequestID(r.Context())), slog.Any("error", err))
		}
	default:
		k := kinds[org.KindInternal]
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

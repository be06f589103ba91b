package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/orgservice/orgservice/internal/org"
)

const auditPath = "/api/v1/org/audit"

// eventResponse is the Event resource.
type eventResponse struct {
	ID        string            `json:"id"`
	Time      time.Time         `json:"time"`
	Actor     actorResponse     `json:"actor"`
	Action    org.EventAction   `json:"action"`
	Target    targetResponse    `json:"target"`
	Details   map[string]string `json:"details"`
	RequestID string            `json:"request_id"`
	// ClientRequestID is the client's X-Request-ID, when it sent one: an
	// addition to the event's shape, absent otherwise.
	ClientRequestID string `json:"client_request_id,omitempty"`
}

type actorResponse struct {
	Type     string `json:"type,omitempty"` // "operator"; absent for a member
	MemberID string `json:"member_id"`
	Email    string `json:"email"`
}

type targetResponse struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Name string `json:"name"`
}

type auditResponse struct {
	Items []eventResponse `json:"items"`
	Next  *string         `json:"next"`
}

func toEvent(e *org.Event) eventResponse {
	d := e.Details
	if d == nil {
		d = map[string]string{}
	}
	return eventResponse{
		ID: e.ID, Time: e.Time, Action: e.Action, Details: d, RequestID: e.RequestID, ClientRequestID: e.ClientRequestID,
		Actor:  actorResponse{Type: e.Actor.Type, MemberID: e.Actor.MemberID, Email: e.Actor.Email},
		Target: targetResponse{Type: e.Target.Type, ID: e.Target.ID, Name: e.Target.Name},
	}
}

// auditQuery reads limit and after; anything else, a repeated parameter or
// a value out of its rules is a 400.
func auditQuery(r *http.Request) (org.AuditQuery, error) {
	var q org.AuditQuery
	for key, vals := range r.URL.Query() {
		if len(vals) != 1 {
			return q, badRequest("the query parameter " + key + " is given more than once")
		}
		switch v := vals[0]; key {
		case "limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > org.MaxAuditLimit {
				return q, badRequest(fmt.Sprintf("limit must be an integer from 1 to %d", org.MaxAuditLimit))
			}
			q.Limit = n
		case "after":
			if !org.ValidEventID(v) {
				return q, badRequest("after must be the next of a previous page")
			}
			q.After = v
		default:
			return q, badRequest("unknown query parameter " + strconv.Quote(key) + "; use limit and after")
		}
	}
	return q, nil
}

func (s *Server) readAudit(w http.ResponseWriter, r *http.Request) {
	q, err := auditQuery(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, _ := principal(r.Context())
	page, err := s.orgs.Audit(r.Context(), p, q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := auditResponse{Items: make([]eventResponse, len(page.Items))}
	for i := range page.Items {
		out.Items[i] = toEvent(&page.Items[i])
	}
	if page.Next != "" {
		out.Next = &page.Next
		next := r.URL.Query()
		next.Set("after", page.Next)
		w.Header().Set("Link", "<"+auditPath+"?"+next.Encode()+`>; rel="next"`)
	}
	respond(w, http.StatusOK, out)
}

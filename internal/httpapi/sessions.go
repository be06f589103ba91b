package httpapi

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/orgservice/orgservice/internal/errs"
)

type refreshRequest struct {
	RefreshToken *string `json:"refresh_token"`
}

// refresh renews a session: the refresh token given for a new pair.
func (s *Server) refresh(w http.ResponseWriter, r *http.Request) {
	req, err := decode[refreshRequest](w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if req.RefreshToken == nil || *req.RefreshToken == "" {
		s.fail(w, r, missingField("refresh_token"))
		return
	}
	t, err := s.auth.Refresh(r.Context(), *req.RefreshToken)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	respond(w, http.StatusOK, toTokens(t))
}

// logout ends the caller's session. It takes no body; an empty object is
// allowed, anything in it is a 400.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength != 0 {
		if _, err := decode[struct{}](w, r); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	p, _ := principal(r.Context())
	if err := s.auth.Logout(r.Context(), p); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// sessionResponse is the Session resource. It never carries a token.
type sessionResponse struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	ClientIP   string    `json:"client_ip"`
	UserAgent  string    `json:"user_agent"`
	Current    bool      `json:"current"`
}

type sessionsResponse struct {
	Items []sessionResponse `json:"items"`
}

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request) {
	p, _ := principal(r.Context())
	ss, err := s.auth.Sessions(r.Context(), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := sessionsResponse{Items: make([]sessionResponse, len(ss))}
	for i, x := range ss {
		out.Items[i] = sessionResponse{
			ID: x.ID, CreatedAt: x.CreatedAt, LastUsedAt: x.LastUsedAt, ExpiresAt: x.ExpiresAt,
			ClientIP: x.ClientIP, UserAgent: x.UserAgent, Current: x.ID == p.SessionID,
		}
	}
	respond(w, http.StatusOK, out)
}

func (s *Server) endSession(w http.ResponseWriter, r *http.Request) {
	p, _ := principal(r.Context())
	if err := s.auth.EndSession(r.Context(), p, chi.URLParam(r, "id")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// missingField is the 422 of a required field that is absent or empty.
func missingField(name string) error {
	return errs.Fields("the request has invalid fields", errs.FieldError{Field: name, Message: "is required"})
}

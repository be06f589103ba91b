package httpapi

import (
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/orgservice/orgservice/internal/org"
)

// memberResponse is the Member resource. It never carries a password hash.
type memberResponse struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Role      org.Role  `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func toMember(m *org.Member) memberResponse {
	return memberResponse{ID: m.ID, Email: m.Email, Role: m.Role, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt}
}

type membersResponse struct {
	Items []memberResponse `json:"items"`
}

func (s *Server) listMembers(w http.ResponseWriter, r *http.Request) {
	p, _ := principal(r.Context())
	ms, err := s.orgs.Members(r.Context(), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := membersResponse{Items: make([]memberResponse, len(ms))}
	for i := range ms {
		out.Items[i] = toMember(&ms[i])
	}
	respond(w, http.StatusOK, out)
}

type addMemberRequest struct {
	Email    string   `json:"email"`
	Password string   `json:"password"`
	Role     org.Role `json:"role"`
}

func (s *Server) addMember(w http.ResponseWriter, r *http.Request) {
	req, err := decode[addMemberRequest](w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, _ := principal(r.Context())
	m, err := s.orgs.AddMember(r.Context(), p, org.AddMemberInput{Email: req.Email, Password: req.Password, Role: req.Role})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/org/members/"+m.ID)
	respond(w, http.StatusCreated, toMember(m))
}

type setRoleRequest struct {
	Role org.Role `json:"role"`
}

func (s *Server) setRole(w http.ResponseWriter, r *http.Request) {
	req, err := decode[setRoleRequest](w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, _ := principal(r.Context())
	m, err := s.orgs.SetRole(r.Context(), p, chi.URLParam(r, "id"), req.Role)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	respond(w, http.StatusOK, toMember(m))
}

func (s *Server) removeMember(w http.ResponseWriter, r *http.Request) {
	p, _ := principal(r.Context())
	if err := s.orgs.RemoveMember(r.Context(), p, chi.URLParam(r, "id")); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) getMe(w http.ResponseWriter, r *http.Request) {
	p, _ := principal(r.Context())
	m, err := s.orgs.Me(r.Context(), p)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	respond(w, http.StatusOK, toMember(m))
}

// updateMeRequest has no role: a member cannot give themselves one
// (an unknown field is a 400).
type updateMeRequest struct {
	Email           *string `json:"email"`
	Password        *string `json:"password"`
	CurrentPassword *string `json:"current_password"`
}

func (s *Server) updateMe(w http.ResponseWriter, r *http.Request) {
	req, err := decode[updateMeRequest](w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, _ := principal(r.Context())
	m, err := s.orgs.UpdateMe(r.Context(), p, org.SelfUpdate{Email: req.Email, Password: req.Password, CurrentPassword: req.CurrentPassword})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	respond(w, http.StatusOK, toMember(m))
}

package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/orgservice/orgservice/internal/auth"
	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/org"
)

// orgResponse is the Organization resource as its own members see it. It
// never carries credentials.
type orgResponse struct {
	ID               string    `json:"id"`
	OrganizationName string    `json:"organization_name"`
	Slug             string    `json:"slug"`
	CollectionName   string    `json:"collection_name"`
	AdminEmail       string    `json:"admin_email"`
	MemberCount      int       `json:"member_count"`
	CreatedAt        time.Time `json:"created_at"`
	UpdatedAt        time.Time `json:"updated_at"`
}

func toResponse(o *org.Organization) orgResponse {
	return orgResponse{
		ID: o.ID, OrganizationName: o.Name, Slug: o.Slug, CollectionName: o.CollectionName,
		AdminEmail: o.AdminEmail, MemberCount: len(org.MembersOf(o)), CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt,
	}
}

// publicOrgResponse is the Organization as anyone else sees it: what its
// name already tells, and when it was created. Who administers it and how
// many members it has is its members' business.
type publicOrgResponse struct {
	OrganizationName string    `json:"organization_name"`
	Slug             string    `json:"slug"`
	CollectionName   string    `json:"collection_name"`
	CreatedAt        time.Time `json:"created_at"`
}

type createRequest struct {
	OrganizationName string `json:"organization_name"`
	Email            string `json:"email"`
	Password         string `json:"password"`
}

func (s *Server) createOrg(w http.ResponseWriter, r *http.Request) {
	req, err := decode[createRequest](w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	o, err := s.orgs.Create(r.Context(), org.CreateInput{Name: req.OrganizationName, Email: req.Email, Password: req.Password})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/org/get?organization_name="+url.QueryEscape(o.Name))
	respond(w, http.StatusCreated, toResponse(o))
}

// nameParam returns the required organization_name query parameter.
func nameParam(r *http.Request) (string, error) {
	name := r.URL.Query().Get("organization_name")
	if strings.TrimSpace(name) == "" {
		return "", badRequest("the query parameter organization_name is required")
	}
	return name, nil
}

func (s *Server) getOrg(w http.ResponseWriter, r *http.Request) {
	name, err := nameParam(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	// A token is optional here; one that is given must be valid.
	var p org.Principal
	if r.Header.Get("Authorization") != "" {
		if p, err = s.bearer(r); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	o, err := s.orgs.Get(r.Context(), name)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if p.OrgID != o.ID {
		respond(w, http.StatusOK, publicOrgResponse{
			OrganizationName: o.Name, Slug: o.Slug, CollectionName: o.CollectionName, CreatedAt: o.CreatedAt,
		})
		return
	}
	respond(w, http.StatusOK, toResponse(o))
}

type updateRequest struct {
	OrganizationName *string `json:"organization_name"`
	Email            *string `json:"email"`
	Password         *string `json:"password"`
	CurrentPassword  *string `json:"current_password"`
}

func (s *Server) updateOrg(w http.ResponseWriter, r *http.Request) {
	req, err := decode[updateRequest](w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, _ := principal(r.Context())
	o, err := s.orgs.Update(r.Context(), p, org.UpdateInput{
		Name: req.OrganizationName, Email: req.Email, Password: req.Password, CurrentPassword: req.CurrentPassword,
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	respond(w, http.StatusOK, toResponse(o))
}

func (s *Server) deleteOrg(w http.ResponseWriter, r *http.Request) {
	name, err := nameParam(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, _ := principal(r.Context())
	if err := s.orgs.Delete(r.Context(), p, name); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// tokenResponse is a pair of tokens, as login and refresh answer them.
type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
}

func toTokens(t auth.Token) tokenResponse {
	return tokenResponse{AccessToken: t.AccessToken, TokenType: t.TokenType, ExpiresIn: t.ExpiresIn, RefreshToken: t.RefreshToken}
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	req, err := decode[loginRequest](w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	t, err := s.auth.Login(r.Context(), req.Email, req.Password)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	respond(w, http.StatusOK, toTokens(t))
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	respond(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.opts.DBTimeout)
	defer cancel()
	if err := s.db.Ping(ctx); err != nil {
		s.fail(w, r, errs.Wrap(errs.Unavailable, err, "the database is not reachable"))
		return
	}
	respond(w, http.StatusOK, map[string]string{"status": "ready"})
}

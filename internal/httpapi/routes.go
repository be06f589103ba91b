package httpapi

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/orgservice/orgservice/internal/org"
)

// routes mounts every route of the service.
func (s *Server) routes() chi.Router {
	r := chi.NewRouter()
	r.Use(s.requestID, s.observe, s.recoverer, securityHeaders, corsHeaders(s.opts.CORSOrigins))
	r.NotFound(s.notFound)
	r.MethodNotAllowed(s.methodNotAllowed(r))

	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Method(http.MethodGet, "/metrics", s.metrics.Handler(s.log))
	r.Get("/openapi.yaml", openAPISpec)
	docs := s.swaggerUI()
	r.Method(http.MethodGet, "/docs", docs)
	r.Method(http.MethodGet, "/docs/*", docs)

	// Limits run before authentication and handlers: a limited request
	// costs no bcrypt and no database work.
	r.Route("/api/v1", func(r chi.Router) {
		r.Use(noStore)
		r.With(s.limits.write).Post("/org/create", s.createOrg)
		r.Get("/org/get", s.getOrg)
		r.With(loginAttempt, s.passwordLimits).Post("/admin/login", s.login)
		r.With(s.limits.write).Post("/admin/refresh", s.refresh)
		r.Group(func(r chi.Router) {
			r.Use(s.limits.write, s.authenticate)
			r.With(s.allow(org.ActUpdateOrg), reauthAttempt, s.passwordLimits).Put("/org/update", s.updateOrg)
			r.With(s.allow(org.ActDeleteOrg)).Delete("/org/delete", s.deleteOrg)
		})
		// Members and the audit log: reads unlimited, writes under the write limit.
		r.Group(func(r chi.Router) {
			r.Use(s.authenticate)
			r.With(s.allow(org.ActListMembers)).Get("/org/members", s.listMembers)
			r.With(s.allow(org.ActSelf)).Get("/org/members/me", s.getMe)
			r.With(s.allow(org.ActSelf)).Get("/org/members/me/sessions", s.listSessions)
			r.With(s.allow(org.ActReadAudit)).Get("/org/audit", s.readAudit)
			r.With(s.allow(org.ActReadUsage)).Get("/org/usage", s.readUsage)
		})
		r.Group(func(r chi.Router) {
			r.Use(s.limits.write, s.authenticate)
			r.With(s.allow(org.ActAddMember)).Post("/org/members", s.addMember)
			r.With(s.allow(org.ActSelf), reauthAttempt, s.passwordLimits).Patch("/org/members/me", s.updateMe)
			r.With(s.allow(org.ActSelf)).Delete("/org/members/me/sessions/{id}", s.endSession)
			r.With(s.allow(org.ActSelf)).Post("/admin/logout", s.logout)
			r.With(s.allow(org.ActSetRole)).Patch("/org/members/{id}", s.setRole)
			r.With(s.allow(org.ActRemoveMember)).Delete("/org/members/{id}", s.removeMember)
		})
		// Documents: limited per organization, so after authentication.
		r.Group(func(r chi.Router) {
			r.Use(s.authenticate, s.allow(org.ActDocuments), s.limits.data)
			r.Get("/org/documents", s.listDocuments)
			r.Post("/org/documents", s.createDocument)
			r.Get("/org/documents/{id}", s.getDocument)
			r.Put("/org/documents/{id}", s.replaceDocument)
			r.Patch("/org/documents/{id}", s.patchDocument)
			r.Delete("/org/documents/{id}", s.deleteDocument)
			r.Get("/org/export", s.exportDocuments)
			r.Post("/org/import", s.importDocuments)
		})
		// The operator API: for the people who run the service, with a key
		// of its own; a tenant's token never reaches it.
		r.Group(func(r chi.Router) {
			r.Use(s.operatorOnly)
			r.Get("/operator/organizations", s.listOrganizations)
			r.Get("/operator/organizations/{id}", s.getOrganization)
			r.Patch("/operator/organizations/{id}", s.patchOrganization)
			r.Post("/operator/organizations/{id}/recount", s.recountOrganization)
		})
	})
	return r
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.fail(w, r, &requestError{http.StatusNotFound, "not-found", "Not found", "no route matches " + r.URL.Path})
}

// methodNotAllowed answers 405 with the Allow header chi does not give a
// custom handler: the methods that do match the path.
func (s *Server) methodNotAllowed(routes chi.Routes) http.HandlerFunc {
	methods := []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}
	return func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range methods {
			if routes.Match(chi.NewRouteContext(), m, r.URL.Path) {
				allow = append(allow, m)
			}
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.fail(w, r, &requestError{http.StatusMethodNotAllowed, "method-not-allowed", "Method not allowed",
			r.Method + " is not allowed on " + r.URL.Path})
	}
}

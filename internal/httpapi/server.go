// Package httpapi is the REST API: routes, handlers, middleware and the one
// place that turns errors into RFC 9457 problem+json responses.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/orgservice/orgservice/internal/auth"
	"github.com/orgservice/orgservice/internal/org"
)

// Orgs is what the API needs from the organization service.
type Orgs interface {
	Create(ctx context.Context, in org.CreateInput) (*org.Organization, error)
	Get(ctx context.Context, name string) (*org.Organization, error)
	Update(ctx context.Context, p org.Principal, in org.UpdateInput) (*org.Organization, error)
	Delete(ctx context.Context, p org.Principal, name string) error
	Ping(ctx context.Context) error
}

// Auth is what the API needs to log admins in and check their tokens.
type Auth interface {
	Login(ctx context.Context, email, password string) (auth.Token, error)
	Authenticate(ctx context.Context, raw string) (org.Principal, error)
}

var (
	_ Orgs = (*org.Service)(nil)
	_ Auth = (*auth.Service)(nil)
)

// Options tunes the server.
type Options struct {
	// DBTimeout bounds the readiness probe's ping.
	DBTimeout time.Duration
}

// Server holds the API's dependencies; its methods are the handlers.
type Server struct {
	orgs   Orgs
	auth   Auth
	log    *slog.Logger
	opts   Options
	router chi.Router
}

// New returns a Server with its routes mounted.
func New(orgs Orgs, authn Auth, log *slog.Logger, opts Options) *Server {
	if opts.DBTimeout <= 0 {
		opts.DBTimeout = 5 * time.Second
	}
	s := &Server{orgs: orgs, auth: authn, log: log, opts: opts}
	s.router = s.routes()
	return s
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

// Router returns the chi router, for walking its routes.
func (s *Server) Router() chi.Routes { return s.router }

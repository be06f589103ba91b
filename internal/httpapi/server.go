// Package httpapi is the REST API: routes, handlers, middleware and the one
// place that turns errors into RFC 9457 problem+json responses.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/orgservice/orgservice/internal/auth"
	"github.com/orgservice/orgservice/internal/metrics"
	"github.com/orgservice/orgservice/internal/org"
)

// Orgs is what the API needs from the organization service.
type Orgs interface {
	Create(ctx context.Context, in org.CreateInput) (*org.Organization, error)
	Get(ctx context.Context, name string) (*org.Organization, error)
	Update(ctx context.Context, p org.Principal, in org.UpdateInput) (*org.Organization, error)
	Delete(ctx context.Context, p org.Principal, name string) error

	Members(ctx context.Context, p org.Principal) ([]org.Member, error)
	Me(ctx context.Context, p org.Principal) (*org.Member, error)
	AddMember(ctx context.Context, p org.Principal, in org.AddMemberInput) (*org.Member, error)
	SetRole(ctx context.Context, p org.Principal, id string, role org.Role) (*org.Member, error)
	RemoveMember(ctx context.Context, p org.Principal, id string) error
	UpdateMe(ctx context.Context, p org.Principal, in org.SelfUpdate) (*org.Member, error)
	Audit(ctx context.Context, p org.Principal, q org.AuditQuery) (org.AuditPage, error)
	Usage(ctx context.Context, p org.Principal) (org.UsageReport, error)
}

// Auth is what the API needs to log members in, check their tokens and
// keep their sessions.
type Auth interface {
	Login(ctx context.Context, email, password string) (auth.Token, error)
	Authenticate(ctx context.Context, raw string) (org.Principal, error)
	Refresh(ctx context.Context, raw string) (auth.Token, error)
	Logout(ctx context.Context, p org.Principal) error
	Sessions(ctx context.Context, p org.Principal) ([]org.Session, error)
	EndSession(ctx context.Context, p org.Principal, id string) error
}

// Pinger checks that the database answers, for the readiness probe.
type Pinger interface {
	Ping(ctx context.Context) error
}

var (
	_ Orgs     = (*org.Service)(nil)
	_ Auth     = (*auth.Service)(nil)
	_ Recorder = (*metrics.Metrics)(nil)
)

// Deps are the server's collaborators. Orgs, Operator, Auth, Documents and
// DB serve the routes; the others may be nil.
type Deps struct {
	Orgs      Orgs
	Operator  Operator
	Auth      Auth
	Documents Documents
	DB        Pinger
	// RateStore, when set, keeps the rate limits' counts where every
	// instance sharing it sees them, in fixed one-minute windows; nil counts
	// in this process's memory (a sliding window per instance).
	RateStore RateStore
	// Metrics records requests and rate-limit rejections and serves
	// /metrics; nil gets a registry of the server's own.
	Metrics Recorder
	// Now is the clock of RateStore's windows; nil is time.Now.
	Now func() time.Time
}

// Options are the server's settings. The zero value has no rate limits,
// trusts no proxy and allows any origin.
type Options struct {
	// DBTimeout bounds the readiness probe's ping.
	DBTimeout time.Duration
	// LoginRatePerMin caps password attempts (logins, and changes of
	// credentials with current_password) a minute per client IP and,
	// separately, per email and client IP together; 0 disables the limit.
	LoginRatePerMin int
	// LoginEmailRatePerMin caps password attempts a minute per email,
	// whatever the IP: high enough that a person never meets it, and
	// above LoginRatePerMin, so that one address cannot use it up; 0
	// disables the limit.
	LoginEmailRatePerMin int
	// WriteRatePerMin caps creates, updates and deletes a minute per client
	// IP; 0 disables the limit.
	WriteRatePerMin int
	// TrustedProxies are the peers whose X-Forwarded-For and X-Real-IP
	// headers name the client; anyone else's are ignored.
	TrustedProxies []netip.Prefix
	// CORSOrigins are the origins browsers may call the API from; empty or
	// "*" allows any origin (never with credentials).
	CORSOrigins []string
	// RateFailOpen lets a request through unlimited, with a warning (at most
	// one every 10 s), when RateStore fails; otherwise it gets a 503.
	RateFailOpen bool
	// RateTimeout bounds each RateStore call; 0 is min(DBTimeout, 2s).
	RateTimeout time.Duration
	// DataRatePerMin caps document requests a minute per organization; 0
	// disables the limit.
	DataRatePerMin int
	// ImportMaxBytes caps an import's body; 0 is DefaultImportMaxBytes.
	ImportMaxBytes int64
	// OperatorAPIKey is the bearer token of the operator API; empty turns
	// the operator API off (its routes answer 404).
	OperatorAPIKey string
}

// Server holds the API's dependencies; its methods are the handlers.
type Server struct {
	orgs     Orgs
	operator Operator
	auth     Auth
	docs     Documents
	db       Pinger
	rates    RateStore
	now      func() time.Time
	log      *slog.Logger
	opts     Options
	metrics  Recorder
	ips      clientIPs
	limits   rateLimits
	router   chi.Router
}

// New returns a Server over deps with its routes mounted.
func New(deps Deps, opts Options, log *slog.Logger) *Server {
	if opts.DBTimeout <= 0 {
		opts.DBTimeout = 5 * time.Second
	}
	if opts.RateTimeout <= 0 {
		opts.RateTimeout = min(opts.DBTimeout, 2*time.Second)
	}
	if opts.ImportMaxBytes <= 0 {
		opts.ImportMaxBytes = DefaultImportMaxBytes
	}
	if deps.Metrics == nil {
		deps.Metrics = metrics.New(nil)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	s := &Server{
		orgs: deps.Orgs, operator: deps.Operator, auth: deps.Auth, docs: deps.Documents, db: deps.DB, rates: deps.RateStore, now: deps.Now,
		log: log, opts: opts, metrics: deps.Metrics, ips: clientIPs{trusted: opts.TrustedProxies},
	}
	s.limits = s.newRateLimits()
	s.router = s.routes()
	return s
}

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

// Router returns the chi router, for walking its routes.
func (s *Server) Router() chi.Routes { return s.router }

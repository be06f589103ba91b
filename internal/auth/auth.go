// Package auth hashes members' passwords, logs members in, keeps their
// sessions, and issues and verifies their JWTs. A token is only as alive as
// its member and its session: every verification loads the organization,
// checks the member's token version, and that the session has not ended.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"

	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/org"
)

// Orgs finds active organizations, with errs.NotFound when there is none;
// org.Service is one.
type Orgs interface {
	ByEmail(ctx context.Context, email string) (*org.Organization, error)
	ByID(ctx context.Context, id string) (*org.Organization, error)
	Get(ctx context.Context, name string) (*org.Organization, error)
	// Reread is ByID after reading the organization afresh from the database.
	Reread(ctx context.Context, id string) (*org.Organization, error)
}

// Recorder writes login and session events to the audit log; org.Service
// is one.
type Recorder interface {
	// RecordLogin records a login as member m of o that succeeded (ok) or
	// failed for a wrong password. Errors: errs.Unavailable.
	RecordLogin(ctx context.Context, o *org.Organization, m *org.Member, ok bool) error
	// RecordLoginFailure records a login as member m of o refused for
	// reason although the password was right. Errors: errs.Unavailable.
	RecordLoginFailure(ctx context.Context, o *org.Organization, m *org.Member, reason string) error
	// RecordSessionEnd records member m of o's session id ended for
	// reason. Errors: errs.Unavailable.
	RecordSessionEnd(ctx context.Context, o *org.Organization, m *org.Member, id, reason string) error
}

// Bcrypt hashes passwords at a fixed cost.
type Bcrypt struct{ Cost int }

var _ org.Hasher = Bcrypt{}

// Hash returns the bcrypt hash of password.
func (b Bcrypt) Hash(password string) (string, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), b.Cost)
	if err != nil {
		return "", fmt.Errorf("bcrypt: %w", err)
	}
	return string(h), nil
}

// Compare reports whether password is the one hash was made from. bcrypt
// reads only 72 bytes: a longer password never matches, after the same
// work as any other (a password must not log in as its prefix).
func (b Bcrypt) Compare(hash, password string) (bool, error) {
	err := bcrypt.CompareHashAndPassword([]byte(hash), []byte(password))
	if err != nil && !errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
		return false, fmt.Errorf("bcrypt: %w", err)
	}
	return err == nil && len(password) <= org.MaxPasswordBytes, nil
}

// Config configures token issue and verification.
type Config struct {
	Secret []byte
	Issuer string
	// TTL is the access tokens' lifetime (JWT_TTL); RefreshTTL how long a
	// refresh token lives unused (REFRESH_TTL, 30 days unless set): a
	// session ends after that long without a refresh.
	TTL        time.Duration
	RefreshTTL time.Duration
	BcryptCost int
	// Lag is how long another instance's write may take to reach this
	// instance's directory (its staleness bound). A token that this one
	// cannot verify from memory is read afresh when it is younger than Lag
	// and a second (iat counts whole seconds): another instance may have
	// issued it for an organization, member or token version written a
	// moment ago. Zero: never.
	Lag time.Duration
}

// DefaultRefreshTTL is REFRESH_TTL's default.
const DefaultRefreshTTL = 30 * 24 * time.Hour

// Token is a freshly issued pair: a short access token (a JWT) and the
// opaque refresh token that renews it.
type Token struct {
	AccessToken  string
	TokenType    string
	ExpiresIn    int64 // seconds
	RefreshToken string
}

// Deps are what a Service works with. Hasher may be nil (bcrypt at
// Config.BcryptCost); Log too.
type Deps struct {
	Orgs     Orgs
	Recorder Recorder
	// Hasher is the one bcrypt entry point, shared with org.Service.
	Hasher   org.Hasher
	Sessions Sessions
	Log      *slog.Logger
}

// Service logs members in, keeps their sessions and verifies their tokens.
type Service struct {
	orgs   Orgs
	rec    Recorder
	hasher org.Hasher
	sess   Sessions
	log    *slog.Logger
	cfg    Config
	dummy  string // hash compared against when the email is unknown, so both cases cost the same
	now    func() time.Time
	parser *jwt.Parser // built once: its options are the same for every token

	failed    sync.WaitGroup // failed logins' events being written after their answer
	recording chan struct{}  // bounds those writes
}

// NewService returns a Service over deps.
func NewService(deps Deps, cfg Config) (*Service, error) {
	if len(cfg.Secret) == 0 {
		return nil, errors.New("auth: empty secret")
	}
	if cfg.RefreshTTL <= 0 {
		cfg.RefreshTTL = DefaultRefreshTTL
	}
	if deps.Hasher == nil {
		deps.Hasher = Bcrypt{Cost: cfg.BcryptCost}
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	pw := make([]byte, 16)
	_, _ = rand.Read(pw)
	dummy, err := deps.Hasher.Hash(hex.EncodeToString(pw))
	if err != nil {
		return nil, fmt.Errorf("auth: dummy hash: %w", err)
	}
	s := &Service{
		orgs: deps.Orgs, rec: deps.Recorder, hasher: deps.Hasher, sess: deps.Sessions, log: deps.Log,
		cfg: cfg, dummy: dummy, now: time.Now, recording: make(chan struct{}, maxRecording),
	}
	s.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithTimeFunc(func() time.Time { return s.now() }),
	)
	return s, nil
}

func badCredentials() error { return errs.Errorf(errs.Unauthorized, "invalid email or password") }

// Login checks a member's credentials and opens a session: an access token
// and a refresh token. Unknown emails and wrong passwords fail alike, by
// the same path in the same time (OWASP Authentication Cheat Sheet,
// "Authentication Responses"): a wrong password's login.failed event is
// written after the answer. A succeeded login is recorded before it is
// answered. A member of a suspended organization with the right password
// gets errs.Suspended (and a login.failed event): suspension is told only
// to whoever knows the password. Errors: errs.Invalid (blank email or
// password), errs.Unauthorized, errs.Suspended, errs.Unavailable.
func (s *Service) Login(ctx context.Context, email, password string) (Token, error) {
	var fields []errs.FieldError
	if strings.TrimSpace(email) == "" {
		fields = append(fields, errs.FieldError{Field: "email", Message: "must not be blank"})
	}
	if strings.TrimSpace(password) == "" {
		fields = append(fields, errs.FieldError{Field: "password", Message: "must not be blank"})
	}
	if fields != nil {
		return Token{}, &errs.Error{Kind: errs.Invalid, Message: "the request has invalid fields", Fields: fields}
	}
	o, err := s.orgs.ByEmail(ctx, email)
	if err != nil && !errs.Is(err, errs.NotFound) {
		return Token{}, err
	}
	hash := s.dummy
	var m *org.Member
	if o != nil {
		m = org.MemberByEmail(o, org.NormalizeEmail(email))
	}
	if m != nil {
		hash = m.PasswordHash
	}
	ok, err := s.hasher.Compare(hash, password)
	if err != nil {
		return Token{}, err
	}
	if m == nil || !ok {
		s.recordFailure(ctx, o, m)
		return Token{}, badCredentials()
	}
	if err := org.CheckSuspended(o); err != nil {
		if rerr := s.rec.RecordLoginFailure(ctx, o, m, "organization suspended"); rerr != nil {
			return Token{}, rerr
		}
		return Token{}, err
	}
	// Recorded before the answer: a token is never issued without its event.
	if err := s.rec.RecordLogin(ctx, o, m, true); err != nil {
		return Token{}, err
	}
	return s.open(ctx, o, m)
}

// claims are the JWT claims of an access token. Ver is the member's token
// version, Sid its session (the claim OpenID Connect names so). A token
// issued before members existed has no mid: its member is the
// organization's first owner, whose id is the organization's.
type claims struct {
	OrgName   string `json:"org_name"`
	OrgID     string `json:"org_id"`
	MemberID  string `json:"mid,omitempty"`
	Role      string `json:"role,omitempty"`
	Ver       int64  `json:"ver"`
	SessionID string `json:"sid"`
	jwt.RegisteredClaims
}

// key is the verification key of every token: the one secret.
func (s *Service) key(*jwt.Token) (any, error) { return s.cfg.Secret, nil }

// issue signs an access token of member m of o in session sid.
func (s *Service) issue(o *org.Organization, m *org.Member, sid string) (Token, error) {
	now := s.now()
	c := claims{
		OrgName:   o.Name,
		OrgID:     o.ID,
		MemberID:  m.ID,
		Role:      string(m.Role),
		Ver:       m.TokenVersion,
		SessionID: sid,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   m.Email,
			Issuer:    s.cfg.Issuer,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(s.cfg.TTL)),
		},
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(s.cfg.Secret)
	if err != nil {
		return Token{}, errs.Wrap(errs.Internal, err, "sign token")
	}
	return Token{AccessToken: signed, TokenType: "Bearer", ExpiresIn: int64(s.cfg.TTL / time.Second)}, nil
}

// Authenticate verifies a bearer token and returns its principal. Only
// HS256 with our key, a live exp and our issuer pass (RFC 8725, §3.1,
// §3.8); then its session must not have ended, the organization must
// still exist and be active, and the token's member still belong to it,
// at the token's version. The directory answers, from memory; a token it
// refuses that is younger than Config.Lag is checked once more against the
// organization read afresh, so that a token issued by another instance a
// moment ago works at once. A valid token of a suspended organization is
// errs.Suspended. Errors: errs.Unauthorized, errs.Suspended, errs.Unavailable.
func (s *Service) Authenticate(ctx context.Context, raw string) (org.Principal, error) {
	var c claims
	_, err := s.parser.ParseWithClaims(raw, &c, s.key)
	if err != nil || c.OrgID == "" || c.OrgName == "" || c.SessionID == "" {
		return org.Principal{}, errs.Errorf(errs.Unauthorized, "invalid or expired token")
	}
	if err := s.live(c.SessionID); err != nil {
		return org.Principal{}, err
	}
	p, err := s.principal(ctx, &c, s.orgs.ByID)
	if errs.Is(err, errs.Unauthorized) && s.young(&c) {
		p, err = s.principal(ctx, &c, s.orgs.Reread)
	}
	return p, err
}

// young reports whether c was issued so recently that this instance's
// directory may not show what it names yet.
func (s *Service) young(c *claims) bool {
	return s.cfg.Lag > 0 && c.IssuedAt != nil && s.now().Sub(c.IssuedAt.Time) < s.cfg.Lag+time.Second
}

// principal checks the verified claims c against the organization lookup
// finds. Errors: errs.Unauthorized, errs.Unavailable.
func (s *Service) principal(ctx context.Context, c *claims, lookup func(context.Context, string) (*org.Organization, error)) (org.Principal, error) {
	o, err := lookup(ctx, c.OrgID)
	if errs.Is(err, errs.NotFound) {
		return org.Principal{}, errs.Errorf(errs.Unauthorized, "the token's organization no longer exists")
	}
	if err != nil {
		return org.Principal{}, err
	}
	mid := c.MemberID
	if mid == "" {
		mid = o.ID
	}
	m := org.MemberByID(o, mid)
	if m == nil {
		return org.Principal{}, errs.Errorf(errs.Unauthorized, "the token's member is no longer in the organization")
	}
	if m.TokenVersion != c.Ver || subtle.ConstantTimeCompare([]byte(m.Email), []byte(c.Subject)) != 1 {
		return org.Principal{}, errs.Errorf(errs.Unauthorized, "the token has been revoked")
	}
	if org.Slug(c.OrgName) != o.Slug {
		// Renamed since the token was issued. A rename alone revokes
		// nothing; but once another organization holds the name the token
		// carries, its org_name claim names someone else, and it is refused.
		other, err := s.orgs.Get(ctx, c.OrgName)
		switch {
		case err == nil && other.ID != o.ID:
			return org.Principal{}, errs.Errorf(errs.Unauthorized, "the token's organization name now belongs to another organization; log in again")
		case err != nil && !errs.Is(err, errs.NotFound):
			return org.Principal{}, err
		}
	}
	// Last, so that a token revoked anyway stays a 401.
	if err := org.CheckSuspended(o); err != nil {
		return org.Principal{}, err
	}
	// The role is the member's now, not the token's: a change takes effect
	// on the next request.
	return org.Principal{OrgID: o.ID, Email: m.Email, OrgName: o.Name, MemberID: m.ID, Role: m.Role, SessionID: c.SessionID}, nil
}

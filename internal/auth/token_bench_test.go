package auth

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/org"
)

// benchDirectory is an in-memory Directory holding one organization. It
// takes the database out of the measurement: in the service, Authenticate's
// ByID is a database round trip, which internal/httpapi's BenchmarkGetOrg-
// style benchmarks and cmd/orgbench measure.
type benchDirectory struct{ o *org.Organization }

func (d benchDirectory) ByID(_ context.Context, id string) (*org.Organization, error) {
	if id != d.o.ID {
		return nil, errs.Errorf(errs.NotFound, "organization not found")
	}
	return d.o, nil
}

func (d benchDirectory) Get(_ context.Context, name string) (*org.Organization, error) {
	if org.Slug(name) != d.o.Slug {
		return nil, errs.Errorf(errs.NotFound, "organization not found")
	}
	return d.o, nil
}

func (d benchDirectory) ByEmail(_ context.Context, email string) (*org.Organization, error) {
	if email != d.o.AdminEmail {
		return nil, errs.Errorf(errs.NotFound, "organization not found")
	}
	return d.o, nil
}

func (d benchDirectory) Reread(ctx context.Context, id string) (*org.Organization, error) {
	return d.ByID(ctx, id)
}

// RecordLogin records nothing: the benchmarks measure the tokens.
func (benchDirectory) RecordLogin(context.Context, *org.Organization, *org.Member, bool) error {
	return nil
}

// RecordLoginFailure records nothing either.
func (benchDirectory) RecordLoginFailure(context.Context, *org.Organization, *org.Member, string) error {
	return nil
}

// RecordSessionEnd records nothing either.
func (benchDirectory) RecordSessionEnd(context.Context, *org.Organization, *org.Member, string, string) error {
	return nil
}

// benchEnded is a set of ended sessions as the directory holds them: a map
// under a read lock.
type benchEnded struct {
	mu    sync.RWMutex
	until map[string]time.Time
}

func (e *benchEnded) SessionEnded(id string) (bool, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	u, ok := e.until[id]
	return ok && time.Now().Before(u), nil
}

func (e *benchEnded) EndSession(s org.SessionEnd) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.until[s.SessionID] = s.Until
}

func benchService(b *testing.B) (*Service, *org.Organization) {
	b.Helper()
	o := &org.Organization{
		ID: "65f0c0ffee0123456789abcd", Name: "Acme Corp", Slug: "acme_corp", CollectionName: "org_acme_corp",
		AdminEmail: "admin@acme.com", TokenVersion: 3, State: org.StateActive,
	}
	// 10,000 sessions ended within the last JWT_TTL: a busy service's.
	ended := &benchEnded{until: map[string]time.Time{}}
	for range 10000 {
		ended.EndSession(org.SessionEnd{SessionID: newSessionID(), Until: time.Now().Add(time.Hour)})
	}
	s, err := NewService(Deps{Orgs: benchDirectory{o}, Recorder: benchDirectory{o}, Sessions: Sessions{Ended: ended}}, Config{
		Secret: []byte("bench-secret-0123456789abcdef0123456789"), Issuer: "orgservice", TTL: time.Hour, BcryptCost: 4,
	})
	if err != nil {
		b.Fatal(err)
	}
	return s, o
}

// BenchmarkIssue measures signing an access token (HS256), the part of a
// login that is not bcrypt or the email lookup.
func BenchmarkIssue(b *testing.B) {
	s, o := benchService(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.issue(o, org.MemberByID(o, o.ID), newSessionID()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticate measures verifying a token: parse, HS256 check,
// claims validation, the ended-session check (among 10,000 ended
// sessions), then the organization lookup (in memory here) and the version
// check.
func BenchmarkAuthenticate(b *testing.B) {
	s, o := benchService(b)
	t, err := s.issue(o, org.MemberByID(o, o.ID), newSessionID())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Authenticate(ctx, t.AccessToken); err != nil {
			b.Fatal(err)
		}
	}
}

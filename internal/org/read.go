package org

import (
	"context"
	"strings"

	"github.com/orgservice/orgservice/internal/errs"
)

// Get returns the organization whose name has the same slug as name, from
// the directory: no database read. An organization being created or deleted
// is not found; one with a pending rename is served as its metadata stands,
// and its operation is nudged on.
// Errors: errs.Invalid (blank name), errs.NotFound, errs.Unavailable.
func (s *Service) Get(ctx context.Context, name string) (*Organization, error) {
	if strings.TrimSpace(name) == "" {
		return nil, &errs.Error{Kind: errs.Invalid, Message: "organization_name is required",
			Fields: []errs.FieldError{{Field: "organization_name", Message: "must not be blank"}}}
	}
	slug := Slug(name)
	if slug == "" || len(slug) > MaxSlugBytes {
		return nil, notFound()
	}
	return s.active(s.dir.BySlug(slug))
}

// ByEmail returns the active organization one of whose members has email.
// Errors: errs.NotFound, errs.Unavailable.
func (s *Service) ByEmail(ctx context.Context, email string) (*Organization, error) {
	return s.active(s.dir.ByEmail(NormalizeEmail(email)))
}

// ByID returns the active organization with id.
// Errors: errs.NotFound, errs.Unavailable.
func (s *Service) ByID(ctx context.Context, id string) (*Organization, error) {
	return s.active(s.dir.ByID(id))
}

// Reread reads the active organization with id from the database into the
// directory and returns it: for a token younger than the directory's bound,
// which may name an organization, member or token version another instance
// wrote and this one has not followed yet.
// Errors: errs.NotFound, errs.Unavailable.
func (s *Service) Reread(ctx context.Context, id string) (*Organization, error) {
	if err := s.dir.Refresh(ctx, id); err != nil {
		return nil, err
	}
	return s.ByID(ctx, id)
}

// active passes on an organization that is active, and reports any other
// as not found, nudging its unfinished operation along.
func (s *Service) active(o *Organization, err error) (*Organization, error) {
	if err != nil {
		return nil, err
	}
	s.nudge(o)
	if o.State != StateActive {
		return nil, notFound()
	}
	return o, nil
}

func notFound() error { return errs.Errorf(errs.NotFound, "organization not found") }

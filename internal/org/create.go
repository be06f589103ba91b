package org

import (
	"context"
	"log/slog"
	"time"

	"github.com/orgservice/orgservice/internal/errs"
)

// Create registers a new organization with its first owner and creates its tenant
// collection. The name and the email are claimed by inserts under unique
// keys, so of any number of concurrent creates of one name exactly one wins.
// Errors: errs.Invalid, errs.Conflict (name or email taken), errs.Unavailable.
func (s *Service) Create(ctx context.Context, in CreateInput) (*Organization, error) {
	v, err := in.validate()
	if err != nil {
		return nil, err
	}
	hash, err := s.hasher.Hash(v.password)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "hash password")
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	id := s.meta.NewID()
	o := &Organization{
		ID:             id,
		Name:           v.name,
		Slug:           v.slug,
		CollectionName: CollectionName(v.slug),
		AdminEmail:     v.email,
		// The first owner's member id is the organization's, as for an
		// organization migrated from before members.
		Members: []Member{{
			ID: id, Email: v.email, PasswordHash: hash, Role: RoleOwner,
			CreatedAt: now, UpdatedAt: now,
		}},
		State:     StateProvisioning,
		CreatedAt: now,
		UpdatedAt: now,
	}
	err = s.detached(ctx, func(ctx context.Context) error { return s.create(ctx, o) })
	if err != nil {
		return nil, err
	}
	s.obs.OrgCreated()
	return o, nil
}

// create claims, records and provisions o. Steps, each recoverable:
// claim slug → claim email → lease → metadata (provisioning) → collection →
// active (with the pending org.created event) → event inserted. A crash
// before "active" is rolled back by the reconciler, which frees the name
// and the email again; one after it leaves the event for the reconciler.
func (s *Service) create(ctx context.Context, o *Organization) error {
	if err := s.claim(ctx, slugKey(o.Slug), o.ID, "an organization with this name already exists"); err != nil {
		return err
	}
	if err := s.step("create:claimed-slug"); err != nil {
		return err
	}
	if err := s.claim(ctx, emailKey(o.AdminEmail), o.ID, "this email is already registered"); err != nil {
		s.release(ctx, o.ID, slugKey(o.Slug))
		return err
	}
	if err := s.step("create:claimed-email"); err != nil {
		return err
	}
	leased := false
	err := s.withLease(ctx, o.ID, func(ctx context.Context) error {
		leased = true
		err := s.provision(ctx, o)
		if err != nil && !isHalted(err) {
			// Not a crash: undo now, under the lease (so other instances'
			// directories follow), rather than leave it to the reconciler. If
			// this fails too, the reconciler rolls the provisioning state back.
			if uerr := s.undoCreate(context.WithoutCancel(ctx), o); uerr != nil {
				s.log.Warn("undo failed create", slog.String("org_id", o.ID), slog.Any("error", uerr))
			}
		}
		return err
	})
	if err != nil && !leased {
		s.release(ctx, o.ID, slugKey(o.Slug), emailKey(o.AdminEmail)) // nothing else was written
	}
	return err
}

// provision records o (provisioning), creates its collection and makes it
// active, then writes its org.created event. The caller holds o's lease.
func (s *Service) provision(ctx context.Context, o *Organization) error {
	if err := s.meta.Insert(ctx, o); err != nil {
		return err
	}
	if err := s.step("create:inserted"); err != nil {
		return err
	}
	if err := s.tenants.Create(ctx, o.CollectionName); err != nil {
		return err
	}
	if err := s.step("create:collection"); err != nil {
		return err
	}
	// Counted from zero before anyone can write: an active organization
	// always has a count.
	if err := s.usage.Init(ctx, o.ID); err != nil {
		return err
	}
	// The create is committed by this write, with its event.
	active := StateActive
	created := newEvent(ctx, o, &o.Members[0], EventOrgCreated, orgTarget(o), map[string]string{"slug": o.Slug})
	c := Changes{State: &active, AuditPending: []Event{created}, SetAuditPending: true, UpdatedAt: o.UpdatedAt}
	if err := s.meta.Update(ctx, o.ID, c); err != nil {
		return err
	}
	o.State, o.AuditPending = StateActive, c.AuditPending
	if err := s.step("create:active"); err != nil {
		return err
	}
	return s.commitAudit(ctx, o)
}

// undoCreate rolls a create back: drop the collection, remove the metadata,
// free the name and the email.
func (s *Service) undoCreate(ctx context.Context, o *Organization) error {
	if err := s.tenants.Drop(ctx, o.CollectionName); err != nil {
		return err
	}
	if err := s.usage.Forget(ctx, o.ID); err != nil {
		return err
	}
	if err := s.meta.Delete(ctx, o.ID); err != nil {
		return err
	}
	return s.releaseAll(ctx, o)
}

// claim takes key for orgID. When another organization holds it, a stale
// holder (an interrupted operation nobody is running) is settled first, and
// the claim tried once more.
func (s *Service) claim(ctx context.Context, key, orgID, conflict string) error {
	err := s.names.Claim(ctx, key, orgID)
	if !errs.Is(err, errs.Conflict) {
		return err
	}
	if settled, serr := s.settleClaim(ctx, key); serr != nil || !settled {
		return errs.Errorf(errs.Conflict, "%s", conflict)
	}
	if err := s.names.Claim(ctx, key, orgID); err != nil {
		if errs.Is(err, errs.Conflict) {
			return errs.Errorf(errs.Conflict, "%s", conflict)
		}
		return err
	}
	return nil
}

func (s *Service) release(ctx context.Context, orgID string, keys ...string) {
	for _, k := range keys {
		if err := s.names.Release(context.WithoutCancel(ctx), k, orgID); err != nil {
			s.log.Warn("release claim", slog.String("key", k), slog.String("org_id", orgID), slog.Any("error", err))
		}
	}
}

package org

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/orgservice/orgservice/internal/errs"
)

// Delete removes the principal's own organization: it is marked deleting
// (its members' tokens die at once), its collection is dropped, its metadata
// removed, and its name and every member's email freed. name must resolve to the principal's
// organization, and the principal its owner. Errors: errs.Invalid (blank
// name), errs.Forbidden (another organization's name, existing or not, or
// not an owner), errs.Busy, errs.Unauthorized
// (organization gone), errs.Unavailable.
func (s *Service) Delete(ctx context.Context, p Principal, name string) error {
	if strings.TrimSpace(name) == "" {
		return &errs.Error{Kind: errs.Invalid, Message: "organization_name is required",
			Fields: []errs.FieldError{{Field: "organization_name", Message: "must not be blank"}}}
	}
	slug := Slug(name)
	return s.detached(ctx, func(ctx context.Context) error {
		return s.withLease(ctx, p.OrgID, func(ctx context.Context) error {
			o, err := s.settled(ctx, p.OrgID)
			if err != nil {
				return err
			}
			if o.Slug != slug {
				return errs.Errorf(errs.Forbidden, "a token may only delete its own organization")
			}
			me := MemberByID(o, p.MemberID)
			if me == nil {
				return errs.Errorf(errs.Unauthorized, "the token's member no longer exists")
			}
			if err := Authorize(me.Role, ActDeleteOrg); err != nil {
				return err
			}
			deleting := StateDeleting
			now := time.Now().UTC().Truncate(time.Millisecond)
			deleted := newEvent(ctx, o, me, EventOrgDeleted, orgTarget(o), map[string]string{"slug": o.Slug})
			o.Pending = &Pending{Op: OpDelete, StartedAt: now, Events: []Event{deleted}}
			o.State = deleting
			if err := s.meta.Update(ctx, o.ID, Changes{State: &deleting, Pending: o.Pending, SetPending: true, UpdatedAt: now}); err != nil {
				return err
			}
			if err := s.step("delete:marked"); err != nil {
				return err
			}
			return s.finishDelete(ctx, o)
		})
	})
}

// finishDelete rolls a delete forward: quiesce writers, drop the
// collections, insert the org.deleted event, remove the metadata, free the
// claims. Every step is safe to repeat.
func (s *Service) finishDelete(ctx context.Context, o *Organization) error {
	if err := s.writers.Quiesce(ctx, o.ID); err != nil {
		return err
	}
	if err := s.tenants.Drop(ctx, o.CollectionName); err != nil {
		return err
	}
	if o.Pending != nil && o.Pending.Target != "" {
		if err := s.tenants.Drop(ctx, o.Pending.Target); err != nil {
			return err
		}
	}
	if err := s.step("delete:dropped"); err != nil {
		return err
	}
	// The events go in while the metadata that carries them still exists;
	// they outlive it.
	events := o.AuditPending
	if o.Pending != nil {
		events = append(slices.Clip(events), o.Pending.Events...)
	}
	if err := s.audit.Insert(ctx, events); err != nil {
		return err
	}
	if err := s.step("delete:audited"); err != nil {
		return err
	}
	if err := s.usage.Forget(ctx, o.ID); err != nil {
		return err
	}
	if err := s.meta.Delete(ctx, o.ID); err != nil {
		return err
	}
	if err := s.step("delete:removed"); err != nil {
		return err
	}
	if err := s.releaseAll(ctx, o); err != nil {
		return err
	}
	s.obs.OrgDeleted()
	return nil
}

// releaseAll frees o's name and every email its members and its intent
// hold; each release is safe to repeat.
func (s *Service) releaseAll(ctx context.Context, o *Organization) error {
	keys := []string{slugKey(o.Slug), emailKey(o.AdminEmail)}
	for _, m := range MembersOf(o) {
		keys = append(keys, emailKey(m.Email))
	}
	if p := o.Pending; p != nil && p.NewEmail != "" {
		keys = append(keys, emailKey(p.NewEmail))
	}
	var failed []error
	for _, k := range keys {
		if err := s.names.Release(ctx, k, o.ID); err != nil {
			failed = append(failed, err)
		}
	}
	return errors.Join(failed...)
}

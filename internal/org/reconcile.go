package org

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/orgservice/orgservice/internal/errs"
)

// resume completes or rolls back whatever operation o was left in. The
// caller holds o's lease. Creates are rolled back (the client never got its
// 201, so the name is freed); renames and deletes are rolled forward; the
// events of a committed change are inserted.
func (s *Service) resume(ctx context.Context, o *Organization) error {
	log := s.log.With(slog.String("org_id", o.ID), slog.String("slug", o.Slug))
	switch {
	case o.State == StateProvisioning:
		log.Info("rolling back interrupted create")
		return s.undoCreate(ctx, o)
	case o.State == StateDeleting || (o.Pending != nil && o.Pending.Op == OpDelete):
		log.Info("finishing interrupted delete")
		return s.finishDelete(ctx, o)
	case o.Pending != nil && o.Pending.Op == OpRename:
		log.Info("finishing interrupted rename", slog.String("to", o.Pending.ToSlug))
		return s.finishRename(ctx, o)
	case o.Pending != nil && o.Pending.Op == OpRecount:
		log.Info("finishing interrupted recount")
		return s.finishRecount(ctx, o)
	case len(o.AuditPending) > 0:
		log.Info("inserting pending audit events", slog.Int("events", len(o.AuditPending)))
		return s.flushAudit(ctx, o)
	}
	return nil
}

// settle takes the lease of one organization and resumes its operation.
// It does nothing when the organization, read afresh, is settled — a
// directory may show an operation a moment after it finished, and taking
// its lease then would only turn a concurrent write away — or when a live
// operation holds the lease.
func (s *Service) settle(ctx context.Context, id string) error {
	o, err := s.meta.ByID(ctx, id)
	if errs.Is(err, errs.NotFound) || err == nil && o.Settled() {
		return nil
	}
	if err != nil {
		return err
	}
	err = s.withLease(ctx, id, func(ctx context.Context) error {
		o, err := s.meta.ByID(ctx, id)
		if err != nil {
			if errs.Is(err, errs.NotFound) {
				return nil
			}
			return err
		}
		return s.resume(ctx, o)
	})
	if errs.Is(err, errs.Busy) {
		return nil
	}
	return err
}

// clearLease takes over the lease of a settled organization that an
// operation left behind when it crashed, and releases it. A live lease is left alone.
func (s *Service) clearLease(ctx context.Context, id string) error {
	err := s.withLease(ctx, id, func(context.Context) error { return nil })
	if errs.Is(err, errs.Busy) {
		return nil
	}
	return err
}

// nudge settles o in the background when it has an unfinished operation,
// so that any request that touches it helps it along. Pending audit events
// alone do not count: every member change has them for a moment, under
// its lease, and the periodic pass inserts any a crash left.
func (s *Service) nudge(o *Organization) {
	if o.Pending == nil && o.State == StateActive {
		return
	}
	s.mu.Lock()
	if s.settling[o.ID] {
		s.mu.Unlock()
		return
	}
	s.settling[o.ID] = true
	s.mu.Unlock()
	s.ops.Add(1)
	go func() {
		defer s.ops.Done()
		defer func() { s.mu.Lock(); delete(s.settling, o.ID); s.mu.Unlock() }()
		if err := s.settle(context.Background(), o.ID); err != nil && !isHalted(err) {
			s.log.Warn("settle organization", slog.String("org_id", o.ID), slog.Any("error", err))
		}
	}()
}

// settleClaim frees key when its holder no longer needs it: the holder is
// gone, or is an interrupted operation nobody is running (which is settled
// now). It reports whether the key may be free.
func (s *Service) settleClaim(ctx context.Context, key string) (bool, error) {
	c, err := s.names.Holder(ctx, key)
	if errs.Is(err, errs.NotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return s.settleHeld(ctx, c)
}

// settleHeld is settleClaim for the claim c, its holder read afresh.
func (s *Service) settleHeld(ctx context.Context, c NameClaim) (bool, error) {
	o, err := s.meta.ByID(ctx, c.OrgID)
	switch {
	case errs.Is(err, errs.NotFound):
		if time.Since(c.CreatedAt) < s.cfg.ClaimGrace {
			return false, nil // an operation may be about to record it
		}
		return true, s.names.Release(ctx, c.Key, c.OrgID)
	case err != nil:
		return false, err
	case o.Settled():
		if claimMatches(o, c.Key) || time.Since(c.CreatedAt) < s.cfg.ClaimGrace {
			return false, nil
		}
		return true, s.names.Release(ctx, c.Key, c.OrgID)
	default:
		return true, s.settle(ctx, o.ID)
	}
}

// claimMatches reports whether settled o uses key: its name, or the email
// of its admin or of any member.
func claimMatches(o *Organization, key string) bool {
	if key == slugKey(o.Slug) || key == emailKey(o.AdminEmail) {
		return true
	}
	for _, m := range MembersOf(o) {
		if key == emailKey(m.Email) {
			return true
		}
	}
	return false
}

// Reconcile finishes or rolls back every interrupted operation whose lease
// has expired, frees claims nobody holds any more, and drops tenant
// collections that no organization refers to. Operations other live
// instances are running are left alone. The passes of one process run one
// at a time: a pass that starts while the reconciler's runs waits for it,
// then finds what it left.
func (s *Service) Reconcile(ctx context.Context) error {
	s.passes.Lock()
	defer s.passes.Unlock()
	orgs, err := s.meta.Unsettled(ctx)
	if err != nil {
		return err
	}
	var failed []error
	for _, o := range orgs {
		if err := s.settle(ctx, o.ID); err != nil {
			failed = append(failed, err)
		}
	}
	claims, err := s.names.List(ctx)
	if err != nil {
		return errors.Join(append(failed, err)...)
	}
	// One read of every organization, so that the claims their settled
	// holders still use — nearly all of them — cost no lookup each: a pass
	// stays linear in the number of organizations (on FerretDB every lookup
	// reads the whole collection).
	all, err := s.meta.All(ctx)
	if err != nil {
		return errors.Join(append(failed, err)...)
	}
	settled := make(map[string]*Organization, len(all))
	for _, o := range all {
		if o.Settled() {
			settled[o.ID] = o
		}
	}
	for _, c := range claims {
		if time.Since(c.CreatedAt) < s.cfg.ClaimGrace {
			continue
		}
		if o := settled[c.OrgID]; o != nil && claimMatches(o, c.Key) {
			continue // in use; one that may not be is checked against its holder read afresh
		}
		if _, err := s.settleHeld(ctx, c); err != nil {
			failed = append(failed, err)
		}
	}
	failed = append(failed, s.dropOrphans(ctx), s.recountUncounted(ctx, all), s.recountDrifted(ctx))
	return errors.Join(failed...)
}

// dropOrphans drops tenant collections no metadata refers to: leftovers of
// a rolled-back create. The slug is claimed while checking, so no create or
// rename can take it up between the check and the drop.
func (s *Service) dropOrphans(ctx context.Context) error {
	tenants, err := s.tenants.List(ctx)
	if err != nil {
		return err
	}
	inUse, err := s.meta.CollectionsInUse(ctx)
	if err != nil {
		return err
	}
	sweeper := "sweeper-" + s.instance
	for _, name := range tenants {
		if inUse[name] {
			continue
		}
		key := slugKey(strings.TrimPrefix(name, CollectionPrefix))
		if err := s.names.Claim(ctx, key, sweeper); err != nil {
			continue // taken: a live create or rename owns the name
		}
		inUse, err = s.meta.CollectionsInUse(ctx)
		if err == nil && !inUse[name] {
			s.log.Warn("dropping orphan tenant collection", slog.String("collection", name))
			err = s.tenants.Drop(ctx, name)
		}
		if rerr := s.names.Release(ctx, key, sweeper); err == nil {
			err = rerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// settleUnsettled settles the organizations the directory knows to have an
// unfinished operation, and clears leases left behind: the periodic pass,
// whose database work is proportional to them, not to the organizations.
func (s *Service) settleUnsettled(ctx context.Context) error {
	s.passes.Lock()
	defer s.passes.Unlock()
	var failed []error
	for _, id := range s.dir.Unsettled() {
		failed = append(failed, s.settle(ctx, id))
	}
	for _, id := range s.dir.Lingering() {
		failed = append(failed, s.clearLease(ctx, id))
	}
	failed = append(failed, s.recountDrifted(ctx))
	return errors.Join(failed...)
}

// Reconciled is closed once RunReconciler's first full pass has ended, with
// or without errors: what a process found unfinished when it started has
// been settled, or tried.
func (s *Service) Reconciled() <-chan struct{} { return s.firstPass }

// RunReconciler runs a full Reconcile now and every fullEvery, and settles
// the organizations the directory finds unsettled every interval between.
// Claims and collections left behind need the full pass; a create that finds
// its name held by a stale claim frees it at once all the same.
func (s *Service) RunReconciler(ctx context.Context, every, fullEvery time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var lastFull time.Time
	for {
		var err error
		if time.Since(lastFull) >= fullEvery {
			lastFull = time.Now()
			err = s.Reconcile(ctx)
			s.passClosed.Do(func() { close(s.firstPass) })
		} else {
			err = s.settleUnsettled(ctx)
		}
		if err != nil && ctx.Err() == nil {
			s.log.Warn("reconcile", slog.Any("error", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

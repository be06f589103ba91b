package org

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/orgservice/orgservice/internal/errs"
)

// Recounts.
//
// The usage ledger counts every document write as it goes, reserving what
// a write adds before it writes and freeing what it removed after, so a
// count can only be off upwards, and only by the writes in flight in a
// process that died or lost the database: it never lets an organization
// past its quota. A recount makes it exact again. It is an operation like
// a rename, under the organization's lease and with an intent, so that
// every instance sees it through its directory: writes of the
// organization's documents are refused (409, Retry-After) while the intent
// stands, the writers registered before it are waited for, the collection
// is measured (one read of every document), the count is set to the
// measure, the marks of drift made before the intent are cleared, and the
// intent is cleared. A crash at any step leaves the intent, and whoever
// settles the organization next measures again. Reads go on throughout.

func notCounting() error {
	return errs.Errorf(errs.Busy, "the organization's usage is being counted; retry shortly")
}

// recount counts id's documents again (see above). An organization that is
// gone only has its marks of drift cleared. Errors: errs.Busy (another
// operation in progress), errs.Unavailable.
func (s *Service) recount(ctx context.Context, id string) error {
	if s.counter == nil {
		return nil
	}
	return s.withLease(ctx, id, func(ctx context.Context) error {
		o, err := s.settled(ctx, id)
		if errs.Is(err, errs.Unauthorized) { // gone: nothing left to count
			if err := s.usage.Recounted(ctx, id, time.Now()); err != nil {
				return err
			}
			return s.usage.Forget(ctx, id)
		}
		if err != nil {
			return err
		}
		now := time.Now().UTC().Truncate(time.Millisecond)
		o.Pending = &Pending{Op: OpRecount, StartedAt: now}
		if err := s.meta.Update(ctx, o.ID, Changes{Pending: o.Pending, SetPending: true}); err != nil {
			return err
		}
		if err := s.step("recount:intent"); err != nil {
			return err
		}
		return s.finishRecount(ctx, o)
	})
}

// finishRecount measures o's collection once no write can land in it any
// more, sets its count, clears the marks of drift made before the intent,
// then the intent. Every step is safe to repeat. The caller holds the lease.
func (s *Service) finishRecount(ctx context.Context, o *Organization) error {
	if s.counter == nil {
		return s.meta.Update(ctx, o.ID, Changes{SetPending: true})
	}
	if err := s.writers.Quiesce(ctx, o.ID); err != nil {
		return err
	}
	start := time.Now()
	u, err := s.counter.Measure(ctx, o.CollectionName)
	if err != nil {
		return err
	}
	if err := s.step("recount:measured"); err != nil {
		return err
	}
	if err := s.usage.Rebase(ctx, o.ID, u); err != nil {
		return err
	}
	if err := s.step("recount:rebased"); err != nil {
		return err
	}
	if err := s.usage.Recounted(ctx, o.ID, o.Pending.StartedAt); err != nil {
		return err
	}
	s.log.Info("usage recounted", slog.String("org_id", o.ID), slog.Int64("documents", u.Documents),
		slog.Int64("storage_bytes", u.StorageBytes), slog.Duration("took", time.Since(start)))
	return s.meta.Update(ctx, o.ID, Changes{SetPending: true})
}

// recountDrifted recounts every organization whose count may have drifted.
// One whose lease another operation holds is left for the next pass.
func (s *Service) recountDrifted(ctx context.Context) error {
	ids, err := s.usage.Drifted(ctx)
	if err != nil {
		return err
	}
	var failed []error
	for _, id := range ids {
		if err := s.recount(ctx, id); err != nil && !errs.Is(err, errs.Busy) {
			failed = append(failed, err)
		}
	}
	return errors.Join(failed...)
}

// recountUncounted counts the active organizations of all that have no
// count: organizations created before quotas existed.
func (s *Service) recountUncounted(ctx context.Context, all []*Organization) error {
	counted, err := s.usage.All(ctx)
	if err != nil {
		return err
	}
	var failed []error
	for _, o := range all {
		if _, ok := counted[o.ID]; ok || o.State != StateActive {
			continue
		}
		if err := s.recount(ctx, o.ID); err != nil && !errs.Is(err, errs.Busy) {
			failed = append(failed, err)
		}
	}
	return errors.Join(failed...)
}

// recountSoon recounts id in the background, once at a time: its count was
// found missing by a request.
func (s *Service) recountSoon(id string) {
	s.mu.Lock()
	if s.settling[id] {
		s.mu.Unlock()
		return
	}
	s.settling[id] = true
	s.mu.Unlock()
	s.ops.Add(1)
	go func() {
		defer s.ops.Done()
		defer func() { s.mu.Lock(); delete(s.settling, id); s.mu.Unlock() }()
		if err := s.recount(context.Background(), id); err != nil && !isHalted(err) && !errs.Is(err, errs.Busy) {
			s.log.Warn("recount usage", slog.String("org_id", id), slog.Any("error", err))
		}
	}()
}

// UsageReport is what an organization uses of its quotas.
type UsageReport struct {
	Used    Usage
	Members int64
	Quotas  Quotas
}

// Usage reports what the principal's organization uses of its quotas.
// Errors: errs.Forbidden (a member), errs.Unauthorized, errs.Busy (its
// usage is being counted), errs.Unavailable.
func (s *Service) Usage(ctx context.Context, p Principal) (UsageReport, error) {
	o, _, err := s.actingNow(ctx, p, ActReadUsage)
	if err != nil {
		return UsageReport{}, err
	}
	return s.report(ctx, o)
}

// report is o's usage of its quotas. errs.Busy while its usage is being
// counted for the first time (an organization from before quotas), which
// this starts.
func (s *Service) report(ctx context.Context, o *Organization) (UsageReport, error) {
	u, err := s.usage.Current(ctx, o.ID)
	if errs.Is(err, errs.NotFound) {
		s.recountSoon(o.ID)
		return UsageReport{}, notCounting()
	}
	if err != nil {
		return UsageReport{}, err
	}
	return UsageReport{Used: u, Members: int64(len(MembersOf(o))), Quotas: EffectiveQuotas(o, s.quotas)}, nil
}

type nopUsage struct{}

func (nopUsage) Init(context.Context, string) error                 { return nil }
func (nopUsage) Current(context.Context, string) (Usage, error)     { return Usage{}, nil }
func (nopUsage) All(context.Context) (map[string]Usage, error)      { return nil, nil }
func (nopUsage) Rebase(context.Context, string, Usage) error        { return nil }
func (nopUsage) Forget(context.Context, string) error               { return nil }
func (nopUsage) Drifted(context.Context) ([]string, error)          { return nil, nil }
func (nopUsage) Recounted(context.Context, string, time.Time) error { return nil }

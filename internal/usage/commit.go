package usage

import (
	"context"
	"log/slog"
	"slices"
	"time"

	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/org"
)

// submit queues r on orgID's account and returns once a commit has
// answered it. The first caller that finds no commit running commits the
// queue, again and again until it is empty; the others wait. A waiter does
// not leave early when its context ends: its change may be in the insert
// on its way, and its caller must know (each commit is bounded by the
// database's timeout).
func (l *Ledger) submit(ctx context.Context, orgID string, r *request) {
	r.done = make(chan struct{})
	a := l.account(orgID)
	a.mu.Lock()
	a.queue = append(a.queue, r)
	a.lastUse = time.Now()
	if a.busy {
		a.mu.Unlock()
		<-r.done
		return
	}
	a.busy = true
	for len(a.queue) > 0 {
		batch := a.queue
		a.queue = nil
		a.mu.Unlock()
		l.commit(context.WithoutCancel(ctx), a, batch)
		a.mu.Lock()
	}
	a.busy = false
	a.mu.Unlock()
	<-r.done
}

// account returns orgID's account, forgetting now and then the accounts
// nobody used for long (their head is stale anyway).
func (l *Ledger) account(orgID string) *account {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.submits++; l.submits%1024 == 0 {
		for id, a := range l.accounts {
			a.mu.Lock()
			idle := !a.busy && len(a.queue) == 0 && time.Since(a.lastUse) > 4*l.cfg.HeadTTL
			a.mu.Unlock()
			if idle {
				delete(l.accounts, id)
			}
		}
	}
	a := l.accounts[orgID]
	if a == nil {
		a = &account{orgID: orgID}
		l.accounts[orgID] = a
	}
	return a
}

// commit carries batch in one insert: the next entry of a's chain, with
// the totals after every change of batch that fits. It answers every
// request of batch.
func (l *Ledger) commit(ctx context.Context, a *account, batch []*request) {
	answer := func(err error) {
		for _, r := range batch {
			if err != nil {
				r.accepted, r.err = 0, err
			}
			close(r.done)
		}
	}
	for attempt := 0; attempt < maxAttempts; attempt++ {
		counted, fresh := true, false
		if a.learned.IsZero() || time.Since(a.learned) > l.cfg.HeadTTL {
			fresh = true
			sent := time.Now()
			head, err := l.store.Head(ctx, a.orgID)
			switch {
			case errs.Is(err, errs.NotFound):
				head, counted = Entry{OrgID: a.orgID}, false
			case err != nil:
				answer(err)
				return
			}
			a.head, a.learned = head, sent
		}
		used, changed := apply(a.head.Used, counted, batch)
		if !fresh && refused(batch) {
			// Another instance may have freed room since: a refusal is
			// decided on the head read now, never on the one remembered.
			// (An acceptance may use it: if the head moved on, the insert
			// below loses its number and this is worked out again.)
			a.learned = time.Time{}
			continue
		}
		if !changed {
			answer(nil)
			return
		}
		sent := time.Now()
		next := Entry{OrgID: a.orgID, N: a.head.N + 1, Used: used, At: sent.UTC(), Rebase: hasSet(batch)}
		err := l.store.Append(ctx, next)
		if err == nil {
			a.head, a.learned = next, sent
			answer(nil)
			l.prune(a)
			return
		}
		a.learned = time.Time{}
		if !errs.Is(err, errs.Conflict) {
			// The insert may still land: its changes would then count
			// although their writes never ran. Too high, never too low;
			// the mark has it recounted.
			l.Suspect(ctx, a.orgID)
			answer(err)
			return
		}
		// Another instance took the number: read its totals, try the next.
	}
	answer(errs.Errorf(errs.Busy, "the organization's usage is changing too fast to count; retry shortly"))
}

// apply works out batch's changes on used, in order, and records each
// request's outcome; changed reports whether the totals must be written.
// A reservation that does not fit is refused (all of it, or what is past
// the longest prefix that fits); a credit always applies, never below zero.
// An organization not counted yet takes no change but a rebase.
func apply(used org.Usage, counted bool, batch []*request) (org.Usage, bool) {
	changed := false
	for _, r := range batch {
		r.accepted, r.err = 0, nil
		switch {
		case r.set != nil:
			used, counted, changed = *r.set, true, true
		case !counted:
			r.err = notCounted()
		case !r.check:
			for _, d := range r.deltas {
				used = add(used, d)
			}
			changed = changed || len(r.deltas) > 0
		default:
			before := used
			for _, d := range r.deltas {
				if err := used.Exceeds(d, r.limits); err != nil {
					r.err = err
					break
				}
				used = add(used, d)
				r.accepted++
			}
			if r.err != nil && !r.prefix {
				used, r.accepted = before, 0
			}
			changed = changed || r.accepted > 0
		}
	}
	return used, changed
}

func add(u, d org.Usage) org.Usage {
	u.Documents = max(u.Documents+d.Documents, 0)
	u.StorageBytes = max(u.StorageBytes+d.StorageBytes, 0)
	return u
}

func refused(batch []*request) bool {
	return slices.ContainsFunc(batch, func(r *request) bool { return r.err != nil })
}

func hasSet(batch []*request) bool {
	return slices.ContainsFunc(batch, func(r *request) bool { return r.set != nil })
}

// prune removes a's entries older than the retention but its last, in the
// background, at most once every quarter of the retention.
func (l *Ledger) prune(a *account) {
	now := time.Now()
	if now.Sub(a.lastPrune) < l.cfg.Retention/4 {
		return
	}
	a.lastPrune = now
	n := a.head.N
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), l.cfg.Retention/4)
		defer cancel()
		if err := l.store.Prune(ctx, a.orgID, n, now.Add(-l.cfg.Retention).UTC()); err != nil {
			l.log.Warn("usage: prune", slog.String("org_id", a.orgID), slog.Any("error", err))
		}
	}()
}

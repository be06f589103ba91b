package document

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/orgservice/orgservice/internal/errs"
)

// Writes against a concurrent rename or delete.
//
// A write resolves the organization's collection and then writes to it. A
// rename could move that collection (renameCollection, or a copy followed
// by a drop) between the two, and the write would then land in a source
// that is about to be dropped, or re-create it: the client would get its
// 201 for a document that is lost. So:
//
//   - A process that writes to organization X holds a registration
//     {_id: "<X>/<instance>/<n>", org_id: X, registered_at, expires_at} in
//     doc_writers, inserted before its first write and renewed every TTL/3
//     while it keeps writing. Every write then resolves X afresh, after
//     the registration is in place, and refuses (errs.Busy, 409 with
//     Retry-After) when X has an intent (Pending) or is not active.
//   - A write runs on a context whose deadline is the registration's
//     expiry as this process knows it (minus a margin), so no write of
//     ours can land after our registration has expired.
//   - A rename or delete writes its intent first, then calls Quiesce, which
//     waits until no live registration of X made before it started exists
//     (plus a margin for clocks). A holder stops renewing and deletes its
//     registration once it sees the intent and its writes in flight have
//     ended; one whose process died expires within the TTL.
//
// Any write is therefore either refused, because it resolved X after the
// intent was written, or covered by a registration that was live when the
// intent was written and that stays live until the write has ended — and
// Quiesce waits for those. Registrations made after the intent cannot
// write, which is why Quiesce may ignore them and cannot be starved by
// clients that keep retrying. Expiry compares the clocks of instances: as
// for leases, instances sharing a database should run NTP.
//
// Each registration has a key of its own (a sequence number per process),
// never renewed once this process found it expired, so that the clean-up
// of expired registrations (a delete, not atomic on FerretDB against a
// concurrent renewal) can never remove a live one.

// registry holds this process's writer registrations, one per
// organization it is writing to.
type registry struct {
	store    Registrations
	dir      Directory
	log      *slog.Logger
	ttl      time.Duration
	instance string
	seq      atomic.Int64

	mu      sync.Mutex
	holders map[string]*holder
	refused map[string]time.Time // organizations seen with an intent: writes refused without asking until then
	closed  bool
	wg      sync.WaitGroup
	stop    chan struct{}
	ctx     context.Context // of the renewals, cancelled by close
	cancel  context.CancelFunc
}

// holder is one registration of this process.
type holder struct {
	orgID      string
	key        string
	ready      chan struct{} // closed once the insert has answered
	err        error         // of the insert
	validUntil time.Time     // writes under it must end by then
	renewedAt  time.Time
	inflight   int
	lastUse    time.Time
	dropped    bool // no new write may use it; deleted once inflight is 0
	deleted    bool
	// lingerUntil keeps a dropped registration renewed and in place: a write
	// under it ended without an answer (a timeout), so the server may still
	// be carrying it out, and Quiesce must go on waiting for it a while.
	lingerUntil time.Time
}

func newRegistry(store Registrations, dir Directory, log *slog.Logger, ttl time.Duration, instance string) *registry {
	ctx, cancel := context.WithCancel(context.Background())
	return &registry{
		store: store, dir: dir, log: log, ttl: ttl, instance: instance,
		holders: map[string]*holder{}, refused: map[string]time.Time{}, stop: make(chan struct{}),
		ctx: ctx, cancel: cancel,
	}
}

// Timings derived from the TTL.
func (r *registry) margin() time.Duration     { return r.ttl / 5 }  // kept free between a write's deadline and the expiry
func (r *registry) renewEvery() time.Duration { return r.ttl / 3 }  // as leases are
func (r *registry) idleAfter() time.Duration  { return r.ttl / 2 }  // a registration nobody used for this long is dropped
func (r *registry) refuseFor() time.Duration  { return r.ttl / 15 } // how long a seen intent is trusted without asking
func (r *registry) checkEvery() time.Duration {
	return min(max(r.ttl/20, 20*time.Millisecond), time.Second)
}

// acquire returns a registration of this process for orgID under which a
// write may run until the deadline returned, registering first when there
// is none. The caller must release it. errs.Busy when orgID was recently
// seen with an intent.
func (r *registry) acquire(ctx context.Context, orgID string) (*holder, time.Time, error) {
	for {
		now := time.Now()
		r.mu.Lock()
		if r.closed {
			r.mu.Unlock()
			return nil, time.Time{}, errs.Errorf(errs.Unavailable, "the service is shutting down")
		}
		if until, ok := r.refused[orgID]; ok {
			if now.Before(until) {
				r.mu.Unlock()
				return nil, time.Time{}, busy()
			}
			delete(r.refused, orgID)
		}
		h := r.holders[orgID]
		if h == nil {
			h = &holder{orgID: orgID, key: fmt.Sprintf("%s/%s/%d", orgID, r.instance, r.seq.Add(1)), ready: make(chan struct{})}
			r.holders[orgID] = h
			r.mu.Unlock()
			if err := r.register(ctx, h); err != nil {
				return nil, time.Time{}, err
			}
			continue
		}
		select {
		case <-h.ready:
		default:
			r.mu.Unlock()
			select {
			case <-h.ready:
			case <-ctx.Done():
				return nil, time.Time{}, ctx.Err()
			}
			continue
		}
		if h.err != nil { // the insert failed; its caller reports it, we try again
			r.mu.Unlock()
			continue
		}
		if !now.Before(h.validUntil) {
			// Not renewed in time: never renewed again, a new one replaces it.
			r.dropLocked(h)
			r.mu.Unlock()
			continue
		}
		h.inflight++
		h.lastUse = now
		deadline := h.validUntil
		r.mu.Unlock()
		return h, deadline, nil
	}
}

// register inserts h's registration and starts renewing it.
func (r *registry) register(ctx context.Context, h *holder) error {
	sent := time.Now()
	err := r.store.Register(ctx, Registration{
		Key: h.key, OrgID: h.orgID, RegisteredAt: sent.UTC(), ExpiresAt: sent.Add(r.ttl).UTC(),
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	h.err = err
	if err != nil {
		if r.holders[h.orgID] == h {
			delete(r.holders, h.orgID)
		}
		close(h.ready)
		return err
	}
	h.validUntil = sent.Add(r.ttl - r.margin())
	h.renewedAt = sent
	h.lastUse = sent
	close(h.ready)
	if r.closed { // closed while registering: nothing renews it
		r.dropLocked(h)
		h.deleted = true
		go r.unregister(h)
		return errs.Errorf(errs.Unavailable, "the service is shutting down")
	}
	r.wg.Add(1)
	go r.keep(h)
	return nil
}

// release ends a write under h. intent reports that the write found the
// organization with an intent (or gone): the registration is then dropped
// and writes are refused for a moment without asking.
func (r *registry) release(h *holder, intent bool) {
	r.mu.Lock()
	h.inflight--
	if intent {
		r.refused[h.orgID] = time.Now().Add(r.refuseFor())
		r.dropLocked(h)
	}
	del := r.takeDeleteLocked(h)
	r.mu.Unlock()
	if del {
		r.unregister(h)
	}
}

// dropLocked stops new writes from using h.
func (r *registry) dropLocked(h *holder) {
	h.dropped = true
	if r.holders[h.orgID] == h {
		delete(r.holders, h.orgID)
	}
}

// linger drops h after a write under it ended without an answer, keeping
// its registration renewed for one more TTL, for the write the server may
// still be carrying out.
func (r *registry) linger(h *holder) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h.lingerUntil = time.Now().Add(r.ttl)
	r.dropLocked(h)
}

// takeDeleteLocked reports whether h is to be deleted now, by the caller.
func (r *registry) takeDeleteLocked(h *holder) bool {
	if h.dropped && h.inflight == 0 && !h.deleted && !time.Now().Before(h.lingerUntil) {
		h.deleted = true
		return true
	}
	return false
}

func (r *registry) unregister(h *holder) {
	ctx, cancel := context.WithTimeout(r.ctx, r.ttl)
	defer cancel()
	if err := r.store.Remove(ctx, h.key); err != nil {
		r.log.Warn("delete writer registration; it expires on its own", slog.String("org_id", h.orgID), slog.Any("error", err))
	}
}

// keep renews h while it is in use and the organization has no intent,
// and deletes it once it is dropped and idle.
func (r *registry) keep(h *holder) {
	defer r.wg.Done()
	t := time.NewTicker(r.checkEvery())
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		now := time.Now()
		r.mu.Lock()
		if !h.dropped && h.inflight == 0 && now.Sub(h.lastUse) > r.idleAfter() {
			r.dropLocked(h)
		}
		lingering := now.Before(h.lingerUntil)
		if h.dropped && !lingering {
			del := r.takeDeleteLocked(h)
			done := h.deleted
			r.mu.Unlock()
			if del {
				r.unregister(h)
			}
			if done {
				return
			}
			continue
		}
		due := now.Sub(h.renewedAt) >= r.renewEvery()
		r.mu.Unlock()
		if lingering { // no write may use it; only kept in place
			if due {
				r.renew(h)
			}
			continue
		}

		if o, err := active(r.dir, h.orgID); errs.Is(err, errs.NotFound) || err == nil && o.Pending != nil {
			r.mu.Lock()
			r.refused[h.orgID] = time.Now().Add(r.refuseFor())
			r.dropLocked(h)
			del := r.takeDeleteLocked(h)
			r.mu.Unlock()
			if del {
				r.unregister(h)
				return
			}
			continue
		}
		if due {
			r.renew(h)
		}
	}
}

// renew extends h's registration by a TTL from now.
func (r *registry) renew(h *holder) {
	ctx, cancel := context.WithTimeout(r.ctx, r.ttl-r.margin())
	defer cancel()
	sent := time.Now()
	err := r.store.Renew(ctx, h.key, sent.Add(r.ttl).UTC())
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case err == nil && (sent.Before(h.validUntil) || h.dropped):
		h.validUntil = sent.Add(r.ttl - r.margin())
		h.renewedAt = sent
	case err == nil: // renewed too late to count: our writes have stopped
		r.dropLocked(h)
	case errs.Is(err, errs.NotFound):
		r.dropLocked(h)
		h.lingerUntil = time.Time{}
	default:
		r.log.Warn("renew writer registration", slog.String("org_id", h.orgID), slog.Any("error", err))
	}
}

// drain makes this process stop writing to orgID at once: an operation on
// it has written its intent.
func (r *registry) drain(orgID string) {
	r.mu.Lock()
	r.refused[orgID] = time.Now().Add(r.refuseFor())
	var del bool
	h := r.holders[orgID]
	if h != nil {
		r.dropLocked(h)
		del = r.takeDeleteLocked(h)
	}
	r.mu.Unlock()
	if del {
		r.unregister(h)
	}
}

// quiesce waits until no registration of orgID made before it started
// (give or take skew) is live. errs.Busy when that takes longer than
// maxWait.
func (r *registry) quiesce(ctx context.Context, orgID string, skew, maxWait time.Duration) error {
	r.drain(orgID)
	start := time.Now()
	cutoff := start.Add(skew)
	for {
		regs, err := r.store.Of(ctx, orgID)
		if err != nil {
			return err
		}
		now := time.Now()
		live := 0
		// An expired registration is a writer that died mid-write: it is
		// left for the usage recount, which removes it once it has counted
		// what its writes did (usage.Ledger.Recounted).
		for _, g := range regs {
			if g.ExpiresAt.After(now) && g.RegisteredAt.Before(cutoff) {
				live++
			}
		}
		if live == 0 {
			return nil
		}
		if now.Sub(start) > maxWait {
			return errs.Errorf(errs.Busy, "writes to the organization's documents are still in flight; retry shortly")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(r.checkEvery(), 50*time.Millisecond)):
		}
	}
}

// close stops renewing and deletes every registration of this process.
func (r *registry) close(ctx context.Context) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	close(r.stop)
	r.cancel()
	r.mu.Unlock()
	r.wg.Wait()
	r.mu.Lock()
	var all []*holder
	for _, h := range r.holders {
		all = append(all, h)
	}
	r.holders = map[string]*holder{}
	r.mu.Unlock()
	for _, h := range all {
		if err := r.store.Remove(ctx, h.key); err != nil {
			r.log.Warn("delete writer registration at shutdown", slog.String("org_id", h.orgID), slog.Any("error", err))
		}
	}
}

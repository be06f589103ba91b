package document

import (
	"context"

	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/org"
)

// Quota is the usage ledger as the document writes use it (usage.Ledger is
// one): a write reserves what it adds before it writes, within the
// organization's quotas, and frees what it removed after. A count can so
// only be too high, never too low, when a write's outcome is lost.
type Quota interface {
	// Reserve takes room for ds, in order, within q: all of them, or with
	// prefix the longest prefix that fits; it returns how many it took.
	// Errors: errs.QuotaExceeded (the first that did not fit), errs.Busy,
	// errs.Unavailable.
	Reserve(ctx context.Context, orgID string, q org.Quotas, ds []org.Usage, prefix bool) (int, error)
	// Credit applies d, unchecked: what a write freed, or a reservation
	// given back.
	Credit(ctx context.Context, orgID string, d org.Usage) error
	// Suspect marks the organization's count for a recount: a write ended
	// without an answer.
	Suspect(ctx context.Context, orgID string)
}

// StoredSize is what a document counts for in the storage quota: the bytes
// of its JSON as the API returns it and an export writes it — id, data,
// version and times. It is computed from the document alone, so a recount
// (Measure) finds exactly what the writes counted, on any database.
func StoredSize(d *Document) int64 { return int64(len(d.AppendJSON(nil))) }

// usageOf is what d counts for: one document of its stored size.
func usageOf(d *Document) org.Usage { return org.Usage{Documents: 1, StorageBytes: StoredSize(d)} }

// growth and shrinkage split a change of usage into what it adds, which
// is reserved before the write, and what it frees, credited after.
func growth(d org.Usage) org.Usage {
	return org.Usage{Documents: max(d.Documents, 0), StorageBytes: max(d.StorageBytes, 0)}
}

func shrinkage(d org.Usage) org.Usage {
	return org.Usage{Documents: min(d.Documents, 0), StorageBytes: min(d.StorageBytes, 0)}
}

func negate(d org.Usage) org.Usage {
	return org.Usage{Documents: -d.Documents, StorageBytes: -d.StorageBytes}
}

func (d Deps) quota() Quota {
	if d.Quota == nil {
		return nopQuota{}
	}
	return d.Quota
}

type nopQuota struct{}

func (nopQuota) Reserve(_ context.Context, _ string, _ org.Quotas, ds []org.Usage, _ bool) (int, error) {
	return len(ds), nil
}
func (nopQuota) Credit(context.Context, string, org.Usage) error { return nil }
func (nopQuota) Suspect(context.Context, string)                 {}

// quotas returns the principal's organization's quotas as the directory
// holds them now.
func (s *Service) quotas(orgID string) (org.Quotas, error) {
	o, err := s.dir.ByID(orgID)
	if err != nil {
		return org.Quotas{}, err
	}
	return org.EffectiveQuotas(o, s.cfg.quotas()), nil
}

// accounted runs write, which changes orgID's usage by d, under the quota:
// what d adds is reserved first (errs.QuotaExceeded, and nothing written,
// when it does not fit), then write runs, then its outcome is settled.
func (s *Service) accounted(ctx context.Context, orgID string, d org.Usage, write func() (landed bool, err error)) (bool, error) {
	if err := s.reserve(ctx, orgID, growth(d)); err != nil {
		return false, err
	}
	landed, err := write()
	s.settle(ctx, orgID, err, landed, growth(d), shrinkage(d))
	return landed, err
}

// reserve takes room for grow in orgID's count within its quotas, before
// the write that adds it. Errors: errs.QuotaExceeded, errs.Busy (the
// usage is being counted), errs.Unavailable.
func (s *Service) reserve(ctx context.Context, orgID string, grow org.Usage) error {
	if grow == (org.Usage{}) {
		return nil
	}
	q, err := s.quotas(orgID)
	if err != nil {
		return err
	}
	_, err = s.quota.Reserve(ctx, orgID, q, []org.Usage{grow}, false)
	return err
}

// settle accounts for a write's outcome: reserved was taken before it,
// freed is what it frees if it landed.
func (s *Service) settle(ctx context.Context, orgID string, err error, landed bool, reserved, freed org.Usage) {
	ctx = context.WithoutCancel(ctx)
	var change org.Usage
	switch {
	case uncertain(err):
		s.quota.Suspect(ctx, orgID)
		return
	case err == nil && landed:
		change = freed
	default: // it certainly did not land
		change = negate(reserved)
	}
	s.credit(ctx, orgID, change)
}

// credit applies change (nothing to free or give back: no write); should
// that fail, the count stays high by it until a recount, which the mark
// asks for.
func (s *Service) credit(ctx context.Context, orgID string, change org.Usage) {
	if change == (org.Usage{}) {
		return
	}
	ctx = context.WithoutCancel(ctx)
	if err := s.quota.Credit(ctx, orgID, change); err != nil {
		s.quota.Suspect(ctx, orgID)
	}
}

// insertWithin inserts the documents of an import batch, read from lines,
// that fit within the organization's quotas, in order: what they add is
// reserved first, the longest prefix that fits, and the reservations of
// documents the insert finds existing are given back — and with the room
// they leave, the lines that did not fit are tried again. Each line that
// still does not fit is rejected by its number, also one whose id exists
// (it would be skipped otherwise: telling them apart would read the
// collection for every batch past the quota, a scan on FerretDB).
func (s *Service) insertWithin(ctx context.Context, orgID, coll string, batch []*Document, lines []int, res *ImportResult, reject func(int, string)) error {
	q, err := s.quotas(orgID)
	if err != nil {
		return err
	}
	for len(batch) > 0 {
		us := make([]org.Usage, len(batch))
		for i, d := range batch {
			us[i] = usageOf(d)
		}
		k, qerr := s.quota.Reserve(ctx, orgID, q, us, true)
		if qerr != nil && !errs.Is(qerr, errs.QuotaExceeded) {
			return qerr
		}
		var existing []int
		if k > 0 {
			if existing, err = s.store.InsertMany(ctx, coll, batch[:k]); err != nil {
				// Some may have landed: the count stays high until a recount.
				s.quota.Suspect(context.WithoutCancel(ctx), orgID)
				return err
			}
			back := make([]org.Usage, len(existing))
			for j, i := range existing {
				back[j] = us[i]
			}
			s.credit(ctx, orgID, negate(sum(back)))
			res.Inserted += k - len(existing)
			res.SkippedExisting += len(existing)
		}
		if k == len(batch) || len(existing) == 0 { // all in, or no room came back
			for i := k; i < len(batch); i++ {
				reject(lines[i], problemText(qerr))
			}
			return nil
		}
		batch, lines = batch[k:], lines[k:]
	}
	return nil
}

func sum(us []org.Usage) org.Usage {
	var t org.Usage
	for _, u := range us {
		t.Documents += u.Documents
		t.StorageBytes += u.StorageBytes
	}
	return t
}

// Measure counts the documents of a tenant collection and their stored
// size, as the usage counts them: one read of every document. It
// implements org.Counter, for recounts. Errors: errs.Unavailable.
func (s *Service) Measure(ctx context.Context, coll string) (org.Usage, error) {
	var u org.Usage
	err := s.store.Each(ctx, coll, func(d *Document) error {
		u.Documents++
		u.StorageBytes += StoredSize(d)
		return nil
	})
	if errs.Is(err, errs.NotFound) {
		return org.Usage{}, nil
	}
	return u, err
}

var _ org.Counter = (*Service)(nil)

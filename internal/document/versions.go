package document

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/org"
)

// Versions under concurrency.
//
// A document moves from version v to v+1 only in the hands of whoever
// inserted the claim "<org id>/<doc id>/<created_at ms>/<v+1>" into
// doc_versions: the insert under a unique _id is the one write that is
// atomic on every server (on FerretDB a guarded update, filtered on
// {_id, version: v}, is not: two can both match and both write). Holding
// the claim, the writer updates the document filtered on its id, version
// and creation time, then deletes the claim. Of N writers that read
// version v, one claim succeeds and the others get 412 (with If-Match) or
// read again (without: last writer wins, and every successful write is a
// version of its own).
//
// The claim is needed only while its holder's update may still run: once
// the document is at v+1, a late writer that claims v+1 again updates
// nothing, because its filter asks for version v and no other update
// filtered on v can be running (the first holder's has been answered).
// The creation time in the key keeps a document deleted and created again
// from meeting the claims of its earlier life.
//
// A holder that dies between its claim and its update would leave the
// document unwritable. So the holder gives up its update at ClaimTTL/3
// after its claim (a context deadline), and a writer that finds a claim
// older than ClaimTTL takes over — by inserting the next generation of
// the key ("…/<v+1>~1"), not by deleting the old claim, because a delete
// racing a delete-and-insert could remove a live claim on FerretDB. When
// a holder's update fails without an answer it keeps its claim (the
// update may still be running on the server), which then blocks changes
// to that document for ClaimTTL at most. Expiry compares instances'
// clocks; two thirds of ClaimTTL are left for their skew and for an
// update the server is still executing after its client gave up.

// maxGenerations bounds the takeovers of one version's claim.
const maxGenerations = 8

// maxAttempts bounds how often a write without If-Match reads again after
// losing a version to a concurrent writer.
const maxAttempts = 20

func claimKey(orgID string, d *Document, version int64, gen int) string {
	k := fmt.Sprintf("%s/%s/%d/%d", orgID, d.ID, d.CreatedAt.UnixMilli(), version)
	if gen > 0 {
		k += fmt.Sprintf("~%d", gen)
	}
	return k
}

// claimNext takes the right to move cur to its next version. It returns
// the claim's key and time, or ok false when a live claim of another
// writer holds that version.
func (s *Service) claimNext(ctx context.Context, orgID string, cur *Document) (key string, at time.Time, ok bool, err error) {
	for gen := range maxGenerations {
		key = claimKey(orgID, cur, cur.Version+1, gen)
		at = time.Now()
		err = s.versions.Claim(ctx, key, at.UTC())
		if err == nil {
			return key, at, true, nil
		}
		if !errs.Is(err, errs.Conflict) {
			return "", time.Time{}, false, err
		}
		held, err := s.versions.ClaimedAt(ctx, key)
		switch {
		case errs.Is(err, errs.NotFound):
			return "", time.Time{}, false, nil // its holder just finished: the document has moved on
		case err != nil:
			return "", time.Time{}, false, err
		case time.Since(held) < s.cfg.ClaimTTL:
			return "", time.Time{}, false, nil
		}
		s.log.Warn("taking over a stale version claim", slog.String("claim", key))
	}
	return "", time.Time{}, false, nil
}

// change moves document id to a new version computed by next from the
// current one, under the version claim protocol above. With a strict
// If-Match (versions, not *), losing the version is a 412; otherwise it
// reads again. next returning nil data deletes the document.
func (s *Service) change(ctx context.Context, p org.Principal, id string, m Match, next func(cur *Document) (*Document, error)) (*Document, error) {
	if !ValidID(id) {
		return nil, notFound()
	}
	strict := m.Set() && !m.any
	var out *Document
	err := s.write(ctx, p, func(ctx context.Context, coll string) error {
		for attempt := 0; ; attempt++ {
			cur, err := s.store.Find(ctx, coll, id)
			if errs.Is(err, errs.NotFound) {
				return notFound()
			}
			if err != nil {
				return err
			}
			if !m.Matches(cur.Version) {
				return preconditionFailed()
			}
			d, err := next(cur)
			if err != nil {
				return err
			}
			key, at, ok, err := s.claimNext(ctx, p.OrgID, cur)
			if err != nil {
				return err
			}
			if ok {
				done, err := s.apply(ctx, p.OrgID, coll, cur, d, key, at)
				if err != nil {
					return err
				}
				if done {
					out = d
					return nil
				}
			}
			if strict {
				return preconditionFailed()
			}
			if attempt+1 >= maxAttempts {
				return errs.Errorf(errs.Conflict, "the document is being changed by others; retry")
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(1+rand.IntN(4<<min(attempt, 4))) * time.Millisecond):
			}
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// apply writes d over cur (or deletes cur when d is nil) holding the claim
// key taken at at, under the quota, and frees the claim once the write has
// been answered.
func (s *Service) apply(ctx context.Context, orgID, coll string, cur, d *Document, key string, at time.Time) (bool, error) {
	wctx, cancel := context.WithDeadline(ctx, at.Add(s.cfg.ClaimTTL/3))
	defer cancel()
	change := negate(usageOf(cur))
	if d != nil {
		change = org.Usage{StorageBytes: StoredSize(d) - StoredSize(cur)}
	}
	if err := s.reserve(ctx, orgID, growth(change)); err != nil {
		s.releaseClaim(ctx, key) // refused before writing
		return false, err
	}
	var done bool
	var err error
	if d == nil {
		done, err = s.store.Delete(wctx, coll, cur)
	} else {
		done, err = s.store.Replace(wctx, coll, d, cur.Version)
	}
	s.settle(ctx, orgID, err, done, growth(change), shrinkage(change))
	if err != nil {
		return false, err // the claim stays: the write may yet be running
	}
	s.releaseClaim(ctx, key)
	return done, nil
}

func (s *Service) releaseClaim(ctx context.Context, key string) {
	if err := s.versions.Release(context.WithoutCancel(ctx), key); err != nil {
		s.log.Warn("free version claim", slog.String("claim", key), slog.Any("error", err))
	}
}

// Replace replaces the data of document id, which moves to the next
// version. A top-level "id" in data must be the document's own and is not
// kept. Errors: errs.NotFound, errs.Precondition (If-Match does not match,
// or another writer took the version), errs.Invalid, errs.TooLarge,
// errs.QuotaExceeded (the data grows past the storage quota),
// errs.Conflict (no If-Match, and others kept winning), errs.Busy,
// errs.Unauthorized, errs.Unavailable.
func (s *Service) Replace(ctx context.Context, p org.Principal, id string, data Object, m Match) (*Document, error) {
	data, bodyID, given, err := takeID(data)
	if err != nil {
		return nil, err
	}
	if given && bodyID != id {
		return nil, fieldErr("id", "must be the id in the URL, or absent")
	}
	if err := s.checkSize(data); err != nil {
		return nil, err
	}
	return s.change(ctx, p, id, m, func(cur *Document) (*Document, error) {
		return &Document{ID: id, Data: data, Version: cur.Version + 1, CreatedAt: cur.CreatedAt, UpdatedAt: now()}, nil
	})
}

// Patch applies an RFC 7396 merge patch to the data of document id, which
// moves to the next version. A top-level "id" in the patch must be the
// document's own. Errors: as Replace; errs.Invalid and errs.TooLarge also
// for what the patch makes of the data (nesting, size).
func (s *Service) Patch(ctx context.Context, p org.Principal, id string, patch Object, m Match) (*Document, error) {
	patch, bodyID, given, err := takeID(patch)
	if err != nil {
		return nil, err
	}
	if given && bodyID != id {
		return nil, fieldErr("id", "must be the id in the URL, or absent")
	}
	return s.change(ctx, p, id, m, func(cur *Document) (*Document, error) {
		data := MergePatch(cur.Data, patch)
		if depth(data) > MaxDepth {
			return nil, fieldErr("data", "would nest deeper than %d levels", MaxDepth)
		}
		if err := s.checkSize(data); err != nil {
			return nil, err
		}
		return &Document{ID: id, Data: data, Version: cur.Version + 1, CreatedAt: cur.CreatedAt, UpdatedAt: now()}, nil
	})
}

// Delete removes document id. Errors: errs.NotFound, errs.Precondition,
// errs.Conflict, errs.Busy, errs.Unauthorized, errs.Unavailable.
func (s *Service) Delete(ctx context.Context, p org.Principal, id string, m Match) error {
	_, err := s.change(ctx, p, id, m, func(*Document) (*Document, error) { return nil, nil })
	return err
}

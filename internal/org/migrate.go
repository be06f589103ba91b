package org

import (
	"context"
	"errors"
	"log/slog"

	"github.com/orgservice/orgservice/internal/errs"
)

// MigrateMembers stores the members of every organization written before
// members existed: its admin becomes its owner, under the organization's
// id, with its password hash and token version (tokens issued before keep
// working). Reads already see them so (MembersOf); this makes it durable.
// It is idempotent, and skips an organization another operation holds,
// which a later start migrates. Errors: errs.Unavailable, errs.Internal.
func (s *Service) MigrateMembers(ctx context.Context) error {
	ids, err := s.meta.Unmigrated(ctx)
	if err != nil {
		return err
	}
	var failed []error
	for _, id := range ids {
		err := s.withLease(ctx, id, func(ctx context.Context) error {
			o, err := s.meta.ByID(ctx, id)
			if err != nil {
				if errs.Is(err, errs.NotFound) {
					return nil
				}
				return err
			}
			ms := MembersOf(o)
			if len(ms) == 0 {
				return nil
			}
			return s.meta.Update(ctx, id, withMembers(Changes{UpdatedAt: o.UpdatedAt}, ms))
		})
		switch {
		case errs.Is(err, errs.Busy):
			s.log.Info("members migration: organization busy, left for later", slog.String("org_id", id))
		case err != nil:
			failed = append(failed, err)
		default:
			s.log.Info("members migration: admin is now owner", slog.String("org_id", id))
		}
	}
	return errors.Join(failed...)
}

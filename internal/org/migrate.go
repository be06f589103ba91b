package org

import (
	"context"
	"errors"
	"log/slog"
)

// MigrateMembers stores the members of every organization written before
// members existed: its admin becomes its owner, under the organization's
// id, with its password hash and token version (tokens issued before keep
// working). Reads already see them so (MembersOf); this makes it durable.
// It is idempotent, and skips an organization another operation holds,
// which a later start migrates. Errors: KindUnavailable, KindInternal.
func (s *Service) MigrateMembers(ctx context.Context) error {
	ids, err := s.store.Unmigrated(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		err := s.withLease(ctx, id, func(ctx context.Context) error {
			o, err := s.store.OrgByID(ctx, id)
			if err != nil {
				if IsKind(err, KindNotFound) {
					return nil
				}
				return err
			}
			ms := MembersOf(o)
			if len(ms) == 0 {
				return nil
			}
			return s.store.UpdateOrg(ctx, id, withMembers(Changes{UpdatedAt: o.UpdatedAt}, ms))
		})
		switch {
		case IsKind(err, KindBusy):
			s.log.Info("members migration: organization busy, left for later", slog.String("org_id", id))
		case err != nil:
			errs = append(errs, err)
		default:
			s.log.Info("members migration: admin is now owner", slog.String("org_id", id))
		}
	}
	return errors.Join(errs...)
}

package org

import (
	"context"

	"github.com/orgservice/orgservice/internal/errs"
)

// verified is the current password a change of credentials was checked
// with, and the hash it matched.
type verified struct {
	hash, password string
}

// reauthenticate checks the principal's current password before a change
// of its credentials, as the principal's member is now (allowed to do a).
// A stolen access token alone cannot change them (OWASP Authentication
// Cheat Sheet, "Require Re-authentication for Sensitive Features").
// Errors: errs.Forbidden (a wrong password, recorded as a failed login;
// or the role), errs.Unauthorized, errs.Unavailable.
func (s *Service) reauthenticate(ctx context.Context, p Principal, a Action, current string) (verified, error) {
	o, me, err := s.actingNow(ctx, p, a)
	if err != nil {
		return verified{}, err
	}
	if err := s.checkPassword(ctx, o, me, current); err != nil {
		return verified{}, err
	}
	return verified{hash: me.PasswordHash, password: current}, nil
}

// stillVerified checks v once more against me as read under the lease: a
// change of me's password since v was checked needs v checked again.
func (s *Service) stillVerified(ctx context.Context, o *Organization, me *Member, v verified) error {
	if v.password == "" || me.PasswordHash == v.hash {
		return nil
	}
	return s.checkPassword(ctx, o, me, v.password)
}

// checkPassword compares password with me's. A mismatch is a failed login
// of me: recorded, and limited with the logins by the caller's rate
// limits. Errors: errs.Forbidden, errs.Unavailable.
func (s *Service) checkPassword(ctx context.Context, o *Organization, me *Member, password string) error {
	ok, err := s.hasher.Compare(me.PasswordHash, password)
	if err != nil {
		if errs.KindOf(err) != errs.Internal {
			return err
		}
		return errs.Wrap(errs.Internal, err, "check password")
	}
	if ok {
		return nil
	}
	if err := s.RecordLoginFailure(ctx, o, me, "wrong current password"); err != nil {
		return err
	}
	return errs.Errorf(errs.Forbidden, "current_password is wrong")
}

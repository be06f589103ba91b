package org

import (
	"context"
	"slices"
	"time"

	"github.com/orgservice/orgservice/internal/errs"
)

// AddMemberInput is a new member of the principal's organization.
type AddMemberInput struct {
	Email    string
	Password string
	Role     Role
}

// SelfUpdate holds a member's own new email or password; nil fields are
// left as they are. CurrentPassword is required.
type SelfUpdate struct {
	Email           *string
	Password        *string
	CurrentPassword *string
}

func memberNotFound() error { return errs.Errorf(errs.NotFound, "member not found") }

func lastOwner() error {
	return errs.Errorf(errs.Conflict, "an organization must keep at least one owner: make another member owner first")
}

// acting returns the principal as o's member now, allowed to do a.
// errs.Unauthorized when the member is gone, errs.Forbidden when its role
// (read afresh) may not do a.
func acting(o *Organization, p Principal, a Action) (*Member, error) {
	me := MemberByID(o, p.MemberID)
	if me == nil {
		return nil, errs.Errorf(errs.Unauthorized, "the token's member is no longer in the organization")
	}
	return me, Authorize(me.Role, a)
}

// Members lists the principal's organization's members, from the directory.
// Errors: errs.Forbidden (a member), errs.Unauthorized, errs.Unavailable.
func (s *Service) Members(ctx context.Context, p Principal) ([]Member, error) {
	o, _, err := s.actingNow(ctx, p, ActListMembers)
	if err != nil {
		return nil, err
	}
	return slices.Clone(MembersOf(o)), nil
}

// Me returns the principal as a member. Errors: errs.Unauthorized, errs.Unavailable.
func (s *Service) Me(ctx context.Context, p Principal) (*Member, error) {
	_, me, err := s.actingNow(ctx, p, ActSelf)
	if err != nil {
		return nil, err
	}
	return me, nil
}

// actingNow is acting on the principal's organization as the directory
// holds it now. Errors: errs.Unauthorized (organization or member gone),
// errs.Forbidden, errs.Unavailable.
func (s *Service) actingNow(ctx context.Context, p Principal, a Action) (*Organization, *Member, error) {
	o, err := s.ByID(ctx, p.OrgID)
	if errs.Is(err, errs.NotFound) {
		return nil, nil, errs.Errorf(errs.Unauthorized, "the organization no longer exists")
	}
	if err != nil {
		return nil, nil, err
	}
	me, err := acting(o, p, a)
	return o, me, err
}

// memberWrite runs fn on the principal's organization, read afresh under
// its lease, and writes the members it returns in one metadata write,
// together with the event fn returns; then it inserts the event. When fn
// returns no event, nothing changed and nothing is written.
func (s *Service) memberWrite(ctx context.Context, p Principal, fn func(ctx context.Context, o *Organization, ms []Member) ([]Member, Event, error)) error {
	return s.detached(ctx, func(ctx context.Context) error {
		return s.withLease(ctx, p.OrgID, func(ctx context.Context) error {
			o, err := s.settled(ctx, p.OrgID)
			if err != nil {
				return err
			}
			ms, ev, err := fn(ctx, o, slices.Clone(MembersOf(o)))
			if err != nil || ev.ID == "" { // no event: nothing changed
				return err
			}
			now := time.Now().UTC().Truncate(time.Millisecond)
			c := withMembers(Changes{UpdatedAt: now, AuditPending: []Event{ev}, SetAuditPending: true}, ms)
			if err := s.meta.Update(ctx, o.ID, c); err != nil {
				return err
			}
			o.AuditPending = c.AuditPending
			if err := s.step("member:written"); err != nil {
				return err
			}
			return s.commitAudit(ctx, o)
		})
	})
}

// AddMember adds a member to the principal's organization. Its email is
// claimed service-wide first, then the member is written; an admin may
// not add an owner. Errors: errs.Invalid, errs.QuotaExceeded (the members
// quota is reached), errs.Forbidden, errs.Conflict (email taken anywhere), errs.Busy,
// errs.Unauthorized, errs.Unavailable.
func (s *Service) AddMember(ctx context.Context, p Principal, in AddMemberInput) (*Member, error) {
	var fe fieldErrors
	email := checkEmail(&fe, "email", in.Email)
	checkPassword(&fe, "password", in.Password)
	checkRole(&fe, in.Role)
	if err := fe.err(); err != nil {
		return nil, err
	}
	hash, err := s.hasher.Hash(in.Password)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "hash password")
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	m := Member{ID: s.meta.NewID(), Email: email, PasswordHash: hash, Role: in.Role, CreatedAt: now, UpdatedAt: now}
	err = s.memberWrite(ctx, p, func(ctx context.Context, o *Organization, ms []Member) ([]Member, Event, error) {
		me, err := acting(o, p, ActAddMember)
		if err != nil {
			return nil, Event{}, err
		}
		if m.Role == RoleOwner && me.Role != RoleOwner {
			return nil, Event{}, errs.Errorf(errs.Forbidden, "an admin may not add an owner")
		}
		// Exact under any concurrency: members are written under the
		// organization's lease, one change at a time.
		if q := EffectiveQuotas(o, s.quotas).Members; int64(len(ms)) >= q {
			return nil, Event{}, errs.OverQuota(QuotaMembers, q, int64(len(ms)))
		}
		if err := s.claimEmail(ctx, o, m.Email); err != nil {
			return nil, Event{}, err
		}
		// The claim is the last step before the write. Should the write
		// fail, it may still have happened (a timeout), so the claim is
		// not released here: the reconciler frees it if no member uses it.
		ev := newEvent(ctx, o, me, EventMemberAdded, memberTarget(&m), map[string]string{"role": string(m.Role)})
		return append(ms, m), ev, nil
	})
	if err != nil {
		return nil, err
	}
	return &m, nil
}

// SetRole changes member id's role; only an owner may. The last owner
// cannot be demoted. Errors: errs.Invalid, errs.Forbidden, errs.NotFound (no
// such member in the organization), errs.Conflict (last owner), errs.Busy,
// errs.Unauthorized, errs.Unavailable.
func (s *Service) SetRole(ctx context.Context, p Principal, id string, role Role) (*Member, error) {
	var fe fieldErrors
	checkRole(&fe, role)
	if err := fe.err(); err != nil {
		return nil, err
	}
	var out Member
	err := s.memberWrite(ctx, p, func(ctx context.Context, o *Organization, ms []Member) ([]Member, Event, error) {
		me, err := acting(o, p, ActSetRole)
		if err != nil {
			return nil, Event{}, err
		}
		i := slices.IndexFunc(ms, func(m Member) bool { return m.ID == id })
		if i < 0 {
			return nil, Event{}, memberNotFound()
		}
		if ms[i].Role == role { // nothing changes, nothing is recorded
			out = ms[i]
			return nil, Event{}, nil
		}
		if ms[i].Role == RoleOwner && role != RoleOwner && countOwners(ms) == 1 {
			return nil, Event{}, lastOwner()
		}
		ev := newEvent(ctx, o, me, EventRoleChanged, memberTarget(&ms[i]), map[string]string{"from": string(ms[i].Role), "to": string(role)})
		ms[i].Role = role
		ms[i].UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)
		out = ms[i]
		return ms, ev, nil
	})
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// RemoveMember removes member id from the principal's organization: its
// tokens are refused from the next request on, and its email is freed. An
// admin may remove members and admins, only an owner an owner; the last
// owner cannot be removed. Errors: errs.Forbidden, errs.NotFound,
// errs.Conflict (last owner), errs.Busy, errs.Unauthorized, errs.Unavailable.
func (s *Service) RemoveMember(ctx context.Context, p Principal, id string) error {
	var gone Member
	err := s.memberWrite(ctx, p, func(ctx context.Context, o *Organization, ms []Member) ([]Member, Event, error) {
		me, err := acting(o, p, ActRemoveMember)
		if err != nil {
			return nil, Event{}, err
		}
		i := slices.IndexFunc(ms, func(m Member) bool { return m.ID == id })
		if i < 0 {
			return nil, Event{}, memberNotFound()
		}
		if ms[i].Role == RoleOwner && me.Role != RoleOwner {
			return nil, Event{}, errs.Errorf(errs.Forbidden, "an admin may not remove an owner")
		}
		if ms[i].Role == RoleOwner && countOwners(ms) == 1 {
			return nil, Event{}, lastOwner()
		}
		gone = ms[i]
		ev := newEvent(ctx, o, me, EventMemberRemoved, memberTarget(&gone), map[string]string{"role": string(gone.Role)})
		return slices.Delete(ms, i, i+1), ev, nil
	})
	if err != nil {
		return err
	}
	// After the write: a crash before this leaves a claim its holder no
	// longer uses, which the reconciler frees.
	s.release(ctx, p.OrgID, emailKey(gone.Email))
	return nil
}

// UpdateMe changes the principal's own email or password, given its
// current password; the principal's tokens issued before die, nobody
// else's, and its sessions but the one making the change. Their own email
// again changes nothing, as PUT /org/update does. Errors: errs.Invalid
// (incl. current_password missing), errs.Forbidden (a wrong current
// password), errs.Conflict (email taken), errs.Busy, errs.Unauthorized,
// errs.Unavailable.
func (s *Service) UpdateMe(ctx context.Context, p Principal, in SelfUpdate) (*Member, error) {
	var fe fieldErrors
	var email, current string
	switch {
	case in.Email == nil && in.Password == nil:
		fe.add("", "at least one of email or password is required")
	default:
		if in.Email != nil {
			email = checkEmail(&fe, "email", *in.Email)
		}
		if in.Password != nil {
			checkPassword(&fe, "password", *in.Password)
		}
		current = checkCurrent(&fe, in.CurrentPassword, true)
	}
	if err := fe.err(); err != nil {
		return nil, err
	}
	re, err := s.reauthenticate(ctx, p, ActSelf, current)
	if err != nil {
		return nil, err
	}
	var hash string
	if in.Password != nil {
		if hash, err = s.hasher.Hash(*in.Password); err != nil {
			return nil, errs.Wrap(errs.Internal, err, "hash password")
		}
	}
	var out Member
	var oldEmail, newEmail string
	err = s.memberWrite(ctx, p, func(ctx context.Context, o *Organization, ms []Member) ([]Member, Event, error) {
		me, err := acting(o, p, ActSelf)
		if err != nil {
			return nil, Event{}, err
		}
		if err := s.stillVerified(ctx, o, me, re); err != nil {
			return nil, Event{}, err
		}
		if email != "" && email != me.Email {
			if err := s.claimEmail(ctx, o, email); err != nil {
				return nil, Event{}, err
			}
			oldEmail, newEmail = me.Email, email
		}
		if newEmail == "" && hash == "" { // their own email again: nothing to change or revoke
			out = *me
			return nil, Event{}, nil
		}
		ev := credentialsEvent(ctx, o, me, newEmail, hash != "")
		ms = changeCredentials(ms, me.ID, newEmail, hash, p.SessionID, time.Now().UTC().Truncate(time.Millisecond))
		out = *MemberByID(&Organization{Members: ms}, me.ID)
		return ms, ev, nil
	})
	if err != nil {
		return nil, err // a new email's claim, if unused, is the reconciler's to free
	}
	if newEmail != "" {
		s.release(ctx, p.OrgID, emailKey(oldEmail))
	}
	return &out, nil
}

func checkRole(fe *fieldErrors, r Role) {
	if !r.Valid() {
		fe.add("role", "must be one of owner, admin, member")
	}
}

// claimEmail claims email for a member of o. A claim is o's own whoever in
// o holds it, so another member of o with that email is a conflict too.
func (s *Service) claimEmail(ctx context.Context, o *Organization, email string) error {
	if MemberByEmail(o, email) != nil {
		return errs.Errorf(errs.Conflict, "this email is already registered")
	}
	return s.claim(ctx, emailKey(email), o.ID, "this email is already registered")
}

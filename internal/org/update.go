package org

import (
	"context"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/orgservice/orgservice/internal/errs"
)

// Update changes the name of the principal's own organization, or the
// principal's own email or password; only an owner may, and only with the
// current password for the email or password (checked whenever given). A rename moves the tenant collection to the new name's
// collection with every document; it is written as an intent first, so a
// crash at any step is rolled forward by the reconciler. Changing the email
// or the password revokes the principal's tokens issued before, nobody
// else's; renaming revokes nothing.
// Errors: errs.Invalid (incl. current_password missing), errs.Forbidden (not
// an owner, or a wrong current password), errs.Conflict (name or
// email taken), errs.Busy (another
// operation in progress), errs.Unauthorized (organization gone),
// errs.Unavailable.
func (s *Service) Update(ctx context.Context, p Principal, in UpdateInput) (*Organization, error) {
	v, err := in.validate()
	if err != nil {
		return nil, err
	}
	var re verified
	if v.current != "" {
		if re, err = s.reauthenticate(ctx, p, ActUpdateOrg, v.current); err != nil {
			return nil, err
		}
	}
	var hash string
	if v.password != "" {
		if hash, err = s.hasher.Hash(v.password); err != nil {
			return nil, errs.Wrap(errs.Internal, err, "hash password")
		}
	}
	var out *Organization
	err = s.detached(ctx, func(ctx context.Context) error {
		return s.withLease(ctx, p.OrgID, func(ctx context.Context) error {
			o, err := s.settled(ctx, p.OrgID)
			if err != nil {
				return err
			}
			out, err = s.update(ctx, o, p, v, hash, re)
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// settled loads an organization under its lease and finishes any operation
// a crashed instance left pending on it. errs.Unauthorized when it is gone.
func (s *Service) settled(ctx context.Context, id string) (*Organization, error) {
	for range 3 {
		o, err := s.meta.ByID(ctx, id)
		if err != nil {
			if errs.Is(err, errs.NotFound) {
				return nil, errs.Errorf(errs.Unauthorized, "the organization no longer exists")
			}
			return nil, err
		}
		if o.Settled() {
			return o, nil
		}
		if err := s.resume(ctx, o); err != nil {
			return nil, err
		}
	}
	return nil, errs.Errorf(errs.Internal, "organization %s did not settle", id)
}

func (s *Service) update(ctx context.Context, o *Organization, p Principal, v validUpdate, hash string, re verified) (*Organization, error) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	me := MemberByID(o, p.MemberID)
	if me == nil {
		return nil, errs.Errorf(errs.Unauthorized, "the token's member no longer exists")
	}
	if err := Authorize(me.Role, ActUpdateOrg); err != nil {
		return nil, err
	}
	if err := s.stillVerified(ctx, o, me, re); err != nil {
		return nil, err
	}
	newEmail := ""
	if v.email != "" && v.email != me.Email {
		newEmail = v.email
		if err := s.claimEmail(ctx, o, newEmail); err != nil {
			return nil, err
		}
	}
	if v.slug != "" && v.slug != o.Slug {
		if err := s.claim(ctx, slugKey(v.slug), o.ID, "an organization with this name already exists"); err != nil {
			if newEmail != "" {
				s.release(ctx, o.ID, emailKey(newEmail))
			}
			return nil, err
		}
		if err := s.step("rename:claimed"); err != nil {
			return nil, err
		}
		// The target's name is ours now, so a collection already under it is
		// a leftover nobody owns; a resumed copy must never merge into it.
		if err := s.tenants.Drop(ctx, CollectionName(v.slug)); err != nil {
			s.release(ctx, o.ID, slugKey(v.slug))
			if newEmail != "" {
				s.release(ctx, o.ID, emailKey(newEmail))
			}
			return nil, err
		}
		intent := &Pending{
			Op: OpRename, StartedAt: now,
			FromSlug: o.Slug, ToSlug: v.slug, ToName: v.name,
			Source: o.CollectionName, Target: CollectionName(v.slug),
			MemberID: me.ID, FromEmail: me.Email, NewEmail: newEmail, NewPasswordHash: hash, SessionID: p.SessionID,
			Events: updateEvents(ctx, o, me, v.name, newEmail, hash != ""),
		}
		if err := s.meta.Update(ctx, o.ID, Changes{Pending: intent, SetPending: true, UpdatedAt: now}); err != nil {
			return nil, err
		}
		o.Pending = intent
		if err := s.step("rename:intent"); err != nil {
			return nil, err
		}
		if err := s.finishRename(ctx, o); err != nil {
			return nil, err
		}
		return s.meta.ByID(ctx, o.ID)
	}

	// No rename: one single-document write.
	c := Changes{UpdatedAt: now}
	if v.name != "" {
		c.Name = &v.name
	}
	if newEmail != "" || hash != "" {
		c = withMembers(c, changeCredentials(MembersOf(o), me.ID, newEmail, hash, p.SessionID, now))
	}
	if evs := updateEvents(ctx, o, me, v.name, newEmail, hash != ""); len(evs) > 0 {
		c.AuditPending, c.SetAuditPending = evs, true
	}
	if err := s.meta.Update(ctx, o.ID, c); err != nil {
		if newEmail != "" {
			s.release(ctx, o.ID, emailKey(newEmail))
		}
		return nil, err
	}
	o.AuditPending = c.AuditPending
	if err := s.commitAudit(ctx, o); err != nil {
		return nil, err
	}
	if newEmail != "" {
		s.release(ctx, o.ID, emailKey(me.Email))
	}
	return s.meta.ByID(ctx, o.ID)
}

// updateEvents are the events of an update of o by me: org.renamed when
// the name changes (its slug may stay), credentials.changed when me's
// email (newEmail, "" when it stays) or password changes.
func updateEvents(ctx context.Context, o *Organization, me *Member, name, newEmail string, password bool) []Event {
	var evs []Event
	if name != "" && name != o.Name {
		renamed := *o
		renamed.Name = name
		evs = append(evs, newEvent(ctx, o, me, EventOrgRenamed, orgTarget(&renamed),
			map[string]string{"from": o.Name, "to": name, "from_slug": o.Slug, "to_slug": Slug(name)}))
	}
	if newEmail != "" || password {
		evs = append(evs, credentialsEvent(ctx, o, me, newEmail, password))
	}
	return evs
}

// credentialsEvent is the credentials.changed event of me changing their
// own email (to newEmail, "" when it stays) or password.
func credentialsEvent(ctx context.Context, o *Organization, me *Member, newEmail string, password bool) Event {
	d := map[string]string{"password_changed": strconv.FormatBool(password), "email_changed": strconv.FormatBool(newEmail != "")}
	if newEmail != "" {
		d["from_email"], d["to_email"] = me.Email, newEmail
	}
	return newEvent(ctx, o, me, EventCredentialsChanged, memberTarget(me), d)
}

// changeCredentials returns ms with member id's email and password hash
// changed (empty: unchanged) and its token version bumped, so that its
// older tokens die and nobody else's, and its sessions with them but for
// session, the one making the change (OWASP Session Management Cheat
// Sheet: renew the session on a change of credentials; the caller renews
// its access token with its refresh token).
func changeCredentials(ms []Member, id, email, hash, session string, now time.Time) []Member {
	ms = slices.Clone(ms)
	for i := range ms {
		if ms[i].ID != id {
			continue
		}
		if email != "" {
			ms[i].Email = email
		}
		if hash != "" {
			ms[i].PasswordHash = hash
		}
		ms[i].TokenVersion++
		ms[i].KeptSession = session
		ms[i].UpdatedAt = now
	}
	return ms
}

// finishRename rolls a pending rename forward from wherever it stopped:
// move the data (idempotent), switch the metadata, drop the source (a copy
// leaves it until the switch), release the old claims, insert the intent's
// events, clear the intent. The caller holds the lease.
func (s *Service) finishRename(ctx context.Context, o *Organization) error {
	p := o.Pending
	if o.Slug != p.ToSlug { // not switched yet
		if err := s.writers.Quiesce(ctx, o.ID); err != nil {
			return err
		}
		start := time.Now()
		strategy, moved, err := s.move(ctx, o)
		if err != nil {
			return err
		}
		s.obs.Migrated(strategy, moved, time.Since(start))
		if err := s.step("rename:moved"); err != nil {
			return err
		}
		c := Changes{
			Name: &p.ToName, Slug: &p.ToSlug, CollectionName: &p.Target,
			Pending: p, SetPending: true, UpdatedAt: time.Now().UTC().Truncate(time.Millisecond),
		}
		if p.NewEmail != "" || p.NewPasswordHash != "" {
			id := p.MemberID
			if m := MemberByEmail(o, p.FromEmail); id == "" && m != nil {
				id = m.ID // an intent written before members: the admin's
			}
			c = withMembers(c, changeCredentials(MembersOf(o), id, p.NewEmail, p.NewPasswordHash, p.SessionID, c.UpdatedAt))
		}
		if err := s.meta.Update(ctx, o.ID, c); err != nil {
			return err
		}
		if err := s.step("rename:switched"); err != nil {
			return err
		}
	}
	// Switched: what is left is clean-up, safe to repeat.
	if err := s.tenants.Drop(ctx, p.Source); err != nil {
		return err
	}
	if err := s.step("rename:source-dropped"); err != nil {
		return err
	}
	if err := s.names.Release(ctx, slugKey(p.FromSlug), o.ID); err != nil {
		return err
	}
	if p.NewEmail != "" {
		if err := s.names.Release(ctx, emailKey(p.FromEmail), o.ID); err != nil {
			return err
		}
	}
	if err := s.step("rename:released"); err != nil {
		return err
	}
	if err := s.audit.Insert(ctx, p.Events); err != nil {
		return err
	}
	if err := s.step("rename:audited"); err != nil {
		return err
	}
	return s.meta.Update(ctx, o.ID, Changes{SetPending: true, UpdatedAt: time.Now().UTC().Truncate(time.Millisecond)})
}

// move brings the tenant data from p.Source to p.Target and returns the
// strategy used and how many documents were moved. Every branch is safe to
// run again after a crash at any point inside it.
func (s *Service) move(ctx context.Context, o *Organization) (Strategy, int64, error) {
	p := o.Pending
	srcOK, err := s.tenants.Exists(ctx, p.Source)
	if err != nil {
		return "", 0, err
	}
	tgtOK, err := s.tenants.Exists(ctx, p.Target)
	if err != nil {
		return "", 0, err
	}
	switch {
	case !srcOK && tgtOK: // moved already
		return s.cfg.Strategy, 0, nil
	case !srcOK && !tgtOK: // nothing to move: keep the invariant of one collection
		s.log.Warn("rename found no tenant collection; creating an empty one",
			slog.String("org_id", o.ID), slog.String("collection", p.Target))
		return s.cfg.Strategy, 0, s.tenants.Create(ctx, p.Target)
	case srcOK && !tgtOK && s.cfg.Strategy != StrategyCopy:
		err := s.tenants.Rename(ctx, p.Source, p.Target)
		if err == nil {
			// No document was copied. Counting them here would make an O(1)
			// rename O(D): a count reads the whole collection on FerretDB.
			return StrategyRename, 0, nil
		}
		if err != ErrRenameUnsupported || s.cfg.Strategy == StrategyRename {
			return "", 0, err
		}
		s.log.Info("server refused renameCollection; copying instead", slog.String("org_id", o.ID))
	}
	// Copy, or resume a copy: a target that exists beside its source is a
	// partial copy of ours, as the target's name is claimed by this organization.
	n, err := s.copy(ctx, o)
	return StrategyCopy, n, err
}

func (s *Service) copy(ctx context.Context, o *Organization) (int64, error) {
	p := o.Pending
	total, err := s.tenants.Count(ctx, p.Source)
	if err != nil {
		return 0, err
	}
	log := s.log.With(slog.String("org_id", o.ID), slog.String("from", p.Source), slog.String("to", p.Target))
	last := time.Now()
	progress := func(done int64) error {
		p.Copied = done
		if err := s.meta.Update(ctx, o.ID, Changes{Pending: p, SetPending: true, UpdatedAt: time.Now().UTC()}); err != nil {
			return err
		}
		if time.Since(last) >= s.cfg.ProgressEvery {
			last = time.Now()
			log.Info("copy progress", slog.Int64("moved", done), slog.Int64("total", total))
		}
		return s.step("rename:copy-batch")
	}
	for pass := 0; pass < 2; pass++ {
		if pass > 0 { // a write the server finished late may have added one
			if total, err = s.tenants.Count(ctx, p.Source); err != nil {
				return 0, err
			}
		}
		if err := s.tenants.Copy(ctx, p.Source, p.Target, p.Copied, progress); err != nil {
			return 0, err
		}
		got, err := s.tenants.Count(ctx, p.Target)
		if err != nil {
			return 0, err
		}
		if got == total {
			log.Info("copy done", slog.Int64("moved", total))
			if err := s.step("rename:copied"); err != nil {
				return 0, err
			}
			return total, nil
		}
		// A resumed copy skipped documents it assumed were copied; go over all of them.
		log.Warn("copy count differs; copying again from the start", slog.Int64("source", total), slog.Int64("target", got))
		p.Copied = 0
	}
	return 0, errs.Errorf(errs.Internal, "copy could not be verified")
}

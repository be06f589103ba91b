package org

import (
	"context"
	"maps"
	"strconv"
	"time"

	"github.com/orgservice/orgservice/internal/errs"
)

// Operator runs the operations of the people who run the service, not of
// its tenants: list and search the organizations with their usage, cap
// one, suspend and reactivate one. Its changes go through the same lease,
// change log and audit log as the tenants' own.
type Operator struct {
	s *Service
}

// NewOperator returns the operator's operations over s.
func NewOperator(s *Service) *Operator { return &Operator{s: s} }

// The statuses of an organization, as the operator sets them.
const (
	StatusActive    = "active"
	StatusSuspended = "suspended"
)

// StatusOf is o's status: suspended or active.
func StatusOf(o *Organization) string {
	if o.Suspended {
		return StatusSuspended
	}
	return StatusActive
}

// OrgView is an organization as the operator sees it: with its usage and
// its quotas. Counted is false while its usage has not been counted yet
// (an organization from before quotas); Used is then zero.
type OrgView struct {
	Org     *Organization
	Used    Usage
	Counted bool
	Quotas  Quotas
}

// Get returns the organization id with its usage and quotas.
// Errors: errs.NotFound, errs.Unavailable.
func (op *Operator) Get(ctx context.Context, id string) (OrgView, error) {
	o, err := op.s.dir.ByID(id)
	if err == nil && o.State != StateActive {
		err = notFound()
	}
	if err != nil {
		return OrgView{}, err
	}
	return op.view(ctx, o)
}

func (op *Operator) view(ctx context.Context, o *Organization) (OrgView, error) {
	v := OrgView{Org: o, Quotas: EffectiveQuotas(o, op.s.quotas)}
	u, err := op.s.usage.Current(ctx, o.ID)
	switch {
	case errs.Is(err, errs.NotFound):
		op.s.recountSoon(o.ID)
	case err != nil:
		return OrgView{}, err
	default:
		v.Used, v.Counted = u, true
	}
	return v, nil
}

// QuotaSetting is one quota in an operator's change: Set when the change
// names it, with Value nil to give the organization the default again.
type QuotaSetting struct {
	Set   bool
	Value *int64
}

// OrgChange is an operator's change of an organization; what it leaves
// unset stays as it is. Metadata is merged into the organization's as an
// RFC 7396 merge patch: a nil value removes its key.
type OrgChange struct {
	Status       *string
	Documents    QuotaSetting
	StorageBytes QuotaSetting
	Members      QuotaSetting
	Metadata     map[string]*string
}

// Change applies c to organization id under its lease, in one metadata
// write with its audit events (org.suspended, org.reactivated,
// org.quotas_changed, the operator as actor); a change that changes nothing
// writes nothing. Suspending refuses its members' logins and tokens on
// every instance once their directories show it (within their staleness
// bound); nothing is deleted, and reactivating restores everything.
// Errors: errs.Invalid (status, quota or metadata), errs.NotFound,
// errs.Busy (another operation in progress), errs.Unavailable.
func (op *Operator) Change(ctx context.Context, id string, c OrgChange) (OrgView, error) {
	if err := c.check(); err != nil {
		return OrgView{}, err
	}
	s := op.s
	if _, err := s.dir.ByID(id); err != nil {
		return OrgView{}, err
	}
	var out *Organization
	err := s.detached(ctx, func(ctx context.Context) error {
		return s.withLease(ctx, id, func(ctx context.Context) error {
			o, err := s.settled(ctx, id)
			if errs.Is(err, errs.Unauthorized) {
				return notFound()
			}
			if err != nil {
				return err
			}
			out = o
			ch, evs, changed, err := op.changes(ctx, o, c)
			if err != nil || !changed {
				return err
			}
			ch.UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)
			if len(evs) > 0 {
				ch.AuditPending, ch.SetAuditPending = evs, true
			}
			if err := s.meta.Update(ctx, o.ID, ch); err != nil {
				return err
			}
			o.AuditPending = ch.AuditPending
			if err := s.step("operator:written"); err != nil {
				return err
			}
			if err := s.commitAudit(ctx, o); err != nil {
				return err
			}
			out, err = s.meta.ByID(ctx, o.ID)
			return err
		})
	})
	if err != nil {
		return OrgView{}, err
	}
	return op.view(ctx, out)
}

// check validates c before anything is read.
func (c OrgChange) check() error {
	var fe fieldErrors
	if c.Status != nil && *c.Status != StatusActive && *c.Status != StatusSuspended {
		fe.add("status", "must be active or suspended")
	}
	for _, q := range []struct {
		name string
		s    QuotaSetting
		max  int64
	}{{QuotaDocuments, c.Documents, MaxQuotaDocuments}, {QuotaStorageBytes, c.StorageBytes, MaxQuotaStorageBytes}, {QuotaMembers, c.Members, MaxQuotaMembers}} {
		if q.s.Value != nil {
			checkQuota(&fe, "quotas."+q.name, *q.s.Value, q.max)
		}
	}
	return fe.err()
}

// changes returns the metadata write and the events of c on o, and
// whether it changes anything at all.
func (op *Operator) changes(ctx context.Context, o *Organization, c OrgChange) (Changes, []Event, bool, error) {
	var ch Changes
	var evs []Event
	operator := Actor{Type: ActorOperator}
	if c.Status != nil && (*c.Status == StatusSuspended) != o.Suspended {
		suspended := *c.Status == StatusSuspended
		ch.Suspended = &suspended
		action := EventOrgReactivated
		if suspended {
			action = EventOrgSuspended
		}
		evs = append(evs, operatorEvent(ctx, o, operator, action, map[string]string{}))
	}
	limits := o.Limits
	before := EffectiveQuotas(o, op.s.quotas)
	for _, q := range []struct {
		s   QuotaSetting
		dst **int64
	}{{c.Documents, &limits.Documents}, {c.StorageBytes, &limits.StorageBytes}, {c.Members, &limits.Members}} {
		if q.s.Set {
			*q.dst = q.s.Value
		}
	}
	after := EffectiveQuotas(&Organization{Limits: limits}, op.s.quotas)
	if !sameOverrides(limits, o.Limits) {
		ch.Limits = &limits
	}
	if d := quotaDetails(before, after); len(d) > 0 {
		evs = append(evs, operatorEvent(ctx, o, operator, EventQuotasChanged, d))
	}
	if c.Metadata != nil {
		md := maps.Clone(o.Metadata)
		if md == nil {
			md = map[string]string{}
		}
		for k, v := range c.Metadata {
			if v == nil {
				delete(md, k)
			} else {
				md[k] = *v
			}
		}
		if err := CheckMetadata(md); err != nil {
			return Changes{}, nil, false, err
		}
		if !maps.Equal(md, o.Metadata) {
			ch.Metadata, ch.SetMetadata = md, true
		}
	}
	// An override set to its default's value changes no effective quota
	// and records no event, but is written: the organization keeps it when
	// the default changes.
	return ch, evs, len(evs) > 0 || ch.Limits != nil || ch.SetMetadata, nil
}

func sameOverrides(a, b QuotaOverrides) bool {
	eq := func(x, y *int64) bool { return x == nil && y == nil || x != nil && y != nil && *x == *y }
	return eq(a.Documents, b.Documents) && eq(a.StorageBytes, b.StorageBytes) && eq(a.Members, b.Members)
}

// quotaDetails are the details of org.quotas_changed: "<quota>_from" and
// "<quota>_to" for each quota that changes.
func quotaDetails(before, after Quotas) map[string]string {
	d := map[string]string{}
	add := func(name string, from, to int64) {
		if from != to {
			d[name+"_from"], d[name+"_to"] = strconv.FormatInt(from, 10), strconv.FormatInt(to, 10)
		}
	}
	add(QuotaDocuments, before.Documents, after.Documents)
	add(QuotaStorageBytes, before.StorageBytes, after.StorageBytes)
	add(QuotaMembers, before.Members, after.Members)
	return d
}

func operatorEvent(ctx context.Context, o *Organization, a Actor, action EventAction, details map[string]string) Event {
	e := newEvent(ctx, o, nil, action, orgTarget(o), details)
	e.Actor = a
	return e
}

// Recount counts organization id's documents and stored bytes again, and
// makes that its usage (recount.go): after a crash the reconciler does it
// by itself; an operator may ask for it. Errors: errs.NotFound, errs.Busy,
// errs.Unavailable.
func (op *Operator) Recount(ctx context.Context, id string) (OrgView, error) {
	if _, err := op.Get(ctx, id); err != nil {
		return OrgView{}, err
	}
	err := op.s.detached(ctx, func(ctx context.Context) error { return op.s.recount(ctx, id) })
	if err != nil {
		return OrgView{}, err
	}
	return op.Get(ctx, id)
}

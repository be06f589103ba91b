package org

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"regexp"
	"time"

	"github.com/orgservice/orgservice/internal/errs"
)

// EventAction names what an audit event records.
type EventAction string

// The audited actions.
const (
	EventOrgCreated         EventAction = "org.created"
	EventOrgRenamed         EventAction = "org.renamed"
	EventOrgDeleted         EventAction = "org.deleted"
	EventCredentialsChanged EventAction = "credentials.changed"
	EventMemberAdded        EventAction = "member.added"
	EventMemberRemoved      EventAction = "member.removed"
	EventRoleChanged        EventAction = "member.role_changed"
	EventLoginSucceeded     EventAction = "login.succeeded"
	EventLoginFailed        EventAction = "login.failed"
	EventOrgSuspended       EventAction = "org.suspended"
	EventOrgReactivated     EventAction = "org.reactivated"
	EventQuotasChanged      EventAction = "org.quotas_changed"
	EventSessionEnded       EventAction = "session.ended"
)

// The types of what an event acts on.
const (
	TargetOrganization = "organization"
	TargetMember       = "member"
)

// Event is one entry of an organization's audit log. Events are written by
// insert under their ID, so writing one again is a no-op: an operation's
// events are decided before its effect is committed (in its intent, or in
// the same metadata write as the effect) and inserted after, by the
// operation or, after a crash, by whoever settles the organization.
type Event struct {
	// ID orders an organization's events: a later event has a greater ID.
	ID      string
	OrgID   string
	Time    time.Time
	Actor   Actor
	Action  EventAction
	Target  Target
	Details map[string]string
	// RequestID is the server's own id of the request that caused the
	// event; ClientRequestID the X-Request-ID the client sent with it, if
	// any (never trusted as the event's id: a client could name another
	// request's).
	RequestID       string
	ClientRequestID string
}

// Actor is the member who acted. A failed login's actor is the member
// whose email was given. The operator (the operator API) is an actor of
// Type ActorOperator, with no member id or email.
type Actor struct {
	Type     string // "" for a member
	MemberID string
	Email    string
}

// ActorOperator is the Type of the actor of the operator API's changes.
const ActorOperator = "operator"

// Target is what an event acts on: the organization (Name is its name) or
// a member (Name is the member's email).
type Target struct {
	Type string
	ID   string
	Name string
}

// Audit page sizes.
const (
	DefaultAuditLimit = 50
	MaxAuditLimit     = 200
)

var eventIDPattern = regexp.MustCompile(`^[0-9]{19}-[0-9a-f]{8}$`)

// ValidEventID reports whether id has the form of an event ID, as a cursor must.
func ValidEventID(id string) bool { return eventIDPattern.MatchString(id) }

// Origin is what a request tells about itself: its id (the server's own,
// and the client's when it sent a safe one), the client's address and user
// agent, recorded in the events and sessions it causes.
type Origin struct {
	RequestID       string
	ClientRequestID string
	ClientIP        string
	UserAgent       string
}

type originKey struct{}

// WithOrigin returns ctx carrying o.
func WithOrigin(ctx context.Context, o Origin) context.Context {
	return context.WithValue(ctx, originKey{}, o)
}

// OriginOf returns the origin ctx carries, or the zero Origin.
func OriginOf(ctx context.Context) Origin {
	o, _ := ctx.Value(originKey{}).(Origin)
	return o
}

// newEvent returns an event of o, acted by m, at now. Its ID is the time
// in nanoseconds, then random bits that keep two events of one instant apart.
func newEvent(ctx context.Context, o *Organization, m *Member, action EventAction, target Target, details map[string]string) Event {
	now := time.Now().UTC()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	e := Event{
		ID:        fmt.Sprintf("%019d-%s", now.UnixNano(), hex.EncodeToString(b)),
		OrgID:     o.ID,
		Time:      now.Truncate(time.Millisecond),
		Action:    action,
		Target:    target,
		Details:   details,
		RequestID: OriginOf(ctx).RequestID,
		// The client's id beside the server's, never instead of it.
		ClientRequestID: OriginOf(ctx).ClientRequestID,
	}
	if m != nil {
		e.Actor = Actor{MemberID: m.ID, Email: m.Email}
	}
	return e
}

func orgTarget(o *Organization) Target {
	return Target{Type: TargetOrganization, ID: o.ID, Name: o.Name}
}

func memberTarget(m *Member) Target {
	return Target{Type: TargetMember, ID: m.ID, Name: m.Email}
}

// AuditQuery selects a page of an organization's audit log: at most Limit
// events (DefaultAuditLimit when 0), newest first, older than the event
// After when it is set.
type AuditQuery struct {
	Limit int
	After string
}

// AuditPage is one page of events, newest first. Next is the cursor of the
// following page: the last event's ID, "" when there is none.
type AuditPage struct {
	Items []Event
	Next  string
}

// Audit reads a page of the principal's organization's audit log.
// Errors: errs.Invalid (limit or cursor), errs.Forbidden (a member),
// errs.Unauthorized, errs.Unavailable.
func (s *Service) Audit(ctx context.Context, p Principal, q AuditQuery) (AuditPage, error) {
	if q.Limit == 0 {
		q.Limit = DefaultAuditLimit
	}
	if q.Limit < 1 || q.Limit > MaxAuditLimit {
		return AuditPage{}, &errs.Error{Kind: errs.Invalid, Message: "limit is out of range",
			Fields: []errs.FieldError{{Field: "limit", Message: fmt.Sprintf("must be from 1 to %d", MaxAuditLimit)}}}
	}
	if q.After != "" && !ValidEventID(q.After) {
		return AuditPage{}, &errs.Error{Kind: errs.Invalid, Message: "after is not a cursor",
			Fields: []errs.FieldError{{Field: "after", Message: "must be the next of a previous page"}}}
	}
	o, _, err := s.actingNow(ctx, p, ActReadAudit)
	if err != nil {
		return AuditPage{}, err
	}
	evs, err := s.audit.Events(ctx, o.ID, q.After, q.Limit+1)
	if err != nil {
		return AuditPage{}, err
	}
	page := AuditPage{Items: evs}
	if len(evs) > q.Limit {
		page.Items = evs[:q.Limit]
		page.Next = page.Items[q.Limit-1].ID
	}
	return page, nil
}

// RecordLogin writes the event of a login as member m of o: succeeded, or
// failed with a wrong password. Both carry the client's address. The
// token is issued only once the event is written. Errors: errs.Unavailable.
func (s *Service) RecordLogin(ctx context.Context, o *Organization, m *Member, ok bool) error {
	if !ok {
		return s.RecordLoginFailure(ctx, o, m, "wrong password")
	}
	details := map[string]string{"ip": OriginOf(ctx).ClientIP}
	return s.audit.Insert(ctx, []Event{newEvent(ctx, o, m, EventLoginSucceeded, memberTarget(m), details)})
}

// RecordLoginFailure writes the login.failed event of a login (or a check
// of a current password) as member m of o refused for reason, with the
// client's address. Errors: errs.Unavailable.
func (s *Service) RecordLoginFailure(ctx context.Context, o *Organization, m *Member, reason string) error {
	details := map[string]string{"ip": OriginOf(ctx).ClientIP, "reason": reason}
	return s.audit.Insert(ctx, []Event{newEvent(ctx, o, m, EventLoginFailed, memberTarget(m), details)})
}

// RecordSessionEnd writes the event of member m of o ending session id,
// for reason (one of the End* constants). Errors: errs.Unavailable.
func (s *Service) RecordSessionEnd(ctx context.Context, o *Organization, m *Member, id, reason string) error {
	details := map[string]string{"session_id": id, "reason": reason, "ip": OriginOf(ctx).ClientIP}
	return s.audit.Insert(ctx, []Event{newEvent(ctx, o, m, EventSessionEnded, memberTarget(m), details)})
}

// commitAudit inserts the events o's last metadata write recorded as
// pending, then clears them; the caller holds o's lease. The effect they
// describe is committed already, so a failure here only leaves them for
// the reconciler to insert: it is logged, not returned, unless the
// operation was halted as by a crash.
func (s *Service) commitAudit(ctx context.Context, o *Organization) error {
	err := s.flushAudit(ctx, o)
	if err != nil && !isHalted(err) {
		s.log.Warn("audit events left pending", slog.String("org_id", o.ID), slog.Any("error", err))
		return nil
	}
	return err
}

// flushAudit inserts o's pending events (again, if a crash interrupted it:
// inserting an event twice is a no-op) and clears them. The caller holds
// o's lease.
func (s *Service) flushAudit(ctx context.Context, o *Organization) error {
	if len(o.AuditPending) == 0 {
		return nil
	}
	if err := s.audit.Insert(ctx, o.AuditPending); err != nil {
		return err
	}
	if err := s.step("audit:inserted"); err != nil {
		return err
	}
	if err := s.meta.Update(ctx, o.ID, Changes{SetAuditPending: true}); err != nil {
		return err
	}
	o.AuditPending = nil
	return nil
}

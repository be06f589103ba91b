// Package org is the domain of the service: organizations, their names and
// slugs, the rules their input must follow, the errors operations return, the
// storage they need, and the service that runs every operation on them —
// including the multi-step ones that must survive a crash at any step.
package org

import "time"

// State is where an organization is in its life.
type State string

// The states of an organization. Only an active organization can be logged
// into or changed; a provisioning one is being created, a deleting one is
// being removed and its tokens are already dead.
const (
	StateProvisioning State = "provisioning"
	StateActive       State = "active"
	StateDeleting     State = "deleting"
)

// Organization is one tenant: its metadata and its members.
type Organization struct {
	ID             string
	Name           string // display name, trimmed, as given
	Slug           string
	CollectionName string
	AdminEmail     string // lowercased: the earliest-created owner's email
	Members        []Member
	// PasswordHash and TokenVersion are the admin's credentials as written
	// before members existed; only MembersOf and Migrate read them.
	PasswordHash string
	TokenVersion int64
	State        State
	Pending      *Pending // the intent of an unfinished multi-step operation, if any
	// AuditPending holds the events of a committed change until they are
	// inserted into the audit log (see Event).
	AuditPending []Event
	// Suspended is set by the operator: its members cannot log in and its
	// tokens are refused, but nothing is deleted (see Suspension).
	Suspended bool
	// Limits are the quotas the operator set for it; unset ones are the
	// service's defaults (see EffectiveQuotas).
	Limits QuotaOverrides
	// Metadata is the operator's own small map of strings about it (see
	// CheckMetadata); tenants never see it.
	Metadata  map[string]string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Settled reports whether o has nothing left to finish: it is active, with
// no pending operation and no pending audit events.
func (o *Organization) Settled() bool {
	return o.State == StateActive && o.Pending == nil && len(o.AuditPending) == 0
}

// Op names a multi-step operation.
type Op string

// The multi-step operations.
const (
	OpRename  Op = "rename"
	OpDelete  Op = "delete"
	OpRecount Op = "recount" // the usage is counted again; writes wait (recount.go)
)

// Pending is the intent of a multi-step operation, written into the
// organization's metadata before any collection is touched, so that whoever
// finds it — the operation itself or a reconciler after a crash — can finish it.
type Pending struct {
	Op        Op
	StartedAt time.Time

	// Rename only.
	FromSlug string
	ToSlug   string
	ToName   string // new display name
	Source   string // collection the data is moved from
	Target   string // collection the data is moved to
	Copied   int64  // documents copied so far (copy strategy)

	// Changes applied together with the rename's switch.
	MemberID        string // whose credentials change; "" in intents written before members
	FromEmail       string
	NewEmail        string
	NewPasswordHash string
	SessionID       string // the session changing them, which goes on

	// Events are inserted into the audit log once the operation's effect
	// is committed, before the intent is cleared.
	Events []Event
}

// Changes is a set of metadata fields to write at once; nil fields are left alone.
type Changes struct {
	Name            *string
	Slug            *string
	CollectionName  *string
	AdminEmail      *string
	PasswordHash    *string
	TokenVersion    *int64
	State           *State
	Members         []Member // written when SetMembers is true
	SetMembers      bool
	Pending         *Pending // written when SetPending is true
	SetPending      bool     // write Pending (nil clears it)
	AuditPending    []Event  // written when SetAuditPending is true (nil clears them)
	SetAuditPending bool
	Suspended       *bool
	Limits          *QuotaOverrides
	Metadata        map[string]string // written when SetMetadata is true (nil clears it)
	SetMetadata     bool
	UpdatedAt       time.Time // written unless zero
}

// Principal is an authenticated member of one organization. Role is the
// member's role when the request was authenticated, read from the directory.
type Principal struct {
	OrgID    string
	Email    string
	OrgName  string
	MemberID string
	Role     Role
	// SessionID is the session the access token belongs to.
	SessionID string
}

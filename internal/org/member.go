package org

import (
	"slices"
	"time"

	"github.com/orgservice/orgservice/internal/errs"
)

// Role is what a member may do in their organization.
type Role string

// The roles. An owner may do everything; an admin manages the members other
// than owners, and documents; a member works with documents only.
const (
	RoleOwner  Role = "owner"
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
)

// Valid reports whether r is one of the roles.
func (r Role) Valid() bool { return r == RoleOwner || r == RoleAdmin || r == RoleMember }

// MaxMembers is the default members quota (QUOTA_MEMBERS). Members live
// inside the organization's metadata document, which every member change
// rewrites and every instance holds in memory: 1,000 members of ~250 bytes
// keep it near 250 KB, far below MongoDB's 16 MiB document limit.
const MaxMembers = 1000

// Member is a person who belongs to an organization and can log in to it.
type Member struct {
	ID           string
	Email        string // lowercased; unique across the service
	PasswordHash string
	Role         Role
	TokenVersion int64
	// KeptSession is the session that last changed these credentials: it
	// goes on when they change, every other session ends (Admits).
	KeptSession string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// MembersOf returns o's members. An organization written before members
// existed has none stored: its admin is then its one owner, with the
// organization's id, password hash and token version, so that the tokens
// issued to the admin before keep working.
func MembersOf(o *Organization) []Member {
	if len(o.Members) > 0 || o.AdminEmail == "" {
		return o.Members
	}
	return []Member{{
		ID: o.ID, Email: o.AdminEmail, PasswordHash: o.PasswordHash, Role: RoleOwner,
		TokenVersion: o.TokenVersion, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt,
	}}
}

// Migrate gives an organization written before members existed its admin
// as its first owner (see MembersOf). It reports whether o changed; it is
// idempotent.
func Migrate(o *Organization) bool {
	if len(o.Members) > 0 || o.AdminEmail == "" {
		return false
	}
	o.Members = MembersOf(o)
	return true
}

// MemberByID returns the member of o with id, or nil.
func MemberByID(o *Organization, id string) *Member {
	ms := MembersOf(o)
	for i := range ms {
		if ms[i].ID == id {
			m := ms[i]
			return &m
		}
	}
	return nil
}

// MemberByEmail returns the member of o with the (normalized) email, or nil.
func MemberByEmail(o *Organization, email string) *Member {
	ms := MembersOf(o)
	for i := range ms {
		if ms[i].Email == email {
			m := ms[i]
			return &m
		}
	}
	return nil
}

// firstOwnerEmail is the email of the earliest-created owner: the
// organization's admin_email, kept for compatibility.
func firstOwnerEmail(ms []Member) string {
	var first *Member
	for i := range ms {
		if ms[i].Role == RoleOwner && (first == nil || ms[i].CreatedAt.Before(first.CreatedAt)) {
			first = &ms[i]
		}
	}
	if first == nil {
		return ""
	}
	return first.Email
}

func countOwners(ms []Member) int {
	n := 0
	for _, m := range ms {
		if m.Role == RoleOwner {
			n++
		}
	}
	return n
}

// withMembers returns Changes that write ms as o's members, with the
// admin_email that follows from them.
func withMembers(c Changes, ms []Member) Changes {
	c.Members = slices.Clone(ms)
	c.SetMembers = true
	if e := firstOwnerEmail(ms); e != "" {
		c.AdminEmail = &e
	}
	return c
}

// Action is something a principal asks to do; Authorize says which roles may.
type Action string

// The actions that roles govern.
const (
	ActUpdateOrg    Action = "update organization"
	ActDeleteOrg    Action = "delete organization"
	ActDocuments    Action = "use documents"
	ActListMembers  Action = "list members"
	ActAddMember    Action = "add members"
	ActSetRole      Action = "change roles"
	ActRemoveMember Action = "remove members"
	ActSelf         Action = "manage own credentials"
	ActReadAudit    Action = "read the audit log"
	ActReadUsage    Action = "read the usage"
)

// policy is the one table of which role may do what.
var policy = map[Action][]Role{
	ActUpdateOrg:    {RoleOwner},
	ActDeleteOrg:    {RoleOwner},
	ActDocuments:    {RoleOwner, RoleAdmin, RoleMember},
	ActListMembers:  {RoleOwner, RoleAdmin},
	ActAddMember:    {RoleOwner, RoleAdmin},
	ActSetRole:      {RoleOwner},
	ActRemoveMember: {RoleOwner, RoleAdmin},
	ActSelf:         {RoleOwner, RoleAdmin, RoleMember},
	ActReadAudit:    {RoleOwner, RoleAdmin},
	ActReadUsage:    {RoleOwner, RoleAdmin},
}

// Authorize returns nil when role may do a, and errs.Forbidden otherwise.
// Which members an admin may act on (not owners) is checked by the member
// operations themselves.
func Authorize(role Role, a Action) error {
	if slices.Contains(policy[a], role) {
		return nil
	}
	return errs.Errorf(errs.Forbidden, "the %s role may not %s", roleName(role), a)
}

func roleName(r Role) string {
	if r == "" {
		return "(none)"
	}
	return string(r)
}

package org

import (
	"context"
	"time"

	"github.com/orgservice/orgservice/internal/errs"
)

// Stores are the storage the service writes through, one per thing
// stored. Implementations translate their driver's errors into errs kinds:
// errs.NotFound, errs.Conflict, errs.Unavailable, and errs.Internal for the
// rest.
//
// Exclusion never relies on a guarded update: names, leases and change-log
// numbers are taken by inserting a document under a unique key, the one write
// that is atomic on every MongoDB wire-protocol server this runs on.
type Stores struct {
	Metadata Metadata
	Names    NameClaims
	Leases   Leases
	Changes  ChangeLog
	Tenants  Tenants
	Audit    AuditLog
}

// NameClaims hold every organization name and member email for one organization.
type NameClaims interface {
	// Claim takes key ("slug/…" or "email/…") for orgID. It is idempotent
	// for the same orgID and returns errs.Conflict when another holds the key.
	Claim(ctx context.Context, key, orgID string) error
	// Release gives key up, if orgID holds it.
	Release(ctx context.Context, key, orgID string) error
	// Holder returns the claim of key; errs.NotFound when nobody holds it.
	Holder(ctx context.Context, key string) (NameClaim, error)
	// List returns every claim.
	List(ctx context.Context) ([]NameClaim, error)
}

// Leases give one operation at a time an organization.
type Leases interface {
	// Acquire takes the lease of orgID for owner until ttl from now, taking
	// over a lease that has expired. errs.Busy when another owner holds a
	// live lease.
	Acquire(ctx context.Context, orgID, owner string, ttl time.Duration) error
	// Renew extends a lease owner holds; errs.Busy when it was lost.
	Renew(ctx context.Context, orgID, owner string, ttl time.Duration) error
	// Release removes the lease if owner holds it.
	Release(ctx context.Context, orgID, owner string) error
}

// Metadata is the organizations collection: the source of truth.
type Metadata interface {
	// NewID returns a fresh organization or member id.
	NewID() string
	// Insert stores a new organization; errs.Conflict when its slug or email is taken.
	Insert(ctx context.Context, o *Organization) error
	// ByID returns errs.NotFound when there is none.
	ByID(ctx context.Context, id string) (*Organization, error)
	// Unsettled lists organizations that are not Settled.
	Unsettled(ctx context.Context) ([]*Organization, error)
	// All lists every organization.
	All(ctx context.Context) ([]*Organization, error)
	// CollectionsInUse lists every tenant collection the metadata refers to,
	// including the targets of pending renames.
	CollectionsInUse(ctx context.Context) (map[string]bool, error)
	// Update writes c to the organization; errs.NotFound when it is gone.
	Update(ctx context.Context, id string, c Changes) error
	// Delete removes the metadata; deleting a missing one is not an error.
	Delete(ctx context.Context, id string) error
	// Unmigrated lists the ids of organizations stored before members
	// existed (no members field); reads give them their admin as owner.
	Unmigrated(ctx context.Context) ([]string, error)
}

// ChangeLog announces metadata writes to every instance's directory.
type ChangeLog interface {
	// Append adds an entry naming orgID to the change log. The service
	// calls it holding orgID's lease, before it writes the metadata.
	Append(ctx context.Context, orgID string) error
}

// AuditLog is every organization's audit events. They outlive their
// organization: a deleted organization's events are kept for the operator.
type AuditLog interface {
	// Insert writes events, skipping those written already (by ID):
	// writing an event twice is a no-op, and no events cost nothing.
	Insert(ctx context.Context, events []Event) error
	// Events returns up to limit events of orgID, newest first, older than
	// the event after when it is not "".
	Events(ctx context.Context, orgID, after string, limit int) ([]Event, error)
}

// Tenants are the organizations' own collections.
type Tenants interface {
	// Create creates an empty tenant collection, replacing any leftover
	// collection of that name.
	Create(ctx context.Context, name string) error
	// Drop drops a tenant collection; dropping a missing one is not an error.
	Drop(ctx context.Context, name string) error
	// Exists reports whether the collection exists.
	Exists(ctx context.Context, name string) (bool, error)
	// List lists the tenant collections (names with CollectionPrefix).
	List(ctx context.Context) ([]string, error)
	// Count counts the documents of a collection.
	Count(ctx context.Context, name string) (int64, error)
	// Rename renames from to to within the database, never dropping a
	// target. ErrRenameUnsupported when the server refuses renameCollection;
	// errs.Conflict when to exists; errs.NotFound when from does not.
	Rename(ctx context.Context, from, to string) error
	// Copy copies from into to in batches, skipping the first skip documents
	// and ignoring documents already present in to. progress is called after
	// each batch with the number of documents handled so far.
	Copy(ctx context.Context, from, to string, skip int64, progress func(done int64) error) error
}

// Directory holds every organization's metadata in memory: the read path of
// lookups by name, token checks and logins, which then cost no database
// read. It is exact for this process's own writes (Refresh) and follows
// other instances' writes within its staleness bound; past that bound its
// reads fail with errs.Unavailable rather than answer from stale data. It is
// never the source of truth for a write: operations read the Store under
// their lease (through Metadata). The organizations it returns are copies, but for their
// Members and AuditPending, which are shared and must not be changed in place.
type Directory interface {
	// BySlug, ByEmail (any member's email) and ByID return errs.NotFound when there is none,
	// errs.Unavailable when the directory is older than its bound.
	BySlug(slug string) (*Organization, error)
	ByEmail(email string) (*Organization, error)
	ByID(id string) (*Organization, error)
	// All returns every organization, in no order; errs.Unavailable when
	// the directory is older than its bound.
	All() ([]*Organization, error)
	// Unsettled lists the ids of organizations with an unfinished operation.
	Unsettled() []string
	// Lingering lists the ids of settled organizations whose lease has been
	// there for long: left behind by an operation that crashed.
	Lingering() []string
	// Refresh re-reads one organization after this process wrote it, or
	// when a token names what another instance wrote a moment ago.
	Refresh(ctx context.Context, id string) error
}

// NameClaim is a name or email held by an organization.
type NameClaim struct {
	Key       string
	OrgID     string
	CreatedAt time.Time
}

// ErrRenameUnsupported is returned by Tenants.Rename when the server refuses
// renameCollection; the copy strategy is the fallback.
var ErrRenameUnsupported = errs.Errorf(errs.Internal, "the database does not support renameCollection")

// Hasher hashes and checks passwords: the one way every bcrypt
// computation goes (auth.Bcrypt), so that one bound can admit them all.
type Hasher interface {
	Hash(password string) (string, error)
	// Compare reports whether password is the one hash was made from.
	Compare(hash, password string) (bool, error)
}

func slugKey(slug string) string   { return "slug/" + slug }
func emailKey(email string) string { return "email/" + email }

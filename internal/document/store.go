package document

import (
	"context"
	"time"

	"github.com/orgservice/orgservice/internal/org"
)

// Store is where the documents are: the tenant collections. Implementations
// translate their driver's errors into errs kinds: errs.NotFound,
// errs.Conflict, errs.Unavailable, and errs.Internal for the rest.
type Store interface {
	// NewID returns a fresh document id (an ObjectID in hex).
	NewID() string
	// Insert stores d in coll; errs.Conflict when coll holds its id.
	Insert(ctx context.Context, coll string, d *Document) error
	// Find returns the document id of coll; errs.NotFound when none.
	Find(ctx context.Context, coll, id string) (*Document, error)
	// Replace writes d's data, version and updated_at over the document d.ID
	// of coll when that is still at version from and was created at
	// d.CreatedAt, and reports whether it was.
	Replace(ctx context.Context, coll string, d *Document, from int64) (bool, error)
	// Delete removes the document d.ID of coll when it is still at
	// d.Version and was created at d.CreatedAt, and reports whether it was.
	Delete(ctx context.Context, coll string, d *Document) (bool, error)
	// List returns up to q.Limit documents of coll whose ids sort after
	// q.After, in id order, whose data matches every filter.
	List(ctx context.Context, coll string, q Query) ([]*Document, error)
	// Each calls fn with every document of coll, one at a time, holding no
	// more than a cursor batch in memory. It stops at fn's first error and
	// returns it.
	Each(ctx context.Context, coll string, fn func(*Document) error) error
	// InsertMany inserts docs into coll, unordered, and returns the indexes
	// of the docs whose id coll already held (not inserted).
	InsertMany(ctx context.Context, coll string, docs []*Document) (existing []int, err error)
}

// VersionClaims hold the right to move a document to its next version
// (versions.go). As elsewhere, exclusion never relies on a guarded update
// (on FerretDB two can both win): a claim is taken by inserting a document
// under a unique key.
type VersionClaims interface {
	// Claim takes key, stamped at; errs.Conflict when key is taken.
	Claim(ctx context.Context, key string, at time.Time) error
	// ClaimedAt returns when key was taken; errs.NotFound when it is free.
	ClaimedAt(ctx context.Context, key string) (time.Time, error)
	// Release frees key.
	Release(ctx context.Context, key string) error
}

// Registrations are the processes that may be writing an organization's
// documents (writers.go), each taken by an insert under a key of its own.
type Registrations interface {
	// Register stores r; errs.Conflict when its key exists.
	Register(ctx context.Context, r Registration) error
	// Renew moves the expiry of key; errs.NotFound when it is gone.
	Renew(ctx context.Context, key string, expires time.Time) error
	// Remove deletes key; removing a missing one is not an error.
	Remove(ctx context.Context, key string) error
	// Of lists the registrations of orgID.
	Of(ctx context.Context, orgID string) ([]Registration, error)
}

// Directory finds an organization by id as the in-memory directory holds
// it now: errs.NotFound when there is none, errs.Unavailable when the
// directory is older than its bound. The documents service relies on it to
// see a rename's or delete's intent once that is written: a write refuses
// an organization with an intent. directory.Directory is one.
type Directory interface {
	ByID(id string) (*org.Organization, error)
}

// Query selects a page of documents.
type Query struct {
	After   string   // only ids sorting after it; "" from the start
	Limit   int      // at most this many
	Filters []Filter // every one must match
}

// Filter is an equality on a top-level field of data. Field is a valid key
// (ValidKey) and Value a scalar: nil, bool, string, int64 or float64.
type Filter struct {
	Field string
	Value any
}

// Registration says that a process may be writing to an organization's
// collection until ExpiresAt.
type Registration struct {
	Key          string
	OrgID        string
	RegisteredAt time.Time
	ExpiresAt    time.Time
}

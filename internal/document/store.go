package document

import (
	"context"
	"time"
)

// Store is the storage the documents service needs. Implementations
// translate their driver's errors into org's kinds: errs.NotFound,
// errs.Conflict, errs.Unavailable, and errs.Internal for the rest.
//
// As in org.Store, exclusion never relies on a guarded update (on FerretDB
// two can both win): a version and a writer registration are taken by
// inserting a document under a unique key.
type Store interface {
	// NewID returns a fresh document id (an ObjectID in hex).
	NewID() string

	// InsertDocument stores d in coll; errs.Conflict when coll holds its id.
	InsertDocument(ctx context.Context, coll string, d *Document) error
	// FindDocument returns the document id of coll; errs.NotFound when none.
	FindDocument(ctx context.Context, coll, id string) (*Document, error)
	// ReplaceDocument writes d's data, version and updated_at over the
	// document d.ID of coll when that is still at version from and was
	// created at d.CreatedAt, and reports whether it was.
	ReplaceDocument(ctx context.Context, coll string, d *Document, from int64) (bool, error)
	// DeleteDocument removes the document d.ID of coll when it is still at
	// d.Version and was created at d.CreatedAt, and reports whether it was.
	DeleteDocument(ctx context.Context, coll string, d *Document) (bool, error)
	// ListDocuments returns up to q.Limit documents of coll whose ids sort
	// after q.After, in id order, whose data matches every filter.
	ListDocuments(ctx context.Context, coll string, q Query) ([]*Document, error)
	// EachDocument calls fn with every document of coll, one at a time,
	// holding no more than a cursor batch in memory. It stops at fn's first
	// error and returns it.
	EachDocument(ctx context.Context, coll string, fn func(*Document) error) error
	// InsertDocuments inserts docs into coll, unordered, and returns the
	// indexes of the docs whose id coll already held (not inserted).
	InsertDocuments(ctx context.Context, coll string, docs []*Document) (existing []int, err error)

	// InsertClaim takes key, stamped at; errs.Conflict when key is taken.
	InsertClaim(ctx context.Context, key string, at time.Time) error
	// ClaimTime returns when key was taken; errs.NotFound when it is free.
	ClaimTime(ctx context.Context, key string) (time.Time, error)
	// DeleteClaim frees key.
	DeleteClaim(ctx context.Context, key string) error

	// InsertRegistration stores r; errs.Conflict when its key exists.
	InsertRegistration(ctx context.Context, r Registration) error
	// RenewRegistration moves the expiry of key; errs.NotFound when it is gone.
	RenewRegistration(ctx context.Context, key string, expires time.Time) error
	// DeleteRegistration removes key; removing a missing one is not an error.
	DeleteRegistration(ctx context.Context, key string) error
	// Registrations lists the registrations of orgID.
	Registrations(ctx context.Context, orgID string) ([]Registration, error)
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

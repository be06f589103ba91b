// Package mongostore is the service's storage over the official MongoDB
// driver: one type per thing stored (organizations, name claims, leases,
// the change log, tenant collections, documents, version claims, writer
// registrations, the audit log, the usage ledger, sessions and their
// refresh tokens, rate-limit counts), each implementing the interface its
// consumer declares. It runs unchanged on MongoDB and on FerretDB, and
// depends on nothing either lacks: no transactions, no $out, no dropTarget,
// no guarded update for exclusion (names, leases, versions, usage counts,
// used refresh tokens and rate-limit slots are taken by inserts under
// unique keys).
package mongostore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/orgservice/orgservice/internal/errs"
)

// Stores is every store of the service over one database: one type per
// thing stored, each implementing the interface its consumer declares.
type Stores struct {
	Organizations *Organizations
	Names         *NameClaims
	Leases        *Leases
	Changes       *ChangeLog
	Tenants       *Tenants
	Documents     *Documents
	Versions      *VersionClaims
	Writers       *WriterRegistrations
	Audit         *AuditLog
	Usage         *UsageLedger
	Sessions      *Sessions
	RefreshUses   *RefreshUses
	SessionEnds   *SessionEnds

	db *mongo.Database
}

// DefaultBatchSize is how many documents a copy moves per insertMany.
const DefaultBatchSize = 1000

// Open returns the stores over db; a rename's copy moves copyBatch documents
// at a time (0: DefaultBatchSize).
func Open(db *mongo.Database, copyBatch int) *Stores {
	return &Stores{
		Organizations: &Organizations{coll: db.Collection(OrganizationsCollection)},
		Names:         &NameClaims{coll: db.Collection(claimsCollection)},
		Leases:        &Leases{coll: db.Collection(leasesCollection)},
		Changes:       &ChangeLog{coll: db.Collection(changesCollection)},
		Tenants:       newTenants(db, copyBatch),
		Documents:     &Documents{db: db},
		Versions:      &VersionClaims{coll: db.Collection(versionsCollection)},
		Writers:       &WriterRegistrations{coll: db.Collection(writersCollection)},
		Audit:         &AuditLog{coll: db.Collection(AuditCollection)},
		Usage:         &UsageLedger{coll: db.Collection(UsageCollection), marks: db.Collection(usageMarksCollection)},
		Sessions:      &Sessions{coll: db.Collection(SessionsCollection)},
		RefreshUses:   &RefreshUses{coll: db.Collection(RefreshUsesCollection)},
		SessionEnds:   &SessionEnds{coll: db.Collection(SessionEndsCollection)},
		db:            db,
	}
}

// EnsureIndexes creates the indexes the stores rely on. It is idempotent.
func (s *Stores) EnsureIndexes(ctx context.Context) error {
	if err := s.Organizations.ensureIndexes(ctx); err != nil {
		return err
	}
	return s.Sessions.ensureIndexes(ctx)
}

// Ping checks that the database answers; errs.Unavailable when it does not.
func (s *Stores) Ping(ctx context.Context) error {
	return mapErr(s.db.Client().Ping(ctx, readpref.Primary()), "ping")
}

// ConnectOption adjusts the client Connect opens.
type ConnectOption func(*options.ClientOptions)

// MaxPool caps the client's connections at n, whatever the URI says. On
// FerretDB every connection re-reads the whole SQLite schema after any
// collection is created, so a reader that needs few should hold few.
func MaxPool(n uint64) ConnectOption {
	return func(o *options.ClientOptions) { o.SetMaxPoolSize(n) }
}

// Connect opens a client to uri whose every operation, server selection
// included, gives up after timeout, so that requests fail fast while the
// database is down and succeed again, without a restart, once it is back.
func Connect(uri string, timeout time.Duration, opts ...ConnectOption) (*mongo.Client, error) {
	o := options.Client().ApplyURI(uri).
		SetTimeout(timeout).
		SetServerSelectionTimeout(timeout).
		SetConnectTimeout(timeout).
		SetAppName("orgservice")
	for _, opt := range opts {
		opt(o)
	}
	c, err := mongo.Connect(o)
	if err != nil {
		return nil, fmt.Errorf("mongo connect: %w", err)
	}
	return c, nil
}

// mapErr translates a driver error into the domain's kinds. The driver's
// text is kept only as the cause, which is logged and never shown.
func mapErr(err error, op string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, mongo.ErrNoDocuments):
		return errs.Errorf(errs.NotFound, "organization not found")
	case mongo.IsDuplicateKeyError(err):
		return errs.Wrap(errs.Conflict, err, "already exists")
	case unavailable(err):
		return errs.Wrap(errs.Unavailable, err, "the database is unavailable")
	}
	var oe *errs.Error
	if errors.As(err, &oe) {
		return err
	}
	return errs.Wrap(errs.Internal, err, op)
}

func unavailable(err error) bool {
	return mongo.IsTimeout(err) || mongo.IsNetworkError(err) || busy(err) ||
		errors.As(err, &topology.ServerSelectionError{}) ||
		errors.Is(err, mongo.ErrClientDisconnected) ||
		errors.Is(err, context.DeadlineExceeded)
}

// decodeOne reads the document a FindOne found into v. bson.Unmarshal
// reuses pooled readers, where SingleResult.Decode (and Cursor.All, for
// every document) allocates a 4 KiB buffered reader: on a GET that was the
// largest allocation of the request.
func decodeOne(sr *mongo.SingleResult, v any) error {
	raw, err := sr.Raw()
	if err != nil {
		return err
	}
	return bson.Unmarshal(raw, v)
}

// decodeAll reads every document of cur into a T (see decodeOne) and closes cur.
func decodeAll[T any](ctx context.Context, cur *mongo.Cursor) ([]T, error) {
	defer cur.Close(context.WithoutCancel(ctx))
	var out []T
	for cur.Next(ctx) {
		var v T
		if err := bson.Unmarshal(cur.Current, &v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, cur.Err()
}

// busy reports a server too busy to take the write now: FerretDB's SQLite
// gives up waiting for its lock after 10 s ("database is locked",
// SQLITE_BUSY) and says so in an InternalError. A retry later succeeds:
// it is unavailability, not a fault.
func busy(err error) bool {
	var se mongo.ServerError
	return errors.As(err, &se) && (strings.Contains(se.Error(), "SQLITE_BUSY") || strings.Contains(se.Error(), "database is locked"))
}

// serverCode returns the server's error code, or 0.
func serverCode(err error) int {
	var se mongo.ServerError
	if errors.As(err, &se) {
		for _, c := range []int{48, 26, 59, 115, 20} {
			if se.HasErrorCode(c) {
				return c
			}
		}
	}
	return 0
}

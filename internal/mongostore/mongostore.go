// Package mongostore implements org.Store, and the rate limits' shared
// counts (RateLimits), over the official MongoDB driver. It runs unchanged on
// MongoDB and on FerretDB, and depends on nothing either lacks: no
// transactions, no $out, no dropTarget, no guarded update for exclusion
// (names, leases and rate-limit slots are taken by inserts under unique keys).
package mongostore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/topology"

	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/org"
)

// Collection names in the service's database.
const (
	OrganizationsCollection = "organizations"
	claimsCollection        = "claims"
	leasesCollection        = "leases"
)

// DefaultBatchSize is how many documents a copy moves per insertMany.
const DefaultBatchSize = 1000

// Store is an org.Store over one MongoDB database.
type Store struct {
	db        *mongo.Database
	orgs      *mongo.Collection
	claims    *mongo.Collection
	leases    *mongo.Collection
	changes   *mongo.Collection
	audit     *mongo.Collection
	batchSize int

	// hint is this store's idea of the change log's head, for AppendChange.
	hint struct {
		sync.Mutex
		seq int64
		at  time.Time
	}
}

var _ org.Store = (*Store)(nil)

// New returns a Store over db that copies batchSize documents at a time (0: DefaultBatchSize).
func New(db *mongo.Database, batchSize int) *Store {
	if batchSize <= 0 {
		batchSize = DefaultBatchSize
	}
	return &Store{
		db:        db,
		orgs:      db.Collection(OrganizationsCollection),
		claims:    db.Collection(claimsCollection),
		leases:    db.Collection(leasesCollection),
		changes:   db.Collection(changesCollection),
		audit:     db.Collection(AuditCollection),
		batchSize: batchSize,
	}
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

// EnsureIndexes creates the unique indexes the metadata relies on. It is
// idempotent and creates one index per command (FerretDB v1 drops the
// connection when one createIndexes names several existing indexes).
func (s *Store) EnsureIndexes(ctx context.Context) error {
	for _, field := range []string{"slug", "admin_email"} {
		_, err := s.orgs.Indexes().CreateOne(ctx, mongo.IndexModel{
			Keys:    bson.D{{Key: field, Value: 1}},
			Options: options.Index().SetUnique(true).SetName(field + "_unique"),
		})
		if err != nil {
			return mapErr(err, "ensure index "+field)
		}
	}
	return nil
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	return mapErr(s.db.Client().Ping(ctx, readpref.Primary()), "ping")
}

// NewID returns a fresh ObjectID in hex.
func (s *Store) NewID() string { return bson.NewObjectID().Hex() }

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

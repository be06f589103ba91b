package mongostore

import (
	"context"
	"errors"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/org"
)

// Tenants are the organizations' own collections, org_<slug>. It
// implements org.Tenants.
type Tenants struct {
	db        *mongo.Database
	batchSize int
}

var _ org.Tenants = (*Tenants)(nil)

func newTenants(db *mongo.Database, batchSize int) *Tenants {
	if batchSize <= 0 {
		batchSize = DefaultBatchSize
	}
	return &Tenants{db: db, batchSize: batchSize}
}

// Create creates an empty collection, dropping any leftover of that
// name first: a new organization never inherits documents.
func (s *Tenants) Create(ctx context.Context, name string) error {
	if err := s.Drop(ctx, name); err != nil {
		return err
	}
	return mapErr(s.db.CreateCollection(ctx, name), "create collection")
}

// Drop drops a collection; a missing one is not an error.
func (s *Tenants) Drop(ctx context.Context, name string) error {
	return mapErr(s.db.Collection(name).Drop(ctx), "drop collection")
}

// Exists reports whether the collection exists.
func (s *Tenants) Exists(ctx context.Context, name string) (bool, error) {
	names, err := s.db.ListCollectionNames(ctx, bson.D{{Key: "name", Value: name}})
	if err != nil {
		return false, mapErr(err, "list collections")
	}
	return slices.Contains(names, name), nil
}

// List lists the tenant collections.
func (s *Tenants) List(ctx context.Context) ([]string, error) {
	names, err := s.db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return nil, mapErr(err, "list collections")
	}
	out := names[:0]
	for _, n := range names {
		if strings.HasPrefix(n, org.CollectionPrefix) {
			out = append(out, n)
		}
	}
	return out, nil
}

// Count counts the documents of a collection.
func (s *Tenants) Count(ctx context.Context, name string) (int64, error) {
	n, err := s.db.Collection(name).CountDocuments(ctx, bson.D{})
	return n, mapErr(err, "count documents")
}

// Rename renames from to to with renameCollection, an O(1) change of
// metadata. It never drops a target: errs.Conflict when to exists.
func (s *Tenants) Rename(ctx context.Context, from, to string) error {
	db := s.db.Name()
	err := s.db.Client().Database("admin").RunCommand(ctx, bson.D{
		{Key: "renameCollection", Value: db + "." + from},
		{Key: "to", Value: db + "." + to},
	}).Err()
	switch serverCode(err) {
	case 0:
		return mapErr(err, "rename collection")
	case 48: // NamespaceExists
		return errs.Wrap(errs.Conflict, err, "target collection exists")
	case 26: // NamespaceNotFound
		return errs.Wrap(errs.NotFound, err, "source collection not found")
	default: // CommandNotFound, CommandNotSupported, IllegalOperation
		return org.ErrRenameUnsupported
	}
}

// Copy copies from into to in batches of unordered inserts, skipping
// the first skip documents. Documents already in to (a resumed copy) are
// skipped by their duplicate _id, which makes the copy idempotent.
func (s *Tenants) Copy(ctx context.Context, from, to string, skip int64, progress func(int64) error) error {
	cur, err := s.db.Collection(from).Find(ctx, bson.D{},
		options.Find().SetSkip(skip).SetBatchSize(int32(s.batchSize)))
	if err != nil {
		return mapErr(err, "copy: find")
	}
	defer cur.Close(context.WithoutCancel(ctx))
	target := s.db.Collection(to)
	batch := make([]any, 0, s.batchSize)
	done := skip
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		_, err := target.InsertMany(ctx, batch, options.InsertMany().SetOrdered(false))
		if err != nil && !onlyDuplicates(err) {
			return mapErr(err, "copy: insert")
		}
		done += int64(len(batch))
		batch = batch[:0]
		return progress(done)
	}
	for cur.Next(ctx) {
		batch = append(batch, bson.Raw(slices.Clone(cur.Current)))
		if len(batch) == s.batchSize {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := cur.Err(); err != nil {
		return mapErr(err, "copy: read")
	}
	return flush()
}

// onlyDuplicates reports whether every failure in a bulk insert was a
// duplicate key: documents a resumed copy had already moved, or audit
// events written before.
func onlyDuplicates(err error) bool {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return false
	}
	for _, we := range bwe.WriteErrors {
		if we.Code != 11000 {
			return false
		}
	}
	return true
}

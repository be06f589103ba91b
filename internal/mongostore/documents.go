package mongostore

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgservice/orgservice/internal/document"
	"github.com/orgservice/orgservice/internal/errs"
)

// Collections of the documents service, beside the organizations'.
const (
	versionsCollection = "doc_versions" // version claims: _id "<org>/<doc>/<created ms>/<version>[~gen]"
	writersCollection  = "doc_writers"  // writer registrations: _id "<org>/<instance>/<n>"
)

// exportBatch is how many documents an export's cursor holds at a time.
const exportBatch = 500

// Documents are the documents inside the tenant collections. It implements
// document.Store.
type Documents struct {
	db *mongo.Database
}

var _ document.Store = (*Documents)(nil)

func docNotFound() error { return errs.Errorf(errs.NotFound, "document not found") }

// NewID returns a fresh document id: an ObjectID in hex.
func (s *Documents) NewID() string { return bson.NewObjectID().Hex() }

// Insert stores d in coll; errs.Conflict when coll holds its id.
func (s *Documents) Insert(ctx context.Context, coll string, d *document.Document) error {
	_, err := s.db.Collection(coll).InsertOne(ctx, toStored(d))
	return mapErr(err, "insert document")
}

// Find returns the document id of coll; errs.NotFound when none.
func (s *Documents) Find(ctx context.Context, coll, id string) (*document.Document, error) {
	raw, err := s.db.Collection(coll).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, docNotFound()
	}
	if err != nil {
		return nil, mapErr(err, "find document")
	}
	d, err := fromStored(raw)
	if err != nil {
		return nil, errs.Wrap(errs.Internal, err, "decode document")
	}
	return d, nil
}

// versionFilter selects one life of a document at one version.
func versionFilter(id string, version int64, created time.Time) bson.D {
	return bson.D{{Key: "_id", Value: id}, {Key: "version", Value: version}, {Key: "created_at", Value: created}}
}

// Replace writes d over the document of coll at version from.
func (s *Documents) Replace(ctx context.Context, coll string, d *document.Document, from int64) (bool, error) {
	res, err := s.db.Collection(coll).UpdateOne(ctx, versionFilter(d.ID, from, d.CreatedAt), bson.D{{Key: "$set", Value: bson.D{
		{Key: "data", Value: toBSON(d.Data)},
		{Key: "version", Value: narrow(d.Version)},
		{Key: "updated_at", Value: d.UpdatedAt},
	}}})
	if err != nil {
		return false, mapErr(err, "replace document")
	}
	return res.MatchedCount == 1, nil
}

// Delete removes d from coll if it is still at d.Version.
func (s *Documents) Delete(ctx context.Context, coll string, d *document.Document) (bool, error) {
	res, err := s.db.Collection(coll).DeleteOne(ctx, versionFilter(d.ID, d.Version, d.CreatedAt))
	if err != nil {
		return false, mapErr(err, "delete document")
	}
	return res.DeletedCount == 1, nil
}

// List returns a page of coll in _id order. Only string ids are
// listed: $gt on a string brackets the type, so "" starts at the first.
func (s *Documents) List(ctx context.Context, coll string, q document.Query) ([]*document.Document, error) {
	filter := bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: q.After}}}}
	for _, f := range q.Filters {
		filter = append(filter, bson.E{Key: "data." + f.Field, Value: toBSON(f.Value)})
	}
	cur, err := s.db.Collection(coll).Find(ctx, filter,
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(q.Limit)))
	if err != nil {
		return nil, mapErr(err, "list documents")
	}
	defer cur.Close(context.WithoutCancel(ctx))
	var out []*document.Document
	for cur.Next(ctx) {
		d, err := fromStored(cur.Current)
		if err != nil {
			return nil, errs.Wrap(errs.Internal, err, "decode document")
		}
		out = append(out, d)
	}
	return out, mapErr(cur.Err(), "list documents")
}

// Each streams every document of coll to fn.
func (s *Documents) Each(ctx context.Context, coll string, fn func(*document.Document) error) error {
	cur, err := s.db.Collection(coll).Find(ctx, bson.D{}, options.Find().SetBatchSize(exportBatch))
	if err != nil {
		return mapErr(err, "export documents")
	}
	defer cur.Close(context.WithoutCancel(ctx))
	for cur.Next(ctx) {
		d, err := fromStored(cur.Current)
		if err != nil {
			return errs.Wrap(errs.Internal, err, "decode document")
		}
		if err := fn(d); err != nil {
			return err
		}
	}
	return mapErr(cur.Err(), "export documents")
}

// InsertMany inserts docs unordered and returns the indexes of those
// whose id coll already held.
func (s *Documents) InsertMany(ctx context.Context, coll string, docs []*document.Document) ([]int, error) {
	batch := make([]any, len(docs))
	for i, d := range docs {
		batch[i] = toStored(d)
	}
	_, err := s.db.Collection(coll).InsertMany(ctx, batch, options.InsertMany().SetOrdered(false))
	if err == nil {
		return nil, nil
	}
	if !onlyDuplicates(err) {
		return nil, mapErr(err, "import documents")
	}
	var bwe mongo.BulkWriteException
	errors.As(err, &bwe)
	existing := make([]int, len(bwe.WriteErrors))
	for i, we := range bwe.WriteErrors {
		existing[i] = we.Index
	}
	return existing, nil
}

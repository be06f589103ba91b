package mongostore

import (
	"context"
	"encoding/base64"
	"errors"
	"math"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgservice/orgservice/internal/document"
	"github.com/orgservice/orgservice/internal/org"
)

// Collections of the documents service, beside the organizations'.
const (
	versionsCollection = "doc_versions" // version claims: _id "<org>/<doc>/<created ms>/<version>[~gen]"
	writersCollection  = "doc_writers"  // writer registrations: _id "<org>/<instance>/<n>"
)

// exportBatch is how many documents an export's cursor holds at a time.
const exportBatch = 500

var _ document.Store = (*Store)(nil)

// A tenant document is stored as {_id, data, version, created_at,
// updated_at}, so that a person opening the collection in a database shell
// sees each document as the API shows it. Integers that fit are stored as
// int32, the others as int64, fractions as doubles.

func toStored(d *document.Document) bson.D {
	return bson.D{
		{Key: "_id", Value: d.ID},
		{Key: "data", Value: toBSON(d.Data)},
		{Key: "version", Value: narrow(d.Version)},
		{Key: "created_at", Value: d.CreatedAt},
		{Key: "updated_at", Value: d.UpdatedAt},
	}
}

// toBSON converts a document value. Values are never documents the client
// chose to be operators: they are stored under data, and filters compare
// them by equality only.
func toBSON(v any) any {
	switch v := v.(type) {
	case document.Object:
		out := make(bson.D, len(v))
		for i, m := range v {
			out[i] = bson.E{Key: m.Key, Value: toBSON(m.Value)}
		}
		return out
	case []any:
		out := make(bson.A, len(v))
		for i, e := range v {
			out[i] = toBSON(e)
		}
		return out
	case int64:
		return narrow(v)
	}
	return v
}

func narrow(n int64) any {
	if n >= math.MinInt32 && n <= math.MaxInt32 {
		return int32(n)
	}
	return n
}

// fromStored reads a tenant document. Documents put there by other means
// than the API are shown as well as they can be: a non-string _id as its
// text, no data object as data made of the other fields.
func fromStored(raw bson.Raw) (*document.Document, error) {
	elems, err := raw.Elements()
	if err != nil {
		return nil, err
	}
	d := &document.Document{}
	var rest document.Object
	hasData := false
	for _, e := range elems {
		v := e.Value()
		switch e.Key() {
		case "_id":
			if s, ok := v.StringValueOK(); ok {
				d.ID = s
			} else {
				d.ID = text(v)
			}
			continue
		case "data":
			if v.Type == bson.TypeEmbeddedDocument {
				obj, err := fromDocument(v.Document())
				if err != nil {
					return nil, err
				}
				d.Data, hasData = obj, true
				continue
			}
		case "version":
			if n, ok := v.AsInt64OK(); ok {
				d.Version = n
				continue
			}
		case "created_at":
			if t, ok := v.TimeOK(); ok {
				d.CreatedAt = t.UTC()
				continue
			}
		case "updated_at":
			if t, ok := v.TimeOK(); ok {
				d.UpdatedAt = t.UTC()
				continue
			}
		}
		val, err := fromBSON(v)
		if err != nil {
			return nil, err
		}
		rest = append(rest, document.Member{Key: e.Key(), Value: val})
	}
	if !hasData {
		d.Data = rest
		if d.Data == nil {
			d.Data = document.Object{}
		}
	}
	return d, nil
}

func fromDocument(raw bson.Raw) (document.Object, error) {
	elems, err := raw.Elements()
	if err != nil {
		return nil, err
	}
	out := make(document.Object, len(elems))
	for i, e := range elems {
		v, err := fromBSON(e.Value())
		if err != nil {
			return nil, err
		}
		out[i] = document.Member{Key: e.Key(), Value: v}
	}
	return out, nil
}

// fromBSON converts a stored value to a document value; BSON types JSON
// lacks become strings.
func fromBSON(v bson.RawValue) (any, error) {
	switch v.Type {
	case bson.TypeEmbeddedDocument:
		return fromDocument(v.Document())
	case bson.TypeArray:
		vals, err := v.Array().Values()
		if err != nil {
			return nil, err
		}
		out := make([]any, len(vals))
		for i, e := range vals {
			if out[i], err = fromBSON(e); err != nil {
				return nil, err
			}
		}
		return out, nil
	case bson.TypeInt32:
		return int64(v.Int32()), nil
	case bson.TypeInt64:
		return v.Int64(), nil
	case bson.TypeDouble:
		return v.Double(), nil
	case bson.TypeString:
		return v.StringValue(), nil
	case bson.TypeBoolean:
		return v.Boolean(), nil
	case bson.TypeNull, bson.TypeUndefined:
		return nil, nil
	}
	return text(v), nil
}

// text is a value of a type JSON lacks, as a string.
func text(v bson.RawValue) string {
	switch v.Type {
	case bson.TypeObjectID:
		return v.ObjectID().Hex()
	case bson.TypeDateTime:
		return v.Time().UTC().Format(time.RFC3339Nano)
	case bson.TypeDecimal128:
		return v.Decimal128().String()
	case bson.TypeInt32, bson.TypeInt64:
		return strconv.FormatInt(v.AsInt64(), 10)
	case bson.TypeBinary:
		_, data := v.Binary()
		return base64.StdEncoding.EncodeToString(data)
	}
	return v.String()
}

func docNotFound() error { return org.Errorf(org.KindNotFound, "document not found") }

// InsertDocument stores d in coll; KindConflict when coll holds its id.
func (s *Store) InsertDocument(ctx context.Context, coll string, d *document.Document) error {
	_, err := s.db.Collection(coll).InsertOne(ctx, toStored(d))
	return mapErr(err, "insert document")
}

// FindDocument returns the document id of coll; KindNotFound when none.
func (s *Store) FindDocument(ctx context.Context, coll, id string) (*document.Document, error) {
	raw, err := s.db.Collection(coll).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, docNotFound()
	}
	if err != nil {
		return nil, mapErr(err, "find document")
	}
	d, err := fromStored(raw)
	if err != nil {
		return nil, org.Wrap(org.KindInternal, err, "decode document")
	}
	return d, nil
}

// versionFilter selects one life of a document at one version.
func versionFilter(id string, version int64, created time.Time) bson.D {
	return bson.D{{Key: "_id", Value: id}, {Key: "version", Value: version}, {Key: "created_at", Value: created}}
}

// ReplaceDocument writes d over the document of coll at version from.
func (s *Store) ReplaceDocument(ctx context.Context, coll string, d *document.Document, from int64) (bool, error) {
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

// DeleteDocument removes d from coll if it is still at d.Version.
func (s *Store) DeleteDocument(ctx context.Context, coll string, d *document.Document) (bool, error) {
	res, err := s.db.Collection(coll).DeleteOne(ctx, versionFilter(d.ID, d.Version, d.CreatedAt))
	if err != nil {
		return false, mapErr(err, "delete document")
	}
	return res.DeletedCount == 1, nil
}

// ListDocuments returns a page of coll in _id order. Only string ids are
// listed: $gt on a string brackets the type, so "" starts at the first.
func (s *Store) ListDocuments(ctx context.Context, coll string, q document.Query) ([]*document.Document, error) {
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
			return nil, org.Wrap(org.KindInternal, err, "decode document")
		}
		out = append(out, d)
	}
	return out, mapErr(cur.Err(), "list documents")
}

// EachDocument streams every document of coll to fn.
func (s *Store) EachDocument(ctx context.Context, coll string, fn func(*document.Document) error) error {
	cur, err := s.db.Collection(coll).Find(ctx, bson.D{}, options.Find().SetBatchSize(exportBatch))
	if err != nil {
		return mapErr(err, "export documents")
	}
	defer cur.Close(context.WithoutCancel(ctx))
	for cur.Next(ctx) {
		d, err := fromStored(cur.Current)
		if err != nil {
			return org.Wrap(org.KindInternal, err, "decode document")
		}
		if err := fn(d); err != nil {
			return err
		}
	}
	return mapErr(cur.Err(), "export documents")
}

// InsertDocuments inserts docs unordered and returns the indexes of those
// whose id coll already held.
func (s *Store) InsertDocuments(ctx context.Context, coll string, docs []*document.Document) ([]int, error) {
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

// claimDoc is a version claim (see document/versions.go).
type versionClaimDoc struct {
	Key string    `bson:"_id"`
	At  time.Time `bson:"at"`
}

// InsertClaim takes key; KindConflict when it is taken.
func (s *Store) InsertClaim(ctx context.Context, key string, at time.Time) error {
	_, err := s.db.Collection(versionsCollection).InsertOne(ctx, versionClaimDoc{Key: key, At: at})
	return mapErr(err, "claim version")
}

// ClaimTime returns when key was taken; KindNotFound when it is free.
func (s *Store) ClaimTime(ctx context.Context, key string) (time.Time, error) {
	var c versionClaimDoc
	err := decodeOne(s.db.Collection(versionsCollection).FindOne(ctx, bson.D{{Key: "_id", Value: key}}), &c)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return time.Time{}, org.Errorf(org.KindNotFound, "no such claim")
	}
	if err != nil {
		return time.Time{}, mapErr(err, "read version claim")
	}
	return c.At, nil
}

// DeleteClaim frees key.
func (s *Store) DeleteClaim(ctx context.Context, key string) error {
	_, err := s.db.Collection(versionsCollection).DeleteOne(ctx, bson.D{{Key: "_id", Value: key}})
	return mapErr(err, "free version claim")
}

// writerDoc is a writer registration (see document/writers.go).
type writerDoc struct {
	Key          string    `bson:"_id"`
	OrgID        string    `bson:"org_id"`
	RegisteredAt time.Time `bson:"registered_at"`
	ExpiresAt    time.Time `bson:"expires_at"`
}

// InsertRegistration stores r; KindConflict when its key exists.
func (s *Store) InsertRegistration(ctx context.Context, r document.Registration) error {
	_, err := s.db.Collection(writersCollection).InsertOne(ctx, writerDoc{
		Key: r.Key, OrgID: r.OrgID, RegisteredAt: r.RegisteredAt, ExpiresAt: r.ExpiresAt,
	})
	return mapErr(err, "register writer")
}

// RenewRegistration moves key's expiry; KindNotFound when it is gone.
func (s *Store) RenewRegistration(ctx context.Context, key string, expires time.Time) error {
	res, err := s.db.Collection(writersCollection).UpdateOne(ctx, bson.D{{Key: "_id", Value: key}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "expires_at", Value: expires}}}})
	if err != nil {
		return mapErr(err, "renew writer registration")
	}
	if res.MatchedCount == 0 {
		return org.Errorf(org.KindNotFound, "registration gone")
	}
	return nil
}

// DeleteRegistration removes key.
func (s *Store) DeleteRegistration(ctx context.Context, key string) error {
	_, err := s.db.Collection(writersCollection).DeleteOne(ctx, bson.D{{Key: "_id", Value: key}})
	return mapErr(err, "delete writer registration")
}

// Registrations lists the registrations of orgID. doc_writers holds one
// document per process writing to an organization, so the scan FerretDB
// makes of it is short.
func (s *Store) Registrations(ctx context.Context, orgID string) ([]document.Registration, error) {
	cur, err := s.db.Collection(writersCollection).Find(ctx, bson.D{{Key: "org_id", Value: orgID}})
	if err != nil {
		return nil, mapErr(err, "list writer registrations")
	}
	docs, err := decodeAll[writerDoc](ctx, cur)
	if err != nil {
		return nil, mapErr(err, "read writer registrations")
	}
	out := make([]document.Registration, len(docs))
	for i, d := range docs {
		out[i] = document.Registration{Key: d.Key, OrgID: d.OrgID, RegisteredAt: d.RegisteredAt, ExpiresAt: d.ExpiresAt}
	}
	return out, nil
}

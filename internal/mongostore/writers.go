package mongostore

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgservice/orgservice/internal/document"
	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/usage"
)

// WriterRegistrations is the doc_writers collection: the processes that may
// be writing an organization's documents (see document/writers.go). It
// implements document.Registrations.
type WriterRegistrations struct {
	coll *mongo.Collection
}

var (
	_ document.Registrations = (*WriterRegistrations)(nil)
	_ usage.Writers          = (*WriterRegistrations)(nil)
)

// writerDoc is a writer registration.
type writerDoc struct {
	Key          string    `bson:"_id"`
	OrgID        string    `bson:"org_id"`
	RegisteredAt time.Time `bson:"registered_at"`
	ExpiresAt    time.Time `bson:"expires_at"`
}

// Register stores r; errs.Conflict when its key exists.
func (s *WriterRegistrations) Register(ctx context.Context, r document.Registration) error {
	_, err := s.coll.InsertOne(ctx, writerDoc{
		Key: r.Key, OrgID: r.OrgID, RegisteredAt: r.RegisteredAt, ExpiresAt: r.ExpiresAt,
	})
	return mapErr(err, "register writer")
}

// Renew moves key's expiry; errs.NotFound when it is gone.
func (s *WriterRegistrations) Renew(ctx context.Context, key string, expires time.Time) error {
	res, err := s.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: key}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "expires_at", Value: expires}}}})
	if err != nil {
		return mapErr(err, "renew writer registration")
	}
	if res.MatchedCount == 0 {
		return errs.Errorf(errs.NotFound, "registration gone")
	}
	return nil
}

// Remove deletes key; removing a missing one is not an error.
func (s *WriterRegistrations) Remove(ctx context.Context, key string) error {
	_, err := s.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: key}})
	return mapErr(err, "delete writer registration")
}

// Of lists the registrations of orgID. doc_writers holds one document per
// process writing to an organization, so the scan FerretDB makes of it is
// short.
func (s *WriterRegistrations) Of(ctx context.Context, orgID string) ([]document.Registration, error) {
	cur, err := s.coll.Find(ctx, bson.D{{Key: "org_id", Value: orgID}})
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

// Dead lists the organizations with a registration that expired before
// before: its process stopped renewing it and never removed it.
func (s *WriterRegistrations) Dead(ctx context.Context, before time.Time) ([]string, error) {
	cur, err := s.coll.Find(ctx, bson.D{{Key: "expires_at", Value: bson.D{{Key: "$lt", Value: before}}}})
	if err != nil {
		return nil, mapErr(err, "list dead writer registrations")
	}
	docs, err := decodeAll[writerDoc](ctx, cur)
	if err != nil {
		return nil, mapErr(err, "read dead writer registrations")
	}
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.OrgID
	}
	return ids, nil
}

// RemoveDead removes orgID's registrations that expired before before.
// Their holders never renew them again (document/writers.go), so the
// delete cannot race a renewal that makes one live.
func (s *WriterRegistrations) RemoveDead(ctx context.Context, orgID string, before time.Time) error {
	_, err := s.coll.DeleteMany(ctx, bson.D{{Key: "org_id", Value: orgID}, {Key: "expires_at", Value: bson.D{{Key: "$lt", Value: before}}}})
	return mapErr(err, "remove dead writer registrations")
}

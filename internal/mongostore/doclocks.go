package mongostore

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgservice/orgservice/internal/document"
	"github.com/orgservice/orgservice/internal/errs"
)

// versionClaimDoc is a version claim (see document/versions.go).
type versionClaimDoc struct {
	Key string    `bson:"_id"`
	At  time.Time `bson:"at"`
}

// InsertClaim takes key; errs.Conflict when it is taken.
func (s *Store) InsertClaim(ctx context.Context, key string, at time.Time) error {
	_, err := s.db.Collection(versionsCollection).InsertOne(ctx, versionClaimDoc{Key: key, At: at})
	return mapErr(err, "claim version")
}

// ClaimTime returns when key was taken; errs.NotFound when it is free.
func (s *Store) ClaimTime(ctx context.Context, key string) (time.Time, error) {
	var c versionClaimDoc
	err := decodeOne(s.db.Collection(versionsCollection).FindOne(ctx, bson.D{{Key: "_id", Value: key}}), &c)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return time.Time{}, errs.Errorf(errs.NotFound, "no such claim")
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

// InsertRegistration stores r; errs.Conflict when its key exists.
func (s *Store) InsertRegistration(ctx context.Context, r document.Registration) error {
	_, err := s.db.Collection(writersCollection).InsertOne(ctx, writerDoc{
		Key: r.Key, OrgID: r.OrgID, RegisteredAt: r.RegisteredAt, ExpiresAt: r.ExpiresAt,
	})
	return mapErr(err, "register writer")
}

// RenewRegistration moves key's expiry; errs.NotFound when it is gone.
func (s *Store) RenewRegistration(ctx context.Context, key string, expires time.Time) error {
	res, err := s.db.Collection(writersCollection).UpdateOne(ctx, bson.D{{Key: "_id", Value: key}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "expires_at", Value: expires}}}})
	if err != nil {
		return mapErr(err, "renew writer registration")
	}
	if res.MatchedCount == 0 {
		return errs.Errorf(errs.NotFound, "registration gone")
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

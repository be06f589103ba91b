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

// VersionClaims is the doc_versions collection: who may move a document to
// its next version, while they do (see document/versions.go). It
// implements document.VersionClaims.
type VersionClaims struct {
	coll *mongo.Collection
}

var _ document.VersionClaims = (*VersionClaims)(nil)

// versionClaimDoc is a version claim.
type versionClaimDoc struct {
	Key string    `bson:"_id"`
	At  time.Time `bson:"at"`
}

// Claim takes key, stamped at; errs.Conflict when it is taken.
func (s *VersionClaims) Claim(ctx context.Context, key string, at time.Time) error {
	_, err := s.coll.InsertOne(ctx, versionClaimDoc{Key: key, At: at})
	return mapErr(err, "claim version")
}

// ClaimedAt returns when key was taken; errs.NotFound when it is free.
func (s *VersionClaims) ClaimedAt(ctx context.Context, key string) (time.Time, error) {
	var c versionClaimDoc
	err := decodeOne(s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: key}}), &c)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return time.Time{}, errs.Errorf(errs.NotFound, "no such claim")
	}
	if err != nil {
		return time.Time{}, mapErr(err, "read version claim")
	}
	return c.At, nil
}

// Release frees key.
func (s *VersionClaims) Release(ctx context.Context, key string) error {
	_, err := s.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: key}})
	return mapErr(err, "free version claim")
}

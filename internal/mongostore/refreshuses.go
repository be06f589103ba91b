package mongostore

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgservice/orgservice/internal/errs"
)

// RefreshUsesCollection holds one record per refresh token used.
const RefreshUsesCollection = "refresh_uses"

// RefreshUses records every refresh token used, under the token's SHA-256
// as _id: marking a token used is an insert under a unique key, the one
// write FerretDB makes atomic, so of two refreshes racing with one token
// exactly one marks it (a guarded update of the session could let both
// through). A token presented again is then known as reused (RFC 9700,
// §4.14.2). It implements auth's RefreshUses.
type RefreshUses struct {
	coll *mongo.Collection
}

type refreshUseDoc struct {
	Hash      string    `bson:"_id"`
	SessionID string    `bson:"session_id"`
	UsedAt    time.Time `bson:"used_at"`
	ExpiresAt time.Time `bson:"expires_at"`
}

// Use records the refresh token whose hash is hash as used by session
// sessionID; it is kept until expires, when the token would have expired
// anyway. errs.Conflict when the token was used already.
func (s *RefreshUses) Use(ctx context.Context, hash, sessionID string, expires time.Time) error {
	_, err := s.coll.InsertOne(ctx, refreshUseDoc{
		Hash: hash, SessionID: sessionID, UsedAt: time.Now().UTC(), ExpiresAt: expires,
	})
	if mongo.IsDuplicateKeyError(err) {
		return errs.Wrap(errs.Conflict, err, "the refresh token has been used")
	}
	return mapErr(err, "record refresh token use")
}

// UsedBy returns the session that used the refresh token whose hash is
// hash; errs.NotFound when no session has.
func (s *RefreshUses) UsedBy(ctx context.Context, hash string) (string, error) {
	var d refreshUseDoc
	err := decodeOne(s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: hash}}), &d)
	if err == mongo.ErrNoDocuments {
		return "", errs.Errorf(errs.NotFound, "refresh token not used")
	}
	if err != nil {
		return "", mapErr(err, "find refresh token use")
	}
	return d.SessionID, nil
}

// Prune deletes the records of tokens that expired before t.
func (s *RefreshUses) Prune(ctx context.Context, t time.Time) error {
	_, err := s.coll.DeleteMany(ctx, bson.D{{Key: "expires_at", Value: bson.D{{Key: "$lt", Value: t}}}})
	return mapErr(err, "prune refresh token uses")
}

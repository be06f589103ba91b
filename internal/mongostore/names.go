package mongostore

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/org"
)

// NameClaims is the claims collection: who holds each organization name
// (slug) and member email. It implements org.NameClaims.
type NameClaims struct {
	coll *mongo.Collection
}

var _ org.NameClaims = (*NameClaims)(nil)

// claimDoc holds a name or an email for an organization. Its _id is the key,
// so inserting it is the one atomic test-and-set every server offers.
type claimDoc struct {
	Key       string    `bson:"_id"`
	OrgID     string    `bson:"org_id"`
	CreatedAt time.Time `bson:"created_at"`
}

func (d claimDoc) claim() org.NameClaim {
	return org.NameClaim{Key: d.Key, OrgID: d.OrgID, CreatedAt: d.CreatedAt}
}

// Claim takes key for orgID; idempotent for the same orgID, errs.Conflict
// when another holds it.
func (s *NameClaims) Claim(ctx context.Context, key, orgID string) error {
	for range 2 {
		_, err := s.coll.InsertOne(ctx, claimDoc{Key: key, OrgID: orgID, CreatedAt: time.Now().UTC()})
		if err == nil || !mongo.IsDuplicateKeyError(err) {
			return mapErr(err, "claim")
		}
		var cur claimDoc
		err = s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&cur)
		switch {
		case err == nil && cur.OrgID == orgID:
			return nil
		case err == nil:
			return errs.Errorf(errs.Conflict, "already claimed")
		case err != mongo.ErrNoDocuments:
			return mapErr(err, "read claim")
		}
		// Released in between: try again.
	}
	return errs.Errorf(errs.Conflict, "already claimed")
}

// Release gives key up if orgID holds it.
func (s *NameClaims) Release(ctx context.Context, key, orgID string) error {
	_, err := s.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: key}, {Key: "org_id", Value: orgID}})
	return mapErr(err, "release claim")
}

// Holder returns the claim of key; errs.NotFound when nobody holds it.
func (s *NameClaims) Holder(ctx context.Context, key string) (org.NameClaim, error) {
	var d claimDoc
	if err := decodeOne(s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: key}}), &d); err != nil {
		return org.NameClaim{}, mapErr(err, "read claim")
	}
	return d.claim(), nil
}

// List returns every claim.
func (s *NameClaims) List(ctx context.Context) ([]org.NameClaim, error) {
	cur, err := s.coll.Find(ctx, bson.D{})
	if err != nil {
		return nil, mapErr(err, "find claims")
	}
	docs, err := decodeAll[claimDoc](ctx, cur)
	if err != nil {
		return nil, mapErr(err, "read claims")
	}
	out := make([]org.NameClaim, len(docs))
	for i, d := range docs {
		out[i] = d.claim()
	}
	return out, nil
}

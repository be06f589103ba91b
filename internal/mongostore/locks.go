package mongostore

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/org"
)

// claimDoc holds a name or an email for an organization. Its _id is the key,
// so inserting it is the one atomic test-and-set every server offers.
type claimDoc struct {
	Key       string    `bson:"_id"`
	OrgID     string    `bson:"org_id"`
	CreatedAt time.Time `bson:"created_at"`
}

// leaseDoc gives one operation exclusive use of an organization until it expires.
type leaseDoc struct {
	OrgID     string    `bson:"_id"`
	Owner     string    `bson:"owner"`
	ExpiresAt time.Time `bson:"expires_at"`
}

// Claim takes key for orgID; idempotent for the same orgID, errs.Conflict
// when another holds it.
func (s *Store) Claim(ctx context.Context, key, orgID string) error {
	for range 2 {
		_, err := s.claims.InsertOne(ctx, claimDoc{Key: key, OrgID: orgID, CreatedAt: time.Now().UTC()})
		if err == nil || !mongo.IsDuplicateKeyError(err) {
			return mapErr(err, "claim")
		}
		var cur claimDoc
		err = s.claims.FindOne(ctx, bson.D{{Key: "_id", Value: key}}).Decode(&cur)
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
func (s *Store) Release(ctx context.Context, key, orgID string) error {
	_, err := s.claims.DeleteOne(ctx, bson.D{{Key: "_id", Value: key}, {Key: "org_id", Value: orgID}})
	return mapErr(err, "release claim")
}

// ClaimByKey returns the claim of key; errs.NotFound when nobody holds it.
func (s *Store) ClaimByKey(ctx context.Context, key string) (org.Claim, error) {
	var d claimDoc
	if err := decodeOne(s.claims.FindOne(ctx, bson.D{{Key: "_id", Value: key}}), &d); err != nil {
		return org.Claim{}, mapErr(err, "read claim")
	}
	return org.Claim{Key: d.Key, OrgID: d.OrgID, CreatedAt: d.CreatedAt}, nil
}

// Claims lists every claim.
func (s *Store) Claims(ctx context.Context) ([]org.Claim, error) {
	cur, err := s.claims.Find(ctx, bson.D{})
	if err != nil {
		return nil, mapErr(err, "find claims")
	}
	docs, err := decodeAll[claimDoc](ctx, cur)
	if err != nil {
		return nil, mapErr(err, "read claims")
	}
	out := make([]org.Claim, len(docs))
	for i, d := range docs {
		out[i] = org.Claim{Key: d.Key, OrgID: d.OrgID, CreatedAt: d.CreatedAt}
	}
	return out, nil
}

// AcquireLease takes the lease of orgID for owner, taking over an expired
// one; errs.Busy when another owner holds a live lease.
//
// Taking over deletes the expired lease by its exact owner and expiry and
// inserts a new one; of several instances taking over at once, only one
// insert succeeds.
func (s *Store) AcquireLease(ctx context.Context, orgID, owner string, ttl time.Duration) error {
	for range 2 {
		now := time.Now().UTC()
		_, err := s.leases.InsertOne(ctx, leaseDoc{OrgID: orgID, Owner: owner, ExpiresAt: now.Add(ttl)})
		if err == nil || !mongo.IsDuplicateKeyError(err) {
			return mapErr(err, "acquire lease")
		}
		var cur leaseDoc
		err = s.leases.FindOne(ctx, bson.D{{Key: "_id", Value: orgID}}).Decode(&cur)
		switch {
		case err == mongo.ErrNoDocuments:
			continue
		case err != nil:
			return mapErr(err, "read lease")
		case cur.ExpiresAt.After(now):
			return errs.Errorf(errs.Busy, "another operation on this organization is in progress; retry shortly")
		}
		_, err = s.leases.DeleteOne(ctx, bson.D{
			{Key: "_id", Value: orgID}, {Key: "owner", Value: cur.Owner}, {Key: "expires_at", Value: cur.ExpiresAt},
		})
		if err != nil {
			return mapErr(err, "expire lease")
		}
	}
	return errs.Errorf(errs.Busy, "another operation on this organization is in progress; retry shortly")
}

// RenewLease extends owner's lease; errs.Busy when owner no longer holds it.
func (s *Store) RenewLease(ctx context.Context, orgID, owner string, ttl time.Duration) error {
	res, err := s.leases.UpdateOne(ctx,
		bson.D{{Key: "_id", Value: orgID}, {Key: "owner", Value: owner}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "expires_at", Value: time.Now().UTC().Add(ttl)}}}})
	if err != nil {
		return mapErr(err, "renew lease")
	}
	if res.MatchedCount == 0 {
		return errs.Errorf(errs.Busy, "lease lost")
	}
	return nil
}

// ReleaseLease removes owner's lease.
func (s *Store) ReleaseLease(ctx context.Context, orgID, owner string) error {
	_, err := s.leases.DeleteOne(ctx, bson.D{{Key: "_id", Value: orgID}, {Key: "owner", Value: owner}})
	return mapErr(err, "release lease")
}

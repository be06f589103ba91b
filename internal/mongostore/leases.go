package mongostore

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/org"
)

// Leases is the leases collection: the one operation running on each
// organization. It implements org.Leases and the directory's reads of them.
type Leases struct {
	coll *mongo.Collection
}

var _ org.Leases = (*Leases)(nil)

// leaseDoc gives one operation exclusive use of an organization until it expires.
type leaseDoc struct {
	OrgID     string    `bson:"_id"`
	Owner     string    `bson:"owner"`
	ExpiresAt time.Time `bson:"expires_at"`
}

func leaseBusy() error {
	return errs.Errorf(errs.Busy, "another operation on this organization is in progress; retry shortly")
}

// Acquire takes the lease of orgID for owner, taking over an expired one;
// errs.Busy when another owner holds a live lease.
//
// Taking over deletes the expired lease by its exact owner and expiry and
// inserts a new one; of several instances taking over at once, only one
// insert succeeds.
func (s *Leases) Acquire(ctx context.Context, orgID, owner string, ttl time.Duration) error {
	for range 2 {
		now := time.Now().UTC()
		_, err := s.coll.InsertOne(ctx, leaseDoc{OrgID: orgID, Owner: owner, ExpiresAt: now.Add(ttl)})
		if err == nil || !mongo.IsDuplicateKeyError(err) {
			return mapErr(err, "acquire lease")
		}
		var cur leaseDoc
		err = s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: orgID}}).Decode(&cur)
		switch {
		case err == mongo.ErrNoDocuments:
			continue
		case err != nil:
			return mapErr(err, "read lease")
		case cur.ExpiresAt.After(now):
			return leaseBusy()
		}
		_, err = s.coll.DeleteOne(ctx, bson.D{
			{Key: "_id", Value: orgID}, {Key: "owner", Value: cur.Owner}, {Key: "expires_at", Value: cur.ExpiresAt},
		})
		if err != nil {
			return mapErr(err, "expire lease")
		}
	}
	return leaseBusy()
}

// Renew extends owner's lease; errs.Busy when owner no longer holds it.
func (s *Leases) Renew(ctx context.Context, orgID, owner string, ttl time.Duration) error {
	res, err := s.coll.UpdateOne(ctx,
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

// Release removes owner's lease.
func (s *Leases) Release(ctx context.Context, orgID, owner string) error {
	_, err := s.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: orgID}, {Key: "owner", Value: owner}})
	return mapErr(err, "release lease")
}

// Leased lists the organizations that have a lease, live or expired.
func (s *Leases) Leased(ctx context.Context) ([]string, error) {
	cur, err := s.coll.Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, mapErr(err, "find leases")
	}
	docs, err := decodeAll[struct {
		ID string `bson:"_id"`
	}](ctx, cur)
	if err != nil {
		return nil, mapErr(err, "read leases")
	}
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	return ids, nil
}

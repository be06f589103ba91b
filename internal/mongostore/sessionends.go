package mongostore

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgservice/orgservice/internal/org"
)

// SessionEndsCollection holds the session ends in progress.
const SessionEndsCollection = "session_ends"

// SessionEnds holds each session end from its start until it has been
// written and announced: one killed half-way is found here and finished
// by any instance. The collection holds only ends in progress, so finding
// them costs next to nothing even where every query reads through it. It
// implements auth's SessionEnds.
type SessionEnds struct {
	coll *mongo.Collection
}

type sessionEndDoc struct {
	SessionID string    `bson:"_id"`
	OrgID     string    `bson:"org_id"`
	Reason    string    `bson:"reason"`
	At        time.Time `bson:"at"`
	Until     time.Time `bson:"until"`
}

// Begin records that e is in progress; beginning it again is a no-op.
func (s *SessionEnds) Begin(ctx context.Context, e org.SessionEnd) error {
	_, err := s.coll.InsertOne(ctx, sessionEndDoc{
		SessionID: e.SessionID, OrgID: e.OrgID, Reason: e.Reason, At: e.At, Until: e.Until,
	})
	if mongo.IsDuplicateKeyError(err) {
		return nil
	}
	return mapErr(err, "begin session end")
}

// Done forgets the end of session id: it is written and announced.
func (s *SessionEnds) Done(ctx context.Context, id string) error {
	_, err := s.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	return mapErr(err, "finish session end")
}

// Unfinished lists the ends begun before t and not done.
func (s *SessionEnds) Unfinished(ctx context.Context, t time.Time) ([]org.SessionEnd, error) {
	cur, err := s.coll.Find(ctx, bson.D{{Key: "at", Value: bson.D{{Key: "$lt", Value: t}}}})
	if err != nil {
		return nil, mapErr(err, "find session ends")
	}
	docs, err := decodeAll[sessionEndDoc](ctx, cur)
	if err != nil {
		return nil, mapErr(err, "read session ends")
	}
	out := make([]org.SessionEnd, len(docs))
	for i, d := range docs {
		out[i] = org.SessionEnd{SessionID: d.SessionID, OrgID: d.OrgID, Reason: d.Reason, At: d.At.UTC(), Until: d.Until.UTC()}
	}
	return out, nil
}

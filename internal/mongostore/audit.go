package mongostore

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgservice/orgservice/internal/org"
)

// AuditCollection holds every organization's audit events.
const AuditCollection = "audit"

// AuditLog is the audit collection: every organization's events, kept
// after it is deleted. It implements org.AuditLog.
type AuditLog struct {
	coll *mongo.Collection
}

var _ org.AuditLog = (*AuditLog)(nil)

// eventDoc is an audit event. Its _id is the organization's id, "/" and
// the event's id: an organization's events are one range of the _id index,
// in time order, so a page is an index range scan on MongoDB.
type eventDoc struct {
	ID        string            `bson:"_id"`
	OrgID     string            `bson:"org_id"`
	Time      time.Time         `bson:"time"`
	Actor     actorDoc          `bson:"actor"`
	Action    string            `bson:"action"`
	Target    targetDoc         `bson:"target"`
	Details   map[string]string `bson:"details,omitempty"`
	RequestID string            `bson:"request_id,omitempty"`
	// ClientRequestID is the client's X-Request-ID, beside the server's own.
	ClientRequestID string `bson:"client_request_id,omitempty"`
}

type actorDoc struct {
	Type     string `bson:"type,omitempty"` // "operator"; absent for a member
	MemberID string `bson:"member_id"`
	Email    string `bson:"email"`
}

type targetDoc struct {
	Type string `bson:"type"`
	ID   string `bson:"id"`
	Name string `bson:"name"`
}

func eventKey(orgID, id string) string { return orgID + "/" + id }

func toEventDocs(evs []org.Event) []eventDoc {
	if len(evs) == 0 {
		return nil
	}
	out := make([]eventDoc, len(evs))
	for i, e := range evs {
		out[i] = eventDoc{
			ID: eventKey(e.OrgID, e.ID), OrgID: e.OrgID, Time: e.Time,
			Actor:   actorDoc{Type: e.Actor.Type, MemberID: e.Actor.MemberID, Email: e.Actor.Email},
			Action:  string(e.Action),
			Target:  targetDoc{Type: e.Target.Type, ID: e.Target.ID, Name: e.Target.Name},
			Details: e.Details, RequestID: e.RequestID, ClientRequestID: e.ClientRequestID,
		}
	}
	return out
}

func fromEventDocs(ds []eventDoc) []org.Event {
	if len(ds) == 0 {
		return nil
	}
	out := make([]org.Event, len(ds))
	for i, d := range ds {
		out[i] = org.Event{
			ID: d.ID[len(d.OrgID)+1:], OrgID: d.OrgID, Time: d.Time.UTC(),
			Actor:   org.Actor{Type: d.Actor.Type, MemberID: d.Actor.MemberID, Email: d.Actor.Email},
			Action:  org.EventAction(d.Action),
			Target:  org.Target{Type: d.Target.Type, ID: d.Target.ID, Name: d.Target.Name},
			Details: d.Details, RequestID: d.RequestID, ClientRequestID: d.ClientRequestID,
		}
	}
	return out
}

// Insert writes evs in one unordered insert; events written already
// (the same _id) are skipped, so writing an event again is a no-op.
func (s *AuditLog) Insert(ctx context.Context, evs []org.Event) error {
	if len(evs) == 0 {
		return nil
	}
	_, err := s.coll.InsertMany(ctx, toEventDocs(evs), options.InsertMany().SetOrdered(false))
	if err == nil || onlyDuplicates(err) {
		return nil
	}
	return mapErr(err, "insert audit events")
}

// Events returns up to limit events of orgID, newest first, older than the
// event after when it is not "". The filter is a range of _id: on MongoDB an
// index scan; FerretDB 1.24 reads the whole collection for it.
func (s *AuditLog) Events(ctx context.Context, orgID, after string, limit int) ([]org.Event, error) {
	upper := orgID + "0" // "0" follows "/": the end of orgID's range
	if after != "" {
		upper = eventKey(orgID, after)
	}
	filter := bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: orgID + "/"}, {Key: "$lt", Value: upper}}}}
	opts := options.Find().SetSort(bson.D{{Key: "_id", Value: -1}}).SetLimit(int64(limit))
	cur, err := s.coll.Find(ctx, filter, opts)
	if err != nil {
		return nil, mapErr(err, "read audit events")
	}
	ds, err := decodeAll[eventDoc](ctx, cur)
	if err != nil {
		return nil, mapErr(err, "read audit events")
	}
	return fromEventDocs(ds), nil
}

package mongostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/org"
	"github.com/orgservice/orgservice/internal/usage"
)

// Collections of the usage ledger.
const (
	UsageCollection      = "usage"       // _id "<org>/<n, 20 digits>": the chain of each organization's count
	usageMarksCollection = "usage_marks" // _id "<org>/<unix ns, 20 digits>": counts that may have drifted
)

// UsageLedger is the usage and usage_marks collections: each
// organization's count as a chain of entries taken by inserts under unique
// keys (see internal/usage), and the marks of counts to recount. It
// implements usage.Store.
//
// Keys are strings that sort as their numbers do, prefixed by the
// organization's id, so that one organization's entries are one _id range:
// FerretDB pushes a filter on a string _id down to SQLite, and MongoDB
// reads the range from the _id index.
type UsageLedger struct {
	coll  *mongo.Collection
	marks *mongo.Collection
}

var _ usage.Store = (*UsageLedger)(nil)

// usageDoc is one entry of an organization's count.
type usageDoc struct {
	Key          string    `bson:"_id"`
	OrgID        string    `bson:"org_id"`
	N            int64     `bson:"n"`
	Documents    int64     `bson:"documents"`
	StorageBytes int64     `bson:"storage_bytes"`
	At           time.Time `bson:"at"`
	Rebase       bool      `bson:"rebase,omitempty"`
}

func (d usageDoc) entry() usage.Entry {
	return usage.Entry{OrgID: d.OrgID, N: d.N, At: d.At.UTC(), Rebase: d.Rebase,
		Used: org.Usage{Documents: d.Documents, StorageBytes: d.StorageBytes}}
}

type markDoc struct {
	Key   string    `bson:"_id"`
	OrgID string    `bson:"org_id"`
	At    time.Time `bson:"at"`
}

func numberedKey(orgID string, n int64) string { return fmt.Sprintf("%s/%020d", orgID, n) }

// orgRange selects the _ids of orgID's entries or marks, below upTo when
// it is not "".
func orgRange(orgID, upTo string) bson.D {
	end := orgID + "0" // '0' follows '/'
	if upTo != "" {
		end = upTo
	}
	return bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: orgID + "/"}, {Key: "$lt", Value: end}}}}
}

// Append inserts e; errs.Conflict when its number is taken.
func (s *UsageLedger) Append(ctx context.Context, e usage.Entry) error {
	_, err := s.coll.InsertOne(ctx, usageDoc{
		Key: numberedKey(e.OrgID, e.N), OrgID: e.OrgID, N: e.N, At: e.At, Rebase: e.Rebase,
		Documents: e.Used.Documents, StorageBytes: e.Used.StorageBytes,
	})
	return mapErr(err, "append usage")
}

// Head returns orgID's last entry; errs.NotFound when it has none.
func (s *UsageLedger) Head(ctx context.Context, orgID string) (usage.Entry, error) {
	var d usageDoc
	err := decodeOne(s.coll.FindOne(ctx, orgRange(orgID, ""), options.FindOne().SetSort(bson.D{{Key: "_id", Value: -1}})), &d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return usage.Entry{}, errs.Errorf(errs.NotFound, "the organization's usage is not counted")
	}
	if err != nil {
		return usage.Entry{}, mapErr(err, "read usage")
	}
	return d.entry(), nil
}

// Heads returns every organization's last entry, in one read of the
// collection, which pruning keeps to a few entries an organization.
func (s *UsageLedger) Heads(ctx context.Context) (map[string]usage.Entry, error) {
	cur, err := s.coll.Find(ctx, bson.D{})
	if err != nil {
		return nil, mapErr(err, "read usage")
	}
	docs, err := decodeAll[usageDoc](ctx, cur)
	if err != nil {
		return nil, mapErr(err, "read usage")
	}
	out := map[string]usage.Entry{}
	for _, d := range docs {
		if cur, ok := out[d.OrgID]; !ok || d.N > cur.N {
			out[d.OrgID] = d.entry()
		}
	}
	return out, nil
}

// Prune removes orgID's entries below n written before before.
func (s *UsageLedger) Prune(ctx context.Context, orgID string, n int64, before time.Time) error {
	filter := append(orgRange(orgID, numberedKey(orgID, n)), bson.E{Key: "at", Value: bson.D{{Key: "$lt", Value: before}}})
	_, err := s.coll.DeleteMany(ctx, filter)
	return mapErr(err, "prune usage")
}

// Forget removes every entry and mark of orgID.
func (s *UsageLedger) Forget(ctx context.Context, orgID string) error {
	if _, err := s.coll.DeleteMany(ctx, orgRange(orgID, "")); err != nil {
		return mapErr(err, "forget usage")
	}
	_, err := s.marks.DeleteMany(ctx, orgRange(orgID, ""))
	return mapErr(err, "forget usage marks")
}

// Mark records that orgID's count may have drifted.
func (s *UsageLedger) Mark(ctx context.Context, orgID string, at time.Time) error {
	_, err := s.marks.InsertOne(ctx, markDoc{Key: numberedKey(orgID, at.UnixNano()), OrgID: orgID, At: at})
	if mongo.IsDuplicateKeyError(err) {
		return nil // marked at this very nanosecond already
	}
	return mapErr(err, "mark usage")
}

// Marked lists the organizations with marks.
func (s *UsageLedger) Marked(ctx context.Context) ([]string, error) {
	cur, err := s.marks.Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "org_id", Value: 1}}))
	if err != nil {
		return nil, mapErr(err, "read usage marks")
	}
	docs, err := decodeAll[markDoc](ctx, cur)
	if err != nil {
		return nil, mapErr(err, "read usage marks")
	}
	ids := make([]string, 0, len(docs))
	for _, d := range docs {
		ids = append(ids, d.OrgID)
	}
	return ids, nil
}

// Unmark removes orgID's marks made before before.
func (s *UsageLedger) Unmark(ctx context.Context, orgID string, before time.Time) error {
	_, err := s.marks.DeleteMany(ctx, orgRange(orgID, numberedKey(orgID, before.UnixNano())))
	return mapErr(err, "clear usage marks")
}

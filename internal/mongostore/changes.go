package mongostore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/org"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// changesCollection is the change log: one entry per operation that may
// write an organization's metadata, and one per ended session, numbered 1,
// 2, 3… without gaps.
const changesCollection = "changes"

// hintTTL is how long an appender trusts its own idea of the log's head
// before it reads the head again. It must stay well below the log's
// retention (directory.Config.Retention, 2 minutes by default), so that an
// appender never inserts at a number already pruned.
const hintTTL = 15 * time.Second

// ChangeLog is the change log: it announces every write of an
// organization's metadata, and every ended session, to every instance's
// directory. It implements org.ChangeLog, auth's announcements of ended
// sessions and the directory's reads of it.
type ChangeLog struct {
	coll *mongo.Collection

	// hint is this process's idea of the log's head, for Append.
	hint struct {
		sync.Mutex
		seq int64
		at  time.Time
	}
}

var _ org.ChangeLog = (*ChangeLog)(nil)

// changeDoc is one entry of the change log. Its _id is its number, so that
// taking number n is an insert under a unique key: of two appenders only one
// gets n, and the other moves on to n+1. An entry n+1 therefore exists only
// once n does, and a reader that finds no n+1 has read every entry there is.
//
// The number is stored as a zero-padded decimal string, which sorts as the
// number does: FerretDB pushes a filter on a string _id down to SQLite, but
// decodes every document to compare an integer one (measured: 0.65 µs
// against 15 µs a document).
//
// An entry with a session id announces that session's end (its access
// tokens are refused until until) and names no metadata write: instances
// from before sessions re-read its organization, which is harmless.
type changeDoc struct {
	Key       string     `bson:"_id"`
	OrgID     string     `bson:"org_id"`
	At        time.Time  `bson:"at"`
	SessionID string     `bson:"sid,omitempty"`
	Until     *time.Time `bson:"until,omitempty"`
}

func (d changeDoc) change() org.Change {
	c := org.Change{OrgID: d.OrgID}
	if d.SessionID != "" && d.Until != nil {
		c.Ended = &org.SessionEnd{SessionID: d.SessionID, OrgID: d.OrgID, Until: d.Until.UTC()}
	}
	return c
}

func changeKey(seq int64) string { return fmt.Sprintf("%020d", seq) }

func (d changeDoc) seq() (int64, error) { return strconv.ParseInt(d.Key, 10, 64) }

// Append adds an entry naming orgID to the change log. It is called
// after the organization's lease is taken and before its metadata is
// written, so that every write is announced before it happens.
func (s *ChangeLog) Append(ctx context.Context, orgID string) error {
	return s.append(ctx, changeDoc{OrgID: orgID})
}

// AppendSessionEnd announces e to every instance's directory: an entry
// naming the session and until when its access tokens are refused. It
// needs no lease: it writes no metadata.
func (s *ChangeLog) AppendSessionEnd(ctx context.Context, e org.SessionEnd) error {
	until := e.Until.UTC()
	return s.append(ctx, changeDoc{OrgID: e.OrgID, SessionID: e.SessionID, Until: &until})
}

// append inserts d as the entry after the head.
func (s *ChangeLog) append(ctx context.Context, d changeDoc) error {
	s.hint.Lock()
	defer s.hint.Unlock()
	if time.Since(s.hint.at) > hintTTL {
		head, err := s.Head(ctx)
		if err != nil {
			return err
		}
		s.hint.seq, s.hint.at = head, time.Now()
	}
	for {
		n := s.hint.seq + 1
		d.Key, d.At = changeKey(n), time.Now().UTC()
		_, err := s.coll.InsertOne(ctx, d)
		if err != nil && !mongo.IsDuplicateKeyError(err) {
			return mapErr(err, "append change")
		}
		// Either way n exists now: ours, or another appender's.
		s.hint.seq, s.hint.at = n, time.Now()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return mapErr(ctx.Err(), "append change")
		}
	}
}

// At returns entry seq of the change log; errs.NotFound when there is no
// such entry (yet, or any more).
func (s *ChangeLog) At(ctx context.Context, seq int64) (org.Change, error) {
	var d changeDoc
	if err := decodeOne(s.coll.FindOne(ctx, bson.D{{Key: "_id", Value: changeKey(seq)}}), &d); err != nil {
		return org.Change{}, mapErr(err, "read change")
	}
	return d.change(), nil
}

// After returns entries seq+1, seq+2, … in order, at most limit, stopping
// before the first number it does not find. The usual answer, none, costs
// one lookup of seq+1.
func (s *ChangeLog) After(ctx context.Context, seq int64, limit int) ([]org.Change, error) {
	first, err := s.At(ctx, seq+1)
	if errs.Is(err, errs.NotFound) {
		return nil, nil
	}
	if err != nil || limit == 1 {
		return []org.Change{first}, err
	}
	cur, err := s.coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: changeKey(seq)}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, mapErr(err, "read changes")
	}
	docs, err := decodeAll[changeDoc](ctx, cur)
	if err != nil {
		return nil, mapErr(err, "read changes")
	}
	var out []org.Change
	for _, d := range docs {
		n, err := d.seq()
		if err != nil || n != seq+int64(len(out))+1 {
			break // a number not visible yet: the rest next time
		}
		out = append(out, d.change())
	}
	return out, nil
}

// Head returns the number of the change log's last entry, 0 when it is empty.
func (s *ChangeLog) Head(ctx context.Context) (int64, error) {
	var d changeDoc
	err := decodeOne(s.coll.FindOne(ctx, bson.D{},
		options.FindOne().SetSort(bson.D{{Key: "_id", Value: -1}})), &d)
	if err == mongo.ErrNoDocuments {
		return 0, nil
	}
	if err != nil {
		return 0, mapErr(err, "read change log head")
	}
	n, err := d.seq()
	if err != nil {
		return 0, errs.Wrap(errs.Internal, err, "read change log head")
	}
	return n, nil
}

// Prune removes entries written before before, always keeping the
// last one, whose number the next appender continues from.
func (s *ChangeLog) Prune(ctx context.Context, before time.Time) error {
	head, err := s.Head(ctx)
	if err != nil || head == 0 {
		return err
	}
	_, err = s.coll.DeleteMany(ctx, bson.D{
		{Key: "_id", Value: bson.D{{Key: "$lt", Value: changeKey(head)}}},
		{Key: "at", Value: bson.D{{Key: "$lt", Value: before}}},
	})
	return mapErr(err, "prune change log")
}

// Watch calls notify for every entry appended to the change log, as
// a MongoDB change stream reports it, until ctx is done or the stream
// breaks. It returns an error wrapping errors.ErrUnsupported when the
// server has no change streams (a standalone server, FerretDB).
func (s *ChangeLog) Watch(ctx context.Context, notify func()) error {
	pipeline := mongo.Pipeline{bson.D{{Key: "$match", Value: bson.D{{Key: "operationType", Value: "insert"}}}}}
	cs, err := s.coll.Watch(ctx, pipeline)
	if err != nil {
		if mongo.IsNetworkError(err) || mongo.IsTimeout(err) || ctx.Err() != nil {
			return mapErr(err, "watch change log")
		}
		return fmt.Errorf("watch change log: %w: %w", errors.ErrUnsupported, err)
	}
	defer cs.Close(context.WithoutCancel(ctx))
	for cs.Next(ctx) {
		notify()
	}
	return mapErr(cs.Err(), "watch change log")
}

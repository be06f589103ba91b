package mongostore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// RateLimitsCollection holds the rate limits' slots.
const RateLimitsCollection = "ratelimits"

// maxKeyBytes is the longest key kept readable in a slot's _id; a longer one
// (a login body's "email" is read before it is validated, and may be
// anything up to the body limit) is stored as its SHA-256.
const maxKeyBytes = 128

// RateLimits counts requests in fixed windows, exactly across every process
// that shares the database.
//
// A request takes one of a window's tokens by inserting a slot document under
// _id "<name>|<key>|<window start, Unix seconds>|<n>", for n = 0, 1, …: a
// duplicate key means slot n is taken and n+1 is tried; n reaching the limit
// means the window is exhausted. An insert under a unique _id is the one
// test-and-set every server makes atomic (on FerretDB, $inc and guarded
// updates lose updates), so no two requests ever hold one slot and a window
// lets exactly limit requests through, whichever instances they reach.
//
// Each process remembers, per key and window, the first slot it has not seen
// taken: an allowed request usually costs one insert, and a request to a
// window this process has seen exhausted costs no database work at all.
// A process forgets a window once it has ended; its slots are deleted in the
// background one window length later (a TTL index would do it on MongoDB, but
// FerretDB has none); the grace keeps an instance whose clock runs ahead from
// freeing a window its peers still count in.
type RateLimits struct {
	coll *mongo.Collection
	log  *slog.Logger

	mu      sync.Mutex
	hints   map[string]slotHint // by slot prefix
	current time.Time           // the latest window start seen
	pruning atomic.Bool
}

// slotHint is the first slot of a window this process has not seen taken.
type slotHint struct {
	next int
	end  time.Time
}

// slotDoc is one token of one window, taken by whoever inserted it.
type slotDoc struct {
	ID        string    `bson:"_id"`
	ExpiresAt time.Time `bson:"expires_at"`
}

// NewRateLimits returns RateLimits over the ratelimits collection of db;
// log (nil: discarded) receives the failures of the background pruning.
func NewRateLimits(db *mongo.Database, log *slog.Logger) *RateLimits {
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &RateLimits{coll: db.Collection(RateLimitsCollection), log: log, hints: map[string]slotHint{}}
}

// Take takes one of limit tokens of key under the limit name in the window
// [start, end): allowed reports whether it got one, remaining how many the
// window has left after it. Its errors are errs.Unavailable when the database
// cannot be reached in time and errs.Internal otherwise. A failed Take lets no
// request through; a slot its insert may still have taken stays unused, so
// the window lets fewer requests through, never more.
func (s *RateLimits) Take(ctx context.Context, name, key string, limit int, start, end time.Time) (allowed bool, remaining int, err error) {
	if limit <= 0 {
		return false, 0, nil
	}
	prefix := slotPrefix(name, key, start)
	n := s.hint(prefix, start, end)
	for ; n < limit; n++ {
		_, err := s.coll.InsertOne(ctx, slotDoc{ID: prefix + strconv.Itoa(n), ExpiresAt: end})
		if err == nil {
			s.seen(prefix, n+1, end)
			return true, limit - n - 1, nil
		}
		if !mongo.IsDuplicateKeyError(err) {
			s.seen(prefix, n, end)
			return false, 0, mapErr(err, "take a rate limit slot")
		}
	}
	s.seen(prefix, n, end)
	return false, 0, nil
}

// hint returns the first slot of prefix's window not seen taken. The first
// call in a new window forgets the ended ones and prunes the database.
func (s *RateLimits) hint(prefix string, start, end time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if start.After(s.current) {
		s.current = start
		for p, h := range s.hints {
			if !h.end.After(start) {
				delete(s.hints, p)
			}
		}
		s.prune(start.Add(-end.Sub(start)))
	}
	return s.hints[prefix].next
}

// seen records that every slot of prefix's window below next is taken.
func (s *RateLimits) seen(prefix string, next int, end time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h := s.hints[prefix]; next > h.next && end.After(s.current) {
		s.hints[prefix] = slotHint{next: next, end: end}
	}
}

// prune deletes, in the background, the slots of windows that ended at or
// before cutoff; one pruning runs at a time, bounded by the client's timeout.
// A failure is logged and the next window tries again.
func (s *RateLimits) prune(cutoff time.Time) {
	if !s.pruning.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer s.pruning.Store(false)
		_, err := s.coll.DeleteMany(context.Background(), bson.D{{Key: "expires_at", Value: bson.D{{Key: "$lte", Value: cutoff}}}})
		if err != nil {
			s.log.Warn("rate limits: prune ended windows", slog.Any("error", err))
		}
	}()
}

// slotPrefix is the _id of a window's slots without the slot number. Name
// and key are escaped so that neither holds the separator: one key can never
// spell another key's slot.
func slotPrefix(name, key string, start time.Time) string {
	var b strings.Builder
	b.Grow(len(name) + len(key) + 16)
	writeSlotKey(&b, name)
	b.WriteByte('|')
	writeSlotKey(&b, key)
	b.WriteByte('|')
	b.WriteString(strconv.FormatInt(start.Unix(), 10))
	b.WriteByte('|')
	return b.String()
}

// writeSlotKey writes s with '%', '|' and control bytes as %XX; a key too
// long to keep, or not UTF-8, as "%sha256:<hex>" (which no escaped key can
// spell: its '%' is not followed by two hex digits).
func writeSlotKey(b *strings.Builder, s string) {
	if len(s) > maxKeyBytes || !utf8.ValidString(s) {
		sum := sha256.Sum256([]byte(s))
		b.WriteString("%sha256:")
		b.WriteString(hex.EncodeToString(sum[:]))
		return
	}
	const digits = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '%' || c == '|' || c < 0x20 || c == 0x7f {
			b.WriteByte('%')
			b.WriteByte(digits[c>>4])
			b.WriteByte(digits[c&0xf])
			continue
		}
		b.WriteByte(c)
	}
}

package mongostore_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgservice/orgservice/internal/dbtest"
	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/mongostore"
)

var (
	win    = time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC)
	winEnd = win.Add(time.Minute)
	winID  = strconv.FormatInt(win.Unix(), 10)
)

// slotIDs lists the _ids of every slot in db.
func slotIDs(t testing.TB, db *mongo.Database) []string {
	t.Helper()
	cur, err := db.Collection(mongostore.RateLimitsCollection).Find(context.Background(), bson.D{})
	require.NoError(t, err)
	var docs []struct {
		ID string `bson:"_id"`
	}
	require.NoError(t, cur.All(context.Background(), &docs))
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.ID
	}
	return ids
}

// Sixty takes at once through three stores (three processes) over one
// database: exactly limit are allowed, each slot by exactly one of them.
func TestRateLimitsExactUnderContention(t *testing.T) {
	db := dbtest.New(t)
	stores := []*mongostore.RateLimits{mongostore.NewRateLimits(db, nil), mongostore.NewRateLimits(db, nil), mongostore.NewRateLimits(db, nil)}
	const limit = 7
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		remaining []int
		denied    int
	)
	start := make(chan struct{})
	for i := range 60 {
		wg.Go(func() {
			<-start
			ok, left, err := stores[i%3].Take(context.Background(), "login_email", "admin@acme.com", limit, win, winEnd)
			assert.NoError(t, err)
			mu.Lock()
			defer mu.Unlock()
			if ok {
				remaining = append(remaining, left)
			} else {
				denied++
			}
		})
	}
	close(start)
	wg.Wait()
	assert.ElementsMatch(t, []int{6, 5, 4, 3, 2, 1, 0}, remaining, "each slot taken once, and remaining counts down")
	assert.Equal(t, 53, denied)
	ids := slotIDs(t, db)
	assert.Len(t, ids, limit)
	for n := range limit {
		assert.Contains(t, ids, "login_email|admin@acme.com|"+winID+"|"+strconv.Itoa(n))
	}
}

// A window a process has seen exhausted is refused from memory; another
// process learns it from the database; the next window is free.
func TestRateLimitsRememberExhaustedWindows(t *testing.T) {
	db := dbtest.New(t)
	ctx := context.Background()
	a, b := mongostore.NewRateLimits(db, nil), mongostore.NewRateLimits(db, nil)
	for range 2 {
		ok, _, err := a.Take(ctx, "write", "203.0.113.7", 2, win, winEnd)
		require.NoError(t, err)
		require.True(t, ok)
	}
	ok, left, err := a.Take(ctx, "write", "203.0.113.7", 2, win, winEnd)
	require.NoError(t, err)
	assert.False(t, ok)
	assert.Zero(t, left)

	ok, _, err = b.Take(ctx, "write", "203.0.113.7", 2, win, winEnd)
	require.NoError(t, err)
	assert.False(t, ok, "another process finds the window full in the database")

	// With the slots gone from the database, a still refuses: it asks nothing.
	_, err = db.Collection(mongostore.RateLimitsCollection).DeleteMany(ctx, bson.D{})
	require.NoError(t, err)
	ok, _, err = a.Take(ctx, "write", "203.0.113.7", 2, win, winEnd)
	require.NoError(t, err)
	assert.False(t, ok, "an exhausted window is remembered until it ends")
	assert.Empty(t, slotIDs(t, db))

	ok, left, err = a.Take(ctx, "write", "203.0.113.7", 2, winEnd, winEnd.Add(time.Minute))
	require.NoError(t, err)
	assert.True(t, ok, "the next window is free")
	assert.Equal(t, 1, left)
}

// Keys are escaped (or hashed) in the _id: every key below, however it
// plays with the separator or the escape, gets a window of its own, and
// every _id splits into exactly name, key, window and slot.
func TestRateLimitsKeysCannotForgeEachOther(t *testing.T) {
	db := dbtest.New(t)
	ctx := context.Background()
	s := mongostore.NewRateLimits(db, nil)
	keys := []string{
		"admin@acme.com",
		"admin@acme.com|" + winID + "|0",
		"admin@acme.com|" + winID,
		"admin@acme.com%7C" + winID + "%7C0",
		"admin@acme.com%",
		"|", "||", "%", "%7C", "",
		"a\x00b", "a\nb",
		"\xff\xfe", // not UTF-8: hashed
		strings.Repeat("x", 300),
		strings.Repeat("x", 299) + "y", // too long: hashed, and differs only at the end
	}
	for _, k := range keys {
		ok, _, err := s.Take(ctx, "login_email", k, 1, win, winEnd)
		require.NoError(t, err, "key %q", k)
		assert.True(t, ok, "key %q found its only slot taken by another key", k)
	}
	for _, k := range keys {
		ok, _, err := s.Take(ctx, "login_email", k, 1, win, winEnd)
		require.NoError(t, err)
		assert.False(t, ok, "key %q", k)
	}
	ids := slotIDs(t, db)
	assert.Len(t, ids, len(keys))
	for _, id := range ids {
		parts := strings.Split(id, "|")
		if assert.Len(t, parts, 4, "_id %q", id) {
			assert.Equal(t, "login_email", parts[0])
			assert.Equal(t, winID, parts[2])
			assert.Equal(t, "0", parts[3])
			assert.Less(t, len(parts[1]), 3*130, "long keys are hashed")
		}
	}
	assert.Contains(t, ids, "login_email|admin@acme.com|"+winID+"|0", "a plain key stays readable")
}

func TestRateLimitsUnavailable(t *testing.T) {
	client, err := mongostore.Connect(dbtest.URI(t), 5*time.Second)
	require.NoError(t, err)
	require.NoError(t, client.Disconnect(context.Background()))
	s := mongostore.NewRateLimits(client.Database("gone"), nil)
	ok, _, err := s.Take(context.Background(), "write", "203.0.113.7", 5, win, winEnd)
	assert.False(t, ok)
	assert.True(t, errs.Is(err, errs.Unavailable), "%v", err)
}

// BenchmarkRateLimitStoreTake is what a limited request costs its limiter.
func BenchmarkRateLimitStoreTake(b *testing.B) {
	ctx := context.Background()
	// An allowed request, the usual case: one insert.
	b.Run("allowed", func(b *testing.B) {
		s := mongostore.NewRateLimits(dbtest.New(b), nil)
		b.ResetTimer()
		for i := range b.N {
			if ok, _, err := s.Take(ctx, "write", strconv.Itoa(i), 10, win, winEnd); err != nil || !ok {
				b.Fatalf("take %d: %v %v", i, ok, err)
			}
		}
	})
	// A request to a window this process has seen exhausted: no database work.
	b.Run("exhausted", func(b *testing.B) {
		s := mongostore.NewRateLimits(dbtest.New(b), nil)
		for range 10 {
			_, _, _ = s.Take(ctx, "write", "203.0.113.7", 10, win, winEnd)
		}
		b.ResetTimer()
		for range b.N {
			if ok, _, err := s.Take(ctx, "write", "203.0.113.7", 10, win, winEnd); err != nil || ok {
				b.Fatalf("take: %v %v", ok, err)
			}
		}
	})
	// One key taken in turn through three processes: each one's hint is two
	// slots behind, so an allowed request costs three inserts.
	b.Run("three-instances-one-key", func(b *testing.B) {
		db := dbtest.New(b)
		stores := []*mongostore.RateLimits{mongostore.NewRateLimits(db, nil), mongostore.NewRateLimits(db, nil), mongostore.NewRateLimits(db, nil)}
		b.ResetTimer()
		for i := range b.N {
			if ok, _, err := stores[i%3].Take(ctx, "write", "203.0.113.7", b.N, win, winEnd); err != nil || !ok {
				b.Fatalf("take %d: %v %v", i, ok, err)
			}
		}
	})
}

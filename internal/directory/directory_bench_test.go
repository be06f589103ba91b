package directory_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgservice/orgservice/internal/auth"
	"github.com/orgservice/orgservice/internal/dbtest"
	"github.com/orgservice/orgservice/internal/directory"
	"github.com/orgservice/orgservice/internal/mongostore"
	"github.com/orgservice/orgservice/internal/org"
)

// benchOrgs is how many organizations the benchmarks hold.
const benchOrgs = 10_000

// seedOrgs inserts n settled organizations straight into the organizations
// collection, in the field names mongostore writes (a create through the
// service costs a bcrypt hash and a collection each), and returns their
// slugs. Every document is as large as a real one: a real bcrypt hash,
// timestamps, a name, an email.
func seedOrgs(b *testing.B, db *mongo.Database, n int) []string {
	b.Helper()
	ctx := context.Background()
	hash, err := auth.Bcrypt{Cost: 4}.Hash("correct-horse")
	require.NoError(b, err)
	now := time.Now().UTC().Truncate(time.Millisecond)
	slugs := make([]string, n)
	const batch = 1000
	for lo := 0; lo < n; lo += batch {
		docs := make([]any, 0, batch)
		for i := lo; i < min(lo+batch, n); i++ {
			slugs[i] = fmt.Sprintf("organization_%05d", i)
			docs = append(docs, bson.D{
				{Key: "_id", Value: bson.NewObjectID()},
				{Key: "organization_name", Value: fmt.Sprintf("Organization %05d", i)},
				{Key: "slug", Value: slugs[i]},
				{Key: "collection_name", Value: "org_" + slugs[i]},
				{Key: "admin_email", Value: fmt.Sprintf("admin%05d@example.com", i)},
				{Key: "password_hash", Value: hash},
				{Key: "token_version", Value: int64(0)},
				{Key: "state", Value: "active"},
				{Key: "created_at", Value: now},
				{Key: "updated_at", Value: now},
			})
		}
		_, err := db.Collection(mongostore.OrganizationsCollection).InsertMany(ctx, docs)
		require.NoError(b, err)
	}
	return slugs
}

// BenchmarkBySlug is a lookup by name in a directory of 10,000
// organizations loaded from the database: the read path of GET, of every
// token check (ByID) and of every login (ByEmail).
func BenchmarkBySlug(b *testing.B) {
	db := dbtest.New(b)
	slugs := seedOrgs(b, db, benchOrgs)
	dir := directory.New(sourceOf(mongostore.Open(db, 0)), directory.Config{Staleness: time.Hour}, quiet)
	require.NoError(b, dir.Load(context.Background()))
	require.Equal(b, benchOrgs, dir.Len())

	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := dir.BySlug(slugs[i%len(slugs)]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := dir.BySlug(slugs[i%len(slugs)]); err != nil {
					b.Fatal(err)
				}
				i += 7
			}
		})
	})
}

// BenchmarkLoad10000 is a full load of 10,000 organizations (an instance's
// start, or its answer to a gap in the change log), and reports the heap the
// loaded directory keeps per organization: times 100,000, the memory a
// directory of 100,000 tenants needs.
func BenchmarkLoad10000(b *testing.B) {
	ctx := context.Background()
	db := dbtest.New(b)
	seedOrgs(b, db, benchOrgs)
	src := sourceOf(mongostore.Open(db, 0))
	var kept int64
	loads := 0
	for b.Loop() {
		b.StopTimer()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		b.StartTimer()

		d := directory.New(src, directory.Config{}, quiet)
		if err := d.Load(ctx); err != nil {
			b.Fatal(err)
		}

		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&after)
		if d.Len() != benchOrgs { // keeps d alive through the measurement
			b.Fatalf("loaded %d organizations, want %d", d.Len(), benchOrgs)
		}
		kept += int64(after.HeapAlloc) - int64(before.HeapAlloc)
		loads++
		b.StartTimer()
	}
	b.ReportMetric(float64(kept)/float64(loads*benchOrgs), "bytes/org")
}

// BenchmarkByIDLargeOrganization is the directory read of every token check
// of an organization of org.MaxMembers members.
func BenchmarkByIDLargeOrganization(b *testing.B) {
	ctx := context.Background()
	db := dbtest.New(b)
	hash, err := auth.Bcrypt{Cost: 4}.Hash("correct-horse")
	require.NoError(b, err)
	now := time.Now().UTC().Truncate(time.Millisecond)
	id := bson.NewObjectID()
	members := make(bson.A, org.MaxMembers)
	for i := range members {
		members[i] = bson.D{
			{Key: "id", Value: bson.NewObjectID().Hex()}, {Key: "email", Value: fmt.Sprintf("m%04d@example.com", i)},
			{Key: "password_hash", Value: hash}, {Key: "role", Value: "member"}, {Key: "token_version", Value: int64(0)},
			{Key: "created_at", Value: now}, {Key: "updated_at", Value: now},
		}
	}
	_, err = db.Collection(mongostore.OrganizationsCollection).InsertOne(ctx, bson.D{
		{Key: "_id", Value: id}, {Key: "organization_name", Value: "Large"}, {Key: "slug", Value: "large"},
		{Key: "collection_name", Value: "org_large"}, {Key: "admin_email", Value: "m0000@example.com"},
		{Key: "members", Value: members}, {Key: "state", Value: "active"},
		{Key: "created_at", Value: now}, {Key: "updated_at", Value: now},
	})
	require.NoError(b, err)
	dir := directory.New(sourceOf(mongostore.Open(db, 0)), directory.Config{Staleness: time.Hour}, quiet)
	require.NoError(b, dir.Load(ctx))

	b.ReportAllocs()
	for b.Loop() {
		o, err := dir.ByID(id.Hex())
		if err != nil || len(o.Members) != org.MaxMembers {
			b.Fatal(err)
		}
	}
}

// benchEnded is how many ended sessions BenchmarkSessionEnded holds: a
// busy service's sessions ended within one JWT_TTL.
const benchEnded = 100_000

// BenchmarkSessionEnded is the ended-session check every authenticated
// request makes, among 100,000 sessions ended within the last JWT_TTL,
// and what each ended session held costs in memory.
func BenchmarkSessionEnded(b *testing.B) {
	dir := directory.New(sourceOf(mongostore.Open(dbtest.New(b), 0)), directory.Config{Staleness: time.Hour}, quiet)
	require.NoError(b, dir.Load(context.Background()))
	until := time.Now().Add(time.Hour)
	ids := make([]string, benchEnded)
	for i := range ids {
		ids[i] = fmt.Sprintf("%032x", i) // a session id's length
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for _, id := range ids {
		dir.EndSession(org.SessionEnd{SessionID: id, Until: until})
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perEnded := float64(int64(after.HeapAlloc)-int64(before.HeapAlloc)) / benchEnded
	live := fmt.Sprintf("%032x", benchEnded+1)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		id := live
		if i%2 == 0 {
			id = ids[i%benchEnded]
		}
		if ended, err := dir.SessionEnded(id); err != nil || ended != (i%2 == 0) {
			b.Fatal(ended, err)
		}
	}
	b.ReportMetric(perEnded, "bytes/ended")
}

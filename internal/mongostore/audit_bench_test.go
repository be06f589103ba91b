package mongostore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgservice/orgservice/internal/dbtest"
	"github.com/orgservice/orgservice/internal/mongostore"
	"github.com/orgservice/orgservice/internal/org"
)

// BenchmarkAuditPage reads the newest page of 50 events of one of 100
// organizations whose logs hold 10,000 events in all: what GET
// /api/v1/org/audit costs the database. On MongoDB it is an _id range
// scan; FerretDB 1.24 reads every event of every organization for it.
func BenchmarkAuditPage(b *testing.B) {
	const orgs, perOrg = 100, 100
	ctx := context.Background()
	store := mongostore.Open(dbtest.New(b), 0).Audit
	ids := make([]string, orgs)
	start := time.Now().UTC()
	for i := range ids {
		ids[i] = bson.NewObjectID().Hex()
		evs := make([]org.Event, perOrg)
		for j := range evs {
			t := start.Add(time.Duration(j*orgs+i) * time.Millisecond)
			evs[j] = org.Event{
				ID: fmt.Sprintf("%019d-%08x", t.UnixNano(), i), OrgID: ids[i], Time: t.Truncate(time.Millisecond),
				Actor:  org.Actor{MemberID: ids[i], Email: fmt.Sprintf("owner%03d@example.com", i)},
				Action: org.EventLoginSucceeded, Target: org.Target{Type: org.TargetMember, ID: ids[i], Name: fmt.Sprintf("owner%03d@example.com", i)},
				Details: map[string]string{"ip": "192.0.2.1"}, RequestID: fmt.Sprintf("req-%d-%d", i, j),
			}
		}
		require.NoError(b, store.Insert(ctx, evs))
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		evs, err := store.Events(ctx, ids[i%orgs], "", org.DefaultAuditLimit+1)
		if err != nil || len(evs) != org.DefaultAuditLimit+1 {
			b.Fatalf("%d events, %v", len(evs), err)
		}
		i++
	}
}

//go:build cluster

package cluster

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// auditDoc is an audit event, read straight through the driver.
type auditDoc struct {
	ID     string `bson:"_id"`
	OrgID  string `bson:"org_id"`
	Action string `bson:"action"`
	Target struct {
		ID string `bson:"id"`
	} `bson:"target"`
}

// auditLog runs after the invariants, once the database has settled. With
// every write answered, what was answered done is what committed: each
// organization's audit log (logins aside) holds each of its changes
// answered done exactly once — one org.created for every organization,
// live or deleted, one org.deleted for each deleted — and no events of an
// organization no create was answered for. And the member events agree
// with the members the database holds: a member present was added once
// more than removed (the founder, recorded by org.created, as often), one
// absent as often. Every login answered 200 was recorded.
func (e *env) auditLog(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cur, err := e.db.Collection("audit").Find(ctx, bson.D{})
	require.NoError(t, err)
	var evs []auditDoc
	require.NoError(t, cur.All(ctx, &evs))
	byOrg := map[string][]auditDoc{}
	for _, ev := range evs {
		assert.True(t, strings.HasPrefix(ev.ID, ev.OrgID+"/"), "audit _id %s of organization %s", ev.ID, ev.OrgID)
		byOrg[ev.OrgID] = append(byOrg[ev.OrgID], ev)
	}

	known := map[string]bool{}
	for _, o := range e.m.all() {
		known[o.id] = true
		got := map[string]int{}
		for _, ev := range byOrg[o.id] {
			if !strings.HasPrefix(ev.Action, "login.") {
				got[ev.Action]++
			}
		}
		assert.Equal(t, o.committed, got, "audit events of %q (%s) by action, logins aside: each change answered done, once", o.name, o.id)
	}
	for id, evs := range byOrg {
		assert.True(t, known[id], "%d audit events of organization %s, for which no create was answered", len(evs), id)
	}

	s := e.readDB(t)
	inDB := map[string]dbOrg{}
	for _, o := range s.orgs {
		inDB[o.ID.Hex()] = o
		added, removed := map[string]int{}, map[string]int{}
		created := 0
		for _, ev := range byOrg[o.ID.Hex()] {
			switch ev.Action {
			case "org.created":
				created++
			case "member.added":
				added[ev.Target.ID]++
			case "member.removed":
				removed[ev.Target.ID]++
			}
		}
		assert.Equal(t, 1, created, "org.created events of %q", o.Name)
		present := map[string]bool{}
		for _, m := range o.Members {
			present[m.ID] = true
			want := 1
			if m.ID == o.ID.Hex() { // the founder
				want = 0
			}
			assert.Equal(t, want, added[m.ID]-removed[m.ID], "member %s of %q: member.added less member.removed", m.Email, o.Name)
		}
		for id := range added {
			if !present[id] {
				assert.Equal(t, added[id], removed[id], "member %s, no longer in %q: member.added and member.removed", id, o.Name)
			}
		}
		for id := range removed {
			assert.LessOrEqual(t, removed[id], added[id], "member %s of %q removed more often than added", id, o.Name)
		}
	}
	members := 0
	for _, o := range e.m.live() {
		d, ok := inDB[o.id]
		if !ok {
			continue // the invariants report it
		}
		var got []string
		for _, m := range d.Members {
			if m.ID != o.id {
				got = append(got, m.Email)
			}
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(o.members))
		assert.Equal(t, want, got, "members of %q besides the founder", o.name)
		members += len(got)
	}
	actions := map[string]int{}
	for _, ev := range evs {
		actions[ev.Action]++
	}
	// A login is recorded before it is answered: one login.succeeded for
	// each login answered 200 (deleted organizations' included), none for
	// one refused by the limits.
	assert.Equal(t, e.c.answered("POST /api/v1/admin/login 200"), actions["login.succeeded"], "login.succeeded events, against logins answered 200")
	t.Logf("%d audit events of %d organizations: %v; %d members added besides the founders",
		len(evs), len(byOrg), actionCounts(actions), members)
}

func actionCounts(m map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

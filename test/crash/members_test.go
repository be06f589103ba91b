//go:build crash

package crash

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgservice/orgservice/internal/apiclient"
	"github.com/orgservice/orgservice/internal/org"
)

// TestSIGKILLDuringDeletesAndMemberChanges kills the service, round after
// round, around two quick operations sent at random moments before the
// kill: the delete of an organization of four members, and an add, a role
// change or a removal of a member of another organization. Some kills land
// before an operation wrote anything, some in the middle, some after it
// finished. What the kill left — read from the database while nothing runs
// — decides what must hold once the service, restarted (and sometimes
// killed again while it recovers), has settled: a change that wrote its
// commit is complete, with its audit event exactly once; one that did not
// left no trace (a delete retried by its client succeeds). At the end
// every email and name the deletes, removals and uncommitted adds freed is
// taken by a new organization.
func TestSIGKILLDuringDeletesAndMemberChanges(t *testing.T) {
	rng := newRand(t)
	r := newRig(t)
	led := ledger{}
	var freed []account // names and emails that must be free at the end
	var doomed []account

	// The organization whose members change: an owner who acts, and others.
	team := r.createOrg(led, "Team", "boss@team.test")
	for _, role := range []string{"admin", "member", "owner"} {
		r.addMember(led, team, role+"@team.test", role)
	}
	// An operation of each kind run to the end gives the scale for its
	// kill moments.
	full := map[string]time.Duration{}
	timed := func(kind string, f func()) {
		start := time.Now()
		f()
		full[kind] = time.Since(start)
	}
	var extra string
	timed("add", func() { extra = r.addMember(led, team, "extra@team.test", "member") })
	timed("role", func() { r.do(apiclient.SetRole(team.token, extra, "admin"), http.StatusOK) })
	led.add(team.id, "member.role_changed", extra, "from", "member", "to", "admin")
	timed("remove", func() { r.do(apiclient.RemoveMember(team.token, extra), http.StatusNoContent) })
	led.add(team.id, "member.removed", extra, "role", "admin")
	freed = append(freed, account{email: "extra@team.test"})
	d := r.doomedOrg(led, 0)
	timed("delete", func() { r.do(apiclient.DeleteOrg(d.token, d.name), http.StatusNoContent) })
	led.add(d.id, "org.deleted", d.id, "slug", org.Slug(d.name))
	doomed, freed = append(doomed, d), append(freed, d.frees()...)
	require.Nil(t, readOrg(t, r.db, d.id), "a deleted organization's metadata")
	checkStore(t, r.db, true)
	require.True(t, led.checkAudit(t, r.db, d.id))
	require.True(t, led.checkAudit(t, r.db, team.id))
	t.Logf("uninterrupted: a member add takes %s, a role change %s, a removal %s, a delete of four members %s",
		full["add"].Round(time.Millisecond), full["role"].Round(time.Millisecond),
		full["remove"].Round(time.Millisecond), full["delete"].Round(time.Millisecond))

	tally := newTally()
	lastKill := time.Now()
	for round := 1; round <= *opRounds; round++ {
		d := r.doomedOrg(led, round)
		doomed = append(doomed, d)
		op := pickOp(rng, readOrg(t, r.db, team.id), team.id, round)
		// No lease a killed service left may turn the operations away.
		waitLeaseFree(t, r.db, team.id)

		// Each is sent a random moment before the kill, from a quarter of
		// its uninterrupted run to a quarter more than it: some kills come
		// before it writes anything, some after it finished, and the rest
		// in between.
		before := func(kind string) time.Duration {
			return full[kind]/4 + time.Duration(rng.Int64N(int64(full[kind])))
		}
		uD, uO := before("delete"), before(op.kind)
		kill := max(uD, uO)
		var wg sync.WaitGroup
		var dStatus, oStatus int
		wg.Add(2)
		go func() {
			defer wg.Done()
			time.Sleep(kill - uD)
			dStatus, _ = r.call(apiclient.DeleteOrg(d.token, d.name))
		}()
		go func() {
			defer wg.Done()
			time.Sleep(kill - uO)
			oStatus = op.send(r, team.token)
		}()
		time.Sleep(kill)
		r.svc.Kill()
		lastKill = time.Now()
		wg.Wait()

		// What the kill left, read while no service runs — once the
		// database has applied what the killed process had sent it: the
		// stages no longer move for half a second.
		var dStage, oStage int
		for stable := time.Now(); time.Since(stable) < 500*time.Millisecond; time.Sleep(50 * time.Millisecond) {
			dNow, oNow := deleteStage(t, r.db, d, led), op.stage(t, r.db, team.id, led)
			if dNow != dStage || oNow != oStage {
				dStage, oStage, stable = dNow, oNow, time.Now()
			}
		}
		var again time.Duration
		if rng.IntN(2) == 0 {
			// Sometimes kill the recovery too: it begins once the killed
			// operation's lease has expired (within LEASE_TTL), at the next
			// pass of the reconciler (every LEASE_TTL).
			again = time.Duration(rng.Int64N(int64(2 * leaseTTL)))
		}
		r.restart(again)
		if again > 0 {
			lastKill = time.Now()
		}
		t.Logf("round %d: killed the delete %s after it was sent, at %q (answer %d); the %s %s after, at %q (answer %d)%s",
			round, uD.Round(time.Millisecond), deleteStages[dStage], dStatus,
			op, uO.Round(time.Millisecond), opStages[op.kind][oStage], oStatus, recovery(again))
		tally.add("delete", dStage, deleteStages)
		tally.add(op.kind, oStage, opStages[op.kind])
		waitSettled(t, r.db)

		// The delete: rolled forward once its intent was written, untouched before.
		committed := dStage >= 1
		assertAnswered(t, "delete", dStatus, http.StatusNoContent, dStage == len(deleteStages)-1)
		require.Equal(t, committed, readOrg(t, r.db, d.id) == nil, "round %d: the delete stopped at %q", round, deleteStages[dStage])
		if !committed {
			require.True(t, led.checkAudit(t, r.db, d.id), "round %d: no org.deleted for a delete that never began", round)
			r.do(apiclient.DeleteOrg(d.token, d.name), http.StatusNoContent)
			require.Nil(t, readOrg(t, r.db, d.id), "round %d: metadata after the retried delete", round)
		}
		led.add(d.id, "org.deleted", d.id, "slug", org.Slug(d.name))
		freed = append(freed, d.frees()...)
		require.NotContains(t, tenants(t, r.db), "org_"+org.Slug(d.name))
		require.True(t, led.checkAudit(t, r.db, d.id), "round %d: the deleted organization's audit log", round)

		// The member operation: committed by its metadata write, or not at all.
		committed = oStage >= op.commitStage()
		assertAnswered(t, op.String(), oStatus, op.success(), oStage == len(opStages[op.kind])-1)
		freed = append(freed, op.resolve(t, readOrg(t, r.db, team.id), team.id, committed, led)...)
		require.True(t, led.checkAudit(t, r.db, team.id), "round %d: the audit log of %s", round, team.name)
		checkStore(t, r.db, false)
	}
	t.Logf("where the kills landed: %s", tally)

	// Every email and name freed is free: a create takes it. A stale claim
	// (a kill between a write and the release) is freed by the claim attempt
	// once it is older than the grace period.
	time.Sleep(time.Until(lastKill.Add(claimGrace + 500*time.Millisecond)))
	for i, f := range freed {
		name := f.name
		if name == "" {
			name = fmt.Sprintf("Proof %d", i)
		}
		body := r.do(apiclient.CreateOrg(name, f.email, password), http.StatusCreated)
		led.add(str(body["id"]), "org.created", str(body["id"]), "slug", org.Slug(name))
	}
	checkStore(t, r.db, true)
	// Every organization, live or deleted, has exactly the events of its
	// committed changes: one org.created each, one org.deleted each deleted.
	for _, d := range doomed {
		led.checkAudit(t, r.db, d.id)
	}
	orgs := readOrgs(t, r.db)
	require.Len(t, orgs, 1+len(freed), "organizations: the team and one for each name or email freed")
	for _, o := range orgs {
		led.checkAudit(t, r.db, o.ID.Hex())
	}
	t.Logf("%d emails and names freed by deletes and removals taken again by new organizations", len(freed))
}

// account is an organization as its owner knows it. For a freed name or
// email, name is "" when only the email is meant.
type account struct {
	id, name, email, token string
	members                []string // the other members' emails
}

// frees returns what deleting a's organization frees: its name with its
// owner's email, and each other member's email.
func (a account) frees() []account {
	out := []account{{name: a.name, email: a.email}}
	for _, e := range a.members {
		out = append(out, account{email: e})
	}
	return out
}

// createOrg creates an organization and logs its owner in.
func (r *rig) createOrg(led ledger, name, email string) account {
	r.t.Helper()
	body := r.do(apiclient.CreateOrg(name, email, password), http.StatusCreated)
	a := account{id: str(body["id"]), name: name, email: email}
	led.add(a.id, "org.created", a.id, "slug", org.Slug(name))
	body = r.do(apiclient.Login(email, password), http.StatusOK)
	a.token = str(body["access_token"])
	return a
}

// addMember adds a member as the owner of a, as a client would.
func (r *rig) addMember(led ledger, a account, email, role string) string {
	r.t.Helper()
	m := r.do(apiclient.AddMember(a.token, email, password, role), http.StatusCreated)
	led.add(a.id, "member.added", str(m["id"]), "role", role)
	return str(m["id"])
}

// doomedOrg creates organization "Doomed <k>" with an owner, an admin, a
// member and a second owner, and a few documents.
func (r *rig) doomedOrg(led ledger, k int) account {
	r.t.Helper()
	a := r.createOrg(led, fmt.Sprintf("Doomed %d", k), fmt.Sprintf("doomed%d@crash.test", k))
	for _, role := range []string{"admin", "member", "owner"} {
		email := fmt.Sprintf("doomed%d-%s@crash.test", k, role)
		r.addMember(led, a, email, role)
		a.members = append(a.members, email)
	}
	for i := range 3 {
		r.do(apiclient.CreateDocument(a.token, fmt.Appendf(nil, `{"id":"d%d","n":%d}`, i, i)), http.StatusCreated)
	}
	return a
}

// The stages a delete passes through, as the database shows them.
var deleteStages = []string{"not begun", "marked deleting", "collection dropped", "event inserted", "metadata removed", "done"}

func deleteStage(t *testing.T, db *mongo.Database, d account, led ledger) int {
	t.Helper()
	meta := readOrg(t, db, d.id)
	held := false
	for _, id := range readClaims(t, db) {
		held = held || id == d.id
	}
	switch {
	case meta == nil && !held:
		return 5
	case meta == nil:
		return 4
	case meta.State == "active" && meta.Pending == nil:
		return 0
	case countEvents(t, db, d.id, change{action: "org.deleted", target: d.id, details: map[string]string{"slug": meta.Slug}}) > 0:
		return 3
	case slices.Contains(tenants(t, db), meta.Collection):
		return 1
	default:
		return 2
	}
}

// memberOp is a member operation of the team's owner.
type memberOp struct {
	kind            string // add, role, remove
	id, email, role string // the member (no id for an add) and its role
	to              string // a role change's new role
}

// The stages of member operations, as the database shows them.
var opStages = map[string][]string{
	"add":    {"not begun", "email claimed", "member written", "event inserted", "done"},
	"role":   {"not begun", "role written", "event inserted", "done"},
	"remove": {"not begun", "member removed", "event inserted", "pending events cleared", "done"},
}

func (op memberOp) String() string {
	switch op.kind {
	case "add":
		return fmt.Sprintf("add of %s as %s", op.email, op.role)
	case "role":
		return fmt.Sprintf("role change of %s from %s to %s", op.email, op.role, op.to)
	default:
		return fmt.Sprintf("removal of %s (%s)", op.email, op.role)
	}
}

// pickOp picks the round's operation: adds, role changes and removals in
// turn, on members other than the acting owner (whose member id is the
// organization's), an add when there are none.
func pickOp(rng *rand.Rand, team *metaDoc, actor string, round int) memberOp {
	var others []memberDoc
	for _, m := range team.Members {
		if m.ID != actor {
			others = append(others, m)
		}
	}
	roles := []string{"owner", "admin", "member"}
	kind := []string{"add", "role", "remove"}[round%3]
	if len(others) == 0 {
		kind = "add"
	}
	if kind == "add" {
		return memberOp{kind: kind, email: fmt.Sprintf("member%02d@team.test", round), role: roles[rng.IntN(3)]}
	}
	m := others[rng.IntN(len(others))]
	op := memberOp{kind: kind, id: m.ID, email: m.Email, role: m.Role}
	if kind == "role" {
		roles = slices.DeleteFunc(roles, func(r string) bool { return r == m.Role })
		op.to = roles[rng.IntN(len(roles))]
	}
	return op
}

func (op memberOp) send(r *rig, token string) int {
	var status int
	switch op.kind {
	case "add":
		status, _ = r.call(apiclient.AddMember(token, op.email, password, op.role))
	case "role":
		status, _ = r.call(apiclient.SetRole(token, op.id, op.to))
	case "remove":
		status, _ = r.call(apiclient.RemoveMember(token, op.id))
	}
	return status
}

func (op memberOp) success() int {
	switch op.kind {
	case "add":
		return http.StatusCreated
	case "role":
		return http.StatusOK
	default:
		return http.StatusNoContent
	}
}

// commitStage is the first stage at which the operation is committed: its
// metadata write, which carries its event, is done.
func (op memberOp) commitStage() int {
	if op.kind == "add" {
		return 2
	}
	return 1
}

// change is the audited change of op on member id.
func (op memberOp) change(id string) change {
	switch op.kind {
	case "add":
		return change{action: "member.added", target: id, details: map[string]string{"role": op.role}}
	case "role":
		return change{action: "member.role_changed", target: id, details: map[string]string{"from": op.role, "to": op.to}}
	default:
		return change{action: "member.removed", target: id, details: map[string]string{"role": op.role}}
	}
}

// stage reads how far op got. The ledger holds the changes before it: an
// event beyond those is op's.
func (op memberOp) stage(t *testing.T, db *mongo.Database, teamID string, led ledger) int {
	t.Helper()
	meta := readOrg(t, db, teamID)
	require.NotNil(t, meta, "the team's metadata")
	inserted := func(id string) bool {
		c := op.change(id)
		return countEvents(t, db, teamID, c) > led.count(teamID, c)
	}
	pending := len(meta.AuditPending) > 0
	switch op.kind {
	case "add":
		m := meta.byEmail(op.email)
		switch {
		case m == nil && readClaims(t, db)["email/"+op.email] == "":
			return 0
		case m == nil:
			return 1
		case !inserted(m.ID):
			return 2
		case pending:
			return 3
		}
		return 4
	case "role":
		m := meta.byID(op.id)
		require.NotNil(t, m, "member %s", op.email)
		switch {
		case m.Role == op.role:
			return 0
		case !inserted(op.id):
			return 1
		case pending:
			return 2
		}
		return 3
	default:
		switch {
		case meta.byID(op.id) != nil:
			return 0
		case !inserted(op.id):
			return 1
		case pending:
			return 2
		case readClaims(t, db)["email/"+op.email] == teamID:
			return 3
		}
		return 4
	}
}

// resolve checks the settled team against what the kill left — a
// committed operation is complete, an uncommitted one left nothing — and
// records the change in the ledger. It returns the email the operation
// freed, if any: a removed member's, or an add's that never committed.
func (op memberOp) resolve(t *testing.T, team *metaDoc, teamID string, committed bool, led ledger) []account {
	t.Helper()
	require.NotNil(t, team, "the team's metadata")
	switch op.kind {
	case "add":
		m := team.byEmail(op.email)
		require.Equal(t, committed, m != nil, "%s: member present", op)
		if m == nil {
			return []account{{email: op.email}}
		}
		require.Equal(t, op.role, m.Role, "%s", op)
		led.add(teamID, "member.added", m.ID, "role", op.role)
	case "role":
		m := team.byID(op.id)
		require.NotNil(t, m, "%s: member", op)
		want := op.role
		if committed {
			want = op.to
			led.add(teamID, "member.role_changed", op.id, "from", op.role, "to", op.to)
		}
		require.Equal(t, want, m.Role, "%s", op)
	case "remove":
		require.Equal(t, committed, team.byID(op.id) == nil, "%s: member gone", op)
		if committed {
			led.add(teamID, "member.removed", op.id, "role", op.role)
			return []account{{email: op.email}}
		}
	}
	return nil
}

// assertAnswered: an operation answered at all was answered success, and
// only once it had done everything (its event inserted, its claims freed).
func assertAnswered(t *testing.T, what string, status, success int, done bool) {
	t.Helper()
	if status == 0 {
		return
	}
	assert.Equal(t, success, status, "%s answered", what)
	assert.True(t, done, "%s answered %d before it was done", what, status)
}

// count returns how many times the ledger holds c.
func (l ledger) count(orgID string, c change) int {
	n := 0
	for _, x := range l[orgID] {
		if x.String() == c.String() {
			n++
		}
	}
	return n
}

// countEvents returns how many of orgID's audit events record c.
func countEvents(t *testing.T, db *mongo.Database, orgID string, c change) int {
	t.Helper()
	n := 0
	for _, e := range readEvents(t, db, orgID) {
		if (change{action: e.Action, target: e.Target.ID, details: e.Details}).String() == c.String() {
			n++
		}
	}
	return n
}

// waitLeaseFree waits until no lease on the organization is live.
func waitLeaseFree(t *testing.T, db *mongo.Database, id string) {
	t.Helper()
	require.Eventually(t, func() bool {
		ctx, cancel := dbCtx()
		defer cancel()
		n, err := db.Collection("leases").CountDocuments(ctx, bson.D{
			{Key: "_id", Value: id}, {Key: "expires_at", Value: bson.D{{Key: "$gt", Value: time.Now().UTC()}}},
		})
		require.NoError(t, err)
		return n == 0
	}, 30*time.Second, 50*time.Millisecond, "the lease on %s expires", id)
}

func recovery(again time.Duration) string {
	if again == 0 {
		return ""
	}
	return fmt.Sprintf("; the recovering service killed %s after restart", again.Round(time.Millisecond))
}

// tally counts where the kills landed: before an operation wrote
// anything, in its middle, after it had finished; and at which stage.
type tally struct {
	kinds  []string
	counts map[string][3]int
	stages map[string]map[string]int
}

func newTally() *tally {
	return &tally{counts: map[string][3]int{}, stages: map[string]map[string]int{}}
}

func (ty *tally) add(kind string, stage int, stages []string) {
	if _, ok := ty.stages[kind]; !ok {
		ty.kinds = append(ty.kinds, kind)
		ty.stages[kind] = map[string]int{}
	}
	c := ty.counts[kind]
	switch stage {
	case 0:
		c[0]++
	case len(stages) - 1:
		c[2]++
	default:
		c[1]++
		ty.stages[kind][stages[stage]]++
	}
	ty.counts[kind] = c
}

func (ty *tally) String() string {
	var b strings.Builder
	for _, k := range ty.kinds {
		c := ty.counts[k]
		fmt.Fprintf(&b, "\n  %-7s %d before, %d mid-operation %v, %d after", k, c[0], c[1], ty.stages[k], c[2])
	}
	return b.String()
}

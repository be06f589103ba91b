//go:build cluster

// Package cluster holds the multi-instance black-box test: one cmd/embeddb
// and three cmd/orgservice processes on it, as behind a load balancer, with
// mixed concurrent traffic spread over the three. At the end the database
// holds what the answers said and what the fault-injection tests require,
// every instance answers every organization as the database holds it, tokens
// revoked on one instance — by a change of credentials, a delete, a logout
// or a reused refresh token — are refused on all within
// DIRECTORY_STALENESS, the login limits held exactly across the instances
// without locking an account's owner out, and the audit log holds every
// change answered done exactly once. An organization suspended through one
// instance's operator API is refused on all within the bound, and writers
// on all three racing for an organization's last free documents never take
// it past its quota. Run it with
// `make test-cluster`.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgservice/orgservice/internal/mongostore"
	"github.com/orgservice/orgservice/internal/procs"
	"github.com/orgservice/orgservice/internal/proctest"
)

var (
	seed      = flag.Uint64("seed", 0, "random seed (0: from the clock)")
	staleness = flag.Duration("staleness", time.Second, "DIRECTORY_STALENESS of the instances: how soon each sees another's writes")
	margin    = flag.Duration("margin", time.Second, "allowance beyond -staleness for scheduling on a loaded machine and for the polling itself")
	orgCount  = flag.Int("orgs", 40, "organizations created at the start, besides the races")
)

const (
	dbName     = "cluster"
	instances  = 3
	leaseTTL   = 3 * time.Second
	loginLimit = 5 // LOGIN_RATE_PER_MIN, the service's default
	emailLimit = 8 // LOGIN_EMAIL_RATE_PER_MIN: above loginLimit, below a burst
	password   = "password-1"
	workers    = 6 // concurrent clients of the traffic phases
)

// env is one run: the cluster, the client, and the model of what it did.
type env struct {
	t    *testing.T
	c    *client
	m    *model
	db   *mongo.Database
	svcs []*procs.Process

	mu  sync.Mutex
	rng *mrand.Rand

	// Organizations kept out of the mixed traffic, by role.
	limitOrg                          orgModel // the email of the shared-limit burst
	limitToken                        string   // a token one of the burst's logins got
	lockoutOrg                        orgModel // the email tried from one address, its owner from another
	revokePwd, revokeEmail, revokeDel orgModel
	revokeLogout, revokeReuse         orgModel
}

func (e *env) intn(n int) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rng.IntN(n)
}

func (e *env) inst() int { return e.intn(instances) }

func shuffle[T any](e *env, s []T) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.rng.Shuffle(len(s), func(i, j int) { s[i], s[j] = s[j], s[i] })
}

// bound is how long after a write every instance must answer accordingly.
func bound() time.Duration { return *staleness + *margin }

func TestCluster(t *testing.T) {
	s := *seed
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -args -seed=%d); staleness %s, margin %s", s, s, *staleness, *margin)

	dir := t.TempDir()
	svcBin := proctest.Build(t, "../..", "./cmd/orgservice", dir)
	dbBin := proctest.Build(t, "../..", "./cmd/embeddb", dir)
	_, uri := proctest.StartDatabase(t, dbBin, dir)
	mc, err := mongostore.Connect(uri, 30*time.Second)
	require.NoError(t, err)
	t.Cleanup(func() { _ = mc.Disconnect(context.Background()) })

	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	var svcs []*procs.Process
	var bases []string
	for i := range instances {
		addr := proctest.FreeAddr(t)
		name := "svc-" + strconv.Itoa(i)
		env := serviceEnv(uri, hex.EncodeToString(secret), addr, filepath.Join(dir, name+"-data"), *staleness)
		svcs = append(svcs, proctest.Start(t, name, svcBin, dir, nil, env))
		bases = append(bases, "http://"+addr)
	}
	t.Cleanup(func() {
		var wg sync.WaitGroup
		for _, p := range svcs {
			wg.Add(1)
			go func() { defer wg.Done(); p.Stop() }()
		}
		wg.Wait()
		if t.Failed() {
			for _, p := range svcs {
				t.Logf("last lines of %s:\n%s", p.Log, p.Tail(40))
			}
		}
	})
	for i, p := range svcs { // all three start at once, as a deployment would
		proctest.WaitReady(t, p, bases[i], 60*time.Second)
	}

	e := &env{t: t, c: newClient(t, bases), m: newModel(), db: mc.Database(dbName), svcs: svcs,
		rng: mrand.New(mrand.NewPCG(s, s^0x5eed))}
	began := time.Now()

	e.createPhase()
	// Every instance has seen every create before anyone logs in on another.
	time.Sleep(bound())
	e.loginPhase()

	limits := make(chan limitResult, 1)
	go func() { limits <- e.limitBurst() }()
	e.mixedPhase()
	lr := <-limits
	for _, a := range lr.email {
		if a.Status == http.StatusOK {
			e.limitToken = accessToken(a)
		}
	}
	t.Logf("traffic done in %s", time.Since(began).Round(time.Millisecond))

	t.Run("revocation", e.revocation)
	t.Run("suspension", e.suspension)
	t.Run("quota race", e.quotaRace)
	t.Run("shared limits", func(t *testing.T) { e.checkLimits(t, lr) })
	t.Run("invariants", e.invariants)
	t.Run("audit log", e.auditLog)
	t.Run("instances agree", e.agree)
	for _, p := range svcs {
		require.False(t, p.Exited(), "%s exited during the test", p.Name)
	}
	t.Logf("requests by route and status: %s", e.c.stats())
}

// createPhase creates -orgs organizations spread over the instances,
// concurrently with races for one name and for one email across all three.
func (e *env) createPhase() {
	var tasks []func()
	add := func(f func()) { tasks = append(tasks, f) }
	for i := range *orgCount {
		add(func() {
			e.createOne(e.inst(), fmt.Sprintf("Cluster Org %02d", i), fmt.Sprintf("admin%02d@cluster.test", i))
		})
	}
	for k := range 4 { // one name, three emails
		add(func() {
			name := fmt.Sprintf("Race Name %d", k)
			var names, emails []string
			for i := range instances {
				names = append(names, name)
				emails = append(emails, fmt.Sprintf("race%d.%d@cluster.test", k, i))
			}
			e.createRace("name race "+name, names, emails)
		})
	}
	for k := range 2 { // three names, one email
		add(func() {
			var names, emails []string
			for i := range instances {
				names = append(names, fmt.Sprintf("Email Race %d %c", k, 'a'+i))
				emails = append(emails, fmt.Sprintf("shared%d@cluster.test", k))
			}
			e.createRace(fmt.Sprintf("email race %d", k), names, emails)
		})
	}
	roles := []*orgModel{&e.limitOrg, &e.revokePwd, &e.revokeEmail, &e.revokeDel, &e.lockoutOrg, &e.revokeLogout, &e.revokeReuse}
	for i, name := range []string{"Limit Org", "Revoke Password", "Revoke Email", "Revoke Delete", "Lockout Org", "Revoke Logout", "Revoke Reuse"} {
		add(func() {
			if o, ok := e.createOne(e.inst(), name, fmt.Sprintf("role%d@cluster.test", i)); ok {
				*roles[i] = o
			}
		})
	}
	shuffle(e, tasks)
	parallel(workers, tasks)
	require.NotEmpty(e.t, e.limitOrg.id, "the limit organization was created")
}

// createOne creates an organization on instance inst and records it.
func (e *env) createOne(inst int, name, email string) (orgModel, bool) {
	e.m.useName(name)
	a := e.c.create(inst, name, email, password)
	if !e.c.expect(fmt.Sprintf("create %q on instance %d", name, inst), a, http.StatusCreated) {
		return orgModel{}, false
	}
	return e.record(a, name, email)
}

// record adds the organization a 201 answered to the model.
func (e *env) record(a answer, name, email string) (orgModel, bool) {
	o, err := decodeOrg(a)
	if err != nil || o.ID == "" || o.Name != name || o.CollectionName != "org_"+slug(name) || o.AdminEmail != email {
		e.t.Errorf("create %q answered %s", name, a)
		return orgModel{}, false
	}
	om := orgModel{id: o.ID, name: name, email: email, password: password}
	e.m.add(&om)
	return om, true
}

// createRace creates names[i] with emails[i] on instance i, all at once:
// exactly one may win.
func (e *env) createRace(what string, names, emails []string) {
	var fns []func() answer
	for i := range names {
		e.m.useName(names[i])
		fns = append(fns, func() answer { return e.c.create(i, names[i], emails[i], password) })
	}
	as := race(fns...)
	if count(as, http.StatusCreated) != 1 || count(as, http.StatusConflict) != len(as)-1 {
		e.t.Errorf("%s: want exactly one 201 and %d 409s, got %v", what, len(as)-1, as)
	}
	for i, a := range as {
		if a.Status == http.StatusCreated {
			e.record(a, names[i], emails[i])
		}
	}
}

// loginPhase logs every organization in, each on an instance picked at
// random, for the token the mixed phase uses.
func (e *env) loginPhase() {
	var tasks []func()
	for _, o := range e.mixable() {
		tasks = append(tasks, func() {
			inst := e.inst()
			a := e.c.login(inst, o.email, password)
			if !e.c.expect(fmt.Sprintf("login %s on instance %d", o.email, inst), a, http.StatusOK) {
				return
			}
			e.m.update(o.id, func(m *orgModel) { m.token, m.tokenName = accessToken(a), m.name })
		})
	}
	parallel(workers, tasks)
}

// mixable returns the live organizations that are not kept for a role.
func (e *env) mixable() []orgModel {
	var out []orgModel
	for _, o := range e.m.live() {
		switch o.id {
		case e.limitOrg.id, e.revokePwd.id, e.revokeEmail.id, e.revokeDel.id, e.lockoutOrg.id, e.revokeLogout.id, e.revokeReuse.id:
			continue
		}
		out = append(out, o)
	}
	return out
}

// serviceEnv is the configuration every instance shares; addr and dataDir
// are its own.
func serviceEnv(mongoURL, secret, addr, dataDir string, staleness time.Duration) []string {
	return []string{
		"MONGO_URL=" + mongoURL,
		"MONGO_DB_NAME=" + dbName,
		"SECRET_KEY=" + secret,
		"HTTP_ADDR=" + addr,
		"DATA_DIR=" + dataDir,
		// Read by the directory and the shared rate-limit store once they
		// exist; ignored by a service that does not know them.
		"DIRECTORY_STALENESS=" + staleness.String(),
		"RATE_LIMIT_STORE=database",
		"BCRYPT_COST=4",
		"LEASE_TTL=" + leaseTTL.String(),
		fmt.Sprintf("LOGIN_RATE_PER_MIN=%d", loginLimit),
		fmt.Sprintf("LOGIN_EMAIL_RATE_PER_MIN=%d", emailLimit),
		"WRITE_RATE_PER_MIN=0",
		// The test is the only client, on loopback: it names each logical
		// client by X-Forwarded-For, so that the per-IP login limit counts
		// clients, not the one test process.
		"TRUSTED_PROXIES=127.0.0.1/32",
		"LOG_FORMAT=text",
		"LOG_LEVEL=info",
		"OPERATOR_API_KEY=" + operatorKey,
	}
}

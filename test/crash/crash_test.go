//go:build crash

// Package crash holds the black-box SIGKILL tests: the real binary, killed
// at random moments — while it renames an organization holding 100,000
// documents with the copy strategy and documents are being written through
// the API (renames_test.go), and while it deletes organizations of several
// members and adds, changes and removes members (members_test.go) —
// restarted, sometimes killed again while it recovers, and checked: the
// data, the claims on names and emails, and the audit log, where every
// committed change is recorded exactly once and no other. Run them with
// `make test-crash`.
package crash

import (
	"context"
	"flag"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgservice/orgservice/internal/apiclient"
	"github.com/orgservice/orgservice/internal/mongostore"
	"github.com/orgservice/orgservice/internal/procs"
	"github.com/orgservice/orgservice/internal/proctest"
)

var (
	docs     = flag.Int("docs", 100_000, "documents in the renamed organization's collection")
	rounds   = flag.Int("rounds", 5, "rename-and-kill rounds")
	opRounds = flag.Int("op-rounds", 15, "rounds that kill a delete and a member operation")
	seed     = flag.Uint64("seed", 0, "random seed (0: from the clock)")
)

const (
	dbName   = "crash"
	leaseTTL = 2 * time.Second
	// claimGrace is the service's: how old a claim must be before a claim
	// attempt may find it stale and free it (2×LEASE_TTL).
	claimGrace = 2 * leaseTTL
	password   = "password-1" // every member's
)

func newRand(t *testing.T) *rand.Rand {
	s := *seed
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -args -seed=%d)", s, s)
	return rand.New(rand.NewPCG(s, s))
}

// rig is the database, a process of its own so that killing the service
// leaves it running, and the service on it, restarted at will on one address.
type rig struct {
	t      *testing.T
	dir    string
	svcBin string
	uri    string
	addr   string
	base   string
	api    *apiclient.Client
	db     *mongo.Database
	svc    *procs.Process
}

func newRig(t *testing.T) *rig {
	t.Helper()
	dir := t.TempDir()
	r := &rig{t: t, dir: dir}
	r.svcBin = proctest.Build(t, "../..", "./cmd/orgservice", dir)
	dbBin := proctest.Build(t, "../..", "./cmd/embeddb", dir)
	_, r.uri = proctest.StartDatabase(t, dbBin, dir)

	client, err := mongostore.Connect(r.uri, 30*time.Second)
	require.NoError(t, err)
	r.db = client.Database(dbName)

	r.addr = proctest.FreeAddr(t)
	r.base = "http://" + r.addr
	// A connection per request: none outlives a killed service to fail a
	// request meant for the next one.
	r.api = apiclient.New(r.base, &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{DisableKeepAlives: true}})
	r.start()
	t.Cleanup(func() {
		r.svc.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(r.svc.Log)
			t.Logf("service log:\n%s", b)
		}
	})
	return r
}

// start starts the service and waits until it is ready. Every run appends
// to one log, dir/service.log.
func (r *rig) start() {
	r.t.Helper()
	r.svc = proctest.Start(r.t, "service", r.svcBin, r.dir, nil, []string{
		"MONGO_URL=" + r.uri, "MONGO_DB_NAME=" + dbName, "SECRET_KEY=" + strings.Repeat("s", 40),
		"HTTP_ADDR=" + r.addr, "MIGRATION_STRATEGY=copy", "LEASE_TTL=" + leaseTTL.String(), "BCRYPT_COST=4",
		"LOGIN_RATE_PER_MIN=0", "LOGIN_EMAIL_RATE_PER_MIN=0", "WRITE_RATE_PER_MIN=0", "DATA_RATE_PER_MIN=0", "LOG_FORMAT=text", "LOG_LEVEL=info",
		"OPERATOR_API_KEY=" + operatorKey,
	})
	proctest.WaitReady(r.t, r.svc, r.base, 30*time.Second)
}

// restart starts the killed service again; when recoveryKill is not 0, it
// kills it once more that long after it was ready, and starts it again.
func (r *rig) restart(recoveryKill time.Duration) {
	r.t.Helper()
	r.start()
	if recoveryKill > 0 {
		time.Sleep(recoveryKill)
		r.svc.Kill()
		r.start()
	}
}

// call sends one request; status 0 when no answer came (the service was
// killed).
func (r *rig) call(req apiclient.Request) (int, map[string]any) {
	a, err := r.api.Do(context.Background(), req)
	if err != nil {
		return 0, nil // killed mid-request
	}
	var m map[string]any
	_ = a.JSON(&m)
	return a.Status, m
}

// do sends a request as a client that waits out another operation would:
// answers 409 operation-in-progress (a lease a killed service left until
// it expires) and 503 are retried for up to 30 s. The answer must be want.
func (r *rig) do(req apiclient.Request, want int) map[string]any {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, resp := r.call(req)
		busy := status == http.StatusServiceUnavailable ||
			status == http.StatusConflict && strings.HasSuffix(str(resp["type"]), "/operation-in-progress")
		if !busy || time.Now().After(deadline) {
			require.Equal(r.t, want, status, "%s %s: %v", req.Method, req.Path, resp)
			return resp
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

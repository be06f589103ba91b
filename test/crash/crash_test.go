//go:build crash

// Package crash holds the black-box SIGKILL test: the real binary, killed
// at random moments while it renames an organization holding 100,000
// documents with the copy strategy — and while documents are being written
// through the API — restarted, and checked. Run it with `make test-crash`.
package crash

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgservice/orgservice/internal/mongostore"
	"github.com/orgservice/orgservice/internal/proctest"
)

var (
	docs   = flag.Int("docs", 100_000, "documents in the organization's collection")
	rounds = flag.Int("rounds", 5, "rename-and-kill rounds")
	seed   = flag.Uint64("seed", 0, "random seed (0: from the clock)")
)

const dbName = "crash"

// service is one run of the binary.
type service struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startService(t *testing.T, bin, mongoURL, addr, logPath string) *service {
	t.Helper()
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	require.NoError(t, err)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"MONGO_URL="+mongoURL, "MONGO_DB_NAME="+dbName, "SECRET_KEY="+strings.Repeat("s", 40),
		"HTTP_ADDR="+addr, "MIGRATION_STRATEGY=copy", "LEASE_TTL=2s", "BCRYPT_COST=4",
		"LOGIN_RATE_PER_MIN=0", "WRITE_RATE_PER_MIN=0", "DATA_RATE_PER_MIN=0", "LOG_FORMAT=text", "LOG_LEVEL=info",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	require.NoError(t, cmd.Start())
	s := &service{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(s.done) }()
	return s
}

func (s *service) kill() {
	_ = s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

func waitReady(t *testing.T, base string) {
	t.Helper()
	require.Eventually(t, func() bool {
		r, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "service ready")
}

func call(t *testing.T, method, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	r, err := (&http.Client{Timeout: 5 * time.Minute}).Do(req)
	if err != nil {
		return 0, nil // killed mid-request
	}
	defer r.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(b, &m)
	return r.StatusCode, m
}

func TestSIGKILLDuringRenames(t *testing.T) {
	s := *seed
	if s == 0 {
		s = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (rerun with -args -seed=%d)", s, s)
	rng := rand.New(rand.NewPCG(s, s))

	dir := t.TempDir()
	svcBin := proctest.Build(t, "../..", dir, "./cmd/orgservice")
	dbBin := proctest.Build(t, "../..", dir, "./cmd/embeddb")

	// The database is a process of its own, so that killing the service leaves it running.
	dbCmd := exec.Command(dbBin, "-dir", filepath.Join(dir, "db"), "-addr", proctest.FreeAddr(t))
	stdout, err := dbCmd.StdoutPipe()
	require.NoError(t, err)
	dbCmd.Stderr = os.Stderr
	require.NoError(t, dbCmd.Start())
	t.Cleanup(func() { _ = dbCmd.Process.Signal(syscall.SIGTERM); _ = dbCmd.Wait() })
	uri, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	uri = strings.TrimSpace(uri)

	client, err := mongostore.Connect(uri, 30*time.Second)
	require.NoError(t, err)
	db := client.Database(dbName)

	addr := proctest.FreeAddr(t)
	base := "http://" + addr
	logPath := filepath.Join(dir, "service.log")
	svc := startService(t, svcBin, uri, addr, logPath)
	t.Cleanup(func() { svc.kill() })
	waitReady(t, base)

	status, body := call(t, http.MethodPost, base+"/api/v1/org/create", "",
		`{"organization_name":"Crash Test 0","email":"crash@example.com","password":"password-1"}`)
	require.Equal(t, http.StatusCreated, status, "%v", body)
	status, body = call(t, http.MethodPost, base+"/api/v1/admin/login", "", `{"email":"crash@example.com","password":"password-1"}`)
	require.Equal(t, http.StatusOK, status, "%v", body)
	token := body["access_token"].(string)

	start := time.Now()
	seedDocs(t, db.Collection("org_crash_test_0"), *docs)
	t.Logf("seeded %d documents in %s", *docs, time.Since(start).Round(time.Millisecond))
	api := newAPIDocs()
	for i := range 200 {
		api.post(t, base, token, fmt.Sprintf("before-%03d", i))
	}
	require.Len(t, api.confirmed, 200, "documents written through the API")

	// A rename that runs to the end gives the scale for choosing kill moments.
	start = time.Now()
	status, body = call(t, http.MethodPut, base+"/api/v1/org/update", token, `{"organization_name":"Crash Test 1"}`)
	require.Equal(t, http.StatusOK, status, "%v", body)
	full := time.Since(start)
	t.Logf("an uninterrupted copy rename of %d documents takes %s", *docs, full.Round(time.Millisecond))
	checkInvariants(t, db, base, "crash_test_1", *docs, api, token)

	current := 1
	for round := 1; round <= *rounds; round++ {
		next := current + 1
		// Writers keep writing documents through the API during the rename
		// and its kill: every one answered 201 must survive.
		stopWriters := make(chan struct{})
		writersDone := make(chan struct{})
		go func() {
			defer close(writersDone)
			for i := 0; ; i++ {
				select {
				case <-stopWriters:
					return
				default:
				}
				api.post(t, base, token, fmt.Sprintf("round%d-%05d", round, i))
				time.Sleep(20 * time.Millisecond)
			}
		}()
		time.Sleep(200 * time.Millisecond) // some land before the rename starts, some race it
		go call(t, http.MethodPut, base+"/api/v1/org/update", token, fmt.Sprintf(`{"organization_name":"Crash Test %d"}`, next))
		after := time.Duration(rng.Int64N(int64(full)))
		time.Sleep(after)
		svc.kill()
		close(stopWriters)
		<-writersDone
		t.Logf("round %d: killed %s into the rename to crash_test_%d", round, after.Round(time.Millisecond), next)

		svc = startService(t, svcBin, uri, addr, logPath)
		waitReady(t, base)
		if rng.IntN(2) == 0 { // sometimes kill the recovery too
			after := 2*time.Second + time.Duration(rng.Int64N(int64(full)))
			time.Sleep(after)
			svc.kill()
			t.Logf("round %d: killed the recovering service %s after restart", round, after.Round(time.Millisecond))
			svc = startService(t, svcBin, uri, addr, logPath)
			waitReady(t, base)
		}
		slug := waitSettled(t, db)
		switch slug {
		case fmt.Sprintf("crash_test_%d", next):
			current = next
		case fmt.Sprintf("crash_test_%d", current):
		default:
			t.Fatalf("round %d: organization ended at %q", round, slug)
		}
		checkInvariants(t, db, base, slug, *docs, api, token)
		t.Logf("round %d: settled at %s, all %d documents present once, and all %d written through the API",
			round, slug, *docs, len(api.confirmed))
	}
	if t.Failed() {
		b, _ := os.ReadFile(logPath)
		t.Logf("service log:\n%s", b)
	}
}

func seedDocs(t *testing.T, coll *mongo.Collection, n int) {
	t.Helper()
	const batch = 5000
	for i := 0; i < n; i += batch {
		docs := make([]any, 0, batch)
		for j := i; j < i+batch && j < n; j++ {
			docs = append(docs, bson.D{{Key: "_id", Value: j}, {Key: "name", Value: fmt.Sprintf("doc-%d", j)}, {Key: "v", Value: j * 7}})
		}
		_, err := coll.InsertMany(context.Background(), docs)
		require.NoError(t, err)
	}
}

// waitSettled waits until the organization has no pending operation and returns its slug.
func waitSettled(t *testing.T, db *mongo.Database) string {
	t.Helper()
	var slug string
	require.Eventually(t, func() bool {
		var d struct {
			Slug    string   `bson:"slug"`
			State   string   `bson:"state"`
			Pending bson.Raw `bson:"pending"`
		}
		if err := db.Collection(mongostore.OrganizationsCollection).FindOne(context.Background(), bson.D{}).Decode(&d); err != nil {
			return false
		}
		slug = d.Slug
		return d.State == "active" && d.Pending == nil
	}, 3*time.Minute, 200*time.Millisecond, "organization settles")
	return slug
}

// checkInvariants: one organization, exactly one tenant collection — the
// one its metadata names — holding every document exactly once, GET by the
// current name 200, and the claims matching the live name and email.
func checkInvariants(t *testing.T, db *mongo.Database, base, slug string, n int, api *apiDocs, token string) {
	t.Helper()
	ctx := context.Background()
	var meta struct {
		Collection string `bson:"collection_name"`
		Name       string `bson:"organization_name"`
	}
	require.NoError(t, db.Collection(mongostore.OrganizationsCollection).FindOne(ctx, bson.D{}).Decode(&meta))
	require.Equal(t, "org_"+slug, meta.Collection)

	names, err := db.ListCollectionNames(ctx, bson.D{})
	require.NoError(t, err)
	var tenants []string
	for _, name := range names {
		if strings.HasPrefix(name, "org_") {
			tenants = append(tenants, name)
		}
	}
	require.Equal(t, []string{meta.Collection}, tenants, "exactly one tenant collection")

	coll := db.Collection(meta.Collection)
	count, err := coll.CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	// A write whose answer a kill cut off may or may not have happened.
	require.GreaterOrEqual(t, count, int64(n+len(api.confirmed)), "document count")
	require.LessOrEqual(t, count, int64(n+len(api.confirmed)+len(api.unanswered)), "document count")
	api.check(t, base, token)
	// _id is unique in a collection, so n documents with _ids in [0, n) are each of them exactly once.
	inRange, err := coll.CountDocuments(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: 0}, {Key: "$lt", Value: n}}}})
	require.NoError(t, err)
	require.EqualValues(t, n, inRange, "every seeded _id")

	status, body := call(t, http.MethodGet, base+"/api/v1/org/get?organization_name="+strings.ReplaceAll(meta.Name, " ", "+"), "", "")
	require.Equal(t, http.StatusOK, status, "%v", body)

	claims, err := db.Collection("claims").CountDocuments(ctx, bson.D{})
	require.NoError(t, err)
	require.EqualValues(t, 2, claims, "one name and one email claimed")
}

// apiDocs are the documents written through the API: those answered 201,
// and those whose answer never came (the service was killed).
type apiDocs struct {
	confirmed  map[string]string // id → the body sent
	unanswered map[string]bool
}

func newAPIDocs() *apiDocs {
	return &apiDocs{confirmed: map[string]string{}, unanswered: map[string]bool{}}
}

// post writes one document; refusals while a rename is pending (409) are expected.
func (a *apiDocs) post(t *testing.T, base, token, id string) {
	body := fmt.Sprintf(`{"id":%q,"n":%d,"s":"survives every crash"}`, id, len(id))
	status, resp := call(t, http.MethodPost, base+"/api/v1/org/documents", token, body)
	switch status {
	case http.StatusCreated:
		a.confirmed[id] = body
	case 0:
		a.unanswered[id] = true
	case http.StatusConflict, http.StatusServiceUnavailable:
	default:
		t.Errorf("write %s: %d %v", id, status, resp)
	}
}

// check reads every confirmed document back through the API.
func (a *apiDocs) check(t *testing.T, base, token string) {
	t.Helper()
	for id, body := range a.confirmed {
		status, got := call(t, http.MethodGet, base+"/api/v1/org/documents/"+id, token, "")
		require.Equal(t, http.StatusOK, status, "document %s, answered 201, must be readable: %v", id, got)
		var want map[string]any
		require.NoError(t, json.Unmarshal([]byte(body), &want))
		delete(want, "id")
		require.Equal(t, want, got["data"], "document %s", id)
		require.EqualValues(t, 1, got["version"], "document %s", id)
	}
}

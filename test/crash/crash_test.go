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
	"bufio"
	"encoding/json"
	"flag"
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
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgservice/orgservice/internal/mongostore"
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
)

// httpClient opens a connection per request: none outlives a killed
// service to fail a request meant for the next one.
var httpClient = &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{DisableKeepAlives: true}}

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
	t       *testing.T
	svcBin  string
	uri     string
	addr    string
	base    string
	logPath string
	db      *mongo.Database
	svc     *service
}

func newRig(t *testing.T) *rig {
	t.Helper()
	dir := t.TempDir()
	r := &rig{t: t, logPath: filepath.Join(dir, "service.log")}
	r.svcBin = proctest.Build(t, "../..", dir, "./cmd/orgservice")
	dbBin := proctest.Build(t, "../..", dir, "./cmd/embeddb")

	dbCmd := exec.Command(dbBin, "-dir", filepath.Join(dir, "db"), "-addr", proctest.FreeAddr(t))
	stdout, err := dbCmd.StdoutPipe()
	require.NoError(t, err)
	dbCmd.Stderr = os.Stderr
	require.NoError(t, dbCmd.Start())
	t.Cleanup(func() { _ = dbCmd.Process.Signal(syscall.SIGTERM); _ = dbCmd.Wait() })
	uri, err := bufio.NewReader(stdout).ReadString('\n')
	require.NoError(t, err)
	r.uri = strings.TrimSpace(uri)

	client, err := mongostore.Connect(r.uri, 30*time.Second)
	require.NoError(t, err)
	r.db = client.Database(dbName)

	r.addr = proctest.FreeAddr(t)
	r.base = "http://" + r.addr
	r.start()
	t.Cleanup(func() {
		r.svc.kill()
		if t.Failed() {
			b, _ := os.ReadFile(r.logPath)
			t.Logf("service log:\n%s", b)
		}
	})
	return r
}

// start starts the service and waits until it is ready.
func (r *rig) start() {
	r.t.Helper()
	r.svc = startService(r.t, r.svcBin, r.uri, r.addr, r.logPath)
	waitReady(r.t, r.base)
}

// restart starts the killed service again; when recoveryKill is not 0, it
// kills it once more that long after it was ready, and starts it again.
func (r *rig) restart(recoveryKill time.Duration) {
	r.t.Helper()
	r.start()
	if recoveryKill > 0 {
		time.Sleep(recoveryKill)
		r.svc.kill()
		r.start()
	}
}

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
		"HTTP_ADDR="+addr, "MIGRATION_STRATEGY=copy", "LEASE_TTL="+leaseTTL.String(), "BCRYPT_COST=4",
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

// call sends one request; status 0 when no answer came (the service was killed).
func call(t *testing.T, method, url, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	r, err := httpClient.Do(req)
	if err != nil {
		return 0, nil // killed mid-request
	}
	defer r.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(b, &m)
	return r.StatusCode, m
}

// do sends a request as a client that waits out another operation would:
// answers 409 operation-in-progress (a lease a killed service left until
// it expires) and 503 are retried for up to 30 s. The answer must be want.
func (r *rig) do(method, path, token, body string, want int) map[string]any {
	r.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, resp := call(r.t, method, r.base+path, token, body)
		busy := status == http.StatusServiceUnavailable ||
			status == http.StatusConflict && strings.HasSuffix(str(resp["type"]), "/operation-in-progress")
		if !busy || time.Now().After(deadline) {
			require.Equal(r.t, want, status, "%s %s: %v", method, path, resp)
			return resp
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/orgservice/orgservice/internal/app/apptest"
	"github.com/orgservice/orgservice/internal/dbtest"
	"github.com/orgservice/orgservice/internal/httpapi"
	"github.com/orgservice/orgservice/internal/mongostore"
	"github.com/orgservice/orgservice/internal/org"
)

var _ httpapi.RateStore = (*mongostore.RateLimits)(nil)

// windowStart is a minute boundary; the clusters' clocks start 15 s after it.
var windowStart = time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC)

// testClock is a clock the test moves; every instance of a cluster reads it.
type testClock struct{ ns atomic.Int64 }

func (c *testClock) Now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *testClock) Add(d time.Duration) { c.ns.Add(int64(d)) }
func (c *testClock) Set(t time.Time)     { c.ns.Store(t.UnixNano()) }

// cluster is n instances of the service over one database, each with a rate
// store of its own (as n processes would have), behind one round-robin load
// balancer that the instances trust for X-Forwarded-For.
type cluster struct {
	t     *testing.T
	db    *mongo.Database
	envs  []*env
	lb    *httptest.Server
	clock *testClock
}

func newCluster(t *testing.T, n int, opts httpapi.Options) *cluster {
	t.Helper()
	c := &cluster{t: t, db: dbtest.New(t), clock: &testClock{}}
	c.clock.Set(windowStart.Add(15 * time.Second))
	opts.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	// Exactness is under test, not speed: a loaded test machine must not
	// turn a slow insert into a 503.
	opts.RateTimeout = 20 * time.Second
	for range n {
		cfg := apptest.Config()
		cfg.HTTP, cfg.SharedRateLimits, cfg.Clock = opts, true, c.clock.Now
		c.envs = append(c.envs, newEnvFrom(t, c.db, cfg))
	}
	var turn atomic.Uint64
	c.lb = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e := c.envs[(turn.Add(1)-1)%uint64(n)]
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, r)
		checkContract(t, e.srv, r, resp{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()})
		maps.Copy(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(c.lb.Close)
	return c
}

// post sends body to path through the balancer for the client at address
// client. It may run on any goroutine: a failure is reported as status 0.
func (c *cluster) post(path, body, client string) resp {
	req, err := http.NewRequest(http.MethodPost, c.lb.URL+path, strings.NewReader(body))
	if err != nil {
		c.t.Errorf("request: %v", err)
		return resp{}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-For", client)
	res, err := c.lb.Client().Do(req)
	if err != nil {
		c.t.Errorf("POST %s: %v", path, err)
		return resp{}
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.t.Errorf("POST %s: read the body: %v", path, err)
	}
	return resp{Status: res.StatusCode, Header: res.Header, Body: b}
}

// statusCounts runs send(0..n-1) all at once and counts the answers by status.
func statusCounts(n int, send func(i int) resp) map[int]int {
	var mu sync.Mutex
	counts := map[int]int{}
	concurrently(n, func(i int) {
		r := send(i)
		mu.Lock()
		counts[r.Status]++
		mu.Unlock()
	})
	return counts
}

// rateLimited sums orgservice_rate_limited_total{limit=name} over the instances.
func (c *cluster) rateLimited(name string) int {
	c.t.Helper()
	re := regexp.MustCompile(`(?m)^orgservice_rate_limited_total\{limit="` + name + `"\} (\d+)$`)
	total := 0
	for _, e := range c.envs {
		if m := re.FindStringSubmatch(e.metricsText()); m != nil {
			n, err := strconv.Atoi(m[1])
			require.NoError(c.t, err)
			total += n
		}
	}
	return total
}

// slots counts the rate-limit slots whose _id starts with prefix.
func slots(t testing.TB, db *mongo.Database, prefix string) int64 {
	t.Helper()
	n, err := db.Collection(mongostore.RateLimitsCollection).CountDocuments(context.Background(),
		bson.D{{Key: "_id", Value: bson.Regex{Pattern: "^" + regexp.QuoteMeta(prefix)}}})
	require.NoError(t, err)
	return n
}

// Thirty logins for one email at once, spread over three instances from
// thirty addresses: exactly the eight of the per-email limit reach the
// handler.
func TestSharedLoginLimitIsExactAcrossInstances(t *testing.T) {
	c := newCluster(t, 3, httpapi.Options{LoginRatePerMin: 5, LoginEmailRatePerMin: 8})
	c.envs[0].create("Acme", "admin@acme.com", "s3cretpass")
	counts := statusCounts(30, func(i int) resp {
		return c.post("/api/v1/admin/login", loginBody("admin@acme.com", "wrongpass1"), fmt.Sprintf("198.51.100.%d", i+1))
	})
	assert.Equal(t, map[int]int{http.StatusUnauthorized: 8, http.StatusTooManyRequests: 22}, counts)
	assert.Equal(t, 22, c.rateLimited("login_email"))
	assert.Equal(t, 0, c.rateLimited("login_ip"))
	assert.Equal(t, 0, c.rateLimited("login_email_ip"))
	win := strconv.FormatInt(windowStart.Unix(), 10)
	assert.EqualValues(t, 8, slots(t, c.db, "login_email|admin@acme.com|"+win+"|"), "one slot per allowed login")
	assert.EqualValues(t, 30, slots(t, c.db, "login_ip|"), "each address took one slot of its own")
	assert.EqualValues(t, 30, slots(t, c.db, "login_email_ip|admin@acme.com%7C"), "and one of the email's at that address")
}

// Thirty creates at once from one client over three instances: exactly the
// ten of the write limit create an organization.
func TestSharedWriteLimitIsExactAcrossInstances(t *testing.T) {
	c := newCluster(t, 3, httpapi.Options{WriteRatePerMin: 10})
	counts := statusCounts(30, func(i int) resp {
		return c.post("/api/v1/org/create",
			fmt.Sprintf(`{"organization_name":"Org %d","email":"a%d@x.com","password":"s3cretpass"}`, i, i), "203.0.113.9")
	})
	assert.Equal(t, map[int]int{http.StatusCreated: 10, http.StatusTooManyRequests: 20}, counts)
	assert.EqualValues(t, 10, c.envs[0].orgDocs())
	assert.Equal(t, 20, c.rateLimited("write"))
	assert.EqualValues(t, 10, slots(t, c.db, "write|203.0.113.9|"))
}

func TestSharedLimitHeadersAndWindowRollover(t *testing.T) {
	c := newCluster(t, 3, httpapi.Options{LoginRatePerMin: 5, LoginEmailRatePerMin: 6})
	login := func(ip string) resp {
		return c.post("/api/v1/admin/login", loginBody("admin@acme.com", "wrongpass1"), ip)
	}
	end := windowStart.Add(time.Minute).Unix()
	// One after the other over the three instances, the count is the
	// cluster's; the headers are the per-email limit's, the last to count.
	for i := range 6 {
		r := login(fmt.Sprintf("198.51.100.%d", i+1))
		require.Equal(t, http.StatusUnauthorized, r.Status, "login %d: %s", i+1, r.Body)
		assert.Equal(t, "6", r.Header.Get("X-RateLimit-Limit"))
		assert.Equal(t, strconv.Itoa(5-i), r.Header.Get("X-RateLimit-Remaining"), "login %d", i+1)
		assert.Equal(t, strconv.FormatInt(end, 10), r.Header.Get("X-RateLimit-Reset"))
	}
	for range 3 { // every instance refuses, whether or not it has seen the window filled
		r := login("198.51.100.99")
		require.Equal(t, http.StatusTooManyRequests, r.Status, "%s", r.Body)
		assert.Equal(t, httpapi.ProblemBase+"rate-limited", r.JSON(t)["type"])
		assert.Equal(t, "45", r.Header.Get("Retry-After"), "the window ends in 45 s")
		assert.Equal(t, "too many requests; retry after 45 seconds", r.JSON(t)["detail"])
		assert.Equal(t, "0", r.Header.Get("X-RateLimit-Remaining"))
		assert.Equal(t, strconv.FormatInt(end, 10), r.Header.Get("X-RateLimit-Reset"))
	}
	old := "login_email|admin@acme.com|" + strconv.FormatInt(windowStart.Unix(), 10) + "|"
	assert.EqualValues(t, 6, slots(t, c.db, old))

	// The next window is free again, on every instance.
	c.clock.Add(time.Minute)
	for i := range 3 {
		r := login("198.51.100.99")
		require.Equal(t, http.StatusUnauthorized, r.Status, "%s", r.Body)
		assert.Equal(t, strconv.Itoa(5-i), r.Header.Get("X-RateLimit-Remaining"))
		assert.Equal(t, strconv.FormatInt(end+60, 10), r.Header.Get("X-RateLimit-Reset"))
	}
	// The ended window's slots stay one window longer (an instance whose
	// clock lags may still count in it), then are pruned in the background.
	assert.EqualValues(t, 6, slots(t, c.db, old))
	c.clock.Add(time.Minute)
	require.Equal(t, http.StatusUnauthorized, login("198.51.100.99").Status)
	require.Eventually(t, func() bool { return slots(t, c.db, old) == 0 }, 20*time.Second, 20*time.Millisecond,
		"the slots of a window ended a window ago are pruned")
	prev := "login_email|admin@acme.com|" + strconv.FormatInt(windowStart.Add(time.Minute).Unix(), 10) + "|"
	assert.EqualValues(t, 3, slots(t, c.db, prev), "the window that just ended is kept")
}

// syncBuffer is a log sink safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// unreachableDatabases are rate stores' databases that cannot answer.
var unreachableDatabases = map[string]func(t *testing.T) *mongo.Database{
	"closed port": func(t *testing.T) *mongo.Database {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())
		client, err := mongostore.Connect("mongodb://"+addr+"/?directConnection=true", 30*time.Second)
		require.NoError(t, err)
		t.Cleanup(func() { _ = client.Disconnect(context.Background()) })
		return client.Database("ratelimits")
	},
	"disconnected client": func(t *testing.T) *mongo.Database {
		client, err := mongostore.Connect(dbtest.URI(t), 30*time.Second)
		require.NoError(t, err)
		require.NoError(t, client.Disconnect(context.Background()))
		return client.Database("ratelimits")
	},
}

// A rate store that cannot answer: closed (the default) answers 503 within
// the store's bound and changes nothing; open lets requests through and
// warns once.
func TestSharedLimitStoreUnavailable(t *testing.T) {
	for name, dead := range unreachableDatabases {
		for _, open := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/open=%v", name, open), func(t *testing.T) {
				e := newEnv(t, org.Config{})
				e.create("Acme", "admin@acme.com", "s3cretpass")
				var logs syncBuffer
				// The API of this service, with its rate limits counted in a
				// database that cannot answer.
				e.srv = httpapi.New(httpapi.Deps{
					Orgs: e.orgs, Auth: e.auth, Documents: e.app.Documents(), DB: e.stores,
					RateStore: mongostore.NewRateLimits(dead(t), nil),
				}, httpapi.Options{
					LoginRatePerMin: 5, WriteRatePerMin: 10, RateFailOpen: open, RateTimeout: 300 * time.Millisecond,
				}, slog.New(slog.NewJSONHandler(&logs, nil)))
				began := time.Now()
				login := e.do(http.MethodPost, "/api/v1/admin/login", loginBody("admin@acme.com", "s3cretpass"), "")
				create := e.do(http.MethodPost, "/api/v1/org/create", `{"organization_name":"Globex","email":"b@x.com","password":"s3cretpass"}`, "")
				assert.Less(t, time.Since(began), 10*time.Second, "bounded by RateTimeout, never a hang")

				if open {
					assert.Equal(t, http.StatusOK, login.Status, "%s", login.Body)
					assert.Equal(t, http.StatusCreated, create.Status, "%s", create.Body)
					assert.EqualValues(t, 2, e.orgDocs())
					assert.Equal(t, 1, strings.Count(logs.String(), "rate limit store unavailable"), "one warning per 10 s: %s", logs.String())
					return
				}
				for _, r := range []resp{login, create} {
					require.Equal(t, http.StatusServiceUnavailable, r.Status, "%s", r.Body)
					assert.Equal(t, httpapi.ProblemBase+"unavailable", r.JSON(t)["type"])
					assert.Equal(t, "rate limits cannot be checked right now; retry shortly", r.JSON(t)["detail"])
					assert.NotEmpty(t, r.Header.Get("Retry-After"))
					assert.Empty(t, r.Header.Get("X-RateLimit-Limit"))
				}
				assert.EqualValues(t, 1, e.orgDocs(), "a refused create changes nothing")
			})
		}
	}
}

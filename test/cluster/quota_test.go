//go:build cluster

package cluster

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgservice/orgservice/internal/apiclient"
)

// operatorKey is the instances' OPERATOR_API_KEY.
const operatorKey = "cluster-operator-key-0123456789abcdef"

// suspension suspends an organization through instance 1's operator API
// with tokens minted on all three: instance 1 refuses its token at once,
// the two others within the staleness bound, all with 403
// organization-suspended; logins are refused too; nothing is deleted; a
// reactivation on instance 2 makes every token work again on every
// instance within the bound.
func (e *env) suspension(t *testing.T) {
	o, ok := e.createOne(0, "Suspend Me", "suspend@cluster.test")
	require.True(t, ok)
	time.Sleep(bound())
	tokens := make([]string, instances)
	for i := range instances { // three logins of the five a minute
		tokens[i] = e.tokenOn(t, i, o)
	}
	doc := e.c.call(0, apiclient.CreateDocument(tokens[0], []byte(`{"id":"kept"}`)))
	require.Equal(t, http.StatusCreated, doc.Status, "%s", doc)

	const a, b = 1, 2
	suspend, active := "suspended", "active"
	r := e.c.call(a, apiclient.OperatorPatch(operatorKey, o.id, apiclient.OperatorChange{Status: &suspend}))
	require.Equal(t, http.StatusOK, r.Status, "suspend on instance %d: %s", a, r)
	done := time.Now()
	e.m.update(o.id, func(m *orgModel) { m.committed["org.suspended"]++ })
	p := e.c.probe(a, tokens[a])
	assert.Equal(t, http.StatusForbidden, p.Status, "instance %d, which suspended it, refuses its token at once: %s", a, p)
	e.within(t, "suspension", done, func(i int) bool {
		p := e.c.probe(i, tokens[i])
		return p.Status == http.StatusForbidden && problemType(p) == "organization-suspended"
	})
	time.Sleep(time.Until(done.Add(bound())))
	for _, i := range []int{0, b} { // two more logins: five in all
		l := e.c.login(i, o.email, o.password)
		assert.Equal(t, http.StatusForbidden, l.Status, "login on instance %d while suspended: %s", i, l)
	}
	var kept int64
	for range 3 {
		n, err := e.db.Collection("org_suspend_me").CountDocuments(context.Background(), bson.D{})
		if err == nil {
			kept = n
			break
		}
	}
	assert.Equal(t, int64(1), kept, "nothing is deleted")

	r = e.c.call(b, apiclient.OperatorPatch(operatorKey, o.id, apiclient.OperatorChange{Status: &active}))
	require.Equal(t, http.StatusOK, r.Status, "reactivate on instance %d: %s", b, r)
	done = time.Now()
	e.m.update(o.id, func(m *orgModel) { m.committed["org.reactivated"]++ })
	e.within(t, "reactivation", done, func(i int) bool {
		return e.c.probe(i, tokens[i]).Status == http.StatusBadRequest // accepted again, then refused for want of a name
	})
}

// quotaRace caps an organization's documents through the operator API,
// then writers on all three instances race for its last free slots: exactly
// the free ones are created, the others get 403 quota-exceeded, and every
// instance reports the count the collection holds.
func (e *env) quotaRace(t *testing.T) {
	const quota, pre, writers = 25, 5, 60
	o, ok := e.createOne(2, "Quota Race", "quota@cluster.test")
	require.True(t, ok)
	time.Sleep(bound())
	token := e.tokenOn(t, 0, o)
	for i := range pre {
		r := e.c.call(i%instances, apiclient.CreateDocument(token, fmt.Appendf(nil, `{"id":"pre-%d"}`, i)))
		require.Equal(t, http.StatusCreated, r.Status, "%s", r)
	}
	q := int64(quota)
	r := e.c.call(1, apiclient.OperatorPatch(operatorKey, o.id, apiclient.OperatorChange{Quotas: map[string]*int64{"documents": &q}}))
	require.Equal(t, http.StatusOK, r.Status, "%s", r)
	e.m.update(o.id, func(m *orgModel) { m.committed["org.quotas_changed"]++ })
	time.Sleep(bound()) // every instance applies the quota

	var mu sync.Mutex
	statuses := map[int]int{}
	var tasks []func()
	for w := range writers {
		tasks = append(tasks, func() {
			r := e.createRetrying(w%instances, token, fmt.Sprintf("w-%d", w))
			mu.Lock()
			statuses[r.Status]++
			mu.Unlock()
			if r.Status == http.StatusForbidden {
				assert.Equal(t, "quota-exceeded", problemType(r), "%s", r)
			}
		})
	}
	parallel(12, tasks)
	assert.Equal(t, map[int]int{http.StatusCreated: quota - pre, http.StatusForbidden: writers - quota + pre}, statuses,
		"exactly the free slots are taken, across the instances")
	n, err := e.db.Collection("org_quota_race").CountDocuments(context.Background(), bson.D{})
	require.NoError(t, err)
	assert.Equal(t, int64(quota), n, "never past the quota")
	for i := range instances {
		var u apiclient.Usage
		r := e.c.call(i, apiclient.ReadUsage(token))
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		require.NoError(t, r.JSON(&u))
		assert.Equal(t, apiclient.UsedLimit{Used: quota, Limit: quota}, u.Documents, "usage on instance %d", i)
	}
}

// createRetrying creates document id as a client would: a 503 (the
// loaded database did not answer in time) is sent again, and a 409 after
// one means the first attempt landed.
func (e *env) createRetrying(inst int, token, id string) answer {
	retried := false
	for range 10 {
		r := e.c.call(inst, apiclient.CreateDocument(token, fmt.Appendf(nil, `{"id":%q}`, id)))
		switch {
		case r.Status == http.StatusServiceUnavailable:
			retried = true
			time.Sleep(200 * time.Millisecond)
			continue
		case r.Status == http.StatusConflict && retried:
			r.Status = http.StatusCreated
		}
		return r
	}
	return answer{Status: http.StatusServiceUnavailable}
}

// tokenOn logs o's admin in on instance i.
func (e *env) tokenOn(t *testing.T, i int, o orgModel) string {
	t.Helper()
	l := e.c.login(i, o.email, o.password)
	require.Equal(t, http.StatusOK, l.Status, "login on instance %d: %s", i, l)
	return accessToken(l)
}

// within checks that every instance meets ok within the staleness bound
// after since, polling each.
func (e *env) within(t *testing.T, what string, since time.Time, ok func(i int) bool) {
	var wg sync.WaitGroup
	for i := range instances {
		wg.Go(func() {
			for {
				if ok(i) {
					t.Logf("%s: instance %d after %s", what, i, time.Since(since).Round(time.Millisecond))
					return
				}
				if time.Since(since) > bound() {
					t.Errorf("%s: instance %d not after %s (staleness %s + margin %s)", what, i, bound(), *staleness, *margin)
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	wg.Wait()
}

// problemType is the last segment of a problem answer's type.
func problemType(a answer) string {
	var p struct {
		Type string `json:"type"`
	}
	_ = a.JSON(&p)
	const base = "https://orgservice.dev/problems/"
	if len(p.Type) > len(base) {
		return p.Type[len(base):]
	}
	return p.Type
}

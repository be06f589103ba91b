package httpapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orgservice/orgservice/internal/org"
)

// nextLink returns the target of a Link rel="next" header, or "".
func nextLink(t testing.TB, r resp) string {
	t.Helper()
	m := regexp.MustCompile(`^<([^>]+)>; rel="next"$`).FindStringSubmatch(r.Header.Get("Link"))
	if m == nil {
		return ""
	}
	return m[1]
}

func TestDocumentsListPagesAndFilters(t *testing.T) {
	e := newEnv(t, org.Config{})
	a := e.tenant("Acme")
	for i := range 7 {
		e.post(a, fmt.Sprintf(`{"id":"d%d","n":%d,"s":"%d","even":%t,"f":%d.5}`, i, i, i, i%2 == 0, i))
	}
	e.post(a, `{"id":"z-null","n":null}`)
	e.post(a, `{"id":"z-obj","o":{"k":1}}`)

	// Pages of 3 in id order; next and Link agree; the last page says null.
	var all []string
	target := docsURL + "?limit=3"
	for pages := 0; target != ""; pages++ {
		require.Less(t, pages, 5)
		r := e.call(http.MethodGet, target, "", a.token, "")
		ids := itemIDs(t, r)
		all = append(all, ids...)
		next := r.JSON(t)["next"]
		target = nextLink(t, r)
		if next == nil {
			assert.Empty(t, target)
			assert.Empty(t, r.Header.Get("Link"))
		} else {
			assert.Len(t, ids, 3)
			u, err := url.Parse(target)
			require.NoError(t, err)
			assert.Equal(t, next, u.Query().Get("after"))
			assert.Equal(t, "3", u.Query().Get("limit"))
		}
	}
	assert.Equal(t, []string{"d0", "d1", "d2", "d3", "d4", "d5", "d6", "z-null", "z-obj"}, all)
	assert.Len(t, itemIDs(t, e.call(http.MethodGet, docsURL, "", a.token, "")), 9, "default limit 100")

	// Filters: VALUE is JSON when it parses, else text; several must all hold.
	filters := []struct {
		query string
		want  []string
	}{
		{"filter[n]=3", []string{"d3"}},
		{"filter[n]=3.0", []string{"d3"}},
		{`filter[s]="3"`, []string{"d3"}},
		{"filter[s]=3", nil}, // the number 3, and s holds strings
		{"filter[even]=true&filter[n]=4", []string{"d4"}},
		{"filter[even]=false&filter[n]=4", nil},
		{"filter[f]=2.5", []string{"d2"}},
		{"filter[n]=null", []string{"z-null", "z-obj"}}, // null matches a missing field too
		{"filter[missing]=x", nil},
		{"filter[s]=" + url.QueryEscape(`{"$gt":1`), nil}, // not JSON: compared as text
	}
	for _, f := range filters {
		r := e.call(http.MethodGet, docsURL+"?"+f.query, "", a.token, "")
		assert.Equal(t, f.want, itemIDs(t, r), f.query)
	}
	// A filtered page's Link keeps the filter.
	r := e.call(http.MethodGet, docsURL+"?limit=2&filter[even]=true", "", a.token, "")
	assert.Equal(t, []string{"d0", "d2"}, itemIDs(t, r))
	r = e.call(http.MethodGet, nextLink(t, r), "", a.token, "")
	assert.Equal(t, []string{"d4", "d6"}, itemIDs(t, r))

	// Operator injection and malformed queries are 400s, never a query.
	for _, q := range []string{
		"filter[$gt]=1", "filter[$where]=sleep(100)", "filter[a.b]=1", "filter[]=1",
		"filter[n]=" + url.QueryEscape(`{"$gt":1}`), "filter[n]=" + url.QueryEscape(`{"$ne":null}`), "filter[n]=[1,2]",
		"limit=0", "limit=1001", "limit=abc", "limit=1&limit=2", "after=!!", "after=" + url.QueryEscape("a b"),
		"sort=n", "filter=1", "filter[n]=1&filter[n]=2",
	} {
		r := e.call(http.MethodGet, docsURL+"?"+q, "", a.token, "")
		assertProblem(t, r, http.StatusBadRequest)
	}
}

// Paging goes on from the last id seen: documents inserted while a client
// pages never make it see a document twice or miss one that was there.
// The writers insert a bounded number of documents: on FerretDB a page
// costs more as the collection grows while an insert does not, so
// unbounded writers can keep ahead of the reader for ever.
func TestDocumentsPagingStableUnderConcurrentInserts(t *testing.T) {
	e := newEnv(t, org.Config{})
	a := e.tenant("Acme")
	var before []string
	for i := range 40 {
		id := fmt.Sprintf("k%03d", i*5)
		before = append(before, id)
		e.post(a, `{"id":"`+id+`"}`)
	}
	stop := make(chan struct{})
	var inserted atomic.Int64
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				select {
				case <-stop:
					return
				default:
				}
				// Ids between, before and after the ones being paged.
				id := fmt.Sprintf("k%03d-%d-%d", (i*7+w*13)%200, w, i)
				r := e.call(http.MethodPost, docsURL, `{"id":"`+id+`"}`, a.token, "")
				if r.Status == http.StatusCreated {
					inserted.Add(1)
				}
			}
		}()
	}
	var seen []string
	target := docsURL + "?limit=4"
	for pages := 0; target != ""; pages++ {
		require.Less(t, pages, (40+3*50)/4+2, "every page has 4 documents, but the last")
		r := e.call(http.MethodGet, target, "", a.token, "")
		seen = append(seen, itemIDs(t, r)...)
		target = nextLink(t, r)
	}
	close(stop)
	wg.Wait()
	require.Positive(t, inserted.Load(), "inserts ran while paging")

	assert.True(t, sort.StringsAreSorted(seen), "ids in order")
	count := map[string]int{}
	for _, id := range seen {
		count[id]++
	}
	for id, n := range count {
		assert.Equal(t, 1, n, "%s listed %d times", id, n)
	}
	for _, id := range before {
		assert.Equal(t, 1, count[id], "%s, present throughout, listed once", id)
	}
}

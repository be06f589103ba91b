package httpapi_test

import (
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orgservice/orgservice/internal/org"
)

// concurrently runs fn(i) for i in [0, n) at once and waits for them.
func concurrently(n int, fn func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn(i)
		}()
	}
	close(start)
	wg.Wait()
}

// N simultaneous PUTs with the same If-Match: exactly one 200, N-1 412s —
// on the embedded database too, where a guarded update is not atomic.
func TestDocumentsIfMatchRace(t *testing.T) {
	e := newEnv(t, org.Config{})
	a := e.tenant("Acme")
	for round := range 3 {
		id := fmt.Sprintf("race-%d", round)
		e.post(a, `{"id":"`+id+`","n":0}`)
		const n = 12
		status := make([]int, n)
		concurrently(n, func(i int) {
			r := e.call(http.MethodPut, docsURL+"/"+id, fmt.Sprintf(`{"n":%d}`, i+1), a.token, "", "If-Match", `"1"`)
			status[i] = r.Status
		})
		winner := -1
		for i, s := range status {
			switch s {
			case http.StatusOK:
				require.Equal(t, -1, winner, "two writers won: %v", status)
				winner = i
			case http.StatusPreconditionFailed:
			default:
				t.Fatalf("unexpected status %d: %v", s, status)
			}
		}
		require.NotEqual(t, -1, winner, "one writer wins: %v", status)
		st := e.stored(a.coll)[id]
		assert.Equal(t, int32(2), st["version"], "one write, one version")
		assert.Equal(t, int32(winner+1), dataOf(st)["n"], "the winner's data is stored")
	}
}

// Without If-Match the last writer wins, but no write is lost or shares a
// version with another: N concurrent patches each adding a key leave every
// key, at version N+1.
func TestDocumentsConcurrentWritesWithoutIfMatch(t *testing.T) {
	e := newEnv(t, org.Config{})
	a := e.tenant("Acme")
	e.post(a, `{"id":"counter"}`)
	const n = 10
	versions := make([]float64, n)
	concurrently(n, func(i int) {
		r := e.call(http.MethodPatch, docsURL+"/counter", fmt.Sprintf(`{"k%d":true}`, i), a.token, "application/merge-patch+json")
		if assert.Equal(t, http.StatusOK, r.Status, "%s", r.Body) {
			versions[i] = r.JSON(t)["version"].(float64)
		}
	})
	sort.Float64s(versions)
	for i, v := range versions {
		assert.EqualValues(t, i+2, v, "versions %v: each write its own", versions)
	}
	st := e.stored(a.coll)["counter"]
	assert.Equal(t, int32(n+1), st["version"])
	assert.Len(t, dataOf(st), n, "no patch lost")
}

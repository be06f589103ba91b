package httpapi_test

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orgservice/orgservice/internal/org"
)

var strategies = []org.Strategy{org.StrategyRename, org.StrategyCopy}

// exportLines returns an organization's export, one line each, sorted.
func (e *env) exportLines(token string) []string {
	e.t.Helper()
	r := e.call(http.MethodGet, exportURL, "", token, "")
	require.Equal(e.t, http.StatusOK, r.Status, "%s", r.Body)
	assert.Equal(e.t, "application/x-ndjson", r.Header.Get("Content-Type"))
	lines := strings.Split(strings.TrimSuffix(string(r.Body), "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return nil
	}
	sort.Strings(lines)
	return lines
}

// writeSome writes n documents through the API, changing some of them
// afterwards so that versions differ, and returns the export.
func (e *env) writeSome(tn tenant, n int) []string {
	e.t.Helper()
	for i := range n {
		e.post(tn, fmt.Sprintf(`{"id":"doc-%03d","i":%d,"nested":{"x":[%d,"y"]}}`, i, i, i))
	}
	for i := 0; i < n; i += 3 {
		r := e.call(http.MethodPut, fmt.Sprintf("%s/doc-%03d", docsURL, i), fmt.Sprintf(`{"i":%d,"replaced":true}`, i), tn.token, "")
		require.Equal(e.t, http.StatusOK, r.Status, "%s", r.Body)
	}
	for i := 1; i < n; i += 4 {
		r := e.call(http.MethodPatch, fmt.Sprintf("%s/doc-%03d", docsURL, i), `{"patched":1}`, tn.token, "application/merge-patch+json")
		require.Equal(e.t, http.StatusOK, r.Status, "%s", r.Body)
	}
	return e.exportLines(tn.token)
}

// readsAll checks that every document of want (export lines) reads back
// through GET, list and export exactly as it was.
func (e *env) readsAll(tn tenant, want []string) {
	e.t.Helper()
	assert.Equal(e.t, want, e.exportLines(tn.token), "export")
	r := e.call(http.MethodGet, docsURL+"?limit=1000", "", tn.token, "")
	assert.Len(e.t, itemIDs(e.t, r), len(want), "list")
	for _, line := range want {
		id := line[len(`{"id":"`):strings.Index(line, `","data"`)]
		r := e.call(http.MethodGet, docsURL+"/"+id, "", tn.token, "")
		if assert.Equal(e.t, http.StatusOK, r.Status, "GET %s: %s", id, r.Body) {
			assert.Equal(e.t, line, strings.TrimSuffix(string(r.Body), "\n"))
		}
	}
}

// Documents written through the API move with a rename and read back
// under the new name, by both strategies; the old name starts empty.
func TestDocumentsMoveWithRename(t *testing.T) {
	for _, strategy := range strategies {
		t.Run(string(strategy), func(t *testing.T) {
			e := newEnv(t, org.Config{Strategy: strategy})
			a := e.tenant("Acme")
			before := e.writeSome(a, 25)
			require.Len(t, before, 25)

			r := e.call(http.MethodPut, updateURL, `{"organization_name":"Globex"}`, a.token, "")
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			assert.Equal(t, []string{"org_globex"}, e.collections())
			e.readsAll(a, before)
			assert.Len(t, e.stored("org_globex"), 25)

			other := e.tenant("Acme")
			assert.Empty(t, e.exportLines(other.token), "the old name starts empty")
		})
	}
}

// While a rename is pending (stopped after its intent, or after its move),
// writes answer 409 operation-in-progress with Retry-After and change
// nothing, and reads return the same documents; once the rename is
// finished, everything reads back under the new name and writes go on.
func TestDocumentsDuringAnInterruptedRename(t *testing.T) {
	for _, strategy := range strategies {
		for _, step := range []string{"rename:intent", "rename:moved"} {
			t.Run(string(strategy)+"/"+step, func(t *testing.T) {
				var crashAt atomic.Value
				crashAt.Store(step)
				e := newEnv(t, org.Config{Strategy: strategy, LeaseTTL: 2 * time.Second, AfterStep: func(s string) error {
					if crashAt.CompareAndSwap(s, "") {
						return errors.New("injected crash")
					}
					return nil
				}})
				a := e.tenant("Acme")
				before := e.writeSome(a, 12)

				r := e.call(http.MethodPut, updateURL, `{"organization_name":"Globex"}`, a.token, "")
				require.Equal(t, http.StatusInternalServerError, r.Status, "the rename stopped: %s", r.Body)

				for _, c := range []struct{ method, target, body, ct string }{
					{http.MethodPost, docsURL, `{"id":"new"}`, ""},
					{http.MethodPut, docsURL + "/doc-001", `{"x":1}`, ""},
					{http.MethodPatch, docsURL + "/doc-001", `{"x":1}`, "application/merge-patch+json"},
					{http.MethodDelete, docsURL + "/doc-002", "", ""},
					{http.MethodPost, importURL, `{"id":"imp","data":{}}`, "application/x-ndjson"},
				} {
					r := e.call(c.method, c.target, c.body, a.token, c.ct)
					p := assertProblem(t, r, http.StatusConflict)
					assert.Equal(t, "https://orgservice.dev/problems/operation-in-progress", p["type"])
					assert.NotEmpty(t, r.Header.Get("Retry-After"))
				}
				e.readsAll(a, before)

				// The lease expires, and the next request that touches the
				// organization nudges the rename to its end.
				waitFor(t, 15*time.Second, func() bool {
					e.call(http.MethodGet, docsURL, "", a.token, "")
					r := e.call(http.MethodGet, getURL+"?organization_name=globex", "", "", "")
					return r.Status == http.StatusOK
				}, "the rename finishes")
				waitFor(t, 5*time.Second, func() bool {
					return e.call(http.MethodPost, docsURL, `{"id":"after"}`, a.token, "").Status == http.StatusCreated
				}, "writes go on")
				assert.Equal(t, []string{"org_globex"}, e.collections())
				r = e.call(http.MethodDelete, docsURL+"/after", "", a.token, "")
				require.Equal(t, http.StatusNoContent, r.Status)
				e.readsAll(a, before)
			})
		}
	}
}

// writers posts documents from several goroutines until stop is closed,
// and returns the ids answered 201. Any answer but 201 or a 409
// operation-in-progress fails the test.
func (e *env) writers(tn tenant, n int, stop <-chan struct{}, allowed ...int) func() []string {
	var mu sync.Mutex
	var created []string
	var wg sync.WaitGroup
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("w%d-%04d", w, i)
				r := e.call(http.MethodPost, docsURL, `{"id":"`+id+`","w":`+fmt.Sprint(w)+`}`, tn.token, "")
				switch {
				case r.Status == http.StatusCreated:
					mu.Lock()
					created = append(created, id)
					mu.Unlock()
				case r.Status == http.StatusConflict && r.Header.Get("Retry-After") != "":
					time.Sleep(5 * time.Millisecond)
				case containsInt(allowed, r.Status):
					time.Sleep(5 * time.Millisecond)
				default:
					e.t.Errorf("write %s: %d %s", id, r.Status, r.Body)
					return
				}
			}
		}()
	}
	return func() []string {
		wg.Wait()
		sort.Strings(created)
		return created
	}
}

func containsInt(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// Documents written while a rename runs are never lost: every write that
// got its 201 reads back under the new name, and no collection is left
// behind under the old one.
func TestDocumentsWrittenDuringARenameSurvive(t *testing.T) {
	for _, strategy := range strategies {
		t.Run(string(strategy), func(t *testing.T) {
			e := newEnv(t, org.Config{Strategy: strategy})
			a := e.tenant("Acme")
			stop := make(chan struct{})
			wait := e.writers(a, 4, stop)
			time.Sleep(150 * time.Millisecond)
			r := e.call(http.MethodPut, updateURL, `{"organization_name":"Globex"}`, a.token, "")
			require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
			time.Sleep(300 * time.Millisecond)
			close(stop)
			created := wait()
			require.NotEmpty(t, created)

			assert.Equal(t, []string{"org_globex"}, e.collections(), "no collection left under the old name")
			stored := e.stored("org_globex")
			for _, id := range created {
				assert.Contains(t, stored, id, "%s was answered 201", id)
			}
			assert.Len(t, stored, len(created), "and nothing else")
			assert.Len(t, e.exportLines(a.token), len(created))
		})
	}
}

// Writes racing a delete never re-create the dropped collection; after it,
// the token is refused.
func TestDocumentsWrittenDuringADelete(t *testing.T) {
	e := newEnv(t, org.Config{})
	a := e.tenant("Acme")
	stop := make(chan struct{})
	wait := e.writers(a, 4, stop, http.StatusUnauthorized)
	time.Sleep(150 * time.Millisecond)
	r := e.call(http.MethodDelete, deleteURL+"?organization_name=Acme", "", a.token, "")
	require.Equal(t, http.StatusNoContent, r.Status, "%s", r.Body)
	time.Sleep(200 * time.Millisecond)
	close(stop)
	require.NotEmpty(t, wait())
	assert.Empty(t, e.collections(), "no write re-created the collection")
	assertProblem(t, e.call(http.MethodPost, docsURL, `{"id":"late"}`, a.token, ""), http.StatusUnauthorized)
	assert.Empty(t, e.collections())
}

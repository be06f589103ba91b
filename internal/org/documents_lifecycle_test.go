package org_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orgservice/orgservice/internal/document"
	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/org"
)

// seen waits until svc's directory has the organization id that another
// service created: other processes' writes show within the directory's bound.
func seen(t *testing.T, svc *org.Service, id string) {
	t.Helper()
	require.Eventually(t, func() bool { _, err := svc.ByID(context.Background(), id); return err == nil },
		10*time.Second, 10*time.Millisecond, "organization %s never reached the other service's directory", id)
}

// all reads every document of p through the documents service, three ways
// (export, list, get by id), and fails unless they agree; it returns the
// documents encoded as the API shows them, sorted.
func all(t *testing.T, docs *document.Service, p org.Principal) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	require.NoError(t, docs.Export(ctx, p, func(d *document.Document) error {
		out = append(out, string(d.AppendJSON(nil)))
		return nil
	}))
	sort.Strings(out)
	page, err := docs.List(ctx, p, document.Query{Limit: document.MaxLimit})
	require.NoError(t, err)
	require.Len(t, page.Items, len(out), "list")
	for i, d := range page.Items {
		assert.Equal(t, out[i], string(d.AppendJSON(nil)), "list item %d", i)
		got, err := docs.Get(ctx, p, d.ID)
		require.NoError(t, err, "get %s", d.ID)
		assert.Equal(t, out[i], string(got.AppendJSON(nil)))
	}
	return out
}

// Documents written through the documents service before a rename survive
// the rename stopped after any of its steps, are readable while it is
// pending, and read back exactly under the new name once a fresh service
// has reconciled — by both strategies.
func TestDocumentsSurviveRenameCrashAtEveryStep(t *testing.T) {
	for _, strategy := range []org.Strategy{org.StrategyRename, org.StrategyCopy} {
		forEachCrashPoint(t, "documents-"+string(strategy), func(t *testing.T, k int) bool {
			ctx := context.Background()
			f := newFixture(t, 4) // several copy batches
			proc, reached := f.crashingProcess(k, strategy)
			svc, docs := proc.Orgs(), proc.Documents()
			o, err := f.service(org.Config{}).Create(ctx, createInput("Acme Corp", "admin@acme.com"))
			require.NoError(t, err)
			seen(t, svc, o.ID)
			p := principal(o)
			for i := range 12 {
				data, err := document.ParseObject([]byte(fmt.Sprintf(`{"id":"doc-%02d","i":%d,"x":{"y":[%d.5]}}`, i, i, i)))
				require.NoError(t, err)
				_, err = docs.Create(ctx, p, data)
				require.NoError(t, err)
			}
			for i := 0; i < 12; i += 5 {
				data, _ := document.ParseObject([]byte(`{"replaced":true}`))
				_, err := docs.Replace(ctx, p, fmt.Sprintf("doc-%02d", i), data, document.MatchVersions(1))
				require.NoError(t, err)
			}
			want := all(t, docs, p)
			require.Len(t, want, 12)

			_, err = svc.Update(ctx, p, org.UpdateInput{Name: strp("Globex Inc")})
			if !reached() {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, errCrash)
				assert.Equal(t, want, all(t, docs, p), "reads go on while the rename is pending")
				// A write is refused while the rename is pending; the reads
				// above may have nudged it to its end already, and then it
				// goes through.
				data, _ := document.ParseObject([]byte(`{"id":"during"}`))
				if _, err := docs.Create(ctx, p, data); err == nil {
					require.NoError(t, docs.Delete(ctx, p, "during", document.Match{}))
				} else {
					assert.True(t, errs.Is(err, errs.Busy), "a write during the rename is refused: %v", err)
				}
			}

			// The next process: its own services, after the crashed one is
			// gone and its lease expired (and after any settling the reads
			// above nudged on).
			f.stopAll()
			time.Sleep(crashLease + 50*time.Millisecond)
			nextProc := f.process(org.Config{Strategy: strategy, ClaimGrace: time.Millisecond})
			next, nextDocs := nextProc.Orgs(), nextProc.Documents()
			require.NoError(t, next.Reconcile(ctx))
			orgs := f.settledInvariants()
			require.Len(t, orgs, 1)
			assert.Equal(t, want, all(t, nextDocs, p), "every document, as it was, under the name the organization holds")
			n, err := f.stores.Tenants.Count(ctx, orgs[0].CollectionName)
			require.NoError(t, err)
			assert.EqualValues(t, 12, n, "each document once, in the one collection")
			return reached()
		})
	}
}

// A rename in one process waits for the document writes of another, which
// it knows only by their registrations in the database: every write the
// other process confirmed is in the renamed collection, and nothing is
// left under the old name.
func TestRenameWaitsForAnotherProcessesDocumentWrites(t *testing.T) {
	for _, strategy := range []org.Strategy{org.StrategyRename, org.StrategyCopy} {
		t.Run(string(strategy), func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t, 0)
			procA := f.process(org.Config{Strategy: strategy})
			svcA, docsA := procA.Orgs(), procA.Documents()
			procB := f.process(org.Config{Strategy: strategy}) // the other process
			svcB, docsB := procB.Orgs(), procB.Documents()
			o, err := svcA.Create(ctx, createInput("Acme Corp", "admin@acme.com"))
			require.NoError(t, err)
			seen(t, svcB, o.ID)
			p := principal(o)

			stop := make(chan struct{})
			var mu sync.Mutex
			var confirmed []string
			var wg sync.WaitGroup
			for w := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						id := fmt.Sprintf("w%d-%05d", w, i)
						data, _ := document.ParseObject([]byte(`{"id":"` + id + `"}`))
						_, err := docsB.Create(ctx, p, data)
						switch {
						case err == nil:
							mu.Lock()
							confirmed = append(confirmed, id)
							mu.Unlock()
						case errs.Is(err, errs.Busy):
							time.Sleep(5 * time.Millisecond)
						default:
							t.Errorf("write %s: %v", id, err)
							return
						}
					}
				}()
			}
			time.Sleep(150 * time.Millisecond)
			_, err = svcA.Update(ctx, p, org.UpdateInput{Name: strp("Globex Inc")})
			require.NoError(t, err)
			time.Sleep(200 * time.Millisecond)
			close(stop)
			wg.Wait()
			require.NotEmpty(t, confirmed)

			assert.Equal(t, []string{"org_globex_inc"}, f.tenants())
			for _, id := range confirmed {
				_, err := docsA.Get(ctx, p, id)
				assert.NoError(t, err, "%s was confirmed", id)
			}
			n, err := f.stores.Tenants.Count(ctx, "org_globex_inc")
			require.NoError(t, err)
			assert.EqualValues(t, len(confirmed), n)
		})
	}
}

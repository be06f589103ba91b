package org_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orgservice/orgservice/internal/document"
	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/org"
)

// A recount stopped after any of its steps is finished by a fresh service:
// the count is what the collection holds, the intent is gone, and writes
// go on; while it is pending, writes are refused and reads go on.
func TestRecountSurvivesCrashAtEveryStep(t *testing.T) {
	forEachCrashPoint(t, "recount", func(t *testing.T, k int) bool {
		ctx := context.Background()
		f := newFixture(t, 0)
		o, err := f.service(org.Config{}).Create(ctx, createInput("Acme Corp", "admin@acme.com"))
		require.NoError(t, err)
		proc, reached := f.crashingProcess(k, org.StrategyAuto)
		svc, docs := proc.Orgs(), proc.Documents()
		seen(t, svc, o.ID)
		p := principal(o)
		var truth org.Usage
		for i := range 7 {
			data, err := document.ParseObject(fmt.Appendf(nil, `{"id":"doc-%d","i":%d}`, i, i))
			require.NoError(t, err)
			d, err := docs.Create(ctx, p, data)
			require.NoError(t, err)
			truth.Documents++
			truth.StorageBytes += document.StoredSize(d)
		}
		// What a process that died mid-write leaves: a count too high.
		head, err := f.stores.Usage.Head(ctx, o.ID)
		require.NoError(t, err)
		assert.Equal(t, truth, head.Used, "the writes counted exactly")
		head.N++
		head.Used.Documents += 3
		require.NoError(t, f.stores.Usage.Append(ctx, head))

		_, err = org.NewOperator(svc).Recount(ctx, o.ID)
		if !reached() {
			require.NoError(t, err)
		} else {
			require.ErrorIs(t, err, errCrash)
			// A write waits for the recount; the crashed process's own
			// reconciler may have finished it already (its lease is short),
			// and then the write goes through and counts.
			data, _ := document.ParseObject([]byte(`{"id":"during"}`))
			d, err := docs.Create(ctx, p, data)
			if err == nil {
				truth.Documents++
				truth.StorageBytes += document.StoredSize(d)
			} else {
				assert.True(t, errs.Is(err, errs.Busy), "crashed after %s: %v", f.crashed, err)
			}
			_, err = docs.Get(ctx, p, "doc-0")
			require.NoError(t, err, "reads go on")
			f.recover(org.StrategyAuto)
		}
		f.settledInvariants()
		u, err := f.stores.Usage.Head(ctx, o.ID)
		require.NoError(t, err)
		assert.Equal(t, truth, u.Used, "the count is the collection's")
		return reached()
	})
}

package usage_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgservice/orgservice/internal/dbtest"
	"github.com/orgservice/orgservice/internal/document"
	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/mongostore"
	"github.com/orgservice/orgservice/internal/org"
	"github.com/orgservice/orgservice/internal/usage"
)

const orgID = "665f1c2e8b3a4d0012ab34cd"

// newLedgers returns n ledgers over one fresh database: n processes sharing it.
func newLedgers(t *testing.T, n int) ([]*usage.Ledger, *mongostore.Stores) {
	t.Helper()
	stores := mongostore.Open(dbtest.New(t), 0)
	var ls []*usage.Ledger
	for range n {
		ls = append(ls, usage.New(stores.Usage, stores.Writers, usage.Config{}, nil))
	}
	return ls, stores
}

func mustCurrent(t *testing.T, l *usage.Ledger, id string) org.Usage {
	t.Helper()
	u, err := l.Current(context.Background(), id)
	require.NoError(t, err)
	return u
}

// TestLastSlotRaced: many writers on two processes race for the last free
// documents of a quota; exactly the quota's worth get through, and the
// count says so. Without the chain's unique numbers (two writers both
// extending entry n), more would.
func TestLastSlotRaced(t *testing.T) {
	ls, _ := newLedgers(t, 2)
	ctx := context.Background()
	require.NoError(t, ls[0].Init(ctx, orgID))
	q := org.Quotas{Documents: 30, StorageBytes: 1 << 30, Members: 10}
	// Most of the quota is used already: the race is for the last slots.
	_, err := ls[0].Reserve(ctx, orgID, q, []org.Usage{{Documents: 20, StorageBytes: 2000}}, false)
	require.NoError(t, err)

	var got, refused atomic.Int64
	var wg sync.WaitGroup
	for w := range 40 {
		wg.Go(func() {
			n, err := ls[w%2].Reserve(ctx, orgID, q, []org.Usage{{Documents: 1, StorageBytes: 100}}, false)
			switch {
			case err == nil && n == 1:
				got.Add(1)
			case errs.Is(err, errs.QuotaExceeded):
				refused.Add(1)
			default:
				t.Errorf("reserve: %d, %v", n, err)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(10), got.Load(), "exactly the free slots are taken")
	assert.Equal(t, int64(30), refused.Load())
	assert.Equal(t, org.Usage{Documents: 30, StorageBytes: 3000}, mustCurrent(t, ls[1], orgID))
}

// TestQuotaErrorNamesTheQuota: a refusal names the quota, its limit and the usage.
func TestQuotaErrorNamesTheQuota(t *testing.T) {
	ls, _ := newLedgers(t, 1)
	ctx := context.Background()
	require.NoError(t, ls[0].Init(ctx, orgID))
	q := org.Quotas{Documents: 100, StorageBytes: 1000, Members: 10}
	_, err := ls[0].Reserve(ctx, orgID, q, []org.Usage{{Documents: 1, StorageBytes: 900}}, false)
	require.NoError(t, err)
	_, err = ls[0].Reserve(ctx, orgID, q, []org.Usage{{Documents: 1, StorageBytes: 200}}, false)
	var e *errs.Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, errs.QuotaExceeded, e.Kind)
	assert.Equal(t, &errs.Quota{Name: org.QuotaStorageBytes, Limit: 1000, Used: 900}, e.Quota)
	// Shrinking is never refused, even over a quota lowered below the usage.
	_, err = ls[0].Reserve(ctx, orgID, org.Quotas{}, []org.Usage{{StorageBytes: -100}}, false)
	require.NoError(t, err)
}

// TestPrefixReservation: an import's batch takes the longest prefix that
// fits; the rest is refused with the quota's error.
func TestPrefixReservation(t *testing.T) {
	ls, _ := newLedgers(t, 1)
	ctx := context.Background()
	require.NoError(t, ls[0].Init(ctx, orgID))
	q := org.Quotas{Documents: 3, StorageBytes: 1 << 20}
	batch := []org.Usage{{Documents: 1, StorageBytes: 10}, {Documents: 1, StorageBytes: 10}, {Documents: 1, StorageBytes: 10}, {Documents: 1, StorageBytes: 10}, {Documents: 1, StorageBytes: 10}}
	n, err := ls[0].Reserve(ctx, orgID, q, batch, true)
	assert.Equal(t, 3, n)
	assert.True(t, errs.Is(err, errs.QuotaExceeded))
	n, err = ls[0].Reserve(ctx, orgID, q, batch[:1], false)
	assert.Equal(t, 0, n)
	assert.True(t, errs.Is(err, errs.QuotaExceeded))
	assert.Equal(t, org.Usage{Documents: 3, StorageBytes: 30}, mustCurrent(t, ls[0], orgID))
}

// TestCreditsAndRebase: credits apply unchecked, never below zero; a
// rebase sets the count whatever it was; other processes' cached heads
// follow.
func TestCreditsAndRebase(t *testing.T) {
	ls, _ := newLedgers(t, 2)
	ctx := context.Background()
	require.NoError(t, ls[0].Init(ctx, orgID))
	q := org.DefaultQuotas()
	_, err := ls[0].Reserve(ctx, orgID, q, []org.Usage{{Documents: 5, StorageBytes: 500}}, false)
	require.NoError(t, err)
	require.NoError(t, ls[1].Credit(ctx, orgID, org.Usage{Documents: -2, StorageBytes: -200}))
	assert.Equal(t, org.Usage{Documents: 3, StorageBytes: 300}, mustCurrent(t, ls[0], orgID))
	require.NoError(t, ls[1].Rebase(ctx, orgID, org.Usage{Documents: 7, StorageBytes: 700}))
	// ls[0] still holds entry 2 as its head: its next insert loses the
	// number, and it reads the rebase before it counts on.
	_, err = ls[0].Reserve(ctx, orgID, q, []org.Usage{{Documents: 1, StorageBytes: 1}}, false)
	require.NoError(t, err)
	assert.Equal(t, org.Usage{Documents: 8, StorageBytes: 701}, mustCurrent(t, ls[1], orgID))
	require.NoError(t, ls[0].Credit(ctx, orgID, org.Usage{Documents: -100, StorageBytes: -100000}))
	assert.Equal(t, org.Usage{}, mustCurrent(t, ls[0], orgID))
}

// TestNotCountedRefuses: an organization with no count (from before
// quotas) takes no reservation until a rebase counts it.
func TestNotCountedRefuses(t *testing.T) {
	ls, _ := newLedgers(t, 1)
	ctx := context.Background()
	_, err := ls[0].Reserve(ctx, orgID, org.DefaultQuotas(), []org.Usage{{Documents: 1, StorageBytes: 1}}, false)
	assert.True(t, errs.Is(err, errs.Busy), "%v", err)
	_, err = ls[0].Current(ctx, orgID)
	assert.True(t, errs.Is(err, errs.NotFound))
	all, err := ls[0].All(ctx)
	require.NoError(t, err)
	assert.NotContains(t, all, orgID)
	require.NoError(t, ls[0].Rebase(ctx, orgID, org.Usage{Documents: 4, StorageBytes: 40}))
	_, err = ls[0].Reserve(ctx, orgID, org.DefaultQuotas(), []org.Usage{{Documents: 1, StorageBytes: 1}}, false)
	require.NoError(t, err)
	all, err = ls[0].All(ctx)
	require.NoError(t, err)
	assert.Equal(t, org.Usage{Documents: 5, StorageBytes: 41}, all[orgID])
}

// TestDrift: a mark and a dead writer registration list the organization
// for a recount; Recounted clears only what came before the recount.
func TestDrift(t *testing.T) {
	ls, stores := newLedgers(t, 1)
	ctx := context.Background()
	l := ls[0]
	other := "665f1c2e8b3a4d0012ab34ce"
	l.Suspect(ctx, orgID)
	now := time.Now()
	require.NoError(t, stores.Writers.Register(ctx, document.Registration{
		Key: other + "/dead/1", OrgID: other, RegisteredAt: now.Add(-time.Minute), ExpiresAt: now.Add(-30 * time.Second),
	}))
	require.NoError(t, stores.Writers.Register(ctx, document.Registration{
		Key: other + "/live/1", OrgID: other, RegisteredAt: now, ExpiresAt: now.Add(10 * time.Second),
	}))
	ids, err := l.Drifted(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{orgID, other}, ids)

	since := time.Now()
	time.Sleep(2 * time.Millisecond)
	l.Suspect(ctx, orgID) // a write that ended uncertain during the recount
	require.NoError(t, l.Recounted(ctx, orgID, since))
	require.NoError(t, l.Recounted(ctx, other, since))
	ids, err = l.Drifted(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{orgID}, ids, "the later mark stays; the dead registration is gone")
	regs, err := stores.Writers.Of(ctx, other)
	require.NoError(t, err)
	require.Len(t, regs, 1, "the live registration stays")
	assert.Equal(t, other+"/live/1", regs[0].Key)

	require.NoError(t, l.Forget(ctx, orgID))
	ids, err = l.Drifted(ctx)
	require.NoError(t, err)
	assert.Empty(t, ids)
}

// TestPruneKeepsTheHead: old entries go, the last stays, and counting goes on.
func TestPruneKeepsTheHead(t *testing.T) {
	db := dbtest.New(t)
	stores := mongostore.Open(db, 0)
	ctx := context.Background()
	l := usage.New(stores.Usage, stores.Writers, usage.Config{Retention: 40 * time.Millisecond, HeadTTL: 10 * time.Millisecond}, nil)
	require.NoError(t, l.Init(ctx, orgID))
	for range 10 {
		_, err := l.Reserve(ctx, orgID, org.DefaultQuotas(), []org.Usage{{Documents: 1, StorageBytes: 1}}, false)
		require.NoError(t, err)
		time.Sleep(15 * time.Millisecond)
	}
	require.Eventually(t, func() bool {
		n, err := db.Collection(mongostore.UsageCollection).CountDocuments(ctx, bson.D{})
		return err == nil && n < 11
	}, 5*time.Second, 20*time.Millisecond, "old entries are pruned")
	assert.Equal(t, org.Usage{Documents: 10, StorageBytes: 10}, mustCurrent(t, l, orgID))
	_, err := l.Reserve(ctx, orgID, org.DefaultQuotas(), []org.Usage{{Documents: 1, StorageBytes: 1}}, false)
	require.NoError(t, err)
	assert.Equal(t, org.Usage{Documents: 11, StorageBytes: 11}, mustCurrent(t, l, orgID))
}

// TestRefusalIsNeverStale: a process that saw the quota full asks again
// before it refuses: another process may have freed room meanwhile.
func TestRefusalIsNeverStale(t *testing.T) {
	ls, _ := newLedgers(t, 2)
	ctx := context.Background()
	require.NoError(t, ls[0].Init(ctx, orgID))
	q := org.Quotas{Documents: 2, StorageBytes: 1 << 20}
	_, err := ls[0].Reserve(ctx, orgID, q, []org.Usage{{Documents: 2, StorageBytes: 2}}, false)
	require.NoError(t, err)
	require.NoError(t, ls[1].Credit(ctx, orgID, org.Usage{Documents: -1, StorageBytes: -1}))
	n, err := ls[0].Reserve(ctx, orgID, q, []org.Usage{{Documents: 1, StorageBytes: 1}}, false)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
}

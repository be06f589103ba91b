package org_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgservice/orgservice/internal/org"
)

// countingStore counts the reads a reconcile pass makes.
type countingStore struct {
	org.Store
	claims, byID atomic.Int64
}

func (s *countingStore) Claims(ctx context.Context) ([]org.Claim, error) {
	s.claims.Add(1)
	return s.Store.Claims(ctx)
}

func (s *countingStore) OrgByID(ctx context.Context, id string) (*org.Organization, error) {
	s.byID.Add(1)
	return s.Store.OrgByID(ctx, id)
}

// A reconcile pass reads the claims once and looks up no organization for
// the claims their settled holders use: with a read of every claim per claim
// (and, on FerretDB, a scan per lookup) a pass over 10,000 organizations
// never finished and kept the database busy. Claims nobody uses are still
// released.
func TestReconcileIsLinear(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, 0)
	svc := f.service(org.Config{})
	for i := range 10 {
		_, err := svc.Create(ctx, org.CreateInput{Name: fmt.Sprintf("Linear %d", i), Email: fmt.Sprintf("admin%d@linear.test", i), Password: "s3cretpass"})
		require.NoError(t, err)
	}
	cs := &countingStore{Store: f.store}
	rec := newService(t, cs, f.store, org.Config{ClaimGrace: time.Nanosecond})
	require.NoError(t, rec.Reconcile(ctx))
	assert.EqualValues(t, 1, cs.claims.Load(), "claims read once per pass")
	assert.Zero(t, cs.byID.Load(), "no lookup for a claim its settled holder uses")

	o, err := svc.Get(ctx, "Linear 3")
	require.NoError(t, err)
	require.NoError(t, f.store.Claim(ctx, "slug/ghost", bson.NewObjectID().Hex())) // holder gone
	require.NoError(t, f.store.Claim(ctx, "email/old@linear.test", o.ID))          // holder uses another email
	time.Sleep(time.Millisecond)
	require.NoError(t, rec.Reconcile(ctx))
	claims, err := f.store.Claims(ctx)
	require.NoError(t, err)
	keys := make([]string, len(claims))
	for i, c := range claims {
		keys[i] = c.Key
	}
	assert.False(t, slices.Contains(keys, "slug/ghost"), "claim of a missing organization released")
	assert.False(t, slices.Contains(keys, "email/old@linear.test"), "claim its holder no longer uses released")
	assert.Contains(t, keys, "slug/linear_3")
	assert.Contains(t, keys, "email/admin3@linear.test")
	assert.Len(t, keys, 20)
}

package org_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgservice/orgservice/internal/auth"
	"github.com/orgservice/orgservice/internal/directory"
	"github.com/orgservice/orgservice/internal/mongostore"
	"github.com/orgservice/orgservice/internal/org"
)

// countingClaims counts the reads of every claim a reconcile pass makes.
type countingClaims struct {
	org.NameClaims
	lists atomic.Int64
}

func (s *countingClaims) List(ctx context.Context) ([]org.NameClaim, error) {
	s.lists.Add(1)
	return s.NameClaims.List(ctx)
}

// countingMetadata counts the lookups of one organization.
type countingMetadata struct {
	org.Metadata
	byID atomic.Int64
}

func (s *countingMetadata) ByID(ctx context.Context, id string) (*org.Organization, error) {
	s.byID.Add(1)
	return s.Metadata.ByID(ctx, id)
}

// storesOf returns the organization service's view of stores.
func storesOf(s *mongostore.Stores) org.Stores {
	return org.Stores{
		Metadata: s.Organizations, Names: s.Names, Leases: s.Leases,
		Changes: s.Changes, Tenants: s.Tenants, Audit: s.Audit,
	}
}

// serviceOver returns an organization service alone over stores, with a
// directory over src that is never loaded (a reconcile pass does not read
// it): for tests that count what a pass asks of its stores, which only the
// service itself can be given.
func serviceOver(t *testing.T, stores org.Stores, src *mongostore.Stores, cfg org.Config) *org.Service {
	t.Helper()
	dir := directory.New(directory.Source{Metadata: src.Organizations, Changes: src.Changes, Leases: src.Leases},
		directory.Config{}, slog.New(slog.DiscardHandler))
	s := org.NewService(org.Deps{Stores: stores, Directory: dir, Hasher: auth.Bcrypt{Cost: 4}}, cfg, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { _ = s.Wait(context.Background()) })
	return s
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
	stores := storesOf(f.stores)
	claims := &countingClaims{NameClaims: stores.Names}
	meta := &countingMetadata{Metadata: stores.Metadata}
	stores.Names, stores.Metadata = claims, meta
	rec := serviceOver(t, stores, f.stores, org.Config{ClaimGrace: time.Nanosecond})
	require.NoError(t, rec.Reconcile(ctx))
	assert.EqualValues(t, 1, claims.lists.Load(), "claims read once per pass")
	assert.Zero(t, meta.byID.Load(), "no lookup for a claim its settled holder uses")

	o, err := svc.Get(ctx, "Linear 3")
	require.NoError(t, err)
	require.NoError(t, f.stores.Names.Claim(ctx, "slug/ghost", bson.NewObjectID().Hex())) // holder gone
	require.NoError(t, f.stores.Names.Claim(ctx, "email/old@linear.test", o.ID))          // holder uses another email
	time.Sleep(time.Millisecond)
	require.NoError(t, rec.Reconcile(ctx))
	held, err := f.stores.Names.List(ctx)
	require.NoError(t, err)
	keys := make([]string, len(held))
	for i, c := range held {
		keys[i] = c.Key
	}
	assert.False(t, slices.Contains(keys, "slug/ghost"), "claim of a missing organization released")
	assert.False(t, slices.Contains(keys, "email/old@linear.test"), "claim its holder no longer uses released")
	assert.Contains(t, keys, "slug/linear_3")
	assert.Contains(t, keys, "email/admin3@linear.test")
	assert.Len(t, keys, 20)
}

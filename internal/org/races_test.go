package org_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/org"
)

// race runs fns at once and returns their errors.
func race(fns ...func() error) []error {
	failed := make([]error, len(fns))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			failed[i] = fn()
		}()
	}
	close(start)
	wg.Wait()
	return failed
}

// oneWins asserts that exactly one error is nil and every other is a 409 kind.
func oneWins(t *testing.T, failed []error) int {
	t.Helper()
	winner := -1
	for i, err := range failed {
		if err == nil {
			assert.Equal(t, -1, winner, "more than one winner")
			winner = i
			continue
		}
		k := errs.KindOf(err)
		assert.True(t, k == errs.Busy || k == errs.Conflict || k == errs.Unauthorized, "loser %d: %v", i, err)
	}
	require.NotEqual(t, -1, winner, "no winner: %v", failed)
	return winner
}

func TestRaceTwoInstancesRenameOneOrganization(t *testing.T) {
	for _, strategy := range []org.Strategy{org.StrategyRename, org.StrategyCopy} {
		t.Run(string(strategy), func(t *testing.T) {
			f := newFixture(t, 50)
			a, b := f.service(org.Config{Strategy: strategy}), f.service(org.Config{Strategy: strategy})
			o, err := a.Create(context.Background(), createInput("Acme", "admin@acme.com"))
			require.NoError(t, err)
			want := f.seed(o.CollectionName, 200)

			failed := race(
				func() error {
					_, err := a.Update(context.Background(), principal(o), org.UpdateInput{Name: strp("Alpha")})
					return err
				},
				func() error {
					_, err := b.Update(context.Background(), principal(o), org.UpdateInput{Name: strp("Beta")})
					return err
				},
			)
			for _, err := range failed {
				if err != nil {
					assert.True(t, errs.Is(err, errs.Busy), "the loser is told another operation is in progress: %v", err)
				}
			}
			orgs := f.settledInvariants()
			require.Len(t, orgs, 1)
			assert.Equal(t, want, f.ids(orgs[0].CollectionName))
		})
	}
}

func TestRaceRenameAgainstDelete(t *testing.T) {
	f := newFixture(t, 0)
	a, b := f.service(org.Config{}), f.service(org.Config{})
	o, err := a.Create(context.Background(), createInput("Acme", "admin@acme.com"))
	require.NoError(t, err)
	want := f.seed(o.CollectionName, 100)

	failed := race(
		func() error {
			_, err := a.Update(context.Background(), principal(o), org.UpdateInput{Name: strp("Renamed")})
			return err
		},
		func() error { return b.Delete(context.Background(), principal(o), "Acme") },
	)
	// Either the delete ran first (the rename finds the organization gone),
	// or the rename did (the delete then names an organization that is no
	// longer the token's own), or one of them found the other in progress.
	orgs := f.settledInvariants()
	switch {
	case failed[1] == nil:
		assert.Empty(t, orgs, "deleted")
		assert.Error(t, failed[0])
	case len(orgs) == 1:
		assert.Equal(t, want, f.ids(orgs[0].CollectionName), "documents intact in the one collection")
	default:
		t.Fatalf("unexpected outcome: %v, %d organizations", failed, len(orgs))
	}
}

func TestRaceTwoOrganizationsRenameToOneName(t *testing.T) {
	f := newFixture(t, 0)
	a, b := f.service(org.Config{}), f.service(org.Config{})
	o1, err := a.Create(context.Background(), createInput("One", "one@example.com"))
	require.NoError(t, err)
	o2, err := a.Create(context.Background(), createInput("Two", "two@example.com"))
	require.NoError(t, err)
	want1, want2 := f.seed(o1.CollectionName, 60), f.seed(o2.CollectionName, 70)

	failed := race(
		func() error {
			_, err := a.Update(context.Background(), principal(o1), org.UpdateInput{Name: strp("Target")})
			return err
		},
		func() error {
			_, err := b.Update(context.Background(), principal(o2), org.UpdateInput{Name: strp("target!")})
			return err
		},
	)
	w := oneWins(t, failed)
	for _, err := range failed {
		if err != nil {
			assert.True(t, errs.Is(err, errs.Conflict), "%v", err)
		}
	}
	f.settledInvariants()
	winnerWant, loserWant, loser := want1, want2, o2
	if w == 1 {
		winnerWant, loserWant, loser = want2, want1, o1
	}
	assert.Equal(t, winnerWant, f.ids("org_target"))
	assert.Equal(t, loserWant, f.ids(loser.CollectionName), "the loser's collection is untouched")
}

// A reconciler never takes over an operation a live instance is running,
// and reads keep working while it runs.
func TestLiveOperationIsNotTakenOver(t *testing.T) {
	f := newFixture(t, 0)
	entered, proceed := make(chan struct{}), make(chan struct{})
	var once sync.Once
	live := f.service(org.Config{LeaseTTL: time.Second, AfterStep: func(step string) error {
		if step == "rename:intent" {
			once.Do(func() { close(entered); <-proceed })
		}
		return nil
	}})
	o, err := live.Create(context.Background(), createInput("Acme", "admin@acme.com"))
	require.NoError(t, err)
	want := f.seed(o.CollectionName, 30)

	done := make(chan error, 1)
	go func() {
		_, err := live.Update(context.Background(), principal(o), org.UpdateInput{Name: strp("Renamed")})
		done <- err
	}()
	<-entered
	// Well past one TTL: the live instance keeps renewing its lease.
	time.Sleep(1500 * time.Millisecond)

	other := f.service(org.Config{ClaimGrace: time.Millisecond})
	require.NoError(t, other.Reconcile(context.Background()))
	pending, err := f.stores.Organizations.ByID(context.Background(), o.ID)
	require.NoError(t, err)
	require.NotNil(t, pending.Pending, "the reconciler must leave a live operation alone")

	got, err := other.Get(context.Background(), "acme")
	require.NoError(t, err, "reads work during a pending rename")
	assert.Equal(t, o.ID, got.ID)
	_, err = other.Update(context.Background(), principal(o), org.UpdateInput{Password: strp("another-pass"), CurrentPassword: strp("password-1")})
	assert.True(t, errs.Is(err, errs.Busy), "writes are refused while an operation runs: %v", err)

	close(proceed)
	require.NoError(t, <-done)
	orgs := f.settledInvariants()
	require.Len(t, orgs, 1)
	assert.Equal(t, "renamed", orgs[0].Slug)
	assert.Equal(t, want, f.ids("org_renamed"))
}

// A client that goes away does not cut an operation half-way.
func TestOperationOutlivesItsRequest(t *testing.T) {
	f := newFixture(t, 20)
	svc := f.service(org.Config{Strategy: org.StrategyCopy})
	o, err := svc.Create(context.Background(), createInput("Acme", "admin@acme.com"))
	require.NoError(t, err)
	want := f.seed(o.CollectionName, 200)

	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(5 * time.Millisecond); cancel() }()
	_, _ = svc.Update(ctx, principal(o), org.UpdateInput{Name: strp("Renamed")})
	require.NoError(t, svc.Wait(context.Background()))

	orgs := f.settledInvariants()
	require.Len(t, orgs, 1)
	assert.Equal(t, "renamed", orgs[0].Slug)
	assert.Equal(t, want, f.ids("org_renamed"))
}

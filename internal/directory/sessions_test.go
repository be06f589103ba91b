package directory_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orgservice/orgservice/internal/dbtest"
	"github.com/orgservice/orgservice/internal/directory"
	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/org"
)

// endSession ends session id of orgID as the authentication service does:
// the session is marked ended in the sessions, then announced in the
// change log. It returns the end.
func endSession(t *testing.T, in *instance, orgID, id string) org.SessionEnd {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	require.NoError(t, in.store.Sessions.Insert(ctx, &org.Session{ID: id, OrgID: orgID, MemberID: orgID,
		CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour)}))
	e := org.SessionEnd{SessionID: id, OrgID: orgID, Reason: org.EndLogout, At: now, Until: now.Add(time.Hour)}
	require.NoError(t, in.store.Sessions.End(ctx, e))
	require.NoError(t, in.store.Changes.AppendSessionEnd(ctx, e))
	return e
}

func ended(c assert.TestingT, d *directory.Directory, id string, want bool) {
	got, err := d.SessionEnded(id)
	if assert.NoError(c, err, id) {
		assert.Equal(c, want, got, "session %s ended", id)
	}
}

// A session ended on one instance is ended on every other within the
// bound: the tail reads its entry in the change log; a directory that loads
// everything reads it from the sessions. Nothing else is read for it.
func TestEndedSessionsReachEveryInstance(t *testing.T) {
	const staleness = time.Second
	db := dbtest.New(t)
	a := newInstance(t, db, directory.Config{Staleness: staleness}, org.Config{})
	b := newInstance(t, db, directory.Config{Staleness: staleness}, org.Config{})
	acme := a.create(t, "Acme Corp", "admin@acme.com")

	e := endSession(t, a, acme.ID, "s-followed")
	a.dir.EndSession(e) // its own end, at once
	ended(t, a.dir, "s-followed", true)
	lag := within(t, e.At, staleness, "the other instance", func(c assert.TestingT) { ended(c, b.dir, "s-followed", true) })
	t.Logf("ended on the other instance %v after the end", lag)
	ended(t, b.dir, "s-never", false)
	within(t, e.At, staleness, "the organization on the other instance", func(c assert.TestingT) {
		o, err := b.dir.ByID(acme.ID)
		if assert.NoError(c, err) {
			assert.Equal(c, acme.Name, o.Name, "an ended session's entry is no metadata write")
		}
	})

	late := newInstance(t, db, directory.Config{Staleness: staleness}, org.Config{})
	ended(t, late.dir, "s-followed", true) // loaded, not tailed
	assert.Equal(t, 1, late.dir.EndedSessions())
}

// The ended sessions held are bounded by time: each is dropped once its
// last access token has expired (Until). Removing that drop fails this
// test.
func TestEndedSessionsAreForgottenWhenTheirTokensExpire(t *testing.T) {
	db := dbtest.New(t)
	src := sourceOf(newStore(t, db))
	// Retention a second: the directory drops what it no longer needs
	// every quarter of it.
	d := startDirectory(t, src, directory.Config{Staleness: time.Minute, Every: 50 * time.Millisecond, Retention: time.Second})
	const n = 1000
	until := time.Now().Add(300 * time.Millisecond)
	for i := range n {
		d.EndSession(org.SessionEnd{SessionID: fmt.Sprint("s-", i), Until: until})
	}
	d.EndSession(org.SessionEnd{SessionID: "s-long", Until: time.Now().Add(time.Hour)})
	require.Equal(t, n+1, d.EndedSessions())
	ended(t, d, "s-7", true)

	require.Eventually(t, func() bool { return d.EndedSessions() == 1 }, 10*time.Second, 20*time.Millisecond,
		"ended sessions whose tokens have expired are dropped")
	ended(t, d, "s-7", false)
	ended(t, d, "s-long", true)
}

// A directory past its bound does not say that a session has not ended.
func TestEndedSessionsStaleMeansUnavailable(t *testing.T) {
	const staleness = 300 * time.Millisecond
	db := dbtest.New(t)
	src := &flaky{Stores: newStore(t, db)}
	d := startDirectory(t, src.source(), directory.Config{Staleness: staleness})
	ended(t, d, "s-1", false)
	src.down.Store(true)
	require.Eventually(t, func() bool {
		_, err := d.SessionEnded("s-1")
		return errs.Is(err, errs.Unavailable)
	}, staleness+10*time.Second, 5*time.Millisecond)
	assert.Greater(t, d.Age(), staleness)
	src.down.Store(false)
	require.Eventually(t, func() bool {
		_, err := d.SessionEnded("s-1")
		return err == nil
	}, 10*time.Second, 5*time.Millisecond)
}

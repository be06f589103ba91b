package auth_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgservice/orgservice/internal/auth"
	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/mongostore"
	"github.com/orgservice/orgservice/internal/org"
)

// login opens a session of the fixture's admin.
func (f *fixture) login(t *testing.T) auth.Token {
	t.Helper()
	tok, err := f.svc.Login(context.Background(), f.org.AdminEmail, password)
	require.NoError(t, err)
	require.NotEmpty(t, tok.RefreshToken)
	return tok
}

// sid is the session of an access token, as Authenticate reads it.
func (f *fixture) sid(t *testing.T, tok auth.Token) string {
	t.Helper()
	p, err := f.svc.Authenticate(context.Background(), tok.AccessToken)
	require.NoError(t, err)
	return p.SessionID
}

// refused asserts that err is the one answer to a bad refresh token.
func refused(t *testing.T, err error, what string) {
	t.Helper()
	require.Error(t, err, what)
	assert.Equal(t, errs.Unauthorized, errs.KindOf(err), "%s: %v", what, err)
	assert.Equal(t, "the refresh token is invalid, expired or revoked; log in again", err.Error(), "%s: the same answer for each", what)
}

// A login opens a session stored with only its refresh token's hash; a
// refresh answers a new pair in the same session and uses the old refresh
// token up.
func TestRefreshRotates(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	tok := f.login(t)
	sid := f.sid(t, tok)

	var raw bson.M
	require.NoError(t, f.db.Collection(mongostore.SessionsCollection).FindOne(ctx, bson.D{{Key: "_id", Value: sid}}).Decode(&raw))
	sum := sha256.Sum256([]byte(tok.RefreshToken))
	assert.Equal(t, hex.EncodeToString(sum[:]), raw["refresh_hash"], "stored hashed")
	secretPart := strings.SplitN(tok.RefreshToken, ".", 2)[1]
	for k, v := range raw {
		if str, ok := v.(string); ok {
			assert.NotContains(t, str, secretPart, "the token's secret is stored nowhere (%s)", k)
		}
	}

	next, err := f.svc.Refresh(ctx, tok.RefreshToken)
	require.NoError(t, err)
	assert.NotEqual(t, tok.RefreshToken, next.RefreshToken, "rotated")
	assert.Equal(t, sid, f.sid(t, next), "the same session")
	assert.Equal(t, "Bearer", next.TokenType)
	assert.Equal(t, int64(3600), next.ExpiresIn)
	_, err = f.svc.Authenticate(ctx, tok.AccessToken)
	assert.NoError(t, err, "the old access token lives on until it expires")

	again, err := f.svc.Refresh(ctx, next.RefreshToken)
	require.NoError(t, err, "the new refresh token works")
	assert.Equal(t, sid, f.sid(t, again))
}

// A refresh token used before ends the whole session when it comes back
// (RFC 9700, §4.14.2): the current refresh token and every access token of
// the session die with it, and nothing else.
func TestReusedRefreshTokenEndsTheSession(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	stolen := f.login(t)
	other := f.login(t) // another session of the same member
	legit, err := f.svc.Refresh(ctx, stolen.RefreshToken)
	require.NoError(t, err)

	_, err = f.svc.Refresh(ctx, stolen.RefreshToken) // the thief's copy
	refused(t, err, "reused")
	for what, tok := range map[string]string{"first access token": stolen.AccessToken, "rotated access token": legit.AccessToken} {
		_, err := f.svc.Authenticate(ctx, tok)
		assert.Equal(t, errs.Unauthorized, errs.KindOf(err), "%s: %v", what, err)
	}
	_, err = f.svc.Refresh(ctx, legit.RefreshToken)
	refused(t, err, "the session's current refresh token")

	_, err = f.svc.Authenticate(ctx, other.AccessToken)
	assert.NoError(t, err, "another session of the member is untouched")
	_, err = f.svc.Refresh(ctx, other.RefreshToken)
	assert.NoError(t, err)

	s, err := f.stores.Sessions.ByID(ctx, f.sid(t, other))
	require.NoError(t, err)
	assert.True(t, s.EndedAt.IsZero())
	ended, err := f.stores.Sessions.ByID(ctx, strings.SplitN(stolen.RefreshToken, ".", 2)[0])
	require.NoError(t, err)
	assert.Equal(t, org.EndReused, ended.EndReason)
	assert.Contains(t, f.rec.ends, ended.ID+" "+org.EndReused, "recorded in the audit log")
}

// Two (or more) refreshes racing with one refresh token: at most one
// succeeds, and a race is reuse: the session ends. On FerretDB only an
// insert under a unique key decides this; a guarded update of the session
// would let several through.
func TestRefreshRace(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	for round := range 8 {
		tok := f.login(t)
		racers := 2 + round%3
		start := make(chan struct{})
		var wg sync.WaitGroup
		results := make([]error, racers)
		pairs := make([]auth.Token, racers)
		for i := range racers {
			wg.Go(func() {
				<-start
				pairs[i], results[i] = f.svc.Refresh(ctx, tok.RefreshToken)
			})
		}
		close(start)
		wg.Wait()
		ok := 0
		for i, err := range results {
			if err == nil {
				ok++
				continue
			}
			refused(t, err, "a loser")
			_ = pairs[i]
		}
		assert.LessOrEqual(t, ok, 1, "round %d: %d refreshes with one token succeeded", round, ok)
		// The losers saw reuse: the session is over, whoever won.
		_, err := f.svc.Authenticate(ctx, tok.AccessToken)
		assert.Equal(t, errs.Unauthorized, errs.KindOf(err), "round %d: %v", round, err)
		for i := range racers {
			if results[i] == nil {
				_, err := f.svc.Refresh(ctx, pairs[i].RefreshToken)
				refused(t, err, "the winner's refresh token, in an ended session")
			}
		}
	}
}

// Malformed, unknown, expired and ended tokens get the same answer, and an
// unknown token of a live session ends nothing: knowing a session's id is
// not enough to end it.
func TestBadRefreshTokens(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	tok := f.login(t)
	sid := f.sid(t, tok)
	forged := sid + "." + strings.Repeat("A", 43)
	for what, raw := range map[string]string{
		"empty":             "",
		"garbage":           "not-a-token",
		"access token":      tok.AccessToken,
		"upper-case sid":    strings.ToUpper(sid) + tok.RefreshToken[32:],
		"short secret":      tok.RefreshToken[:len(tok.RefreshToken)-1],
		"long secret":       tok.RefreshToken + "A",
		"unknown session":   "0123456789abcdef0123456789abcdef" + tok.RefreshToken[32:],
		"forged secret":     forged,
		"not base64 secret": sid + "." + strings.Repeat("!", 43),
	} {
		_, err := f.svc.Refresh(ctx, raw)
		refused(t, err, what)
	}
	_, err := f.svc.Authenticate(ctx, tok.AccessToken)
	assert.NoError(t, err, "a forged token of the session ended nothing")
	_, err = f.svc.Refresh(ctx, tok.RefreshToken)
	assert.NoError(t, err)

	short := f.service(t, f.dir, auth.Config{TTL: time.Second, RefreshTTL: 2 * time.Second})
	exp, err := short.Login(ctx, f.org.AdminEmail, password)
	require.NoError(t, err)
	time.Sleep(2100 * time.Millisecond)
	_, err = short.Refresh(ctx, exp.RefreshToken)
	refused(t, err, "expired")
}

// Logout ends the caller's session at once: its access and refresh tokens
// are refused, other sessions work on.
func TestLogout(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	tok, other := f.login(t), f.login(t)
	p, err := f.svc.Authenticate(ctx, tok.AccessToken)
	require.NoError(t, err)
	require.NoError(t, f.svc.Logout(ctx, p))

	_, err = f.svc.Authenticate(ctx, tok.AccessToken)
	assert.Equal(t, errs.Unauthorized, errs.KindOf(err), "%v", err)
	_, err = f.svc.Refresh(ctx, tok.RefreshToken)
	refused(t, err, "after logout")
	_, err = f.svc.Authenticate(ctx, other.AccessToken)
	assert.NoError(t, err)
	assert.Equal(t, []string{p.SessionID + " " + org.EndLogout}, f.rec.ends)

	// Announced to every instance: the change log has the end.
	head, err := f.stores.Changes.Head(ctx)
	require.NoError(t, err)
	c, err := f.stores.Changes.At(ctx, head)
	require.NoError(t, err)
	require.NotNil(t, c.Ended)
	assert.Equal(t, p.SessionID, c.Ended.SessionID)
	assert.WithinDuration(t, time.Now().Add(time.Hour+time.Minute), c.Ended.Until, 10*time.Second,
		"refused for as long as its last access token may live")
}

// Sessions lists a member's live sessions; EndSession ends one of them, and
// only the member's own.
func TestSessionsAndEndSession(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	a, b := f.login(t), f.login(t)
	pa, err := f.svc.Authenticate(ctx, a.AccessToken)
	require.NoError(t, err)
	pb, err := f.svc.Authenticate(ctx, b.AccessToken)
	require.NoError(t, err)

	list, err := f.svc.Sessions(ctx, pa)
	require.NoError(t, err)
	require.Len(t, list, 2)
	assert.Equal(t, pb.SessionID, list[0].ID, "newest first")

	stranger := pa
	stranger.MemberID = "65f0000000000000000000ee"
	for what, id := range map[string]string{"unknown": "0123456789abcdef0123456789abcdef", "malformed": "x"} {
		assert.Equal(t, errs.NotFound, errs.KindOf(f.svc.EndSession(ctx, pa, id)), what)
	}
	assert.Equal(t, errs.NotFound, errs.KindOf(f.svc.EndSession(ctx, stranger, pb.SessionID)), "another member's")
	_, err = f.svc.Authenticate(ctx, b.AccessToken)
	require.NoError(t, err, "nothing ended by those")

	require.NoError(t, f.svc.EndSession(ctx, pa, pb.SessionID))
	_, err = f.svc.Authenticate(ctx, b.AccessToken)
	assert.Equal(t, errs.Unauthorized, errs.KindOf(err), "%v", err)
	_, err = f.svc.Refresh(ctx, b.RefreshToken)
	refused(t, err, "an ended session's")
	list, err = f.svc.Sessions(ctx, pa)
	require.NoError(t, err)
	require.Len(t, list, 1)
	assert.Equal(t, pa.SessionID, list[0].ID)
	require.NoError(t, f.svc.EndSession(ctx, pa, pb.SessionID), "again: done again, no error")
}

// A change of the member's credentials (a new token version) ends every
// session but the one that made it: their refresh tokens are refused, and
// the kept session's refresh token renews its access token.
func TestCredentialChangeKeepsOneSession(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	kept, gone := f.login(t), f.login(t)
	changed := *f.org
	changed.Members = org.MembersOf(f.org)
	changed.Members[0].TokenVersion++
	changed.Members[0].KeptSession = f.sid(t, kept)
	f.dir.put(&changed)

	_, err := f.svc.Authenticate(ctx, kept.AccessToken)
	assert.Equal(t, errs.Unauthorized, errs.KindOf(err), "issued under the old credentials: %v", err)
	_, err = f.svc.Refresh(ctx, gone.RefreshToken)
	refused(t, err, "another session")
	renewed, err := f.svc.Refresh(ctx, kept.RefreshToken)
	require.NoError(t, err, "the session that changed them goes on")
	_, err = f.svc.Authenticate(ctx, renewed.AccessToken)
	require.NoError(t, err)
	renewed, err = f.svc.Refresh(ctx, renewed.RefreshToken)
	require.NoError(t, err, "renewed under the new version now")
	s, err := f.stores.Sessions.ByID(ctx, f.sid(t, renewed))
	require.NoError(t, err)
	assert.Equal(t, changed.Members[0].TokenVersion, s.Version)
}

// An end that a crash interrupted after it began is finished by the
// janitor of any instance: the session is marked ended and announced.
func TestInterruptedEndIsFinished(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	tok := f.login(t)
	sid := f.sid(t, tok)
	e := org.SessionEnd{SessionID: sid, OrgID: f.org.ID, Reason: org.EndLogout, At: time.Now().Add(-time.Minute).UTC(), Until: time.Now().Add(time.Hour).UTC()}
	require.NoError(t, f.stores.SessionEnds.Begin(ctx, e)) // and the process died
	_, err := f.svc.Refresh(ctx, tok.RefreshToken)
	require.NoError(t, err, "not ended yet")

	// Another instance's janitor, with a memory of ended sessions of its own.
	other := &endedSet{until: map[string]time.Time{}}
	f.sessions.Ended = other
	janitor := f.service(t, f.dir, auth.Config{})
	jctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { janitor.RunJanitor(jctx, 50*time.Millisecond); close(done) }()
	require.Eventually(t, func() bool {
		left, err := f.stores.SessionEnds.Unfinished(ctx, time.Now().Add(time.Hour))
		return err == nil && len(left) == 0
	}, 10*time.Second, 20*time.Millisecond)
	stop()
	<-done
	ended, _ := other.SessionEnded(sid)
	assert.True(t, ended, "the finishing instance refuses it at once")
	s, err := f.stores.Sessions.ByID(ctx, sid)
	require.NoError(t, err)
	assert.Equal(t, org.EndLogout, s.EndReason, "marked ended")
	_, err = f.svc.Refresh(ctx, tok.RefreshToken)
	refused(t, err, "an end finished by another instance")
	head, err := f.stores.Changes.Head(ctx)
	require.NoError(t, err)
	c, err := f.stores.Changes.At(ctx, head)
	require.NoError(t, err)
	require.NotNil(t, c.Ended, "announced")
	assert.Equal(t, sid, c.Ended.SessionID)
}

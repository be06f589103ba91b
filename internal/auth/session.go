package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/org"
)

// Sessions are where sessions are kept and how their ends reach every
// instance.
type Sessions struct {
	Store SessionStore
	Uses  RefreshUses
	Ends  SessionEnds
	// Log announces ends to every instance's directory (the change log).
	Log EndLog
	// Ended is this instance's memory of ended sessions (the directory).
	Ended Revocations
}

// SessionStore keeps the sessions (mongostore.Sessions).
type SessionStore interface {
	Insert(ctx context.Context, s *org.Session) error
	// ByID returns errs.NotFound when there is none.
	ByID(ctx context.Context, id string) (*org.Session, error)
	// OfMember returns every session stored of a member, ended ones too.
	OfMember(ctx context.Context, orgID, memberID string) ([]org.Session, error)
	// Rotate writes next's refresh hash, version, use and expiry, and
	// reports whether the session is there.
	Rotate(ctx context.Context, next *org.Session) (bool, error)
	// End marks e's session ended.
	End(ctx context.Context, e org.SessionEnd) error
	// Prune deletes what expired before t.
	Prune(ctx context.Context, t time.Time) error
}

// RefreshUses records the refresh tokens used (mongostore.RefreshUses).
type RefreshUses interface {
	// Use records the token hash as used by a session until expires; an
	// insert under the hash, so errs.Conflict when it was used already.
	Use(ctx context.Context, hash, sessionID string, expires time.Time) error
	// UsedBy returns the session that used hash; errs.NotFound when none.
	UsedBy(ctx context.Context, hash string) (string, error)
	// Prune deletes the records of tokens expired before t.
	Prune(ctx context.Context, t time.Time) error
}

// SessionEnds hold the ends in progress, so that one a crash interrupted
// is finished (mongostore.SessionEnds).
type SessionEnds interface {
	Begin(ctx context.Context, e org.SessionEnd) error
	Done(ctx context.Context, sessionID string) error
	// Unfinished lists the ends begun before t and not done.
	Unfinished(ctx context.Context, t time.Time) ([]org.SessionEnd, error)
}

// EndLog announces an ended session to every instance
// (mongostore.ChangeLog, which every directory tails).
type EndLog interface {
	AppendSessionEnd(ctx context.Context, e org.SessionEnd) error
}

// Revocations are the ended sessions this instance knows of
// (directory.Directory): every other instance's within its staleness
// bound, its own at once.
type Revocations interface {
	// SessionEnded reports whether session id has ended; errs.Unavailable
	// when this instance's knowledge is older than its bound.
	SessionEnded(id string) (bool, error)
	// EndSession applies an end this instance made, at once.
	EndSession(e org.SessionEnd)
}

// clockLeeway is added to an ended session's last access token's expiry,
// for instances whose clocks run apart and for a refresh that was issuing
// a token while the session ended.
const clockLeeway = time.Minute

// sessionIDBytes and secretBytes size a refresh token: a session id of
// 128 random bits, then a secret of 256 (OWASP Session Management Cheat
// Sheet: at least 64 bits of entropy).
const (
	sessionIDBytes = 16
	secretBytes    = 32
)

var (
	sessionIDLen = hex.EncodedLen(sessionIDBytes)
	secretLen    = base64.RawURLEncoding.EncodedLen(secretBytes)
)

// badRefresh is the one answer to a refresh token that is malformed,
// unknown, expired, ended or reused: the same body for each, so that
// nothing is learned by trying.
func badRefresh() error {
	return errs.Errorf(errs.Unauthorized, "the refresh token is invalid, expired or revoked; log in again")
}

// newRefresh returns a fresh refresh token of session sid, and its hash.
// It is opaque to clients (RFC 9700, §4.14.2: not a JWT, so it can never
// pass for an access token, RFC 8725, §3.12), and only its SHA-256 is
// stored: a high-entropy secret needs no slow hash.
func newRefresh(sid string) (raw, hash string) {
	b := make([]byte, secretBytes)
	_, _ = rand.Read(b)
	raw = sid + "." + base64.RawURLEncoding.EncodeToString(b)
	return raw, hashRefresh(raw)
}

func hashRefresh(raw string) string {
	h := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(h[:])
}

// parseRefresh returns the session id of a refresh token of the right
// form; ok is false for anything else.
func parseRefresh(raw string) (sid string, ok bool) {
	sid, secret, found := strings.Cut(raw, ".")
	if !found || len(sid) != sessionIDLen || len(secret) != secretLen || !isLowerHex(sid) {
		return "", false
	}
	if _, err := base64.RawURLEncoding.DecodeString(secret); err != nil {
		return "", false
	}
	return sid, true
}

func isLowerHex(s string) bool {
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// ValidSessionID reports whether id has the form of a session id.
func ValidSessionID(id string) bool { return len(id) == sessionIDLen && isLowerHex(id) }

func newSessionID() string {
	b := make([]byte, sessionIDBytes)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// open starts a session of member m of o, for the client the request
// comes from, and issues its first pair of tokens.
func (s *Service) open(ctx context.Context, o *org.Organization, m *org.Member) (Token, error) {
	now := s.now().UTC().Truncate(time.Millisecond)
	sid := newSessionID()
	raw, hash := newRefresh(sid)
	origin := org.OriginOf(ctx)
	ss := &org.Session{
		ID: sid, OrgID: o.ID, MemberID: m.ID, Version: m.TokenVersion, RefreshHash: hash,
		ClientIP: origin.ClientIP, UserAgent: origin.UserAgent,
		CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(s.cfg.RefreshTTL),
	}
	if err := s.sess.Store.Insert(ctx, ss); err != nil {
		return Token{}, err
	}
	t, err := s.issue(o, m, sid)
	t.RefreshToken = raw
	return t, err
}

// Refresh renews a session: the refresh token given is used up and a new
// pair is answered (rotation, RFC 9700, §4.14.2). A refresh token used
// before — presented again by whoever stole it, or by its owner after a
// thief — ends the whole session, its access tokens included. Of refreshes
// racing with one token, one inserts the record of its use; every other
// finds it and ends the session: at most one succeeds. Errors:
// errs.Unauthorized (the same for a malformed, unknown, expired, ended or
// reused token), errs.Unavailable.
func (s *Service) Refresh(ctx context.Context, raw string) (Token, error) {
	sid, ok := parseRefresh(raw)
	if !ok {
		return Token{}, badRefresh()
	}
	hash := hashRefresh(raw)
	cur, err := s.sess.Store.ByID(ctx, sid)
	if errs.Is(err, errs.NotFound) {
		return Token{}, badRefresh()
	}
	if err != nil {
		return Token{}, err
	}
	now := s.now().UTC().Truncate(time.Millisecond)
	if !cur.Live(now) {
		return Token{}, badRefresh()
	}
	if subtle.ConstantTimeCompare([]byte(hash), []byte(cur.RefreshHash)) != 1 {
		return Token{}, s.notCurrent(ctx, cur, hash)
	}
	o, m, err := s.holder(ctx, cur)
	if err != nil {
		return Token{}, err
	}
	// The one atomic step: of refreshes racing with this token, one
	// inserts the record of its use; the others find it taken.
	if err := s.sess.Uses.Use(ctx, hash, sid, cur.ExpiresAt); err != nil {
		if errs.Is(err, errs.Conflict) {
			return Token{}, s.reused(ctx, cur)
		}
		return Token{}, err
	}
	next := *cur
	rawNext, hashNext := newRefresh(sid)
	origin := org.OriginOf(ctx)
	next.RefreshHash, next.Version, next.LastUsedAt, next.ExpiresAt = hashNext, m.TokenVersion, now, now.Add(s.cfg.RefreshTTL)
	next.ClientIP, next.UserAgent = origin.ClientIP, origin.UserAgent
	rotated, err := s.sess.Store.Rotate(ctx, &next)
	if err != nil {
		return Token{}, err
	}
	if !rotated { // pruned meanwhile
		return Token{}, badRefresh()
	}
	if err := s.live(sid); err != nil { // ended elsewhere meanwhile
		return Token{}, badRefreshOr(err)
	}
	t, err := s.issue(o, m, sid)
	t.RefreshToken = rawNext
	return t, err
}

// badRefreshOr turns an ended session into badRefresh and passes anything
// else on.
func badRefreshOr(err error) error {
	if errs.Is(err, errs.Unauthorized) {
		return badRefresh()
	}
	return err
}

// holder returns the organization and member session cur belongs to, if
// the member's credentials still admit it. The directory answers; when it
// refuses, the organization is read afresh once: another instance may have
// written what admits cur a moment ago. A session the member's
// credentials no longer admit (changed in another session) is recorded as
// ended. Errors: errs.Unauthorized (badRefresh), errs.Unavailable.
func (s *Service) holder(ctx context.Context, cur *org.Session) (*org.Organization, *org.Member, error) {
	o, m, err := s.member(ctx, cur, s.orgs.ByID)
	if errs.Is(err, errs.Unauthorized) {
		o, m, err = s.member(ctx, cur, s.orgs.Reread)
	}
	if errs.Is(err, errs.Unauthorized) && m != nil {
		// Its access tokens died with the token version; this only says so
		// in its record.
		e := s.endOf(cur.OrgID, cur.ID, org.EndCredentials)
		if werr := s.sess.Store.End(ctx, e); werr != nil {
			s.log.Warn("record session end", slog.String("session_id", cur.ID), slog.Any("error", werr))
		}
	}
	return o, m, err
}

// member looks up cur's member with lookup: errs.Unauthorized (badRefresh)
// when the organization or the member is gone, or the member's
// credentials no longer admit cur (m is then set).
func (s *Service) member(ctx context.Context, cur *org.Session, lookup func(context.Context, string) (*org.Organization, error)) (*org.Organization, *org.Member, error) {
	o, err := lookup(ctx, cur.OrgID)
	if errs.Is(err, errs.NotFound) {
		return nil, nil, badRefresh()
	}
	if err != nil {
		return nil, nil, err
	}
	m := org.MemberByID(o, cur.MemberID)
	if m == nil {
		return nil, nil, badRefresh()
	}
	if !m.Admits(cur) {
		return o, m, badRefresh()
	}
	// A suspended organization's sessions get no new tokens, as its
	// logins and tokens are refused; they live on for its reactivation.
	if err := org.CheckSuspended(o); err != nil {
		return o, m, err
	}
	return o, m, nil
}

// notCurrent handles a well-formed token of session cur that is not its
// current one: a token cur used before is reuse, and ends cur; any other
// is unknown, and ends nothing (whoever knows a session's id must not be
// able to end it).
func (s *Service) notCurrent(ctx context.Context, cur *org.Session, hash string) error {
	by, err := s.sess.Uses.UsedBy(ctx, hash)
	if errs.Is(err, errs.NotFound) || err == nil && by != cur.ID {
		return badRefresh()
	}
	if err != nil {
		return err
	}
	return s.reused(ctx, cur)
}

// reused ends session cur, one of whose used refresh tokens came back
// (RFC 9700, §4.14.2: the server cannot tell the thief from the client, so
// the whole session goes), and answers badRefresh.
func (s *Service) reused(ctx context.Context, cur *org.Session) error {
	s.log.Warn("refresh token reused; session ended", slog.String("org_id", cur.OrgID),
		slog.String("session_id", cur.ID), slog.String("client_ip", org.OriginOf(ctx).ClientIP))
	if err := s.end(ctx, cur.OrgID, cur.MemberID, cur.ID, org.EndReused); err != nil {
		return err
	}
	return badRefresh()
}

// Logout ends the principal's session: its refresh token and every access
// token issued in it are refused from the next request on, on this
// instance at once and on every other within its directory's bound.
// Errors: errs.Unavailable.
func (s *Service) Logout(ctx context.Context, p org.Principal) error {
	return s.end(ctx, p.OrgID, p.MemberID, p.SessionID, org.EndLogout)
}

// Sessions lists the principal's live sessions, newest first.
// Errors: errs.Unauthorized, errs.Unavailable.
func (s *Service) Sessions(ctx context.Context, p org.Principal) ([]org.Session, error) {
	o, err := s.orgs.ByID(ctx, p.OrgID)
	if errs.Is(err, errs.NotFound) {
		return nil, errs.Errorf(errs.Unauthorized, "the organization no longer exists")
	}
	if err != nil {
		return nil, err
	}
	m := org.MemberByID(o, p.MemberID)
	if m == nil {
		return nil, errs.Errorf(errs.Unauthorized, "the token's member is no longer in the organization")
	}
	all, err := s.sess.Store.OfMember(ctx, p.OrgID, p.MemberID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	live := all[:0]
	for _, ss := range all {
		if ended, err := s.sess.Ended.SessionEnded(ss.ID); err != nil || ended {
			if err != nil {
				return nil, err
			}
			continue
		}
		if ss.Live(now) && m.Admits(&ss) {
			live = append(live, ss)
		}
	}
	slices.SortFunc(live, func(a, b org.Session) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return live, nil
}

// EndSession ends session id of the principal (its current one too):
// as Logout. Ending one that has ended already does it again, which
// finishes an end a crash interrupted. Errors: errs.NotFound (no such
// session of the principal's), errs.Unavailable.
func (s *Service) EndSession(ctx context.Context, p org.Principal, id string) error {
	notFound := errs.Errorf(errs.NotFound, "session not found")
	if !ValidSessionID(id) {
		return notFound
	}
	cur, err := s.sess.Store.ByID(ctx, id)
	if errs.Is(err, errs.NotFound) || err == nil && (cur.OrgID != p.OrgID || cur.MemberID != p.MemberID) {
		return notFound
	}
	if err != nil {
		return err
	}
	return s.end(ctx, p.OrgID, p.MemberID, id, org.EndDeleted)
}

// endOf is the end of session id of orgID now, for reason.
func (s *Service) endOf(orgID, id, reason string) org.SessionEnd {
	now := s.now().UTC().Truncate(time.Millisecond)
	return org.SessionEnd{SessionID: id, OrgID: orgID, Reason: reason, At: now, Until: now.Add(s.cfg.TTL + clockLeeway)}
}

// end ends session id of member memberID of orgID, and records it. Steps:
// begin (an insert that a crash leaves behind for RunJanitor to finish) →
// this instance refuses the session's tokens → the session is marked ended
// (its refresh token is refused) → the end is announced in the change log
// (every instance refuses its tokens within its bound) → done. Every step
// may be run again. Errors: errs.Unavailable.
func (s *Service) end(ctx context.Context, orgID, memberID, id, reason string) error {
	e := s.endOf(orgID, id, reason)
	if err := s.sess.Ends.Begin(ctx, e); err != nil {
		return err
	}
	s.sess.Ended.EndSession(e)
	if err := s.finish(ctx, e); err != nil {
		return err
	}
	if o, err := s.orgs.ByID(ctx, orgID); err == nil {
		if m := org.MemberByID(o, memberID); m != nil {
			return s.rec.RecordSessionEnd(ctx, o, m, id, reason)
		}
	}
	return nil
}

// finish writes and announces e, then forgets it was in progress.
func (s *Service) finish(ctx context.Context, e org.SessionEnd) error {
	if err := s.sess.Store.End(ctx, e); err != nil {
		return err
	}
	if err := s.sess.Log.AppendSessionEnd(ctx, e); err != nil {
		return err
	}
	if err := s.sess.Ends.Done(ctx, e.SessionID); err != nil {
		// Announced already: finishing it again later changes nothing.
		s.log.Warn("session end left in progress", slog.String("session_id", e.SessionID), slog.Any("error", err))
	}
	return nil
}

// live returns errs.Unauthorized when session sid has ended.
func (s *Service) live(sid string) error {
	ended, err := s.sess.Ended.SessionEnded(sid)
	if err != nil {
		return err
	}
	if ended {
		return errs.Errorf(errs.Unauthorized, "the session has ended; log in again")
	}
	return nil
}

// pruneEvery is how often RunJanitor deletes expired sessions and the
// records of expired refresh tokens.
const pruneEvery = time.Hour

// RunJanitor finishes, every interval, the session ends that a crash
// interrupted more than every ago (each instance may; finishing one
// twice changes nothing), and every hour deletes expired sessions and
// used-token records, until ctx is done.
func (s *Service) RunJanitor(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var pruned time.Time
	// Its work is never cut off half-way (on FerretDB a query cancelled
	// mid-flight closes its connection); the client's timeout bounds it.
	stop, ctx := ctx, context.WithoutCancel(ctx)
	for {
		select {
		case <-stop.Done():
			return
		case <-t.C:
		}
		s.finishInterrupted(ctx, every)
		if time.Since(pruned) >= pruneEvery {
			pruned = time.Now()
			s.prune(ctx)
		}
	}
}

// finishInterrupted finishes the session ends begun more than every ago.
func (s *Service) finishInterrupted(ctx context.Context, every time.Duration) {
	ends, err := s.sess.Ends.Unfinished(ctx, s.now().Add(-every))
	if err != nil {
		s.log.Warn("list unfinished session ends", slog.Any("error", err))
		return
	}
	for _, e := range ends {
		s.sess.Ended.EndSession(e)
		if err := s.finish(ctx, e); err != nil {
			s.log.Warn("finish session end", slog.String("session_id", e.SessionID), slog.Any("error", err))
		}
	}
}

func (s *Service) prune(ctx context.Context) {
	now := s.now()
	if err := s.sess.Store.Prune(ctx, now); err != nil {
		s.log.Warn("prune sessions", slog.Any("error", err))
	}
	if err := s.sess.Uses.Prune(ctx, now); err != nil {
		s.log.Warn("prune refresh token uses", slog.Any("error", err))
	}
}

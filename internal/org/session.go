package org

import "time"

// Session is one login of a member: it lasts while its refresh token is
// renewed within REFRESH_TTL, and every access token issued in it names it,
// so that ending it ends them all. Only the SHA-256 of its current refresh
// token is kept (RFC 9700, §4.14.2; OWASP Session Management Cheat Sheet).
type Session struct {
	ID       string
	OrgID    string
	MemberID string
	// Version is the member's token version the session was last renewed
	// under: a change of the member's credentials ends every session but
	// the one that made it (see Member.Admits).
	Version     int64
	RefreshHash string
	ClientIP    string // where it was last used from
	UserAgent   string
	CreatedAt   time.Time
	LastUsedAt  time.Time // the login, or the last refresh
	ExpiresAt   time.Time // of the current refresh token
	// EndedAt is when the session was ended (zero while it is live), for
	// EndReason; Until is when the last access token it may have issued
	// has expired, after which nobody needs to remember its end.
	EndedAt   time.Time
	EndReason string
	Until     time.Time
}

// Why a session ended, as its session.ended event and its record say.
const (
	EndLogout      = "logout"               // POST /admin/logout
	EndDeleted     = "deleted"              // DELETE /org/members/me/sessions/{id}
	EndReused      = "refresh_token_reused" // RFC 9700, §4.14.2: an already-used refresh token came back
	EndCredentials = "credentials_changed"  // the member's email or password changed in another session
)

// Live reports whether s may still be renewed at now: not ended, not
// expired.
func (s *Session) Live(now time.Time) bool {
	return s.EndedAt.IsZero() && now.Before(s.ExpiresAt)
}

// Admits reports whether m's credentials, as they are now, still admit s:
// s was renewed under m's current token version, or s is the session that
// changed them last (RFC 9700, §4.14.2: a password change may revoke the
// member's other refresh tokens).
func (m *Member) Admits(s *Session) bool {
	return s.MemberID == m.ID && (s.Version == m.TokenVersion || s.ID != "" && s.ID == m.KeptSession)
}

// SessionEnd is the end of a session, as it is announced to every
// instance: access tokens naming SessionID are refused until Until, when
// the last of them has expired. Reason and At are its record's.
type SessionEnd struct {
	SessionID string
	OrgID     string
	Reason    string
	At        time.Time
	Until     time.Time
}

// Change is one entry of the change log: OrgID's metadata may have
// changed, or, when Ended is set, one of its sessions has ended.
type Change struct {
	OrgID string
	Ended *SessionEnd
}

package apiclient

import (
	"encoding/json"
	"time"
)

// The answers' bodies, as api/openapi.yaml gives them.

// Organization is an organization; what anyone but its members gets has
// no ID, AdminEmail, MemberCount nor UpdatedAt.
type Organization struct {
	ID             string    `json:"id"`
	Name           string    `json:"organization_name"`
	Slug           string    `json:"slug"`
	CollectionName string    `json:"collection_name"`
	AdminEmail     string    `json:"admin_email"`
	MemberCount    int       `json:"member_count"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

// Token is a login's or a refresh's answer.
type Token struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
}

// Session is one of a member's sessions.
type Session struct {
	ID         string    `json:"id"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at"`
	ExpiresAt  time.Time `json:"expires_at"`
	ClientIP   string    `json:"client_ip"`
	UserAgent  string    `json:"user_agent"`
	Current    bool      `json:"current"`
}

// SessionList is a member's sessions, newest first.
type SessionList struct {
	Items []Session `json:"items"`
}

// Member is a member of an organization.
type Member struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Document is a document of an organization.
type Document struct {
	ID        string          `json:"id"`
	Data      json.RawMessage `json:"data"`
	Version   int             `json:"version"`
	CreatedAt time.Time       `json:"created_at"`
	UpdatedAt time.Time       `json:"updated_at"`
}

// DocumentPage is a page of documents; Next is nil on the last page.
type DocumentPage struct {
	Items []Document `json:"items"`
	Next  *string    `json:"next"`
}

// ImportResult is what an import did.
type ImportResult struct {
	Inserted        int `json:"inserted"`
	SkippedExisting int `json:"skipped_existing"`
	Rejected        []struct {
		Line    int    `json:"line"`
		Message string `json:"message"`
	} `json:"rejected"`
}

// Event is an entry of an organization's audit log.
type Event struct {
	ID    string    `json:"id"`
	Time  time.Time `json:"time"`
	Actor struct {
		Type     string `json:"type"` // "operator"; "" for a member
		MemberID string `json:"member_id"`
		Email    string `json:"email"`
	} `json:"actor"`
	Action string `json:"action"`
	Target struct {
		Type string `json:"type"`
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"target"`
	Details         map[string]string `json:"details"`
	RequestID       string            `json:"request_id"`
	ClientRequestID string            `json:"client_request_id,omitempty"`
}

// AuditPage is a page of the audit log, newest first; Next is nil on the
// last page.
type AuditPage struct {
	Items []Event `json:"items"`
	Next  *string `json:"next"`
}

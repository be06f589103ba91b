package apiclient

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
)

// Request is one request to the API. Build it with the function named for
// its operation, once, and send it as often as needed.
type Request struct {
	Method string
	Path   string // from /api/v1 on, with the query
	Token  string // sent as a bearer token; "" for none
	// Body is sent as application/json unless Header names another
	// Content-Type; nil for none.
	Body   []byte
	Header http.Header // added to the request: X-Forwarded-For, If-Match…
}

// With returns a copy of r with the header key set to value.
func (r Request) With(key, value string) Request {
	h := r.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Set(key, value)
	r.Header = h
	return r
}

// jsonBody encodes a request body of the API's, which cannot fail.
func jsonBody(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// CreateOrg creates an organization whose owner is email: 201 Organization.
func CreateOrg(name, email, password string) Request {
	return Request{Method: http.MethodPost, Path: "/api/v1/org/create",
		Body: jsonBody(map[string]string{"organization_name": name, "email": email, "password": password})}
}

// GetOrg looks an organization up by name: 200 Organization.
func GetOrg(name string) Request {
	return Request{Method: http.MethodGet, Path: "/api/v1/org/get?organization_name=" + url.QueryEscape(name)}
}

// Login logs a member in: 200 Token.
func Login(email, password string) Request {
	return Request{Method: http.MethodPost, Path: "/api/v1/admin/login",
		Body: jsonBody(map[string]string{"email": email, "password": password})}
}

// OrgUpdate is what an update changes: the fields not empty.
// CurrentPassword is required with Email or Password.
type OrgUpdate struct {
	Name            string `json:"organization_name,omitempty"`
	Email           string `json:"email,omitempty"`
	Password        string `json:"password,omitempty"`
	CurrentPassword string `json:"current_password,omitempty"`
}

// UpdateOrg renames the token's organization or changes its caller's email
// or password: 200 Organization.
func UpdateOrg(token string, u OrgUpdate) Request {
	return Request{Method: http.MethodPut, Path: "/api/v1/org/update", Token: token, Body: jsonBody(u)}
}

// DeleteOrg deletes the token's organization, named name: 204.
func DeleteOrg(token, name string) Request {
	return Request{Method: http.MethodDelete, Path: "/api/v1/org/delete?organization_name=" + url.QueryEscape(name), Token: token}
}

// AddMember adds a member to the token's organization: 201 Member.
func AddMember(token, email, password, role string) Request {
	return Request{Method: http.MethodPost, Path: "/api/v1/org/members", Token: token,
		Body: jsonBody(map[string]string{"email": email, "password": password, "role": role})}
}

// SetRole changes member id's role: 200 Member.
func SetRole(token, id, role string) Request {
	return Request{Method: http.MethodPatch, Path: "/api/v1/org/members/" + url.PathEscape(id), Token: token,
		Body: jsonBody(map[string]string{"role": role})}
}

// RemoveMember removes member id: 204.
func RemoveMember(token, id string) Request {
	return Request{Method: http.MethodDelete, Path: "/api/v1/org/members/" + url.PathEscape(id), Token: token}
}

// Refresh renews a session with its refresh token: 200 Token.
func Refresh(refreshToken string) Request {
	return Request{Method: http.MethodPost, Path: "/api/v1/admin/refresh",
		Body: jsonBody(map[string]string{"refresh_token": refreshToken})}
}

// Logout ends the token's session: 204.
func Logout(token string) Request {
	return Request{Method: http.MethodPost, Path: "/api/v1/admin/logout", Token: token}
}

// Sessions lists the token's member's sessions: 200 SessionList.
func Sessions(token string) Request {
	return Request{Method: http.MethodGet, Path: "/api/v1/org/members/me/sessions", Token: token}
}

// EndSession ends session id of the token's member: 204.
func EndSession(token, id string) Request {
	return Request{Method: http.MethodDelete, Path: "/api/v1/org/members/me/sessions/" + url.PathEscape(id), Token: token}
}

// Me reads the token's own member: 200 Member.
func Me(token string) Request {
	return Request{Method: http.MethodGet, Path: "/api/v1/org/members/me", Token: token}
}

// CreateDocument stores the JSON object doc (its string "id", if any, is
// the document's id): 201 Document.
func CreateDocument(token string, doc []byte) Request {
	return Request{Method: http.MethodPost, Path: "/api/v1/org/documents", Token: token, Body: doc}
}

// GetDocument reads document id: 200 Document.
func GetDocument(token, id string) Request {
	return Request{Method: http.MethodGet, Path: "/api/v1/org/documents/" + url.PathEscape(id), Token: token}
}

// ListDocuments reads a page of documents; query holds limit, after and
// filter[FIELD], as the API names them: 200 DocumentPage.
func ListDocuments(token string, query url.Values) Request {
	return Request{Method: http.MethodGet, Path: withQuery("/api/v1/org/documents", query), Token: token}
}

// PatchDocument merges the JSON merge patch (RFC 7396) into document id:
// 200 Document. With("If-Match", …) makes it conditional.
func PatchDocument(token, id string, patch []byte) Request {
	r := Request{Method: http.MethodPatch, Path: "/api/v1/org/documents/" + url.PathEscape(id), Token: token, Body: patch}
	return r.With("Content-Type", "application/merge-patch+json")
}

// Export reads every document as NDJSON: 200.
func Export(token string) Request {
	return Request{Method: http.MethodGet, Path: "/api/v1/org/export", Token: token}
}

// Import stores the documents of an export (NDJSON): 200 ImportResult.
func Import(token string, ndjson []byte) Request {
	r := Request{Method: http.MethodPost, Path: "/api/v1/org/import", Token: token, Body: ndjson}
	return r.With("Content-Type", "application/x-ndjson")
}

// ReadAudit reads a page of the audit log, newest first, after the cursor
// after ("" for the first page), limit events (0 for the default): 200
// AuditPage.
func ReadAudit(token, after string, limit int) Request {
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	return Request{Method: http.MethodGet, Path: withQuery("/api/v1/org/audit", q), Token: token}
}

func withQuery(path string, q url.Values) string {
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

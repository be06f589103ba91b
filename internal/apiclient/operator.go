package apiclient

import (
	"net/http"
	"net/url"
)

// ReadUsage reads what the token's organization uses of its quotas: 200 Usage.
func ReadUsage(token string) Request {
	return Request{Method: http.MethodGet, Path: "/api/v1/org/usage", Token: token}
}

// OperatorOrgs lists the organizations with the operator key; query holds
// q, status, sort, after and limit, as the API names them: 200 OperatorPage.
func OperatorOrgs(key string, query url.Values) Request {
	return Request{Method: http.MethodGet, Path: withQuery("/api/v1/operator/organizations", query), Token: key}
}

// OperatorOrg reads organization id with the operator key: 200 OperatorOrganization.
func OperatorOrg(key, id string) Request {
	return Request{Method: http.MethodGet, Path: "/api/v1/operator/organizations/" + url.PathEscape(id), Token: key}
}

// OperatorChange is what an operator's PATCH changes: the fields not nil.
// A quota of nil in Quotas is the default again.
type OperatorChange struct {
	Status   *string            `json:"status,omitempty"`
	Quotas   map[string]*int64  `json:"quotas,omitempty"`
	Metadata map[string]*string `json:"metadata,omitempty"`
}

// OperatorPatch changes organization id with the operator key: 200 OperatorOrganization.
func OperatorPatch(key, id string, c OperatorChange) Request {
	return Request{Method: http.MethodPatch, Path: "/api/v1/operator/organizations/" + url.PathEscape(id), Token: key, Body: jsonBody(c)}
}

// OperatorRecount counts organization id's usage again: 200 OperatorOrganization.
func OperatorRecount(key, id string) Request {
	return Request{Method: http.MethodPost, Path: "/api/v1/operator/organizations/" + url.PathEscape(id) + "/recount", Token: key}
}

// UsedLimit is one quota: what is used of it and its limit.
type UsedLimit struct {
	Used  int64 `json:"used"`
	Limit int64 `json:"limit"`
}

// Usage is what an organization uses of its quotas.
type Usage struct {
	Documents    UsedLimit `json:"documents"`
	StorageBytes UsedLimit `json:"storage_bytes"`
	Members      UsedLimit `json:"members"`
}

// OperatorOrganization is an organization as the operator sees it; Usage
// is nil until it is first counted.
type OperatorOrganization struct {
	Organization
	Status string `json:"status"`
	Usage  *struct {
		Documents    int64 `json:"documents"`
		StorageBytes int64 `json:"storage_bytes"`
		Members      int64 `json:"members"`
	} `json:"usage"`
	Quotas struct {
		Documents    int64 `json:"documents"`
		StorageBytes int64 `json:"storage_bytes"`
		Members      int64 `json:"members"`
	} `json:"quotas"`
	Metadata map[string]string `json:"metadata"`
}

// OperatorPage is a page of the operator's listing; Next is nil on the last.
type OperatorPage struct {
	Items []OperatorOrganization `json:"items"`
	Next  *string                `json:"next"`
}

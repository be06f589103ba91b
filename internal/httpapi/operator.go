package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/org"
)

// Operator is what the operator API needs; org.Operator is one.
type Operator interface {
	List(ctx context.Context, q org.OrgQuery) (org.OrgPage, error)
	Get(ctx context.Context, id string) (org.OrgView, error)
	Change(ctx context.Context, id string, c org.OrgChange) (org.OrgView, error)
	Recount(ctx context.Context, id string) (org.OrgView, error)
}

var _ Operator = (*org.Operator)(nil)

const operatorPath = "/api/v1/operator/organizations"

// operatorOnly lets through requests that carry the operator API key as a
// bearer token. The key is compared in constant time, as digests of equal
// length, so that neither its bytes nor its length leak through timing
// (OWASP Authentication Cheat Sheet). A tenant's token is just a wrong key.
// Without a key configured the operator API does not exist: 404.
func (s *Server) operatorOnly(next http.Handler) http.Handler {
	want := sha256.Sum256([]byte(s.opts.OperatorAPIKey))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.opts.OperatorAPIKey == "" {
			s.notFound(w, r)
			return
		}
		scheme, raw, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		got := sha256.Sum256([]byte(strings.TrimSpace(raw)))
		if !ok || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
			s.fail(w, r, &requestError{http.StatusUnauthorized, "unauthorized", "Unauthorized",
				"the operator API takes the operator API key: Authorization: Bearer <OPERATOR_API_KEY>"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// operatorOrg is an organization as the operator sees it.
type operatorOrg struct {
	orgResponse
	Status   string            `json:"status"`
	Usage    *operatorUsage    `json:"usage"`
	Quotas   operatorQuotas    `json:"quotas"`
	Metadata map[string]string `json:"metadata"`
}

// operatorUsage is what an organization uses; null while it has not been
// counted yet (an organization from before quotas).
type operatorUsage struct {
	Documents    int64 `json:"documents"`
	StorageBytes int64 `json:"storage_bytes"`
	Members      int64 `json:"members"`
}

type operatorQuotas struct {
	Documents    int64 `json:"documents"`
	StorageBytes int64 `json:"storage_bytes"`
	Members      int64 `json:"members"`
}

func toOperatorOrg(v org.OrgView) operatorOrg {
	md := v.Org.Metadata
	if md == nil {
		md = map[string]string{}
	}
	out := operatorOrg{
		orgResponse: toResponse(v.Org), Status: org.StatusOf(v.Org), Metadata: md,
		Quotas: operatorQuotas{Documents: v.Quotas.Documents, StorageBytes: v.Quotas.StorageBytes, Members: v.Quotas.Members},
	}
	if v.Counted {
		out.Usage = &operatorUsage{Documents: v.Used.Documents, StorageBytes: v.Used.StorageBytes, Members: int64(len(org.MembersOf(v.Org)))}
	}
	return out
}

type operatorPage struct {
	Items []operatorOrg `json:"items"`
	Next  *string       `json:"next"`
}

// operatorQuery reads q, status, sort, after and limit; anything else, a
// repeated parameter or a value out of its rules is a 400.
func operatorQuery(r *http.Request) (org.OrgQuery, error) {
	var q org.OrgQuery
	for key, vals := range r.URL.Query() {
		if len(vals) != 1 {
			return q, badRequest("the query parameter " + key + " is given more than once")
		}
		switch v := vals[0]; key {
		case "q":
			q.Q = v
		case "status":
			if v != org.StatusActive && v != org.StatusSuspended {
				return q, badRequest("status must be active or suspended")
			}
			q.Status = v
		case "sort":
			if !org.ValidSort(v) {
				return q, badRequest("sort must be name, created_at, documents or storage_bytes, each with an optional - before it for descending order")
			}
			q.Sort = v
		case "after":
			q.After = v
		case "limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > org.MaxOrgLimit {
				return q, badRequest(fmt.Sprintf("limit must be an integer from 1 to %d", org.MaxOrgLimit))
			}
			q.Limit = n
		default:
			return q, badRequest("unknown query parameter " + strconv.Quote(key) + "; use q, status, sort, after and limit")
		}
	}
	return q, nil
}

func (s *Server) listOrganizations(w http.ResponseWriter, r *http.Request) {
	q, err := operatorQuery(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	page, err := s.operator.List(r.Context(), q)
	if errs.Is(err, errs.Invalid) && q.After != "" {
		err = badRequest("after must be the next of a previous page with the same sort")
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := operatorPage{Items: make([]operatorOrg, len(page.Items))}
	for i, v := range page.Items {
		out.Items[i] = toOperatorOrg(v)
	}
	if page.Next != "" {
		out.Next = &page.Next
		next := r.URL.Query()
		next.Set("after", page.Next)
		w.Header().Set("Link", fmt.Sprintf(`<%s?%s>; rel="next"`, operatorPath, next.Encode()))
	}
	respond(w, http.StatusOK, out)
}

func (s *Server) getOrganization(w http.ResponseWriter, r *http.Request) {
	v, err := s.operator.Get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	respond(w, http.StatusOK, toOperatorOrg(v))
}

// operatorPatch is the body of PATCH /operator/organizations/{id}.
type operatorPatch struct {
	Status   *string         `json:"status"`
	Quotas   *quotasPatch    `json:"quotas"`
	Metadata json.RawMessage `json:"metadata"`
}

type quotasPatch struct {
	Documents    quotaValue `json:"documents"`
	StorageBytes quotaValue `json:"storage_bytes"`
	Members      quotaValue `json:"members"`
}

// quotaValue is a quota in a patch: absent (unchanged), null (back to the
// default) or an integer.
type quotaValue struct{ org.QuotaSetting }

func (q *quotaValue) UnmarshalJSON(b []byte) error {
	q.Set = true
	if string(b) == "null" {
		return nil
	}
	var n json.Number
	if b[0] == '"' || json.Unmarshal(b, &n) != nil || strings.ContainsAny(n.String(), ".eE") {
		return &json.UnmarshalTypeError{Value: "non-integer", Type: reflect.TypeFor[int64]()}
	}
	v, err := n.Int64()
	if err != nil {
		v = -1 // past int64: refused as out of range, as any absurd quota
	}
	q.Value = &v
	return nil
}

func (s *Server) patchOrganization(w http.ResponseWriter, r *http.Request) {
	req, err := decode[operatorPatch](w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	c := org.OrgChange{Status: req.Status}
	if q := req.Quotas; q != nil {
		c.Documents, c.StorageBytes, c.Members = q.Documents.QuotaSetting, q.StorageBytes.QuotaSetting, q.Members.QuotaSetting
	}
	if len(req.Metadata) > 0 {
		if err := json.Unmarshal(req.Metadata, &c.Metadata); err != nil || c.Metadata == nil {
			s.fail(w, r, badRequest("metadata must be an object of strings (null removes a key)"))
			return
		}
	}
	v, err := s.operator.Change(r.Context(), chi.URLParam(r, "id"), c)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	respond(w, http.StatusOK, toOperatorOrg(v))
}

func (s *Server) recountOrganization(w http.ResponseWriter, r *http.Request) {
	v, err := s.operator.Recount(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	respond(w, http.StatusOK, toOperatorOrg(v))
}

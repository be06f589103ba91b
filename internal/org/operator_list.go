package org

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
)

// The sorts of the operator's listing. A "-" before one sorts descending.
const (
	SortName         = "name"
	SortCreatedAt    = "created_at"
	SortDocuments    = "documents"
	SortStorageBytes = "storage_bytes"
)

// Operator listing page sizes.
const (
	DefaultOrgLimit = 50
	MaxOrgLimit     = 200
)

// OrgQuery selects a page of the operator's listing: organizations whose
// name, slug or admin email starts with Q (case-insensitive), of Status
// ("" for any), sorted by Sort (default SortName), after the cursor After,
// at most Limit (0: DefaultOrgLimit).
type OrgQuery struct {
	Q      string
	Status string
	Sort   string
	After  string
	Limit  int
}

// OrgPage is one page of the operator's listing; Next is the cursor of the
// following page, "" on the last.
type OrgPage struct {
	Items []OrgView
	Next  string
}

// ValidSort reports whether sort names a sort of the listing.
func ValidSort(sort string) bool {
	switch strings.TrimPrefix(sort, "-") {
	case SortName, SortCreatedAt, SortDocuments, SortStorageBytes:
		return true
	}
	return false
}

// List returns a page of the organizations, searched, filtered and sorted
// in memory: from the directory (every instance holds every organization)
// and one read of every organization's count. A page costs
// O(N log N) in the organizations N, whatever its size.
// Errors: errs.Invalid (query), errs.Unavailable.
func (op *Operator) List(ctx context.Context, q OrgQuery) (OrgPage, error) {
	if q.Sort == "" {
		q.Sort = SortName
	}
	if q.Limit == 0 {
		q.Limit = DefaultOrgLimit
	}
	var fe fieldErrors
	if !ValidSort(q.Sort) {
		fe.add("sort", "must be one of name, created_at, documents, storage_bytes, each with an optional - before it")
	}
	if q.Status != "" && q.Status != StatusActive && q.Status != StatusSuspended {
		fe.add("status", "must be active or suspended")
	}
	if q.Limit < 1 || q.Limit > MaxOrgLimit {
		fe.add("limit", fmt.Sprintf("must be from 1 to %d", MaxOrgLimit))
	}
	var after sortKey
	if q.After != "" {
		var ok bool
		if after, ok = parseCursor(q.After, q.Sort); !ok {
			fe.add("after", "must be the next of a previous page with the same sort")
		}
	}
	if err := fe.err(); err != nil {
		return OrgPage{}, err
	}
	all, err := op.s.dir.All()
	if err != nil {
		return OrgPage{}, err
	}
	counts, err := op.s.usage.All(ctx)
	if err != nil {
		return OrgPage{}, err
	}
	prefix := strings.ToLower(strings.TrimSpace(q.Q))
	desc := strings.HasPrefix(q.Sort, "-")
	field := strings.TrimPrefix(q.Sort, "-")
	type row struct {
		v   OrgView
		key sortKey
	}
	var rows []row
	for _, o := range all {
		if o.State != StateActive || q.Status != "" && StatusOf(o) != q.Status || !matches(o, prefix) {
			continue
		}
		u, counted := counts[o.ID]
		v := OrgView{Org: o, Used: u, Counted: counted, Quotas: EffectiveQuotas(o, op.s.quotas)}
		rows = append(rows, row{v, keyOf(v, field)})
	}
	slices.SortFunc(rows, func(a, b row) int {
		if desc {
			return b.key.compare(a.key)
		}
		return a.key.compare(b.key)
	})
	start := 0
	if q.After != "" {
		start, _ = slices.BinarySearchFunc(rows, after, func(r row, k sortKey) int {
			c := r.key.compare(k)
			if desc {
				c = -c
			}
			if c == 0 {
				return -1 // the cursor's own row is behind it
			}
			return c
		})
	}
	rows = rows[start:]
	page := OrgPage{}
	for i, r := range rows {
		if i == q.Limit {
			page.Next = cursor(q.Sort, rows[i-1].key)
			break
		}
		page.Items = append(page.Items, r.v)
	}
	return page, nil
}

// matches reports whether o's name, slug or admin email starts with prefix
// (lowercased).
func matches(o *Organization, prefix string) bool {
	return prefix == "" || strings.HasPrefix(strings.ToLower(o.Name), prefix) ||
		strings.HasPrefix(o.Slug, prefix) || strings.HasPrefix(o.AdminEmail, prefix)
}

// sortKey orders the listing: by a value, then by id, so that every
// organization has one place and a cursor names it.
type sortKey struct {
	value string // compares as the sort's order: numbers zero-padded
	id    string
}

func (k sortKey) compare(o sortKey) int {
	if c := strings.Compare(k.value, o.value); c != 0 {
		return c
	}
	return strings.Compare(k.id, o.id)
}

func keyOf(v OrgView, field string) sortKey {
	k := sortKey{id: v.Org.ID}
	switch field {
	case SortName:
		k.value = strings.ToLower(v.Org.Name)
	case SortCreatedAt:
		k.value = fmt.Sprintf("%020d", v.Org.CreatedAt.UnixNano())
	case SortDocuments:
		k.value = fmt.Sprintf("%020d", v.Used.Documents)
	case SortStorageBytes:
		k.value = fmt.Sprintf("%020d", v.Used.StorageBytes)
	}
	return k
}

// cursor is the opaque cursor after k in the listing sorted by sort. It
// names the sort, so that a cursor of one sort is refused by another.
func cursor(sort string, k sortKey) string {
	return base64.RawURLEncoding.EncodeToString([]byte(sort + "\n" + k.value + "\n" + k.id))
}

func parseCursor(c, sort string) (sortKey, bool) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return sortKey{}, false
	}
	parts := strings.Split(string(b), "\n")
	if len(parts) != 3 || parts[0] != sort || parts[2] == "" {
		return sortKey{}, false
	}
	return sortKey{value: parts[1], id: parts[2]}, true
}

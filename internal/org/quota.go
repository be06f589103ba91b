package org

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/orgservice/orgservice/internal/errs"
)

// Quotas are the limits of one organization: how many documents it may
// hold, how many bytes they may take (StoredSize in the documents service:
// each document's JSON as the API returns it), and how many members it may
// have.
type Quotas struct {
	Documents    int64
	StorageBytes int64
	Members      int64
}

// The names of the quotas, as the API and its problems spell them.
const (
	QuotaDocuments    = "documents"
	QuotaStorageBytes = "storage_bytes"
	QuotaMembers      = "members"
)

// The default quotas (QUOTA_DOCUMENTS, QUOTA_STORAGE_BYTES, QUOTA_MEMBERS).
const (
	DefaultQuotaDocuments    = 1_000_000
	DefaultQuotaStorageBytes = 1 << 30
	DefaultQuotaMembers      = MaxMembers
)

// The largest quotas that can be set. Beyond them a value is a mistake, not
// a plan: a billion documents in one tenant collection, a pebibyte, or ten
// thousand members inside the one metadata document every instance holds in
// memory (about 2.5 MB, rewritten by every member change).
const (
	MaxQuotaDocuments    = 1_000_000_000
	MaxQuotaStorageBytes = 1 << 50
	MaxQuotaMembers      = 10_000
)

// DefaultQuotas are the defaults of the settings.
func DefaultQuotas() Quotas {
	return Quotas{Documents: DefaultQuotaDocuments, StorageBytes: DefaultQuotaStorageBytes, Members: DefaultQuotaMembers}
}

// Check returns an Invalid error naming every quota of q that is negative or
// above its maximum; field prefixes the names ("quotas.").
func (q Quotas) Check(field string) error {
	var fe fieldErrors
	checkQuota(&fe, field+QuotaDocuments, q.Documents, MaxQuotaDocuments)
	checkQuota(&fe, field+QuotaStorageBytes, q.StorageBytes, MaxQuotaStorageBytes)
	checkQuota(&fe, field+QuotaMembers, q.Members, MaxQuotaMembers)
	return fe.err()
}

func checkQuota(fe *fieldErrors, field string, v, max int64) {
	if v < 0 || v > max {
		fe.add(field, fmt.Sprintf("must be from 0 to %d", max))
	}
}

// QuotaOverrides are the quotas the operator set for one organization;
// nil ones are the service's defaults, so that changing a default reaches
// every organization nobody capped by hand.
type QuotaOverrides struct {
	Documents    *int64
	StorageBytes *int64
	Members      *int64
}

// EffectiveQuotas returns o's quotas: its overrides over the defaults def.
func EffectiveQuotas(o *Organization, def Quotas) Quotas {
	q := def
	if v := o.Limits.Documents; v != nil {
		q.Documents = *v
	}
	if v := o.Limits.StorageBytes; v != nil {
		q.StorageBytes = *v
	}
	if v := o.Limits.Members; v != nil {
		q.Members = *v
	}
	return q
}

// Usage is an amount of documents and of their stored bytes: what an
// organization uses, or a change of it (negative parts free).
type Usage struct {
	Documents    int64
	StorageBytes int64
}

// Exceeds returns the QuotaExceeded error of the first quota of q that
// used plus the growing parts of d would pass, or nil. A change that
// shrinks usage never exceeds: an organization over a quota the operator
// lowered may still delete and shrink.
func (used Usage) Exceeds(d Usage, q Quotas) error {
	if d.Documents > 0 && used.Documents+d.Documents > q.Documents {
		return errs.OverQuota(QuotaDocuments, q.Documents, used.Documents)
	}
	if d.StorageBytes > 0 && used.StorageBytes+d.StorageBytes > q.StorageBytes {
		return errs.OverQuota(QuotaStorageBytes, q.StorageBytes, used.StorageBytes)
	}
	return nil
}

// CheckSuspended returns errs.Suspended when the operator has suspended o:
// the one check that keeps its members from logging in and its tokens from
// any route, on every instance once its directory shows the suspension.
func CheckSuspended(o *Organization) error {
	if o.Suspended {
		return errs.Errorf(errs.Suspended, "the organization %q is suspended; its members cannot use the service until it is reactivated", o.Name)
	}
	return nil
}

// Bounds of the operator's metadata of an organization: it lives in the
// metadata document every instance holds in memory, so it stays small.
const (
	MaxMetadataKeys       = 32
	MaxMetadataKeyBytes   = 64
	MaxMetadataValueBytes = 256
)

// CheckMetadata returns an Invalid error naming every key of m that breaks
// the bounds: at most MaxMetadataKeys keys of 1–64 bytes of [A-Za-z0-9_.-],
// each a UTF-8 string of at most 256 bytes.
func CheckMetadata(m map[string]string) error {
	var fe fieldErrors
	if len(m) > MaxMetadataKeys {
		fe.add("metadata", fmt.Sprintf("must have at most %d keys", MaxMetadataKeys))
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		if !validMetadataKey(k) {
			fe.add("metadata", fmt.Sprintf("key %q must be 1 to %d characters of A-Z a-z 0-9 _ . -", k, MaxMetadataKeyBytes))
		}
		if len(v) > MaxMetadataValueBytes || !utf8.ValidString(v) {
			fe.add("metadata."+k, fmt.Sprintf("must be a UTF-8 string of at most %d bytes", MaxMetadataValueBytes))
		}
	}
	return fe.err()
}

func validMetadataKey(k string) bool {
	if k == "" || len(k) > MaxMetadataKeyBytes {
		return false
	}
	for _, c := range []byte(k) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// UsageLedger keeps each organization's document count and stored bytes
// (usage.Ledger is one). Writes of documents reserve and free in it as they
// go; the service starts, recounts and forgets it.
type UsageLedger interface {
	// Init starts orgID's count at zero: a new, empty organization.
	Init(ctx context.Context, orgID string) error
	// Current returns orgID's count; errs.NotFound when none is kept (an
	// organization from before quotas, which is then recounted).
	Current(ctx context.Context, orgID string) (Usage, error)
	// All returns the count of every organization that has one.
	All(ctx context.Context) (map[string]Usage, error)
	// Rebase sets orgID's count to u, a recount's result; no write of its
	// documents may run meanwhile.
	Rebase(ctx context.Context, orgID string, u Usage) error
	// Forget removes orgID's count and its marks of drift.
	Forget(ctx context.Context, orgID string) error
	// Drifted lists the organizations whose count may be off: a writer
	// died or lost the database in the middle of a write, or a write's
	// outcome is unknown.
	Drifted(ctx context.Context) ([]string, error)
	// Recounted clears orgID's marks of drift made before since, when a
	// recount that started at since has rebased its count.
	Recounted(ctx context.Context, orgID string, since time.Time) error
}

// Counter measures a tenant collection as the usage counts it: its
// documents and their stored size. The documents service is one.
type Counter interface {
	Measure(ctx context.Context, coll string) (Usage, error)
}

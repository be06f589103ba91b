// Package document is the tenant documents domain: the Document type, the
// rules a document's id and body must follow, RFC 7396 merge patches, and
// the Service that reads and writes an organization's documents in the one
// collection its metadata names — never a collection derived from client
// input — while keeping writes out of a collection that a rename or delete
// is about to move or drop.
package document

import (
	"fmt"
	"time"

	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/org"
)

// Document is one document of an organization, as stored in its tenant
// collection ({_id, data, version, created_at, updated_at}) and as the API
// shows it.
type Document struct {
	ID        string
	Data      Object
	Version   int64 // 1 on creation, +1 on every successful write
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Limits of documents and their ids.
const (
	MaxIDLength = 128
	// MaxDepth is how deeply objects and arrays may nest, the document's
	// data object counting as 1.
	MaxDepth = 32
	// DefaultMaxBytes is the default size limit of a document's JSON.
	DefaultMaxBytes = 256 << 10
)

// ValidID reports whether id may name a document: 1–128 characters of
// [A-Za-z0-9._~-], and neither "." nor "..", which would not survive in a
// URL path.
func ValidID(id string) bool {
	if id == "" || len(id) > MaxIDLength || id == "." || id == ".." {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '~' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// idRule is the message of an invalid id.
const idRule = "must be 1 to 128 characters of A-Z a-z 0-9 . _ ~ - (and not . or ..)"

func invalidID(field string) error {
	return &errs.Error{Kind: errs.Invalid, Message: "the document id is invalid",
		Fields: []errs.FieldError{{Field: field, Message: idRule}}}
}

// Match is an If-Match precondition: the versions a write may replace.
// The zero Match is no precondition.
type Match struct {
	set      bool
	any      bool
	versions []int64
}

// MatchAny is If-Match: *, which any existing document satisfies.
func MatchAny() Match { return Match{set: true, any: true} }

// MatchVersions is If-Match with the given versions.
func MatchVersions(v ...int64) Match { return Match{set: true, versions: v} }

// Set reports whether m is a precondition at all.
func (m Match) Set() bool { return m.set }

// Matches reports whether a document at version v satisfies m.
func (m Match) Matches(v int64) bool {
	if !m.set || m.any {
		return true
	}
	for _, w := range m.versions {
		if w == v {
			return true
		}
	}
	return false
}

func preconditionFailed() error {
	return errs.Errorf(errs.Precondition, "the document has changed: its version does not match If-Match")
}

func notFound() error { return errs.Errorf(errs.NotFound, "document not found") }

func busy() error {
	return errs.Errorf(errs.Busy, "another operation on this organization is in progress; retry shortly")
}

// Config tunes a Service. Zero values take the defaults.
type Config struct {
	// MaxBytes caps a document's JSON (DOCUMENT_MAX_BYTES).
	MaxBytes int
	// WriterTTL is how long a writer registration lives unless renewed;
	// a rename or delete waits at most about this long for a crashed
	// writer (default 10s).
	WriterTTL time.Duration
	// ClaimTTL is how old a version claim must be before a writer may take
	// it over from a holder that never finished (default 30s). A holder
	// gives up its own write after a third of it.
	ClaimTTL time.Duration
	// ImportBatch is how many documents an import inserts at a time.
	ImportBatch int
	// Quotas are the default quotas of every organization; nil takes
	// org.DefaultQuotas.
	Quotas *org.Quotas
}

func (c Config) quotas() org.Quotas {
	if c.Quotas == nil {
		return org.DefaultQuotas()
	}
	return *c.Quotas
}

func (c Config) withDefaults() Config {
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.WriterTTL <= 0 {
		c.WriterTTL = 10 * time.Second
	}
	if c.ClaimTTL <= 0 {
		c.ClaimTTL = 30 * time.Second
	}
	if c.ImportBatch <= 0 {
		c.ImportBatch = 500
	}
	return c
}

func tooLarge(max int) error {
	return errs.Errorf(errs.TooLarge, "the document exceeds %d bytes", max)
}

func fieldErr(field, format string, args ...any) error {
	return &errs.Error{Kind: errs.Invalid, Message: "the document is invalid",
		Fields: []errs.FieldError{{Field: field, Message: fmt.Sprintf(format, args...)}}}
}

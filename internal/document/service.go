package document

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"time"

	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/org"
)

// Service reads and writes the documents of the principal's organization.
// It is safe for concurrent use. Close it to give up its writer
// registrations at shutdown.
type Service struct {
	store    Store
	versions VersionClaims
	dir      Directory
	cfg      Config
	log      *slog.Logger
	reg      *registry
	quota    Quota
}

var _ org.Writers = (*Service)(nil)

// Deps are what a Service works with.
type Deps struct {
	Store         Store
	Versions      VersionClaims
	Registrations Registrations
	Directory     Directory
	// Quota counts what the writes add and free; nil counts nothing.
	Quota Quota
}

// NewService returns a Service over deps' storage that resolves
// organizations in deps.Directory.
func NewService(deps Deps, cfg Config, log *slog.Logger) *Service {
	cfg = cfg.withDefaults()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return &Service{
		store: deps.Store, versions: deps.Versions, dir: deps.Directory, cfg: cfg, log: log, quota: deps.quota(),
		reg: newRegistry(deps.Registrations, deps.Directory, log, cfg.WriterTTL, "docs-"+hex.EncodeToString(b)),
	}
}

// MaxBytes is the size limit of a document's JSON.
func (s *Service) MaxBytes() int { return s.cfg.MaxBytes }

// Close stops renewing this process's writer registrations and deletes
// them; writes after it fail with errs.Unavailable.
func (s *Service) Close(ctx context.Context) { s.reg.close(ctx) }

// Quiesce returns once no process can write to orgID's collection any
// more: it is called by a rename or delete after writing its intent, and
// waits for the writes that resolved the collection before (see
// writers.go). errs.Busy when they do not end within twice the writer TTL.
func (s *Service) Quiesce(ctx context.Context, orgID string) error {
	return s.reg.quiesce(ctx, orgID, s.reg.margin(), 2*s.cfg.WriterTTL)
}

// resolve returns the principal's organization as it stands.
// errs.Unauthorized when it is gone or no longer active (being deleted).
func (s *Service) resolve(p org.Principal) (*org.Organization, error) {
	o, err := active(s.dir, p.OrgID)
	if errs.Is(err, errs.NotFound) {
		return nil, errs.Errorf(errs.Unauthorized, "the token's organization no longer exists")
	}
	return o, err
}

// active returns the organization id of dir when it is active, and
// errs.NotFound for one that is gone or not active.
func active(dir Directory, id string) (*org.Organization, error) {
	o, err := dir.ByID(id)
	if err != nil {
		return nil, err
	}
	if o.State != org.StateActive {
		return nil, errs.Errorf(errs.NotFound, "organization not found")
	}
	return o, nil
}

// write runs fn on the principal's collection under this process's writer
// registration, with the organization resolved after the registration is
// in place, and on a context that ends before the registration can expire.
// errs.Busy while the organization has a rename or delete in progress.
func (s *Service) write(ctx context.Context, p org.Principal, fn func(ctx context.Context, coll string) error) error {
	h, deadline, err := s.reg.acquire(ctx, p.OrgID)
	if err != nil {
		return err
	}
	intent := false
	defer func() { s.reg.release(h, intent) }()
	o, err := s.resolve(p)
	if err != nil {
		intent = errs.Is(err, errs.Unauthorized)
		return err
	}
	if o.Pending != nil || o.State != org.StateActive {
		intent = true
		return busy()
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	err = fn(ctx, o.CollectionName)
	if uncertain(err) {
		s.reg.linger(h)
	}
	return err
}

// uncertain reports whether a write that failed with err may still land:
// it got no answer (a timeout, a lost connection), and the server may be
// carrying it out all the same.
func uncertain(err error) bool {
	if err == nil {
		return false
	}
	k := errs.KindOf(err)
	return k == errs.Unavailable || k == errs.Internal ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

// read runs fn on the principal's collection; when fn finds nothing there,
// it tries where the documents may have moved: the target of a rename in
// progress, then the collection the organization names now, resolved
// afresh. A read never fails because a rename moved the data under it.
func (s *Service) read(ctx context.Context, p org.Principal, fn func(coll string) (found bool, err error)) error {
	o, err := s.resolve(p)
	if err != nil {
		return err
	}
	found, err := fn(o.CollectionName)
	if err != nil || found {
		return err
	}
	tried := o.CollectionName
	if o.Pending != nil && o.Pending.Op == org.OpRename && o.Pending.Target != "" && o.Pending.Target != tried {
		tried = o.Pending.Target
		if found, err := fn(tried); err != nil || found {
			return err
		}
	}
	o2, err := s.resolve(p)
	if err != nil {
		return err
	}
	if o2.CollectionName != o.CollectionName && o2.CollectionName != tried {
		_, err = fn(o2.CollectionName)
	}
	return err
}

func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

func (s *Service) checkSize(data Object) error {
	if n := len(data.AppendJSON(nil)); n > s.cfg.MaxBytes {
		return tooLarge(s.cfg.MaxBytes)
	}
	return nil
}

// Create stores data as a new document of the principal's organization,
// at version 1. A top-level "id" in data chooses the document's id and is
// not kept in its data; without one the id is a fresh ObjectID in hex.
// Errors: errs.Invalid (bad id), errs.TooLarge, errs.QuotaExceeded (the
// documents or storage quota is reached), errs.Conflict (the id exists
// in this organization), errs.Busy (rename or delete in progress),
// errs.Unauthorized (organization gone), errs.Unavailable.
func (s *Service) Create(ctx context.Context, p org.Principal, data Object) (*Document, error) {
	data, id, given, err := takeID(data)
	if err != nil {
		return nil, err
	}
	if !given {
		id = s.store.NewID()
	}
	if err := s.checkSize(data); err != nil {
		return nil, err
	}
	t := now()
	d := &Document{ID: id, Data: data, Version: 1, CreatedAt: t, UpdatedAt: t}
	err = s.write(ctx, p, func(ctx context.Context, coll string) error {
		_, err := s.accounted(ctx, p.OrgID, usageOf(d), func() (bool, error) {
			err := s.store.Insert(ctx, coll, d)
			return err == nil, err
		})
		return err
	})
	if errs.Is(err, errs.Conflict) {
		return nil, errs.Errorf(errs.Conflict, "a document with this id already exists")
	}
	if err != nil {
		return nil, err
	}
	return d, nil
}

// Get returns the document id of the principal's organization; reads go
// on during a rename. Errors: errs.NotFound (none in this organization,
// whatever other organizations hold), errs.Unauthorized, errs.Unavailable.
func (s *Service) Get(ctx context.Context, p org.Principal, id string) (*Document, error) {
	if !ValidID(id) {
		return nil, notFound()
	}
	var d *Document
	err := s.read(ctx, p, func(coll string) (bool, error) {
		var err error
		d, err = s.store.Find(ctx, coll, id)
		if errs.Is(err, errs.NotFound) {
			return false, nil
		}
		return err == nil, err
	})
	if err != nil {
		return nil, err
	}
	if d == nil {
		return nil, notFound()
	}
	return d, nil
}

// MaxLimit and DefaultLimit bound a page of List.
const (
	MaxLimit     = 1000
	DefaultLimit = 100
)

// Page is one page of a list: Next is the id to continue after, or "" at the end.
type Page struct {
	Items []*Document
	Next  string
}

// List returns documents of the principal's organization in id order,
// after q.After, at most q.Limit (0: DefaultLimit), whose data equals every
// filter. A page goes on from the last id of the previous one, so paging
// is stable while documents are inserted: each document present
// throughout is listed exactly once. Errors: errs.Invalid (limit out of
// 1..MaxLimit, a filter on an unsafe field or with a non-scalar value),
// errs.Unauthorized, errs.Unavailable.
func (s *Service) List(ctx context.Context, p org.Principal, q Query) (Page, error) {
	if q.Limit == 0 {
		q.Limit = DefaultLimit
	}
	if q.Limit < 1 || q.Limit > MaxLimit {
		return Page{}, fieldErr("limit", "must be between 1 and %d", MaxLimit)
	}
	for _, f := range q.Filters {
		if !ValidKey(f.Field) {
			return Page{}, fieldErr("filter["+f.Field+"]", "must name a top-level field: not empty, no $ at the start, no . or NUL")
		}
		switch f.Value.(type) {
		case nil, bool, string, int64, float64:
		default:
			return Page{}, fieldErr("filter["+f.Field+"]", "must be a string, number, boolean or null")
		}
	}
	want := q
	want.Limit = q.Limit + 1 // one more tells whether there is a next page
	var docs []*Document
	err := s.read(ctx, p, func(coll string) (bool, error) {
		var err error
		docs, err = s.store.List(ctx, coll, want)
		return len(docs) > 0, err
	})
	if err != nil {
		return Page{}, err
	}
	page := Page{Items: docs}
	if len(docs) > q.Limit {
		page.Items = docs[:q.Limit]
		page.Next = docs[q.Limit-1].ID
	}
	return page, nil
}

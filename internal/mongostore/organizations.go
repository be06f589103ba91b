package mongostore

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/org"
)

// Collection names in the service's database.
const (
	OrganizationsCollection = "organizations"
	claimsCollection        = "claims"
	leasesCollection        = "leases"
)

// Organizations is the organizations collection: every organization's
// metadata, members and intents, the source of truth. It implements
// org.Metadata and the directory's reads.
type Organizations struct {
	coll *mongo.Collection
}

var _ org.Metadata = (*Organizations)(nil)

// ensureIndexes creates the unique indexes on slug and admin_email, a second
// line of defence behind the name claims. It creates one index per command
// (FerretDB v1 drops the connection when one createIndexes names several
// existing indexes).
func (s *Organizations) ensureIndexes(ctx context.Context) error {
	for _, field := range []string{"slug", "admin_email"} {
		_, err := s.coll.Indexes().CreateOne(ctx, mongo.IndexModel{
			Keys:    bson.D{{Key: field, Value: 1}},
			Options: options.Index().SetUnique(true).SetName(field + "_unique"),
		})
		if err != nil {
			return mapErr(err, "ensure index "+field)
		}
	}
	return nil
}

// NewID returns a fresh organization or member id: an ObjectID in hex.
func (s *Organizations) NewID() string { return bson.NewObjectID().Hex() }

// orgDoc is an organizations document.
type orgDoc struct {
	ID             bson.ObjectID     `bson:"_id"`
	Name           string            `bson:"organization_name"`
	Slug           string            `bson:"slug"`
	CollectionName string            `bson:"collection_name"`
	AdminEmail     string            `bson:"admin_email"`
	Members        []memberDoc       `bson:"members,omitempty"`
	PasswordHash   string            `bson:"password_hash,omitempty"` // written before members only
	TokenVersion   int64             `bson:"token_version,omitempty"`
	State          string            `bson:"state"`
	Pending        *pendingDoc       `bson:"pending,omitempty"`
	AuditPending   []eventDoc        `bson:"audit_pending,omitempty"`
	Suspended      bool              `bson:"suspended,omitempty"`
	Quotas         *quotasDoc        `bson:"quotas,omitempty"`
	Metadata       map[string]string `bson:"metadata,omitempty"`
	CreatedAt      time.Time         `bson:"created_at"`
	UpdatedAt      time.Time         `bson:"updated_at"`
}

// quotasDoc holds the quotas the operator set for an organization; an
// absent one is the service's default.
type quotasDoc struct {
	Documents    *int64 `bson:"documents,omitempty"`
	StorageBytes *int64 `bson:"storage_bytes,omitempty"`
	Members      *int64 `bson:"members,omitempty"`
}

func toQuotasDoc(q org.QuotaOverrides) *quotasDoc {
	if q.Documents == nil && q.StorageBytes == nil && q.Members == nil {
		return nil
	}
	return &quotasDoc{Documents: q.Documents, StorageBytes: q.StorageBytes, Members: q.Members}
}

// memberDoc is one member, inside its organization's document.
type memberDoc struct {
	ID           string    `bson:"id"`
	Email        string    `bson:"email"`
	PasswordHash string    `bson:"password_hash"`
	Role         string    `bson:"role"`
	TokenVersion int64     `bson:"token_version"`
	KeptSession  string    `bson:"kept_session,omitempty"`
	CreatedAt    time.Time `bson:"created_at"`
	UpdatedAt    time.Time `bson:"updated_at"`
}

func toMemberDocs(ms []org.Member) []memberDoc {
	out := make([]memberDoc, len(ms))
	for i, m := range ms {
		out[i] = memberDoc{ID: m.ID, Email: m.Email, PasswordHash: m.PasswordHash, Role: string(m.Role),
			TokenVersion: m.TokenVersion, KeptSession: m.KeptSession, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt}
	}
	return out
}

// pendingDoc is the intent of an unfinished operation.
type pendingDoc struct {
	Op              string     `bson:"op"`
	StartedAt       time.Time  `bson:"started_at"`
	FromSlug        string     `bson:"from_slug,omitempty"`
	ToSlug          string     `bson:"to_slug,omitempty"`
	ToName          string     `bson:"to_name,omitempty"`
	Source          string     `bson:"source,omitempty"`
	Target          string     `bson:"target,omitempty"`
	Copied          int64      `bson:"copied,omitempty"`
	MemberID        string     `bson:"member_id,omitempty"`
	FromEmail       string     `bson:"from_email,omitempty"`
	NewEmail        string     `bson:"new_email,omitempty"`
	NewPasswordHash string     `bson:"new_password_hash,omitempty"`
	SessionID       string     `bson:"session_id,omitempty"`
	Events          []eventDoc `bson:"events,omitempty"`
}

func toPendingDoc(p *org.Pending) *pendingDoc {
	if p == nil {
		return nil
	}
	return &pendingDoc{
		Op: string(p.Op), StartedAt: p.StartedAt, FromSlug: p.FromSlug, ToSlug: p.ToSlug, ToName: p.ToName,
		Source: p.Source, Target: p.Target, Copied: p.Copied, MemberID: p.MemberID,
		FromEmail: p.FromEmail, NewEmail: p.NewEmail, NewPasswordHash: p.NewPasswordHash, SessionID: p.SessionID,
		Events: toEventDocs(p.Events),
	}
}

func (d *orgDoc) organization() *org.Organization {
	o := &org.Organization{
		ID: d.ID.Hex(), Name: d.Name, Slug: d.Slug, CollectionName: d.CollectionName,
		AdminEmail: d.AdminEmail, PasswordHash: d.PasswordHash, TokenVersion: d.TokenVersion,
		State: org.State(d.State), CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC(),
		Suspended: d.Suspended, Metadata: d.Metadata,
	}
	if q := d.Quotas; q != nil {
		o.Limits = org.QuotaOverrides{Documents: q.Documents, StorageBytes: q.StorageBytes, Members: q.Members}
	}
	if p := d.Pending; p != nil {
		o.Pending = &org.Pending{
			Op: org.Op(p.Op), StartedAt: p.StartedAt.UTC(), FromSlug: p.FromSlug, ToSlug: p.ToSlug, ToName: p.ToName,
			Source: p.Source, Target: p.Target, Copied: p.Copied, MemberID: p.MemberID,
			FromEmail: p.FromEmail, NewEmail: p.NewEmail, NewPasswordHash: p.NewPasswordHash, SessionID: p.SessionID,
			Events: fromEventDocs(p.Events),
		}
	}
	o.AuditPending = fromEventDocs(d.AuditPending)
	for _, m := range d.Members {
		o.Members = append(o.Members, org.Member{ID: m.ID, Email: m.Email, PasswordHash: m.PasswordHash,
			Role: org.Role(m.Role), TokenVersion: m.TokenVersion, KeptSession: m.KeptSession,
			CreatedAt: m.CreatedAt.UTC(), UpdatedAt: m.UpdatedAt.UTC()})
	}
	org.Migrate(o) // written before members: its admin is its owner
	return o
}

// Insert stores o; errs.Conflict when its slug or email is taken.
func (s *Organizations) Insert(ctx context.Context, o *org.Organization) error {
	id, err := bson.ObjectIDFromHex(o.ID)
	if err != nil {
		return errs.Wrap(errs.Internal, err, "invalid organization id")
	}
	_, err = s.coll.InsertOne(ctx, orgDoc{
		ID: id, Name: o.Name, Slug: o.Slug, CollectionName: o.CollectionName,
		AdminEmail: o.AdminEmail, Members: toMemberDocs(o.Members), PasswordHash: o.PasswordHash, TokenVersion: o.TokenVersion,
		State: string(o.State), Pending: toPendingDoc(o.Pending), AuditPending: toEventDocs(o.AuditPending),
		Suspended: o.Suspended, Quotas: toQuotasDoc(o.Limits), Metadata: o.Metadata,
		CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt,
	})
	return mapErr(err, "insert organization")
}

func (s *Organizations) findOne(ctx context.Context, filter bson.D) (*org.Organization, error) {
	var d orgDoc
	if err := decodeOne(s.coll.FindOne(ctx, filter), &d); err != nil {
		return nil, mapErr(err, "find organization")
	}
	return d.organization(), nil
}

// ByID returns the organization with id; errs.NotFound when there is none.
func (s *Organizations) ByID(ctx context.Context, id string) (*org.Organization, error) {
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		return nil, errs.Errorf(errs.NotFound, "organization not found")
	}
	return s.findOne(ctx, bson.D{{Key: "_id", Value: oid}})
}

// ByIDs returns the organizations of ids that exist, in one query.
func (s *Organizations) ByIDs(ctx context.Context, ids []string) ([]*org.Organization, error) {
	oids := make(bson.A, 0, len(ids))
	for _, id := range ids {
		if oid, err := bson.ObjectIDFromHex(id); err == nil {
			oids = append(oids, oid)
		}
	}
	return s.findAll(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: oids}}}}, "organizations by id")
}

// Unsettled lists organizations that are not active, have a pending
// operation or pending audit events.
func (s *Organizations) Unsettled(ctx context.Context) ([]*org.Organization, error) {
	return s.findAll(ctx, bson.D{{Key: "$or", Value: bson.A{
		bson.D{{Key: "state", Value: bson.D{{Key: "$ne", Value: string(org.StateActive)}}}},
		bson.D{{Key: "pending", Value: bson.D{{Key: "$exists", Value: true}}}},
		bson.D{{Key: "audit_pending", Value: bson.D{{Key: "$exists", Value: true}}}},
	}}}, "unsettled")
}

// All lists every organization.
func (s *Organizations) All(ctx context.Context) ([]*org.Organization, error) {
	return s.findAll(ctx, bson.D{}, "organizations")
}

func (s *Organizations) findAll(ctx context.Context, filter bson.D, what string) ([]*org.Organization, error) {
	cur, err := s.coll.Find(ctx, filter)
	if err != nil {
		return nil, mapErr(err, "find "+what)
	}
	docs, err := decodeAll[orgDoc](ctx, cur)
	if err != nil {
		return nil, mapErr(err, "read "+what)
	}
	out := make([]*org.Organization, len(docs))
	for i := range docs {
		out[i] = docs[i].organization()
	}
	return out, nil
}

// CollectionsInUse lists every tenant collection the metadata refers to.
func (s *Organizations) CollectionsInUse(ctx context.Context) (map[string]bool, error) {
	cur, err := s.coll.Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{
		{Key: "collection_name", Value: 1}, {Key: "pending", Value: 1},
	}))
	if err != nil {
		return nil, mapErr(err, "find collections in use")
	}
	docs, err := decodeAll[struct {
		CollectionName string      `bson:"collection_name"`
		Pending        *pendingDoc `bson:"pending"`
	}](ctx, cur)
	if err != nil {
		return nil, mapErr(err, "read collections in use")
	}
	used := make(map[string]bool, len(docs))
	for _, d := range docs {
		used[d.CollectionName] = true
		if d.Pending != nil {
			if d.Pending.Source != "" {
				used[d.Pending.Source] = true
			}
			if d.Pending.Target != "" {
				used[d.Pending.Target] = true
			}
		}
	}
	return used, nil
}

// Update writes c; errs.NotFound when the organization is gone.
func (s *Organizations) Update(ctx context.Context, id string, c org.Changes) error {
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		return errs.Errorf(errs.NotFound, "organization not found")
	}
	var set, unset bson.D
	add := func(key string, v any) { set = append(set, bson.E{Key: key, Value: v}) }
	if !c.UpdatedAt.IsZero() {
		add("updated_at", c.UpdatedAt)
	}
	if c.Name != nil {
		add("organization_name", *c.Name)
	}
	if c.Slug != nil {
		add("slug", *c.Slug)
	}
	if c.CollectionName != nil {
		add("collection_name", *c.CollectionName)
	}
	if c.AdminEmail != nil {
		add("admin_email", *c.AdminEmail)
	}
	if c.PasswordHash != nil {
		add("password_hash", *c.PasswordHash)
	}
	if c.TokenVersion != nil {
		add("token_version", *c.TokenVersion)
	}
	if c.State != nil {
		add("state", string(*c.State))
	}
	if c.SetMembers {
		add("members", toMemberDocs(c.Members))
	}
	if c.Suspended != nil && *c.Suspended {
		add("suspended", true)
	}
	if c.Suspended != nil && !*c.Suspended {
		unset = append(unset, bson.E{Key: "suspended", Value: ""})
	}
	if c.Limits != nil && toQuotasDoc(*c.Limits) != nil {
		add("quotas", toQuotasDoc(*c.Limits))
	}
	if c.Limits != nil && toQuotasDoc(*c.Limits) == nil {
		unset = append(unset, bson.E{Key: "quotas", Value: ""})
	}
	if c.SetMetadata && len(c.Metadata) > 0 {
		add("metadata", c.Metadata)
	}
	if c.SetMetadata && len(c.Metadata) == 0 {
		unset = append(unset, bson.E{Key: "metadata", Value: ""})
	}
	if c.SetPending && c.Pending != nil {
		add("pending", toPendingDoc(c.Pending))
	}
	if c.SetPending && c.Pending == nil {
		unset = append(unset, bson.E{Key: "pending", Value: ""})
	}
	if c.SetAuditPending && len(c.AuditPending) > 0 {
		add("audit_pending", toEventDocs(c.AuditPending))
	}
	if c.SetAuditPending && len(c.AuditPending) == 0 {
		unset = append(unset, bson.E{Key: "audit_pending", Value: ""})
	}
	update := bson.D{}
	if len(set) > 0 {
		update = append(update, bson.E{Key: "$set", Value: set})
	}
	if len(unset) > 0 {
		update = append(update, bson.E{Key: "$unset", Value: unset})
	}
	res, err := s.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: oid}}, update)
	if err != nil {
		return mapErr(err, "update organization")
	}
	if res.MatchedCount == 0 {
		return errs.Errorf(errs.NotFound, "organization not found")
	}
	return nil
}

// Delete removes the metadata of id; a missing one is not an error.
func (s *Organizations) Delete(ctx context.Context, id string) error {
	oid, err := bson.ObjectIDFromHex(id)
	if err != nil {
		return nil
	}
	_, err = s.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: oid}})
	return mapErr(err, "delete organization")
}

// Unmigrated lists the ids of organizations written before members
// existed: no members field stored.
func (s *Organizations) Unmigrated(ctx context.Context) ([]string, error) {
	cur, err := s.coll.Find(ctx, bson.D{{Key: "members", Value: bson.D{{Key: "$exists", Value: false}}}},
		options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, mapErr(err, "find unmigrated organizations")
	}
	docs, err := decodeAll[struct {
		ID bson.ObjectID `bson:"_id"`
	}](ctx, cur)
	if err != nil {
		return nil, mapErr(err, "read unmigrated organizations")
	}
	ids := make([]string, len(docs))
	for i, d := range docs {
		ids[i] = d.ID.Hex()
	}
	return ids, nil
}

package main

import (
	"context"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgservice/orgservice/internal/apiclient"
	"github.com/orgservice/orgservice/internal/mongostore"
)

// template is everything one organization created through the API left in
// a database that held nothing else: its metadata documents, collection by
// collection (the organizations document, its name and email claims, …) and
// the names of its tenant collections. Cloning it with another name, email
// and id gives documents identical to the ones the service writes, whatever
// its schema, at a fraction of the cost of creating through the API — which
// on the embedded database slows down as the organizations grow, because
// every lookup there scans the collection.
type template struct {
	name, slug, email string
	id                bson.ObjectID
	docs              map[string][]bson.D // collection → documents
	tenants           []string
}

// snapshot reads the template left by the one organization o in db.
func snapshot(ctx context.Context, db *mongo.Database, o apiclient.Organization, name, email string) (*template, error) {
	id, err := bson.ObjectIDFromHex(o.ID)
	if err != nil {
		return nil, fmt.Errorf("template: organization id %q is not an ObjectID", o.ID)
	}
	slug, _ := strings.CutPrefix(o.CollectionName, "org_")
	t := &template{name: name, slug: slug, email: email, id: id, docs: map[string][]bson.D{}}
	names, err := db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if strings.HasPrefix(n, "org_") {
			t.tenants = append(t.tenants, n)
			continue
		}
		if n == "changes" || n == "leases" {
			continue // an operation's traces, not the organization: clones are announced afresh
		}
		cur, err := db.Collection(n).Find(ctx, bson.D{})
		if err != nil {
			return nil, err
		}
		var docs []bson.D
		if err := cur.All(ctx, &docs); err != nil {
			return nil, err
		}
		if len(docs) > 0 {
			t.docs[n] = docs
		}
	}
	if len(t.docs["organizations"]) != 1 || len(t.tenants) != 1 {
		return nil, fmt.Errorf("template: the database holds more than one organization")
	}
	return t, nil
}

// clone returns the template's documents and tenant collections for another
// organization: every occurrence of the template's slug, email and id
// replaced by the clone's, its id a fresh ObjectID.
func (t *template) clone(slug, email string) (bson.ObjectID, map[string][]bson.D, []string) {
	id := bson.NewObjectID()
	r := strings.NewReplacer(t.email, email, t.slug, slug, t.id.Hex(), id.Hex())
	docs := make(map[string][]bson.D, len(t.docs))
	for coll, ds := range t.docs {
		for _, d := range ds {
			docs[coll] = append(docs[coll], rewrite(d, r, t.id, id).(bson.D))
		}
	}
	tenants := make([]string, len(t.tenants))
	for i, n := range t.tenants {
		tenants[i] = r.Replace(n)
	}
	return id, docs, tenants
}

func rewrite(v any, r *strings.Replacer, from, to bson.ObjectID) any {
	switch x := v.(type) {
	case string:
		return r.Replace(x)
	case bson.ObjectID:
		if x == from {
			return to
		}
		return x
	case bson.D:
		out := make(bson.D, len(x))
		for i, e := range x {
			out[i] = bson.E{Key: e.Key, Value: rewrite(e.Value, r, from, to)}
		}
		return out
	case bson.A:
		out := make(bson.A, len(x))
		for i, e := range x {
			out[i] = rewrite(e, r, from, to)
		}
		return out
	default:
		return v
	}
}

// seedClones adds organizations from..to-1 of set by cloning tmpl straight
// into db: metadata in batches, then one createCollection per tenant, as
// the service does.
func (h *harness) seedClones(ctx context.Context, db *mongo.Database, tmpl *template, set string, from, to int) ([]poolOrg, error) {
	out := make([]poolOrg, 0, to-from)
	bar := h.progress(int64(to-from), "orgs", fmt.Sprintf("seeding %d %s organizations (cloned metadata)", to-from, set))
	const batch = 500
	for start := from; start < to; start += batch {
		docs := map[string][]any{}
		var tenants, ids []string
		for i := start; i < min(start+batch, to); i++ {
			name, email := h.orgName(set, i), h.orgEmail(set, i)
			id, ds, ts := tmpl.clone(name, email)
			ids = append(ids, id.Hex())
			for coll, d := range ds {
				for _, x := range d {
					docs[coll] = append(docs[coll], x)
				}
			}
			tenants = append(tenants, ts...)
			out = append(out, h.poolOrg(name, name, email))
		}
		for coll, d := range docs {
			if _, err := db.Collection(coll).InsertMany(ctx, d, options.InsertMany().SetOrdered(false)); err != nil {
				return nil, fmt.Errorf("seed %s: %w", coll, err)
			}
		}
		for k, n := range tenants {
			if err := db.CreateCollection(ctx, n); err != nil {
				return nil, fmt.Errorf("seed %s: %w", n, err)
			}
			if k%len(tmpl.tenants) == 0 {
				bar.add(1)
			}
		}
		// Written behind the services' backs: announce them in the change
		// log, as the service announces its own writes, so that running
		// services' directories read them.
		log := mongostore.Open(db, 0).Changes
		for _, id := range ids {
			if err := log.Append(ctx, id); err != nil {
				return nil, fmt.Errorf("seed changes: %w", err)
			}
		}
	}
	bar.done()
	return out, nil
}

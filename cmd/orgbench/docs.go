package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgservice/orgservice/internal/apiclient"
)

// docScenarios measures the tenant documents API, each scenario beside the
// driver operation that bounds it, at the same concurrency, taking turns:
//
//	doc-get     GET /api/v1/org/documents/{id}      FindOne({_id}) on the tenant collection
//	doc-list    GET …/documents?after=…&limit=100   find({_id > after}) sorted by _id, limit 100
//	export      GET /api/v1/org/export (-doc-pool)  a cursor over the whole collection
//	doc-insert  POST /api/v1/org/documents          insertOne of the same stored document
//
// Then export-rss-D exports collections of each D of -export-docs, one at
// a time, for the service's peak memory: an export streams, so its memory
// must not grow with D (export_rss_growth_mb).
func (h *harness) docScenarios(ctx context.Context) error {
	if h.mongo == nil {
		h.rep.notes = append(h.rep.notes, "doc-*, export: not measured (documents are seeded through the database; give -mongo)")
		for _, k := range docRatios {
			h.rep.setRatio(k, 0, 0, 0.8, true)
		}
		return nil
	}
	t, err := h.newTarget(ctx, "svc-docs", "orgbench_docs", true, "DATA_RATE_PER_MIN=0")
	if err != nil {
		return err
	}
	defer t.stop()
	tenant, err := h.docTenant(ctx, t, "docs", 0)
	if err != nil {
		return err
	}
	n := h.cfg.DocPool
	ids, err := h.seedAPIDocs(ctx, t.db.Collection(tenant.coll), "p", n)
	if err != nil {
		return err
	}
	coll := t.db.Collection(tenant.coll)
	order := rand.New(rand.NewPCG(uint64(n), 2)).Perm(n)
	pick := func(i int64) string { return ids[order[i%int64(n)]] }
	gets := make([]apiclient.Request, n)
	lists := make([]apiclient.Request, n)
	for i, id := range ids {
		gets[i] = apiclient.GetDocument(tenant.token, id)
		lists[i] = apiclient.ListDocuments(tenant.token,
			url.Values{"limit": {"100"}, "after": {base64.RawURLEncoding.EncodeToString([]byte(id))}})
	}
	export := apiclient.Export(tenant.token)
	clients, warm, d, rounds := h.cfg.Clients, h.cfg.Warmup, h.cfg.Duration, h.cfg.Rounds

	rows, err := h.measure(ctx, rounds, warm, d,
		phase{name: "doc-get-ceiling", clients: clients, seq: &sequence{}, fn: func(ctx context.Context, _ int, i int64) error {
			return coll.FindOne(ctx, bson.D{{Key: "_id", Value: pick(i)}}).Err()
		}},
		phase{name: "doc-get", svcs: t.svcs, clients: clients, seq: &sequence{}, fn: func(ctx context.Context, _ int, i int64) error {
			return t.api().Send(ctx, gets[order[i%int64(n)]], http.StatusOK)
		}})
	if err != nil {
		return err
	}
	h.pair("doc_get_vs_ceiling", rows, n)

	rows, err = h.measure(ctx, rounds, warm, d,
		phase{name: "doc-list-ceiling", clients: clients, seq: &sequence{}, fn: func(ctx context.Context, _ int, i int64) error {
			cur, err := coll.Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: pick(i)}}}},
				options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(101))
			if err != nil {
				return err
			}
			return drain(ctx, cur)
		}},
		phase{name: "doc-list", svcs: t.svcs, clients: clients, seq: &sequence{}, fn: func(ctx context.Context, _ int, i int64) error {
			return t.api().Send(ctx, lists[order[i%int64(n)]], http.StatusOK)
		}})
	if err != nil {
		return err
	}
	h.pair("", rows, n)

	exporters := min(clients, 4) // each reads the whole collection
	rows, err = h.measure(ctx, rounds, warm, d,
		phase{name: "export-ceiling", clients: exporters, seq: &sequence{}, fn: func(ctx context.Context, _ int, _ int64) error {
			cur, err := coll.Find(ctx, bson.D{}, options.Find().SetBatchSize(500))
			if err != nil {
				return err
			}
			return drain(ctx, cur)
		}},
		phase{name: "export", svcs: t.svcs, clients: exporters, seq: &sequence{}, fn: func(ctx context.Context, _ int, _ int64) error {
			return t.api().Send(ctx, export, http.StatusOK)
		}})
	if err != nil {
		return err
	}
	h.pair("export_vs_ceiling", rows, n)

	now := time.Now().UTC().Truncate(time.Millisecond)
	rows, err = h.measure(ctx, rounds, warm, d,
		phase{name: "doc-insert-ceiling", clients: clients, seq: &sequence{}, fn: func(ctx context.Context, _ int, i int64) error {
			_, err := coll.InsertOne(ctx, storedDoc(fmt.Sprintf("c-%09d", i), int(i), now))
			return err
		}},
		phase{name: "doc-insert", svcs: t.svcs, clients: clients, seq: &sequence{}, fn: func(ctx context.Context, _ int, i int64) error {
			return t.api().Send(ctx, apiclient.CreateDocument(tenant.token, docBody(fmt.Sprintf("s-%09d", i), int(i))), http.StatusCreated)
		}})
	if err != nil {
		return err
	}
	h.pair("doc_insert_vs_ceiling", rows, n)
	return h.exportMemory(ctx, t)
}

// docRatios are the documents scenarios' ratios, each against a ceiling.
var docRatios = []string{"doc_get_vs_ceiling", "doc_insert_vs_ceiling", "export_vs_ceiling"}

// pair annotates a ceiling and its scenario and, when key is set, records
// their ratio (target ≥ 0.8).
func (h *harness) pair(key string, rows []row, docs int) {
	ceiling := h.annotate(rows[0].Name, 0, docs, "")
	svc := h.annotate(rows[1].Name, 0, docs, rows[0].Name)
	if key != "" {
		h.rep.setRatio(key, svc.OpsPerSec, ceiling.OpsPerSec, 0.8, true)
	}
}

// exportMemory exports an organization of each D of -export-docs, one
// export at a time, and records how much more the service's peak memory is
// at the largest D than at the smallest (target ≤ 16 MB).
func (h *harness) exportMemory(ctx context.Context, t *target) error {
	sizes := h.cfg.ExportDocs
	if len(sizes) < 2 {
		return nil
	}
	var peaks []row
	for k, d := range sizes {
		tenant, err := h.docTenant(ctx, t, "export", k)
		if err != nil {
			return err
		}
		if _, err := h.seedAPIDocs(ctx, t.db.Collection(tenant.coll), "e", d); err != nil {
			return err
		}
		name := fmt.Sprintf("export-rss-%d", d)
		export := apiclient.Export(tenant.token)
		rows, err := h.measure(ctx, 1, 0, h.cfg.Duration, phase{name: name, svcs: t.svcs, clients: 1, maxOps: 3, seq: &sequence{},
			fn: func(ctx context.Context, _ int, _ int64) error {
				return t.api().Send(ctx, export, http.StatusOK)
			}})
		if err != nil {
			return err
		}
		peaks = append(peaks, h.annotate(rows[0].Name, 0, d, ""))
	}
	first, last := peaks[0], peaks[len(peaks)-1]
	if first.PeakRSSMB == nil || last.PeakRSSMB == nil {
		h.rep.notes = append(h.rep.notes, "export_rss_growth_mb: not measured (no service process to read)")
		return nil
	}
	h.rep.setValue("export_rss_growth_mb", round(*last.PeakRSSMB-*first.PeakRSSMB, 1), 16, false)
	return nil
}

// docTenant is an organization of the documents scenarios and its token.
type docTenant struct {
	coll, token string
}

func (h *harness) docTenant(ctx context.Context, t *target, set string, i int) (docTenant, error) {
	name, email := h.orgName(set, i), h.orgEmail(set, i)
	api := t.api()
	var o apiclient.Organization
	if err := api.Call(ctx, apiclient.CreateOrg(name, email, benchPassword), http.StatusCreated, &o); err != nil {
		return docTenant{}, err
	}
	token, err := api.Token(ctx, email, benchPassword)
	if err != nil {
		return docTenant{}, err
	}
	// Every instance must know the organization before the token is used on
	// it: another instance's write shows within its directory's bound.
	if err := t.awaitEverywhere(ctx, apiclient.GetOrg(name), time.Minute); err != nil {
		return docTenant{}, fmt.Errorf("%s: %s: %w", set, name, err)
	}
	return docTenant{coll: o.CollectionName, token: token}, nil
}

// docData is a document's data: a few fields of each kind, about 200 bytes.
func docData(i int) bson.D {
	return bson.D{
		{Key: "n", Value: int32(i)},
		{Key: "sku", Value: fmt.Sprintf("SKU-%09d", i)},
		{Key: "price", Value: float64(i%1000) + 0.99},
		{Key: "active", Value: i%2 == 0},
		{Key: "tags", Value: bson.A{"bench", "doc"}},
		{Key: "note", Value: strings.Repeat("x", 96)},
	}
}

// storedDoc is a document as the service stores it.
func storedDoc(id string, i int, at time.Time) bson.D {
	return bson.D{
		{Key: "_id", Value: id}, {Key: "data", Value: docData(i)}, {Key: "version", Value: int32(1)},
		{Key: "created_at", Value: at}, {Key: "updated_at", Value: at},
	}
}

// docBody is the request body that stores docData(i) under id.
func docBody(id string, i int) []byte {
	return fmt.Appendf(nil, `{"id":%q,"n":%d,"sku":"SKU-%09d","price":%d.99,"active":%t,"tags":["bench","doc"],"note":%q}`,
		id, i, i, i%1000, i%2 == 0, strings.Repeat("x", 96))
}

// seedAPIDocs inserts n documents in the service's stored shape into coll
// and returns their ids, in order.
func (h *harness) seedAPIDocs(ctx context.Context, coll *mongo.Collection, prefix string, n int) ([]string, error) {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%s-%07d", prefix, i)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	err := h.insertBatches(ctx, coll, 0, n, func(i int) any { return storedDoc(ids[i], i, now) })
	return ids, err
}

// drain reads a cursor to its end, as a client of the driver would.
func drain(ctx context.Context, cur *mongo.Cursor) error {
	defer cur.Close(context.WithoutCancel(ctx))
	for cur.Next(ctx) {
	}
	return cur.Err()
}

package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"

	"github.com/orgservice/orgservice/internal/apiclient"
)

// getScenarios measures get and its ceiling over a pool of organizations,
// create beside them, and then both again with the pool grown to every T of
// -scale (scale-T). All run against one service on one database, which
// grows as the phases go.
func (h *harness) getScenarios(ctx context.Context) error {
	t, err := h.newTarget(ctx, "svc-pool", "orgbench_pool", true)
	if err != nil {
		return err
	}
	defer t.stop()
	pool, err := h.seedPool(ctx, t, "pool", 0, h.cfg.Orgs)
	if err != nil {
		return err
	}
	creates := &sequence{}
	total := len(pool) // organizations in the database
	get, ceiling, create, err := h.getPhase(ctx, t, pool, total, creates, "")
	if err != nil {
		return err
	}
	total += int(creates.n.Load()) // every create, warm-up included
	h.setGetRatio(h.label("get_vs_ceiling"), get, ceiling)

	for _, tt := range h.cfg.Scale {
		prefix := "scale-" + strconv.Itoa(tt) + "-"
		if tt == h.cfg.Orgs { // the phase above is this T: report it under both names
			for _, r := range []row{ceiling, get, create} {
				if r.Name == "" { // not measured
					continue
				}
				r.Name = prefix + r.Name
				if r.Baseline != "" {
					r.Baseline = prefix + r.Baseline
				}
				h.rep.add(r)
				h.printRow(r)
			}
			h.setGetRatio(h.label("get_vs_ceiling_at_"+strconv.Itoa(tt)), get, ceiling)
			continue
		}
		more, err := h.seedPool(ctx, t, "pool", len(pool), len(pool)+max(0, tt-total))
		if err != nil {
			return err
		}
		pool = append(pool, more...)
		total += len(more)
		before := creates.n.Load()
		g, c, _, err := h.getPhase(ctx, t, pool, total, creates, prefix)
		if err != nil {
			return err
		}
		total += int(creates.n.Load() - before)
		h.setGetRatio(h.label("get_vs_ceiling_at_"+strconv.Itoa(tt)), g, c)
	}
	return nil
}

// getPhase measures get-ceiling, get and create with orgs organizations in
// the database. The lookups go through pool in one shuffled order, the same
// for get and its ceiling: where the database scans, the cost of a lookup
// depends on where the document lies, so both must look up the same
// documents — and a phase of a few hundred lookups going round the pool in
// order would only ever look up the first few hundred.
func (h *harness) getPhase(ctx context.Context, t *target, pool []poolOrg, orgs int, creates *sequence, prefix string) (get, ceiling, create row, err error) {
	if len(pool) == 0 {
		return get, ceiling, create, fmt.Errorf("get: no organizations in the pool (-orgs)")
	}
	clients, warm, d := h.cfg.Clients, h.cfg.Warmup, h.cfg.Duration
	order := rand.New(rand.NewPCG(uint64(len(pool)), 1)).Perm(len(pool))
	pick := func(i int64) *poolOrg { return &pool[order[i%int64(len(order))]] }
	var phases []phase
	if t.db != nil {
		coll := t.db.Collection("organizations")
		phases = append(phases, phase{name: h.label(prefix + "get-ceiling"), clients: clients, seq: &sequence{},
			fn: func(ctx context.Context, _ int, i int64) error {
				return coll.FindOne(ctx, pick(i).filter).Err()
			}})
	} else {
		h.rep.notes = append(h.rep.notes, h.label(prefix+"get-ceiling")+": not measured (no database address; give -mongo)")
	}
	phases = append(phases, phase{name: h.label(prefix + "get"), svcs: t.svcs, clients: clients, seq: &sequence{},
		fn: func(ctx context.Context, _ int, i int64) error {
			return t.api().Send(ctx, pick(i).get, http.StatusOK)
		}})
	rows, err := h.measure(ctx, h.cfg.Rounds, warm, d, phases...)
	if err != nil {
		return get, ceiling, create, err
	}
	if len(rows) > 1 {
		ceiling = h.annotate(rows[0].Name, orgs, 0, "")
	}
	get = h.annotate(rows[len(rows)-1].Name, orgs, 0, h.label(prefix+"get-ceiling"))
	rows, err = h.measure(ctx, 1, warm, d, phase{name: h.label(prefix + "create"), svcs: t.svcs, clients: clients, seq: creates,
		fn: func(ctx context.Context, _ int, i int64) error {
			var o apiclient.Organization
			return t.api().Call(ctx, apiclient.CreateOrg(h.orgName("new", int(i)), h.orgEmail("new", int(i)), benchPassword), http.StatusCreated, &o)
		}})
	if err != nil {
		return get, ceiling, create, err
	}
	create = h.annotate(rows[0].Name, orgs, 0, "")
	return get, ceiling, create, nil
}

// annotate records context of a row already reported and returns it.
func (h *harness) annotate(name string, orgs, docs int, baseline string) row {
	for i := range h.rep.rows {
		if h.rep.rows[i].Name == name {
			h.rep.rows[i].Orgs, h.rep.rows[i].Docs, h.rep.rows[i].Baseline = orgs, docs, baseline
			return h.rep.rows[i]
		}
	}
	return row{}
}

// getVsCeiling is issue 8's target: the service answers a GET at least ten
// times as fast as the database can look the organization up.
const getVsCeiling = 10

func (h *harness) setGetRatio(key string, get, ceiling row) {
	h.rep.setRatio(key, get.OpsPerSec, ceiling.OpsPerSec, getVsCeiling, true)
}

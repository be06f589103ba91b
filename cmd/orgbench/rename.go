package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/orgservice/orgservice/internal/apiclient"
)

// strategy is a way the service moves a tenant collection, and the service
// configured with it.
type strategy struct {
	name string
	t    *target
}

// renameScenarios renames one organization holding D documents, for each D
// of -docs up to -max-docs, with each strategy, one rename at a time, and
// checks after each D that every document arrived. The documents are
// inserted straight into the tenant collection, so it needs a database
// address. Started by the harness, the service runs twice on one database,
// once per MIGRATION_STRATEGY (rename, copy), both serving the same
// organization; a -url server is measured with whatever it does.
func (h *harness) renameScenarios(ctx context.Context) error {
	if h.mongo == nil {
		h.rep.notes = append(h.rep.notes, "rename-D: not measured (documents are seeded through the database; give -mongo)")
		h.rep.setRatio("rename_large_vs_small", 0, 0, 2, false)
		return nil
	}
	strategies, err := h.renameTargets(ctx)
	for _, s := range strategies {
		defer s.t.stop()
	}
	if err != nil {
		return err
	}
	first := strategies[0].t
	names := [2]string{h.orgName("rename", 0), h.orgName("rename", 1)}
	email := h.orgEmail("rename", 0)
	var cur apiclient.Organization
	if err := first.api().Call(ctx, apiclient.CreateOrg(names[0], email, benchPassword), http.StatusCreated, &cur); err != nil {
		return err
	}
	token, err := first.api().Token(ctx, email, benchPassword)
	if err != nil {
		return err
	}
	renameOnce := func(ctx context.Context, t *target) error {
		next := names[0]
		if cur.Name == names[0] {
			next = names[1]
		}
		var o apiclient.Organization
		err := t.api().Call(ctx, apiclient.UpdateOrg(token, apiclient.OrgUpdate{Name: next}), http.StatusOK, &o)
		var se *apiclient.StatusError
		if err != nil && !errors.As(err, &se) && ctx.Err() == nil {
			// No answer (a server's write timeout cuts a long copy off): the
			// rename goes on, detached. Its time is until it shows.
			o, err = h.awaitRename(ctx, t, next, err)
		}
		if o.Name != "" {
			cur = o
		}
		return err
	}

	seeded := 0
	docs := h.cfg.docs()
	for k, d := range docs {
		if err := h.seedDocs(ctx, first.db.Collection(cur.CollectionName), seeded, d); err != nil {
			return err
		}
		seeded = d
		for _, s := range strategies {
			if k == 0 { // the first rename of a service warms its connections up, unmeasured
				if err := renameOnce(ctx, s.t); err != nil {
					return fmt.Errorf("rename warm-up: %w", err)
				}
			}
			name := fmt.Sprintf("rename-%d/%s", d, s.name)
			_, err := h.measure(ctx, 1, 0, h.cfg.Duration, phase{name: name, svcs: s.t.svcs, clients: 1,
				maxOps: int64(h.cfg.Renames), seq: &sequence{},
				fn: func(ctx context.Context, _ int, _ int64) error { return renameOnce(ctx, s.t) }})
			if err != nil {
				return err
			}
			h.annotate(name, 0, d, "")
		}
		// Every document must have survived every strategy's renames. One
		// count per D: on FerretDB a count reads the whole collection.
		n, err := first.db.Collection(cur.CollectionName).CountDocuments(ctx, bson.D{})
		if err != nil || n != int64(d) {
			for _, s := range strategies {
				h.failRow(fmt.Sprintf("rename-%d/%s", d, s.name),
					fmt.Sprintf("after the renames of %d documents %s holds %d (%v)", d, cur.CollectionName, n, err))
			}
		}
	}
	small, _ := h.rep.row(fmt.Sprintf("rename-%d/%s", docs[0], strategies[0].name))
	large, _ := h.rep.row(fmt.Sprintf("rename-%d/%s", docs[len(docs)-1], strategies[0].name))
	h.rep.setRatio("rename_large_vs_small", large.P50, small.P50, 2, false)
	return nil
}

// awaitRename waits for a rename whose request got no answer to show: the
// organization found under its new name with its new collection. It
// returns the organization and an error saying the answer was lost, so the
// row counts it; the note says how it ended.
func (h *harness) awaitRename(ctx context.Context, t *target, name string, cause error) (apiclient.Organization, error) {
	get := apiclient.GetOrg(name)
	for {
		var o apiclient.Organization
		err := t.api().Call(ctx, get, http.StatusOK, &o)
		if err == nil && o.CollectionName == "org_"+name {
			h.rep.notes = append(h.rep.notes, fmt.Sprintf(
				"a rename to %s got no answer (%v) and completed later, detached; its time is until it showed", name, cause))
			return o, fmt.Errorf("rename to %s: no answer: %w", name, cause)
		}
		select {
		case <-ctx.Done():
			return apiclient.Organization{}, ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// renameTargets starts a service per strategy on one fresh database, or
// returns the -url server as the one strategy "server".
func (h *harness) renameTargets(ctx context.Context) ([]strategy, error) {
	if h.cfg.URL != "" {
		t, err := h.newTarget(ctx, "server", h.cfg.DBName, false)
		if err != nil {
			return nil, err
		}
		return []strategy{{"server", t}}, nil
	}
	var out []strategy
	for i, name := range []string{"rename", "copy"} {
		t, err := h.newTarget(ctx, "svc-"+name, "orgbench_rename", i == 0, "MIGRATION_STRATEGY="+name)
		if err != nil {
			return out, err
		}
		out = append(out, strategy{name, t})
	}
	return out, nil
}

// failRow counts a failed check against a row already reported.
func (h *harness) failRow(name, why string) {
	for i := range h.rep.rows {
		if h.rep.rows[i].Name == name {
			h.rep.rows[i].Errors++
		}
	}
	h.rep.notes = append(h.rep.notes, why)
	h.notef("%s", why)
}

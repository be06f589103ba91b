package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/orgservice/orgservice/internal/apiclient"
)

// benchPassword is every seeded admin's password.
const benchPassword = "bench-password-1"

// poolOrg is a seeded organization and the requests that reach it, built
// once so that the measured loop does no formatting.
type poolOrg struct {
	id     string
	name   string
	slug   string
	email  string
	get    apiclient.Request
	login  apiclient.Request
	filter bson.D // the ceiling's lookup
}

// orgName is the name of the i-th organization of a set. It is already in
// slug form (lowercase ASCII letters, digits and '_'), so any implementation
// of the API derives the same key from it.
func (h *harness) orgName(set string, i int) string {
	return fmt.Sprintf("ob%s_%s_%07d", h.runID, set, i)
}

func (h *harness) orgEmail(set string, i int) string {
	return fmt.Sprintf("admin.%s.%s.%d@bench.test", h.runID, set, i)
}

func (h *harness) poolOrg(name, slug, email string) poolOrg {
	return poolOrg{
		name: name, slug: slug, email: email, get: apiclient.GetOrg(name),
		login:  apiclient.Login(email, benchPassword),
		filter: bson.D{{Key: h.cfg.LookupField, Value: slug}},
	}
}

// seedPool adds organizations from..to-1 of set. On a database of the
// harness's own, the first is created through the API and the rest are
// clones of its documents (see template), announced in the change log as
// the service announces its own writes; otherwise all go through the API.
func (h *harness) seedPool(ctx context.Context, t *target, set string, from, to int) ([]poolOrg, error) {
	if h.cfg.URL != "" || t.db == nil || h.cfg.SeedAPI || to <= from {
		return h.seedOrgs(ctx, t, set, from, to)
	}
	var out []poolOrg
	if from == 0 {
		first, err := h.seedOrgs(ctx, t, set, 0, 1)
		if err != nil {
			return nil, err
		}
		o := first[0]
		tmpl, err := snapshot(ctx, t.db, apiclient.Organization{ID: o.id, CollectionName: "org_" + o.slug}, o.name, o.email)
		if err != nil {
			return nil, err
		}
		h.templates[set] = tmpl
		out, from = first, 1
	}
	tmpl := h.templates[set]
	if tmpl == nil {
		return nil, fmt.Errorf("seed %s: no template", set)
	}
	more, err := h.seedClones(ctx, t.db, tmpl, set, from, to)
	if err != nil {
		return nil, err
	}
	if len(more) == 0 {
		return out, nil
	}
	// The clones were announced in the change log: wait until the services'
	// directories have read them all (the log is read in order, so the last).
	last := more[len(more)-1]
	if err := t.awaitEverywhere(ctx, last.get, 5*time.Minute); err != nil {
		return nil, fmt.Errorf("seed %s: %s: %w", set, last.name, err)
	}
	return append(out, more...), nil
}

// awaitEverywhere waits, up to limit, until every instance of t answers
// the lookup get: another instance's write shows in its directory within
// its bound.
func (t *target) awaitEverywhere(ctx context.Context, get apiclient.Request, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for _, api := range t.apis {
		for api.Send(ctx, get, http.StatusOK) != nil {
			if time.Now().After(deadline) || ctx.Err() != nil {
				return errors.New("an instance never saw it")
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}

// seedOrgs creates organizations from..to-1 of set through the API, with as
// many concurrent clients as the scenarios use.
func (h *harness) seedOrgs(ctx context.Context, t *target, set string, from, to int) ([]poolOrg, error) {
	if to <= from {
		return nil, nil
	}
	out := make([]poolOrg, to-from)
	bar := h.progress(int64(to-from), "orgs", fmt.Sprintf("seeding %d %s organizations via the API", to-from, set))
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range h.cfg.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				k := int(next.Add(1)) - 1
				if k >= len(out) {
					return
				}
				i := from + k
				name, email := h.orgName(set, i), h.orgEmail(set, i)
				var o apiclient.Organization
				if err := t.api().Call(ctx, apiclient.CreateOrg(name, email, benchPassword), http.StatusCreated, &o); err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("seed %s: %w", name, err); cancel() })
					return
				}
				slug, ok := strings.CutPrefix(o.CollectionName, "org_")
				if !ok {
					slug = name
				}
				out[k] = h.poolOrg(name, slug, email)
				out[k].id = o.ID
				bar.add(1)
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	bar.done()
	return out, ctx.Err()
}

// seedDocs inserts documents from..to-1 into a tenant collection straight
// through the driver, in batches, a few batches at a time.
func (h *harness) seedDocs(ctx context.Context, coll *mongo.Collection, from, to int) error {
	pad := strings.Repeat("x", 96)
	now := time.Now().UTC().Truncate(time.Millisecond)
	return h.insertBatches(ctx, coll, from, to, func(i int) any {
		return bson.D{
			{Key: "_id", Value: bson.NewObjectID()},
			{Key: "n", Value: int64(i)},
			{Key: "sku", Value: fmt.Sprintf("SKU-%09d", i)},
			{Key: "qty", Value: int32(i % 100)},
			{Key: "note", Value: pad},
			{Key: "created_at", Value: now},
		}
	})
}

// insertBatches inserts doc(from)..doc(to-1) into coll, 1,000 at a time,
// four batches at once, with a progress bar.
func (h *harness) insertBatches(ctx context.Context, coll *mongo.Collection, from, to int, doc func(i int) any) error {
	if to <= from {
		return nil
	}
	const batch, writers = 1000, 4
	bar := h.progress(int64(to-from), "docs", fmt.Sprintf("seeding %d documents into %s", to-from, coll.Name()))
	starts := make(chan int)
	errs := make(chan error, writers)
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			docs := make([]any, 0, batch)
			for s := range starts {
				docs = docs[:0]
				for i := s; i < min(s+batch, to); i++ {
					docs = append(docs, doc(i))
				}
				if _, err := coll.InsertMany(ctx, docs, options.InsertMany().SetOrdered(false)); err != nil {
					errs <- fmt.Errorf("seed documents: %w", err)
					return
				}
				bar.add(len(docs))
			}
		})
	}
	var err error
feed:
	for s := from; s < to; s += batch {
		select {
		case starts <- s:
		case err = <-errs:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(starts)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	if err == nil {
		bar.done()
	}
	return err
}

// start and one at the end.
type progress struct {
	h     *harness
	bar   *progressbar.ProgressBar // nil when not on a terminal
	desc  string
	began time.Time
}

func (h *harness) progress(n int64, unit, desc string) *progress {
	p := &progress{h: h, desc: desc, began: time.Now()}
	switch {
	case h.cfg.Quiet:
	case isTerminal(h.errw):
		p.bar = progressbar.NewOptions64(n,
			progressbar.OptionSetWriter(h.errw),
			progressbar.OptionSetDescription(desc),
			progressbar.OptionShowCount(),
			progressbar.OptionShowIts(),
			progressbar.OptionSetItsString(unit),
			progressbar.OptionSetWidth(24),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(h.errw) }),
		)
	default:
		h.notef("%s", desc)
	}
	return p
}

func (p *progress) add(n int) {
	if p.bar != nil {
		_ = p.bar.Add(n)
	}
}

func (p *progress) done() {
	switch {
	case p.bar != nil:
		_ = p.bar.Finish()
	case !p.h.cfg.Quiet:
		p.h.notef("  done in %s", time.Since(p.began).Round(100*time.Millisecond))
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

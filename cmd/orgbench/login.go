package main

import (
	"context"
	"net/http"
	"strconv"

	"golang.org/x/crypto/bcrypt"
)

// loginScenarios measures concurrent logins beside bcrypt-ceiling: raw
// bcrypt.CompareHashAndPassword at the same cost and concurrency, in the
// harness's process while the service is idle. The service runs at
// -login-cost; with a database address the ceiling's cost is read from a
// stored hash, so it matches whatever server is measured.
func (h *harness) loginScenarios(ctx context.Context) error {
	t, err := h.newTarget(ctx, "svc-login", "orgbench_login", true, "BCRYPT_COST="+strconv.Itoa(h.cfg.LoginCost))
	if err != nil {
		return err
	}
	defer t.stop()
	pool, err := h.seedOrgs(ctx, t, "login", 0, h.cfg.Clients)
	if err != nil {
		return err
	}
	hash := h.storedHash(ctx, t, pool[0])
	if hash == nil {
		if hash, err = bcrypt.GenerateFromPassword([]byte(benchPassword), h.cfg.LoginCost); err != nil {
			return err
		}
	}
	cost, _ := bcrypt.Cost(hash)
	h.notef("login: bcrypt cost %d", cost)

	clients, pw := h.cfg.Clients, []byte(benchPassword)
	rows, err := h.measure(ctx, h.cfg.Rounds, h.cfg.Warmup, h.cfg.Duration,
		phase{name: h.label("bcrypt-ceiling"), clients: clients, seq: &sequence{},
			fn: func(context.Context, int, int64) error { return bcrypt.CompareHashAndPassword(hash, pw) }},
		phase{name: h.label("login"), svcs: t.svcs, clients: clients, seq: &sequence{},
			fn: func(ctx context.Context, _ int, i int64) error {
				return t.api().Send(ctx, pool[i%int64(len(pool))].login, http.StatusOK)
			}},
	)
	if err != nil {
		return err
	}
	h.annotate(h.label("login"), len(pool), 0, h.label("bcrypt-ceiling"))
	h.rep.setRatio(h.label("login_vs_bcrypt"), rows[1].OpsPerSec, rows[0].OpsPerSec, 0.9, true)
	return nil
}

// storedHash reads the password hash the server stored for o, or nil.
func (h *harness) storedHash(ctx context.Context, t *target, o poolOrg) []byte {
	if t.db == nil {
		return nil
	}
	var doc struct {
		Hash    string `bson:"password_hash"` // before members
		Members []struct {
			Hash string `bson:"password_hash"`
		} `bson:"members"`
	}
	err := t.db.Collection("organizations").FindOne(ctx, o.filter).Decode(&doc)
	if err == nil && len(doc.Members) > 0 {
		doc.Hash = doc.Members[0].Hash
	}
	if err != nil || doc.Hash == "" {
		return nil
	}
	if _, err := bcrypt.Cost([]byte(doc.Hash)); err != nil {
		return nil
	}
	return []byte(doc.Hash)
}

package main

import (
	"context"
	"math"
	"slices"
	"time"

	"github.com/orgservice/orgservice/internal/procs"
)

// phase is one scenario to measure: its row, the service processes that
// serve it (none for a ceiling, which bypasses the service) and its
// operation.
type phase struct {
	name    string
	svcs    []*procs.Process
	clients int
	maxOps  int64 // 0: as many as fit in the duration
	seq     *sequence
	fn      op
}

// tally adds up a phase's rounds.
type tally struct {
	loadResult
	svcCPU, dbCPU time.Duration
	svcOK, dbOK   bool
	peak          int64
}

// measure runs each phase closed-loop for d in all, in rounds taking turns,
// so that a scenario and its ceiling see the same drift of a shared machine
// (other load, the database's garbage collector, caches warming). Each phase
// first warms up for warmup, unmeasured. Every operation started in a
// round is waited for and counted, so the CPU time read around the round
// belongs to exactly the operations counted.
func (h *harness) measure(ctx context.Context, rounds int, warmup, d time.Duration, phases ...phase) ([]row, error) {
	rounds = max(rounds, 1)
	tallies := make([]tally, len(phases))
	for i := range tallies {
		tallies[i].svcOK, tallies[i].dbOK = true, true
	}
	for r := range rounds {
		for i, p := range phases {
			if r == 0 && warmup > 0 {
				runLoad(ctx, p.clients, warmup, 0, p.seq, p.fn)
			}
			t := &tallies[i]
			maxOps := p.maxOps
			if maxOps > 0 {
				maxOps = max(0, maxOps-int64(t.ops))
			}
			for _, svc := range p.svcs {
				_ = procs.ResetPeakRSS(svc.Pid())
			}
			u0 := h.usage(p.svcs)
			res := runLoad(ctx, p.clients, d/time.Duration(rounds), maxOps, p.seq, p.fn)
			u1 := h.usage(p.svcs)
			t.ops += res.ops
			t.errors += res.errors
			t.elapsed += res.elapsed
			t.lat = append(t.lat, res.lat...)
			if t.firstErr == nil {
				t.firstErr = res.firstErr
			}
			t.svcCPU += u1.svc - u0.svc
			t.dbCPU += u1.db - u0.db
			t.svcOK = t.svcOK && u0.svcOK && u1.svcOK
			t.dbOK = t.dbOK && u0.dbOK && u1.dbOK
			for _, svc := range p.svcs { // the largest process's peak
				if b, err := procs.PeakRSS(svc.Pid()); err == nil {
					t.peak = max(t.peak, b)
				}
				if err := svc.Alive(); err != nil {
					return nil, err
				}
			}
			if h.dbProc != nil {
				if err := h.dbProc.Alive(); err != nil {
					return nil, err
				}
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
	}
	rows := make([]row, len(phases))
	for i, p := range phases {
		rows[i] = h.toRow(p, &tallies[i])
		h.rep.add(rows[i])
		h.printRow(rows[i])
	}
	return rows, nil
}

func (h *harness) toRow(p phase, t *tally) row {
	slices.Sort(t.lat)
	r := row{
		Name:      p.name,
		Ops:       t.ops,
		OpsPerSec: roundOps(t.opsPerSec()),
		P50:       round(percentile(t.lat, 0.50), 2),
		P90:       round(percentile(t.lat, 0.90), 2),
		P99:       round(percentile(t.lat, 0.99), 2),
		Errors:    t.errors,
		Clients:   p.clients,
		Instances: len(p.svcs),
	}
	perOp := func(d time.Duration) *float64 {
		return ptr(round(float64(d)/float64(time.Microsecond)/float64(t.ops), 0))
	}
	if t.ops > 0 && len(p.svcs) > 0 && t.svcOK {
		r.CPUPerOp = perOp(t.svcCPU)
	}
	if t.ops > 0 && h.dbProc != nil && t.dbOK {
		r.DBCPUPerOp = perOp(t.dbCPU)
	}
	if t.peak > 0 {
		r.PeakRSSMB = ptr(round(float64(t.peak)/(1<<20), 1))
	}
	if t.firstErr != nil {
		h.notef("%s: %d errors; first: %v", p.name, t.errors, t.firstErr)
	}
	return r
}

// roundOps keeps three significant digits of a slow rate (one rename in
// 197 s is 0.00507/s, not 0.0) and one decimal of a fast one.
func roundOps(v float64) float64 {
	switch {
	case v >= 100:
		return round(v, 1)
	case v > 0:
		return round(v, max(1, 2-int(math.Floor(math.Log10(v)))))
	}
	return 0
}

// usage is the CPU time of the service (its processes summed) and of the
// database at one moment.
type usage struct {
	svc, db     time.Duration
	svcOK, dbOK bool
}

func (h *harness) usage(svcs []*procs.Process) usage {
	var u usage
	var err error
	u.svcOK = len(svcs) > 0
	for _, svc := range svcs {
		d, err := procs.CPUTime(svc.Pid())
		u.svc += d
		u.svcOK = u.svcOK && err == nil
	}
	if h.dbProc != nil {
		u.db, err = procs.CPUTime(h.dbProc.Pid())
		u.dbOK = err == nil
	}
	return u
}

//go:build cluster

package cluster

import (
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"slices"
	"sync"

	"github.com/orgservice/orgservice/internal/apiclient"
)

// mixedPhase sends creates, renames (some racing for one name), deletes,
// email and password changes, member adds and removals and logins, each organization touched by at
// most one write, all spread over the instances at random and concurrent
// with a stream of GETs of every name ever used.
func (e *env) mixedPhase() {
	orgs := e.mixable()
	shuffle(e, orgs)
	take := func(n int) []orgModel {
		n = min(n, len(orgs))
		out := orgs[:n]
		orgs = orgs[n:]
		return out
	}
	var tasks []func()
	add := func(f func()) { tasks = append(tasks, f) }

	for k, o := range take(10) {
		add(func() { e.rename(e.inst(), o, fmt.Sprintf("Renamed Org %02d", k), http.StatusOK) })
	}
	// A rename frees its old name at once: a create may take it right after.
	for k, o := range take(2) {
		add(func() {
			if e.rename(e.inst(), o, fmt.Sprintf("Moved Org %d", k), http.StatusOK) {
				e.createOne(e.inst(), o.name, fmt.Sprintf("reuse%d@cluster.test", k))
			}
		})
	}
	for k := range 3 { // two organizations racing on two instances for one name
		pair := take(2)
		if len(pair) < 2 {
			break
		}
		add(func() {
			name := fmt.Sprintf("Contested Name %d", k)
			i := e.inst()
			e.m.useName(name)
			as := race(
				func() answer { return e.c.update(i, pair[0].token, apiclient.OrgUpdate{Name: name}) },
				func() answer { return e.c.update((i+1)%instances, pair[1].token, apiclient.OrgUpdate{Name: name}) },
			)
			e.settleRace("rename race for "+name, as, []string{pair[0].id, pair[1].id}, name)
		})
	}
	if pair := take(2); len(pair) == 2 { // a create and two renames, one on each instance
		add(func() {
			const name, email = "Three Way", "threeway@cluster.test"
			e.m.useName(name)
			as := race(
				func() answer { return e.c.create(0, name, email, password) },
				func() answer { return e.c.update(1, pair[0].token, apiclient.OrgUpdate{Name: name}) },
				func() answer { return e.c.update(2, pair[1].token, apiclient.OrgUpdate{Name: name}) },
			)
			if as[0].Status == http.StatusCreated {
				e.record(as[0], name, email)
			}
			e.settleRace("create-and-renames race for "+name, as, []string{"", pair[0].id, pair[1].id}, name)
		})
	}
	for _, o := range take(8) {
		add(func() {
			inst := e.inst()
			a := e.c.remove(inst, o.token, o.name)
			if e.c.expect(fmt.Sprintf("delete %q on instance %d", o.name, inst), a, http.StatusNoContent) {
				e.m.update(o.id, func(m *orgModel) { m.deleted = true; m.committed["org.deleted"]++ })
			}
		})
	}
	for k, o := range take(3) {
		add(func() {
			inst, email := e.inst(), fmt.Sprintf("changed%02d@cluster.test", k)
			a := e.c.update(inst, o.token, apiclient.OrgUpdate{Email: email, CurrentPassword: o.password})
			if e.c.expect(fmt.Sprintf("email change of %q on instance %d", o.name, inst), a, http.StatusOK) {
				e.m.update(o.id, func(m *orgModel) { m.email, m.revoked = email, true; m.committed["credentials.changed"]++ })
			}
		})
	}
	for _, o := range take(3) {
		add(func() {
			inst, pw := e.inst(), "changed-"+password
			a := e.c.update(inst, o.token, apiclient.OrgUpdate{Password: pw, CurrentPassword: o.password})
			if e.c.expect(fmt.Sprintf("password change of %q on instance %d", o.name, inst), a, http.StatusOK) {
				e.m.update(o.id, func(m *orgModel) { m.password, m.revoked = pw, true; m.committed["credentials.changed"]++ })
			}
		})
	}
	for k, o := range take(4) { // a member added, and half of them removed again on another instance
		add(func() { e.memberChurn(o, k, k%2 == 1) })
	}
	for k := range 5 {
		add(func() {
			e.createOne(e.inst(), fmt.Sprintf("Late Org %02d", k), fmt.Sprintf("late%02d@cluster.test", k))
		})
	}
	for _, o := range orgs { // the rest log in again, on another instance maybe
		add(func() {
			inst := e.inst()
			e.c.expect(fmt.Sprintf("second login of %s on instance %d", o.email, inst), e.c.login(inst, o.email, password), http.StatusOK)
		})
	}
	shuffle(e, tasks)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); e.getStream(stop, uint64(e.intn(1<<30))) }()
	parallel(workers, tasks)
	close(stop)
	wg.Wait()
}

// rename renames o on instance inst and records the result.
func (e *env) rename(inst int, o orgModel, name string, want int) bool {
	e.m.useName(name)
	a := e.c.update(inst, o.token, apiclient.OrgUpdate{Name: name})
	if !e.c.expect(fmt.Sprintf("rename %q to %q on instance %d", o.name, name, inst), a, want) {
		return false
	}
	if got, err := decodeOrg(a); err != nil || got.ID != o.id || got.Name != name || got.CollectionName != "org_"+slug(name) {
		e.t.Errorf("rename %q to %q answered %s", o.name, name, a)
		return false
	}
	e.m.update(o.id, func(m *orgModel) { m.name = name; m.committed["org.renamed"]++ })
	return true
}

// memberChurn adds a member to o on an instance at random and, when
// remove, removes it on another, recording what was answered done.
func (e *env) memberChurn(o orgModel, k int, remove bool) {
	email, role, inst := fmt.Sprintf("member%02d@cluster.test", k), []string{"admin", "member"}[k%2], e.inst()
	a := e.c.addMember(inst, o.token, email, role)
	if !e.c.expect(fmt.Sprintf("add member %s to %q on instance %d", email, o.name, inst), a, http.StatusCreated) {
		return
	}
	e.m.update(o.id, func(m *orgModel) { m.members = append(m.members, email); m.committed["member.added"]++ })
	if !remove {
		return
	}
	var m apiclient.Member
	_ = a.JSON(&m)
	inst = (inst + 1) % instances
	a = e.c.removeMember(inst, o.token, m.ID)
	if e.c.expect(fmt.Sprintf("remove member %s of %q on instance %d", email, o.name, inst), a, http.StatusNoContent) {
		e.m.update(o.id, func(m *orgModel) {
			m.members = slices.DeleteFunc(m.members, func(x string) bool { return x == email })
			m.committed["member.removed"]++
		})
	}
}

// settleRace checks that exactly one of a race's requests succeeded and the
// others were refused as conflicts, and records a winning rename. ids[i] is
// the organization request i renamed ("" for a create).
func (e *env) settleRace(what string, as []answer, ids []string, name string) {
	won := count(as, http.StatusOK, http.StatusCreated)
	if won != 1 || count(as, http.StatusConflict) != len(as)-1 {
		e.t.Errorf("%s: want exactly one success and %d 409s, got %v", what, len(as)-1, as)
	}
	for i, a := range as {
		if a.Status == http.StatusOK && ids[i] != "" {
			e.m.update(ids[i], func(m *orgModel) { m.name = name; m.committed["org.renamed"]++ })
		}
	}
}

// getStream GETs names ever used, anonymously, on instances at random,
// until stop (at most 1,000 requests): each answer is 200 or 404, and a 200
// is the organization of the name asked for, as anyone sees it: no id, no
// admin's email, no member count.
func (e *env) getStream(stop <-chan struct{}, seed uint64) {
	rng := mrand.New(mrand.NewPCG(seed, 7))
	for range 1000 {
		select {
		case <-stop:
			return
		default:
		}
		names := e.m.knownNames()
		name, inst := names[rng.IntN(len(names))], rng.IntN(instances)
		a := e.c.get(inst, name)
		if !e.c.expect(fmt.Sprintf("GET %q on instance %d during the traffic", name, inst), a, http.StatusOK, http.StatusNotFound) {
			continue
		}
		if a.Status == http.StatusOK {
			o, err := decodeOrg(a)
			if err != nil || slug(o.Name) != name || o.Slug != name || o.CollectionName != "org_"+name ||
				o.ID != "" || o.AdminEmail != "" || o.MemberCount != 0 {
				e.t.Errorf("anonymous GET %q on instance %d answered %s", name, inst, a)
			}
		}
	}
}

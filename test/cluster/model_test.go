//go:build cluster

package cluster

import (
	"maps"
	"slices"
	"strings"
	"sync"
)

// model is what the traffic did, as the test saw it answered: every
// organization that was created, what it is now, and every name ever used.
// At the end the database and every instance must agree with it.
type model struct {
	mu    sync.Mutex
	orgs  map[string]*orgModel // by id
	names map[string]bool      // every name a request used, by slug
}

// orgModel is one organization as the test knows it.
type orgModel struct {
	id, name, email, password string
	deleted                   bool

	token     string // minted after the creates, "" when none
	tokenName string // the organization's name when the token was minted
	revoked   bool   // its email or password changed, or it was deleted, after the token

	// committed counts the audited changes answered as done, by action:
	// the audit log must hold each exactly once.
	committed map[string]int
	members   []string // emails of the members added (and not removed) besides the founder
}

func newModel() *model {
	return &model{orgs: map[string]*orgModel{}, names: map[string]bool{}}
}

func (m *model) useName(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.names[slug(name)] = true
}

func (m *model) add(o *orgModel) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o.committed = map[string]int{"org.created": 1}
	m.orgs[o.id] = o
	m.names[slug(o.name)] = true
}

// update changes an organization under the model's lock.
func (m *model) update(id string, f func(o *orgModel)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f(m.orgs[id])
}

// live returns a copy of every organization not deleted, sorted by id.
func (m *model) live() []orgModel {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []orgModel
	for _, o := range m.orgs {
		if !o.deleted {
			out = append(out, o.clone())
		}
	}
	slices.SortFunc(out, func(a, b orgModel) int { return strings.Compare(a.id, b.id) })
	return out
}

// all returns a copy of every organization, deleted ones included.
func (m *model) all() []orgModel {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []orgModel
	for _, o := range m.orgs {
		out = append(out, o.clone())
	}
	slices.SortFunc(out, func(a, b orgModel) int { return strings.Compare(a.id, b.id) })
	return out
}

func (o *orgModel) clone() orgModel {
	c := *o
	c.committed = maps.Clone(o.committed)
	c.members = slices.Clone(o.members)
	return c
}

// knownNames returns every name ever used, by slug.
func (m *model) knownNames() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.names))
	for n := range m.names {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// tokenExpected reports whether o's token must still be accepted: its
// organization lives, its credentials did not change, and no other
// organization holds the name the token was minted under (a token whose
// org_name claim names someone else is refused).
func tokenExpected(o orgModel, liveBySlug map[string]string) bool {
	if o.deleted || o.revoked {
		return false
	}
	holder, ok := liveBySlug[slug(o.tokenName)]
	return !ok || holder == o.id
}

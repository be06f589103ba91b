//go:build cluster

package cluster

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orgservice/orgservice/internal/apiclient"
	"github.com/orgservice/orgservice/internal/org"
)

// client sends the test's requests to the instances, all on 127.0.0.1.
type client struct {
	t    *testing.T
	apis []*apiclient.Client // one per instance
	ips  atomic.Uint32       // next X-Forwarded-For address

	mu     sync.Mutex
	counts map[string]int // answers by route and status
}

func newClient(t *testing.T, bases []string) *client {
	hc := &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 32, IdleConnTimeout: 30 * time.Second},
	}
	c := &client{t: t, counts: map[string]int{}}
	for _, b := range bases {
		c.apis = append(c.apis, apiclient.New(b, hc))
	}
	return c
}

// answer is a response, or status 0 with the transport error as body.
type answer = apiclient.Response

// nextIP returns a client address never used before in this run: a
// loopback address other than 127.0.0.1 (the trusted proxy), only ever
// written into X-Forwarded-For.
func (c *client) nextIP() string {
	n := c.ips.Add(1)
	return fmt.Sprintf("127.%d.%d.%d", 10+(n>>16)&0xff, (n>>8)&0xff, n&0xff)
}

// call sends one request to instance inst and counts its answer.
func (c *client) call(inst int, r apiclient.Request) answer {
	a, err := c.apis[inst].Do(context.Background(), r)
	if err != nil {
		a = answer{Body: []byte(err.Error())}
	}
	route, _, _ := strings.Cut(r.Path, "?")
	if strings.HasPrefix(route, "/api/v1/org/members/") && route != "/api/v1/org/members/me/sessions" {
		route = "/api/v1/org/members/{id}"
	}
	c.mu.Lock()
	c.counts[fmt.Sprintf("%s %s %d", r.Method, route, a.Status)]++
	c.mu.Unlock()
	return a
}

// answered returns how many answers route-and-status had, as stats names it.
func (c *client) answered(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[key]
}

// stats lists how many answers each route gave with each status.
func (c *client) stats() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, 0, len(c.counts))
	total := 0
	for k, n := range c.counts {
		keys = append(keys, k)
		total += n
	}
	slices.Sort(keys)
	var b strings.Builder
	fmt.Fprintf(&b, "%d in all", total)
	for _, k := range keys {
		fmt.Fprintf(&b, "\n  %-32s %d", k, c.counts[k])
	}
	return b.String()
}

func (c *client) create(inst int, name, email, password string) answer {
	return c.call(inst, apiclient.CreateOrg(name, email, password))
}

func (c *client) get(inst int, name string) answer {
	return c.call(inst, apiclient.GetOrg(name))
}

// getAs is get with token: a token of the organization sees all of it.
func (c *client) getAs(inst int, name, token string) answer {
	r := apiclient.GetOrg(name)
	r.Token = token
	return c.call(inst, r)
}

// refresh renews a session with its refresh token, from a client address
// of its own (refreshes count with the writes, which are unlimited here).
func (c *client) refresh(inst int, refreshToken string) answer {
	return c.call(inst, apiclient.Refresh(refreshToken).With("X-Forwarded-For", c.nextIP()))
}

func (c *client) logout(inst int, token string) answer {
	return c.call(inst, apiclient.Logout(token))
}

// login logs in from a client address of its own.
func (c *client) login(inst int, email, password string) answer {
	return c.loginFrom(inst, email, password, c.nextIP())
}

// loginFrom logs in from client address ip, as X-Forwarded-For names it.
func (c *client) loginFrom(inst int, email, password, ip string) answer {
	return c.call(inst, apiclient.Login(email, password).With("X-Forwarded-For", ip))
}

// update sends an update from a client address of its own: one carrying
// current_password is a password attempt, limited per address like a login.
func (c *client) update(inst int, token string, u apiclient.OrgUpdate) answer {
	return c.call(inst, apiclient.UpdateOrg(token, u).With("X-Forwarded-For", c.nextIP()))
}

func (c *client) remove(inst int, token, name string) answer {
	return c.call(inst, apiclient.DeleteOrg(token, name))
}

func (c *client) addMember(inst int, token, email, role string) answer {
	return c.call(inst, apiclient.AddMember(token, email, password, role))
}

func (c *client) removeMember(inst int, token, id string) answer {
	return c.call(inst, apiclient.RemoveMember(token, id))
}

// probe asks instance inst whether it accepts token, changing nothing: a
// delete without the organization_name parameter is authenticated first
// (401 when the token is refused) and then refused as a bad request (400).
func (c *client) probe(inst int, token string) answer {
	return c.call(inst, apiclient.Request{Method: http.MethodDelete, Path: "/api/v1/org/delete", Token: token})
}

// expect reports an error unless a's status is one of want.
func (c *client) expect(what string, a answer, want ...int) bool {
	c.t.Helper()
	if slices.Contains(want, a.Status) {
		return true
	}
	c.t.Errorf("%s: got %s, want status %v", what, a, want)
	return false
}

func decodeOrg(a answer) (apiclient.Organization, error) {
	var o apiclient.Organization
	err := a.JSON(&o)
	return o, err
}

func accessToken(a answer) string {
	var v apiclient.Token
	_ = a.JSON(&v)
	return v.AccessToken
}

func refreshToken(a answer) string {
	var v apiclient.Token
	_ = a.JSON(&v)
	return v.RefreshToken
}

// parallel runs tasks on workers goroutines and waits for them all.
func parallel(workers int, tasks []func()) {
	ch := make(chan func())
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range ch {
				f()
			}
		}()
	}
	for _, f := range tasks {
		ch <- f
	}
	close(ch)
	wg.Wait()
}

// race runs fns at the same moment and returns their answers in order.
func race(fns ...func() answer) []answer {
	out := make([]answer, len(fns))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, f := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			out[i] = f()
		}()
	}
	close(start)
	wg.Wait()
	return out
}

// count returns how many answers have one of the statuses.
func count(as []answer, statuses ...int) int {
	n := 0
	for _, a := range as {
		if slices.Contains(statuses, a.Status) {
			n++
		}
	}
	return n
}

// slug is the service's slug rule.
func slug(name string) string { return org.Slug(name) }

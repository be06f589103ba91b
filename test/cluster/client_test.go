//go:build cluster

package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orgservice/orgservice/internal/org"
)

// client sends the test's requests to the instances, all on 127.0.0.1.
type client struct {
	t     *testing.T
	bases []string // base URL of each instance
	hc    *http.Client
	ips   atomic.Uint32 // next X-Forwarded-For address

	mu     sync.Mutex
	counts map[string]int // answers by route and status
}

func newClient(t *testing.T, bases []string) *client {
	return &client{t: t, bases: bases, counts: map[string]int{}, hc: &http.Client{
		Timeout:   30 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 32, IdleConnTimeout: 30 * time.Second},
	}}
}

// answer is a response, or status 0 with the transport error as body.
type answer struct {
	status int
	body   []byte
	header http.Header
}

func (a answer) String() string {
	return fmt.Sprintf("%d %s", a.status, bytes.TrimSpace(a.body))
}

// nextIP returns a client address never used before in this run: a
// loopback address other than 127.0.0.1 (the trusted proxy), only ever
// written into X-Forwarded-For.
func (c *client) nextIP() string {
	n := c.ips.Add(1)
	return fmt.Sprintf("127.%d.%d.%d", 10+(n>>16)&0xff, (n>>8)&0xff, n&0xff)
}

// call sends one request to instance inst. xff, when not empty, is the
// client address the service sees.
func (c *client) call(inst int, method, path, token string, body any, xff string) answer {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			panic(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.bases[inst]+path, rd)
	if err != nil {
		panic(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	r, err := c.hc.Do(req)
	a := answer{body: []byte(fmt.Sprint(err))}
	if err == nil {
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		a = answer{status: r.StatusCode, body: b, header: r.Header}
	}
	route, _, _ := strings.Cut(path, "?")
	if strings.HasPrefix(route, "/api/v1/org/members/") {
		route = "/api/v1/org/members/{id}"
	}
	c.mu.Lock()
	c.counts[fmt.Sprintf("%s %s %d", method, route, a.status)]++
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
	return c.call(inst, http.MethodPost, "/api/v1/org/create", "",
		map[string]string{"organization_name": name, "email": email, "password": password}, "")
}

func (c *client) get(inst int, name string) answer {
	return c.call(inst, http.MethodGet, "/api/v1/org/get?organization_name="+url.QueryEscape(name), "", nil, "")
}

// login logs in from a client address of its own.
func (c *client) login(inst int, email, password string) answer {
	return c.loginFrom(inst, email, password, c.nextIP())
}

func (c *client) loginFrom(inst int, email, password, ip string) answer {
	return c.call(inst, http.MethodPost, "/api/v1/admin/login", "",
		map[string]string{"email": email, "password": password}, ip)
}

func (c *client) update(inst int, token string, fields map[string]string) answer {
	return c.call(inst, http.MethodPut, "/api/v1/org/update", token, fields, "")
}

func (c *client) remove(inst int, token, name string) answer {
	return c.call(inst, http.MethodDelete, "/api/v1/org/delete?organization_name="+url.QueryEscape(name), token, nil, "")
}

func (c *client) addMember(inst int, token, email, role string) answer {
	return c.call(inst, http.MethodPost, "/api/v1/org/members", token,
		map[string]string{"email": email, "password": "password-1", "role": role}, "")
}

func (c *client) removeMember(inst int, token, id string) answer {
	return c.call(inst, http.MethodDelete, "/api/v1/org/members/"+url.PathEscape(id), token, nil, "")
}

// probe asks instance inst whether it accepts token, changing nothing: a
// delete without the organization_name parameter is authenticated first
// (401 when the token is refused) and then refused as a bad request (400).
func (c *client) probe(inst int, token string) answer {
	return c.call(inst, http.MethodDelete, "/api/v1/org/delete", token, nil, "")
}

// expect reports an error unless a's status is one of want.
func (c *client) expect(what string, a answer, want ...int) bool {
	c.t.Helper()
	if slices.Contains(want, a.status) {
		return true
	}
	c.t.Errorf("%s: got %s, want status %v", what, a, want)
	return false
}

// orgJSON is an Organization answer.
type orgJSON struct {
	ID         string    `json:"id"`
	Name       string    `json:"organization_name"`
	Collection string    `json:"collection_name"`
	Email      string    `json:"admin_email"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

func decodeOrg(a answer) (orgJSON, error) {
	var o orgJSON
	err := json.Unmarshal(a.body, &o)
	return o, err
}

func accessToken(a answer) string {
	var v struct {
		AccessToken string `json:"access_token"`
	}
	_ = json.Unmarshal(a.body, &v)
	return v.AccessToken
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
		if slices.Contains(statuses, a.status) {
			n++
		}
	}
	return n
}

// slug is the service's slug rule.
func slug(name string) string { return org.Slug(name) }

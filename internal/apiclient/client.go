// Package apiclient speaks the organization service's public HTTP API, the
// /api/v1 endpoints, and nothing specific to this implementation: the
// black-box tests (test/crash, test/cluster) and the load harness
// (cmd/orgbench) use it, and the harness can point it at any server with
// the same API. It imports none of the service's packages.
//
// A Request is a value built once by the function named for its operation
// (CreateOrg, Login, AddMember, CreateDocument, ReadAudit…); a Client sends it to one
// instance, in one of three ways: Do returns any answer whole, Call wants
// one status and decodes the body, Send wants one status and discards the
// body unread, which keeps a load generator's own CPU per request small.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// Client sends requests to one instance of the service. Clients of several
// instances may share one *http.Client.
type Client struct {
	base string
	hc   *http.Client
}

// New returns a client of the instance at base (scheme, host and port, as
// "http://127.0.0.1:8080") over hc; a nil hc is http.DefaultClient.
func New(base string, hc *http.Client) *Client {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimRight(base, "/"), hc: hc}
}

// CloseIdleConnections closes the connections the client's transport keeps
// idle.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// Response is an answer: its status, its header and its body.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v.
func (r Response) JSON(v any) error { return json.Unmarshal(r.Body, v) }

// String is the status and the body, for messages.
func (r Response) String() string {
	return fmt.Sprintf("%d %s", r.Status, bytes.TrimSpace(r.Body))
}

// StatusError is an answer with another status than the one wanted, with
// the beginning of its body.
type StatusError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: status %d: %s", e.Method, e.Path, e.Status, e.Body)
}

// Do sends r and returns the answer, whatever its status. The error is
// not nil only when no answer came.
func (c *Client) Do(ctx context.Context, r Request) (Response, error) {
	resp, err := c.roundTrip(ctx, r)
	if err != nil {
		return Response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return Response{}, err
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// Call sends r and decodes the JSON body of an answer of status want into
// v. Another status is a *StatusError.
func (c *Client) Call(ctx context.Context, r Request, want int, v any) error {
	b, err := c.expect(ctx, r, want, true)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// Send sends r and reads the answer to its end without keeping it: the
// cheap path of a load generator. Another status than want is a
// *StatusError.
func (c *Client) Send(ctx context.Context, r Request, want int) error {
	_, err := c.expect(ctx, r, want, false)
	return err
}

// Token logs in as email and returns the access token. Another status than
// 200 is a *StatusError.
func (c *Client) Token(ctx context.Context, email, password string) (string, error) {
	b, err := c.expect(ctx, Login(email, password), http.StatusOK, true)
	if err != nil {
		return "", err
	}
	var t Token
	if err := json.Unmarshal(b, &t); err != nil {
		return "", err
	}
	if t.AccessToken == "" {
		return "", fmt.Errorf("login: no access_token in %s", b)
	}
	return t.AccessToken, nil
}

// expect sends r and returns the body of an answer of status want when
// keep is set; otherwise the body is discarded unread into memory.
func (c *Client) expect(ctx context.Context, r Request, want int, keep bool) ([]byte, error) {
	resp, err := c.roundTrip(ctx, r)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, &StatusError{Method: r.Method, Path: r.Path, Status: resp.StatusCode, Body: string(b)}
	}
	if !keep {
		_, err = io.Copy(io.Discard, resp.Body)
		return nil, err
	}
	return io.ReadAll(resp.Body)
}

func (c *Client) roundTrip(ctx context.Context, r Request) (*http.Response, error) {
	req, err := r.httpRequest(ctx, c.base)
	if err != nil {
		return nil, err
	}
	return c.hc.Do(req)
}

// httpRequest is r as an *http.Request to the instance at base.
func (r Request) httpRequest(ctx context.Context, base string) (*http.Request, error) {
	var body io.Reader
	if r.Body != nil {
		body = bytes.NewReader(r.Body)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, base+r.Path, body)
	if err != nil {
		return nil, err
	}
	if r.Body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	for k, vs := range r.Header {
		req.Header[k] = vs
	}
	return req, nil
}

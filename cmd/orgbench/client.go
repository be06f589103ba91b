package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// apiClient speaks the service's HTTP API: the /api/v1 endpoints, and
// nothing specific to this implementation, so it can target any server with
// the same API.
type apiClient struct {
	base string
	hc   *http.Client
}

func newAPIClient(base string, clients int) *apiClient {
	return &apiClient{
		base: strings.TrimRight(base, "/"),
		hc: &http.Client{
			// Long enough for a rename that copies a million documents.
			Timeout: 30 * time.Minute,
			Transport: &http.Transport{
				MaxIdleConns:        4 * clients,
				MaxIdleConnsPerHost: 4 * clients,
				IdleConnTimeout:     90 * time.Second,
				DisableCompression:  true,
			},
		},
	}
}

// orgInfo is what the harness keeps of an Organization response.
type orgInfo struct {
	ID             string `json:"id"`
	Name           string `json:"organization_name"`
	CollectionName string `json:"collection_name"`
	Email          string `json:"admin_email"`
}

// statusError is an unexpected answer.
type statusError struct {
	op     string
	status int
	body   string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s: status %d: %s", e.op, e.status, e.body)
}

// do sends one request and returns the body of a response with status want.
// keep reports whether the body is wanted; otherwise it is discarded unread
// into memory, which keeps the harness's own CPU per request small.
func (c *apiClient) do(ctx context.Context, method, path, token string, body []byte, want int, keep bool) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, &statusError{op: method + " " + path, status: resp.StatusCode, body: string(b)}
	}
	if !keep {
		_, err = io.Copy(io.Discard, resp.Body)
		return nil, err
	}
	return io.ReadAll(resp.Body)
}

func (c *apiClient) create(ctx context.Context, name, email, password string) (orgInfo, error) {
	body, _ := json.Marshal(map[string]string{"organization_name": name, "email": email, "password": password})
	b, err := c.do(ctx, http.MethodPost, "/api/v1/org/create", "", body, http.StatusCreated, true)
	if err != nil {
		return orgInfo{}, err
	}
	var o orgInfo
	return o, json.Unmarshal(b, &o)
}

// getPath is the request path of a lookup; callers build it once per organization.
func getPath(name string) string {
	return "/api/v1/org/get?organization_name=" + url.QueryEscape(name)
}

func (c *apiClient) getOrg(ctx context.Context, path string) (orgInfo, error) {
	b, err := c.do(ctx, http.MethodGet, path, "", nil, http.StatusOK, true)
	if err != nil {
		return orgInfo{}, err
	}
	var o orgInfo
	return o, json.Unmarshal(b, &o)
}

func (c *apiClient) get(ctx context.Context, path string) error {
	_, err := c.do(ctx, http.MethodGet, path, "", nil, http.StatusOK, false)
	return err
}

func (c *apiClient) login(ctx context.Context, email, password string) (string, error) {
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	b, err := c.do(ctx, http.MethodPost, "/api/v1/admin/login", "", body, http.StatusOK, true)
	if err != nil {
		return "", err
	}
	var t struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.Unmarshal(b, &t); err != nil {
		return "", err
	}
	if t.AccessToken == "" {
		return "", fmt.Errorf("login: no access_token in %s", b)
	}
	return t.AccessToken, nil
}

// loginBody is the request body of a login, built once per admin.
func loginBody(email, password string) []byte {
	b, _ := json.Marshal(map[string]string{"email": email, "password": password})
	return b
}

func (c *apiClient) loginRaw(ctx context.Context, body []byte) error {
	_, err := c.do(ctx, http.MethodPost, "/api/v1/admin/login", "", body, http.StatusOK, false)
	return err
}

func (c *apiClient) rename(ctx context.Context, token, name string) (orgInfo, error) {
	body, _ := json.Marshal(map[string]string{"organization_name": name})
	b, err := c.do(ctx, http.MethodPut, "/api/v1/org/update", token, body, http.StatusOK, true)
	if err != nil {
		return orgInfo{}, err
	}
	var o orgInfo
	return o, json.Unmarshal(b, &o)
}

// getDoc reads a documents resource (a document, a page, an export) to its end.
func (c *apiClient) getDoc(ctx context.Context, token, path string) error {
	_, err := c.do(ctx, http.MethodGet, path, token, nil, http.StatusOK, false)
	return err
}

// postDoc creates a document.
func (c *apiClient) postDoc(ctx context.Context, token string, body []byte) error {
	_, err := c.do(ctx, http.MethodPost, "/api/v1/org/documents", token, body, http.StatusCreated, false)
	return err
}

func (c *apiClient) close() { c.hc.CloseIdleConnections() }

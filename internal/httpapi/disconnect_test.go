package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/orgservice/orgservice/internal/org"
)

// A request whose client has gone is logged as 499, not answered as a 500
// internal error (which would page someone for a closed browser tab).
func TestClientGoneIsNotAnInternalError(t *testing.T) {
	e := newEnv(t, org.Config{})
	e.create("Acme", "admin@acme.com", "password-1")
	tok := e.login("admin@acme.com", "password-1")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodPut, "/api/v1/org/update", strings.NewReader(`{"organization_name":"Renamed"}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	rec := httptest.NewRecorder()
	e.srv.ServeHTTP(rec, req)
	assert.Equal(t, 499, rec.Code, "%s", rec.Body)
	assert.NoError(t, e.orgs.Wait(context.Background()))
}

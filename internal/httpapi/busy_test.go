package httpapi_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orgservice/orgservice/internal/org"
)

// While another instance runs an operation on an organization, its writes
// answer 409 "operation in progress" with Retry-After and change nothing;
// reads keep working; once the operation ends, writes go through.
func TestWritesDuringAnOperationAreRefused(t *testing.T) {
	e := newEnv(t, org.Config{})
	created := e.create("Acme", "admin@acme.com", "password-1")
	tok := e.login("admin@acme.com", "password-1")
	id := created["id"].(string)

	ctx := context.Background()
	require.NoError(t, e.stores.Leases.Acquire(ctx, id, "another-instance", time.Minute))

	for _, tc := range []struct{ method, target, body string }{
		{http.MethodPut, "/api/v1/org/update", `{"organization_name":"Renamed"}`},
		{http.MethodPut, "/api/v1/org/update", `{"password":"password-2","current_password":"password-1"}`},
		{http.MethodDelete, "/api/v1/org/delete?organization_name=Acme", ""},
	} {
		r := e.do(tc.method, tc.target, tc.body, tok)
		require.Equal(t, http.StatusConflict, r.Status, "%s %s: %s", tc.method, tc.target, r.Body)
		assert.Equal(t, "https://orgservice.dev/problems/operation-in-progress", r.JSON(t)["type"])
		assert.NotEmpty(t, r.Header.Get("Retry-After"))
	}
	r := e.do(http.MethodGet, "/api/v1/org/get?organization_name=acme", "", "")
	require.Equal(t, http.StatusOK, r.Status)
	assert.Equal(t, []string{"org_acme"}, e.collections(), "nothing moved")
	e.login("admin@acme.com", "password-1") // password unchanged

	require.NoError(t, e.stores.Leases.Release(ctx, id, "another-instance"))
	r = e.do(http.MethodPut, "/api/v1/org/update", `{"organization_name":"Renamed"}`, tok)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.Equal(t, []string{"org_renamed"}, e.collections())
}

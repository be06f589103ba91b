package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orgservice/orgservice/internal/org"
)

func TestLifecycleSmoke(t *testing.T) {
	e := newEnv(t, org.Config{})
	e.create("Acme Corp", "admin@acme.com", "s3cretpass")
	tok := e.login("ADMIN@acme.com", "s3cretpass")
	r := e.do(http.MethodPut, "/api/v1/org/update", `{"organization_name":"Globex"}`, tok)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.Equal(t, []string{"org_globex"}, e.collections())
	r = e.do(http.MethodDelete, "/api/v1/org/delete?organization_name=globex", "", tok)
	require.Equal(t, http.StatusNoContent, r.Status, "%s", r.Body)
	assert.Empty(t, e.collections())
	assert.Zero(t, e.orgDocs())
}

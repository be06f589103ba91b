package apiclient

import (
	"context"
	"net/url"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/stretchr/testify/require"

	"github.com/orgservice/orgservice/api"
)

// Every request the package builds is one the published spec describes,
// with a body its schema accepts: the client speaks the API, not this
// implementation of it.
func TestRequestsMatchTheSpec(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(api.Spec)
	require.NoError(t, err)
	router, err := gorillamux.NewRouter(doc)
	require.NoError(t, err)
	suspended, quota := "suspended", int64(1000)
	for name, r := range map[string]Request{
		"create":          CreateOrg("Acme Corp", "admin@acme.test", "correct-horse"),
		"get":             GetOrg("Acme Corp"),
		"login":           Login("admin@acme.test", "correct-horse").With("X-Forwarded-For", "127.10.0.1"),
		"rename":          UpdateOrg("tok", OrgUpdate{Name: "Globex"}),
		"credentials":     UpdateOrg("tok", OrgUpdate{Email: "it@acme.test", Password: "new-correct-horse", CurrentPassword: "correct-horse"}),
		"refresh":         Refresh("3f45e423abfc67364009cdd4e041f567.q0Vd2m1X0c6sWmJ8hQy4l1mXo9e0n3t6rPzK2bYwA5c"),
		"logout":          Logout("tok"),
		"sessions":        Sessions("tok"),
		"end session":     EndSession("tok", "3f45e423abfc67364009cdd4e041f567"),
		"delete":          DeleteOrg("tok", "Acme Corp"),
		"add member":      AddMember("tok", "dev@acme.test", "correct-horse-2", "member"),
		"set role":        SetRole("tok", "665f1c2e8b3a4d0012ab34cf", "owner"),
		"remove member":   RemoveMember("tok", "665f1c2e8b3a4d0012ab34cf"),
		"me":              Me("tok"),
		"create document": CreateDocument("tok", []byte(`{"id":"inv-1001","total":1250.5}`)),
		"get document":    GetDocument("tok", "inv-1001"),
		"list documents":  ListDocuments("tok", url.Values{"limit": {"100"}, "after": {"aW52LTEwMDE"}}),
		"patch document":  PatchDocument("tok", "inv-1001", []byte(`{"paid":true}`)).With("If-Match", `"1"`),
		"export":          Export("tok"),
		"import":          Import("tok", []byte(`{"id":"inv-1001","data":{"total":1}}`+"\n")),
		"audit":           ReadAudit("tok", "1717492526120000000-3fa2c9d1", 20),
		"usage":           ReadUsage("tok"),
		"operator list":   OperatorOrgs("key", url.Values{"q": {"acme"}, "status": {"suspended"}, "sort": {"-storage_bytes"}, "limit": {"10"}}),
		"operator get":    OperatorOrg("key", "665f1c2e8b3a4d0012ab34cd"),
		"operator patch": OperatorPatch("key", "665f1c2e8b3a4d0012ab34cd", OperatorChange{
			Status: &suspended, Quotas: map[string]*int64{"documents": &quota, "members": nil}, Metadata: map[string]*string{"plan": &suspended, "old": nil}}),
		"operator recount": OperatorRecount("key", "665f1c2e8b3a4d0012ab34cd"),
	} {
		t.Run(name, func(t *testing.T) {
			req, err := r.httpRequest(context.Background(), "http://orgservice.test")
			require.NoError(t, err)
			route, params, err := router.FindRoute(req)
			require.NoError(t, err, "%s %s", r.Method, r.Path)
			require.NoError(t, openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
				Request: req, PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
			}))
		})
	}
}

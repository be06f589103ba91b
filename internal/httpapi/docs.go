package httpapi

import (
	"io/fs"
	"net/http"
	"strings"

	"github.com/swaggest/swgui"
	"github.com/swaggest/swgui/v5/static"
	"github.com/swaggest/swgui/v5emb"

	"github.com/orgservice/orgservice/api"
)

// docsCSP is the Content-Security-Policy of the Swagger UI pages. The page
// swgui renders carries an inline <script> (its configuration) and an inline
// <style>, and Swagger UI sets style attributes and draws data: images; all
// else, the spec it fetches included, comes from this origin.
const docsCSP = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; " +
	"base-uri 'self'; form-action 'self'; frame-ancestors 'none'"

// openAPISpec serves the embedded OpenAPI document.
func openAPISpec(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(api.Spec)
}

// swaggerUI serves Swagger UI and its assets, embedded in the binary, at
// /docs and below, reading the spec from /openapi.yaml. A path under /docs/
// that is no asset is the usual 404 problem.
func (s *Server) swaggerUI() http.Handler {
	ui := v5emb.NewHandlerWithConfig(swgui.Config{
		Title:       "orgservice",
		SwaggerJSON: "/openapi.yaml",
		BasePath:    "/docs/",
		SettingsUI: map[string]string{
			// Keep the token entered under "Authorize" across page reloads.
			"persistAuthorization": "true",
		},
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if asset := strings.TrimPrefix(r.URL.Path, "/docs/"); asset != r.URL.Path && asset != "" && !isDocsAsset(asset) {
			s.notFound(w, r)
			return
		}
		w.Header().Set("Content-Security-Policy", docsCSP)
		ui.ServeHTTP(w, r)
	})
}

// isDocsAsset reports whether Swagger UI's embedded files hold name, as is
// or gzipped.
func isDocsAsset(name string) bool {
	if !fs.ValidPath(name) {
		return false
	}
	for _, n := range []string{name, name + ".gz"} {
		if fi, err := fs.Stat(static.FS, n); err == nil && !fi.IsDir() {
			return true
		}
	}
	return false
}

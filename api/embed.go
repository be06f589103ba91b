// Package api holds the service's OpenAPI 3.0.3 description.
package api

import _ "embed"

// Spec is the OpenAPI 3.0.3 document (openapi.yaml) describing the
// orgservice HTTP API. It is embedded at build time and served verbatim at
// GET /openapi.yaml, where the Swagger UI at /docs reads it.
//
//go:embed openapi.yaml
var Spec []byte

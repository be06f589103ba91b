package httpapi_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orgservice/orgservice/internal/httpapi"
	"github.com/orgservice/orgservice/internal/org"
)

const ndjson = "application/x-ndjson"

// An export imported into a fresh organization reproduces it exactly: ids,
// data (types included), versions and times. Importing it again skips
// every document.
func TestDocumentsExportImportRoundTrip(t *testing.T) {
	e := newEnv(t, org.Config{})
	a, b := e.tenant("Acme"), e.tenant("Globex")
	e.post(a, `{"id":"types","int":1,"big":9007199254740993,"float":1.0,"neg":-2.5e-9,"s":"é\n\"","t":true,"n":null,"arr":[1,"x",{"k":[]}],"obj":{"z":1,"a":2}}`)
	for i := range 540 { // more than one import batch
		e.post(a, fmt.Sprintf(`{"i":%d}`, i))
	}
	r := e.call(http.MethodPut, docsURL+"/types", `{"int":2,"float":2.0}`, a.token, "")
	require.Equal(t, http.StatusOK, r.Status)
	r = e.call(http.MethodPatch, docsURL+"/types", `{"more":[1.5]}`, a.token, "application/merge-patch+json")
	require.Equal(t, http.StatusOK, r.Status)

	exported := e.exportLines(a.token)
	require.Len(t, exported, 541)
	sp, err := loadSpec()
	require.NoError(t, err)
	for _, line := range exported[:50] {
		var v any
		require.NoError(t, json.Unmarshal([]byte(line), &v), line)
		require.NoError(t, sp.doc.Components.Schemas["Document"].Value.VisitJSON(v, openapi3.VisitAsResponse()), "an export line is a Document: %s", line)
	}
	assert.Contains(t, strings.Join(exported, "\n"), `"float":2.0,"more":[1.5]},"version":3`)

	body := strings.Join(exported, "\n") + "\n"
	r = e.call(http.MethodPost, importURL, body, b.token, ndjson)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.JSONEq(t, `{"inserted":541,"skipped_existing":0,"rejected":[]}`, string(r.Body))
	assert.Equal(t, exported, e.exportLines(b.token), "the import reproduces the export")
	assert.Equal(t, e.stored(a.coll), e.stored(b.coll), "and the stored documents, BSON types included")

	r = e.call(http.MethodPost, importURL, body, b.token, ndjson)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.JSONEq(t, `{"inserted":0,"skipped_existing":541,"rejected":[]}`, string(r.Body))

	// The imported documents are documents like any other.
	r = e.call(http.MethodPut, docsURL+"/types", `{"v":4}`, b.token, "", "If-Match", `"3"`)
	require.Equal(t, http.StatusOK, r.Status, "%s", r.Body)
	assert.EqualValues(t, 4, r.JSON(t)["version"])
}

func TestDocumentsImportRejectsBadLines(t *testing.T) {
	e := newEnv(t, org.Config{})
	a := e.tenant("Acme")
	e.post(a, `{"id":"exists","v":1}`)
	lines := []string{
		`{"id":"ok-1","data":{"a":1},"version":4,"created_at":"2024-06-04T09:15:26.12Z","updated_at":"2024-06-05T09:15:26Z"}`, // 1
		``,                                      // 2: blank, ignored
		`{"data":{"generated":true}}`,           // 3: id made, version 1
		`not json`,                              // 4
		`{"id":"x","data":{"$where":"1"}}`,      // 5
		`{"id":"x","data":{"a.b":1}}`,           // 6
		`{"id":"x"}`,                            // 7: no data
		`{"id":"x","data":[]}`,                  // 8
		`{"id":"bad id","data":{}}`,             // 9
		`{"id":"x","data":{},"version":0}`,      // 10
		`{"id":"x","data":{},"version":1.5}`,    // 11
		`{"id":"x","data":{},"created_at":"x"}`, // 12
		`{"id":"x","data":{},"extra":1}`,        // 13
		`[1]`,                                   // 14
		`{"id":"x","data":{"s":"` + strings.Repeat("y", 300<<10) + `"}}`, // 15: too long
		`{"id":"exists","data":{"v":2}}`,                                 // 16: skipped
		`{"id":"ok-2","data":{"b":2}}`,                                   // 17, no newline at the end
	}
	r := e.call(http.MethodPost, importURL, strings.Join(lines, "\n"), a.token, ndjson)
	require.Equal(t, http.StatusOK, r.Status, "%.500s", r.Body)
	var res struct {
		Inserted int `json:"inserted"`
		Skipped  int `json:"skipped_existing"`
		Rejected []struct {
			Line    int
			Message string
		}
	}
	require.NoError(t, json.Unmarshal(r.Body, &res))
	assert.Equal(t, 3, res.Inserted)
	assert.Equal(t, 1, res.Skipped)
	var rejected []int
	for _, rj := range res.Rejected {
		rejected = append(rejected, rj.Line)
		assert.NotEmpty(t, rj.Message)
	}
	assert.Equal(t, []int{4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, rejected)

	st := e.stored(a.coll)
	assert.Len(t, st, 4)
	assert.Equal(t, int32(4), st["ok-1"]["version"])
	assert.Equal(t, int32(1), dataOf(st["exists"])["v"], "an existing document is left as it was")
	assert.NotContains(t, st, "x")

	// Only the first 100 rejections are listed.
	r = e.call(http.MethodPost, importURL, strings.Repeat("nope\n", 150), a.token, ndjson)
	require.Equal(t, http.StatusOK, r.Status)
	assert.Len(t, r.JSON(t)["rejected"], 100)
}

func TestDocumentsImportLimit(t *testing.T) {
	e := newEnvWith(t, org.Config{}, httpapi.Options{ImportMaxBytes: 4096})
	a := e.tenant("Acme")
	var sb strings.Builder
	for i := 0; sb.Len() < 8192; i++ {
		fmt.Fprintf(&sb, `{"id":"d%04d","data":{"pad":"%s"}}`+"\n", i, strings.Repeat("p", 40))
	}

	// With a Content-Length over the limit nothing is read.
	r := e.call(http.MethodPost, importURL, sb.String(), a.token, ndjson)
	p := assertProblem(t, r, http.StatusRequestEntityTooLarge)
	assert.Contains(t, p["detail"], "IMPORT_MAX_BYTES")
	assert.Empty(t, e.stored(a.coll))

	// Streamed without one, it is cut off at the limit.
	req := httptest.NewRequest(http.MethodPost, importURL, io.MultiReader(strings.NewReader(sb.String())))
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", ndjson)
	r = e.send(req)
	assertProblem(t, r, http.StatusRequestEntityTooLarge)
	assert.Less(t, len(e.stored(a.coll)), 4096/60, "no more than the lines within the limit")
}

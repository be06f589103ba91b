package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/orgservice/orgservice/internal/document"
	"github.com/orgservice/orgservice/internal/org"
)

// Documents is what the API needs from the tenant documents service.
type Documents interface {
	MaxBytes() int
	Create(ctx context.Context, p org.Principal, data document.Object) (*document.Document, error)
	Get(ctx context.Context, p org.Principal, id string) (*document.Document, error)
	Replace(ctx context.Context, p org.Principal, id string, data document.Object, m document.Match) (*document.Document, error)
	Patch(ctx context.Context, p org.Principal, id string, patch document.Object, m document.Match) (*document.Document, error)
	Delete(ctx context.Context, p org.Principal, id string, m document.Match) error
	List(ctx context.Context, p org.Principal, q document.Query) (document.Page, error)
	Export(ctx context.Context, p org.Principal, fn func(*document.Document) error) error
	Import(ctx context.Context, p org.Principal, r io.Reader) (document.ImportResult, error)
}

var _ Documents = (*document.Service)(nil)

// documentsPath is where documents live; a document's URL is documentsPath/<id>.
const documentsPath = "/api/v1/org/documents"

// readDocument reads a body that must be one JSON object within the
// document size limit: 413 over it, 400 when malformed, 422 when it breaks
// a rule of documents.
func (s *Server) readDocument(w http.ResponseWriter, r *http.Request) (document.Object, error) {
	max := s.docs.MaxBytes()
	r.Body = http.MaxBytesReader(w, r.Body, int64(max))
	var buf bytes.Buffer
	if r.ContentLength > 0 && r.ContentLength <= int64(max) {
		buf.Grow(int(r.ContentLength))
	}
	if _, err := buf.ReadFrom(r.Body); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, &requestError{http.StatusRequestEntityTooLarge, "payload-too-large", "Payload too large",
				fmt.Sprintf("the document exceeds %d bytes", max)}
		}
		return nil, badRequest("the request body could not be read")
	}
	obj, err := document.ParseObject(buf.Bytes())
	var se *document.SyntaxError
	if errors.As(err, &se) {
		return nil, badRequest(se.Msg)
	}
	return obj, err
}

// writeDocument answers d with its version as ETag.
func writeDocument(w http.ResponseWriter, status int, d *document.Document) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("ETag", etag(d.Version))
	w.WriteHeader(status)
	_, _ = w.Write(append(d.AppendJSON(make([]byte, 0, 256)), '\n'))
}

func etag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }

// ifMatch reads If-Match: * or a list of strong entity tags "<version>".
// A weak or foreign tag never matches (RFC 9110 compares If-Match strongly).
func ifMatch(r *http.Request) document.Match {
	vals := r.Header.Values("If-Match")
	if len(vals) == 0 {
		return document.Match{}
	}
	var versions []int64
	for _, tag := range strings.Split(strings.Join(vals, ","), ",") {
		tag = strings.TrimSpace(tag)
		if tag == "*" {
			return document.MatchAny()
		}
		if v, ok := parseTag(tag); ok {
			versions = append(versions, v)
		}
	}
	return document.MatchVersions(versions...)
}

func parseTag(tag string) (int64, bool) {
	if len(tag) < 3 || tag[0] != '"' || tag[len(tag)-1] != '"' {
		return 0, false
	}
	v, err := strconv.ParseInt(tag[1:len(tag)-1], 10, 64)
	return v, err == nil && v >= 0
}

// noneMatch reports whether If-None-Match names version (or is *); it
// compares weakly, as RFC 9110 says.
func noneMatch(r *http.Request, version int64) bool {
	for _, v := range r.Header.Values("If-None-Match") {
		for _, tag := range strings.Split(v, ",") {
			tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
			if tag == "*" {
				return true
			}
			if n, ok := parseTag(tag); ok && n == version {
				return true
			}
		}
	}
	return false
}

func (s *Server) createDocument(w http.ResponseWriter, r *http.Request) {
	data, err := s.readDocument(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, _ := principal(r.Context())
	d, err := s.docs.Create(r.Context(), p, data)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Location", documentsPath+"/"+d.ID)
	writeDocument(w, http.StatusCreated, d)
}

func (s *Server) getDocument(w http.ResponseWriter, r *http.Request) {
	p, _ := principal(r.Context())
	d, err := s.docs.Get(r.Context(), p, chi.URLParam(r, "id"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if noneMatch(r, d.Version) {
		w.Header().Set("ETag", etag(d.Version))
		w.WriteHeader(http.StatusNotModified)
		return
	}
	writeDocument(w, http.StatusOK, d)
}

func (s *Server) replaceDocument(w http.ResponseWriter, r *http.Request) {
	data, err := s.readDocument(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, _ := principal(r.Context())
	d, err := s.docs.Replace(r.Context(), p, chi.URLParam(r, "id"), data, ifMatch(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeDocument(w, http.StatusOK, d)
}

// mergePatchType is the media type of RFC 7396 merge patches.
const mergePatchType = "application/merge-patch+json"

func (s *Server) patchDocument(w http.ResponseWriter, r *http.Request) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != mergePatchType {
		s.fail(w, r, &requestError{http.StatusUnsupportedMediaType, "unsupported-media-type", "Unsupported media type",
			"a PATCH body is a JSON merge patch (RFC 7396): send Content-Type: " + mergePatchType})
		return
	}
	patch, err := s.readDocument(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, _ := principal(r.Context())
	d, err := s.docs.Patch(r.Context(), p, chi.URLParam(r, "id"), patch, ifMatch(r))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeDocument(w, http.StatusOK, d)
}

func (s *Server) deleteDocument(w http.ResponseWriter, r *http.Request) {
	p, _ := principal(r.Context())
	if err := s.docs.Delete(r.Context(), p, chi.URLParam(r, "id"), ifMatch(r)); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// listQuery reads limit, after and filter[FIELD]; anything else, a
// repeated parameter or a value out of its rules is a 400.
func listQuery(r *http.Request) (document.Query, error) {
	var q document.Query
	for key, vals := range r.URL.Query() {
		if len(vals) != 1 {
			return q, badRequest("the query parameter " + key + " is given more than once")
		}
		v := vals[0]
		switch {
		case key == "limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > document.MaxLimit {
				return q, badRequest(fmt.Sprintf("limit must be an integer from 1 to %d", document.MaxLimit))
			}
			q.Limit = n
		case key == "after":
			id, err := base64.RawURLEncoding.DecodeString(v)
			if err != nil || !document.ValidID(string(id)) {
				return q, badRequest("after must be a cursor from a previous page's next")
			}
			q.After = string(id)
		case strings.HasPrefix(key, "filter[") && strings.HasSuffix(key, "]"):
			field := key[len("filter[") : len(key)-1]
			if !document.ValidKey(field) {
				return q, badRequest("filter[" + field + "]: a filter names a top-level field of data: not empty, no $ at the start, no . or NUL")
			}
			val, ok := document.FilterValue(v)
			if !ok {
				return q, badRequest("filter[" + field + "]: the value must be a string, number, boolean or null, not an object or array")
			}
			q.Filters = append(q.Filters, document.Filter{Field: field, Value: val})
		default:
			return q, badRequest("unknown query parameter " + strconv.Quote(key) + "; use limit, after and filter[FIELD]")
		}
	}
	return q, nil
}

func (s *Server) listDocuments(w http.ResponseWriter, r *http.Request) {
	q, err := listQuery(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	p, _ := principal(r.Context())
	page, err := s.docs.List(r.Context(), p, q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	b := append(make([]byte, 0, 1024), `{"items":[`...)
	for i, d := range page.Items {
		if i > 0 {
			b = append(b, ',')
		}
		b = d.AppendJSON(b)
	}
	b = append(b, `],"next":`...)
	if page.Next == "" {
		b = append(b, "null"...)
	} else {
		cursor := base64.RawURLEncoding.EncodeToString([]byte(page.Next))
		b = strconv.AppendQuote(b, cursor)
		next := r.URL.Query()
		next.Set("after", cursor)
		w.Header().Set("Link", "<"+documentsPath+"?"+next.Encode()+`>; rel="next"`)
	}
	b = append(b, "}\n"...)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

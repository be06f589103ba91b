package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// MaxBodyBytes caps every request body.
const MaxBodyBytes = 1 << 20

// decode reads exactly one JSON object into a T: unknown fields, wrong
// types, an empty body, a non-object and trailing data are all 400s, and a
// body over MaxBodyBytes is a 413.
func decode[T any](w http.ResponseWriter, r *http.Request) (T, error) {
	var zero T
	r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	var v *T
	if err := dec.Decode(&v); err != nil {
		return zero, decodeError(err)
	}
	if v == nil {
		return zero, badRequest("the request body must be a JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return zero, decodeError(err)
		}
		return zero, badRequest("the request body must hold exactly one JSON object")
	}
	return *v, nil
}

func decodeError(err error) error {
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
		mbe *http.MaxBytesError
	)
	switch {
	case errors.Is(err, io.EOF):
		return badRequest("the request body is empty; a JSON object is required")
	case errors.As(err, &mbe):
		return &requestError{http.StatusRequestEntityTooLarge, "payload-too-large", "Payload too large",
			fmt.Sprintf("the request body exceeds %d bytes", MaxBodyBytes)}
	case errors.As(err, &syn), errors.Is(err, io.ErrUnexpectedEOF):
		return badRequest("the request body is not valid JSON")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return badRequest("the request body must be a JSON object")
		}
		return badRequest(fmt.Sprintf("field %q must be a %s", typ.Field, typ.Type.String()))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return badRequest("unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return badRequest("the request body could not be read")
}

// respond writes v as JSON with status.
func respond(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

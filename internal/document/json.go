package document

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/orgservice/orgservice/internal/errs"
)

// Object is a JSON object with its members in the order they were given,
// so that a document reads back, in the API and in a database shell, as it
// was written. Member values are nil, bool, string, int64 (a JSON number
// written without fraction or exponent that fits), float64 (any other
// number), Object or []any of these.
type Object []Member

// Member is one key and value of an Object.
type Member struct {
	Key   string
	Value any
}

// Get returns the value of key.
func (o Object) Get(key string) (any, bool) {
	for _, m := range o {
		if m.Key == key {
			return m.Value, true
		}
	}
	return nil, false
}

// without returns o minus key (o itself when key is absent).
func (o Object) without(key string) Object {
	for i, m := range o {
		if m.Key == key {
			out := make(Object, 0, len(o)-1)
			out = append(out, o[:i]...)
			return append(out, o[i+1:]...)
		}
	}
	return o
}

// SyntaxError is a body that is not one well-formed JSON object: the
// request itself is malformed, before any rule of the domain applies.
type SyntaxError struct{ Msg string }

func (e *SyntaxError) Error() string { return e.Msg }

// ParseObject reads data, which must be exactly one JSON object, and checks
// it against the rules every stored document follows: no key starts with $
// or holds a . or a NUL character, no key repeats within an object, objects
// and arrays nest at most MaxDepth deep, and numbers are finite. A
// malformed body or one that is not an object is a *SyntaxError; a broken
// rule is errs.Invalid naming the offending field's path. Nulls are kept as
// values; a merge patch reads them as deletions.
func ParseObject(data []byte) (Object, error) {
	if !json.Valid(data) {
		if len(bytes.TrimSpace(data)) == 0 {
			return nil, &SyntaxError{"the request body is empty; a JSON object is required"}
		}
		return nil, &SyntaxError{"the request body is not valid JSON"}
	}
	return parseValid(data, 1)
}

// parseValid is ParseObject for data that json.Valid has accepted, whose
// top-level object is at depth top (0 for an envelope around data).
func parseValid(data []byte, top int) (Object, error) {
	p := parser{b: data}
	p.skip()
	if p.b[p.i] != '{' {
		return nil, &SyntaxError{"the request body must be a JSON object"}
	}
	v, err := p.value(top)
	if err != nil {
		return nil, err
	}
	return v.(Object), nil
}

// parser reads JSON that json.Valid has accepted, so it checks the rules of
// documents, not the grammar.
type parser struct {
	b    []byte
	i    int
	path []string // of the value being read, for error messages
}

func (p *parser) skip() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) field() string {
	var sb strings.Builder
	for i, s := range p.path {
		if i > 0 && !strings.HasPrefix(s, "[") {
			sb.WriteByte('.')
		}
		sb.WriteString(s)
	}
	return sb.String()
}

func (p *parser) fail(format string, args ...any) error {
	f := p.field()
	if f == "" {
		f = "data"
	}
	return fieldErr(f, format, args...)
}

func (p *parser) value(depth int) (any, error) {
	p.skip()
	switch c := p.b[p.i]; {
	case c == '{' || c == '[':
		if depth > MaxDepth {
			return nil, p.fail("nests deeper than %d levels", MaxDepth)
		}
		if c == '{' {
			return p.object(depth)
		}
		return p.array(depth)
	case c == '"':
		return p.str(), nil
	case c == 't':
		p.i += 4
		return true, nil
	case c == 'f':
		p.i += 5
		return false, nil
	case c == 'n':
		p.i += 4
		return nil, nil
	default:
		return p.number()
	}
}

func (p *parser) object(depth int) (Object, error) {
	p.i++ // {
	var out Object
	var seen map[string]bool
	for {
		p.skip()
		if p.b[p.i] == '}' {
			p.i++
			if out == nil {
				out = Object{}
			}
			return out, nil
		}
		if p.b[p.i] == ',' {
			p.i++
			p.skip()
		}
		key := p.str()
		p.path = append(p.path, key)
		if msg := keyProblem(key); msg != "" {
			return nil, p.fail("%s", msg)
		}
		if len(out) < 16 {
			for _, m := range out {
				if m.Key == key {
					return nil, p.fail("is given twice")
				}
			}
		} else {
			if seen == nil {
				seen = make(map[string]bool, 2*len(out))
				for _, m := range out {
					seen[m.Key] = true
				}
			}
			if seen[key] {
				return nil, p.fail("is given twice")
			}
			seen[key] = true
		}
		p.skip()
		p.i++ // :
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		p.path = p.path[:len(p.path)-1]
		out = append(out, Member{Key: key, Value: v})
	}
}

func (p *parser) array(depth int) ([]any, error) {
	p.i++ // [
	out := []any{}
	for {
		p.skip()
		if p.b[p.i] == ']' {
			p.i++
			return out, nil
		}
		if p.b[p.i] == ',' {
			p.i++
		}
		p.path = append(p.path, "["+strconv.Itoa(len(out))+"]")
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		p.path = p.path[:len(p.path)-1]
		out = append(out, v)
	}
}

// str reads a string token; json.Valid has checked its escapes.
func (p *parser) str() string {
	start := p.i
	p.i++ // "
	escaped := false
	for {
		c := p.b[p.i]
		if c == '\\' {
			escaped = true
			p.i += 2
			continue
		}
		p.i++
		if c == '"' {
			break
		}
	}
	raw := p.b[start:p.i]
	if !escaped && utf8.Valid(raw) {
		return string(raw[1 : len(raw)-1])
	}
	var s string
	_ = json.Unmarshal(raw, &s) // valid by json.Valid; invalid UTF-8 becomes U+FFFD
	return s
}

func (p *parser) number() (any, error) {
	start := p.i
	float := false
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c == '.' || c == 'e' || c == 'E' {
			float = true
		} else if !(c >= '0' && c <= '9' || c == '-' || c == '+') {
			break
		}
		p.i++
	}
	tok := string(p.b[start:p.i])
	if !float {
		if n, err := strconv.ParseInt(tok, 10, 64); err == nil {
			return n, nil
		}
	}
	f, err := strconv.ParseFloat(tok, 64)
	if err != nil || math.IsInf(f, 0) {
		return nil, p.fail("is a number out of range")
	}
	return f, nil
}

// keyProblem says what is wrong with a key, or "". MongoDB reserves keys
// starting with $ for operators and reads . as a path; BSON keys end at NUL.
func keyProblem(key string) string {
	switch {
	case strings.HasPrefix(key, "$"):
		return "keys must not start with $"
	case strings.Contains(key, "."):
		return "keys must not contain ."
	case strings.ContainsRune(key, 0):
		return "keys must not contain NUL"
	}
	return ""
}

// ValidKey reports whether key may name a field of a document's data.
func ValidKey(key string) bool { return key != "" && keyProblem(key) == "" }

// depth returns how deeply v nests, an object or array counting 1.
func depth(v any) int {
	switch v := v.(type) {
	case Object:
		d := 0
		for _, m := range v {
			d = max(d, depth(m.Value))
		}
		return d + 1
	case []any:
		d := 0
		for _, e := range v {
			d = max(d, depth(e))
		}
		return d + 1
	}
	return 0
}

// takeID removes the top-level "id" member from data and returns it: a
// body names its document's id there, and the id is not part of the data.
// Errors: errs.Invalid when id is not a valid id string.
func takeID(data Object) (Object, string, bool, error) {
	v, ok := data.Get("id")
	if !ok {
		return data, "", false, nil
	}
	s, isString := v.(string)
	if !isString {
		return nil, "", false, &errs.Error{Kind: errs.Invalid, Message: "the document id is invalid",
			Fields: []errs.FieldError{{Field: "id", Message: "must be a string"}}}
	}
	if !ValidID(s) {
		return nil, "", false, invalidID("id")
	}
	return data.without("id"), s, true, nil
}

// FilterValue reads the value of a list filter: JSON when it parses as a
// string, number, boolean or null (42, true, null, "42"), else the text
// itself. ok is false for JSON objects and arrays, which are refused: a
// filter compares a field with one value and is never an operator.
func FilterValue(raw string) (v any, ok bool) {
	b := []byte(raw)
	if !json.Valid(b) {
		return raw, true
	}
	p := parser{b: b}
	p.skip()
	switch p.b[p.i] {
	case '{', '[':
		return nil, false
	}
	v, err := p.value(1)
	if err != nil { // a number out of range
		return raw, true
	}
	return v, true
}

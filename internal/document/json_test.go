package document

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/orgservice/orgservice/internal/errs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func nested(n int) string {
	return strings.Repeat(`{"a":`, n-1) + "{}" + strings.Repeat("}", n-1)
}

func TestParseObjectRules(t *testing.T) {
	tests := []struct {
		name, body string
		syntax     bool   // a *SyntaxError (400)
		field      string // errs.Invalid naming this field; "" when valid
	}{
		{name: "object", body: `{"a":1,"b":[true,null,"x",{"c":2.5}]}`},
		{name: "empty object", body: ` {} `},
		{name: "empty body", body: ``, syntax: true},
		{name: "not JSON", body: `{"a":`, syntax: true},
		{name: "array", body: `[1,2]`, syntax: true},
		{name: "string", body: `"x"`, syntax: true},
		{name: "trailing data", body: `{} {}`, syntax: true},
		{name: "dollar key", body: `{"$where":"sleep(1000)"}`, field: "$where"},
		{name: "nested dollar key", body: `{"a":{"b":[{"$gt":1}]}}`, field: "a.b[0].$gt"},
		{name: "dot key", body: `{"a.b":1}`, field: "a.b"},
		{name: "NUL key", body: `{"a\u0000b":1}`, field: "a\x00b"},
		{name: "dollar inside key is fine", body: `{"price$":1}`},
		{name: "repeated key", body: `{"a":1,"a":2}`, field: "a"},
		{name: "repeated key in a large object", body: `{` + manyKeys(40) + `,"k7":0}`, field: "k7"},
		{name: "depth 32", body: nested(32)},
		{name: "depth 33", body: nested(33), field: strings.TrimSuffix(strings.Repeat("a.", 32), ".")},
		{name: "arrays count", body: `{"a":` + strings.Repeat("[", 31) + strings.Repeat("]", 31) + `}`},
		{name: "arrays count too", body: `{"a":` + strings.Repeat("[", 32) + strings.Repeat("]", 32) + `}`, field: "a" + strings.Repeat("[0]", 31)},
		{name: "huge number", body: `{"n":1e400}`, field: "n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			obj, err := ParseObject([]byte(tt.body))
			switch {
			case tt.syntax:
				var se *SyntaxError
				require.ErrorAs(t, err, &se)
			case tt.field != "":
				require.True(t, errs.Is(err, errs.Invalid), "err %v", err)
				var e *errs.Error
				require.ErrorAs(t, err, &e)
				require.Len(t, e.Fields, 1)
				assert.Equal(t, tt.field, e.Fields[0].Field)
			default:
				require.NoError(t, err)
				require.NotNil(t, obj)
			}
		})
	}
}

func manyKeys(n int) string {
	var parts []string
	for i := range n {
		parts = append(parts, `"k`+strconv.Itoa(i)+`":`+strconv.Itoa(i))
	}
	return strings.Join(parts, ",")
}

// A document reads back as it was written: member order, and number types
// (an integer stays an integer, a double stays a double, even 1.0).
func TestObjectRoundTrip(t *testing.T) {
	in := `{"z":1,"a":{"y":[1,2.5,-3,1.0,1e21,1e-7,12345678901234567890],"x":"é\"\\\n\t\u0001\u2028<>&"},"m":null,"t":true,"f":false}`
	obj, err := ParseObject([]byte(in))
	require.NoError(t, err)
	assert.Equal(t, "z", obj[0].Key, "order kept")
	arr := obj[1].Value.(Object)[0].Value.([]any)
	assert.IsType(t, int64(0), arr[0])
	assert.IsType(t, float64(0), arr[1])
	assert.IsType(t, float64(0), arr[3], "1.0 stays a double")
	assert.IsType(t, float64(0), arr[6], "too big for int64: a double")

	out := obj.AppendJSON(nil)
	assert.True(t, json.Valid(out), "%s", out)
	again, err := ParseObject(out)
	require.NoError(t, err)
	assert.Equal(t, obj, again, "parse(encode(x)) == x")
	assert.Equal(t, string(out), string(again.AppendJSON(nil)))
	assert.Contains(t, string(out), `1.0,`)

	// The JSON means the same as the input to any other reader.
	var a, b any
	require.NoError(t, json.Unmarshal([]byte(in), &a))
	require.NoError(t, json.Unmarshal(out, &b))
	assert.Equal(t, a, b)
}

func TestAppendStringInvalidUTF8(t *testing.T) {
	out := Object{{Key: "s", Value: "a\xffb"}}.AppendJSON(nil)
	assert.Equal(t, `{"s":"a\ufffdb"}`, string(out))
}

// The examples of RFC 7396, appendix A.
func TestMergePatchRFC7396(t *testing.T) {
	tests := []struct{ target, patch, want string }{
		{`{"a":"b"}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"b"}`, `{"b":"c"}`, `{"a":"b","b":"c"}`},
		{`{"a":"b"}`, `{"a":null}`, `{}`},
		{`{"a":"b","b":"c"}`, `{"a":null}`, `{"b":"c"}`},
		{`{"a":["b"]}`, `{"a":"c"}`, `{"a":"c"}`},
		{`{"a":"c"}`, `{"a":["b"]}`, `{"a":["b"]}`},
		{`{"a":{"b":"c"}}`, `{"a":{"b":"d","c":null}}`, `{"a":{"b":"d"}}`},
		{`{"a":[{"b":"c"}]}`, `{"a":[1]}`, `{"a":[1]}`},
		{`{"e":null}`, `{"a":1}`, `{"e":null,"a":1}`},
		{`{}`, `{"a":{"bb":{"ccc":null}}}`, `{"a":{"bb":{}}}`},
	}
	for _, tt := range tests {
		target, err := ParseObject([]byte(tt.target))
		require.NoError(t, err)
		patch, err := ParseObject([]byte(tt.patch))
		require.NoError(t, err)
		before := string(target.AppendJSON(nil))
		got := MergePatch(target, patch)
		assert.Equal(t, tt.want, string(got.AppendJSON(nil)), "%s + %s", tt.target, tt.patch)
		assert.Equal(t, before, string(target.AppendJSON(nil)), "the target is left as it was")
	}
}

func TestValidID(t *testing.T) {
	for _, id := range []string{"a", "invoice-1001", "A.b_c~d-e", strings.Repeat("x", 128), "665f1c2e8b3a4d0012ab34cd", "..."} {
		assert.True(t, ValidID(id), id)
	}
	for _, id := range []string{"", ".", "..", strings.Repeat("x", 129), "a b", "a/b", "é", "a%20b", "a?b", "$x"} {
		assert.False(t, ValidID(id), id)
	}
}

func TestFilterValue(t *testing.T) {
	tests := []struct {
		raw  string
		want any
		ok   bool
	}{
		{"42", int64(42), true},
		{"4.5", 4.5, true},
		{"true", true, true},
		{"null", nil, true},
		{`"42"`, "42", true},
		{"Initech", "Initech", true},
		{"", "", true},
		{`{"$gt":1}`, nil, false},
		{`[1]`, nil, false},
		{`{"$gt":1`, `{"$gt":1`, true}, // not JSON: the text itself, compared as a string
	}
	for _, tt := range tests {
		v, ok := FilterValue(tt.raw)
		assert.Equal(t, tt.ok, ok, tt.raw)
		if ok {
			assert.Equal(t, tt.want, v, tt.raw)
		}
	}
}

func TestMatch(t *testing.T) {
	assert.True(t, Match{}.Matches(7))
	assert.False(t, Match{}.Set())
	assert.True(t, MatchAny().Matches(7))
	assert.True(t, MatchVersions(3, 7).Matches(7))
	assert.False(t, MatchVersions(3).Matches(7))
	assert.False(t, MatchVersions().Matches(7), "If-Match with no usable tag matches nothing")
}

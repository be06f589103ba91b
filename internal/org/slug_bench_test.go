package org_test

import (
	"strings"
	"testing"

	"github.com/orgservice/orgservice/internal/org"
)

// BenchmarkSlug measures the slug rule, which every create, get and rename
// runs, on the kinds of names it meets.
func BenchmarkSlug(b *testing.B) {
	for _, bc := range []struct{ name, in string }{
		{"ascii", "Acme Corp"},
		{"already-slug", "acme_corp_0001234"},
		{"punctuation", " ACME__corp!"},
		{"latin1", "Café Zürich"},
		{"devanagari", "हिन्दी"},
		{"fullwidth", "ＡＣＭＥ　Ｃｏｒｐ"},
		{"max-length", strings.Repeat("Acme Corp ", 10)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = org.Slug(bc.in)
			}
		})
	}
}

package org_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/orgservice/orgservice/internal/errs"
	"github.com/orgservice/orgservice/internal/org"
)

func TestSlug(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		// The three spellings issue 2 names as one organization.
		{"space", "Acme Corp", "acme_corp"},
		{"hyphen", "acme-corp", "acme_corp"},
		{"padding, underscores, bang", " ACME__corp!", "acme_corp"},

		// Runs of punctuation, leading and trailing separators.
		{"run of mixed punctuation", "a -_.,;:/\\|b", "a_b"},
		{"several runs", "a---b...c", "a_b_c"},
		{"leading and trailing", "--==a==--", "a"},
		{"underscores only at the ends", "_a_", "a"},
		{"whitespace kinds", "a\tb\nc\u00a0d\u3000e", "a_b_c_d_e"},
		{"digits kept", "Team 42", "team_42"},
		{"digits only", "2024", "2024"},
		{"emoji is a separator", "🚀 Rocket 🚀", "rocket"},

		// Unicode letters and marks are kept, not transliterated.
		{"latin with diacritics", "Café Zürich", "café_zürich"},
		{"decomposed diacritics compose (NFKC)", "Cafe\u0301 Zu\u0308rich", "café_zürich"},
		{"devanagari with vowel signs and virama stays whole", "हिन्दी", "हिन्दी"},
		{"cjk", "日本語 会社", "日本語_会社"},
		{"german sharp s", "Straße", "straße"},
		{"greek capitals lowered", "ΑΘΗΝΑ", "αθηνα"},
		{"cyrillic", "Москва-Сити", "москва_сити"},

		// NFKC compatibility folding.
		{"fullwidth letters", "ＡＣＭＥ", "acme"},
		{"fullwidth space and punctuation", "ＡＣＭＥ　Ｃｏｒｐ！", "acme_corp"},
		{"fi ligature", "ﬁnance", "finance"},
		{"superscript digit", "x²", "x2"},
		{"roman numeral (Nl)", "Ⅻ", "xii"},
		{"circled digit (No)", "①", "1"},

		// Nothing left.
		{"empty", "", ""},
		{"blank", "   ", ""},
		{"punctuation only", "!!!", ""},
		{"symbols only", "€$%&*+", ""},
		{"emoji only", "🚀🎉", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := org.Slug(tt.in)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, got, org.Slug(got), "a slug is its own slug")
			assert.False(t, strings.HasPrefix(got, "_") || strings.HasSuffix(got, "_"), "no separator at either end: %q", got)
			assert.NotContains(t, got, "__", "separators never repeat")
		})
	}
}

// Names that differ only in case, width, composition or punctuation are one
// organization: they share a slug and so a collection.
func TestSlugEquivalence(t *testing.T) {
	groups := [][]string{
		{"Acme Corp", "acme-corp", " ACME__corp!", "ＡＣＭＥ Ｃｏｒｐ", "acme.corp", "Acme\tCorp"},
		{"Café Zürich", "CAFÉ ZÜRICH", "Cafe\u0301-Zu\u0308rich", "café_zürich"},
	}
	for _, g := range groups {
		want := org.Slug(g[0])
		for _, n := range g[1:] {
			assert.Equal(t, want, org.Slug(n), "Slug(%q) vs Slug(%q)", n, g[0])
		}
	}
	assert.NotEqual(t, org.Slug("Acme Corp"), org.Slug("AcmeCorp"), "a separator is not nothing")
	assert.NotEqual(t, org.Slug("Café"), org.Slug("Cafe"), "diacritics are not stripped")
}

func TestCollectionName(t *testing.T) {
	assert.Equal(t, "org_acme_corp", org.CollectionName(org.Slug("Acme Corp")))
	assert.Equal(t, "org_café_zürich", org.CollectionName(org.Slug("Café Zürich")))
}

func TestNamesWithControlCharactersAreInvalid(t *testing.T) {
	svc := org.NewService(org.Deps{}, org.Config{}, nil)
	for _, name := range []string{"Acme\x00Corp", "Acme\nCorp", "Acme\u0085Corp", "Acme\x1bCorp"} {
		_, err := svc.Create(context.Background(), org.CreateInput{Name: name, Email: "a@example.com", Password: "password-1"})
		require.True(t, errs.Is(err, errs.Invalid), "%q: %v", name, err)
	}
}

package org

import (
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"
)

// Name limits: a display name of at most MaxNameRunes characters, and a slug
// of at most MaxSlugBytes bytes, which keeps "<db>.org_<slug>" well inside
// MongoDB's 255-byte namespace limit.
const (
	MaxNameRunes = 100
	MaxSlugBytes = 64
)

// CollectionPrefix starts the name of every tenant collection.
const CollectionPrefix = "org_"

// Slug returns the canonical key of an organization name: NFKC-normalized,
// lowercased, every run of characters that are not letters, marks or digits
// folded into one '_', with no '_' at either end. Names with the same slug are
// the same organization. The result may be empty.
func Slug(name string) string {
	s := strings.ToLower(norm.NFKC.String(name))
	var b strings.Builder
	b.Grow(len(s))
	gap := false
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsMark(r) || unicode.IsDigit(r) || unicode.IsNumber(r) {
			if gap && b.Len() > 0 {
				b.WriteByte('_')
			}
			gap = false
			b.WriteRune(r)
			continue
		}
		gap = true
	}
	return b.String()
}

// CollectionName returns the tenant collection that holds the data of the
// organization with the given slug.
func CollectionName(slug string) string { return CollectionPrefix + slug }

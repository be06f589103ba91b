package org

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/orgservice/orgservice/internal/errs"
)

// Credential limits. bcrypt reads only the first 72 bytes of a password, so a
// longer one is refused rather than silently truncated.
const (
	MinPasswordRunes = 8
	MaxPasswordBytes = 72
	MaxEmailBytes    = 254
)

// CreateInput is what a new organization is created from.
type CreateInput struct {
	Name     string
	Email    string
	Password string
}

// UpdateInput holds the fields to change; nil ones are left as they are.
// CurrentPassword is required to change the email or the password, and
// checked whenever it is given.
type UpdateInput struct {
	Name            *string
	Email           *string
	Password        *string
	CurrentPassword *string
}

type fieldErrors []errs.FieldError

func (fe *fieldErrors) add(field, message string) {
	*fe = append(*fe, errs.FieldError{Field: field, Message: message})
}

func (fe fieldErrors) err() error {
	if len(fe) == 0 {
		return nil
	}
	return &errs.Error{Kind: errs.Invalid, Message: "the request has invalid fields", Fields: fe}
}

// checkName validates a display name and returns it trimmed with its slug.
func checkName(fe *fieldErrors, field, name string) (string, string) {
	name = strings.TrimSpace(name)
	slug := Slug(name)
	switch {
	case name == "":
		fe.add(field, "must not be blank")
	case utf8.RuneCountInString(name) > MaxNameRunes:
		fe.add(field, "must be at most 100 characters")
	case strings.ContainsFunc(name, unicode.IsControl):
		fe.add(field, "must not contain control characters")
	case slug == "":
		fe.add(field, "must contain at least one letter or digit")
	case len(slug) > MaxSlugBytes:
		fe.add(field, "is too long once normalized (the slug may be at most 64 bytes)")
	}
	return name, slug
}

// NormalizeEmail returns the form an email is stored and compared in.
func NormalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

func checkEmail(fe *fieldErrors, field, email string) string {
	email = NormalizeEmail(email)
	switch {
	case email == "":
		fe.add(field, "must not be blank")
	case len(email) > MaxEmailBytes:
		fe.add(field, "must be at most 254 characters")
	default:
		addr, err := mail.ParseAddress(email)
		if err != nil || addr.Name != "" || addr.Address != email {
			fe.add(field, "must be a single email address")
		}
	}
	return email
}

func checkPassword(fe *fieldErrors, field, password string) {
	switch {
	case utf8.RuneCountInString(password) < MinPasswordRunes:
		fe.add(field, "must be at least 8 characters")
	case len(password) > MaxPasswordBytes:
		fe.add(field, "must be at most 72 bytes")
	case strings.TrimSpace(password) == "":
		fe.add(field, "must not be blank") // the login refuses a blank password
	}
}

// validCreate is a CreateInput that passed validation, in stored form.
type validCreate struct {
	name, slug, email, password string
}

func (in CreateInput) validate() (validCreate, error) {
	var fe fieldErrors
	var v validCreate
	v.name, v.slug = checkName(&fe, "organization_name", in.Name)
	v.email = checkEmail(&fe, "email", in.Email)
	checkPassword(&fe, "password", in.Password)
	v.password = in.Password
	return v, fe.err()
}

// validUpdate is an UpdateInput that passed validation; empty strings mean
// "unchanged" (current: not given).
type validUpdate struct {
	name, slug, email, password, current string
}

func (in UpdateInput) validate() (validUpdate, error) {
	var fe fieldErrors
	var v validUpdate
	if in.Name == nil && in.Email == nil && in.Password == nil {
		fe.add("", "at least one of organization_name, email or password is required")
		return v, fe.err()
	}
	if in.Name != nil {
		v.name, v.slug = checkName(&fe, "organization_name", *in.Name)
	}
	if in.Email != nil {
		v.email = checkEmail(&fe, "email", *in.Email)
	}
	if in.Password != nil {
		checkPassword(&fe, "password", *in.Password)
		v.password = *in.Password
	}
	v.current = checkCurrent(&fe, in.CurrentPassword, in.Email != nil || in.Password != nil)
	return v, fe.err()
}

// checkCurrent returns the current_password given ("" when none), which
// changing credentials requires.
func checkCurrent(fe *fieldErrors, current *string, changing bool) string {
	if current == nil || *current == "" {
		if changing {
			fe.add("current_password", "is required to change the email or password")
		}
		return ""
	}
	return *current
}

// Package errs is the service's one error vocabulary: a small set of kinds
// that say what a caller can do about an error, and an Error that carries a
// kind with a message safe to show a client. Every domain reports its errors
// in these kinds, storage translates its driver's errors into them, and the
// HTTP layer maps each kind to exactly one status. It is a leaf package, so
// that no domain imports another just to report an error (upspin's errors
// package is the model).
package errs

import (
	"errors"
	"fmt"
)

// Kind classifies an error by what the caller can do about it.
type Kind int

// The kinds of error.
const (
	Internal      Kind = iota // a fault of ours or of the database; details are logged, never shown
	Invalid                   // the input breaks a rule; Fields says which
	Conflict                  // a name, email or id is taken, or a state forbids the change
	NotFound                  // no such thing, or not one the caller may see
	Unauthorized              // missing, invalid or revoked credentials
	Forbidden                 // authenticated, but not allowed to do this
	Busy                      // another operation on the organization is in progress
	Unavailable               // the database cannot be reached in time
	Precondition              // a conditional request's precondition (If-Match) does not hold
	TooLarge                  // the input is larger than allowed
	QuotaExceeded             // the write would take the organization past a quota; Quota says which
	Suspended                 // the organization is suspended by the operator
)

// FieldError names one invalid input field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Quota names the quota a write would exceed, its limit and what is used of it.
type Quota struct {
	Name  string
	Limit int64
	Used  int64
}

// Error is an error of a kind, with a message that is safe to show a
// client, optionally the fields at fault (Invalid) or the quota
// (QuotaExceeded), and the cause, which is only ever logged.
type Error struct {
	Kind    Kind
	Message string
	Fields  []FieldError
	Quota   *Quota
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Message, e.Err)
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error of kind k with a formatted client-safe message.
func Errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error of kind k that carries err as its (never shown) cause.
func Wrap(k Kind, err error, message string) *Error {
	return &Error{Kind: k, Message: message, Err: err}
}

// Fields returns an Invalid error naming the fields at fault.
func Fields(message string, fields ...FieldError) *Error {
	return &Error{Kind: Invalid, Message: message, Fields: fields}
}

// OverQuota returns a QuotaExceeded error naming quota name, its limit and
// what is used of it.
func OverQuota(name string, limit, used int64) *Error {
	return &Error{Kind: QuotaExceeded, Quota: &Quota{Name: name, Limit: limit, Used: used},
		Message: fmt.Sprintf("the organization's %s quota is exhausted: %d of %d used", name, used, limit)}
}

// KindOf returns the kind of the first *Error in err's chain, and Internal
// for any other non-nil error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Internal
}

// Is reports whether err is of kind k.
func Is(err error, k Kind) bool { return err != nil && KindOf(err) == k }

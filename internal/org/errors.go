package org

import (
	"errors"
	"fmt"
)

// Kind classifies an error by what the caller can do about it. The HTTP layer
// maps each kind to exactly one status; nothing else inspects errors.
type Kind int

// The error kinds of the domain.
const (
	KindInternal     Kind = iota // a fault of ours or of the database; details are logged, never shown
	KindInvalid                  // the input breaks a rule; Fields says which
	KindConflict                 // a name or email is taken
	KindNotFound                 // no such organization
	KindUnauthorized             // missing, invalid or revoked credentials
	KindForbidden                // authenticated, but not for this organization
	KindBusy                     // another operation on the organization is in progress
	KindUnavailable              // the database cannot be reached in time
	KindPrecondition             // a conditional request's precondition (If-Match) does not hold
	KindTooLarge                 // the input is larger than allowed
)

// FieldError names one invalid input field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is the domain's error: a kind, a message that is safe to show a
// client, and optionally the cause, which is only ever logged.
type Error struct {
	Kind    Kind
	Message string
	Fields  []FieldError
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

// ErrorKind returns the kind of the first *Error in err's chain, and
// KindInternal for any other non-nil error.
func ErrorKind(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindInternal
}

// IsKind reports whether err is of kind k.
func IsKind(err error, k Kind) bool { return err != nil && ErrorKind(err) == k }

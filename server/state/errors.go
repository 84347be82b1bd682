package state

import (
	"errors"
	"fmt"
)

// Error classes; the HTTP layer maps each to a status with errors.Is.
var (
	ErrInvalid   = errors.New("invalid")
	ErrNotFound  = errors.New("not found")
	ErrConflict  = errors.New("conflict")
	ErrForbidden = errors.New("forbidden")
	// ErrStale is a write refused because another server wrote first; it
	// succeeds when retried after CatchUp.
	ErrStale = errors.New("stale")
)

// Error is a failed operation that a caller can act on: its class, the field
// at fault (JSON name, dotted for nested fields) and a message for people.
type Error struct {
	Class   error
	Field   string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the class, so errors.Is(err, ErrConflict) works.
func (e *Error) Unwrap() error { return e.Class }

func invalid(field, format string, args ...any) error {
	return &Error{Class: ErrInvalid, Field: field, Message: field + ": " + fmt.Sprintf(format, args...)}
}

func conflict(field, format string, args ...any) error {
	return &Error{Class: ErrConflict, Field: field, Message: fmt.Sprintf(format, args...)}
}

func notFound(kind, ref string) error {
	return &Error{Class: ErrNotFound, Message: fmt.Sprintf("%s %q not found", kind, ref)}
}

func forbiddenField(field, format string, args ...any) error {
	return &Error{Class: ErrForbidden, Field: field, Message: field + ": " + fmt.Sprintf(format, args...)}
}

func forbidden(format string, args ...any) error {
	return &Error{Class: ErrForbidden, Message: fmt.Sprintf(format, args...)}
}

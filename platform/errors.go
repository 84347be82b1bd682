package platform

import (
	"errors"
	"os"
)

// Errors shared by the backends and by the fakes that behave as they do
// (platformtest). ErrNoDevice matches os.ErrNotExist and ErrDeviceExists
// matches os.ErrExist under errors.Is; callers test for those.
var (
	ErrNoDevice     error = &kindError{"no such interface", os.ErrNotExist}
	ErrDeviceExists error = &kindError{"interface exists", os.ErrExist}
	ErrClosed             = errors.New("backend closed")
)

// kindError is an error with its own text that matches a standard sentinel.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

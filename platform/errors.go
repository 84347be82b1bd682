package platform

import (
	"errors"
	"os"
)

// Errors shared by the backends. errNoDevice matches os.ErrNotExist and
// errDeviceExists matches os.ErrExist under errors.Is.
var (
	errNoDevice     error = &kindError{"no such interface", os.ErrNotExist}
	errDeviceExists error = &kindError{"interface exists", os.ErrExist}
	errClosed             = errors.New("backend closed")
)

// kindError is an error with its own text that matches a standard sentinel.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

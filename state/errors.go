package state

import (
	"errors"
	"fmt"
)

// Kinds of the errors a state store's writes return, the contract between
// a store (the embedded log today, a shared store later) and its callers:
// every error of a Writer method (and of Compact and Checkpoint) is of one
// kind, tested with errors.Is, so that callers answer by what happened and
// not by a backend's internals. The HTTP layer maps them to 400, 503,
// 409, 500 (ErrMismatch) and 410 (ErrErased).
var (
	// ErrInvalid: the write is refused for what it is (a string over its
	// limit, a time out of range, an attribute of the wrong type, a record
	// too large); sent again unchanged, it fails again. Nothing was applied.
	ErrInvalid = errors.New("invalid")
	// ErrUnavailable: the store cannot take writes now (its log cannot be
	// written: a full disk, an I/O error; it is backlogged or closed; a
	// shared store does not answer). Nothing was applied; a retry may
	// succeed. Backend.Err says whether the store is writable.
	ErrUnavailable = errors.New("state unavailable")
	// ErrConflict: the write conflicts with the state as it stands (in a
	// shared store, a concurrent change of the same customer won). Nothing
	// was applied; a retry may succeed. The embedded store serialises the
	// writers of a customer and never returns it.
	ErrConflict = errors.New("state conflict")
	// ErrMismatch: the customer's stored state was written with other
	// profile mappings or snapshot fields (another bundle on a shared
	// store) and cannot be read with these. Nothing was applied; retrying
	// never helps: serve the bundle it was written with, or migrate the
	// state (export with the old bundle, import with the new).
	ErrMismatch = errors.New("state written with other mappings")
	// ErrErased: the customer was erased while the write was on its way
	// (it was decided on the state before the erasure): for ErasedStubTTL
	// after an erasure, the store refuses every write of the customer, so
	// that nothing of it comes back. Nothing was applied. The sidecar
	// answers 410 erased.
	ErrErased = errors.New("customer erased")
)

// Error is an error of one kind. Its message is Err's; errors.Is matches
// both Kind and the errors Err wraps (e.g. syscall.ENOSPC).
type Error struct {
	Kind error // ErrInvalid, ErrUnavailable, ErrConflict, ErrMismatch or ErrErased
	Err  error
}

// Error returns the message of Err.
func (e *Error) Error() string { return e.Err.Error() }

// Unwrap returns Kind and Err.
func (e *Error) Unwrap() []error { return []error{e.Kind, e.Err} }

// KindOf returns the kind of err (ErrInvalid, ErrUnavailable, ErrConflict,
// ErrMismatch or ErrErased), or nil when err has none: an error of no kind is a bug of
// the store, to be answered as an internal error.
func KindOf(err error) error {
	for _, k := range [...]error{ErrInvalid, ErrUnavailable, ErrConflict, ErrMismatch, ErrErased} {
		if errors.Is(err, k) {
			return k
		}
	}
	return nil
}

func invalid(err error) error     { return &Error{Kind: ErrInvalid, Err: err} }
func unavailable(err error) error { return &Error{Kind: ErrUnavailable, Err: err} }

func invalidf(format string, args ...any) error { return invalid(fmt.Errorf(format, args...)) }

// Package errs is the one error type of Switchboard: every failure carries the
// operation that failed, a stable machine-readable code and the wrapped cause,
// so that only the HTTP layer decides status codes and the JSON error body.
package errs

import (
	"errors"
	"fmt"
)

// Code is a stable, documented error class. Clients switch on it; its values
// are part of the API contract (docs/openapi.yaml, Error.code).
type Code string

// The codes. Keep docs/openapi.yaml in step when adding one.
const (
	Invalid      Code = "invalid"      // malformed or semantically wrong input
	Unauthorized Code = "unauthorized" // no or bad credentials
	Forbidden    Code = "forbidden"    // authenticated, but the role may not do this
	NotFound     Code = "not_found"    // no such object for this tenant
	Conflict     Code = "conflict"     // state or version does not allow it
	Duplicate    Code = "duplicate"    // unique key already taken
	TooLarge     Code = "too_large"    // body or field over its limit
	RateLimited  Code = "rate_limited" // slow down
	Unavailable  Code = "unavailable"  // a dependency is down; retry later
	Internal     Code = "internal"     // a bug or an unexpected failure
)

// Error is a failure with an operation, a code, a human message and a cause.
// Details holds structured facts a client may act on (e.g. the current state
// of a session after a refused transition).
type Error struct {
	Op      string
	Code    Code
	Msg     string
	Details map[string]any
	Err     error
}

// Error renders "op: msg: cause" leaving out empty parts.
func (e *Error) Error() string {
	s := e.Op
	add := func(p string) {
		if p == "" {
			return
		}
		if s != "" {
			s += ": "
		}
		s += p
	}
	add(e.Msg)
	if e.Err != nil {
		add(e.Err.Error())
	}
	if s == "" {
		s = string(e.Code)
	}
	return s
}

// Unwrap exposes the cause to errors.Is and errors.As.
func (e *Error) Unwrap() error { return e.Err }

// E builds an error with a code and a message.
func E(op string, code Code, format string, args ...any) *Error {
	return &Error{Op: op, Code: code, Msg: fmt.Sprintf(format, args...)}
}

// Wrap attaches an operation to err, keeping its code when it already has one
// and classing it Internal otherwise. Wrap(nil) is nil.
func Wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Op: op, Code: CodeOf(err), Err: err}
}

// With returns e with one more detail set; it is for building errors.
func (e *Error) With(key string, value any) *Error {
	if e.Details == nil {
		e.Details = map[string]any{}
	}
	e.Details[key] = value
	return e
}

// CodeOf is the code of the outermost *Error in err's chain that has one,
// Internal for any other non-nil error and "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	for errors.As(err, &e) {
		if e.Code != "" {
			return e.Code
		}
		if e.Err == nil {
			break
		}
		err = e.Err
	}
	return Internal
}

// Is reports whether err carries code.
func Is(err error, code Code) bool { return CodeOf(err) == code }

// DetailsOf merges the details of every *Error in err's chain, outer wins.
func DetailsOf(err error) map[string]any {
	var out map[string]any
	for err != nil {
		var e *Error
		if !errors.As(err, &e) {
			break
		}
		for k, v := range e.Details {
			if out == nil {
				out = map[string]any{}
			}
			if _, ok := out[k]; !ok {
				out[k] = v
			}
		}
		err = e.Err
	}
	return out
}

// MessageOf is the most specific human message in err's chain, suitable for
// clients: internal causes are not exposed.
func MessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		for cur := e; cur != nil; {
			if cur.Msg != "" {
				return cur.Msg
			}
			var next *Error
			if cur.Err == nil || !errors.As(cur.Err, &next) {
				break
			}
			cur = next
		}
	}
	if CodeOf(err) == Internal {
		return "internal error"
	}
	return string(CodeOf(err))
}

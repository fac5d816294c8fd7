package errs

import "fmt"

// Problem is one thing wrong with an input: the field, named from the
// object down ("variants[3]", "settings.rate_per_sec"), and what is wrong.
// Validation reports every problem at once, so that a form or an import
// can be fixed in one round.
type Problem struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// ProblemsKey is the Error detail that lists every Problem of an invalid
// input.
const ProblemsKey = "problems"

// Problems collects the Problems of one input.
type Problems []Problem

// Add records a problem of field.
func (p *Problems) Add(field, format string, args ...any) {
	*p = append(*p, Problem{Field: field, Message: fmt.Sprintf(format, args...)})
}

// Err is nil without problems, else Invalid whose message names the first
// problem and whose details list them all.
func (p Problems) Err(op string) error {
	if len(p) == 0 {
		return nil
	}
	msg := p[0].Field + ": " + p[0].Message
	if n := len(p) - 1; n == 1 {
		msg += " (and 1 more problem)"
	} else if n > 1 {
		msg += fmt.Sprintf(" (and %d more problems)", n)
	}
	return E(op, Invalid, "%s", msg).With(ProblemsKey, []Problem(p))
}

// ProblemsOf returns the problems an Invalid error lists; for any other
// error one problem with the error's message and field "" (the input as a
// whole).
func ProblemsOf(err error) []Problem {
	if err == nil {
		return nil
	}
	if ps, ok := DetailsOf(err)[ProblemsKey].([]Problem); ok {
		return ps
	}
	return []Problem{{Message: MessageOf(err)}}
}

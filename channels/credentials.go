package channels

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/switchboard-acd/switchboard/internal/errs"
)

// DecodeCredentials reads an account's credentials JSON into dst, the
// provider's credentials struct. Strict decoding, for saving an account,
// refuses unknown fields (a misspelt key would otherwise be dropped) and
// trailing data; loose decoding, for using an account, ignores unknown
// fields so that an older node reads what a newer one stored. Failures are
// errs.Invalid with op, naming the field; they never quote the input,
// which holds secrets.
func DecodeCredentials(op string, raw json.RawMessage, dst any, strict bool) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return errs.E(op, errs.Invalid, "credentials: required")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(dst); err != nil {
		var ute *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
			return errs.E(op, errs.Invalid, "credentials.%s: unknown field (misspelt?)", clipName(name))
		case errors.As(err, &ute) && ute.Field != "":
			return errs.E(op, errs.Invalid, "credentials.%s: must be a %s", ute.Field, ute.Type.String())
		case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
			return errs.E(op, errs.Invalid, "credentials: not valid JSON")
		}
		return errs.E(op, errs.Invalid, "credentials: not a JSON object")
	}
	if strict {
		if _, err := dec.Token(); err != io.EOF {
			return errs.E(op, errs.Invalid, "credentials: trailing data after the JSON object")
		}
	}
	return nil
}

// clipName bounds a field name echoed in an error.
func clipName(s string) string {
	s = strings.ToValidUTF8(s, "?")
	if utf8.RuneCountInString(s) > 64 {
		s = string([]rune(s)[:64]) + "…"
	}
	return s
}

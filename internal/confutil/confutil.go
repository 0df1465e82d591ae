// Package confutil holds the helpers every component's configuration uses:
// field errors that the top-level loader turns into "key path (line N)"
// messages, and small typed values for YAML.
package confutil

import (
	"errors"
	"fmt"
	"strings"
)

// FieldError is a validation problem with one YAML key, relative to the
// component's own config section ("interval", "tls.ca_file").
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }

func (e *FieldError) Unwrap() error { return e.Err }

// Errorf returns a *FieldError for the YAML key field.
func Errorf(field, format string, args ...any) error {
	return &FieldError{Field: field, Err: fmt.Errorf(format, args...)}
}

// Prefix returns err with every FieldError's key prefixed by section, so a
// parent config can report a child's problems under its own key. Joined
// errors are walked; other errors become a FieldError on section.
func Prefix(section string, err error) error {
	if err == nil {
		return nil
	}
	var out []error
	for _, e := range Flatten(err) {
		var fe *FieldError
		if errors.As(e, &fe) {
			f := fe.Field
			if section != "" {
				f = section + "." + f
			}
			out = append(out, &FieldError{Field: strings.TrimSuffix(f, "."), Err: fe.Err})
			continue
		}
		out = append(out, &FieldError{Field: section, Err: e})
	}
	return errors.Join(out...)
}

// Flatten returns the leaves of an error tree made with errors.Join.
func Flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Flatten(e)...)
		}
		return out
	}
	return []error{err}
}

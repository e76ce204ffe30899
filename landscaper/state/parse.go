package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ParseError says what is wrong with a state document.
type ParseError struct {
	// Problem completes "the state ...": "is truncated", "has no lineage".
	Problem string
	Err     error
}

func (e *ParseError) Error() string { return "the state " + e.Problem }

func (e *ParseError) Unwrap() error { return e.Err }

func invalid(problem string, err error) *ParseError {
	return &ParseError{Problem: problem, Err: err}
}

// Parse reads a state document and checks it: format version, lineage,
// resources and pending records, and field names spelt as the format
// spells them. A document that cannot be used is a *ParseError saying
// what is wrong; every backend refuses to overwrite such a state.
func Parse(data []byte) (*State, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, invalid(fmt.Sprintf("is empty (%d bytes)", len(data)), nil)
	}
	// Look at the version first: a newer format may not parse as this one.
	var head struct {
		Version json.RawMessage `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return nil, jsonError(data, err)
	}
	if head.Version == nil || string(head.Version) == "null" {
		return nil, invalid("has no format version (\"version\" is missing)", nil)
	}
	var version int
	if err := json.Unmarshal(head.Version, &version); err != nil {
		return nil, invalid(fmt.Sprintf("has an invalid format version %s", head.Version), err)
	}
	if version > FormatVersion {
		return nil, invalid(fmt.Sprintf("was written by a newer landscaper (state format version %d; this landscaper reads version %d); upgrade landscaper", version, FormatVersion), nil)
	}
	if version != FormatVersion {
		return nil, invalid(fmt.Sprintf("has unsupported format version %d (this landscaper reads version %d)", version, FormatVersion), nil)
	}
	s := &State{}
	if err := json.Unmarshal(data, s); err != nil {
		return nil, jsonError(data, err)
	}
	if err := checkFieldNames(data); err != nil {
		return nil, invalid(err.Error(), nil)
	}
	if s.Lineage == "" {
		return nil, invalid("has no lineage", nil)
	}
	if s.Resources == nil {
		s.Resources = map[string]*Resource{}
	}
	if s.Pending == nil {
		s.Pending = map[string]*Pending{}
	}
	for name, r := range s.Resources {
		switch {
		case name == "":
			return nil, invalid("has a resource with an empty name", nil)
		case r == nil:
			return nil, invalid(fmt.Sprintf("has resource %q recorded as null", name), nil)
		case r.Type == "":
			return nil, invalid(fmt.Sprintf("has resource %q without a type", name), nil)
		}
	}
	for name, p := range s.Pending {
		switch {
		case name == "":
			return nil, invalid("has a pending operation with an empty name", nil)
		case p == nil:
			return nil, invalid(fmt.Sprintf("has pending operation %q recorded as null", name), nil)
		case p.Operation != OpCreate && p.Operation != OpUpdate && p.Operation != OpDelete:
			return nil, invalid(fmt.Sprintf("has pending operation %q with unknown operation %q", name, p.Operation), nil)
		case p.Type == "":
			return nil, invalid(fmt.Sprintf("has pending operation %q without a type", name), nil)
		}
	}
	return s, nil
}

// jsonError describes a failure of json.Unmarshal on data.
func jsonError(data []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		var v json.RawMessage
		if derr := json.NewDecoder(bytes.NewReader(data)).Decode(&v); errors.Is(derr, io.ErrUnexpectedEOF) {
			return invalid(fmt.Sprintf("is truncated: the JSON document ends early after %d bytes", len(data)), err)
		}
		line, col := position(data, syn.Offset)
		return invalid(fmt.Sprintf("is not valid JSON (corrupted?): %v at line %d, column %d", err, line, col), err)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return invalid(fmt.Sprintf("is not a state document: it holds a JSON %s, not an object", typ.Value), err)
		}
		return invalid(fmt.Sprintf("has an invalid value at %q: a JSON %s where %s is expected", typ.Field, typ.Value, typ.Type), err)
	}
	return invalid(fmt.Sprintf("has an invalid value: %v", err), err)
}

package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
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
// resources and pending records. A document that cannot be used is a
// *ParseError saying what is wrong and where; every backend refuses to
// overwrite such a state.
//
// Every object of the format (the document, each resource and each pending
// record) is read field by field: a value of the wrong type is reported
// with the resource and field it is in; a field name the format does not
// have, spelt otherwise (case included) or given twice is refused, since
// the state would be read as something it does not say and rewriting it
// would drop the field.
func Parse(data []byte) (*State, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, invalid(fmt.Sprintf("is empty (%d bytes)", len(data)), nil)
	}
	// Syntax first, for the whole document (json.Unmarshal only to say
	// what is wrong: it copies the document).
	if !json.Valid(data) {
		var doc json.RawMessage
		return nil, jsonError(data, json.Unmarshal(data, &doc))
	}
	doc := json.RawMessage(data)
	top, ok := scanFields(doc)
	if !ok {
		var err error
		if top, err = objectFields(doc); err != nil {
			return nil, invalid(fmt.Sprintf("is not a state document: %v", err), err)
		}
	}
	// The version first: a newer format may not read as this one.
	version, ok := top.get("version")
	if !ok {
		if err := checkNames("", top, reflect.TypeFor[State]()); err != nil {
			return nil, invalid(err.Error(), nil)
		}
		return nil, invalid("has no format version (\"version\" is missing)", nil)
	}
	if string(version) == "null" {
		return nil, invalid("has no format version (\"version\" is null)", nil)
	}
	var v int
	if err := json.Unmarshal(version, &v); err != nil {
		return nil, invalid(fmt.Sprintf("has an invalid format version %s", version), err)
	}
	if v > FormatVersion {
		return nil, invalid(fmt.Sprintf("was written by a newer landscaper (state format version %d; this landscaper reads version %d); upgrade landscaper", v, FormatVersion), nil)
	}
	if v != FormatVersion {
		return nil, invalid(fmt.Sprintf("has unsupported format version %d (this landscaper reads version %d)", v, FormatVersion), nil)
	}

	s := &State{}
	if err := decodeFields("", top, s, "resources", "pending"); err != nil {
		return nil, err
	}
	if s.Lineage == "" {
		return nil, invalid("has no lineage", nil)
	}
	s.Resources = map[string]*Resource{}
	s.Pending = map[string]*Pending{}
	if raw, ok := top.get("resources"); ok {
		if err := decodeEntries("resource", "resources", raw, s.Resources); err != nil {
			return nil, err
		}
	}
	if raw, ok := top.get("pending"); ok {
		if err := decodeEntries("pending operation", "pending", raw, s.Pending); err != nil {
			return nil, err
		}
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

// fields are the members of a JSON object, in document order.
type fields []field

type field struct {
	name  string
	value json.RawMessage
}

func (fs fields) get(name string) (json.RawMessage, bool) {
	for _, f := range fs {
		if f.name == name {
			return f.value, true
		}
	}
	return nil, false
}

// objectFields splits a syntactically valid JSON value into the members of
// the object it must be. A name given twice is an error: which one counts
// would be a guess.
func objectFields(raw json.RawMessage) (fields, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("it holds a JSON %s, not an object", jsonKind(raw))
	}
	var out fields
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, _ := tok.(string)
		if seen[name] {
			return nil, fmt.Errorf("the field %q is given twice", name)
		}
		seen[name] = true
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, err
		}
		out = append(out, field{name, value})
	}
	if _, err := dec.Token(); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return out, nil
}

// jsonKind names the kind of a JSON value by its first byte.
func jsonKind(raw json.RawMessage) string {
	switch t := bytes.TrimSpace(raw); {
	case len(t) == 0:
		return "nothing"
	case t[0] == '{':
		return "object"
	case t[0] == '[':
		return "array"
	case t[0] == '"':
		return "string"
	case t[0] == 't' || t[0] == 'f':
		return "bool"
	case t[0] == 'n':
		return "null"
	default:
		return "number"
	}
}

// checkNames refuses field names that typ does not have: spelt otherwise
// (encoding/json would take "lineAge" for "lineage") or not at all. Either
// way the state would be read as something it does not say, and writing it
// would drop the field.
func checkNames(where string, fs fields, typ reflect.Type) error {
	for _, f := range fs {
		if _, ok := fieldIndex(typ, f.name); ok {
			continue
		}
		for i := range typ.NumField() {
			if want := jsonName(typ.Field(i)); strings.EqualFold(f.name, want) {
				return fmt.Errorf("has the field %q%s, which should be spelled %q (hand-edited?)", f.name, in(where), want)
			}
		}
		return fmt.Errorf("has the unknown field %q%s (hand-edited? landscaper would drop it when writing the state)", f.name, in(where))
	}
	return nil
}

// in says where a field is: "" for the document itself, else " in " and
// the resource or pending operation.
func in(where string) string {
	if where == "" {
		return ""
	}
	return " in " + where
}

func jsonName(sf reflect.StructField) string {
	name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
	return name
}

func fieldIndex(typ reflect.Type, name string) (int, bool) {
	for i := range typ.NumField() {
		if jsonName(typ.Field(i)) == name {
			return i, true
		}
	}
	return 0, false
}

// decodeFields decodes the fields of one object into the struct dst points
// to, one by one, so that an error names the field; the fields named in
// skip are left to the caller.
func decodeFields(where string, fs fields, dst any, skip ...string) error {
	v := reflect.ValueOf(dst).Elem()
	if err := checkNames(where, fs, v.Type()); err != nil {
		return invalid(err.Error(), nil)
	}
	for _, f := range fs {
		if slices.Contains(skip, f.name) {
			continue
		}
		i, _ := fieldIndex(v.Type(), f.name)
		if err := json.Unmarshal(f.value, v.Field(i).Addr().Interface()); err != nil {
			return invalid(fmt.Sprintf("has an invalid value at %q%s: %s", f.name, in(where), valueProblem(err)), err)
		}
	}
	return nil
}

// valueProblem says what is wrong with a value that did not decode.
func valueProblem(err error) string {
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		return fmt.Sprintf("a JSON %s where %s is expected", typ.Value, typ.Type)
	}
	return err.Error()
}

// decodeEntries decodes an object of named records (resources or pending
// operations) into into, each record field by field.
func decodeEntries[T any](what, key string, raw json.RawMessage, into map[string]*T) error {
	if string(raw) == "null" {
		return nil
	}
	entries, ok := scanFields(raw)
	if !ok {
		var err error
		if entries, err = objectFields(raw); err != nil {
			return invalid(fmt.Sprintf("has an invalid value at %q: %v", key, err), err)
		}
	}
	typ := reflect.TypeFor[T]()
	for _, e := range entries {
		if string(e.value) == "null" {
			into[e.name] = nil
			continue
		}
		var rec T
		// The quick way: a record whose fields are all the format's,
		// spelt exactly and each given once, decodes in one go; anything
		// else is read field by field, which says what is wrong.
		if fs, ok := scanFields(e.value); ok && knownNames(fs, typ) && json.Unmarshal(e.value, &rec) == nil {
			into[e.name] = &rec
			continue
		}
		rec = *new(T)
		where := fmt.Sprintf("%s %q", what, e.name)
		fs, err := objectFields(e.value)
		if err != nil {
			return invalid(fmt.Sprintf("has an invalid %s: %v", where, err), err)
		}
		if err := decodeFields(where, fs, &rec); err != nil {
			return err
		}
		into[e.name] = &rec
	}
	return nil
}

// knownNames reports whether every field is one of typ's, spelt exactly.
func knownNames(fs fields, typ reflect.Type) bool {
	for _, f := range fs {
		if _, ok := fieldIndex(typ, f.name); !ok {
			return false
		}
	}
	return true
}

// jsonError describes a failure of json.Unmarshal on data.
func jsonError(data []byte, err error) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		var v json.RawMessage
		if derr := json.NewDecoder(bytes.NewReader(data)).Decode(&v); errors.Is(derr, io.ErrUnexpectedEOF) {
			return invalid(fmt.Sprintf("is truncated: the JSON document ends early after %d bytes", len(data)), err)
		}
		line, col := position(data, syn.Offset)
		return invalid(fmt.Sprintf("is not valid JSON (corrupted?): %v at line %d, column %d", err, line, col), err)
	}
	return invalid(fmt.Sprintf("has an invalid value: %v", err), err)
}

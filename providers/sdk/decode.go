package sdk

import (
	"bytes"
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

// decodeInto decodes the JSON value raw into v, walking structs (by their
// json tags), slices and maps itself so that a value that does not fit its
// Go field (2.5 for an int, 300 for a uint8, a string for a bool) is an
// error at its attribute path. Values are never shown: they may be secret.
func decodeInto(v reflect.Value, raw json.RawMessage, p resource.Path) resource.Diagnostics {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || isNull(raw) {
		return nil
	}
	if usesOwnDecoding(v.Type()) {
		if err := json.Unmarshal(raw, v.Addr().Interface()); err != nil {
			return resource.Diagnostics{resource.Error(p, "invalid value", "%s cannot hold %s: %s", goTypeName(v.Type()), DescribeJSON(raw), unmarshalReason(err))}
		}
		return nil
	}
	mismatch := func(what string) resource.Diagnostics {
		return resource.Diagnostics{resource.Error(p, "wrong type", "expected %s, got %s", what, DescribeJSON(raw))}
	}
	switch v.Kind() {
	case reflect.Pointer:
		elem := reflect.New(v.Type().Elem())
		diags := decodeInto(elem.Elem(), raw, p)
		if !diags.HasError() {
			v.Set(elem)
		}
		return diags
	case reflect.Struct:
		var obj map[string]json.RawMessage
		if raw[0] != '{' || json.Unmarshal(raw, &obj) != nil {
			return mismatch("an attribute set")
		}
		return decodeFields(v, obj, p)
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 && raw[0] == '"' {
			// []byte takes base64, as encoding/json has it.
			if err := json.Unmarshal(raw, v.Addr().Interface()); err != nil {
				return resource.Diagnostics{resource.Error(p, "invalid value", "expected base64 text: %s", unmarshalReason(err))}
			}
			return nil
		}
		var items []json.RawMessage
		if raw[0] != '[' || json.Unmarshal(raw, &items) != nil {
			return mismatch("a list")
		}
		s := reflect.MakeSlice(v.Type(), len(items), len(items))
		var diags resource.Diagnostics
		for i, item := range items {
			diags = append(diags, decodeInto(s.Index(i), item, p.Index(i))...)
		}
		v.Set(s)
		return diags
	case reflect.Array:
		var items []json.RawMessage
		if raw[0] != '[' || json.Unmarshal(raw, &items) != nil {
			return mismatch("a list")
		}
		if len(items) != v.Len() {
			return resource.Diagnostics{resource.Error(p, "wrong length", "expected a list of %d elements, got %d", v.Len(), len(items))}
		}
		var diags resource.Diagnostics
		for i, item := range items {
			diags = append(diags, decodeInto(v.Index(i), item, p.Index(i))...)
		}
		return diags
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			return resource.Diagnostics{resource.Error(p, "unsupported Go type", "a map with %s keys cannot be decoded; use string keys", v.Type().Key())}
		}
		var obj map[string]json.RawMessage
		if raw[0] != '{' || json.Unmarshal(raw, &obj) != nil {
			return mismatch("an attribute set")
		}
		m := reflect.MakeMapWithSize(v.Type(), len(obj))
		var diags resource.Diagnostics
		for _, k := range sortedKeys(obj) {
			elem := reflect.New(v.Type().Elem()).Elem()
			diags = append(diags, decodeInto(elem, obj[k], p.Key(k))...)
			m.SetMapIndex(reflect.ValueOf(k).Convert(v.Type().Key()), elem)
		}
		v.Set(m)
		return diags
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, d := wholeNumber(raw, p, float64(minInt(v.Type().Bits())), float64(maxInt(v.Type().Bits())), v.Type())
		if d != nil {
			return d
		}
		v.SetInt(int64(n))
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		n, d := wholeNumber(raw, p, 0, float64(maxUint(v.Type().Bits())), v.Type())
		if d != nil {
			return d
		}
		v.SetUint(uint64(n))
		return nil
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(string(raw), v.Type().Bits())
		if !isNumber(raw) || err != nil {
			return mismatch("a number")
		}
		v.SetFloat(f)
		return nil
	case reflect.String:
		if s, ok := plainString(raw); ok {
			v.SetString(s)
			return nil
		}
		var s string
		if raw[0] != '"' || json.Unmarshal(raw, &s) != nil {
			return mismatch("a string")
		}
		v.SetString(s)
		return nil
	case reflect.Bool:
		switch string(raw) {
		case "true":
			v.SetBool(true)
		case "false":
			v.SetBool(false)
		default:
			return mismatch("a boolean")
		}
		return nil
	case reflect.Interface:
		if err := json.Unmarshal(raw, v.Addr().Interface()); err != nil {
			return resource.Diagnostics{resource.Error(p, "invalid value", "%s cannot hold %s: %s", goTypeName(v.Type()), DescribeJSON(raw), unmarshalReason(err))}
		}
		return nil
	}
	return resource.Diagnostics{resource.Error(p, "unsupported Go type", "the provider's field of type %s cannot be decoded from JSON", v.Type())}
}

// wholeNumber reads raw as a whole number within [lo, hi], for a field of
// type t. A number written with a fraction or an exponent is accepted when
// its value is whole (Nix writes 3.0 as 3.000000).
func wholeNumber(raw json.RawMessage, p resource.Path, lo, hi float64, t reflect.Type) (float64, resource.Diagnostics) {
	s := string(raw)
	if !isNumber(raw) {
		return 0, resource.Diagnostics{resource.Error(p, "wrong type", "expected a whole number, got %s", DescribeJSON(raw))}
	}
	if strings.ContainsAny(s, ".eE") {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f != math.Trunc(f) {
			return 0, resource.Diagnostics{resource.Error(p, "not a whole number", "the provider takes a whole number here (Go type %s), got a number with a fraction", goTypeName(t))}
		}
		if f < lo || f > hi {
			return 0, outOfRange(p, t, lo, hi)
		}
		return f, nil
	}
	// Parse as an integer to keep all 64 bits of large values.
	if lo < 0 {
		n, err := strconv.ParseInt(s, 10, t.Bits())
		if err != nil {
			return 0, outOfRange(p, t, lo, hi)
		}
		return float64(n), nil
	}
	if raw[0] == '-' {
		return 0, resource.Diagnostics{resource.Error(p, "out of range", "the provider takes a number that is not negative here (Go type %s)", goTypeName(t))}
	}
	n, err := strconv.ParseUint(s, 10, t.Bits())
	if err != nil {
		return 0, outOfRange(p, t, lo, hi)
	}
	return float64(n), nil
}

func outOfRange(p resource.Path, t reflect.Type, lo, hi float64) resource.Diagnostics {
	return resource.Diagnostics{resource.Error(p, "out of range", "the provider takes a whole number from %.0f to %.0f here (Go type %s)", lo, hi, goTypeName(t))}
}

// isNumber reports whether a JSON value is a number.
func isNumber(raw json.RawMessage) bool {
	return raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')
}

func minInt(bits int) int64   { return -1 << (bits - 1) }
func maxInt(bits int) int64   { return 1<<(bits-1) - 1 }
func maxUint(bits int) uint64 { return 1<<bits - 1 }

// usesOwnDecoding reports whether values of type t decode themselves.
func usesOwnDecoding(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	return pt.Implements(reflect.TypeFor[json.Unmarshaler]()) || pt.Implements(reflect.TypeFor[encoding.TextUnmarshaler]())
}

// unmarshalReason is an encoding/json error without the value it quotes.
func unmarshalReason(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return "expected " + typeErr.Type.String() + ", got a JSON " + typeErr.Value
	}
	var syntaxErr *json.SyntaxError
	if errors.As(err, &syntaxErr) {
		return "not valid JSON"
	}
	return "rejected by its decoder"
}

func goTypeName(t reflect.Type) string {
	return fmt.Sprint(t)
}

// field is a struct field reached through a json name.
type field struct {
	index []int
	name  string // the Go field's name, for messages
	typ   reflect.Type
}

// plainString reads a JSON string without escapes, control characters or
// invalid UTF-8 (most strings) without the decoder: what json.Unmarshal
// would give. It returns false for any other text.
func plainString(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	body := raw[1 : len(raw)-1]
	for _, c := range body {
		if c < 0x20 || c == '"' || c == '\\' {
			return "", false
		}
	}
	if !utf8.Valid(body) {
		return "", false
	}
	return string(body), true
}

// decodeFields decodes the attributes of an object, read already, into
// the fields of struct v, as decodeInto does.
func decodeFields(v reflect.Value, obj map[string]json.RawMessage, p resource.Path) resource.Diagnostics {
	return decodeFieldsOf(v, jsonFields(v.Type()), obj, p)
}

// decodeFieldsOf is decodeFields with v's fields (jsonFields) found
// already: a type's inputs are decoded for every plan, and finding the
// fields by reflection each time cost a tenth of a no-op plan.
func decodeFieldsOf(v reflect.Value, fields map[string]field, obj map[string]json.RawMessage, p resource.Path) resource.Diagnostics {
	var diags resource.Diagnostics
	for _, name := range sortedKeys(obj) {
		f, ok := fields[name]
		if !ok {
			// Declared attributes were checked against the schema
			// already; this is an object whose attributes were not
			// declared (an element of a list(object)).
			diags = append(diags, resource.Error(p.Attr(name), "unknown attribute", "%q is not one of %s", name, strings.Join(sortedKeys(fields), ", ")))
			continue
		}
		diags = append(diags, decodeInto(fieldByIndex(v, f.index), obj[name], p.Attr(name))...)
	}
	return diags
}

// jsonFields maps the json names of struct type t to its fields, as
// encoding/json sees them: exported fields, tags' names, embedded structs'
// fields promoted, "-" left out.
func jsonFields(t reflect.Type) map[string]field {
	out := map[string]field{}
	collectFields(t, nil, out, map[reflect.Type]bool{})
	return out
}

func collectFields(t reflect.Type, index []int, out map[string]field, seen map[reflect.Type]bool) {
	if seen[t] {
		return
	}
	seen[t] = true
	defer delete(seen, t)
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		idx := append(index[:len(index):len(index)], i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				collectFields(ft, idx, out, seen)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if _, dup := out[name]; dup && len(idx) > len(out[name].index) {
			continue // the shallower field wins, as in encoding/json
		}
		out[name] = field{index: idx, name: f.Name, typ: f.Type}
	}
}

// fieldByIndex is reflect.Value.FieldByIndex that allocates nil embedded
// pointers on the way.
func fieldByIndex(v reflect.Value, index []int) reflect.Value {
	for i, x := range index {
		if i > 0 && v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v.Set(reflect.New(v.Type().Elem()))
			}
			v = v.Elem()
		}
		v = v.Field(x)
	}
	return v
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

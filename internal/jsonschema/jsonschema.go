// Package jsonschema validates JSON documents against JSON Schema (draft 4)
// for the subset of keywords that NixOps4's resource protocol schema uses:
// type, properties, required, additionalProperties, items, enum, oneOf and
// $ref (within a document, or to another document given by its URI). A
// schema that uses any other keyword that constrains values is refused when
// it is loaded, so a check that passes never skipped a rule it did not know.
package jsonschema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// annotations are keywords that do not constrain values.
var annotations = map[string]bool{
	"$schema": true, "$id": true, "id": true, "title": true, "description": true,
	"definitions": true, "default": true, "examples": true,
}

// constraints are the keywords this package checks.
var constraints = map[string]bool{
	"type": true, "properties": true, "required": true, "additionalProperties": true,
	"items": true, "enum": true, "oneOf": true, "$ref": true,
}

// Set is a main schema and the documents its $refs name by URI.
type Set struct {
	main any
	// docs holds the other documents by URI, without a fragment.
	docs map[string]any
}

// Load parses the main schema and the documents its references name
// (external maps a URI without its "#..." to the document's text), and
// checks that they use only the keywords this package knows.
func Load(main []byte, external map[string][]byte) (*Set, error) {
	s := &Set{docs: map[string]any{}}
	var err error
	if s.main, err = parse(main); err != nil {
		return nil, fmt.Errorf("main schema: %w", err)
	}
	if err := checkKeywords(s.main, "#"); err != nil {
		return nil, fmt.Errorf("main schema: %w", err)
	}
	for uri, text := range external {
		doc, err := parse(text)
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", uri, err)
		}
		if err := checkKeywords(doc, "#"); err != nil {
			return nil, fmt.Errorf("schema %s: %w", uri, err)
		}
		s.docs[uri] = doc
	}
	return s, nil
}

func parse(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// checkKeywords refuses keywords that constrain values but are not checked
// here, anywhere in a schema.
func checkKeywords(schema any, at string) error {
	obj, ok := schema.(map[string]any)
	if !ok {
		if _, isBool := schema.(bool); isBool {
			return nil
		}
		return fmt.Errorf("%s: a schema must be an object", at)
	}
	for _, k := range sortedKeys(obj) {
		v := obj[k]
		switch {
		case strings.HasPrefix(k, "x-"), annotations[k] && k != "definitions":
		case k == "definitions", k == "properties":
			defs, ok := v.(map[string]any)
			if !ok {
				return fmt.Errorf("%s/%s: not an object", at, k)
			}
			for _, name := range sortedKeys(defs) {
				if err := checkKeywords(defs[name], at+"/"+k+"/"+name); err != nil {
					return err
				}
			}
		case k == "oneOf":
			list, ok := v.([]any)
			if !ok {
				return fmt.Errorf("%s/oneOf: not a list", at)
			}
			for i, sub := range list {
				if err := checkKeywords(sub, fmt.Sprintf("%s/oneOf/%d", at, i)); err != nil {
					return err
				}
			}
		case k == "items", k == "additionalProperties":
			if err := checkKeywords(v, at+"/"+k); err != nil {
				return err
			}
		case constraints[k]:
		default:
			return fmt.Errorf("%s: keyword %q is not supported by this validator", at, k)
		}
	}
	return nil
}

// Validate checks the JSON document doc against the schema at ref, a
// reference into the main schema ("#/definitions/Request", or "#" for
// the whole). The error lists every violation with its place in doc.
func (s *Set) Validate(ref string, doc []byte) error {
	v, err := parse(doc)
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	schema, root, err := s.resolve(s.main, ref)
	if err != nil {
		return err
	}
	if errs := s.check(root, schema, v, "$"); len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// resolve finds the schema a $ref names, from within the document root.
// It returns the schema and the document it is in.
func (s *Set) resolve(root any, ref string) (any, any, error) {
	uri, fragment, _ := strings.Cut(ref, "#")
	if uri != "" {
		doc, ok := s.docs[uri]
		if !ok {
			return nil, nil, fmt.Errorf("$ref %s: the document %s was not given", ref, uri)
		}
		root = doc
	}
	cur := root
	if fragment == "" || fragment == "/" {
		return cur, root, nil
	}
	for _, part := range strings.Split(strings.TrimPrefix(fragment, "/"), "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, nil, fmt.Errorf("$ref %s: %q is not in an object", ref, part)
		}
		if cur, ok = obj[part]; !ok {
			return nil, nil, fmt.Errorf("$ref %s: no %q", ref, part)
		}
	}
	return cur, root, nil
}

// check validates v against schema (in document root) and returns the
// violations, each prefixed by where in the document it is.
func (s *Set) check(root, schema, v any, at string) []string {
	if b, ok := schema.(bool); ok {
		if b {
			return nil
		}
		return []string{at + ": not allowed"}
	}
	obj := schema.(map[string]any)
	if ref, ok := obj["$ref"].(string); ok {
		// Draft 4: $ref replaces the schema it sits in.
		target, targetRoot, err := s.resolve(root, ref)
		if err != nil {
			return []string{at + ": " + err.Error()}
		}
		return s.check(targetRoot, target, v, at)
	}
	var errs []string
	if t, ok := obj["type"]; ok && !hasType(v, t) {
		return []string{fmt.Sprintf("%s: is %s, want %v", at, typeName(v), t)}
	}
	if enum, ok := obj["enum"].([]any); ok && !inEnum(v, enum) {
		errs = append(errs, fmt.Sprintf("%s: %s is not one of %s", at, show(v), show(enum)))
	}
	if m, ok := v.(map[string]any); ok {
		errs = append(errs, s.checkObject(root, obj, m, at)...)
	}
	if list, ok := v.([]any); ok {
		if items, ok := obj["items"]; ok {
			for i, item := range list {
				errs = append(errs, s.check(root, items, item, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	}
	if alts, ok := obj["oneOf"].([]any); ok {
		var matched []int
		var why []string
		for i, alt := range alts {
			sub := s.check(root, alt, v, at)
			if len(sub) == 0 {
				matched = append(matched, i)
			} else {
				why = append(why, fmt.Sprintf("%s[%d]: %s", altName(alt, i), i, strings.Join(sub, ", ")))
			}
		}
		switch len(matched) {
		case 1:
		case 0:
			errs = append(errs, fmt.Sprintf("%s: matches none of oneOf (%s)", at, strings.Join(why, " | ")))
		default:
			errs = append(errs, fmt.Sprintf("%s: matches %d alternatives of oneOf %v, want exactly one", at, len(matched), matched))
		}
	}
	return errs
}

func (s *Set) checkObject(root any, schema, m map[string]any, at string) []string {
	var errs []string
	if req, ok := schema["required"].([]any); ok {
		for _, r := range req {
			name, _ := r.(string)
			if _, ok := m[name]; !ok {
				errs = append(errs, fmt.Sprintf("%s: %q is required", at, name))
			}
		}
	}
	props, _ := schema["properties"].(map[string]any)
	additional, hasAdditional := schema["additionalProperties"]
	for _, k := range sortedKeys(m) {
		where := at + "." + k
		if p, ok := props[k]; ok {
			errs = append(errs, s.check(root, p, m[k], where)...)
			continue
		}
		if hasAdditional {
			if b, ok := additional.(bool); ok && !b {
				errs = append(errs, fmt.Sprintf("%s: property %q is not allowed", at, k))
				continue
			}
			errs = append(errs, s.check(root, additional, m[k], where)...)
		}
	}
	return errs
}

func altName(alt any, i int) string {
	if obj, ok := alt.(map[string]any); ok {
		if t, ok := obj["title"].(string); ok {
			return t
		}
	}
	return "alternative " + strconv.Itoa(i)
}

// hasType reports whether v has the type t (a name or a list of names).
func hasType(v any, t any) bool {
	switch t := t.(type) {
	case string:
		return isType(v, t)
	case []any:
		for _, one := range t {
			if name, ok := one.(string); ok && isType(v, name) {
				return true
			}
		}
	}
	return false
}

func isType(v any, name string) bool {
	switch name {
	case "integer":
		n, ok := v.(json.Number)
		if !ok {
			return false
		}
		f, err := n.Float64()
		return err == nil && f == math.Trunc(f)
	case "number":
		_, ok := v.(json.Number)
		return ok
	}
	return typeName(v) == name
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case string:
		return "string"
	case json.Number:
		return "number"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

func inEnum(v any, enum []any) bool {
	for _, e := range enum {
		if reflect.DeepEqual(normalise(v), normalise(e)) {
			return true
		}
	}
	return false
}

// normalise makes numbers comparable by value.
func normalise(v any) any {
	switch v := v.(type) {
	case json.Number:
		f, _ := v.Float64()
		return f
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = normalise(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = normalise(e)
		}
		return out
	}
	return v
}

func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

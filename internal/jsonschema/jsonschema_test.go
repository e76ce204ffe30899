package jsonschema

import (
	"strings"
	"testing"
)

const testSchema = `{
  "$schema": "http://json-schema.org/draft-04/schema#",
  "definitions": {
    "name": {"type": "string"},
    "Thing": {
      "type": "object",
      "properties": {
        "name": {"$ref": "#/definitions/name"},
        "kind": {"type": "string", "enum": ["a", "b"]},
        "count": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "extra": {"type": "object", "additionalProperties": true},
        "patch": {"$ref": "https://example.org/other.json#"}
      },
      "required": ["name"],
      "additionalProperties": false
    },
    "Either": {
      "oneOf": [
        {"type": "object", "title": "A", "properties": {"a": {"type": "boolean"}}, "required": ["a"]},
        {"type": "object", "title": "B", "properties": {"b": {"type": "boolean"}}, "required": ["b"]}
      ]
    }
  }
}`

const otherSchema = `{"type": "array", "items": {"$ref": "#/definitions/n"}, "definitions": {"n": {"type": "number"}}}`

func TestValidate(t *testing.T) {
	s, err := Load([]byte(testSchema), map[string][]byte{"https://example.org/other.json": []byte(otherSchema)})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, ref, doc string
		// wantErr is a part of the error, or "" for a valid document.
		wantErr string
	}{
		{"valid", "#/definitions/Thing", `{"name": "x", "kind": "a", "count": 3, "tags": ["t"], "extra": {"any": 1}}`, ""},
		{"missing required", "#/definitions/Thing", `{"kind": "a"}`, `"name" is required`},
		{"wrong type through ref", "#/definitions/Thing", `{"name": 1}`, "$.name: is number, want string"},
		{"not in enum", "#/definitions/Thing", `{"name": "x", "kind": "c"}`, `"c" is not one of ["a","b"]`},
		{"not an integer", "#/definitions/Thing", `{"name": "x", "count": 2.5}`, "$.count: is number, want integer"},
		{"whole float is an integer", "#/definitions/Thing", `{"name": "x", "count": 2.0}`, ""},
		{"item of the wrong type", "#/definitions/Thing", `{"name": "x", "tags": ["t", 2]}`, "$.tags[1]: is number, want string"},
		{"additional property", "#/definitions/Thing", `{"name": "x", "bogus": 1}`, `property "bogus" is not allowed`},
		{"not an object", "#/definitions/Thing", `[]`, "$: is array, want object"},
		{"external ref", "#/definitions/Thing", `{"name": "x", "patch": [1, 2]}`, ""},
		{"external ref refuses", "#/definitions/Thing", `{"name": "x", "patch": ["no"]}`, "$.patch[0]: is string, want number"},
		{"oneOf first", "#/definitions/Either", `{"a": true}`, ""},
		{"oneOf none", "#/definitions/Either", `{"c": true}`, "matches none of oneOf"},
		{"oneOf both", "#/definitions/Either", `{"a": true, "b": false}`, "matches 2 alternatives"},
		{"bad ref", "#/definitions/Nothing", `{}`, `no "Nothing"`},
		{"not JSON", "#/definitions/Thing", `{`, "not JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Validate(tt.ref, []byte(tt.doc))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("valid document refused: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("invalid document accepted, want an error with %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Fatalf("error %q, want it to say %q", err, tt.wantErr)
			}
		})
	}
}

func TestLoadRefusesUnknownKeywords(t *testing.T) {
	tests := []struct{ name, schema, want string }{
		{"top level", `{"minLength": 3}`, `"minLength"`},
		{"in a property", `{"properties": {"a": {"pattern": "x"}}}`, `#/properties/a: keyword "pattern"`},
		{"in a definition", `{"definitions": {"d": {"anyOf": []}}}`, `#/definitions/d: keyword "anyOf"`},
		{"in oneOf", `{"oneOf": [{"allOf": []}]}`, `#/oneOf/0: keyword "allOf"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load([]byte(tt.schema), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Load: %v, want an error naming %s", err, tt.want)
			}
		})
	}
	if _, err := Load([]byte(`{"x-rust-type": {"crate": "c"}, "title": "t", "description": "d"}`), nil); err != nil {
		t.Fatalf("annotations and x- keywords refused: %v", err)
	}
}

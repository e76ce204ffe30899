package resource

import (
	"encoding/json"
	"testing"
)

// TestValueAtAndNullAt: reading and nulling a value by path inside a
// decoded document, the document itself left as it was.
func TestValueAtAndNullAt(t *testing.T) {
	const doc = `{"a":{"b":[1,{"c":"x"}]},"d":"y"}`
	tests := []struct {
		name  string
		path  Path
		value string // JSON, "" = not found
		after string // the document with the value nulled
	}{
		{"top", AttrPath("d"), `"y"`, `{"a":{"b":[1,{"c":"x"}]},"d":null}`},
		{"nested", AttrPath("a").Attr("b").Index(1).Key("c"), `"x"`, `{"a":{"b":[1,{"c":null}]},"d":"y"}`},
		{"a list element", AttrPath("a", "b").Index(0), `1`, `{"a":{"b":[null,{"c":"x"}]},"d":"y"}`},
		{"the whole", nil, doc, `null`},
		{"a missing name", AttrPath("e"), "", doc},
		{"an index out of range", AttrPath("a", "b").Index(2), "", doc},
		{"an index into an object", AttrPath("a").Index(0), "", doc},
		{"a name into a list", AttrPath("a", "b", "c"), "", doc},
		{"below a string", AttrPath("d", "e"), "", doc},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v any
			if err := json.Unmarshal([]byte(doc), &v); err != nil {
				t.Fatal(err)
			}
			got, ok := ValueAt(v, tt.path)
			if b, _ := json.Marshal(got); ok != (tt.value != "") || (ok && string(b) != tt.value) {
				t.Errorf("ValueAt = %s, %v; want %s", b, ok, tt.value)
			}
			after, _ := json.Marshal(NullAt(v, tt.path))
			if string(after) != tt.after {
				t.Errorf("NullAt = %s, want %s", after, tt.after)
			}
			if b, _ := json.Marshal(v); string(b) != doc {
				t.Errorf("the document changed: %s", b)
			}
		})
	}
}

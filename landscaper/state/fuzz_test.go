package state

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to the file backend's parser (what Read
// uses): it never panics, refuses with an *InvalidError, or returns a valid
// state that encodes and parses back to the same encoding. The seeds are
// below and in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		``,
		"  \n",
		`{}`,
		`[]`,
		`null`,
		`{"version":1`,
		`{"version":2,"lineage":"l"}`,
		`{"version":"1","lineage":"l"}`,
		`{"version":1.5,"lineage":"l"}`,
		`{"version":1,"lineage":""}`,
		`{"version":1,"lineage":"l","serial":-1}`,
		`{"version":1,"lineage":"l","serial":3,"resources":{}}`,
		`{"version":1,"lineage":"l","serial":3,"resources":{"a":null}}`,
		`{"version":1,"lineage":"l","serial":3,"resources":{"":{"type":"t"}}}`,
		`{"version":1,"lineage":"l","serial":3,"resources":{"a":{"type":"local.file","provider":"local","inputs":{ "path" : "/x" },"sensitiveInputs":["content","a.\"b c\"[0]"],"outputs":null,"private":"AAEC","dependencies":["b"],"tainted":true}}}`,
		`{"version":1,"lineage":"l","serial":3,"resources":{},"pending":{"a":{"operation":"create","type":"t","provider":"p","inputs":{},"since":"2024-01-02T03:04:05Z"}}}`,
		`{"version":1,"lineage":"l","serial":3,"resources":{},"pending":{"a":{"operation":"explode","type":"t"}}}`,
		`{"version":1,"lineage":"l","resources":{"a":{"type":"t","sensitiveInputs":["\"unterminated"]}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// The path's directory does not exist: no backup is ever found.
		fb := NewFile("/nonexistent-landscaper-fuzz/state.json")
		s, err := fb.decode(data)
		if err != nil {
			var inv *InvalidError
			if !errors.As(err, &inv) {
				t.Fatalf("decode(%q) = %T %v, want an *InvalidError", data, err, err)
			}
			if inv.Problem == "" || inv.Error() == "" {
				t.Fatalf("decode(%q): an InvalidError without a problem", data)
			}
			return
		}
		if s == nil || s.Version != FormatVersion || s.Lineage == "" || s.Resources == nil || s.Pending == nil {
			t.Fatalf("decode(%q) = %+v without an error", data, s)
		}
		for name, r := range s.Resources {
			if name == "" || r == nil || r.Type == "" {
				t.Fatalf("decode(%q) accepted resource %q = %+v", data, name, r)
			}
		}
		enc1, err := NewFile(fb.path).encode(s)
		if err != nil {
			t.Fatalf("decode(%q) parsed, but encoding it fails: %v", data, err)
		}
		s2, err := fb.decode(enc1)
		if err != nil {
			t.Fatalf("decode(%q) parsed, but its encoding %q does not: %v", data, enc1, err)
		}
		if s2.Lineage != s.Lineage || s2.Serial != s.Serial || len(s2.Resources) != len(s.Resources) || len(s2.Pending) != len(s.Pending) {
			t.Fatalf("round trip of %q changed the state: %q", data, enc1)
		}
		enc2, err := NewFile(fb.path).encode(s2)
		if err != nil {
			t.Fatalf("encode again: %v", err)
		}
		if !bytes.Equal(enc1, enc2) {
			t.Fatalf("round trip of %q is not stable:\n%s\n%s", data, enc1, enc2)
		}
	})
}

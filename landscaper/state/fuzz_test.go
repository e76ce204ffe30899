package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

// canonicalState describes s so that two states that say the same compare
// equal: recorded JSON values compacted, paths in their text form, times
// as instants.
func canonicalState(t *testing.T, s *State) string {
	t.Helper()
	compact := func(raw json.RawMessage) string {
		if raw == nil {
			// A missing value is encoded as null.
			return "null"
		}
		var b bytes.Buffer
		if err := json.Compact(&b, raw); err != nil {
			t.Fatalf("a recorded value %q is not JSON: %v", raw, err)
		}
		return b.String()
	}
	paths := func(ps []resource.Path) []string {
		out := []string{}
		for _, p := range ps {
			out = append(out, p.String())
		}
		return out
	}
	var b strings.Builder
	fmt.Fprintf(&b, "version %d lineage %q serial %d\n", s.Version, s.Lineage, s.Serial)
	for _, name := range slices.Sorted(maps.Keys(s.Resources)) {
		r := s.Resources[name]
		fmt.Fprintf(&b, "resource %q: type %q provider %q path %q inputs %s sensitive %q outputs %s sensitive %q private %x deps %q tainted %v\n",
			name, r.Type, r.Provider, r.ProviderPath, compact(r.Inputs), paths(r.SensitiveInputs), compact(r.Outputs), paths(r.SensitiveOutputs), r.Private, r.Dependencies, r.Tainted)
	}
	for _, name := range slices.Sorted(maps.Keys(s.Pending)) {
		p := s.Pending[name]
		fmt.Fprintf(&b, "pending %q: %s type %q provider %q path %q inputs %s sensitive %q since %d\n",
			name, p.Operation, p.Type, p.Provider, p.ProviderPath, compact(p.Inputs), paths(p.SensitiveInputs), p.Since.UnixNano())
	}
	return b.String()
}

// FuzzDecode feeds arbitrary bytes to the file backend's parser (what Read
// uses): it never panics, refuses with an *InvalidError, or returns a valid
// state that encodes and parses back to the same state (compared field by
// field) and the same encoding. The seeds are
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
		if got, want := canonicalState(t, s2), canonicalState(t, s); got != want {
			t.Fatalf("round trip of %q changed the state:\n%s\nwant\n%s", data, got, want)
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

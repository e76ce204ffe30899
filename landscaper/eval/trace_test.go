package eval

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
)

// TestTrace traces members in one evaluation and checks that each is
// credited with what its own inputs force, a value shared with another
// member included, and the same as tracing it in an evaluation of its own.
func TestTrace(t *testing.T) {
	ctx := t.Context()
	e, err := New(Source{File: "testdata/traced.nix"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	paths := []string{"first", "second", "none", "throws", "group.in side"}
	srcKnown := map[string]map[string]json.RawMessage{"src": {"sha256": json.RawMessage(`"abc"`)}}
	tests := []struct {
		name  string
		known map[string]map[string]json.RawMessage
		want  map[string]Traced
	}{
		{"every output a token", nil, map[string]Traced{
			"first":         {Forced: []string{"src#sha256"}, OK: true},
			"second":        {Forced: []string{"src#sha256", "the other#sha256"}, OK: true},
			"none":          {OK: true},
			"throws":        {Forced: []string{"src#sha256"}, OK: false},
			"group.in side": {Forced: []string{"the other#sha256"}, OK: true},
		}},
		{"a known output is not reported", srcKnown, map[string]Traced{
			"first":         {OK: true},
			"second":        {Forced: []string{"the other#sha256"}, OK: true},
			"none":          {OK: true},
			"throws":        {OK: false},
			"group.in side": {Forced: []string{"the other#sha256"}, OK: true},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := e.Invocations()
			got, err := e.Trace(ctx, TraceRequest{Types: localTypes(), Known: tc.known, Only: paths})
			if err != nil {
				t.Fatal(err)
			}
			if n := e.Invocations() - before; n != 1 {
				t.Errorf("%d nix invocations, want 1", n)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			// One member per evaluation, as the engine traced before.
			for _, p := range paths {
				res, err := e.Evaluate(ctx, Request{Types: localTypes(), Known: tc.known, Only: []string{p}, TraceForced: true})
				var forced []string
				var evalErr *Error
				switch {
				case err == nil:
					forced = res.Forced
				case errors.As(err, &evalErr):
					forced = evalErr.Forced
				default:
					t.Fatal(err)
				}
				if !reflect.DeepEqual(forced, got[p].Forced) {
					t.Errorf("%s alone forced %v, in one evaluation %v", p, forced, got[p].Forced)
				}
			}
		})
	}
}

// TestTraceTwice: a member asked for twice is traced once.
func TestTraceTwice(t *testing.T) {
	e, err := New(Source{File: "testdata/traced.nix"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	got, err := e.Trace(t.Context(), TraceRequest{Types: localTypes(), Only: []string{"first", "none", "first"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || !reflect.DeepEqual(got["first"].Forced, []string{"src#sha256"}) {
		t.Errorf("got %v", got)
	}
}

// TestTraceFailsWhole: an error tryEval cannot catch stops the whole
// trace, and is reported as an *Error.
func TestTraceFailsWhole(t *testing.T) {
	e, err := New(Source{File: "testdata/traced.nix"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	_, err = e.Trace(t.Context(), TraceRequest{Types: localTypes(), Only: []string{"first", "parses"}})
	var evalErr *Error
	if !errors.As(err, &evalErr) {
		t.Fatalf("got %v, want an *Error", err)
	}
}

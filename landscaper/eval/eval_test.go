package eval

import (
	"context"
	"reflect"
	"testing"
)

func localTypes() Types {
	return Types{"local": {"file": {"sha256"}, "exec": {"stdout"}}}
}

func TestAnalyzeTellsPassThroughFromComputation(t *testing.T) {
	e, err := New(Source{File: "testdata/mixed.nix"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	res, err := e.Evaluate(context.Background(), Request{Types: localTypes(), Twice: true})
	if err != nil {
		t.Fatal(err)
	}
	var keys []Key
	for _, m := range res.Members {
		keys = append(keys, Key{m.Path, "sha256"})
	}
	toks := e.Tokens(keys)
	want := map[string]struct{ deps, opaque int }{
		"a": {0, 0}, "pass": {1, 0}, "interp": {1, 0}, "hash": {0, 1}, "slice": {0, 1}, "len": {0, 1}, "json": {1, 1}, "group.inner": {1, 0},
	}
	if len(res.Members) != len(want) {
		t.Fatalf("got %d members, want %d", len(res.Members), len(want))
	}
	// The members whose inputs show no token intact are not evaluated in
	// the second spelling: the hash and the length. The slice keeps the
	// token's start, toJSON the whole token (escaped).
	if want := map[string]bool{"hash": true, "len": true}; !reflect.DeepEqual(res.Computing, want) {
		t.Errorf("computing %v, want %v", res.Computing, want)
	}
	for _, m := range res.Members {
		second, haveSecond, ok := res.SecondFor(m.Path)
		if !ok {
			t.Fatalf("%s: missing from the second evaluation", m.Path)
		}
		an, err := toks.Analyze(m.Inputs, second, haveSecond, res.FailingFor(m.Path)...)
		if err != nil {
			t.Fatal(err)
		}
		w := want[m.Path]
		if len(an.Deps) != w.deps || len(an.Opaque) != w.opaque {
			t.Errorf("%s: deps %v opaque %v, want %d deps %d opaque", m.Path, an.Deps, an.Opaque, w.deps, w.opaque)
		}
	}
}

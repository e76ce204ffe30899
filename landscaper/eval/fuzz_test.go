package eval

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

// redact replaces every part of v at or below a sensitive path by a marker.
func redact(v any, p resource.Path, sensitive []resource.Path) any {
	if resource.Covered(p, sensitive) {
		return "(sensitive)"
	}
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = redact(e, p.Attr(k), sensitive)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = redact(e, p.Index(i), sensitive)
		}
		return out
	}
	return v
}

// FuzzSubstitute splices tokens into fuzzed JSON (@S: a sensitive output,
// @K: a known string, @N: a known number, @U: an unknown output, @O: a
// sensitive object) and substitutes them: Substitute never panics, and the
// sensitive value shows only at the paths it reports in Sensitive (the rest
// of the result does not depend on the value). The seeds are below and in
// testdata/fuzz/FuzzSubstitute.
func FuzzSubstitute(f *testing.F) {
	f.Add(`{"a":"@S"}`, "hunter2-hunter2")
	f.Add(`{"a":"key: @S!","b":["@K","x@N@S@U"],"c":{"d":"@O"}}`, "-----BEGIN KEY-----")
	f.Add(`["@S","@K@K",{"@S":"@S"}]`, "0123456789")
	f.Add(`{"a":{"b":[["@S"]]},"@K":"@U"}`, `"quoted" \ secret`)
	f.Add(`"@S"`, "whole document")
	f.Add(`{"a":"@S@S@S","b":"@","c":"@@ls"}`, "@@ls'\"\\$<&> \n")
	f.Add(`{"a":1e400,"b":"@S"}`, "big number")
	f.Add(`{"a":"@S","a":"plain"}`, "duplicate key")
	f.Fuzz(func(t *testing.T, inputs, secret string) {
		e := &Evaluator{nonceA: "a", nonceB: "b"}
		sec, known, num, unk, obj := Key{"s", "secret"}, Key{"k", "v"}, Key{"n", "v"}, Key{"u", "v"}, Key{"o", "v"}
		toks := e.Tokens([]Key{sec, known, num, unk, obj})
		tok := map[Key]string{}
		for s, k := range toks.a {
			// The token as it appears inside a JSON string.
			b, _ := json.Marshal(s)
			tok[k] = string(b[1 : len(b)-1])
		}
		doc := strings.NewReplacer("@S", tok[sec], "@K", tok[known], "@N", tok[num], "@U", tok[unk], "@O", tok[obj]).Replace(inputs)
		run := func(secret string) (Substituted, error) {
			sj, _ := json.Marshal(secret)
			oj, _ := json.Marshal(map[string]any{"secret": secret, "l": []string{secret}})
			values := map[Key]Value{
				sec:   {JSON: sj, Known: true, Sensitive: true},
				obj:   {JSON: oj, Known: true, Sensitive: true},
				known: {JSON: json.RawMessage(`"hello"`), Known: true},
				num:   {JSON: json.RawMessage(`42`), Known: true},
			}
			return toks.Substitute(doc, func(k Key) Value { return values[k] })
		}
		got, err := run(secret)
		ref, refErr := run("REFERENCE")
		if (err == nil) != (refErr == nil) {
			t.Fatalf("Substitute(%q) fails with one secret and not another: %v / %v", doc, err, refErr)
		}
		if err != nil {
			return
		}
		var gotDoc, refDoc any
		if err := json.Unmarshal(got.JSON, &gotDoc); err != nil {
			t.Fatalf("Substitute(%q) = %q, not JSON: %v", doc, got.JSON, err)
		}
		if err := json.Unmarshal(ref.JSON, &refDoc); err != nil {
			t.Fatalf("Substitute(%q) = %q, not JSON: %v", doc, ref.JSON, err)
		}
		// The order of the paths follows map iteration: compare them sorted.
		paths := func(ps []resource.Path) string {
			ss := make([]string, len(ps))
			for i, p := range ps {
				ss[i] = p.String()
			}
			sort.Strings(ss)
			b, _ := json.Marshal(ss)
			return string(b)
		}
		if paths(got.Sensitive) != paths(ref.Sensitive) || paths(got.Unknown) != paths(ref.Unknown) {
			t.Fatalf("Substitute(%q): the paths depend on the sensitive value: %s %s / %s %s", doc, paths(got.Sensitive), paths(got.Unknown), paths(ref.Sensitive), paths(ref.Unknown))
		}
		g, _ := json.Marshal(redact(gotDoc, nil, got.Sensitive))
		r, _ := json.Marshal(redact(refDoc, nil, ref.Sensitive))
		if string(g) != string(r) {
			t.Fatalf("Substitute(%q): the sensitive value %q shows outside %s:\n%s\n--- with another value:\n%s", doc, secret, paths(got.Sensitive), g, r)
		}
		if len(secret) >= 8 && !strings.Contains(doc, secret) && !strings.Contains(string(r), secret) && strings.Contains(string(g), secret) {
			t.Fatalf("Substitute(%q): the sensitive value %q shows outside %s: %s", doc, secret, paths(got.Sensitive), g)
		}
	})
}

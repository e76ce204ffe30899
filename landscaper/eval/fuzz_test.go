package eval

import (
	"encoding/json"
	"reflect"
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
		toks.tables()
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
		if err := decodeExact(got.JSON, &gotDoc); err != nil {
			t.Fatalf("Substitute(%q) = %q, not JSON: %v", doc, got.JSON, err)
		}
		if err := decodeExact(ref.JSON, &refDoc); err != nil {
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

// evalModes are the driver's output kinds FuzzDecodeEvaluation decodes,
// chosen by its mode argument.
var evalModes = []string{"members", "members twice", "paths", "names", "providers"}

// decodeAs decodes data as the driver's output of one mode.
func decodeAs(mode string, data []byte) (any, error) {
	switch mode {
	case "members", "members twice":
		res, _, err := decodeMembers(data, mode == "members twice", nil)
		return res, err
	case "paths", "names":
		return decodeStructure(data, mode == "names")
	default:
		return decodeProviders(data)
	}
}

// encodeFailingPath writes a failing part as the driver does: names and
// indexes.
func encodeFailingPath(p resource.Path) []any {
	steps := []any{}
	for _, s := range p {
		if s.Kind == resource.StepIndex {
			steps = append(steps, s.Index)
		} else {
			steps = append(steps, s.Name)
		}
	}
	return steps
}

// encodeAs writes a decoded value back in the driver's format.
func encodeAs(t *testing.T, mode string, v any) []byte {
	var doc any
	switch mode {
	case "members", "members twice":
		res := v.(*Result)
		out := map[string]any{"a": res.Members, "b": nil, "c": nil, "k": nil}
		pairs := func(m map[string]string) []map[string]string {
			l := []map[string]string{}
			for p, in := range m {
				l = append(l, map[string]string{"path": p, "inputs": in})
			}
			return l
		}
		if res.Checked != nil {
			out["k"] = pairs(res.Checked)
		}
		if mode == "members twice" {
			out["b"] = pairs(res.Second)
			c := []map[string]any{}
			for p, parts := range res.Failing {
				l := [][]any{}
				for _, part := range parts {
					l = append(l, encodeFailingPath(part))
				}
				c = append(c, map[string]any{"path": p, "failing": l})
			}
			out["c"] = c
		}
		doc = out
	case "paths", "names":
		ms := []map[string]string{}
		for _, m := range v.([]Member) {
			ms = append(ms, map[string]string{"path": m.Path, "type": m.Type})
		}
		doc = map[string]any{"paths": ms}
	default:
		doc = map[string]any{"providers": v}
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatalf("encode %s output: %v", mode, err)
	}
	return b
}

// checkDecoded checks what a decoder accepted against the invariants the
// engine relies on.
func checkDecoded(t *testing.T, mode string, data []byte, v any) {
	t.Helper()
	checkPath := func(list, p string) {
		t.Helper()
		if p == "" || strings.HasPrefix(p, ".") || strings.HasSuffix(p, ".") || strings.Contains(p, "..") || strings.Contains(p, "#") {
			t.Fatalf("decode %s %q accepted the member path %q in %s", mode, data, p, list)
		}
	}
	checkCtx := func(c map[string]ContextEntry) {
		t.Helper()
		for p, e := range c {
			if !strings.HasPrefix(p, "/") {
				t.Fatalf("decode %s %q accepted the context path %q", mode, data, p)
			}
			for _, o := range e.Outputs {
				if o == "" || strings.ContainsAny(o, ",!") {
					t.Fatalf("decode %s %q accepted the context output %q", mode, data, o)
				}
			}
		}
	}
	members := func(ms []Member, names bool) {
		t.Helper()
		seen := map[string]bool{}
		for _, m := range ms {
			checkPath("the members", m.Path)
			if seen[m.Path] {
				t.Fatalf("decode %s %q accepted member %q twice", mode, data, m.Path)
			}
			seen[m.Path] = true
			provider, name, ok := strings.Cut(m.Type, ".")
			if names != (m.Type == "") || (!names && (!ok || provider == "" || name == "")) {
				t.Fatalf("decode %s %q accepted member %q of type %q", mode, data, m.Path, m.Type)
			}
			checkCtx(m.Context)
		}
	}
	switch mode {
	case "members", "members twice":
		res := v.(*Result)
		members(res.Members, false)
		for _, m := range res.Members {
			if !json.Valid([]byte(m.Inputs)) {
				t.Fatalf("decode %s %q accepted the inputs %q of %s", mode, data, m.Inputs, m.Path)
			}
		}
		for list, m := range map[string]map[string]string{"second": res.Second, "checked": res.Checked} {
			for p, in := range m {
				checkPath(list, p)
				if !json.Valid([]byte(in)) {
					t.Fatalf("decode %s %q accepted the %s inputs %q of %s", mode, data, list, in, p)
				}
			}
		}
		if (mode == "members twice") != (res.Second != nil && res.Failing != nil) {
			t.Fatalf("decode %s %q: second evaluation %v, failing %v", mode, data, res.Second != nil, res.Failing != nil)
		}
		for p, parts := range res.Failing {
			checkPath("failing", p)
			for _, part := range parts {
				for _, s := range part {
					if s.Kind == resource.StepIndex && s.Index < 0 {
						t.Fatalf("decode %s %q accepted failing part %s of %s", mode, data, part, p)
					}
				}
			}
		}
	case "paths", "names":
		members(v.([]Member), mode == "names")
	default:
		for name, p := range v.(map[string]DeclaredProvider) {
			if name == "" || p.Executable == "" {
				t.Fatalf("decode %s %q accepted provider %q = %+v", mode, data, name, p)
			}
			checkCtx(p.Context)
		}
	}
}

// FuzzDecodeEvaluation feeds arbitrary bytes to the decoders of what the
// Nix driver prints (members, structure, declared providers): they never
// panic; what they accept has valid, unique member paths, well-formed
// types, JSON inputs, failing parts of names and non-negative indexes and
// store paths as context; and it encodes back to the driver's format and
// decodes to the same value. The seeds are below (real driver output among
// them) and in testdata/fuzz/FuzzDecodeEvaluation.
func FuzzDecodeEvaluation(f *testing.F) {
	for _, seed := range []struct {
		mode uint8
		data string
	}{
		{1, `{"a":[{"context":{},"inputs":"{\"contents\":\"hello\",\"name\":\"a\"}","path":"a","type":"local.file"},{"context":{},"inputs":"{\"contents\":\"@@ls'\\\"\\\\$<&> \\na33e32281992fc1feeb85e9a@@\",\"name\":\"g\"}","path":"group.inner","type":"local.file"}],"b":[{"inputs":"{\"contents\":\"hello\",\"name\":\"a\"}","path":"a"},{"inputs":"{\"contents\":\"%%LANDSCAPER\\t'\\\"\\\\$<&>|a70f541b%%\",\"name\":\"g\"}","path":"group.inner"}],"c":[{"failing":[],"path":"a"},{"failing":[["contents"]],"path":"group.inner"}],"k":[{"inputs":"{\"contents\":\"hello\",\"name\":\"a\"}","path":"a"}]}`},
		{0, `{"a":[{"context":{"/nix/store/aaaa-x.drv":{"outputs":["out","dev"]},"/nix/store/bbbb-y":{"path":true},"/nix/store/cccc-z.drv":{"allOutputs":true}},"inputs":"{}","path":"x","type":"p.t"}],"b":null,"c":null,"k":null}`},
		{1, `{"a":[],"b":[],"c":[{"path":"g","failing":[[]]},{"path":"h","failing":[["a",0,"b c",12]]}],"k":null}`},
		{1, `{"a":[],"b":[],"c":[{"path":"h","failing":[["a",-1]]}],"k":null}`},
		{1, `{"a":[],"b":[],"c":[{"path":"h","failing":[[1.5,1e300,true,null]]}],"k":null}`},
		{0, `{"a":[{"path":"a.b","type":"local.file","inputs":"{}","context":{}},{"path":"a.b","type":"local.file","inputs":"{}","context":{}}],"b":null,"c":null,"k":null}`},
		{0, `{"a":[{"path":"c#d","type":"local.file","inputs":"{}","context":{}}],"b":null,"c":null,"k":null}`},
		{0, `{"a":[{"path":"x","type":"local.file","inputs":"{not json","context":{"--option":{}}}],"b":null,"c":null,"k":null}`},
		{2, `{"paths":[{"path":"a","type":"local.file"},{"path":"group.inner","type":"local.file"}]}`},
		{3, `{"paths":[{"path":"a","type":""},{"path":"@@ls'\"\\$<&> \n0123@@","type":""}]}`},
		{2, `{"paths":[{"path":"","type":"x"},{"path":"a..b","type":".t"}]}`},
		{4, `{"providers":{}}`},
		{4, `{"providers":{"mine":{"executable":"/nix/store/dddd-p/bin/landscaper-provider-mine","context":{"/nix/store/dddd-p.drv":{"outputs":["out"]}}}}}`},
		{4, `{"providers":{"mine":{"executable":""}}} trailing`},
		{0, `null`},
		{0, ``},
		{2, `{"paths":null,"extra":1}`},
	} {
		f.Add([]byte(seed.data), seed.mode)
	}
	f.Fuzz(func(t *testing.T, data []byte, m uint8) {
		mode := evalModes[int(m)%len(evalModes)]
		v, err := decodeAs(mode, data)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("decode %s %q: an empty error", mode, data)
			}
			return
		}
		checkDecoded(t, mode, data, v)
		enc := encodeAs(t, mode, v)
		again, err := decodeAs(mode, enc)
		if err != nil {
			t.Fatalf("decode %s %q accepted, but its encoding %q is refused: %v", mode, data, enc, err)
		}
		if !reflect.DeepEqual(v, again) {
			t.Fatalf("decode %s %q = %#v, but its encoding %q decodes to %#v", mode, data, v, enc, again)
		}
	})
}

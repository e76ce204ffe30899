package eval

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

func TestSubstitute(t *testing.T) {
	e := &Evaluator{nonceA: "a", nonceB: "b"}
	str, num, unk, sec := Key{"s", "v"}, Key{"n", "v"}, Key{"u", "v"}, Key{"k", "privateKey"}
	toks := e.Tokens([]Key{str, num, unk, sec})
	toks.tables()
	tok := func(k Key) string {
		for t, key := range toks.a {
			if key == k {
				return t
			}
		}
		t.Fatalf("no token for %v", k)
		return ""
	}
	values := map[Key]Value{
		str: {JSON: json.RawMessage(`"hello"`), Known: true},
		num: {JSON: json.RawMessage(`42`), Known: true},
		sec: {JSON: json.RawMessage(`"-----BEGIN KEY-----"`), Known: true, Sensitive: true},
	}
	lookup := func(k Key) Value { return values[k] }
	encode := func(v any) string {
		b, _ := json.Marshal(v)
		return string(b)
	}
	tests := []struct {
		name          string
		inputs        string
		want          string
		wantUnknown   []string
		wantSensitive []string
	}{
		{"no tokens", encode(map[string]any{"a": "x"}), `{"a":"x"}`, nil, nil},
		{"whole string keeps the type", encode(map[string]any{"a": tok(num)}), `{"a":42}`, nil, nil},
		{"interpolated", encode(map[string]any{"a": "say " + tok(str) + "!"}), `{"a":"say hello!"}`, nil, nil},
		{"number interpolated", encode(map[string]any{"a": "n=" + tok(num)}), `{"a":"n=42"}`, nil, nil},
		{"unknown becomes null", encode(map[string]any{"a": "x" + tok(unk), "b": "y"}), `{"a":null,"b":"y"}`, []string{"a"}, nil},
		{"in a list", encode(map[string]any{"l": []any{"z", tok(str)}}), `{"l":["z","hello"]}`, nil, nil},
		{"sensitive marked", encode(map[string]any{"key": tok(sec)}), `{"key":"-----BEGIN KEY-----"}`, nil, []string{"key"}},
		{"sensitive interpolated", encode(map[string]any{"o": map[string]any{"c": "k: " + tok(sec)}}), `{"o":{"c":"k: -----BEGIN KEY-----"}}`, nil, []string{"o.c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := toks.Substitute(tt.inputs, lookup)
			if err != nil {
				t.Fatal(err)
			}
			if string(got.JSON) != tt.want {
				t.Errorf("JSON %s, want %s", got.JSON, tt.want)
			}
			paths := func(ps []resource.Path) []string {
				var out []string
				for _, p := range ps {
					out = append(out, p.String())
				}
				return out
			}
			if g := paths(got.Unknown); encode(g) != encode(tt.wantUnknown) {
				t.Errorf("unknown %v, want %v", g, tt.wantUnknown)
			}
			if g := paths(got.Sensitive); encode(g) != encode(tt.wantSensitive) {
				t.Errorf("sensitive %v, want %v", g, tt.wantSensitive)
			}
		})
	}
}

// Escaping a token (as lib.escapeShellArg or builtins.toJSON would) mangles
// it; the analysis must see that as computation, not pass-through.
func TestAnalyzeSeesMangledTokens(t *testing.T) {
	e := &Evaluator{nonceA: "a", nonceB: "b"}
	k := Key{"m", "out"}
	toks := e.Tokens([]Key{k})
	token, _ := onlyTokens(toks)
	quoted, _ := json.Marshal(token)
	inputs, _ := json.Marshal(map[string]string{"c": "x=" + string(quoted)})
	an, err := toks.Analyze(string(inputs), "", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(an.Opaque) != 1 || an.Opaque[0] != k {
		t.Errorf("opaque %v, want [%v]", an.Opaque, k)
	}
}

// TestMayHoldToken: the quick check before the analysis lets through
// nothing that could be a token, intact or mangled.
func TestMayHoldToken(t *testing.T) {
	e := &Evaluator{nonceA: "a", nonceB: "b"}
	k := Key{"m", "out"}
	toks := e.Tokens([]Key{k})
	tokenA, tokenB := onlyTokens(toks)
	quoted, _ := json.Marshal(tokenA)
	tests := []struct {
		doc  string
		want bool
	}{
		{`{"name":"out/f1","contents":"member 1\n"}`, false},
		{`{"n":12345678901234567890123}`, false},
		{`{"sha":"` + "0123456789abcdef01234567" + `"}`, true},
		{mustJSON(map[string]string{"c": tokenA}), true},
		{mustJSON(map[string]string{"c": tokenB}), true},
		{mustJSON(map[string]string{"c": "x=" + string(quoted)}), true},
		{mustJSON(map[string]string{"c": tokenA[len(prefixA):]}), true},
	}
	for _, tt := range tests {
		if got := mayHoldToken(tt.doc); got != tt.want {
			t.Errorf("mayHoldToken(%q) = %v, want %v", tt.doc, got, tt.want)
		}
	}
	an, err := toks.Analyze(`{"name":"out/f1"}`, `{"name":"out/f1"}`, true)
	if err != nil || len(an.Deps) != 0 || len(an.Opaque) != 0 {
		t.Errorf("inputs without tokens: %+v, %v", an, err)
	}
	if _, err := toks.Analyze(`{"name":`, `{"name":`, true); err == nil {
		t.Error("invalid JSON was analysed without an error")
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestSubstituteKeepsNumbers: numbers in inputs and in substituted outputs
// keep every digit (a nanosecond timestamp is beyond 2^53).
func TestSubstituteKeepsNumbers(t *testing.T) {
	e := &Evaluator{nonceA: "a", nonceB: "b"}
	k := Key{"m", "out"}
	toks := e.Tokens([]Key{k})
	token, _ := onlyTokens(toks)
	inputs := mustJSON(map[string]any{"ns": json.Number("1733221234567890123"), "f": json.Number("1.5"), "out": token})
	sub, err := toks.Substitute(inputs, func(Key) Value { return Value{JSON: json.RawMessage(`9007199254740993`), Known: true} })
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"f":1.5,"ns":1733221234567890123,"out":9007199254740993}`; string(sub.JSON) != want {
		t.Errorf("substituted %s, want %s", sub.JSON, want)
	}
	if _, err := toks.Substitute(`{"a":1} x`, func(Key) Value { return Value{} }); err == nil {
		t.Error("trailing text after the inputs was accepted")
	}
}

// onlyTokens returns the two spellings of the token of a Tokens made for
// one output.
func onlyTokens(toks *Tokens) (a, b string) {
	toks.tables()
	for s := range toks.a {
		a = s
	}
	for s := range toks.b {
		b = s
	}
	return a, b
}

// tokensOf returns the two spellings of k's token.
func tokensOf(toks *Tokens, k Key) (a, b string) {
	toks.tables()
	for s, key := range toks.a {
		if key == k {
			a = s
		}
	}
	for s, key := range toks.b {
		if key == k {
			b = s
		}
	}
	return a, b
}

// TestAnalyzeByPart: with the failing parts known, the two spellings are
// compared part by part, so an output passed on in one part is not taken
// for one computed with in another; without them, or when a part is the
// whole inputs, every output the inputs show is suspect, as before.
func TestAnalyzeByPart(t *testing.T) {
	e := &Evaluator{nonceA: "a", nonceB: "b"}
	key, cmd := Key{"key", "privateKey"}, Key{"cmd", "stdout"}
	toks := e.Tokens([]Key{key, cmd})
	keyA, keyB := tokensOf(toks, key)
	cmdA, cmdB := tokensOf(toks, cmd)
	doc := func(contents, name string) string {
		return mustJSON(map[string]string{"contents": contents, "name": name, "mode": "0600"})
	}
	contents, name := resource.AttrPath("contents"), resource.AttrPath("name")
	tests := []struct {
		name      string
		a, b      string
		failing   []resource.Path
		opaque    []Key
		computing []resource.Path
	}{
		{"passes one, hashes another", doc(keyA, "out/1111"), doc(keyB, "out/2222"), []resource.Path{contents, name}, []Key{{}}, []resource.Path{name}},
		{"passes one, computes with another it shows", doc(keyA, "x-"+cmdA), doc(keyB, "y-"+cmdB), []resource.Path{contents, name}, []Key{cmd}, []resource.Path{name}},
		{"passes both", doc(keyA, "out/"+cmdA), doc(keyB, "out/"+cmdB), []resource.Path{contents, name}, nil, nil},
		{"parts not known", doc(keyA, "out/1111"), doc(keyB, "out/2222"), nil, []Key{key}, nil},
		{"the whole inputs fail", doc(keyA, "out/1111"), doc(keyB, "out/2222"), []resource.Path{nil}, []Key{{}, key}, nil},
		{"a part beside the failing ones differs", doc(keyA, "out/"+cmdA), doc("x", "out/"+cmdB), []resource.Path{name}, []Key{cmd, key}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			an, err := toks.Analyze(tt.a, tt.b, true, tt.failing...)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(an.Opaque, tt.opaque) && !(len(an.Opaque) == 0 && len(tt.opaque) == 0) {
				t.Errorf("opaque %v, want %v", an.Opaque, tt.opaque)
			}
			if !slices.EqualFunc(an.Computing, tt.computing, func(p, q resource.Path) bool { return p.String() == q.String() }) {
				t.Errorf("computing %v, want %v", an.Computing, tt.computing)
			}
		})
	}
}

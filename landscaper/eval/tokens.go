package eval

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

// Key names one output of one member.
type Key struct {
	Member string
	Output string
}

func (k Key) String() string { return k.Member + ".outputs." + k.Output }

func (k Key) driverKey() string { return k.Member + "#" + k.Output }

// The token spellings; they must match driver.nix.
const (
	prefixA = "@@ls'\"\\$<&> \n"
	suffixA = "@@"
	idLenA  = 24
	prefixB = "%%LANDSCAPER\t'\"\\$<&>|"
	suffixB = "%%"
)

// Tokens recognises the stand-in tokens of one evaluator. Its tables
// are made the first time a string holds something that may be a token:
// a deployment whose inputs use no output never pays for them.
type Tokens struct {
	keys           []Key
	nonceA, nonceB string
	once           sync.Once
	a              map[string]Key // token spelling A -> key
	b              map[string]Key // token spelling B -> key
	ids            map[string]Key // the hex id of spelling A -> key
}

// Tokens returns the tokens the evaluator uses for the given outputs.
func (e *Evaluator) Tokens(keys []Key) *Tokens {
	return &Tokens{keys: keys, nonceA: e.nonceA, nonceB: e.nonceB}
}

func (t *Tokens) tables() {
	t.once.Do(func() {
		t.a, t.b, t.ids = make(map[string]Key, len(t.keys)), make(map[string]Key, len(t.keys)), make(map[string]Key, len(t.keys))
		for _, k := range t.keys {
			sumA := sha256.Sum256([]byte(t.nonceA + k.driverKey()))
			id := hex.EncodeToString(sumA[:])[:idLenA]
			sumB := sha256.Sum256([]byte(t.nonceB + k.driverKey()))
			t.a[prefixA+id+suffixA] = k
			t.ids[id] = k
			t.b[prefixB+hex.EncodeToString(sumB[:])+suffixB] = k
		}
	})
}

// inA and inB look a whole token up in spelling A or B; byID looks up the
// hex id of a spelling A token.
func (t *Tokens) inA(s string) (Key, bool) {
	t.tables()
	k, ok := t.a[s]
	return k, ok
}

func (t *Tokens) inB(s string) (Key, bool) {
	t.tables()
	k, ok := t.b[s]
	return k, ok
}

func (t *Tokens) byID(s string) (Key, bool) {
	t.tables()
	k, ok := t.ids[s]
	return k, ok
}

var hexRun = regexp.MustCompile(`[0-9a-f]{24,}`)

// mayHoldToken reports whether s (a JSON text) holds the start of either
// spelling or a run of hex digits as long as a token's id, which is where
// scan looks for tokens intact or mangled.
func mayHoldToken(s string) bool {
	return strings.Contains(s, prefixA[:4]) || strings.Contains(s, prefixB[:4]) || hexRun.MatchString(s)
}

// scan finds the tokens in s (spelling A): those intact and the keys whose
// token was mangled (escaped, split, sliced) by Nix code.
func (t *Tokens) scan(s string) (intact []Key, mangled []Key) {
	rest := s
	for {
		i := strings.Index(rest, prefixA)
		if i < 0 {
			break
		}
		end := i + len(prefixA) + idLenA + len(suffixA)
		if end <= len(rest) {
			if k, ok := t.inA(rest[i:end]); ok {
				intact = append(intact, k)
				rest = rest[:i] + rest[end:]
				continue
			}
		}
		rest = rest[i+1:]
	}
	for _, run := range hexRun.FindAllString(rest, -1) {
		for j := 0; j+idLenA <= len(run); j++ {
			if k, ok := t.byID(run[j : j+idLenA]); ok {
				mangled = append(mangled, k)
			}
		}
	}
	return intact, mangled
}

// Analysis is what the tokens in a member's inputs say.
type Analysis struct {
	// Deps are the outputs the inputs refer to.
	Deps []Key
	// Opaque lists outputs that Nix code computed with (the token was
	// mangled, or the second evaluation disagrees): substituting their
	// values is not enough; the member must be evaluated again once they
	// are known.
	Opaque []Key
	// Computing lists the parts of the inputs (of those that failed with
	// every unknown output throwing) that compute with outputs; the
	// other failing parts only pass tokens on. Empty when the parts were
	// not known or could not be told apart.
	Computing []resource.Path
}

// Analyze reads a member's inputs (spelling A) and, if given, the same
// inputs from the second evaluation (spelling B) and the parts that failed
// in the third (every unknown output throwing). A part that uses an
// unknown output without showing a token in spelling A computes with it
// (compares it, say): the member must be evaluated again once it is known.
func (t *Tokens) Analyze(inputsA, inputsB string, haveB bool, failing ...resource.Path) (Analysis, error) {
	if len(failing) == 0 && (!haveB || inputsA == inputsB) && !mayHoldToken(inputsA) {
		// Nothing in it can be a token, intact or mangled, and the second
		// evaluation gave the same: what the walk below would find.
		if !json.Valid([]byte(inputsA)) {
			return Analysis{}, errors.New("decode inputs: not valid JSON")
		}
		return Analysis{Deps: []Key{}, Opaque: []Key{}}, nil
	}
	var docA any
	if err := decodeExact([]byte(inputsA), &docA); err != nil {
		return Analysis{}, fmt.Errorf("decode inputs: %w", err)
	}
	deps := map[Key]bool{}
	opaque := map[Key]bool{}
	walkStrings(docA, func(s string) {
		intact, mangled := t.scan(s)
		for _, k := range intact {
			deps[k] = true
		}
		for _, k := range mangled {
			deps[k] = true
			opaque[k] = true
		}
	})
	var computing []resource.Path
	if haveB {
		var docB any
		if err := decodeExact([]byte(inputsB), &docB); err != nil {
			return Analysis{}, fmt.Errorf("decode inputs: %w", err)
		}
		if parts, ok := t.partsComputing(docA, docB, failing); ok {
			// Compared part by part: only the outputs that a part which
			// depends on the spelling refers to are suspect (a part that
			// passes a token on beside one that hashes another output
			// does not compute with the first).
			for _, p := range parts {
				computing = append(computing, p.path)
				for _, k := range p.refers {
					opaque[k] = true
				}
				if len(p.refers) == 0 {
					opaque[Key{}] = true
				}
			}
		} else if ca, cb := t.canonicalJSON(docA, t.inA), t.canonicalJSON(docB, t.inB); ca != cb {
			// The inputs depend on the tokens' spelling: every output they
			// refer to is suspect. If none is visible at all, the engine
			// must treat the member as depending on every unknown output.
			for k := range deps {
				opaque[k] = true
			}
			if len(deps) == 0 {
				opaque[Key{}] = true
			}
		}
	}
	for _, p := range failing {
		v, ok := resource.Lookup(json.RawMessage(inputsA), p)
		if !ok {
			opaque[Key{}] = true
			continue
		}
		var s string
		if json.Unmarshal(v, &s) != nil {
			// An object, list, number or boolean that needs an unknown
			// output was computed from it.
			opaque[Key{}] = true
			continue
		}
		if intact, mangled := t.scan(s); len(intact) == 0 && len(mangled) == 0 {
			opaque[Key{}] = true
		}
	}
	return Analysis{Deps: sortedKeys(deps), Opaque: sortedKeys(opaque), Computing: computing}, nil
}

// partComputing is a failing part that computes with outputs, and the
// outputs whose tokens (intact or mangled) it shows.
type partComputing struct {
	path   resource.Path
	refers []Key
}

// partsComputing compares the two spellings part by part: ok is false
// unless every failing part is a proper part (not the whole inputs) found
// in both, and the inputs beside those parts are the same in both. A part
// computes when it differs between the spellings once intact tokens are
// set aside, shows a mangled token, or shows no token at all.
func (t *Tokens) partsComputing(docA, docB any, failing []resource.Path) ([]partComputing, bool) {
	if len(failing) == 0 {
		return nil, false
	}
	restA, restB := docA, docB
	var out []partComputing
	for _, p := range failing {
		if len(p) == 0 {
			return nil, false
		}
		va, okA := resource.ValueAt(docA, p)
		vb, okB := resource.ValueAt(docB, p)
		if !okA || !okB {
			return nil, false
		}
		var intact, mangled []Key
		walkStrings(va, func(s string) {
			i, m := t.scan(s)
			intact = append(intact, i...)
			mangled = append(mangled, m...)
		})
		if len(mangled) > 0 || len(intact) == 0 || t.canonicalJSON(va, t.inA) != t.canonicalJSON(vb, t.inB) {
			out = append(out, partComputing{path: p, refers: append(intact, mangled...)})
		}
		restA, restB = resource.NullAt(restA, p), resource.NullAt(restB, p)
	}
	if t.canonicalJSON(restA, t.inA) != t.canonicalJSON(restB, t.inB) {
		return nil, false
	}
	return out, true
}

func (t *Tokens) canonicalJSON(v any, spelling func(string) (Key, bool)) string {
	b, _ := json.Marshal(t.canonical(v, spelling))
	return string(b)
}

func sortedKeys(m map[Key]bool) []Key {
	out := make([]Key, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Member != out[j].Member {
			return out[i].Member < out[j].Member
		}
		return out[i].Output < out[j].Output
	})
	return out
}

func walkStrings(v any, f func(string)) {
	switch x := v.(type) {
	case string:
		f(x)
	case map[string]any:
		for k, e := range x {
			f(k)
			walkStrings(e, f)
		}
	case []any:
		for _, e := range x {
			walkStrings(e, f)
		}
	}
}

// canonical replaces every intact token by a spelling-free marker.
func (t *Tokens) canonical(v any, spelling func(string) (Key, bool)) any {
	// Tokens have a fixed length after their prefix: each occurrence of a
	// prefix is looked up, so the cost follows the string, not the number
	// of tokens (a chain of N members would otherwise cost N^2).
	lenA, lenB := len(prefixA)+idLenA+len(suffixA), len(prefixB)+sha256.Size*2+len(suffixB)
	replace := func(s string) string {
		if !strings.Contains(s, prefixA) && !strings.Contains(s, prefixB) {
			return s
		}
		var b strings.Builder
		rest := s
		for {
			i, n := strings.Index(rest, prefixA), lenA
			if j := strings.Index(rest, prefixB); j >= 0 && (i < 0 || j < i) {
				i, n = j, lenB
			}
			if i < 0 {
				b.WriteString(rest)
				return b.String()
			}
			if i+n <= len(rest) {
				if k, ok := spelling(rest[i : i+n]); ok {
					b.WriteString(rest[:i])
					b.WriteString("\x00" + k.driverKey() + "\x00")
					rest = rest[i+n:]
					continue
				}
			}
			b.WriteString(rest[:i+1])
			rest = rest[i+1:]
		}
	}
	switch x := v.(type) {
	case string:
		return replace(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[replace(k)] = t.canonical(e, spelling)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = t.canonical(e, spelling)
		}
		return out
	}
	return v
}

// decodeExact decodes one JSON document into v, keeping numbers as they
// are written (json.Number): a whole number beyond 2^53 (a timestamp in
// nanoseconds, say) would otherwise come back rounded.
func decodeExact(b []byte, v *any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("invalid character after the top-level value")
	}
	return nil
}

// Value is what the engine knows of an output when substituting.
type Value struct {
	JSON      json.RawMessage
	Known     bool
	Sensitive bool
}

// Substituted is a member's inputs with tokens replaced by values.
type Substituted struct {
	JSON json.RawMessage
	// Unknown lists input paths whose value is not known yet (null in
	// JSON).
	Unknown []resource.Path
	// Sensitive lists input paths whose value holds a sensitive output.
	Sensitive []resource.Path
}

// Substitute replaces the tokens in inputs (spelling A) with values. A
// string that is exactly one token takes the value as it is (any JSON
// type); a token inside a longer string is replaced by the value's text.
func (t *Tokens) Substitute(inputs string, lookup func(Key) Value) (Substituted, error) {
	var doc any
	if err := decodeExact([]byte(inputs), &doc); err != nil {
		return Substituted{}, fmt.Errorf("decode inputs: %w", err)
	}
	var out Substituted
	var walk func(v any, p resource.Path) any
	walk = func(v any, p resource.Path) any {
		switch x := v.(type) {
		case string:
			if !strings.Contains(x, prefixA) {
				return x
			}
			if k, ok := t.inA(x); ok {
				val := lookup(k)
				if val.Sensitive {
					out.Sensitive = append(out.Sensitive, p)
				}
				if !val.Known {
					out.Unknown = append(out.Unknown, p)
					return nil
				}
				var decoded any
				if err := decodeExact(val.JSON, &decoded); err != nil {
					return nil
				}
				return decoded
			}
			s, unknown, sensitive := t.interpolate(x, lookup)
			if sensitive {
				out.Sensitive = append(out.Sensitive, p)
			}
			if unknown {
				out.Unknown = append(out.Unknown, p)
				return nil
			}
			return s
		case map[string]any:
			m := make(map[string]any, len(x))
			for k, e := range x {
				m[k] = walk(e, p.Attr(k))
			}
			return m
		case []any:
			l := make([]any, len(x))
			for i, e := range x {
				l[i] = walk(e, p.Index(i))
			}
			return l
		}
		return v
	}
	res := walk(doc, nil)
	b, err := json.Marshal(res)
	if err != nil {
		return Substituted{}, fmt.Errorf("encode inputs: %w", err)
	}
	out.JSON = b
	// Objects are walked in map order: sort, so that the same inputs give
	// the same lists.
	byText := func(ps []resource.Path) {
		sort.Slice(ps, func(i, j int) bool { return ps[i].String() < ps[j].String() })
	}
	byText(out.Unknown)
	byText(out.Sensitive)
	return out, nil
}

func (t *Tokens) interpolate(s string, lookup func(Key) Value) (string, bool, bool) {
	var b strings.Builder
	unknown, sensitive := false, false
	rest := s
	for {
		i := strings.Index(rest, prefixA)
		if i < 0 {
			b.WriteString(rest)
			break
		}
		end := i + len(prefixA) + idLenA + len(suffixA)
		k, ok := Key{}, false
		if end <= len(rest) {
			k, ok = t.inA(rest[i:end])
		}
		if !ok {
			b.WriteString(rest[:i+1])
			rest = rest[i+1:]
			continue
		}
		b.WriteString(rest[:i])
		val := lookup(k)
		sensitive = sensitive || val.Sensitive
		if !val.Known {
			unknown = true
		} else {
			var str string
			if json.Unmarshal(val.JSON, &str) == nil {
				b.WriteString(str)
			} else {
				b.Write(val.JSON)
			}
		}
		rest = rest[end:]
	}
	return b.String(), unknown, sensitive
}

// Has reports whether s holds any token (intact or mangled).
func (t *Tokens) Has(s string) bool {
	intact, mangled := t.scan(s)
	return len(intact) > 0 || len(mangled) > 0
}

// HoldsStandIn reports whether s holds what the driver takes for a
// stand-in token (its isStandIn): the start of either spelling.
func HoldsStandIn(s string) bool {
	return strings.Contains(s, "@@ls'") || strings.Contains(s, "%%LANDSCAPER")
}

package eval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

// TestDecodeRefusesWhatTheDriverDoesNotSay: output the driver would never
// print is refused with a message naming the problem, not merged, dropped
// or misread.
func TestDecodeRefusesWhatTheDriverDoesNotSay(t *testing.T) {
	const (
		member = `{"path":"x","type":"p.t","inputs":"{}","context":{}}`
		once   = `,"b":null,"c":null,"k":null}`
	)
	tests := []struct {
		name string
		mode string
		data string
		want string
	}{
		{"empty", "members", ``, "no JSON document"},
		{"not JSON", "members", `{"a":[`, "unexpected EOF"},
		{"trailing data", "members", `{"a":[]` + once + `{}`, "more data after"},
		{"unknown field", "members", `{"a":[],"z":1` + once, `unknown field "z"`},
		{"members missing", "members", `{"a":null` + once, `("a") are missing`},
		{"duplicate member", "members", `{"a":[` + member + `,` + member + `]` + once, "member x appears twice"},
		{"dotted name collision", "paths", `{"paths":[{"path":"a.b","type":"p.t"},{"path":"a.b","type":"p.t"}]}`, "member a.b appears twice"},
		{"hash in a name", "members", `{"a":[{"path":"c#d","type":"p.t","inputs":"{}"}]` + once, `member path "c#d"`},
		{"empty name", "paths", `{"paths":[{"path":"a..b","type":"p.t"}]}`, `member path "a..b"`},
		{"empty path", "names", `{"paths":[{"path":"","type":""}]}`, "empty path"},
		{"bad type", "paths", `{"paths":[{"path":"a","type":"local"}]}`, `type "local"`},
		{"type in names", "names", `{"paths":[{"path":"a","type":"p.t"}]}`, "only names were asked for"},
		{"inputs in the structure", "paths", `{"paths":[{"path":"a","type":"p.t","inputs":"{}"}]}`, "inputs in the structure"},
		{"inputs not JSON", "members", `{"a":[{"path":"x","type":"p.t","inputs":"{oops"}]` + once, "member x: the inputs"},
		{"context not a store path", "members", `{"a":[{"path":"x","type":"p.t","inputs":"{}","context":{"--option":{"path":true}}}]` + once, `"--option", which is not a store path`},
		{"context output", "members", `{"a":[{"path":"x","type":"p.t","inputs":"{}","context":{"/nix/store/a.drv":{"outputs":["out,dev"]}}}]` + once, `output "out,dev"`},
		{"second evaluation missing", "members twice", `{"a":[` + member + `]` + once, `("b" and "c") are missing`},
		{"second evaluation not asked for", "members", `{"a":[],"b":[],"c":[],"k":null}`, "not asked for"},
		{"duplicate second", "members twice", `{"a":[],"b":[{"path":"x","inputs":"1"},{"path":"x","inputs":"2"}],"c":[],"k":null}`, "member x appears twice in the second evaluation"},
		{"duplicate failing", "members twice", `{"a":[],"b":[],"c":[{"path":"x","failing":[]},{"path":"x","failing":[]}],"k":null}`, "member x appears twice"},
		{"failing list missing", "members twice", `{"a":[],"b":[],"c":[{"path":"x","failing":null}],"k":null}`, "no list of failing parts"},
		{"negative index", "members twice", `{"a":[],"b":[],"c":[{"path":"x","failing":[["a",-1]]}],"k":null}`, "step -1"},
		{"fractional index", "members twice", `{"a":[],"b":[],"c":[{"path":"x","failing":[[1.5]]}],"k":null}`, "step 1.5"},
		{"huge index", "members twice", `{"a":[],"b":[],"c":[{"path":"x","failing":[[1e300]]}],"k":null}`, "step 1e300"},
		{"boolean step", "members twice", `{"a":[],"b":[],"c":[{"path":"x","failing":[[true]]}],"k":null}`, "step true"},
		{"computing without failing parts", "members twice", `{"a":[` + member + `],"b":[],"c":[{"path":"x","failing":[]}],"k":null,"computing":["x"]}`, "left out of the second evaluation without failing parts"},
		{"computing and in the second evaluation", "members twice", `{"a":[` + member + `],"b":[{"path":"x","inputs":"{}"}],"c":[{"path":"x","failing":[["n"]]}],"k":null,"computing":["x"]}`, "left out of the second evaluation, and in it"},
		{"computing not asked for", "members", `{"a":[],"b":null,"c":null,"k":null,"computing":["x"]}`, "not asked for"},
		{"checked inputs not JSON", "members", `{"a":[],"b":null,"c":null,"k":[{"path":"x","inputs":""}]}`, "known values are not JSON"},
		{"providers missing", "providers", `{"providers":null}`, `("providers") are missing`},
		{"empty executable", "providers", `{"providers":{"mine":{"executable":""}}}`, "declared provider mine: an empty executable"},
		{"provider context", "providers", `{"providers":{"mine":{"executable":"x","context":{"x":{"path":true}}}}}`, "declared provider mine"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := decodeAs(tt.mode, []byte(tt.data))
			if err == nil {
				t.Fatalf("decode %s %s = %+v, want an error saying %q", tt.mode, tt.data, v, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("decode %s %s: %v, want it to say %q", tt.mode, tt.data, err, tt.want)
			}
		})
	}
}

// TestDecodeAcceptsTheDriversOutput decodes examples of what the driver
// prints.
func TestDecodeAcceptsTheDriversOutput(t *testing.T) {
	tests := []struct {
		name string
		mode string
		data string
		want any
	}{
		{
			name: "members twice",
			mode: "members twice",
			data: `{"a":[{"context":{"/nix/store/a-x.drv":{"outputs":["out"]}},"inputs":"{\"n\":1}","path":"g.x","type":"local.file"}],` +
				`"b":[{"inputs":"{\"n\":2}","path":"g.x"}],"c":[{"failing":[["l",0,"a b"],[]],"path":"g.x"}],"k":null}`,
			want: &Result{
				Members: []Member{{Path: "g.x", Type: "local.file", Inputs: `{"n":1}`, Context: map[string]ContextEntry{"/nix/store/a-x.drv": {Outputs: []string{"out"}}}}},
				Second:  map[string]string{"g.x": `{"n":2}`},
				Failing: map[string][]resource.Path{"g.x": {resource.AttrPath("l").Index(0).Attr("a b"), {}}},
			},
		},
		{
			name: "a member computing with outputs, not in the second evaluation",
			mode: "members twice",
			data: `{"a":[{"context":{},"inputs":"{\"n\":1}","path":"x","type":"local.file"}],` +
				`"b":[],"c":[{"failing":[["n"]],"path":"x"}],"k":null,"computing":["x"]}`,
			want: &Result{
				Members:   []Member{{Path: "x", Type: "local.file", Inputs: `{"n":1}`, Context: map[string]ContextEntry{}}},
				Second:    map[string]string{},
				Failing:   map[string][]resource.Path{"x": {resource.AttrPath("n")}},
				Computing: map[string]bool{"x": true},
			},
		},
		{
			name: "members with known values",
			mode: "members",
			data: `{"a":[],"b":null,"c":null,"k":[{"inputs":"\"v\"","path":"x"}]}` + "\n",
			want: &Result{Members: []Member{}, Checked: map[string]string{"x": `"v"`}},
		},
		{
			name: "names holding a token",
			mode: "names",
			data: `{"paths":[{"path":"g.@@ls'\"\\$<&> \n0123@@","type":""}]}`,
			want: []Member{{Path: "g.@@ls'\"\\$<&> \n0123@@"}},
		},
		{
			name: "providers",
			mode: "providers",
			data: `{"providers":{"mine":{"context":{},"executable":"/bin/true"}}}`,
			want: map[string]DeclaredProvider{"mine": {Executable: "/bin/true", Context: map[string]ContextEntry{}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeAs(tt.mode, []byte(tt.data))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("decode = %#v, want %#v", got, tt.want)
			}
		})
	}
}

// TestDriverRefusesAmbiguousNames: a member name holding "." or "#" is
// refused by the evaluation itself, whether or not another member uses its
// outputs: members."a.b" and members.a.members.b would both be a.b.
func TestDriverRefusesAmbiguousNames(t *testing.T) {
	tests := []struct {
		name    string
		members string
		want    string
	}{
		{"dot", `members."a.b" = { type = "local.file"; inputs = { name = "x"; contents = "1"; }; };`, `member name "a.b"`},
		{"dot colliding with a group", `members."a.b" = { type = "local.file"; inputs = { name = "x"; contents = "1"; }; };
  members.a.members.b = { type = "local.file"; inputs = { name = "y"; contents = "2"; }; };`, `member name "a.b"`},
		{"hash", `members."c#d" = { type = "local.file"; inputs = { name = "z"; contents = "3"; }; };`, `member name "c#d"`},
		{"nested hash", `members.g.members."c#d" = { type = "local.file"; inputs = { name = "z"; contents = "3"; }; };`, `member name "g.c#d"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "landscaper.nix")
			if err := os.WriteFile(file, []byte("{ members, providers, ... }: {\n  "+tt.members+"\n}\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			e, err := New(Source{File: file})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			ctx := context.Background()
			for _, names := range []bool{false, true} {
				_, _, err := e.Structure(ctx, StructureRequest{Types: localTypes(), NamesOnly: names})
				var ee *Error
				if !errors.As(err, &ee) || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("Structure (names only %v): %v, want an evaluation error saying %s", names, err, tt.want)
				}
			}
			_, err = e.Evaluate(ctx, Request{Types: localTypes(), Twice: true})
			var ee *Error
			if !errors.As(err, &ee) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Evaluate: %v, want an evaluation error saying %s", err, tt.want)
			}
		})
	}
}

func TestDecodeProvidersProtocol(t *testing.T) {
	tests := []struct {
		name, doc string
		// want is a part of the error, or "" when the document is valid.
		want string
	}{
		{"landscaper", `{"providers":{"p":{"executable":"/bin/p","context":{}}},"rollouts":{}}`, ""},
		{"nixops4", `{"providers":{"p":{"executable":"/bin/p","context":{},"protocol":"nixops4","args":["--x"],"resourceTypes":{"t":{"description":"","inputs":["a"],"outputs":["b"],"requireState":true}}}},"rollouts":{}}`, ""},
		{"unknown protocol", `{"providers":{"p":{"executable":"/bin/p","context":{},"protocol":"tf"}},"rollouts":{}}`, `providers.p: protocol "tf"`},
		{"resourceTypes without nixops4", `{"providers":{"p":{"executable":"/bin/p","context":{},"resourceTypes":{"t":{"inputs":[],"outputs":[]}}}},"rollouts":{}}`, "providers.p: args and resourceTypes are for a NixOps4 provider"},
		{"a misspelt type field", `{"providers":{"p":{"executable":"/bin/p","context":{},"protocol":"nixops4","resourceTypes":{"t":{"ouputs":[]}}}},"rollouts":{}}`, `"ouputs"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeProviders([]byte(tt.doc))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("decode: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("decode: %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// TestDecodePlan: mode "plan"'s output, decoded in one pass, gets the
// checks of modes "paths" and "members": what those refuse it refuses,
// with the same words, and what they accept it reads the same.
func TestDecodePlan(t *testing.T) {
	const (
		paths   = `"paths":[{"path":"x","type":"local.file"}]`
		members = `"members":{"a":[],"b":[],"c":[{"context":{},"failing":[],"inputs":"{\"n\":1}","path":"x","type":"local.file"}],"k":[],"computing":[]}`
		alone   = `"alone":[{"path":"y","ok":true,"type":"local.file","inputs":"{}","context":{},"parts":false}]`
	)
	refused := []struct {
		name  string
		data  string
		alone []string
		want  string
	}{
		{"empty", ``, nil, "no JSON document"},
		{"trailing data", `{` + paths + `,` + members + `}{}`, nil, "more data after"},
		{"paths missing", `{` + members + `}`, nil, `("paths") are missing`},
		{"members missing", `{` + paths + `}`, nil, `("members") are missing`},
		{"an unknown field in the members", `{` + paths + `,"members":{"a":[],"b":[],"c":[],"k":null,"z":1}}`, nil, `unknown field "z"`},
		{"an unknown field in a path", `{"paths":[{"path":"x","type":"local.file","z":1}],` + members + `}`, nil, `unknown field "z"`},
		{"a path twice", `{"paths":[{"path":"x","type":"local.file"},{"path":"x","type":"local.file"}],` + members + `}`, nil, "member x appears twice in the structure"},
		{"inputs in the structure", `{"paths":[{"path":"x","type":"local.file","inputs":"{}"}],` + members + `}`, nil, "inputs in the structure"},
		{"a member's inputs not JSON", `{` + paths + `,"members":{"a":[{"context":{},"inputs":"{","path":"x","type":"local.file"}],"b":[],"c":[],"k":null}}`, nil, "are not JSON"},
		{"alone not asked for", `{` + paths + `,` + members + `,` + alone + `}`, nil, "members evaluated alone given true, asked for false"},
		{"alone asked for, not given", `{` + paths + `,` + members + `}`, []string{"y"}, "members evaluated alone given false, asked for true"},
		{"another member alone", `{` + paths + `,` + members + `,` + alone + `}`, []string{"z"}, "member y was not asked to be evaluated alone"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			_, _, _, err := decodePlan([]byte(tc.data), nil, tc.alone)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("decodePlan: %v, want an error saying %q", err, tc.want)
			}
		})
	}
	found, res, _, err := decodePlan([]byte(`{`+paths+`,`+members+`,`+alone+`}`), map[string][]string{"y": {"p#o"}}, []string{"y"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []Member{{Path: "x", Type: "local.file"}}; !reflect.DeepEqual(found, want) {
		t.Errorf("structure %#v, want %#v", found, want)
	}
	wantMembers, _, err := decodeMembers([]byte(members[len(`"members":`):]), true, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(res.Members, wantMembers.Members) || !reflect.DeepEqual(res.Failing, wantMembers.Failing) {
		t.Errorf("members %#v, want what mode \"members\" reads: %#v", res, wantMembers)
	}
	if y, ok := res.Alone["y"]; !ok || !y.OK || !reflect.DeepEqual(y.Forced, []string{"p#o"}) {
		t.Errorf("alone %#v, want y, ok, forcing p#o", res.Alone)
	}
}

// BenchmarkDecodePlan decodes what mode "plan" prints for a no-op plan of
// 10,000 independent members (go test -bench DecodePlan ./landscaper/eval/).
func BenchmarkDecodePlan(b *testing.B) {
	var settled, paths []string
	for i := range 10000 {
		inputs, _ := json.Marshal(fmt.Sprintf(`{"contents":"member %d\n","name":"out/f%d"}`, i, i))
		settled = append(settled, fmt.Sprintf(`{"context":{},"failing":[],"inputs":%s,"path":"f%d","type":"local.file"}`, inputs, i))
		paths = append(paths, fmt.Sprintf(`{"path":"f%d","type":"local.file"}`, i))
	}
	data := []byte(`{"members":{"a":[],"b":[],"c":[` + strings.Join(settled, ",") + `],"computing":[],"k":[]},"paths":[` + strings.Join(paths, ",") + `]}`)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		found, res, _, err := decodePlan(data, nil, nil)
		if err != nil || len(found) != 10000 || len(res.Members) != 10000 {
			b.Fatalf("decodePlan: %v, %d members", err, len(found))
		}
	}
}

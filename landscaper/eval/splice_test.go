package eval

import (
	"encoding/json"
	"testing"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

func TestSplice(t *testing.T) {
	for _, tc := range []struct {
		name    string
		masked  string
		failing []resource.Path
		parts   string
		want    string
		wantErr bool
	}{
		{name: "one attribute", masked: `{"a":1.50,"b":null}`, failing: []resource.Path{resource.AttrPath("b")}, parts: `["x <&> y"]`, want: `{"a":1.50,"b":"x <&> y"}`},
		{name: "nested, a list element", masked: `{"l":[{"x":null},2],"t":"/nix/store/abc-toplevel"}`,
			failing: []resource.Path{resource.AttrPath("l").Index(0).Attr("x")}, parts: `[{"deep":[1,2]}]`,
			want: `{"l":[{"x":{"deep":[1,2]}},2],"t":"/nix/store/abc-toplevel"}`},
		{name: "two parts", masked: `{"a":null,"b":{"c":null,"d":true}}`,
			failing: []resource.Path{resource.AttrPath("a"), resource.AttrPath("b", "c")}, parts: `[1,"two"]`,
			want: `{"a":1,"b":{"c":"two","d":true}}`},
		{name: "too few parts", masked: `{"a":null}`, failing: []resource.Path{resource.AttrPath("a")}, parts: `[]`, wantErr: true},
		{name: "path not there", masked: `{"a":null}`, failing: []resource.Path{resource.AttrPath("z")}, parts: `[1]`, wantErr: true},
		{name: "index past the end", masked: `{"l":[]}`, failing: []resource.Path{resource.AttrPath("l").Index(3)}, parts: `[1]`, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mi := maskedInputs{"m": {failing: tc.failing, inputs: tc.masked}}
			got, _, err := mi.splice("the evaluation", "m", tc.parts, nil)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("spliced %s, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %s, %v; want %s", got, err, tc.want)
			}
			if !json.Valid([]byte(got)) {
				t.Fatalf("%s is not JSON", got)
			}
		})
	}
	if _, _, err := (maskedInputs{}).splice("the evaluation", "m", `[1]`, nil); err == nil {
		t.Fatal("parts of a member nobody masked were taken")
	}
}

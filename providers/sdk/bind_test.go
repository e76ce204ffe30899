package sdk_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/providers/sdk"
)

type goodInputs struct {
	Name   string            `json:"name"`
	Count  int               `json:"count,omitempty"`
	Tags   []string          `json:"tags"`
	Env    map[string]string `json:"env"`
	Raw    json.RawMessage   `json:"raw"`
	Nested *struct {
		Path string `json:"path"`
	} `json:"nested"`
	ignored string //nolint:unused // unexported: not an input
	Skipped string `json:"-"`
}

type goodOutputs struct {
	ID string `json:"id"`
}

func goodInputAttrs() []sdk.Attr {
	return []sdk.Attr{
		sdk.String("name", "").Required(),
		sdk.Integer("count", ""),
		sdk.List("tags", "string", ""),
		sdk.Map("env", "string", ""),
		sdk.String("raw", "a json.RawMessage takes anything"),
		sdk.Object("nested", "", sdk.String("path", "")),
	}
}

func create[In, Out any](context.Context, *sdk.Op, In) (Out, error) {
	var out Out
	return out, nil
}

// typeWith makes a provider with one type of the given Go types and
// declarations.
func typeWith[In, Out any](inputs, outputs []sdk.Attr) *sdk.Provider {
	return &sdk.Provider{Name: "p", Types: map[string]sdk.Resource{"t": &sdk.Type[In, Out]{
		Inputs: inputs, Outputs: outputs, Create: create[In, Out],
	}}}
}

type mistypedTag struct {
	Name string `json:"nmae"`
}

type extraField struct {
	Name  string `json:"name"`
	Extra string `json:"extra"`
}

type wrongGoType struct {
	Name int `json:"name"`
}

type wrongNested struct {
	Nested struct {
		Path string `json:"pth"`
	} `json:"nested"`
}

type listOfInts struct {
	Tags []int `json:"tags"`
}

func TestCheckBindings(t *testing.T) {
	outs := []sdk.Attr{sdk.String("id", "")}
	tests := []struct {
		name     string
		provider *sdk.Provider
		want     []string // parts of the error; none for no error
	}{
		{name: "matching", provider: typeWith[goodInputs, goodOutputs](goodInputAttrs(), outs)},
		{name: "map[string]any holds anything", provider: typeWith[map[string]any, goodOutputs](goodInputAttrs(), outs)},
		{name: "mistyped tag", provider: typeWith[mistypedTag, goodOutputs]([]sdk.Attr{sdk.String("name", "")}, outs),
			want: []string{`resource type p.t`, `input "name" has no field in sdk_test.mistypedTag (its json names: nmae)`, `field sdk_test.mistypedTag.Name (json name "nmae") is not a declared input`}},
		{name: "undeclared field", provider: typeWith[extraField, goodOutputs]([]sdk.Attr{sdk.String("name", "")}, outs),
			want: []string{`json name "extra") is not a declared input (declared: name)`}},
		{name: "wrong Go type", provider: typeWith[wrongGoType, goodOutputs]([]sdk.Attr{sdk.String("name", "")}, outs),
			want: []string{`input "name" (field sdk_test.wrongGoType.Name): Go type int cannot hold string values`}},
		{name: "nested tag", provider: typeWith[wrongNested, goodOutputs]([]sdk.Attr{sdk.Object("nested", "", sdk.String("path", ""))}, outs),
			want: []string{`input "nested"`, `attribute "path" has no field`}},
		{name: "list elements", provider: typeWith[listOfInts, goodOutputs]([]sdk.Attr{sdk.List("tags", "string", "")}, outs),
			want: []string{`elements: Go type int cannot hold string values`}},
		{name: "mistyped output tag", provider: typeWith[mistypedTag, mistypedTag]([]sdk.Attr{sdk.String("nmae", "")}, []sdk.Attr{sdk.String("name", "")}),
			want: []string{`output "name" has no field`}},
		{name: "declared twice", provider: typeWith[mistypedTag, goodOutputs]([]sdk.Attr{sdk.String("nmae", ""), sdk.String("nmae", "")}, outs),
			want: []string{`input "nmae" is declared twice`}},
		{name: "unknown type", provider: typeWith[listOfInts, goodOutputs]([]sdk.Attr{sdk.List("tags", "int", "")}, outs),
			want: []string{`input "tags": unknown type "list(int)"`}},
		{name: "default of the wrong type", provider: typeWith[mistypedTag, goodOutputs]([]sdk.Attr{sdk.String("nmae", "").Default(3)}, outs),
			want: []string{`input "nmae": default: nmae: wrong type: expected string, got a number`}},
		{name: "no create", provider: &sdk.Provider{Name: "p", Types: map[string]sdk.Resource{"t": &sdk.Type[goodOutputs, goodOutputs]{
			Inputs: outs, Outputs: outs}}},
			want: []string{"it has no Create"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.provider.Check()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check passed; want an error saying %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error\n%v\ndoes not say %q", err, w)
				}
			}
			schema, _ := tt.provider.GetSchema(context.Background())
			if !schema.Diagnostics.HasError() {
				t.Errorf("the schema of a broken provider has no error diagnostic")
			}
		})
	}
}

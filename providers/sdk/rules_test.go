package sdk_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/sdk"
	"github.com/landscaper-nix/landscaper/providers/sdk/sdktest"
)

type port struct {
	Number int    `json:"number"`
	Proto  string `json:"proto"`
}

type ruledInputs struct {
	Mode   string   `json:"mode"`
	Level  int      `json:"level"`
	Name   string   `json:"name"`
	Secret string   `json:"secret"`
	Tags   []string `json:"tags"`
	Ports  []port   `json:"ports"`
}

func ruledProvider() *sdk.Provider {
	return &sdk.Provider{Name: "ruled", Version: "1", Types: map[string]sdk.Resource{
		"thing": &sdk.Type[ruledInputs, struct{}]{
			Inputs: []sdk.Attr{
				sdk.String("mode", "How to run.").OneOf("fast", "safe", "slow").Default("safe"),
				sdk.Integer("level", "").Between(1, 10).Default(5),
				sdk.String("name", "").Matches(`^[a-z]+$`, "a lowercase name").Default("x"),
				sdk.String("secret", "").Sensitive().Matches(`^[0-9a-f]{8}$`, "8 hex digits").Default("00000000"),
				sdk.List("tags", "string", "").Matches(`^[a-z]+$`, "a lowercase word").Default([]string{}),
				sdk.ListOfObjects("ports", "",
					sdk.Integer("number", "").Between(1, 65535).Required(),
					sdk.String("proto", "").OneOf("tcp", "udp").Default("tcp"),
				).Default([]any{}),
			},
			Create: func(context.Context, *sdk.Op, ruledInputs) (struct{}, error) { return struct{}{}, nil },
		},
	}}
}

func TestValidatorsAreEnforcedAtTheirPaths(t *testing.T) {
	h := sdktest.New(t, ruledProvider())
	tests := []struct {
		name     string
		inputs   string
		unknown  []resource.Path
		wantPath string // the first error's path; "" for no error
		wantText string
	}{
		{name: "valid", inputs: `{"mode":"fast","level":10,"name":"abc","tags":["a"],"ports":[{"number":22},{"number":65535,"proto":"udp"}]}`},
		{name: "defaults pass", inputs: `{}`},
		{name: "enum", inputs: `{"mode":"quick"}`, wantPath: "mode", wantText: `not an allowed value: must be "fast", "safe" or "slow", got "quick"`},
		{name: "below range", inputs: `{"level":0}`, wantPath: "level", wantText: "out of range: must be from 1 to 10, got 0"},
		{name: "above range", inputs: `{"level":11}`, wantPath: "level", wantText: "from 1 to 10"},
		{name: "pattern", inputs: `{"name":"ABC"}`, wantPath: "name", wantText: `must be a lowercase name (matching ^[a-z]+$), got "ABC"`},
		{name: "sensitive value not shown", inputs: `{"secret":"hunter22-not-hex"}`, wantPath: "secret", wantText: "must be 8 hex digits (matching ^[0-9a-f]{8}$), got another value"},
		{name: "each list element", inputs: `{"tags":["ok","Not"]}`, wantPath: "tags[1]", wantText: "a lowercase word"},
		{name: "nested range", inputs: `{"ports":[{"number":22},{"number":70000}]}`, wantPath: "ports[1].number", wantText: "from 1 to 65535"},
		{name: "nested enum", inputs: `{"ports":[{"number":22,"proto":"sctp"}]}`, wantPath: "ports[0].proto", wantText: `"tcp" or "udp"`},
		{name: "unknown not judged", inputs: `{"mode":null,"ports":[{"number":null}]}`, unknown: []resource.Path{resource.AttrPath("mode"), resource.AttrPath("ports").Index(0).Attr("number")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diags, err := h.Provider.Validate(context.Background(), resource.ValidateRequest{Type: "ruled.thing", Inputs: resource.Values{JSON: json.RawMessage(tt.inputs)}, Unknown: tt.unknown})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range diags {
				if strings.Contains(d.String(), "hunter22") {
					t.Errorf("a diagnostic shows the sensitive value: %s", d)
				}
			}
			if tt.wantPath == "" {
				if diags.HasError() {
					t.Fatalf("valid inputs refused: %v", diags.Err())
				}
				return
			}
			if len(diags) == 0 || diags[0].Attribute.String() != tt.wantPath || !strings.Contains(diags[0].String(), tt.wantText) {
				t.Fatalf("diagnostics %v; want the first at %s saying %q", diags, tt.wantPath, tt.wantText)
			}
		})
	}
}

func TestValidatorsAreShownInTheSchema(t *testing.T) {
	h := sdktest.New(t, ruledProvider())
	inputs := h.Schema.Types["thing"].Inputs
	tests := []struct {
		attr resource.Attribute
		want string
	}{
		{inputs[0], `How to run. One of "fast", "safe", "slow".`},
		{inputs[1], `From 1 to 10.`},
		{inputs[2], `Matches ^[a-z]+$.`},
		{inputs[5].Attributes[0], `From 1 to 65535.`},
		{inputs[5].Attributes[1], `One of "tcp", "udp".`},
	}
	for _, tt := range tests {
		if tt.attr.Description != tt.want {
			t.Errorf("%s described as %q, want %q", tt.attr.Name, tt.attr.Description, tt.want)
		}
	}
}

func TestBrokenValidatorsAreDeclarationErrors(t *testing.T) {
	tests := []struct {
		name  string
		input sdk.Attr
		want  string
	}{
		{"enum of a number", sdk.Integer("n", "").OneOf("1"), `input "n": OneOf judges strings, not integer values`},
		{"range of a string", sdk.String("n", "").Between(1, 2), `input "n": Between judges numbers, not string values`},
		{"empty range", sdk.Number("n", "").Between(2, 1), `Between(2, 1) allows no value`},
		{"bad pattern", sdk.String("n", "").Matches(`^[a-`, "x"), `input "n": Matches: error parsing regexp`},
		{"nested", sdk.ListOfObjects("l", "", sdk.Bool("b", "").OneOf("true")), `input "l": attribute "b": OneOf judges strings, not bool values`},
		{"keep prior on an input", sdk.String("n", "").KeepPrior(), `input "n": KeepPrior is for outputs`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &sdk.Provider{Name: "p", Types: map[string]sdk.Resource{"t": &sdk.Type[map[string]any, struct{}]{
				Inputs: []sdk.Attr{tt.input}, Create: create[map[string]any, struct{}],
			}}}
			err := p.Check()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Check: %v; want an error saying %q", err, tt.want)
			}
		})
	}
}

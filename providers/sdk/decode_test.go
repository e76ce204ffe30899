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

type limits struct {
	Min   int16   `json:"min"`
	Ratio float32 `json:"ratio"`
}

type numberInputs struct {
	Count   int            `json:"count"`
	Small   uint8          `json:"small"`
	Big     int64          `json:"big"`
	Ratio   float64        `json:"ratio"`
	Ports   []int          `json:"ports"`
	Weights map[string]int `json:"weights"`
	Limits  *limits        `json:"limits"`
	Rules   []limits       `json:"rules"`
}

// numbersProvider has one type whose inputs are numbers of every Go kind;
// its create reports what it decoded.
func numbersProvider(decoded chan<- numberInputs) *sdk.Provider {
	return &sdk.Provider{Name: "numbers", Version: "1", Types: map[string]sdk.Resource{
		"thing": &sdk.Type[numberInputs, struct{}]{
			Inputs: []sdk.Attr{
				sdk.Number("count", "declared a number, held by an int"),
				sdk.Integer("small", ""),
				sdk.Integer("big", ""),
				sdk.Number("ratio", ""),
				sdk.List("ports", "integer", ""),
				sdk.Map("weights", "number", ""),
				sdk.Object("limits", "", sdk.Integer("min", ""), sdk.Number("ratio", "")),
				sdk.List("rules", "object", ""),
			},
			Create: func(_ context.Context, _ *sdk.Op, in numberInputs) (struct{}, error) {
				decoded <- in
				return struct{}{}, nil
			},
		},
	}}
}

func TestNumbersThatDoNotFitTheirGoType(t *testing.T) {
	h := sdktest.New(t, numbersProvider(nil))
	tests := []struct {
		name     string
		inputs   string
		wantPath string // the error's attribute path; "" for no error
		wantText string
	}{
		{name: "whole number", inputs: `{"count":3}`},
		{name: "whole number written with a fraction", inputs: `{"count":3.0,"small":1e2}`},
		{name: "fraction into int", inputs: `{"count":2.5}`, wantPath: "count", wantText: "not a whole number"},
		{name: "fraction into an integer input", inputs: `{"small":2.5}`, wantPath: "small", wantText: "expected integer"},
		{name: "too big for uint8", inputs: `{"small":300}`, wantPath: "small", wantText: "from 0 to 255"},
		{name: "negative into uint8", inputs: `{"small":-1}`, wantPath: "small", wantText: "not negative"},
		{name: "too big for int64", inputs: `{"big":9223372036854775808}`, wantPath: "big", wantText: "out of range"},
		{name: "largest int64", inputs: `{"big":9223372036854775807}`},
		{name: "list element", inputs: `{"ports":[22,80.5]}`, wantPath: "ports[1]", wantText: "expected integer"},
		{name: "map value", inputs: `{"weights":{"a":1,"b c":0.5}}`, wantPath: `weights."b c"`, wantText: "not a whole number"},
		{name: "object attribute", inputs: `{"limits":{"min":40000}}`, wantPath: "limits.min", wantText: "from -32768 to 32767"},
		{name: "undeclared object in a list", inputs: `{"rules":[{"min":1},{"mni":2}]}`, wantPath: "rules[1].mni", wantText: "unknown attribute"},
		{name: "wrong kind in an undeclared object", inputs: `{"rules":[{"min":"one"}]}`, wantPath: "rules[0].min", wantText: "expected a whole number, got a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			diags, err := h.Provider.Validate(context.Background(), resource.ValidateRequest{Type: "numbers.thing", Name: "m", Inputs: resource.Values{JSON: json.RawMessage(tt.inputs)}})
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantPath == "" {
				if diags.HasError() {
					t.Fatalf("unexpected errors: %v", diags.Err())
				}
				return
			}
			if len(diags) != 1 {
				t.Fatalf("want one diagnostic at %s, got %v", tt.wantPath, diags)
			}
			if got := diags[0].Attribute.String(); got != tt.wantPath {
				t.Errorf("error at %q, want %q (%v)", got, tt.wantPath, diags[0])
			}
			if !strings.Contains(diags[0].String(), tt.wantText) {
				t.Errorf("error %q does not say %q", diags[0], tt.wantText)
			}
		})
	}
}

func TestDecodedNumbersReachCreate(t *testing.T) {
	decoded := make(chan numberInputs, 1)
	h := sdktest.New(t, numbersProvider(decoded))
	h.Create("numbers.thing", map[string]any{
		"count": 3.0, "small": 255, "big": int64(1) << 62, "ratio": 0.25,
		"ports": []int{22, 80}, "weights": map[string]float64{"a": 2},
		"limits": map[string]any{"min": -5, "ratio": 1.5}, "rules": []any{map[string]any{"min": 7}},
	})
	got := <-decoded
	if got.Count != 3 || got.Small != 255 || got.Big != 1<<62 || got.Ratio != 0.25 ||
		len(got.Ports) != 2 || got.Ports[1] != 80 || got.Weights["a"] != 2 ||
		got.Limits == nil || got.Limits.Min != -5 || got.Limits.Ratio != 1.5 || len(got.Rules) != 1 || got.Rules[0].Min != 7 {
		t.Errorf("decoded %+v", got)
	}
}

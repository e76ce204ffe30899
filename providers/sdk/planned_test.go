package sdk_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/providers/sdk"
	"github.com/landscaper-nix/landscaper/providers/sdk/sdktest"
)

type counterInputs struct {
	Name string `json:"name"`
}

type counterOutputs struct {
	Path  string `json:"path"`
	Count int    `json:"count,omitempty"`
	Stamp string `json:"stamp"`
}

// counterProvider plans with planHook; its create makes what planHook
// would plan known.
func counterProvider[Out any](outputs []sdk.Attr, planHook func(p *sdk.Plan[counterInputs, Out])) *sdk.Provider {
	return &sdk.Provider{Name: "c", Types: map[string]sdk.Resource{"counter": &sdk.Type[counterInputs, Out]{
		Inputs:  []sdk.Attr{sdk.String("name", "").Required()},
		Outputs: outputs,
		Plan:    func(_ context.Context, p *sdk.Plan[counterInputs, Out]) { planHook(p) },
		Create: func(context.Context, *sdk.Op, counterInputs) (Out, error) {
			var out Out
			return out, nil
		},
	}}}
}

var counterAttrs = []sdk.Attr{sdk.String("path", ""), sdk.Integer("count", ""), sdk.String("stamp", "")}

func TestTypedPlannedOutputs(t *testing.T) {
	tests := []struct {
		name        string
		plan        func(p *sdk.Plan[counterInputs, counterOutputs])
		wantPlanned string
		wantUnknown []string
		wantError   string
	}{
		{
			name: "known fields, the others unknown",
			plan: func(p *sdk.Plan[counterInputs, counterOutputs]) {
				p.SetKnown(counterOutputs{Path: "/c/" + p.Desired.Name, Stamp: "not planned"}, "path")
			},
			wantPlanned: `{"path":"/c/a"}`,
			wantUnknown: []string{"count", "stamp"},
		},
		{
			name: "a zero value left out by omitempty is still planned",
			plan: func(p *sdk.Plan[counterInputs, counterOutputs]) {
				p.SetKnown(counterOutputs{}, "count")
			},
			wantPlanned: `{"count":0}`,
			wantUnknown: []string{"path", "stamp"},
		},
		{
			name: "known, then unknown again",
			plan: func(p *sdk.Plan[counterInputs, counterOutputs]) {
				p.SetKnown(counterOutputs{Path: "/x", Stamp: "s"}, "path", "stamp")
				p.SetUnknown("stamp")
			},
			wantPlanned: `{"path":"/x"}`,
			wantUnknown: []string{"count", "stamp"},
		},
		{
			name: "a name that is not an output",
			plan: func(p *sdk.Plan[counterInputs, counterOutputs]) {
				p.SetKnown(counterOutputs{}, "pth")
			},
			wantError: `bug in the provider's plan: it plans "pth" as a known output, which is not a declared output or has no value in the planned outputs (declared: path, count, stamp)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := sdktest.New(t, counterProvider(counterAttrs, tt.plan))
			p := h.Plan("c.counter", nil, map[string]any{"name": "a"})
			if tt.wantError != "" {
				if err := p.Diagnostics.Err(); err == nil || !strings.Contains(err.Error(), tt.wantError) {
					t.Errorf("plan error %v, want %q", err, tt.wantError)
				}
				return
			}
			if p.Diagnostics.HasError() {
				t.Fatalf("plan: %v", p.Diagnostics.Err())
			}
			if !jsonEqual(t, p.PlannedOutputs, tt.wantPlanned) {
				t.Errorf("planned outputs %s, want %s", p.PlannedOutputs, tt.wantPlanned)
			}
			got := slices.Sorted(slices.Values(p.UnknownOutputs))
			if !slices.Equal(got, tt.wantUnknown) {
				t.Errorf("unknown outputs %v, want %v", got, tt.wantUnknown)
			}
		})
	}
}

// TestTypedPlannedOutputsOfAMap checks SetKnown with outputs held in a
// map instead of a struct.
func TestTypedPlannedOutputsOfAMap(t *testing.T) {
	h := sdktest.New(t, counterProvider([]sdk.Attr{sdk.String("path", ""), sdk.String("stamp", "")}, func(p *sdk.Plan[counterInputs, map[string]any]) {
		p.SetKnown(map[string]any{"path": "/m"}, "path")
		p.SetKnown(map[string]any{}, "stamp")
	}))
	p := h.Plan("c.counter", nil, map[string]any{"name": "a"})
	if !jsonEqual(t, p.PlannedOutputs, `{"path":"/m"}`) {
		t.Errorf("planned outputs %s, want path /m", p.PlannedOutputs)
	}
	if err := p.Diagnostics.Err(); err == nil || !strings.Contains(err.Error(), `"stamp"`) {
		t.Errorf("plan error %v, want one about stamp, which the map does not hold", err)
	}
}

func jsonEqual(t *testing.T, got json.RawMessage, want string) bool {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("decode %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("decode %s: %v", want, err)
	}
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	return string(gb) == string(wb)
}

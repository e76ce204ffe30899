package sdk_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/proto/resource"
	"github.com/landscaper-nix/landscaper/providers/sdk"
	"github.com/landscaper-nix/landscaper/providers/sdk/sdktest"
)

type diskInputs struct {
	Name  string `json:"name"`
	Size  int    `json:"size"`
	Label string `json:"label"`
	Note  string `json:"note"`
}

type diskOutputs struct {
	ID         string `json:"id"`
	LabelUpper string `json:"labelUpper"`
	Stamp      string `json:"stamp"`
}

func diskType() *sdk.Type[diskInputs, diskOutputs] {
	return &sdk.Type[diskInputs, diskOutputs]{
		Inputs: []sdk.Attr{
			sdk.String("name", "").Required().ForceNew(),
			sdk.Integer("size", "").Required().ForceNew(),
			sdk.String("label", "").Default(""),
			sdk.String("note", "").Default(""),
		},
		Outputs: []sdk.Attr{
			sdk.String("id", "").KeepPrior(),
			sdk.String("labelUpper", "").KeepPrior("label"),
			sdk.String("stamp", ""),
		},
		SameInput: map[string]func(prior, desired diskInputs) bool{
			"label": func(prior, desired diskInputs) bool { return strings.EqualFold(prior.Label, desired.Label) },
		},
		// A disk grows in place; shrinking it makes a new one.
		ReplaceIf: map[string]func(prior, desired diskInputs) bool{
			"size": func(prior, desired diskInputs) bool { return desired.Size < prior.Size },
		},
		Create: func(_ context.Context, _ *sdk.Op, in diskInputs) (diskOutputs, error) {
			return diskOutputs{ID: "disk-" + in.Name, LabelUpper: strings.ToUpper(in.Label), Stamp: "1"}, nil
		},
		Update: func(_ context.Context, _ *sdk.Op, prior sdk.State[diskInputs, diskOutputs], in diskInputs) (diskOutputs, error) {
			return diskOutputs{ID: prior.Outputs.ID, LabelUpper: strings.ToUpper(in.Label), Stamp: "2"}, nil
		},
	}
}

func TestPlanModifiers(t *testing.T) {
	h := sdktest.New(t, &sdk.Provider{Name: "disks", Version: "1", Types: map[string]sdk.Resource{"disk": diskType()}})
	base := map[string]any{"name": "a", "size": 10, "label": "data", "note": "n"}
	prior, _ := h.Create("disks.disk", base)
	with := func(k string, v any) map[string]any {
		m := map[string]any{}
		for key, val := range base {
			m[key] = val
		}
		m[k] = v
		return m
	}
	tests := []struct {
		name    string
		desired map[string]any
		unknown []resource.Path
		action  resource.Action
		changed []string
		replace []string
		known   []string // outputs planned as their prior values
	}{
		{"nothing changed", base, nil, resource.ActionNoop, nil, nil, []string{"id", "labelUpper", "stamp"}},
		{"an input no output comes from", with("note", "m"), nil, resource.ActionUpdate, []string{"note"}, nil, []string{"id", "labelUpper"}},
		{"an input an output comes from", with("label", "logs"), nil, resource.ActionUpdate, []string{"label"}, nil, []string{"id"}},
		{"that input not known yet", with("label", nil), []resource.Path{resource.AttrPath("label")}, resource.ActionUpdate, []string{"label"}, nil, []string{"id"}},
		{"the same label spelled otherwise", with("label", "DATA"), nil, resource.ActionNoop, nil, nil, []string{"id", "labelUpper", "stamp"}},
		{"a change ReplaceIf lets through", with("size", 20), nil, resource.ActionUpdate, []string{"size"}, nil, []string{"id", "labelUpper"}},
		{"a change ReplaceIf replaces for", with("size", 5), nil, resource.ActionReplace, []string{"size"}, []string{"size"}, nil},
		{"a ForceNew input without ReplaceIf", with("name", "b"), nil, resource.ActionReplace, []string{"name"}, []string{"name"}, nil},
		{"an unknown size replaces", with("size", nil), []resource.Path{resource.AttrPath("size")}, resource.ActionReplace, []string{"size"}, []string{"size"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := h.Plan("disks.disk", prior, tt.desired, tt.unknown...)
			if p.Diagnostics.HasError() {
				t.Fatalf("plan: %v", p.Diagnostics.Err())
			}
			if p.Action != tt.action {
				t.Errorf("action %v, want %v", p.Action, tt.action)
			}
			if got := pathStrings(p.Changed); !slices.Equal(got, tt.changed) {
				t.Errorf("changed %v, want %v", got, tt.changed)
			}
			if got := pathStrings(p.RequiresReplace); !slices.Equal(got, tt.replace) {
				t.Errorf("requires replace %v, want %v", got, tt.replace)
			}
			var planned map[string]any
			if err := json.Unmarshal(p.PlannedOutputs, &planned); err != nil {
				t.Fatal(err)
			}
			recorded := sdktest.Outputs(t, prior)
			for _, name := range []string{"id", "labelUpper", "stamp"} {
				v, isPlanned := planned[name]
				wantKnown := slices.Contains(tt.known, name)
				if isPlanned != wantKnown || slices.Contains(p.UnknownOutputs, name) == wantKnown {
					t.Errorf("output %s: planned %v, unknown %v; want known %v", name, isPlanned, slices.Contains(p.UnknownOutputs, name), wantKnown)
				}
				if isPlanned && v != recorded[name] {
					t.Errorf("output %s planned as %v, recorded %v", name, v, recorded[name])
				}
			}
		})
	}
}

func TestPlanModifierDeclarationErrors(t *testing.T) {
	tests := []struct {
		name string
		edit func(*sdk.Type[diskInputs, diskOutputs])
		want string
	}{
		{"KeepPrior from an undeclared input", func(ty *sdk.Type[diskInputs, diskOutputs]) {
			ty.Outputs[1] = sdk.String("labelUpper", "").KeepPrior("lable")
		}, `output "labelUpper": KeepPrior names "lable", which is not a declared input`},
		{"ReplaceIf of an input that is not ForceNew", func(ty *sdk.Type[diskInputs, diskOutputs]) {
			ty.ReplaceIf["note"] = func(_, _ diskInputs) bool { return true }
		}, `ReplaceIf names input "note", which is not ForceNew`},
		{"SameInput of an undeclared input", func(ty *sdk.Type[diskInputs, diskOutputs]) {
			ty.SameInput["lable"] = func(_, _ diskInputs) bool { return true }
		}, `SameInput names "lable", which is not a declared input`},
		{"a validator on an output", func(ty *sdk.Type[diskInputs, diskOutputs]) {
			ty.Outputs[2] = sdk.String("stamp", "").OneOf("1", "2")
		}, `output "stamp": validators judge inputs, not outputs`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ty := diskType()
			tt.edit(ty)
			err := (&sdk.Provider{Name: "disks", Types: map[string]sdk.Resource{"disk": ty}}).Check()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Check: %v; want an error saying %q", err, tt.want)
			}
		})
	}
}

func pathStrings(ps []resource.Path) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

// TestPlanReadsRecordedInputs: the recorded inputs reach SameInput and
// ReplaceIf decoded as the desired ones are, however they are spelt; a
// record with an attribute no longer declared is still read, and one
// whose value does not fit its field is an error, not a guess.
func TestPlanReadsRecordedInputs(t *testing.T) {
	h := sdktest.New(t, &sdk.Provider{Name: "disks", Version: "1", Types: map[string]sdk.Resource{"disk": diskType()}})
	created, _ := h.Create("disks.disk", map[string]any{"name": "a", "size": 10, "label": "data", "note": "n"})
	recorded := func(inputs string) *resource.State {
		s := *created
		s.Inputs = resource.Values{JSON: json.RawMessage(inputs)}
		return &s
	}
	tests := []struct {
		name    string
		inputs  string
		desired map[string]any
		action  resource.Action
		err     string
	}{
		{"escapes in a recorded string", `{"name":"a","size":10,"label":"d\u0061t\u0061","note":"n"}`,
			map[string]any{"name": "a", "size": 10, "label": "DATA", "note": "n"}, resource.ActionNoop, ""},
		{"spacing and order", ` { "note" : "n", "size" : 1e1, "label" : "data", "name" : "a" } `,
			map[string]any{"name": "a", "size": 5, "label": "data", "note": "n"}, resource.ActionReplace, ""},
		{"a growth after spacing", `{"note":"n","size":10,"label":"data","name":"a"}`,
			map[string]any{"name": "a", "size": 20, "label": "data", "note": "n"}, resource.ActionUpdate, ""},
		{"an attribute no longer declared", `{"name":"a","size":10,"label":"Data","note":"n","gone":true}`,
			map[string]any{"name": "a", "size": 10, "label": "data", "note": "n"}, resource.ActionNoop, ""},
		{"a value that does not fit", `{"name":"a","size":"ten","label":"data","note":"n"}`,
			map[string]any{"name": "a", "size": 10, "label": "data", "note": "n"}, 0, "cannot read recorded state"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := h.Plan("disks.disk", recorded(tc.inputs), tc.desired)
			if tc.err != "" {
				if err := p.Diagnostics.Err(); err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("plan: %v, want an error saying %q", err, tc.err)
				}
				return
			}
			if p.Diagnostics.HasError() {
				t.Fatalf("plan: %v", p.Diagnostics.Err())
			}
			if p.Action != tc.action {
				t.Errorf("action %v, want %v (changed %v)", p.Action, tc.action, pathStrings(p.Changed))
			}
		})
	}
}

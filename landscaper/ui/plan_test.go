package ui_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/landscaper/engine"
	"github.com/landscaper-nix/landscaper/landscaper/state"
	"github.com/landscaper-nix/landscaper/landscaper/ui"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// TestRenderDeferred: a member computed from outputs known after apply is
// shown with the inputs its provider planned (the unknown ones as such)
// when it has them, else as a whole unknown; in text and in JSON.
func TestRenderDeferred(t *testing.T) {
	prior := &state.Resource{Type: "local.file", Inputs: json.RawMessage(`{"name":"out/k-a","contents":"secret","mode":"0600"}`), SensitiveInputs: []resource.Path{resource.AttrPath("contents")}}
	tests := []struct {
		name      string
		change    *engine.Change
		want, not []string
		after     string // JSON of "after", "" = none
	}{
		{
			name: "planned by its provider, replaced",
			change: &engine.Change{
				Member: "k", Type: "local.file", Action: resource.ActionReplace, Deferred: true, WaitsFor: []string{"cmd.stdout"}, Prior: prior,
				Inputs:          json.RawMessage(`{"name":null,"contents":"secret","mode":"0600"}`),
				Unknown:         []resource.Path{resource.AttrPath("name")},
				Sensitive:       []resource.Path{resource.AttrPath("contents")},
				Changed:         []resource.Path{resource.AttrPath("name")},
				RequiresReplace: []resource.Path{resource.AttrPath("name")},
			},
			want: []string{
				"# k (local.file) must be replaced; its inputs are computed from outputs known after apply (cmd.stdout)",
				`~ name     = "out/k-a" -> (known after apply) # forces replacement`,
			},
			not:   []string{"inputs = (known after apply)", "secret", "changed outside"},
			after: `{"contents":"(sensitive)","mode":"0600","name":null}`,
		},
		{
			name: "a sensitive input known after apply",
			change: &engine.Change{
				Member: "k", Type: "local.file", Action: resource.ActionUpdate, Deferred: true, Prior: prior,
				Inputs:    json.RawMessage(`{"name":"out/k-a","contents":null,"mode":"0600"}`),
				Unknown:   []resource.Path{resource.AttrPath("contents")},
				Sensitive: []resource.Path{resource.AttrPath("contents")},
				Changed:   []resource.Path{resource.AttrPath("contents")},
			},
			want:  []string{"# k (local.file) may be updated; its inputs are computed", "~ contents = (sensitive) -> (known after apply)"},
			not:   []string{"changed outside", "secret", "inputs = (known after apply)"},
			after: `{"contents":null,"mode":"0600","name":"out/k-a"}`,
		},
		{
			name: "computed as a whole",
			change: &engine.Change{
				Member: "k", Type: "local.file", Action: resource.ActionUpdate, Deferred: true, Prior: prior, Inputs: json.RawMessage(`{}`),
			},
			want: []string{"# k (local.file) may be updated; its inputs are computed", "~ inputs = (known after apply)"},
			not:  []string{"secret"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan := &engine.Plan{Changes: []*engine.Change{tt.change}}
			var b bytes.Buffer
			ui.RenderPlan(&b, plan, ui.Style{})
			for _, w := range tt.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("the plan does not show %q:\n%s", w, b.String())
				}
			}
			for _, n := range tt.not {
				if strings.Contains(b.String(), n) {
					t.Errorf("the plan shows %q:\n%s", n, b.String())
				}
			}
			js := ui.PlanToJSON(plan)
			got := ""
			if a := js.Changes[0].After; a != nil {
				bb, _ := json.Marshal(a)
				got = string(bb)
			}
			if got != tt.after {
				t.Errorf("after = %s, want %s", got, tt.after)
			}
		})
	}
}

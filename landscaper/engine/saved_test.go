package engine

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/landscaper/eval"
	"github.com/landscaper-nix/landscaper/landscaper/state"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// TestSavedPlanChecks: a saved plan is accepted only against the same
// deployment, options and state, change for change; each difference is
// refused with ErrPlanStale naming it. Sensitive inputs are not in it.
func TestSavedPlanChecks(t *testing.T) {
	const secret = "-----BEGIN KEY----- very secret -----END KEY-----"
	change := func(contents string) *Change {
		return &Change{
			Member: "f", Type: "local.file", Provider: "local", Action: resource.ActionUpdate,
			Inputs:    json.RawMessage(`{"name":"out/f","contents":"` + contents + `","key":"` + secret + `"}`),
			Sensitive: []resource.Path{resource.AttrPath("key")},
			Prior:     &state.Resource{Type: "local.file", Inputs: json.RawMessage(`{"name":"out/f","contents":"old"}`)},
		}
	}
	newEngine := func() *Engine {
		return &Engine{opts: Options{Source: eval.Source{File: "/deploy/landscaper.nix"}}, state: &state.State{Lineage: "L1", Serial: 7}}
	}
	e := newEngine()
	saved, err := e.Save(&Plan{Changes: []*Change{change("new")}}, false)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(saved)
	if strings.Contains(string(b), "very secret") {
		t.Fatalf("the saved plan holds a sensitive input: %s", b)
	}
	for _, tc := range []struct {
		name    string
		mutate  func(e *Engine)
		plan    *Plan
		destroy bool
		want    string // "" = accepted
	}{
		{"the same", nil, &Plan{Changes: []*Change{change("new")}}, false, ""},
		{"another input", nil, &Plan{Changes: []*Change{change("newer")}}, false, "member f: its planned inputs differ"},
		{"another action", nil, &Plan{Changes: []*Change{func() *Change { c := change("new"); c.Action = resource.ActionReplace; return c }()}}, false, "the plan said update, now replace"},
		{"a member more", nil, &Plan{Changes: []*Change{change("new"), {Member: "g", Action: resource.ActionCreate}}}, false, "it has 1 changes, the deployment now gives 2"},
		{"another secret", nil, &Plan{Changes: []*Change{func() *Change {
			c := change("new")
			c.Inputs = json.RawMessage(strings.Replace(string(c.Inputs), "very secret", "other secret", 1))
			return c
		}()}}, false, "its planned inputs differ"},
		{"the state moved", func(e *Engine) { e.state.Serial = 8 }, &Plan{Changes: []*Change{change("new")}}, false, "the state changed since"},
		{"another state", func(e *Engine) { e.state.Lineage = "L2" }, &Plan{Changes: []*Change{change("new")}}, false, "the state changed since"},
		{"another deployment", func(e *Engine) { e.opts.Source.File = "/other/landscaper.nix" }, &Plan{Changes: []*Change{change("new")}}, false, "made for the deployment /deploy/landscaper.nix"},
		{"other options", func(e *Engine) { e.opts.Targets = []string{"f"} }, &Plan{Changes: []*Change{change("new")}}, false, "other options"},
		{"destroy", nil, &Plan{Changes: []*Change{change("new")}}, true, "other options"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine()
			if tc.mutate != nil {
				tc.mutate(e)
			}
			err := e.CheckSaved(saved, tc.plan, tc.destroy)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !errors.Is(err, ErrPlanStale) || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want ErrPlanStale saying %q", err, tc.want)
			}
		})
	}
	// What show renders: sensitive shown as sensitive, the prior kept.
	shown := saved.Plan()
	if len(shown.Changes) != 1 || shown.Changes[0].Action != resource.ActionUpdate || shown.Changes[0].Prior == nil ||
		!resource.Covered(resource.AttrPath("key"), shown.Changes[0].Sensitive) {
		t.Errorf("the plan rebuilt for show: %+v", shown.Changes)
	}
}

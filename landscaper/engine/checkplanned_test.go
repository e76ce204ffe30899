package engine

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

// TestCheckPlannedChange: which plans at apply time (inputs known) may
// differ from the plan shown, and how.
func TestCheckPlannedChange(t *testing.T) {
	change := func(a resource.Action, inputs string, unknown ...string) *Change {
		c := &Change{Member: "m", Provider: "local", Action: a, Inputs: json.RawMessage(inputs)}
		for _, u := range unknown {
			c.Unknown = append(c.Unknown, resource.AttrPath(u))
		}
		return c
	}
	deferred := func(c *Change) *Change { c.Deferred = true; return c }
	replaceFor := func(c *Change, attr string) *Change {
		c.RequiresReplace = []resource.Path{resource.AttrPath(attr)}
		return c
	}
	for _, tc := range []struct {
		name         string
		planned, now *Change
		want         string // "" = allowed
	}{
		{"the same", change(resource.ActionUpdate, `{"a":1}`), change(resource.ActionUpdate, `{"a":1}`), ""},
		{"an update that is nothing", change(resource.ActionUpdate, `{"a":null}`, "a"), change(resource.ActionNoop, `{"a":1}`), ""},
		{"a replacement that is nothing", change(resource.ActionReplace, `{"a":null}`, "a"), change(resource.ActionNoop, `{"a":1}`), ""},
		{"a replacement with unknowns that is an update", change(resource.ActionReplace, `{"a":null,"b":2}`, "a"), change(resource.ActionUpdate, `{"a":1,"b":2}`), ""},
		{"a deferred replacement that is an update", deferred(change(resource.ActionReplace, `{}`)), change(resource.ActionUpdate, `{"a":1}`), ""},
		{"a replacement without unknowns that is an update", change(resource.ActionReplace, `{"a":1}`), change(resource.ActionUpdate, `{"a":1}`), "the plan showed replace, but with its inputs known the provider local plans update"},
		{"an update that is a replacement", change(resource.ActionUpdate, `{"a":null}`, "a"), replaceFor(change(resource.ActionReplace, `{"a":1}`), "a"), "plans replace (a forces replacement)"},
		{"a deferred update that is a replacement", deferred(change(resource.ActionUpdate, `{}`)), change(resource.ActionReplace, `{"a":1}`), "plans replace"},
		{"a create that is an update", change(resource.ActionCreate, `{"a":null}`, "a"), change(resource.ActionUpdate, `{"a":1}`), "the plan showed create"},
		{"a known input changed", change(resource.ActionUpdate, `{"a":null,"b":2}`, "a"), change(resource.ActionUpdate, `{"a":1,"b":3}`), "input b differs from the value the plan showed"},
		{"a deferred member's known input changed", deferred(change(resource.ActionUpdate, `{"a":null,"b":2}`, "a")), change(resource.ActionUpdate, `{"a":1,"b":3}`), "input b differs from the value the plan showed"},
		{"an unknown input known", change(resource.ActionUpdate, `{"a":null,"b":2}`, "a"), change(resource.ActionUpdate, `{"a":1,"b":2}`), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkPlannedChange(tc.planned, tc.now)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

// TestBrokenPromises: the outputs a plan promised that came back with
// other values, whichever of the plans promised them.
func TestBrokenPromises(t *testing.T) {
	plan := func(a resource.Action, planned string, unknown ...string) *Change {
		return &Change{Action: a, PlannedOutputs: json.RawMessage(planned), UnknownOutputs: unknown}
	}
	for _, tc := range []struct {
		name  string
		got   string
		plans []*Change
		want  string
	}{
		{"kept", `{"a":"x","b":1}`, []*Change{plan(resource.ActionCreate, `{"a":"x"}`, "b")}, ""},
		{"broken", `{"a":"y","b":1}`, []*Change{plan(resource.ActionCreate, `{"a":"x"}`, "b")}, "a"},
		{"missing", `{"b":1}`, []*Change{plan(resource.ActionUpdate, `{"a":"x"}`)}, "a"},
		{"the same JSON written otherwise", `{"a":{"q":1,"p":2}}`, []*Change{plan(resource.ActionUpdate, `{"a":{"p":2,"q":1}}`)}, ""},
		{"unknown after all", `{"a":"y"}`, []*Change{plan(resource.ActionUpdate, `{"a":"x"}`, "a")}, ""},
		{"a no-op promises nothing", `{"a":"y"}`, []*Change{plan(resource.ActionNoop, `{"a":"x"}`)}, ""},
		{"the plan shown and the plan again", `{"a":"x","b":2}`, []*Change{plan(resource.ActionUpdate, `{"b":1}`, "a"), plan(resource.ActionUpdate, `{"a":"y","b":1}`)}, "a, b"},
		{"a deferred plan", `{"a":"x"}`, []*Change{{Action: resource.ActionUpdate, Deferred: true}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(brokenPromises(json.RawMessage(tc.got), tc.plans...), ", "); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

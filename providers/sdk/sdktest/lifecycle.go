package sdktest

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

// Lifecycle is one resource's way through a provider, as the engine takes
// it: see Harness.RunLifecycle.
type Lifecycle struct {
	// Type is the resource type ("local.file") and Inputs its inputs.
	Type   string
	Inputs any
	// ReadSeesNoDelete is for types whose Read looks only at the recorded
	// state (a key pair kept in the state): after Delete it still reports
	// the resource, so the last check is left out.
	ReadSeesNoDelete bool
}

// RunLifecycle checks the contract every resource type owes the engine:
// the plan of a new resource is a create without errors; Create succeeds
// and its outputs are the ones the plan said it knew, with every declared
// output present; the next plan is a no-op that keeps those outputs; Read
// finds the resource with the same outputs; Delete succeeds, and so does a
// second Delete (deleting what is gone succeeds); after it Read reports
// the resource gone (unless lc.ReadSeesNoDelete). It fails the test at the
// first broken promise and returns the state Create recorded.
func (h *Harness) RunLifecycle(lc Lifecycle) *resource.State {
	h.t.Helper()
	plan := h.Plan(lc.Type, nil, lc.Inputs)
	if plan.Diagnostics.HasError() || plan.Action != resource.ActionCreate {
		h.t.Fatalf("%s: plan of a new resource: %s, %v; want create without errors", lc.Type, plan.Action, plan.Diagnostics.Err())
	}
	st, _ := h.Create(lc.Type, lc.Inputs)
	created := h.objectOf("Create's outputs", st.Outputs.JSON)
	for name, want := range h.objectOf("the planned outputs", plan.PlannedOutputs) {
		if !sameJSON(created[name], want) {
			h.t.Errorf("%s: output %s is not what the plan said it would be", lc.Type, name)
		}
	}
	if schema := h.Schema.Types[typeName(lc.Type)]; schema != nil {
		for _, o := range schema.Outputs {
			if _, ok := created[o.Name]; !ok {
				h.t.Errorf("%s: Create returned no output %s", lc.Type, o.Name)
			}
		}
	}

	again := h.Plan(lc.Type, st, lc.Inputs)
	if again.Diagnostics.HasError() || again.Action != resource.ActionNoop {
		h.t.Errorf("%s: the plan right after create: %s (changed %v), %v; want a no-op", lc.Type, again.Action, again.Changed, again.Diagnostics.Err())
	}
	for name, v := range h.objectOf("the no-op's planned outputs", again.PlannedOutputs) {
		if !sameJSON(created[name], v) {
			h.t.Errorf("%s: the no-op plan changes output %s", lc.Type, name)
		}
	}

	read := h.Read(lc.Type, st)
	if read.Diagnostics.HasError() || !read.Exists {
		h.t.Fatalf("%s: Read right after create: exists %v, %v", lc.Type, read.Exists, read.Diagnostics.Err())
	}
	if !sameJSON(read.Outputs.JSON, st.Outputs.JSON) {
		h.t.Errorf("%s: Read right after create reports other outputs than Create", lc.Type)
	}

	h.Delete(lc.Type, st)
	h.Delete(lc.Type, st)
	if !lc.ReadSeesNoDelete {
		if gone := h.Read(lc.Type, st); gone.Exists {
			h.t.Errorf("%s: Read after delete still finds the resource", lc.Type)
		}
	}
	return st
}

// objectOf decodes a JSON object; what is empty is an empty object. Values
// are never printed: they may be secret.
func (h *Harness) objectOf(what string, doc json.RawMessage) map[string]json.RawMessage {
	h.t.Helper()
	m := map[string]json.RawMessage{}
	if len(bytes.TrimSpace(doc)) == 0 {
		return m
	}
	if err := json.Unmarshal(doc, &m); err != nil {
		h.t.Fatalf("%s are not a JSON object: %v", what, err)
	}
	return m
}

// typeName is a full type name without its provider ("local.file": "file").
func typeName(typ string) string {
	if i := strings.LastIndexByte(typ, '.'); i >= 0 {
		return typ[i+1:]
	}
	return typ
}

func sameJSON(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	cx, _ := json.Marshal(x)
	cy, _ := json.Marshal(y)
	return bytes.Equal(cx, cy)
}

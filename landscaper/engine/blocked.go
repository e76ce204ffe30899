package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/landscaper-nix/landscaper/landscaper/state"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// planBlocked plans a member whose Nix code computes with outputs that are
// not known yet; it is evaluated again once they are. When the evaluation
// told which parts of its inputs compute with outputs (or, failing that,
// use them), those parts are unknown and its provider plans the rest as
// it plans any input: the plan checks what is known (an input the type
// does not have, a wrong type) and shows the replacement that an unknown
// input forces. When it could not tell (the inputs as a whole are
// computed), the member is planned to be created or updated with every
// input and output unknown.
func (e *Engine) planBlocked(ctx context.Context, m *member, prior *state.Resource) (*Change, error) {
	waits := e.unknownOpaque(m)
	if len(m.failing) == 0 || slices.ContainsFunc(m.failing, func(p resource.Path) bool { return len(p) == 0 }) {
		c := &Change{Member: m.path, Type: m.typ, Provider: m.provider, Prior: prior, Deferred: true, WaitsFor: waits, Deps: m.deps, Inputs: json.RawMessage("{}"), Context: m.context}
		c.Action = resource.ActionCreate
		if prior != nil {
			c.Action = resource.ActionUpdate
		}
		c.UnknownOutputs = outputNames(m.schema)
		e.setUnknownOutputs(m.path, c.UnknownOutputs)
		return c, nil
	}
	// The parts that compute with outputs when the evaluation told them
	// apart from those that pass tokens on (substituted as for any
	// member); else every part that uses an output.
	unknown := m.failing
	if c := m.analysis.Computing; len(c) > 0 {
		unknown = c
	}
	sub, err := e.substitute(m)
	if err == nil {
		sub.JSON, err = withNullAt(sub.JSON, unknown)
	}
	if err != nil {
		return nil, &MemberError{Member: m.path, Type: m.typ, Err: err}
	}
	for _, p := range unknown {
		if !resource.Covered(p, sub.Unknown) {
			sub.Unknown = append(sub.Unknown, p)
		}
	}
	c, err := e.askPlanQuiet(ctx, m, prior, sub, e.opts.Describe)
	if err != nil {
		return nil, err
	}
	c.Deferred, c.WaitsFor = true, waits
	if c.Action == resource.ActionNoop {
		// Its provider cannot know that nothing changes: the unknown
		// parts may.
		c.Action, c.PlannedOutputs, c.UnknownOutputs = resource.ActionUpdate, nil, outputNames(m.schema)
	}
	e.recordPlannedOutputs(m, c)
	return c, nil
}

// withNullAt returns the JSON document doc with the values at paths
// replaced by null.
func withNullAt(doc json.RawMessage, paths []resource.Path) (json.RawMessage, error) {
	// Numbers stay as they are written (a whole number beyond 2^53 would
	// otherwise come back rounded).
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode inputs: %w", err)
	}
	for _, p := range paths {
		v = resource.NullAt(v, p)
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode inputs: %w", err)
	}
	return out, nil
}

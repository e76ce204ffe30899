package eval

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

// Members that use outputs in some parts of their inputs only are read
// whole once, by the evaluation in which every output throws, with those
// parts null (masked); the other evaluations give only the parts, as a
// JSON list in the order of the failing paths. splice puts them together,
// so the rest of the engine sees whole inputs, and the parts that use no
// output (a NixOS toplevel beside an output, say) are evaluated once.

// maskedInputs are the masked members by path.
type maskedInputs map[string]maskedMember

type maskedMember struct {
	failing []resource.Path
	// raw is failing as the driver wrote it.
	raw     [][]json.RawMessage
	inputs  string
	context map[string]ContextEntry
}

// failingJSON is the failing parts of each member as the driver takes
// them (ctx.masked): lists of names and list indexes.
func (mi maskedInputs) failingJSON() map[string][][]json.RawMessage {
	if len(mi) == 0 {
		return nil
	}
	out := make(map[string][][]json.RawMessage, len(mi))
	for path, m := range mi {
		out[path] = m.raw
	}
	return out
}

// partsJSON is failingJSON with the members of parts restricted to those
// of their failing parts (a member none of whose failing parts is listed
// keeps them all).
func (mi maskedInputs) partsJSON(parts map[string][]resource.Path) map[string][][]json.RawMessage {
	out := mi.failingJSON()
	for path, want := range parts {
		m, ok := mi[path]
		if !ok {
			continue
		}
		var raw [][]json.RawMessage
		for i, f := range m.failing {
			if slices.ContainsFunc(want, func(p resource.Path) bool { return p.String() == f.String() }) {
				raw = append(raw, m.raw[i])
			}
		}
		if len(raw) > 0 {
			out[path] = raw
		}
	}
	return out
}

// maskedMembers reads the masked members of the "c" list.
func maskedMembers(c []pathFailing) (maskedInputs, error) {
	out := maskedInputs{}
	for _, m := range c {
		if m.Masked == nil {
			continue
		}
		if m.Inputs != nil || len(m.Failing) == 0 {
			return nil, fmt.Errorf("member %s: masked inputs of a member that is settled or uses no output", m.Path)
		}
		if !json.Valid([]byte(*m.Masked)) {
			return nil, fmt.Errorf("member %s: the masked inputs are not JSON: %.40q", m.Path, *m.Masked)
		}
		if err := checkContext("member "+m.Path, m.MaskedContext); err != nil {
			return nil, err
		}
		mm := maskedMember{inputs: *m.Masked, context: m.MaskedContext, raw: m.Failing}
		for _, steps := range m.Failing {
			p, err := decodeFailing(m.Path, steps)
			if err != nil {
				return nil, err
			}
			if len(p) == 0 {
				return nil, fmt.Errorf("member %s: masked inputs that fail whole", m.Path)
			}
			mm.failing = append(mm.failing, p)
		}
		out[m.Path] = mm
	}
	return out, nil
}

// splice returns the whole inputs of a member of list whose evaluation
// gave only the parts (partsJSON), with the string context of both.
func (mi maskedInputs) splice(list, path, partsJSON string, context map[string]ContextEntry) (string, map[string]ContextEntry, error) {
	m, ok := mi[path]
	if !ok {
		return "", nil, fmt.Errorf("member %s: %s gave parts of inputs that were not masked", path, list)
	}
	var parts []json.RawMessage
	if err := json.Unmarshal([]byte(partsJSON), &parts); err != nil || len(parts) != len(m.failing) {
		return "", nil, fmt.Errorf("member %s: %s gave %.40q, not the %d parts asked for", path, list, partsJSON, len(m.failing))
	}
	whole := json.RawMessage(m.inputs)
	for i, p := range m.failing {
		var err error
		if whole, err = setAt(whole, p, parts[i]); err != nil {
			return "", nil, fmt.Errorf("member %s: put part %s of %s into the inputs: %w", path, p, list, err)
		}
	}
	merged := m.context
	if len(context) > 0 {
		merged = maps.Clone(m.context)
		if merged == nil {
			merged = map[string]ContextEntry{}
		}
		for k, v := range context {
			merged[k] = mergeContext(merged[k], v)
		}
	}
	return string(whole), merged, nil
}

// mergeContext is the union of two entries of one store path.
func mergeContext(a, b ContextEntry) ContextEntry {
	out := ContextEntry{Path: a.Path || b.Path, AllOut: a.AllOut || b.AllOut}
	seen := map[string]bool{}
	for _, o := range append(append([]string(nil), a.Outputs...), b.Outputs...) {
		if !seen[o] {
			seen[o] = true
			out.Outputs = append(out.Outputs, o)
		}
	}
	return out
}

// setAt returns doc with the value at p replaced by v. Only the objects
// and lists on the way are decoded and written again; every other value
// keeps its text.
func setAt(doc json.RawMessage, p resource.Path, v json.RawMessage) (json.RawMessage, error) {
	if len(p) == 0 {
		return v, nil
	}
	step := p[0]
	if step.Kind == resource.StepIndex {
		var list []json.RawMessage
		if err := json.Unmarshal(doc, &list); err != nil {
			return nil, fmt.Errorf("not a list at %s", p)
		}
		i := step.Index
		if i < 0 || i >= len(list) {
			return nil, fmt.Errorf("no element %d", i)
		}
		sub, err := setAt(list[i], p[1:], v)
		if err != nil {
			return nil, err
		}
		list[i] = sub
		return encodeRaw(list)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(doc, &obj); err != nil || obj == nil {
		return nil, fmt.Errorf("not an attribute set at %s", p)
	}
	name := step.Name
	cur, ok := obj[name]
	if !ok {
		return nil, fmt.Errorf("no attribute %q", name)
	}
	sub, err := setAt(cur, p[1:], v)
	if err != nil {
		return nil, err
	}
	obj[name] = sub
	return encodeRaw(obj)
}

// encodeRaw writes v as JSON as Nix does: no HTML escaping, object keys
// sorted, nothing after it.
func encodeRaw(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

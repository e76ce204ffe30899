package sdk

import (
	"reflect"
	"slices"
	"strings"

	"github.com/landscaper-nix/landscaper/proto/resource"
)

// SetKnown plans the outputs named by names as known before apply, with
// their values in out (its other fields are not looked at): members that
// read them are planned with these values, and the operation must return
// them. A name that is not a declared output (or, for an Out that is a
// map, not in out) is a bug of the provider, reported as an error of the
// plan.
func (p *Plan[In, Out]) SetKnown(out Out, names ...string) {
	v := reflect.ValueOf(out)
	var fields map[string]field
	if v.Kind() == reflect.Struct {
		fields = jsonFields(v.Type())
	}
	for _, name := range names {
		value, ok := outputValue(v, fields, name)
		if !ok || !slices.Contains(p.outputNames, name) {
			p.Diagnostics = append(p.Diagnostics, resource.Error(nil, "bug in the provider's plan",
				"it plans %q as a known output, which is not a declared output or has no value in the planned outputs (declared: %s)", name, strings.Join(p.outputNames, ", ")))
			continue
		}
		if p.Planned == nil {
			p.Planned = map[string]any{}
		}
		p.Planned[name] = value
		p.UnknownOutputs = slices.DeleteFunc(p.UnknownOutputs, func(n string) bool { return n == name })
	}
}

// SetUnknown plans the outputs named by names as known only after apply,
// whatever was planned for them before (the recorded value of a no-op
// turned into an update, say).
func (p *Plan[In, Out]) SetUnknown(names ...string) {
	for _, name := range names {
		delete(p.Planned, name)
		if !slices.Contains(p.UnknownOutputs, name) {
			p.UnknownOutputs = append(p.UnknownOutputs, name)
		}
	}
}

// IsKnown reports whether the output name is planned as known.
func (p *Plan[In, Out]) IsKnown(name string) bool {
	_, ok := p.Planned[name]
	return ok
}

// outputValue is the value of the output name in out: a struct's field
// with that json name, or a map's entry.
func outputValue(out reflect.Value, fields map[string]field, name string) (any, bool) {
	switch out.Kind() {
	case reflect.Struct:
		f, ok := fields[name]
		if !ok {
			return nil, false
		}
		return out.FieldByIndex(f.index).Interface(), true
	case reflect.Map:
		if out.Type().Key().Kind() != reflect.String {
			return nil, false
		}
		if e := out.MapIndex(reflect.ValueOf(name).Convert(out.Type().Key())); e.IsValid() {
			return e.Interface(), true
		}
	}
	return nil, false
}

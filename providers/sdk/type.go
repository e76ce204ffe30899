package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/landscaper-nix/landscaper/internal/redact"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// State is a resource as the engine recorded it, decoded.
type State[In, Out any] struct {
	Inputs  In
	Outputs Out
	// Private is the provider's own opaque data.
	Private []byte
	// HasOutputs is false for a resource whose create was interrupted: the
	// engine knows its inputs only.
	HasOutputs bool
}

// Plan is the plan of one resource, decided by the SDK from the inputs and
// open to refinement by Type.Plan.
type Plan[In, Out any] struct {
	Desired In
	// Prior is nil when the resource does not exist yet.
	Prior *State[In, Out]
	// Unknown lists desired input paths known only after apply.
	Unknown         []resource.Path
	Action          resource.Action
	Changed         []resource.Path
	RequiresReplace []resource.Path
	// Planned holds outputs known already, by name; by default the prior
	// outputs for a no-op and nothing otherwise. SetKnown and SetUnknown
	// change it and UnknownOutputs together, with the values typed as Out.
	Planned map[string]any
	// UnknownOutputs lists outputs known only after apply; by default all
	// of them unless the action is a no-op.
	UnknownOutputs []string
	Diagnostics    resource.Diagnostics
	// Claims name what the resource will own alone (set by Type.Plan): the
	// engine refuses two members of a deployment with the same claim. A
	// claim that depends on an unknown input is left out.
	Claims []string
	// Describe says a person will read the plan: Type.Plan may then set
	// Details, telling what the change does beyond its attributes (never
	// a sensitive value). Without it, Details are not wanted.
	Describe bool
	Details  *resource.ChangeDetails

	// outputNames are the type's declared outputs, for SetKnown.
	outputNames []string
}

// IsUnknown reports whether the desired input at path is not known yet.
func (p *Plan[In, Out]) IsUnknown(path ...string) bool {
	return resource.Covered(resource.AttrPath(path...), p.Unknown)
}

// Op is the context of one operation: who it is for and where its events go.
type Op struct {
	Type string
	Name string
	// Replacing is set on a delete that the engine follows with a create
	// of the same resource in the same apply (a replacement).
	Replacing bool
	sink      resource.EventSink
	// secrets are the operation's sensitive inputs and outputs.
	secrets *redact.Set

	mu       sync.Mutex
	warnings resource.Diagnostics
}

// Warn adds a warning to the operation's result; the engine shows it to
// the user with the member's name once the operation has ended, whether
// it succeeded or not. at is the input the warning is about, or nil. The
// operation's sensitive values are redacted from it. Safe for concurrent
// use.
func (o *Op) Warn(at resource.Path, summary, detailf string, args ...any) {
	d := resource.Diagnostic{Severity: resource.SeverityWarning, Summary: summary, Detail: fmt.Sprintf(detailf, args...), Attribute: at}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.warnings = append(o.warnings, d)
}

// withWarnings appends the operation's warnings to a result's
// diagnostics, all of them redacted.
func (o *Op) withWarnings(res *resource.Result) *resource.Result {
	o.mu.Lock()
	ds := append(res.Diagnostics[:len(res.Diagnostics):len(res.Diagnostics)], o.warnings...)
	o.mu.Unlock()
	res.Diagnostics = o.redactDiagnostics(ds)
	return res
}

// Logf sends a log line to the engine, shown with the resource's progress.
// The operation's sensitive values are redacted from it (and the engine
// redacts every secret it knows again); still, never log a secret on
// purpose.
func (o *Op) Logf(format string, args ...any) {
	if o.sink == nil {
		return
	}
	o.sink.Log(o.Redact(fmt.Sprintf(format, args...)))
}

// Progress reports how far the operation is (fraction 0..1, or -1).
func (o *Op) Progress(message string, fraction float64) {
	if o.sink == nil {
		return
	}
	o.sink.Progress(o.Redact(message), fraction)
}

// Type is a resource type with inputs In and outputs Out, both structs with
// json tags matching the declared attribute names.
type Type[In, Out any] struct {
	Description string
	Inputs      []Attr
	Outputs     []Attr
	// Validate checks decoded inputs beyond their declared types. Inputs
	// at paths in unknown are zero values and must not be judged.
	Validate func(in In, unknown []resource.Path) resource.Diagnostics
	// SameInput holds, by input name, whether an input's recorded and
	// desired values, spelled differently, mean the same (a MAC address
	// in another notation): then the input has not changed at all. It is
	// asked only when both are known.
	SameInput map[string]func(prior, desired In) bool
	// ReplaceIf holds, by name of a ForceNew input, whether its change
	// replaces the resource (the key size that the default meant, spelled
	// out, does not); a change it lets through updates. Without an entry
	// every change of a ForceNew input replaces. It is asked only when
	// both values are known.
	ReplaceIf map[string]func(prior, desired In) bool
	// Plan refines the plan the SDK made by comparing inputs and applying
	// SameInput, ReplaceIf and the outputs' KeepPrior.
	Plan func(ctx context.Context, p *Plan[In, Out])
	// Create makes the resource.
	Create func(ctx context.Context, op *Op, in In) (Out, error)
	// Update changes it in place; nil means every change replaces.
	Update func(ctx context.Context, op *Op, prior State[In, Out], in In) (Out, error)
	// Delete removes it; it must succeed when the resource is gone already.
	Delete func(ctx context.Context, op *Op, prior State[In, Out]) error
	// Read reports whether the resource exists and its outputs now; nil
	// means the recorded outputs are always right.
	Read func(ctx context.Context, prior State[In, Out]) (out Out, exists bool, err error)
	// Prepare does the cheap, harmless part of a coming create or update
	// ahead of time (prior is nil for a new resource); nil means there is
	// nothing to prepare. It must not change what the resource is.
	Prepare func(ctx context.Context, prior *State[In, Out], in In) error
	// Version is the version of the shape of the type's recorded state
	// (In, Out and Private): 0 at first, one more each time a change to
	// them would misread state recorded before. The state records the
	// version it was written with.
	Version int
	// Upgrade turns state recorded at version from into the shape of
	// version from+1; the SDK calls it once per version between the
	// recorded one and Version, before Plan, Read, Update, Delete and
	// Prepare see the state. Required when Version is above 0. State
	// recorded at a version newer than Version is refused.
	Upgrade func(ctx context.Context, from int, prior RawState) (RawState, error)

	// declared holds Inputs and Outputs as schema attributes, made once:
	// every operation reads them several times.
	declared struct {
		once            sync.Once
		inputs, outputs []resource.Attribute
		// inputFields are In's fields by JSON name, when In is a
		// struct decoded field by field.
		inputFields map[string]field
	}
}

// inputAttributes returns the declared inputs as schema attributes, shared
// (callers do not change them).
func (t *Type[In, Out]) inputAttributes() []resource.Attribute {
	t.declared.once.Do(t.declare)
	return t.declared.inputs
}

// outputAttributes returns the declared outputs as inputAttributes does.
func (t *Type[In, Out]) outputAttributes() []resource.Attribute {
	t.declared.once.Do(t.declare)
	return t.declared.outputs
}

func (t *Type[In, Out]) declare() {
	t.declared.inputs, t.declared.outputs = attributes(t.Inputs), attributes(t.Outputs)
	if in := reflect.TypeFor[In](); in.Kind() == reflect.Struct && !usesOwnDecoding(in) {
		t.declared.inputFields = jsonFields(in)
	}
}

// fillInputs fills in, a struct decoded field by field, from an object
// of inputs read already; false (nothing done) for any other In.
func (t *Type[In, Out]) fillInputs(in *In, obj map[string]json.RawMessage) (resource.Diagnostics, bool) {
	t.declared.once.Do(t.declare)
	if t.declared.inputFields == nil {
		return nil, false
	}
	return decodeFieldsOf(reflect.ValueOf(in).Elem(), t.declared.inputFields, obj, nil), true
}

// Resource is a resource type the SDK can serve; *Type is one.
type Resource interface {
	check() error
	schema() *resource.TypeSchema
	validate(req resource.ValidateRequest) resource.Diagnostics
	plan(ctx context.Context, req resource.PlanRequest) (*resource.PlanResponse, error)
	create(ctx context.Context, req resource.CreateRequest, sink resource.EventSink) (*resource.Result, error)
	update(ctx context.Context, req resource.UpdateRequest, sink resource.EventSink) (*resource.Result, error)
	delete(ctx context.Context, req resource.DeleteRequest, sink resource.EventSink) (*resource.Result, error)
	read(ctx context.Context, req resource.ReadRequest) (*resource.ReadResponse, error)
	prepare(ctx context.Context, req resource.PrepareRequest) resource.Diagnostics
}

var _ Resource = (*Type[struct{}, struct{}])(nil)

func (t *Type[In, Out]) schema() *resource.TypeSchema {
	return &resource.TypeSchema{Description: t.Description, Inputs: attributes(t.Inputs), Outputs: attributes(t.Outputs), Version: int64(t.Version)}
}

// decode checks inputs against the schema and decodes them.
func (t *Type[In, Out]) decode(doc json.RawMessage, unknown []resource.Path) (In, map[string]json.RawMessage, resource.Diagnostics) {
	var in In
	obj, diags := checkObject(t.inputAttributes(), doc, nil, unknown)
	if diags.HasError() {
		return in, nil, diags
	}
	if d := enforceRules(t.Inputs, obj, nil, unknown, false); d.HasError() {
		return in, nil, append(diags, d...)
	}
	known := make(map[string]json.RawMessage, len(obj))
	for name, v := range obj {
		if !resource.Covered(resource.AttrPath(name), unknown) {
			known[name] = v
		}
	}
	// The object is read already: fill the fields from it.
	d, filled := t.fillInputs(&in, known)
	if !filled {
		b, _ := json.Marshal(known)
		d = decodeInto(reflect.ValueOf(&in).Elem(), b, nil)
	}
	if d.HasError() {
		return in, nil, append(diags, d...)
	}
	if t.Validate != nil {
		diags = append(diags, t.Validate(in, unknown)...)
	}
	return in, obj, diags
}

func (t *Type[In, Out]) decodeState(s resource.State) (State[In, Out], error) {
	st, _, err := t.decodeStateChecked(s)
	return st, err
}

// decodeStateChecked is decodeState that also returns the recorded inputs
// as checkObject reads them, which planning compares with the desired ones.
func (t *Type[In, Out]) decodeStateChecked(s resource.State) (State[In, Out], map[string]json.RawMessage, error) {
	var st State[In, Out]
	st.Private = s.Private
	obj, _ := checkObject(t.inputAttributes(), s.Inputs.JSON, nil, nil)
	// Filled as the desired inputs are; what does not fit the fields (an
	// attribute no longer declared, say) is decoded leniently by
	// encoding/json, as it always was.
	if d, filled := t.fillInputs(&st.Inputs, obj); len(bytes.TrimSpace(s.Inputs.JSON)) > 0 && (!filled || d.HasError()) {
		st.Inputs = *new(In)
		b, _ := json.Marshal(obj)
		if err := json.Unmarshal(b, &st.Inputs); err != nil {
			return st, obj, fmt.Errorf("decode recorded inputs: %w", err)
		}
	}
	if len(bytes.TrimSpace(s.Outputs.JSON)) > 0 && !isNull(s.Outputs.JSON) {
		if err := json.Unmarshal(s.Outputs.JSON, &st.Outputs); err != nil {
			return st, obj, fmt.Errorf("decode recorded outputs: %w", err)
		}
		st.HasOutputs = true
	}
	return st, obj, nil
}

func (t *Type[In, Out]) validate(req resource.ValidateRequest) resource.Diagnostics {
	_, _, diags := t.decode(req.Inputs.JSON, req.Unknown)
	return diags
}

func (t *Type[In, Out]) outputNames() []string {
	names := make([]string, len(t.Outputs))
	for i, o := range t.Outputs {
		names[i] = o.Name
	}
	return names
}

func (t *Type[In, Out]) plan(ctx context.Context, req resource.PlanRequest) (*resource.PlanResponse, error) {
	desired, desiredObj, diags := t.decode(req.Desired.JSON, req.Unknown)
	if diags.HasError() {
		return &resource.PlanResponse{Diagnostics: diags}, nil
	}
	p := &Plan[In, Out]{Desired: desired, Unknown: req.Unknown, Diagnostics: diags, Describe: req.Describe, outputNames: t.outputNames()}
	if req.Prior == nil {
		p.Action = resource.ActionCreate
		p.UnknownOutputs = t.outputNames()
	} else {
		recorded, _, err := t.upgrade(ctx, req.Type, *req.Prior)
		if err != nil {
			return &resource.PlanResponse{Diagnostics: resource.Diagnostics{resource.Error(nil, "cannot read recorded state", "%v", err)}}, nil
		}
		prior, priorObj, err := t.decodeStateChecked(recorded)
		if err != nil {
			return &resource.PlanResponse{Diagnostics: resource.Diagnostics{resource.Error(nil, "cannot read recorded state", "%v", err)}}, nil
		}
		p.Prior = &prior
		p.Changed, p.RequiresReplace = changedAttrs(t.inputAttributes(), priorObj, desiredObj, req.Unknown)
		if prior.HasOutputs {
			p.Changed = t.dropSame(p.Changed, prior.Inputs, desired, req.Unknown)
			p.RequiresReplace = t.keepReplacing(t.dropSame(p.RequiresReplace, prior.Inputs, desired, req.Unknown), prior.Inputs, desired, req.Unknown)
		}
		switch {
		case !prior.HasOutputs:
			p.Action = resource.ActionCreate
		case len(p.RequiresReplace) > 0 || (len(p.Changed) > 0 && t.Update == nil):
			p.Action = resource.ActionReplace
		case len(p.Changed) > 0:
			p.Action = resource.ActionUpdate
		default:
			p.Action = resource.ActionNoop
		}
		if p.Action == resource.ActionNoop {
			p.Planned = structToMap(prior.Outputs)
		} else {
			p.UnknownOutputs = t.outputNames()
		}
		if p.Action == resource.ActionUpdate {
			t.keepPriorOutputs(p)
		}
	}
	if t.Plan != nil {
		t.Plan(ctx, p)
	}
	planned, _ := json.Marshal(p.Planned)
	if p.Planned == nil {
		planned = []byte("{}")
	}
	return &resource.PlanResponse{
		Action: p.Action, Changed: p.Changed, RequiresReplace: p.RequiresReplace,
		PlannedOutputs: planned, UnknownOutputs: p.UnknownOutputs, Diagnostics: p.Diagnostics,
		Claims: p.Claims, Details: p.Details,
	}, nil
}

// dropSame leaves out of paths the inputs that SameInput says mean the
// same as recorded.
func (t *Type[In, Out]) dropSame(paths []resource.Path, prior, desired In, unknown []resource.Path) []resource.Path {
	return slices.DeleteFunc(paths, func(p resource.Path) bool {
		same := t.SameInput[p[0].Name]
		return same != nil && !resource.Covered(p, unknown) && same(prior, desired)
	})
}

// keepReplacing leaves out of paths the inputs whose change ReplaceIf
// lets through as an update.
func (t *Type[In, Out]) keepReplacing(paths []resource.Path, prior, desired In, unknown []resource.Path) []resource.Path {
	return slices.DeleteFunc(paths, func(p resource.Path) bool {
		replaces := t.ReplaceIf[p[0].Name]
		return replaces != nil && !resource.Covered(p, unknown) && !replaces(prior, desired)
	})
}

// keepPriorOutputs plans, for an update, the outputs declared KeepPrior
// whose inputs did not change as their recorded values.
func (t *Type[In, Out]) keepPriorOutputs(p *Plan[In, Out]) {
	prior := structToMap(p.Prior.Outputs)
	for _, o := range t.Outputs {
		v := prior[o.Name]
		if !o.keepPrior || isEmptyJSONValue(v) || slices.ContainsFunc(o.keepFrom, func(in string) bool {
			return slices.ContainsFunc(p.Changed, func(c resource.Path) bool { return c[0].Name == in })
		}) {
			continue
		}
		if p.Planned == nil {
			p.Planned = map[string]any{}
		}
		p.Planned[o.Name] = v
		p.UnknownOutputs = slices.DeleteFunc(p.UnknownOutputs, func(n string) bool { return n == o.Name })
	}
}

// isEmptyJSONValue reports whether a decoded JSON value is absent, null or
// its type's zero value.
func isEmptyJSONValue(v any) bool {
	return v == nil || reflect.ValueOf(v).IsZero()
}

func structToMap(v any) map[string]any {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	return m
}

// result turns an operation's outcome into a protocol result, marking the
// sensitive outputs.
func (t *Type[In, Out]) result(out Out, err error) *resource.Result {
	if err != nil {
		return &resource.Result{Diagnostics: errorDiagnostics(err)}
	}
	b, mErr := json.Marshal(out)
	if mErr != nil {
		return &resource.Result{Diagnostics: resource.Diagnostics{resource.Error(nil, "cannot encode outputs", "%v", mErr)}}
	}
	return &resource.Result{HasState: true, Outputs: resource.Values{JSON: b, Sensitive: resource.DeclaredSensitive(t.outputAttributes(), b)}, SchemaVersion: int64(t.Version)}
}

// inputSecrets adds to v's sensitive paths those the type's inputs declare
// (inside lists and maps of objects too), whether the engine marked them
// or not.
func (t *Type[In, Out]) inputSecrets(v resource.Values) resource.Values {
	return withDeclaredSensitive(v, t.inputAttributes())
}

// outputSecrets is inputSecrets for outputs.
func (t *Type[In, Out]) outputSecrets(v resource.Values) resource.Values {
	return withDeclaredSensitive(v, t.outputAttributes())
}

func withDeclaredSensitive(v resource.Values, attrs []resource.Attribute) resource.Values {
	v.Sensitive = append(v.Sensitive[:len(v.Sensitive):len(v.Sensitive)], resource.DeclaredSensitive(attrs, v.JSON)...)
	return v
}

// ErrorAt returns an error about the input at path, for Create, Update,
// Delete, Read and Prepare: the engine reports it as
// "member NAME (TYPE): inputs.PATH: summary: detail". It keeps its path
// when wrapped with %w.
func ErrorAt(path resource.Path, summary, detailf string, args ...any) error {
	return resource.Diagnostics{resource.Error(path, summary, detailf, args...)}.Err()
}

// errorDiagnostics turns an error into diagnostics; an error that carries
// diagnostics (an attribute path, say), wrapped or not, keeps them.
func errorDiagnostics(err error) resource.Diagnostics {
	var de *resource.DiagnosticsError
	if errors.As(err, &de) {
		if err == error(de) {
			return de.Diagnostics
		}
		// Wrapped: keep the paths, and put what the wrapping added
		// before the first error's summary.
		ds := append(resource.Diagnostics(nil), de.Diagnostics...)
		if prefix, ok := strings.CutSuffix(err.Error(), de.Error()); ok && prefix != "" {
			for i := range ds {
				if ds[i].Severity == resource.SeverityError {
					ds[i].Summary = prefix + ds[i].Summary
					break
				}
			}
		}
		return ds
	}
	return resource.Diagnostics{{Severity: resource.SeverityError, Summary: err.Error()}}
}

func (t *Type[In, Out]) create(ctx context.Context, req resource.CreateRequest, sink resource.EventSink) (*resource.Result, error) {
	in, _, diags := t.decode(req.Inputs.JSON, nil)
	if diags.HasError() {
		return &resource.Result{Diagnostics: diags}, nil
	}
	op := newOp(req.Type, req.Name, sink, t.inputSecrets(req.Inputs))
	out, err := t.Create(ctx, op, in)
	return op.withWarnings(t.result(out, err)), nil
}

func (t *Type[In, Out]) update(ctx context.Context, req resource.UpdateRequest, sink resource.EventSink) (*resource.Result, error) {
	in, _, diags := t.decode(req.Inputs.JSON, nil)
	if diags.HasError() {
		return &resource.Result{HasState: true, Outputs: req.Prior.Outputs, Private: req.Prior.Private, Diagnostics: diags, SchemaVersion: req.Prior.SchemaVersion}, nil
	}
	keep := func(diags resource.Diagnostics) *resource.Result {
		return &resource.Result{HasState: true, Outputs: req.Prior.Outputs, Private: req.Prior.Private, Diagnostics: diags, SchemaVersion: req.Prior.SchemaVersion}
	}
	recorded, _, err := t.upgrade(ctx, req.Type, req.Prior)
	if err != nil {
		return keep(errorDiagnostics(err)), nil
	}
	prior, err := t.decodeState(recorded)
	if err != nil {
		return keep(errorDiagnostics(err)), nil
	}
	if t.Update == nil {
		return keep(resource.Diagnostics{resource.Error(nil, "resource type cannot be updated in place", "%s", req.Type)}), nil
	}
	op := newOp(req.Type, req.Name, sink, t.inputSecrets(req.Inputs), t.inputSecrets(recorded.Inputs), t.outputSecrets(recorded.Outputs))
	out, err := t.Update(ctx, op, prior, in)
	if err != nil {
		// The resource is as it was: keep the prior state with the error.
		return op.withWarnings(keep(errorDiagnostics(err))), nil
	}
	return op.withWarnings(t.result(out, nil)), nil
}

func (t *Type[In, Out]) delete(ctx context.Context, req resource.DeleteRequest, sink resource.EventSink) (*resource.Result, error) {
	// A failed delete keeps the state as it was recorded.
	keep := func(err error) *resource.Result {
		return &resource.Result{HasState: true, Outputs: req.Prior.Outputs, Private: req.Prior.Private, Diagnostics: errorDiagnostics(err), SchemaVersion: req.Prior.SchemaVersion}
	}
	recorded, _, err := t.upgrade(ctx, req.Type, req.Prior)
	if err != nil {
		return keep(err), nil
	}
	prior, err := t.decodeState(recorded)
	if err != nil {
		return keep(err), nil
	}
	if t.Delete != nil {
		op := newOp(req.Type, req.Name, sink, t.inputSecrets(recorded.Inputs), t.outputSecrets(recorded.Outputs))
		op.Replacing = req.Replacing
		if err := t.Delete(ctx, op, prior); err != nil {
			return op.withWarnings(keep(err)), nil
		}
		return op.withWarnings(&resource.Result{}), nil
	}
	return &resource.Result{}, nil
}

func (t *Type[In, Out]) read(ctx context.Context, req resource.ReadRequest) (*resource.ReadResponse, error) {
	// A failed read leaves the recorded state as it is.
	keep := func(err error) *resource.ReadResponse {
		return &resource.ReadResponse{Exists: true, Outputs: req.Prior.Outputs, Private: req.Prior.Private, Diagnostics: errorDiagnostics(err), SchemaVersion: req.Prior.SchemaVersion}
	}
	recorded, upgraded, err := t.upgrade(ctx, req.Type, req.Prior)
	if err != nil {
		return keep(err), nil
	}
	prior, err := t.decodeState(recorded)
	if err != nil {
		return keep(err), nil
	}
	resp := &resource.ReadResponse{Exists: prior.HasOutputs, Outputs: recorded.Outputs, Private: recorded.Private, SchemaVersion: recorded.SchemaVersion}
	if upgraded {
		resp.UpgradedPrior = &recorded
	}
	if t.Read == nil {
		// Nothing to look at: a resource whose create was interrupted is
		// taken as absent, anything recorded as present.
		return resp, nil
	}
	out, exists, err := t.Read(ctx, prior)
	if err != nil {
		return keep(err), nil
	}
	if !exists {
		return &resource.ReadResponse{}, nil
	}
	resp.Exists, resp.Outputs = true, t.result(out, nil).Outputs
	return resp, nil
}

func (t *Type[In, Out]) prepare(ctx context.Context, req resource.PrepareRequest) resource.Diagnostics {
	if t.Prepare == nil {
		return nil
	}
	in, _, diags := t.decode(req.Inputs.JSON, nil)
	if diags.HasError() {
		return diags
	}
	var prior *State[In, Out]
	if req.Prior != nil {
		recorded, _, err := t.upgrade(ctx, req.Type, *req.Prior)
		if err != nil {
			return errorDiagnostics(err)
		}
		st, err := t.decodeState(recorded)
		if err != nil {
			return errorDiagnostics(err)
		}
		prior = &st
	}
	if err := t.Prepare(ctx, prior, in); err != nil {
		return errorDiagnostics(err)
	}
	return nil
}

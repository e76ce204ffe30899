package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"

	"github.com/landscaper-nix/landscaper/landscaper/eval"
	"github.com/landscaper-nix/landscaper/landscaper/state"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// Plan is what an apply would do.
type Plan struct {
	// Changes lists every member considered, no-ops included, sorted by
	// member path; deletions of removed members come last.
	Changes []*Change
	// Undecided lists outputs, not known yet, that decide which members
	// exist (as "member.outputs.name"). While there are any, the plan holds
	// only the members that produce them; Waiting members are planned once
	// they are applied, in the same apply. Removed members are kept until
	// the structure is decided.
	Undecided []string
	Waiting   int
	// Drift lists what refreshing found changed outside Landscaper.
	Drift []string
	// Rollouts are the declared rollouts, in batches.
	Rollouts []RolloutPlan
}

// Change is the plan of one member.
type Change struct {
	Member   string
	Type     string
	Provider string
	Action   resource.Action
	// Prior is the recorded resource, nil for a new one.
	Prior *state.Resource
	// Inputs are the desired inputs; values at Unknown paths are null.
	Inputs    json.RawMessage
	Unknown   []resource.Path
	Sensitive []resource.Path
	// Changed and RequiresReplace are input paths, as the provider says.
	Changed         []resource.Path
	RequiresReplace []resource.Path
	PlannedOutputs  json.RawMessage
	UnknownOutputs  []string
	// Deferred: Nix code computes the inputs from outputs known only after
	// apply; the member is evaluated again then.
	Deferred bool
	// WaitsFor names the outputs ("member.output") a deferred member's
	// inputs are computed from and that are not known yet.
	WaitsFor []string
	Deps     []string
	Context  map[string]eval.ContextEntry
	// Warnings are the provider's warnings about this change.
	Warnings []string
	// Claims are what the member will own alone, as its provider names
	// them; no two members may claim the same.
	Claims []string
	// Details are what the provider tells of the change beyond its
	// attributes (a NixOS system's package changes), nil when it has
	// nothing to add.
	Details *resource.ChangeDetails
}

// Counts returns how many members the plan creates, changes and destroys
// (a replacement counts as one create and one destroy).
func (p *Plan) Counts() (add, change, destroy int) {
	for _, c := range p.Changes {
		switch c.Action {
		case resource.ActionCreate:
			add++
		case resource.ActionUpdate:
			change++
		case resource.ActionReplace:
			add++
			destroy++
		case resource.ActionDelete:
			destroy++
		}
	}
	return
}

// Decided reports whether the plan knows every member that exists.
func (p *Plan) Decided() bool { return len(p.Undecided) == 0 }

func (p *Plan) setStructure(st structure) {
	p.Undecided = nil
	for _, k := range st.undecided {
		p.Undecided = append(p.Undecided, k.String())
	}
	p.Waiting = st.waiting
}

// HasChanges reports whether applying the plan would change anything.
func (p *Plan) HasChanges() bool {
	a, c, d := p.Counts()
	return a+c+d > 0 || !p.Decided()
}

// Plan evaluates the deployment, refreshes the state and asks the
// providers what they would do.
func (e *Engine) Plan(ctx context.Context) (_ *Plan, err error) {
	defer func() { err = e.redactError(err) }()
	if e.evaluator == nil {
		ev, err := eval.New(e.opts.Source)
		if err != nil {
			return nil, err
		}
		e.evaluator = ev
	}
	if err := e.startProviders(ctx); err != nil {
		return nil, err
	}
	plan := &Plan{}
	e.timeline.mark("providers started")
	if err := e.recoverPending(ctx); err != nil {
		return nil, err
	}
	if err := e.ensureRecordedProviders(ctx); err != nil {
		return nil, err
	}
	// Refreshing (asking providers what exists) and evaluating the
	// deployment do not depend on each other: do both at once, then
	// evaluate again in the rare case that refreshing changed a recorded
	// output.
	var reads refreshed
	done := make(chan struct{})
	go func() {
		defer close(done)
		if !e.opts.NoRefresh {
			reads = e.readAll(ctx)
		}
	}()
	members, st, err := e.evaluateAll(ctx)
	e.timeline.mark("evaluated (%d nix invocations so far)", e.evaluator.Invocations())
	<-done
	e.timeline.mark("refreshed (%d reads)", len(reads))
	if err != nil {
		return nil, err
	}
	drift, err := e.applyRefresh(reads)
	if err != nil {
		return nil, err
	}
	plan.Drift = drift
	if len(drift) > 0 {
		if members, st, err = e.evaluateAll(ctx); err != nil {
			return nil, err
		}
	}
	e.mu.Lock()
	e.members = members
	e.mu.Unlock()
	plan.setStructure(st)
	if plan.Decided() {
		if err := e.checkRollouts(); err != nil {
			return nil, err
		}
	}
	plan.Rollouts = e.rolloutPlans()
	e.mu.Lock()
	startValues := maps.Clone(e.values)
	e.mu.Unlock()
	planned, err := e.planMembers(ctx, plan)
	e.timeline.mark("planned")
	if err != nil || !planned.Decided() {
		return planned, err
	}
	moved := e.structureMoved()
	if len(moved) == 0 {
		return planned, nil
	}
	// Which members exist was decided with recorded outputs that this
	// plan changes: it is not decided. Plan what produces those outputs;
	// the rest is planned once they are known, in the same apply.
	st.undecided = moved
	e.mu.Lock()
	e.members, st.waiting = keepProducers(members, moved)
	e.values = startValues
	e.mu.Unlock()
	partial := &Plan{Drift: plan.Drift}
	partial.setStructure(st)
	partial.Rollouts = plan.Rollouts
	return e.planMembers(ctx, partial)
}

// structureMoved lists the recorded outputs the structure was evaluated
// with that the plan does not keep: unknown now, or another value.
func (e *Engine) structureMoved() []eval.Key {
	e.mu.Lock()
	defer e.mu.Unlock()
	var moved []eval.Key
	for k, was := range e.structureAssumed {
		if v := e.values[k]; !v.Known || !jsonSame(v.JSON, was) {
			moved = append(moved, k)
		}
	}
	sort.Slice(moved, func(i, j int) bool { return moved[i].String() < moved[j].String() })
	return moved
}

// planMembers plans every member in dependency order, then the deletions.
func (e *Engine) planMembers(ctx context.Context, plan *Plan) (*Plan, error) {
	for _, r := range e.opts.Replace {
		e.mu.Lock()
		_, ok := e.members[r]
		e.mu.Unlock()
		if !ok {
			return nil, fmt.Errorf("--replace %s: no such member in the deployment", r)
		}
	}
	selected, err := e.selected(ctx)
	if err != nil {
		return nil, err
	}
	// What planning starts from: a failed speculation plans again from
	// here, not from values and evaluations that assumed recorded outputs.
	e.mu.Lock()
	startMembers := maps.Clone(e.members)
	startValues := maps.Clone(e.values)
	e.mu.Unlock()
	// Members whose inputs can be resolved from the recorded outputs are
	// planned all at once first; a member found unchanged needs no wait
	// for its dependencies' plans (a no-op plan of a long chain is one
	// parallel round, not one plan after another).
	speculated, err := e.speculate(ctx, selected)
	e.timeline.mark("planned in batches (%d)", len(speculated.changes))
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	changes := map[string]*Change{}
	var errs []error
	w := &walker{
		parallelism: e.opts.Parallelism,
		deps:        e.depsOf,
		evaluate:    e.reevaluate,
		handle: func(ctx context.Context, path string) outcome {
			if c, ok := speculated.changes[path]; ok {
				mu.Lock()
				defer mu.Unlock()
				changes[path] = c
				return outcomeDone
			}
			c, out, err := e.planMember(ctx, path)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return outcomeFailed
			}
			if c != nil {
				changes[path] = c
			}
			return out
		},
	}
	if _, err := w.run(ctx, selected); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if !e.speculationHeld(speculated) {
		// A member planned unchanged assumed outputs that do change: plan
		// again, one member after what it needs. Whatever was planned or
		// evaluated with the assumed values is forgotten: a member
		// evaluated with an output that will change would otherwise keep
		// the old value in its inputs.
		e.mu.Lock()
		e.members = startMembers
		e.values = startValues
		e.mu.Unlock()
		e.noSpeculation = true
		defer func() { e.noSpeculation = false }()
		return e.planMembers(ctx, plan)
	}
	paths := make([]string, 0, len(changes))
	for p := range changes {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		plan.Changes = append(plan.Changes, changes[p])
	}
	owners, err := claimsOf(plan.Changes)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.claims = owners
	e.mu.Unlock()
	plan.Changes = append(plan.Changes, e.planDeletions(!plan.Decided())...)
	return plan, nil
}

// speculation is what speculate found: members unchanged given the
// recorded outputs they use.
type speculation struct {
	changes map[string]*Change
	// assumed holds the recorded output values those plans used.
	assumed map[eval.Key]json.RawMessage
}

// recordedValue returns a member's recorded output, as a value for
// substitution.
func (e *Engine) recordedValue(k eval.Key) (eval.Value, bool) {
	r := e.state.Resources[k.Member]
	if r == nil || r.Tainted {
		return eval.Value{}, false
	}
	v, ok := resource.Lookup(r.Outputs, resource.AttrPath(k.Output))
	if !ok {
		return eval.Value{}, false
	}
	sensitive := resource.Covered(resource.AttrPath(k.Output), r.SensitiveOutputs)
	if schema, ok := e.schemas[r.Type]; ok {
		if o, ok := schema.Output(k.Output); ok && o.Sensitive {
			sensitive = true
		}
	}
	return eval.Value{JSON: v, Known: true, Sensitive: sensitive}, true
}

// speculate plans, in batches, what can be planned before the walk: the
// members whose inputs use no output, whose plans are final whatever they
// do; and the recorded members whose inputs only pass on or interpolate
// outputs, assuming those outputs stay as recorded, whose plans are kept
// only when they change nothing. The walk plans the rest one by one.
func (e *Engine) speculate(ctx context.Context, selected []string) (speculation, error) {
	spec := speculation{changes: map[string]*Change{}, assumed: map[eval.Key]json.RawMessage{}}
	type item struct {
		m     *member
		prior *state.Resource
		sub   eval.Substituted
		used  map[eval.Key]json.RawMessage
		final bool
	}
	byProvider := map[string][]*item{}
	for _, path := range selected {
		e.mu.Lock()
		m := e.members[path]
		prior := e.state.Resources[path]
		e.mu.Unlock()
		if m == nil || !onlyAssumed(m) {
			continue
		}
		final := len(m.deps) == 0 && len(m.evalKnown) == 0 && !(e.opts.Build && len(m.context) > 0)
		if !final && (e.noSpeculation || prior == nil || prior.Type != m.typ || prior.Tainted) {
			continue
		}
		it := &item{m: m, prior: prior, final: final, used: map[eval.Key]json.RawMessage{}}
		sub, err := e.substituteWith(m, func(k eval.Key) eval.Value {
			v, _ := e.recordedValue(k)
			it.used[k] = v.JSON
			return v
		})
		if err != nil || len(sub.Unknown) > 0 {
			continue
		}
		// A member evaluated alone assumed the values it was given.
		maps.Copy(it.used, m.assumed)
		it.sub = sub
		byProvider[m.provider] = append(byProvider[m.provider], it)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, items := range byProvider {
		_, p, err := e.providerFor(items[0].m.typ)
		if err != nil {
			continue // the walk reports it
		}
		reqs := make([]resource.PlanRequest, len(items))
		for i, it := range items {
			reqs[i] = e.planRequest(it.m, it.prior, it.sub, it.final && e.opts.Describe)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			resource.PlanEach(ctx, p, reqs, e.opts.Parallelism, func(i int, resp *resource.PlanResponse, err error) {
				it := items[i]
				c, err := e.changeFromPlan(it.m, it.prior, it.sub, resp, err)
				if err != nil {
					return // the walk plans it again and reports the error
				}
				if !it.final && (c.Action != resource.ActionNoop || !jsonSame(c.PlannedOutputs, it.prior.Outputs)) {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				spec.changes[it.m.path] = c
				for k, v := range it.used {
					spec.assumed[k] = v
				}
			})
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return spec, err
	}
	// The outputs these plans know are known.
	for path, c := range spec.changes {
		e.recordPlannedOutputs(e.members[path], c)
	}
	return spec, nil
}

// onlyAssumed reports whether every output a member's Nix code computes
// with had a value when it was evaluated alone (member.assumed): its
// inputs hold if those values do.
func onlyAssumed(m *member) bool {
	for _, k := range m.analysis.Opaque {
		if _, ok := m.assumed[k]; !ok {
			return false
		}
	}
	return true
}

// speculationHeld reports whether every output a speculative plan assumed
// is what planning found.
func (e *Engine) speculationHeld(spec speculation) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for k, assumed := range spec.assumed {
		v := e.values[k]
		if !v.Known || !jsonSame(v.JSON, assumed) {
			return false
		}
	}
	return true
}

func (e *Engine) depsOf(path string) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if m, ok := e.members[path]; ok {
		return m.deps
	}
	return nil
}

// selected returns the members to plan: all, or the targets and what they
// need. Members that compute with outputs nobody can see are traced first,
// so that what they need is known.
func (e *Engine) selected(ctx context.Context) ([]string, error) {
	if len(e.opts.Targets) == 0 {
		e.mu.Lock()
		defer e.mu.Unlock()
		all := make([]string, 0, len(e.members))
		for p := range e.members {
			all = append(all, p)
		}
		sort.Strings(all)
		return all, nil
	}
	for {
		closure, untraced, err := e.targetClosure()
		if err != nil || len(untraced) == 0 {
			return closure, err
		}
		if err := e.traceMembers(ctx, untraced); err != nil {
			return nil, err
		}
	}
}

// targetClosure returns the targets and what they need, and the members
// among them whose needs are not all known until they are traced.
func (e *Engine) targetClosure() (closure, untraced []string, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	seen := map[string]bool{}
	var visit func(p string)
	visit = func(p string) {
		if seen[p] {
			return
		}
		seen[p] = true
		m, ok := e.members[p]
		if !ok {
			return
		}
		for _, k := range m.analysis.Opaque {
			if k == (eval.Key{}) && !m.traced {
				untraced = append(untraced, p)
				break
			}
		}
		for _, d := range m.deps {
			visit(d)
		}
	}
	for _, t := range e.opts.Targets {
		if _, ok := e.members[t]; !ok {
			if _, inState := e.state.Resources[t]; !inState {
				return nil, nil, fmt.Errorf("--target %s: no such member", t)
			}
			continue
		}
		visit(t)
	}
	for p := range seen {
		if _, ok := e.members[p]; ok {
			closure = append(closure, p)
		}
	}
	sort.Strings(closure)
	return closure, untraced, nil
}

func (e *Engine) targeted(path string) bool {
	if len(e.opts.Targets) == 0 {
		return true
	}
	for _, t := range e.opts.Targets {
		if t == path {
			return true
		}
	}
	return false
}

// planMember plans one member whose dependencies are planned.
func (e *Engine) planMember(ctx context.Context, path string) (*Change, outcome, error) {
	e.mu.Lock()
	m := e.members[path]
	prior := e.state.Resources[path]
	e.mu.Unlock()
	r, err := e.readinessOf(m)
	if err != nil {
		return nil, outcomeFailed, &MemberError{Member: path, Type: m.typ, Err: err}
	}
	switch r {
	case needsEval:
		return nil, outcomeNeedsEval, nil
	case blocked:
		c, err := e.planBlocked(ctx, m, prior)
		if err != nil {
			return nil, outcomeFailed, err
		}
		return c, outcomeDone, nil
	}
	sub, err := e.substitute(m)
	if err != nil {
		return nil, outcomeFailed, &MemberError{Member: path, Type: m.typ, Err: err}
	}
	if e.opts.Build {
		if err := e.evaluator.Realise(ctx, m.context); err != nil {
			return nil, outcomeFailed, &MemberError{Member: path, Type: m.typ, Err: err}
		}
	}
	c, err := e.askPlan(ctx, m, prior, sub, e.opts.Describe)
	if err != nil {
		return nil, outcomeFailed, err
	}
	return c, outcomeDone, nil
}

// unknownOpaque names the outputs a member's Nix code computes with that
// are not known now, as "member.output", sorted.
func (e *Engine) unknownOpaque(m *member) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, k := range m.analysis.Opaque {
		if k == (eval.Key{}) || m.evalKnown[k] || e.values[k].Known {
			continue
		}
		name := k.Member + "." + k.Output
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// askPlan asks the member's provider for a plan and records what it says
// of the outputs; describe asks for the change's details too.
func (e *Engine) askPlan(ctx context.Context, m *member, prior *state.Resource, sub eval.Substituted, describe bool) (*Change, error) {
	c, err := e.askPlanQuiet(ctx, m, prior, sub, describe)
	if err != nil {
		return nil, err
	}
	e.recordPlannedOutputs(m, c)
	return c, nil
}

// askPlanQuiet asks the member's provider for a plan.
func (e *Engine) askPlanQuiet(ctx context.Context, m *member, prior *state.Resource, sub eval.Substituted, describe bool) (*Change, error) {
	_, p, err := e.providerFor(m.typ)
	if err != nil {
		return nil, &MemberError{Member: m.path, Type: m.typ, Err: err}
	}
	resp, err := p.Plan(ctx, e.planRequest(m, prior, sub, describe))
	return e.changeFromPlan(m, prior, sub, resp, err)
}

// replacing reports whether a member with a recorded resource of its type
// is replaced although its inputs may not have changed: tainted, or
// --replace (requested).
func (e *Engine) replacing(m *member, prior *state.Resource) (forced, requested bool) {
	sameType := prior != nil && prior.Type == m.typ
	requested = sameType && slices.Contains(e.opts.Replace, m.path)
	return sameType && (prior.Tainted || requested), requested
}

// planRequest is the plan request for a member. A member replaced
// although its inputs may not have changed is planned as the new object
// it becomes: as a create, so that outputs the new object will have anew
// are unknown.
func (e *Engine) planRequest(m *member, prior *state.Resource, sub eval.Substituted, describe bool) resource.PlanRequest {
	var priorState *resource.State
	if forced, _ := e.replacing(m, prior); prior != nil && prior.Type == m.typ && !forced {
		priorState = recordToState(prior)
	}
	return resource.PlanRequest{Type: m.typ, Name: m.path, Prior: priorState, Desired: resource.Values{JSON: sub.JSON, Sensitive: sub.Sensitive}, Unknown: sub.Unknown, Describe: describe}
}

// changeFromPlan is the change a provider's answer to planRequest plans.
func (e *Engine) changeFromPlan(m *member, prior *state.Resource, sub eval.Substituted, resp *resource.PlanResponse, err error) (*Change, error) {
	if err != nil {
		return nil, &MemberError{Member: m.path, Type: m.typ, Err: fmt.Errorf("plan: %w", err)}
	}
	if err := diagError(resp.Diagnostics); err != nil {
		return nil, &MemberError{Member: m.path, Type: m.typ, Err: err}
	}
	c := &Change{
		Member: m.path, Type: m.typ, Provider: m.provider, Action: resp.Action, Prior: prior,
		Inputs: sub.JSON, Unknown: sub.Unknown, Sensitive: sub.Sensitive,
		Changed: resp.Changed, RequiresReplace: resp.RequiresReplace,
		PlannedOutputs: resp.PlannedOutputs, UnknownOutputs: resp.UnknownOutputs,
		Deps: m.deps, Context: m.context, Claims: resp.Claims,
		Details: e.redactDetails(resp.Details),
	}
	for _, d := range resp.Diagnostics {
		if d.Severity == resource.SeverityWarning {
			w := d.Summary
			if d.Detail != "" {
				w += ": " + d.Detail
			}
			c.Warnings = append(c.Warnings, e.redact.Redact(w))
		}
	}
	forced, requested := e.replacing(m, prior)
	switch {
	case prior != nil && prior.Type != m.typ:
		c.Action = resource.ActionReplace
		c.RequiresReplace = append(c.RequiresReplace, resource.AttrPath("type"))
	case forced:
		c.Action = resource.ActionReplace
		if requested {
			c.Warnings = append(c.Warnings, "replaced on request (--replace)")
		}
	}
	if c.Action == resource.ActionUnspecified {
		return nil, &MemberError{Member: m.path, Type: m.typ, Err: errors.New("provider planned no action")}
	}
	return c, nil
}

// redactDetails keeps any known secret out of what a provider tells of a
// change: details are shown and saved as they are.
func (e *Engine) redactDetails(d *resource.ChangeDetails) *resource.ChangeDetails {
	if d == nil {
		return nil
	}
	out := &resource.ChangeDetails{Summary: e.redact.Redact(d.Summary)}
	for _, l := range d.Lines {
		out.Lines = append(out.Lines, e.redact.Redact(l))
	}
	if len(d.JSON) > 0 {
		if j := e.redact.Redact(string(d.JSON)); json.Valid([]byte(j)) {
			out.JSON = json.RawMessage(j)
		}
	}
	return out
}

func outputNames(s *resource.TypeSchema) []string {
	names := make([]string, len(s.Outputs))
	for i, o := range s.Outputs {
		names[i] = o.Name
	}
	return names
}

func (e *Engine) setUnknownOutputs(path string, names []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, n := range names {
		e.values[eval.Key{Member: path, Output: n}] = eval.Value{}
	}
}

// recordPlannedOutputs makes the outputs a plan knows available to the
// members that use them.
func (e *Engine) recordPlannedOutputs(m *member, c *Change) {
	var planned map[string]json.RawMessage
	_ = json.Unmarshal(c.PlannedOutputs, &planned)
	unknown := map[string]bool{}
	for _, n := range c.UnknownOutputs {
		unknown[n] = true
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, o := range m.schema.Outputs {
		k := eval.Key{Member: m.path, Output: o.Name}
		v, ok := planned[o.Name]
		if !ok || unknown[o.Name] {
			e.values[k] = eval.Value{Sensitive: o.Sensitive}
			continue
		}
		e.values[k] = eval.Value{JSON: v, Known: true, Sensitive: o.Sensitive}
		if o.Sensitive {
			e.learnSecretAt(c.PlannedOutputs, resource.AttrPath(o.Name))
		}
	}
}

// setOutputs records the outputs of an applied member.
func (e *Engine) setOutputs(m *member, outputs resource.Values) {
	var got map[string]json.RawMessage
	_ = json.Unmarshal(outputs.JSON, &got)
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, o := range m.schema.Outputs {
		sensitive := o.Sensitive || resource.Covered(resource.AttrPath(o.Name), outputs.Sensitive)
		v, ok := got[o.Name]
		if !ok {
			v = json.RawMessage("null")
		}
		e.values[eval.Key{Member: m.path, Output: o.Name}] = eval.Value{JSON: v, Known: true, Sensitive: sensitive}
		if sensitive {
			e.learnSecretAt(outputs.JSON, resource.AttrPath(o.Name))
		}
	}
}

// planDeletions plans the deletion of recorded members the deployment no
// longer has, in reverse dependency order (the order is the apply's job;
// here they are sorted by path).
func (e *Engine) planDeletions(uncertain bool) []*Change {
	if uncertain {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var paths []string
	for p := range e.state.Resources {
		if _, ok := e.members[p]; !ok && e.targeted(p) {
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	out := make([]*Change, 0, len(paths))
	for _, p := range paths {
		r := e.state.Resources[p]
		out = append(out, &Change{Member: p, Type: r.Type, Provider: r.Provider, Action: resource.ActionDelete, Prior: r, Deps: r.Dependencies})
	}
	return out
}

func recordToState(r *state.Resource) *resource.State {
	return &resource.State{
		Inputs:        resource.Values{JSON: r.Inputs, Sensitive: r.SensitiveInputs},
		Outputs:       resource.Values{JSON: r.Outputs, Sensitive: r.SensitiveOutputs},
		Private:       r.Private,
		SchemaVersion: r.SchemaVersion,
	}
}

// PlanDestroy plans the deletion of every recorded member (or the targets
// and what depends on them), from the state alone.
func (e *Engine) PlanDestroy(ctx context.Context) (_ *Plan, err error) {
	defer func() { err = e.redactError(err) }()
	if err := e.recoverPending(ctx); err != nil {
		return nil, err
	}
	plan := &Plan{}
	var paths []string
	for p := range e.state.Resources {
		paths = append(paths, p)
	}
	if len(e.opts.Targets) > 0 {
		paths = dependentsClosure(e.state, e.opts.Targets)
	}
	sort.Strings(paths)
	for _, p := range paths {
		r := e.state.Resources[p]
		if r == nil {
			continue
		}
		plan.Changes = append(plan.Changes, &Change{Member: p, Type: r.Type, Provider: r.Provider, Action: resource.ActionDelete, Prior: r, Deps: r.Dependencies})
	}
	return plan, nil
}

// dependentsClosure returns the targets and every recorded member that
// depends on them, directly or not.
func dependentsClosure(s *state.State, targets []string) []string {
	in := map[string]bool{}
	for _, t := range targets {
		if _, ok := s.Resources[t]; ok {
			in[t] = true
		}
	}
	for changed := true; changed; {
		changed = false
		for p, r := range s.Resources {
			if in[p] {
				continue
			}
			for _, d := range r.Dependencies {
				if in[d] {
					in[p] = true
					changed = true
					break
				}
			}
		}
	}
	out := make([]string, 0, len(in))
	for p := range in {
		out = append(out, p)
	}
	return out
}

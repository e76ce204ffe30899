package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/landscaper-nix/landscaper/landscaper/eval"
	"github.com/landscaper-nix/landscaper/landscaper/state"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// Summary is the outcome of an apply.
type Summary struct {
	Created, Updated, Replaced, Deleted []string
	Failed                              []string
	Skipped                             []string
	// Errors holds one error per failed member (a *MemberError).
	Errors []error
	// Rounds counts plan-and-apply rounds (more than one when members
	// appeared once outputs were known).
	Rounds int
	// Rollouts says, for each declared rollout, which members were
	// updated, failed, or not reached.
	Rollouts []RolloutOutcome
}

// OK reports whether everything succeeded.
func (s *Summary) OK() bool { return len(s.Failed) == 0 && len(s.Skipped) == 0 && len(s.Errors) == 0 }

// Err returns the run's errors as one error, or nil.
func (s *Summary) Err() error { return errors.Join(s.Errors...) }

type applyRun struct {
	e       *Engine
	rec     *state.Recorder
	changes map[string]*Change
	// prewritten: members whose pending record was written before the walk,
	// with the inputs it recorded.
	prewritten map[string]json.RawMessage
	mu         sync.Mutex
	summary    *Summary
	// started: members whose provider operation was called (under mu).
	started map[string]bool
}

// Apply carries out a plan, recording state after every result, then
// evaluates again with every output known: if that shows members or inputs
// the plan could not know, it plans and applies those too.
func (e *Engine) Apply(ctx context.Context, plan *Plan) (*Summary, error) {
	rec := state.NewRecorder(e.opts.Backend, e.state)
	for _, name := range e.settled {
		// Settled in memory while planning: make sure it is written.
		rec.ClearPending(name)
	}
	e.settled = nil
	for _, name := range e.upgraded {
		if r := e.state.Resources[name]; r != nil {
			rec.SetResource(name, r)
		}
	}
	e.upgraded = nil
	summary := &Summary{}
	err := e.applyRounds(ctx, rec, plan, summary)
	if len(e.rollouts) > 0 {
		changes := map[string]*Change{}
		for _, c := range plan.Changes {
			changes[c.Member] = c
		}
		summary.Rollouts = e.rolloutOutcomes(changes, summary)
		for _, o := range summary.Rollouts {
			e.emit(Event{Kind: EventInfo, Message: o.String()})
		}
	}
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if cerr := rec.Close(closeCtx); cerr != nil {
		err = errors.Join(err, fmt.Errorf("save state: %w", cerr))
	}
	e.state = rec.Snapshot()
	e.timeline.mark("state saved")
	return summary, e.redactError(err)
}

func (e *Engine) applyRounds(ctx context.Context, rec *state.Recorder, plan *Plan, summary *Summary) error {
	const maxRounds = 10
	for round := 1; ; round++ {
		summary.Rounds = round
		if err := e.applyPlan(ctx, rec, plan, summary); err != nil {
			return err
		}
		if !summary.OK() || ctx.Err() != nil || e.evaluator == nil {
			return ctx.Err()
		}
		again, err := e.needsAnotherRound(ctx, plan)
		e.timeline.mark("checked with the outputs known")
		if err != nil || !again {
			return err
		}
		if round == maxRounds {
			return fmt.Errorf("the deployment still changed after %d rounds of evaluation", maxRounds)
		}
		e.state = rec.Snapshot()
		e.emit(Event{Kind: EventInfo, Message: "evaluating again with the outputs now known"})
		members, st, err := e.evaluateAll(ctx)
		if err != nil {
			return err
		}
		e.mu.Lock()
		e.members = members
		e.mu.Unlock()
		decided := plan.Decided()
		plan = &Plan{}
		plan.setStructure(st)
		plan, err = e.planMembers(ctx, plan)
		if err != nil {
			return err
		}
		if !plan.HasChanges() {
			return nil
		}
		if decided {
			// A complete plan was shown and applied: work found now is
			// work nobody approved. It is not done.
			var members []string
			for _, c := range plan.Changes {
				if c.Action != resource.ActionNoop {
					members = append(members, c.Member+" ("+c.Action.String()+")")
				}
			}
			return fmt.Errorf("after applying the plan, evaluating the deployment with the outputs now known finds changes the plan did not show: %s; they were not made. This is a Landscaper bug (please report it with the deployment); run plan and apply again to make them", strings.Join(members, ", "))
		}
	}
}

// needsAnotherRound evaluates with every output known and compares with
// what was applied. It is skipped when nothing was unknown.
func (e *Engine) needsAnotherRound(ctx context.Context, plan *Plan) (bool, error) {
	if !plan.Decided() {
		return true, nil
	}
	anyUnknown := false
	for _, c := range plan.Changes {
		if c.Deferred || len(c.Unknown) > 0 || (c.Action != resource.ActionNoop && c.Action != resource.ActionDelete && len(c.UnknownOutputs) > 0) {
			anyUnknown = true
		}
	}
	if !anyUnknown {
		return false, nil
	}
	known, _ := e.knownForNix()
	res, err := e.evaluator.Evaluate(ctx, eval.Request{Types: e.types, Known: known})
	if err != nil {
		return false, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	again := len(res.Members) != len(e.members) && len(e.opts.Targets) == 0
	for _, em := range res.Members {
		m, ok := e.members[em.Path]
		if !ok {
			again = again || len(e.opts.Targets) == 0
			continue
		}
		if em.Type != m.typ {
			again = true
			continue
		}
		now, err := e.tokens.Substitute(em.Inputs, func(k eval.Key) eval.Value { return e.values[k] })
		if err != nil {
			return false, err
		}
		before, err := e.tokens.Substitute(m.inputs, func(k eval.Key) eval.Value { return e.values[k] })
		if err != nil {
			return false, err
		}
		if !jsonSame(now.JSON, before.JSON) {
			// Substitution was not enough for this member: from now on
			// its inputs are evaluated with the real values.
			e.evaluateAgain[em.Path] = true
			again = true
		}
	}
	return again, nil
}

func (e *Engine) applyPlan(ctx context.Context, rec *state.Recorder, plan *Plan, summary *Summary) error {
	run := &applyRun{e: e, rec: rec, changes: map[string]*Change{}, prewritten: map[string]json.RawMessage{}, summary: summary, started: map[string]bool{}}
	var deletes, others []string
	for _, c := range plan.Changes {
		run.changes[c.Member] = c
		if c.Action == resource.ActionDelete {
			deletes = append(deletes, c.Member)
		} else {
			others = append(others, c.Member)
		}
	}
	// One durable write records every operation whose inputs are known
	// already, before any of them starts.
	for _, c := range plan.Changes {
		if c.Action == resource.ActionNoop || c.Deferred || len(c.Unknown) > 0 {
			continue
		}
		rec.SetPending(c.Member, run.pendingFor(c, c.Inputs, c.Sensitive))
		run.prewritten[c.Member] = c.Inputs
	}
	defer run.clearUnstarted()
	if err := rec.Sync(ctx); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	e.timeline.mark("pending operations recorded")
	// Deletions first, dependents before what they depended on.
	dependents := reverseDeps(deletes, func(p string) []string { return run.changes[p].Deps })
	w := &walker{
		parallelism: e.opts.Parallelism,
		deps:        func(p string) []string { return dependents[p] },
		handle:      run.applyMember,
		evaluate:    func(context.Context, []string) error { return nil },
		skipped:     run.skip,
	}
	if _, err := w.run(ctx, deletes); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	run.prepareRollouts(ctx)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	w = &walker{
		parallelism: e.opts.Parallelism,
		deps:        e.applyDeps,
		handle:      run.applyMember,
		evaluate:    e.reevaluate,
		skipped:     run.skip,
		tolerate:    e.tolerates,
	}
	if _, err := w.run(ctx, others); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	e.timeline.mark("applied (%d changes)", len(plan.Changes))
	return ctx.Err()
}

func reverseDeps(nodes []string, deps func(string) []string) map[string][]string {
	in := map[string]bool{}
	for _, n := range nodes {
		in[n] = true
	}
	out := map[string][]string{}
	for _, n := range nodes {
		for _, d := range deps(n) {
			if in[d] {
				out[d] = append(out[d], n)
			}
		}
	}
	return out
}

// markStarted notes that the provider is called for member's operation.
func (r *applyRun) markStarted(member string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.started[member] = true
}

// clearUnstarted removes the pending records written ahead for operations
// that never started (their member was skipped, failed before its
// operation, needed no change after all, or the run was interrupted
// first): only an operation that did start is left pending. The walks are
// over when it runs.
func (r *applyRun) clearUnstarted() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for member := range r.prewritten {
		if !r.started[member] {
			r.rec.ClearPending(member)
		}
	}
}

// change returns a member's planned change; it is replaced when the member
// is planned again with inputs known only during the apply.
func (r *applyRun) change(member string) *Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changes[member]
}

func (r *applyRun) skip(node, failedDep string) {
	r.mu.Lock()
	r.summary.Skipped = append(r.summary.Skipped, node)
	r.mu.Unlock()
	c := r.change(node)
	msg := r.e.notReachedBecause(node, failedDep)
	if msg == "" {
		msg = fmt.Sprintf("skipped: %s failed", failedDep)
	}
	r.e.emit(Event{Kind: EventSkipped, Member: node, Type: c.Type, Action: c.Action, Message: msg})
}

func (r *applyRun) pendingFor(c *Change, inputs json.RawMessage, sensitive []resource.Path) *state.Pending {
	op := state.OpUpdate
	switch c.Action {
	case resource.ActionCreate:
		op = state.OpCreate
	case resource.ActionReplace:
		op = state.OpDelete
	case resource.ActionDelete:
		op = state.OpDelete
		inputs, sensitive = c.Prior.Inputs, c.Prior.SensitiveInputs
	}
	p := &state.Pending{Operation: op, Type: c.Type, Provider: c.Provider, ProviderPath: r.e.declared[c.Provider], Inputs: inputs, SensitiveInputs: sensitive, Since: time.Now().UTC()}
	if s, ok := r.e.schemas[c.Type]; ok {
		p.SchemaVersion = s.Version
	}
	if op == state.OpDelete && c.Prior != nil {
		p.Type, p.Provider, p.ProviderPath = c.Prior.Type, c.Prior.Provider, c.Prior.ProviderPath
		p.Inputs, p.SensitiveInputs, p.SchemaVersion = c.Prior.Inputs, c.Prior.SensitiveInputs, c.Prior.SchemaVersion
	}
	return p
}

func (r *applyRun) fail(c *Change, start time.Time, err error) outcome {
	merr := &MemberError{Member: c.Member, Type: c.Type, Err: err}
	r.mu.Lock()
	r.summary.Failed = append(r.summary.Failed, c.Member)
	// What a provider says about a failure may quote a secret it was
	// given (a command's stderr): the summary holds the redacted text.
	r.summary.Errors = append(r.summary.Errors, r.e.redactError(merr))
	r.mu.Unlock()
	r.e.emit(Event{Kind: EventFailed, Member: c.Member, Type: c.Type, Action: c.Action, Message: r.e.redactError(err).Error(), Elapsed: time.Since(start)})
	return outcomeFailed
}

func (r *applyRun) succeed(c *Change, start time.Time) outcome {
	r.mu.Lock()
	switch c.Action {
	case resource.ActionCreate:
		r.summary.Created = append(r.summary.Created, c.Member)
	case resource.ActionUpdate:
		r.summary.Updated = append(r.summary.Updated, c.Member)
	case resource.ActionReplace:
		r.summary.Replaced = append(r.summary.Replaced, c.Member)
	case resource.ActionDelete:
		r.summary.Deleted = append(r.summary.Deleted, c.Member)
	}
	r.mu.Unlock()
	r.e.emit(Event{Kind: EventDone, Member: c.Member, Type: c.Type, Action: c.Action, Elapsed: time.Since(start)})
	return outcomeDone
}

// applyMember applies one member whose dependencies are applied.
func (r *applyRun) applyMember(ctx context.Context, path string) outcome {
	e := r.e
	c := r.change(path)
	shown := c
	start := time.Now()
	if c.Action == resource.ActionDelete {
		e.emit(Event{Kind: EventStarted, Member: path, Type: c.Type, Action: c.Action})
		if err := r.delete(ctx, c); err != nil {
			return r.fail(c, start, err)
		}
		return r.succeed(c, start)
	}
	e.mu.Lock()
	m := e.members[path]
	e.mu.Unlock()
	if c.Action == resource.ActionNoop && !c.Deferred && len(c.Unknown) == 0 {
		r.keepDependencies(m)
		return outcomeDone
	}
	rd, err := e.readinessOf(m)
	if err != nil {
		return r.fail(c, start, err)
	}
	switch rd {
	case needsEval:
		return outcomeNeedsEval
	case blocked:
		return r.fail(c, start, errors.New("its inputs still depend on outputs that are not known"))
	}
	var sub eval.Substituted
	if len(m.deps) == 0 && len(m.evalKnown) == 0 && !c.Deferred && len(c.Unknown) == 0 {
		// Its inputs use no output: they are what was planned.
		sub = eval.Substituted{JSON: c.Inputs, Sensitive: c.Sensitive}
	} else if sub, err = e.substitute(m); err != nil {
		return r.fail(c, start, err)
	}
	if len(sub.Unknown) > 0 {
		return r.fail(c, start, fmt.Errorf("%s still unknown", pathList(sub.Unknown)))
	}
	// Inputs known only now: ask the provider again.
	if c.Deferred || len(c.Unknown) > 0 || !jsonSame(sub.JSON, c.Inputs) {
		e.mu.Lock()
		prior := e.state.Resources[path]
		e.mu.Unlock()
		c2, err := e.askPlan(ctx, m, prior, sub, false)
		if err != nil {
			var merr *MemberError
			if errors.As(err, &merr) {
				err = merr.Err
			}
			return r.fail(c, start, err)
		}
		e.mu.Lock()
		err = checkClaim(e.claims, c2)
		e.mu.Unlock()
		if err != nil {
			return r.fail(c, start, err)
		}
		if err := checkPlannedChange(c, c2); err != nil {
			return r.fail(c, start, err)
		}
		r.mu.Lock()
		r.changes[path] = c2
		r.mu.Unlock()
		c = c2
		if shown.Action == resource.ActionReplace && c.Action == resource.ActionUpdate {
			// The other deviation: a replacement planned because an input
			// that forces one was not known is, with that input the same
			// as recorded, an update in place. Said, as the one below is.
			e.emit(Event{Kind: EventInfo, Member: path, Type: c.Type, Message: "updated in place: planned as replace while its inputs were not known; with their values known nothing forces a replacement"})
		}
		if c.Action == resource.ActionNoop {
			if shown.Action != resource.ActionNoop {
				// The one deviation a plan allows: what might have changed
				// did not. Said, so that the counts add up.
				e.emit(Event{Kind: EventInfo, Member: path, Type: c.Type, Message: fmt.Sprintf("unchanged: planned as %s while its inputs were not known; with their values known there is nothing to do", shown.Action)})
			}
			r.keepDependencies(m)
			return outcomeDone
		}
	}
	e.emit(Event{Kind: EventStarted, Member: path, Type: c.Type, Action: c.Action})
	if err := e.evaluator.Realise(ctx, m.context); err != nil {
		return r.fail(c, start, err)
	}
	if pre, ok := r.prewritten[path]; !ok || !bytes.Equal(pre, sub.JSON) {
		r.rec.SetPending(path, r.pendingFor(c, sub.JSON, sub.Sensitive))
		if err := r.rec.Sync(ctx); err != nil {
			return r.fail(c, start, fmt.Errorf("save state: %w", err))
		}
	}
	if c.Action == resource.ActionReplace {
		if err := r.delete(ctx, c); err != nil {
			return r.fail(c, start, fmt.Errorf("delete before replacing: %w", err))
		}
		r.rec.SetPending(path, &state.Pending{Operation: state.OpCreate, Type: c.Type, Provider: c.Provider, ProviderPath: e.declared[c.Provider], Inputs: sub.JSON, SensitiveInputs: sub.Sensitive, Since: time.Now().UTC()})
		if err := r.rec.Sync(ctx); err != nil {
			return r.fail(c, start, fmt.Errorf("save state: %w", err))
		}
	}
	if err := r.createOrUpdate(ctx, c, m, sub, shown); err != nil {
		return r.fail(c, start, err)
	}
	return r.succeed(c, start)
}

// keepDependencies records a member's current dependencies when they
// differ from the recorded ones (a record settled after a crash has none;
// a deployment may change what a member refers to without changing its
// inputs' values), so that deletion order stays right, and whether its
// inputs compute with outputs (which the next plan's evaluation uses).
func (r *applyRun) keepDependencies(m *member) {
	r.e.mu.Lock()
	defer r.e.mu.Unlock()
	prior := r.e.state.Resources[m.path]
	if prior == nil || (slices.Equal(prior.Dependencies, m.deps) && prior.ComputesWithOutputs == m.traced) {
		return
	}
	updated := *prior
	updated.Dependencies = append([]string(nil), m.deps...)
	updated.ComputesWithOutputs = m.traced
	r.e.state.Resources[m.path] = &updated
	r.rec.SetResource(m.path, &updated)
}

func pathList(ps []resource.Path) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = "inputs." + p.String()
	}
	return strings.Join(s, ", ")
}

func (r *applyRun) record(m *member, c *Change, sub eval.Substituted, res *resource.Result, tainted bool) {
	rec := &state.Resource{
		Type: m.typ, Provider: m.provider, ProviderPath: r.e.declared[m.provider],
		Inputs: sub.JSON, SensitiveInputs: sub.Sensitive,
		Outputs: res.Outputs.JSON, SensitiveOutputs: sensitiveOutputs(m.schema, res.Outputs.Sensitive),
		Private: res.Private, SchemaVersion: res.SchemaVersion, Dependencies: m.deps, Tainted: tainted,
		ComputesWithOutputs: m.traced,
	}
	r.e.learnSecrets(rec)
	r.rec.SetResource(m.path, rec)
	r.e.mu.Lock()
	r.e.state.Resources[m.path] = rec
	r.e.mu.Unlock()
}

func sensitiveOutputs(s *resource.TypeSchema, marked []resource.Path) []resource.Path {
	out := append([]resource.Path{}, marked...)
	for _, o := range s.Outputs {
		p := resource.AttrPath(o.Name)
		if o.Sensitive && !resource.Covered(p, out) {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

// shown is the change the plan showed (c may be its plan again with the
// inputs known): outputs either promised must come back with those values.
func (r *applyRun) createOrUpdate(ctx context.Context, c *Change, m *member, sub eval.Substituted, shown *Change) error {
	e := r.e
	_, prov, err := e.providerFor(m.typ)
	if err != nil {
		return err
	}
	sink := memberSink{e: e, member: m.path, typ: m.typ, action: c.Action}
	in := resource.Values{JSON: sub.JSON, Sensitive: sub.Sensitive}
	var res *resource.Result
	isUpdate := c.Action == resource.ActionUpdate
	r.markStarted(m.path)
	if isUpdate {
		e.mu.Lock()
		prior := e.state.Resources[m.path]
		e.mu.Unlock()
		res, err = prov.Update(ctx, resource.UpdateRequest{Type: m.typ, Name: m.path, Prior: *recordToState(prior), Inputs: in}, sink)
	} else {
		res, err = prov.Create(ctx, resource.CreateRequest{Type: m.typ, Name: m.path, Inputs: in}, sink)
	}
	if err != nil {
		// The operation's fate is unknown: its pending record stays, and
		// the next run asks the provider what exists.
		return err
	}
	sink.Warnings(res.Diagnostics)
	derr := diagError(res.Diagnostics)
	switch {
	case derr == nil:
		r.record(m, c, sub, res, false)
		e.setOutputs(m, res.Outputs)
		if names := brokenPromises(res.Outputs.JSON, shown, c); len(names) > 0 {
			// What it made is recorded as it is; the members planned
			// with the promised values wait for another plan.
			derr = fmt.Errorf("provider %s produced an inconsistent result: output %s is not the value its plan promised; the members that use it are not applied (this is a bug in the provider)", c.Provider, strings.Join(names, ", "))
		}
	case res.HasState && isUpdate:
		// The update failed; the resource is as the provider reports it,
		// with the inputs it had.
		e.mu.Lock()
		prior := *e.state.Resources[m.path]
		e.mu.Unlock()
		prior.Outputs, prior.Private, prior.SchemaVersion = res.Outputs.JSON, res.Private, res.SchemaVersion
		r.rec.SetResource(m.path, &prior)
	case res.HasState:
		// A create that failed half way: keep what it made, and replace it
		// next time.
		r.record(m, c, sub, res, true)
	case !isUpdate:
		r.rec.DeleteResource(m.path)
		e.mu.Lock()
		delete(e.state.Resources, m.path)
		e.mu.Unlock()
	}
	r.rec.ClearPending(m.path)
	return derr
}

// delete deletes the recorded resource of a change.
func (r *applyRun) delete(ctx context.Context, c *Change) error {
	e := r.e
	prior := c.Prior
	if prior == nil {
		return nil
	}
	if _, ok := r.prewritten[c.Member]; !ok {
		r.rec.SetPending(c.Member, r.pendingFor(&Change{Member: c.Member, Action: resource.ActionDelete, Prior: prior}, nil, nil))
		if err := r.rec.Sync(ctx); err != nil {
			return fmt.Errorf("save state: %w", err)
		}
	}
	prov, err := e.providerForRecord(ctx, prior)
	if err != nil {
		return err
	}
	sink := memberSink{e: e, member: c.Member, typ: prior.Type, action: resource.ActionDelete}
	r.markStarted(c.Member)
	res, err := prov.Delete(ctx, resource.DeleteRequest{Type: prior.Type, Name: c.Member, Prior: *recordToState(prior), Replacing: c.Action == resource.ActionReplace}, sink)
	if err != nil {
		return err
	}
	sink.Warnings(res.Diagnostics)
	if derr := diagError(res.Diagnostics); derr != nil {
		r.rec.ClearPending(c.Member)
		return derr
	}
	r.rec.DeleteResource(c.Member)
	r.rec.ClearPending(c.Member)
	e.mu.Lock()
	delete(e.state.Resources, c.Member)
	e.mu.Unlock()
	return nil
}

// jsonSame compares two JSON documents by meaning.
func jsonSame(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ca, _ := json.Marshal(x)
	cb, _ := json.Marshal(y)
	return bytes.Equal(ca, cb)
}

// checkPlannedChange refuses what a member's plan at apply time (its inputs
// known) may not do differently from the plan that was shown: another
// action, except a change planned with unknown inputs that turns out to
// be nothing, or a replacement planned with unknown inputs that turns out
// to be an update in place; or another value for an input the plan showed
// as known. Nothing has been done to the member when it refuses.
func checkPlannedChange(planned, now *Change) error {
	lessened := now.Action == resource.ActionNoop ||
		(planned.Action == resource.ActionReplace && now.Action == resource.ActionUpdate && (planned.Deferred || len(planned.Unknown) > 0))
	if now.Action != planned.Action && !lessened {
		why := ""
		if len(now.RequiresReplace) > 0 {
			names := make([]string, len(now.RequiresReplace))
			for i, p := range now.RequiresReplace {
				names[i] = p.String()
			}
			why = " (" + strings.Join(names, ", ") + " forces replacement)"
		}
		return fmt.Errorf("the plan showed %s, but with its inputs known the provider %s plans %s%s; nothing was done to it: plan again", planned.Action, now.Provider, now.Action, why)
	}
	if planned.Deferred && len(planned.Unknown) == 0 {
		// Planned without its provider: no input was shown.
		return nil
	}
	var before, after map[string]json.RawMessage
	if json.Unmarshal(planned.Inputs, &before) != nil || json.Unmarshal(now.Inputs, &after) != nil {
		return nil
	}
	for name, v := range before {
		unknown := false
		for _, u := range planned.Unknown {
			if len(u) > 0 && u[0].Name == name {
				unknown = true
			}
		}
		if unknown || jsonSame(v, after[name]) {
			continue
		}
		return fmt.Errorf("input %s differs from the value the plan showed; nothing was done to it: this is a Landscaper bug, please report it with the deployment", name)
	}
	return nil
}

// brokenPromises names, sorted, the outputs that the plans promised (known
// while planning) and that came back with other values.
func brokenPromises(got json.RawMessage, plans ...*Change) []string {
	var outputs map[string]json.RawMessage
	_ = json.Unmarshal(got, &outputs)
	var broken []string
	for _, c := range plans {
		if c == nil || c.Action == resource.ActionNoop || c.Action == resource.ActionDelete {
			continue
		}
		var promised map[string]json.RawMessage
		if json.Unmarshal(c.PlannedOutputs, &promised) != nil {
			continue
		}
		for name, want := range promised {
			v, ok := outputs[name]
			if !ok {
				v = json.RawMessage("null")
			}
			if slices.Contains(c.UnknownOutputs, name) || jsonSame(want, v) || slices.Contains(broken, name) {
				continue
			}
			broken = append(broken, name)
		}
	}
	sort.Strings(broken)
	return broken
}

package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/landscaper-nix/landscaper/landscaper/eval"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// member is a resource member as the latest evaluation describes it.
type member struct {
	path     string
	typ      string
	provider string
	schema   *resource.TypeSchema
	// inputs is the JSON of the inputs with tokens (spelling A).
	inputs   string
	context  map[string]eval.ContextEntry
	analysis eval.Analysis
	// evalKnown holds the outputs that were real values, not tokens, in
	// the evaluation that produced inputs.
	evalKnown map[eval.Key]bool
	// assumed holds, for a member evaluated alone with the outputs known
	// before planning (recorded ones, mostly), the values it was given of
	// the outputs it forced: its inputs hold only while each output keeps
	// that value; else it is evaluated again.
	assumed map[eval.Key]json.RawMessage
	// failing holds the parts of the inputs that used an output in the
	// evaluation with every unknown output throwing (a nil path: all of
	// them, or it could not tell).
	failing []resource.Path
	// traced: the outputs this member forces were found by tracing.
	traced bool
	deps   []string
	// evalErr is set when the member's inputs fail to evaluate even with
	// every output they use known.
	evalErr error
}

// readiness says whether a member's inputs can be resolved by
// substitution now.
type readiness int

const (
	// ready: substitute the known values; what is unknown stays unknown.
	ready readiness = iota
	// blocked: Nix code computes with an output that is not known yet.
	blocked
	// needsEval: Nix code computes with outputs that are known now; the
	// member must be evaluated again.
	needsEval
)

func (e *Engine) readinessOf(m *member) (readiness, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if m.evalErr != nil {
		return blocked, m.evalErr
	}
	r := ready
	for _, k := range m.analysis.Opaque {
		if k == (eval.Key{}) {
			if !m.traced {
				r = max(r, needsEval)
			}
			continue
		}
		if want, ok := m.assumed[k]; ok {
			if v := e.values[k]; !v.Known || v.Sensitive || !jsonSame(v.JSON, want) {
				// Evaluated with a value this plan does not keep.
				r = max(r, needsEval)
			}
			continue
		}
		if m.evalKnown[k] {
			continue
		}
		v := e.values[k]
		if v.Sensitive {
			return r, fmt.Errorf("inputs compute with the sensitive output %s; a sensitive value can only be passed on or interpolated into a string, never hashed, parsed or compared in Nix", k)
		}
		if !v.Known {
			return blocked, nil
		}
		r = max(r, needsEval)
	}
	return r, nil
}

func (e *Engine) lookup(k eval.Key) eval.Value {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.values[k]
}

// substitute resolves a member's inputs with what is known now. Inputs
// that hold a sensitive output, and inputs the type declares sensitive,
// are marked sensitive, and their values are redacted from what providers
// print.
func (e *Engine) substitute(m *member) (eval.Substituted, error) {
	return e.substituteWith(m, e.lookup)
}

func (e *Engine) substituteWith(m *member, lookup func(eval.Key) eval.Value) (eval.Substituted, error) {
	sub, err := e.tokens.Substitute(m.inputs, lookup)
	if err != nil {
		return sub, err
	}
	for _, p := range resource.DeclaredSensitive(m.schema.Inputs, sub.JSON) {
		if !resource.Covered(p, sub.Sensitive) {
			sub.Sensitive = append(sub.Sensitive, p)
		}
	}
	for _, p := range sub.Sensitive {
		e.learnSecretAt(sub.JSON, p)
	}
	return sub, nil
}

// knownForNix returns the known, non-sensitive output values: the only ones
// that may enter Nix.
func (e *Engine) knownForNix() (map[string]map[string]json.RawMessage, map[eval.Key]bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	known := map[string]map[string]json.RawMessage{}
	keys := map[eval.Key]bool{}
	for k, v := range e.values {
		if !v.Known || v.Sensitive {
			continue
		}
		if known[k.Member] == nil {
			known[k.Member] = map[string]json.RawMessage{}
		}
		known[k.Member][k.Output] = v.JSON
		keys[k] = true
	}
	return known, keys
}

// outputKeys lists every output of every member, for token recognition.
func (e *Engine) outputKeys(ms []eval.Member) []eval.Key {
	var keys []eval.Key
	for _, m := range ms {
		provider, typ, _ := strings.Cut(m.Type, ".")
		for _, o := range e.types[provider][typ] {
			keys = append(keys, eval.Key{Member: m.Path, Output: o})
		}
	}
	return keys
}

// structure is what the first evaluation of a round found out about which
// members exist.
type structure struct {
	// undecided lists outputs, not known yet, that decide which members
	// exist. While there are any, only the members that produce them (and
	// what those need) are planned; the rest wait for the next round.
	undecided []eval.Key
	// waiting counts the members left for the next round.
	waiting int
}

// structureKnown returns the output values the structure is evaluated
// with: those known this run, or else the recorded ones.
func (e *Engine) structureKnown() (map[string]map[string]json.RawMessage, map[eval.Key]bool) {
	e.mu.Lock()
	haveValues := len(e.values) > 0
	e.mu.Unlock()
	if haveValues {
		return e.knownForNix()
	}
	known := map[string]map[string]json.RawMessage{}
	keys := map[eval.Key]bool{}
	for name, r := range e.state.Resources {
		schema, ok := e.schemas[r.Type]
		if !ok || r.Tainted {
			continue
		}
		var outs map[string]json.RawMessage
		if json.Unmarshal(r.Outputs, &outs) != nil {
			continue
		}
		for _, o := range schema.Outputs {
			v, ok := outs[o.Name]
			if !ok || o.Sensitive || resource.Covered(resource.AttrPath(o.Name), r.SensitiveOutputs) {
				continue
			}
			if known[name] == nil {
				known[name] = map[string]json.RawMessage{}
			}
			known[name][o.Name] = v
			keys[eval.Key{Member: name, Output: o.Name}] = true
		}
	}
	return known, keys
}

func parseKey(driverKey string) eval.Key {
	member, output, _ := strings.Cut(driverKey, "#")
	return eval.Key{Member: member, Output: output}
}

// evaluateAll runs the first evaluations of a round. The structure (which
// members exist) is evaluated with the outputs known so far, tracing the
// unknown ones it uses; the members' inputs are evaluated with every output
// a token, twice, so that the dependency graph is complete and computation
// with outputs shows (known values are substituted afterwards).
func (e *Engine) evaluateAll(ctx context.Context) (map[string]*member, structure, error) {
	var info structure
	// Whole again, unless the structure still cannot be evaluated whole.
	e.evaluator.SetGuarded(false)
	known, knownKeys := e.structureKnown()
	// The structure and the members it finds, in one evaluation; when it
	// fails, they are evaluated apart, which tells what failed.
	found, forced, planned, err := e.evaluator.Plan(ctx, eval.PlanRequest{Types: e.types, Known: known, Alone: e.computedLastTime()})
	if err != nil {
		var evalErr *eval.Error
		if !errors.As(err, &evalErr) {
			return nil, info, err
		}
		planned = nil
		found, forced, err = e.evaluator.Structure(ctx, eval.StructureRequest{Types: e.types, Known: known, TraceForced: true})
	}
	if err != nil {
		var evalErr *eval.Error
		if !errors.As(err, &evalErr) {
			return nil, info, err
		}
		// Code that fails on a stand-in (builtins.fromJSON of an output,
		// say) decides which members exist: plan what produces those
		// outputs now, the rest once they are known, in the same apply.
		found, forced, err = e.guardedStructure(ctx, known, knownKeys, evalErr)
		if err != nil {
			return nil, info, err
		}
		if found == nil {
			return nil, info, e.explainStructureError(ctx, known, evalErr)
		}
	}
	e.timeline.mark("structure evaluated (%d members)", len(found))
	structureForced := map[eval.Key]bool{}
	assumed := map[eval.Key]json.RawMessage{}
	for _, f := range forced {
		k := parseKey(f)
		structureForced[k] = true
		if v, ok := known[k.Member][k.Output]; ok && knownKeys[k] {
			assumed[k] = v
		}
	}
	e.mu.Lock()
	e.structureForced = structureForced
	e.structureAssumed = assumed
	e.mu.Unlock()
	for _, f := range forced {
		k := parseKey(f)
		if knownKeys[k] {
			continue
		}
		if schema, ok := e.schemas[typeOfPath(found, k.Member)]; ok {
			if o, ok := schema.Output(k.Output); ok && o.Sensitive {
				return nil, info, &MemberError{Member: k.Member, Err: fmt.Errorf("which members exist depends on its sensitive output %s; a sensitive value cannot decide the structure of a deployment", k.Output)}
			}
		}
		info.undecided = append(info.undecided, k)
	}
	e.tokens = e.evaluator.Tokens(e.outputKeys(found))
	typeOf := map[string]string{}
	var paths []string
	for _, m := range found {
		if e.tokens.Has(m.Path) {
			continue // named after an output not known yet
		}
		typeOf[m.Path] = m.Type
		paths = append(paths, m.Path)
	}
	req := eval.Request{Types: e.types, Twice: true, Only: paths}
	if len(known) > 0 {
		req.KnownCheck = known
	}
	res := planned
	for _, m := range found {
		if res != nil && e.tokens.Has(m.Path) != eval.HoldsStandIn(m.Path) {
			res = nil // the evaluation chose other members than these
		}
	}
	var blockedMembers []*member
	if res == nil {
		if res, blockedMembers, err = e.evaluateMembers(ctx, req, typeOf); err != nil {
			return nil, info, err
		}
	}
	e.timeline.mark("members evaluated")
	members := map[string]*member{}
	absorb := func(res *eval.Result) error {
		for _, em := range res.Members {
			second, haveSecond, inBoth := res.SecondFor(em.Path)
			if _, inStructure := typeOf[em.Path]; !inStructure || !inBoth {
				continue
			}
			m, err := e.newMember(em, second, haveSecond, res.FailingFor(em.Path), nil)
			if err != nil {
				return err
			}
			if checked, ok := res.Checked[em.Path]; ok && checked != em.Inputs && !e.substitutionHolds(em.Inputs, checked, known) {
				// With the known values the inputs differ from what
				// substituting them gives: the member computes with them.
				e.evaluateAgain[m.path] = true
				m.analysis.Opaque = append(m.analysis.Opaque, eval.Key{})
			}
			members[m.path] = m
		}
		return nil
	}
	if err := absorb(res); err != nil {
		return nil, info, err
	}
	if len(res.Alone) > 0 {
		// Members evaluated alone: kept while the outputs they forced
		// keep the values given; those that forced an output not given
		// (or failed) are evaluated in the spellings, as the others were.
		var again []string
		for _, p := range paths {
			t, ok := res.Alone[p]
			if !ok {
				continue
			}
			m, err := e.aloneMember(p, t, known, knownKeys)
			if err != nil {
				return nil, info, err
			}
			if m == nil {
				again = append(again, p)
				continue
			}
			members[p] = m
		}
		if len(again) > 0 {
			againReq := req
			againReq.Only = again
			more, blocked, err := e.evaluateMembers(ctx, againReq, typeOf)
			if err != nil {
				return nil, info, err
			}
			blockedMembers = append(blockedMembers, blocked...)
			if err := absorb(more); err != nil {
				return nil, info, err
			}
		}
	}
	for _, b := range blockedMembers {
		members[b.path] = b
	}
	if len(info.undecided) > 0 {
		// Which members exist is not decided: plan only what decides it.
		members, info.waiting = keepProducers(members, info.undecided)
		return members, info, nil
	}
	// Members that exist only given the known values: evaluate them with
	// those values.
	var missing []string
	for _, p := range paths {
		if members[p] == nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		more, err := e.evaluator.Evaluate(ctx, eval.Request{Types: e.types, Known: known, Twice: true, Only: missing})
		if err != nil {
			return nil, info, err
		}
		for _, em := range more.Members {
			second, haveSecond, ok := more.SecondFor(em.Path)
			if !ok {
				return nil, info, &MemberError{Member: em.Path, Err: errors.New("its name depends on outputs not known yet")}
			}
			m, err := e.newMember(em, second, haveSecond, more.FailingFor(em.Path), knownKeys)
			if err != nil {
				return nil, info, err
			}
			members[m.path] = m
		}
	}
	return members, info, nil
}

// evaluateMembers evaluates the members of req.Only in the spellings.
// When that fails, it finds which members fail: those that fail only
// because they compute with a stand-in are returned apart, waiting for the
// real value.
func (e *Engine) evaluateMembers(ctx context.Context, req eval.Request, typeOf map[string]string) (*eval.Result, []*member, error) {
	res, err := e.evaluator.Evaluate(ctx, req)
	if err == nil {
		return res, nil, nil
	}
	var evalErr *eval.Error
	if !errors.As(err, &evalErr) {
		return nil, nil, err
	}
	return e.evaluateAround(ctx, req.Only, typeOf)
}

// computedLastTime lists the recorded members whose inputs computed with
// outputs when they were last planned: the plan's evaluation evaluates
// each of them alone with the known values (see aloneMember).
func (e *Engine) computedLastTime() []string {
	var paths []string
	for p, r := range e.state.Resources {
		if r.ComputesWithOutputs && !r.Tainted {
			paths = append(paths, p)
		}
	}
	return paths
}

// aloneMember reads a member evaluated alone with the known values
// (eval.Result.Alone). Its inputs are final while every output it forced
// keeps the value it was given; nil when it forced an output that was not
// given (or failed): it is evaluated in the spellings then.
func (e *Engine) aloneMember(path string, t eval.Traced, known map[string]map[string]json.RawMessage, given map[eval.Key]bool) (*member, error) {
	if !t.OK || t.Member == nil {
		return nil, nil
	}
	assumed := map[eval.Key]json.RawMessage{}
	evalKnown := map[eval.Key]bool{}
	forced := make([]eval.Key, 0, len(t.Forced))
	for _, f := range t.Forced {
		k := parseKey(f)
		if !given[k] {
			return nil, nil
		}
		assumed[k] = known[k.Member][k.Output]
		evalKnown[k] = true
		forced = append(forced, k)
	}
	m, err := e.newMember(*t.Member, t.Member.Inputs, true, nil, evalKnown)
	if err != nil {
		return nil, err
	}
	m.assumed = assumed
	// One that forced no output no longer computes with any.
	m.traced = len(forced) > 0
	m.analysis.Opaque = append(m.analysis.Opaque, forced...)
	m.deps = depsOf(path, forced)
	return m, nil
}

// guardedStructure is the structure without the composites whose members
// are computed, with code that fails on a stand-in, from the unknown
// outputs a failed structure evaluation forced; those outputs are returned
// as forced (so undecided), and the evaluator stays guarded until the
// structure evaluates whole. It returns nil when the failure forced no
// unknown output (a plain error in the deployment).
func (e *Engine) guardedStructure(ctx context.Context, known map[string]map[string]json.RawMessage, knownKeys map[eval.Key]bool, failed *eval.Error) ([]eval.Member, []string, error) {
	var undecided []string
	for _, f := range failed.Forced {
		if k := parseKey(f); k.Member != "" && !knownKeys[k] && !slices.Contains(undecided, f) {
			undecided = append(undecided, f)
		}
	}
	if len(undecided) == 0 {
		return nil, nil, nil
	}
	e.evaluator.SetGuarded(true)
	found, _, err := e.evaluator.Structure(ctx, eval.StructureRequest{Types: e.types, Known: known})
	if err != nil {
		e.evaluator.SetGuarded(false)
		return nil, nil, nil
	}
	return found, undecided, nil
}

// substitutionHolds reports whether substituting the known values into
// inputs (spelling A) gives what evaluating with them gave.
func (e *Engine) substitutionHolds(inputs, evaluated string, known map[string]map[string]json.RawMessage) bool {
	lookup := func(k eval.Key) eval.Value {
		if v, ok := known[k.Member][k.Output]; ok {
			return eval.Value{JSON: v, Known: true}
		}
		return eval.Value{}
	}
	a, err := e.tokens.Substitute(inputs, lookup)
	if err != nil {
		return false
	}
	b, err := e.tokens.Substitute(evaluated, lookup)
	if err != nil {
		return false
	}
	return jsonSame(a.JSON, b.JSON)
}

func typeOfPath(ms []eval.Member, path string) string {
	for _, m := range ms {
		if m.Path == path {
			return m.Type
		}
	}
	return ""
}

// keepProducers keeps the members that produce the given outputs and what
// they need, and says how many others were set aside.
func keepProducers(members map[string]*member, outputs []eval.Key) (map[string]*member, int) {
	keep := map[string]*member{}
	var visit func(p string)
	visit = func(p string) {
		m, ok := members[p]
		if !ok || keep[p] != nil {
			return
		}
		keep[p] = m
		for _, d := range m.deps {
			visit(d)
		}
	}
	for _, k := range outputs {
		visit(k.Member)
	}
	return keep, len(members) - len(keep)
}

// evaluateAround evaluates the members that evaluate, after a failed
// evaluation of all of them. Members that fail only because they force a
// stand-in are returned as blocked on those outputs; any other failure is
// an error naming the member.
func (e *Engine) evaluateAround(ctx context.Context, all []string, typeOf map[string]string) (*eval.Result, []*member, error) {
	failing, err := e.failingMembers(ctx, all, nil)
	if err != nil {
		return nil, nil, err
	}
	var blockedMembers []*member
	bad := map[string]bool{}
	for _, f := range failing {
		if len(f.err.Forced) == 0 {
			return nil, nil, &MemberError{Member: f.path, Type: typeOf[f.path], Err: f.err}
		}
		bad[f.path] = true
		schema, ok := e.schemas[typeOf[f.path]]
		if !ok {
			return nil, nil, &MemberError{Member: f.path, Err: fmt.Errorf("unknown resource type %q", typeOf[f.path])}
		}
		provider, _, _ := strings.Cut(typeOf[f.path], ".")
		m := &member{path: f.path, typ: typeOf[f.path], provider: provider, schema: schema, inputs: "{}", traced: true, evalKnown: map[eval.Key]bool{}}
		for _, fk := range f.err.Forced {
			k := parseKey(fk)
			m.analysis.Opaque = append(m.analysis.Opaque, k)
			m.analysis.Deps = append(m.analysis.Deps, k)
		}
		m.deps = depsOf(m.path, m.analysis.Deps)
		blockedMembers = append(blockedMembers, m)
	}
	var good []string
	for _, p := range all {
		if !bad[p] {
			good = append(good, p)
		}
	}
	if len(good) == 0 {
		return &eval.Result{Second: map[string]string{}}, blockedMembers, nil
	}
	res, err := e.evaluator.Evaluate(ctx, eval.Request{Types: e.types, Twice: true, Only: good})
	if err != nil {
		return nil, nil, err
	}
	return res, blockedMembers, nil
}

type failure struct {
	path string
	err  *eval.Error
}

// failingMembers finds every member that fails to evaluate alone, by
// halving the set; single members are traced to see which stand-ins they
// forced.
func (e *Engine) failingMembers(ctx context.Context, paths []string, known map[string]map[string]json.RawMessage) ([]failure, error) {
	// Both token spellings: some code fails on one of them only.
	_, err := e.evaluator.Evaluate(ctx, eval.Request{Types: e.types, Known: known, Twice: true, Only: paths, TraceForced: len(paths) == 1})
	if err == nil {
		return nil, nil
	}
	var ee *eval.Error
	if !errors.As(err, &ee) {
		return nil, err
	}
	if len(paths) == 1 {
		return []failure{{paths[0], ee}}, nil
	}
	mid := len(paths) / 2
	left, err := e.failingMembers(ctx, paths[:mid], known)
	if err != nil {
		return nil, err
	}
	right, err := e.failingMembers(ctx, paths[mid:], known)
	if err != nil {
		return nil, err
	}
	return append(left, right...), nil
}

// newMember reads an evaluated member: its inputs in spelling A, in
// spelling B when haveSecond, and the parts that failed with every unknown
// output throwing.
func (e *Engine) newMember(em eval.Member, second string, haveSecond bool, failing []resource.Path, evalKnown map[eval.Key]bool) (*member, error) {
	schema, ok := e.schemas[em.Type]
	if !ok {
		return nil, &MemberError{Member: em.Path, Err: fmt.Errorf("unknown resource type %q", em.Type)}
	}
	provider, _, _ := strings.Cut(em.Type, ".")
	an, err := e.tokens.Analyze(em.Inputs, second, haveSecond, failing...)
	if err != nil {
		return nil, &MemberError{Member: em.Path, Type: em.Type, Err: err}
	}
	m := &member{path: em.Path, typ: em.Type, provider: provider, schema: schema, inputs: em.Inputs, context: em.Context, analysis: an, evalKnown: evalKnown, failing: failing}
	if m.evalKnown == nil {
		m.evalKnown = map[eval.Key]bool{}
	}
	if e.evaluateAgain[m.path] && len(evalKnown) == 0 {
		m.analysis.Opaque = append(m.analysis.Opaque, eval.Key{})
	}
	m.deps = depsOf(m.path, an.Deps)
	return m, nil
}

func depsOf(self string, keys []eval.Key) []string {
	seen := map[string]bool{}
	var deps []string
	for _, k := range keys {
		// A member that uses its own output stays its own dependency: the
		// cycle check reports it.
		if k.Member == "" || seen[k.Member] {
			continue
		}
		seen[k.Member] = true
		deps = append(deps, k.Member)
	}
	sort.Strings(deps)
	return deps
}

// reevaluate evaluates the given members again with every known output as
// its real value. They are first evaluated together, each traced (every
// output it forces, known or not, reported): one that forced only known
// outputs has its final inputs then, and what it needs. The others are
// evaluated again as below (reevaluateApart), the trace standing for the
// one those whose Nix code computes with an output nobody can see (a
// hash of it, say) would need.
func (e *Engine) reevaluate(ctx context.Context, paths []string) error {
	e.mu.Lock()
	for _, p := range paths {
		// A member evaluated alone with values that did not hold: what it
		// forced is what it needs; no value it was given stands. (A copy:
		// a plan that starts again restores the member as it was.)
		if m := e.members[p]; m != nil && m.assumed != nil {
			fresh := *m
			fresh.assumed = nil
			fresh.evalKnown = map[eval.Key]bool{}
			e.members[p] = &fresh
		}
	}
	e.mu.Unlock()
	known, keys := e.knownForNix()
	traced, err := e.evaluator.Trace(ctx, eval.TraceRequest{Types: e.types, Known: known, Only: paths, WithInputs: true})
	var evalErr *eval.Error
	switch {
	case errors.As(err, &evalErr):
		// One of them fails in a way Nix cannot catch: find which.
		return e.reevaluateApart(ctx, paths)
	case err != nil:
		return err
	}
	var rest []string
	for _, p := range paths {
		t := traced[p]
		forced := make([]eval.Key, 0, len(t.Forced))
		settled := t.OK && t.Member != nil
		for _, f := range t.Forced {
			k := parseKey(f)
			forced = append(forced, k)
			if !keys[k] {
				settled = false
			}
		}
		if !settled {
			rest = append(rest, p)
			continue
		}
		// Every output it forced is known: no token is left in its
		// inputs, which are final.
		m, err := e.newMember(*t.Member, t.Member.Inputs, true, nil, keys)
		if err != nil {
			return err
		}
		e.mu.Lock()
		old := e.members[p]
		m.traced = true
		m.deps = mergeDeps(depsOf(p, forced), old.deps)
		e.members[p] = m
		e.mu.Unlock()
	}
	return e.reevaluateApart(ctx, rest, traced)
}

// reevaluateApart evaluates members again with every known output as its
// real value, spelling by spelling (which tells the parts of their inputs
// that use outputs not known yet). Members whose Nix code computes with an
// output nobody can see are traced first, to find which outputs they
// force: traced holds what reevaluate found, or else each is traced now.
func (e *Engine) reevaluateApart(ctx context.Context, paths []string, traced ...map[string]eval.Traced) error {
	var trace, again []string
	e.mu.Lock()
	for _, p := range paths {
		m := e.members[p]
		untraced := false
		for _, k := range m.analysis.Opaque {
			if k == (eval.Key{}) && !m.traced {
				untraced = true
			}
		}
		if untraced {
			trace = append(trace, p)
		} else {
			again = append(again, p)
		}
	}
	e.mu.Unlock()
	if len(traced) > 0 {
		// What the whole member forced stands for what its computing
		// parts force, unless it passes tokens on in other parts: those
		// parts are traced alone.
		parts := e.computingParts(trace)
		var alone []string
		for _, p := range trace {
			if _, ok := parts[p]; ok {
				alone = append(alone, p)
				continue
			}
			e.recordTrace(p, traced[0][p].Forced)
		}
		trace = alone
	}
	if err := e.traceMembers(ctx, trace); err != nil {
		return err
	}
	if len(again) == 0 {
		return nil
	}
	known, keys := e.knownForNix()
	res, err := e.evaluator.Evaluate(ctx, eval.Request{Types: e.types, Known: known, Twice: true, Only: again})
	var evalErr *eval.Error
	if errors.As(err, &evalErr) {
		// One of them fails: set those apart and evaluate the others.
		failing, ferr := e.failingMembers(ctx, again, known)
		if ferr != nil {
			return ferr
		}
		bad := map[string]bool{}
		e.mu.Lock()
		for _, f := range failing {
			bad[f.path] = true
			m := e.members[f.path]
			stillUnknown := false
			for _, fk := range f.err.Forced {
				mem, out, _ := strings.Cut(fk, "#")
				k := eval.Key{Member: mem, Output: out}
				if !keys[k] {
					stillUnknown = true
					m.analysis.Opaque = append(m.analysis.Opaque, k)
					m.deps = mergeDeps(m.deps, depsOf(m.path, []eval.Key{k}))
				}
			}
			m.traced = true
			if !stillUnknown {
				m.evalErr = f.err
			}
		}
		e.mu.Unlock()
		var good []string
		for _, p := range again {
			if !bad[p] {
				good = append(good, p)
			}
		}
		if len(good) == 0 {
			return nil
		}
		res, err = e.evaluator.Evaluate(ctx, eval.Request{Types: e.types, Known: known, Twice: true, Only: good})
	}
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, em := range res.Members {
		old := e.members[em.Path]
		if old == nil {
			continue
		}
		second, haveSecond, ok := res.SecondFor(em.Path)
		if !ok {
			return fmt.Errorf("member %s: missing from the second evaluation", em.Path)
		}
		m, err := e.newMember(em, second, haveSecond, res.FailingFor(em.Path), keys)
		if err != nil {
			return err
		}
		m.traced = old.traced
		// Keep dependencies found by tracing: they still order the member.
		m.deps = mergeDeps(m.deps, old.deps)
		if old.traced {
			for _, k := range old.analysis.Opaque {
				if k != (eval.Key{}) && !keys[k] {
					m.analysis.Opaque = append(m.analysis.Opaque, k)
				}
			}
		}
		e.members[em.Path] = m
	}
	return nil
}

func mergeDeps(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, d := range append(append([]string{}, a...), b...) {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	sort.Strings(out)
	return out
}

// traceMembers finds the outputs the members' inputs force: all in one
// evaluation, or one at a time when that evaluation fails as a whole (one
// of them fails in a way Nix cannot catch; tracing it alone reports what
// it forced before).
func (e *Engine) traceMembers(ctx context.Context, paths []string) error {
	if len(paths) == 0 {
		return nil
	}
	if parts := e.computingParts(paths); len(paths) > 1 || parts != nil {
		traced, err := e.evaluator.Trace(ctx, eval.TraceRequest{Types: e.types, Only: paths, Known: e.deciderValues(), Parts: parts})
		var evalErr *eval.Error
		switch {
		case err == nil:
			for _, p := range paths {
				e.recordTrace(p, traced[p].Forced)
			}
			return nil
		case !errors.As(err, &evalErr):
			return err
		}
	}
	for _, p := range paths {
		if err := e.traceMember(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// deciderValues returns the known values of the outputs that decide
// which members exist: a trace gives those, and a token for every other
// output, known or not (a known value would hide that a member uses it).
func (e *Engine) deciderValues() map[string]map[string]json.RawMessage {
	known := map[string]map[string]json.RawMessage{}
	all, _ := e.knownForNix()
	e.mu.Lock()
	for k := range e.structureForced {
		if v, ok := all[k.Member][k.Output]; ok {
			if known[k.Member] == nil {
				known[k.Member] = map[string]json.RawMessage{}
			}
			known[k.Member][k.Output] = v
		}
	}
	e.mu.Unlock()
	return known
}

// computingParts gives, of the members at paths that pass tokens on in
// some parts and compute with outputs in others, the parts that compute:
// only those are traced, so that an output a member passes on (a private
// key, say) is not taken for one it computes with. Nil when there are
// none.
func (e *Engine) computingParts(paths []string) map[string][]resource.Path {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out map[string][]resource.Path
	for _, p := range paths {
		m := e.members[p]
		if m == nil || len(m.analysis.Computing) == 0 || len(m.analysis.Computing) == len(m.failing) {
			continue
		}
		if out == nil {
			out = map[string][]resource.Path{}
		}
		out[p] = m.analysis.Computing
	}
	return out
}

// traceMember finds the outputs a member's inputs force, in an evaluation
// of its own.
func (e *Engine) traceMember(ctx context.Context, path string) error {
	// The member is reached by its path, so that the trace shows what its
	// own inputs force.
	res, err := e.evaluator.Evaluate(ctx, eval.Request{Types: e.types, Only: []string{path}, TraceForced: true, Known: e.deciderValues()})
	var forced []string
	if err != nil {
		var evalErr *eval.Error
		if !errors.As(err, &evalErr) {
			return err
		}
		forced = evalErr.Forced
	} else {
		forced = res.Forced
	}
	e.recordTrace(path, forced)
	return nil
}

// recordTrace records what a member forced ("member#output" keys) among
// its needs.
func (e *Engine) recordTrace(path string, forced []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := e.members[path]
	var keys []eval.Key
	for _, f := range forced {
		member, output, ok := strings.Cut(f, "#")
		if ok {
			keys = append(keys, eval.Key{Member: member, Output: output})
		}
	}
	m.traced = true
	m.analysis.Opaque = append(m.analysis.Opaque, keys...)
	m.deps = mergeDeps(m.deps, depsOf(path, keys))
}

// explainStructureError names the member whose type does not evaluate, when
// the member names do.
func (e *Engine) explainStructureError(ctx context.Context, known map[string]map[string]json.RawMessage, structErr error) error {
	names, _, err := e.evaluator.Structure(ctx, eval.StructureRequest{Types: e.types, Known: known, NamesOnly: true})
	if err != nil {
		return structErr
	}
	var find func(ps []string) error
	find = func(ps []string) error {
		if len(ps) == 0 {
			return nil
		}
		_, _, err := e.evaluator.Structure(ctx, eval.StructureRequest{Types: e.types, Known: known, Only: ps})
		if err == nil {
			return nil
		}
		if len(ps) == 1 {
			if strings.HasPrefix(err.Error(), "member ") {
				return err // the driver's own message names the member
			}
			return &MemberError{Member: ps[0], Err: fmt.Errorf("type: %w", err)}
		}
		if err := find(ps[:len(ps)/2]); err != nil {
			return err
		}
		return find(ps[len(ps)/2:])
	}
	all := make([]string, len(names))
	for i, n := range names {
		all[i] = n.Path
	}
	if err := find(all); err != nil {
		return err
	}
	return structErr
}

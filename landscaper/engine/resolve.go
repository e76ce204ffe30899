package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// substitute resolves a member's inputs with what is known now.
func (e *Engine) substitute(m *member) (eval.Substituted, error) {
	return e.tokens.Substitute(m.inputs, e.lookup)
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

// evaluateAll runs the first evaluation of a round: every output a token
// (known values are substituted afterwards), evaluated twice. It returns
// the members and whether the set of members may still change once
// outputs are known.
func (e *Engine) evaluateAll(ctx context.Context) (map[string]*member, bool, error) {
	res, err := e.evaluator.Evaluate(ctx, eval.Request{Types: e.types, Twice: true})
	var blockedMembers []*member
	if err != nil {
		var evalErr *eval.Error
		if !errors.As(err, &evalErr) {
			return nil, false, err
		}
		// Some member fails to evaluate. Find which; those that fail only
		// because they compute with a stand-in wait for the real value.
		res, blockedMembers, err = e.evaluateAround(ctx, evalErr)
		if err != nil {
			return nil, false, err
		}
	}
	keys := e.outputKeys(res.Members)
	for _, b := range blockedMembers {
		keys = append(keys, e.outputKeys([]eval.Member{{Path: b.path, Type: b.typ}})...)
	}
	e.tokens = e.evaluator.Tokens(keys)
	members := map[string]*member{}
	uncertain := false
	for _, em := range res.Members {
		if e.tokens.Has(em.Path) {
			// The member's very name comes from an output not known yet.
			uncertain = true
			continue
		}
		second, inBoth := res.Second[em.Path]
		if !inBoth {
			uncertain = true
			continue
		}
		m, err := e.newMember(em, second, true, nil)
		if err != nil {
			return nil, false, err
		}
		members[m.path] = m
	}
	for _, b := range blockedMembers {
		members[b.path] = b
	}
	if len(res.Second) != len(res.Members) {
		uncertain = true
	}
	return members, uncertain, nil
}

// evaluateAround evaluates the members that evaluate, after a failed
// evaluation of all of them. Members that fail only because they force a
// stand-in are returned as blocked on those outputs; any other failure is
// an error naming the member.
func (e *Engine) evaluateAround(ctx context.Context, evalErr *eval.Error) (*eval.Result, []*member, error) {
	paths, err := e.evaluator.Paths(ctx, e.types, nil, false)
	if err != nil {
		// The structure does not evaluate: find the member whose type
		// fails, if it is one member's fault.
		return nil, nil, e.explainStructureError(ctx, err)
	}
	typeOf := map[string]string{}
	all := make([]string, len(paths))
	for i, p := range paths {
		all[i] = p.Path
		typeOf[p.Path] = p.Type
	}
	failing, err := e.failingMembers(ctx, all, nil)
	if err != nil {
		return nil, nil, err
	}
	if len(failing) == 0 {
		return nil, nil, evalErr
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
		for _, k := range f.err.Forced {
			mem, out, _ := strings.Cut(k, "#")
			m.analysis.Opaque = append(m.analysis.Opaque, eval.Key{Member: mem, Output: out})
			m.analysis.Deps = append(m.analysis.Deps, eval.Key{Member: mem, Output: out})
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
	_, err := e.evaluator.Evaluate(ctx, eval.Request{Types: e.types, Known: known, Only: paths, TraceForced: len(paths) == 1})
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

func (e *Engine) newMember(em eval.Member, second string, haveSecond bool, evalKnown map[eval.Key]bool) (*member, error) {
	schema, ok := e.schemas[em.Type]
	if !ok {
		return nil, &MemberError{Member: em.Path, Err: fmt.Errorf("unknown resource type %q", em.Type)}
	}
	provider, _, _ := strings.Cut(em.Type, ".")
	an, err := e.tokens.Analyze(em.Inputs, second, haveSecond)
	if err != nil {
		return nil, &MemberError{Member: em.Path, Type: em.Type, Err: err}
	}
	m := &member{path: em.Path, typ: em.Type, provider: provider, schema: schema, inputs: em.Inputs, context: em.Context, analysis: an, evalKnown: evalKnown}
	if m.evalKnown == nil {
		m.evalKnown = map[eval.Key]bool{}
	}
	m.deps = depsOf(m.path, an.Deps)
	return m, nil
}

func depsOf(self string, keys []eval.Key) []string {
	seen := map[string]bool{}
	var deps []string
	for _, k := range keys {
		if k.Member == "" || k.Member == self || seen[k.Member] {
			continue
		}
		seen[k.Member] = true
		deps = append(deps, k.Member)
	}
	sort.Strings(deps)
	return deps
}

// reevaluate evaluates the given members again with every known output as
// its real value. Members whose Nix code computes with an output nobody can
// see (a hash of it, say) are first traced, one by one, to find which
// outputs they force.
func (e *Engine) reevaluate(ctx context.Context, paths []string) error {
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
	for _, p := range trace {
		if err := e.traceMember(ctx, p); err != nil {
			return err
		}
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
		m, err := e.newMember(em, res.Second[em.Path], true, keys)
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

// traceMember finds the outputs a member's inputs force.
func (e *Engine) traceMember(ctx context.Context, path string) error {
	// Every output is a token here, known or not: a known value would hide
	// that the member uses it.
	res, err := e.evaluator.Evaluate(ctx, eval.Request{Types: e.types, Only: []string{path}, TraceForced: true})
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
	return nil
}

// explainStructureError names the member whose type does not evaluate, when
// the member names do.
func (e *Engine) explainStructureError(ctx context.Context, structErr error) error {
	names, err := e.evaluator.Paths(ctx, e.types, nil, true)
	if err != nil {
		return structErr
	}
	var find func(ps []string) error
	find = func(ps []string) error {
		if len(ps) == 0 {
			return nil
		}
		_, err := e.evaluator.Paths(ctx, e.types, ps, false)
		if err == nil {
			return nil
		}
		if len(ps) == 1 {
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

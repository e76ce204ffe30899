package engine

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/landscaper-nix/landscaper/landscaper/eval"
	"github.com/landscaper-nix/landscaper/proto/resource"
)

// RolloutPlan is a declared rollout as the plan shows it: its members in
// batches, in update order.
type RolloutPlan struct {
	Name        string
	Batches     [][]string
	MaxFailures int
}

// RolloutOutcome says what an apply did to a rollout's members.
type RolloutOutcome struct {
	Name string
	// Updated were changed; Unchanged needed nothing; Failed failed (the
	// provider rolled them back where it could); NotReached were left as
	// they were because the rollout stopped before their batch.
	Updated, Unchanged, Failed, NotReached []string
}

func (o RolloutOutcome) String() string {
	var parts []string
	add := func(what string, ms []string) {
		if len(ms) > 0 {
			parts = append(parts, what+" "+strings.Join(ms, ", "))
		}
	}
	add("failed:", o.Failed)
	add("updated:", o.Updated)
	add("already up to date:", o.Unchanged)
	add("not reached, left as they were:", o.NotReached)
	if len(parts) == 0 {
		return "rollout " + o.Name + ": nothing to do"
	}
	return "rollout " + o.Name + ": " + strings.Join(parts, "; ")
}

// rolloutPos is where a member stands in its rollout.
type rolloutPos struct {
	rollout *eval.Rollout
	batch   int
}

// batches splits a rollout's members into batches of BatchSize.
func batches(r *eval.Rollout) [][]string {
	var out [][]string
	for i := 0; i < len(r.Members); i += r.BatchSize {
		out = append(out, r.Members[i:min(i+r.BatchSize, len(r.Members))])
	}
	return out
}

// setRollouts indexes the declared rollouts by member.
func (e *Engine) setRollouts(rs map[string]eval.Rollout) {
	e.rollouts = map[string]*eval.Rollout{}
	e.rolloutIndex = map[string]rolloutPos{}
	for name, r := range rs {
		r := r
		e.rollouts[name] = &r
		for i, b := range batches(&r) {
			for _, m := range b {
				if _, dup := e.rolloutIndex[m]; !dup {
					e.rolloutIndex[m] = rolloutPos{rollout: &r, batch: i}
				}
			}
		}
	}
}

// checkRollouts checks that every rollout member is a resource member of
// the deployment, in one rollout only.
func (e *Engine) checkRollouts() error {
	names := make([]string, 0, len(e.rollouts))
	for n := range e.rollouts {
		names = append(names, n)
	}
	sort.Strings(names)
	in := map[string]string{}
	var problems []string
	for _, n := range names {
		for i, m := range e.rollouts[n].Members {
			if _, ok := e.members[m]; !ok {
				problems = append(problems, fmt.Sprintf("rollouts.%s.members[%d]: no member %q in the deployment", n, i, m))
			}
			if other, ok := in[m]; ok {
				problems = append(problems, fmt.Sprintf("rollouts.%s.members[%d]: %q is in rollout %s already", n, i, m, other))
			}
			in[m] = n
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return nil
}

// rolloutPlans lists the rollouts for the plan, by name.
func (e *Engine) rolloutPlans() []RolloutPlan {
	var out []RolloutPlan
	for _, r := range e.rollouts {
		out = append(out, RolloutPlan{Name: r.Name, Batches: batches(r), MaxFailures: r.MaxFailures})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// rolloutDeps are the members a rollout member waits for: every member of
// the batch before its own.
func (e *Engine) rolloutDeps(path string) []string {
	pos, ok := e.rolloutIndex[path]
	if !ok || pos.batch == 0 {
		return nil
	}
	return batches(pos.rollout)[pos.batch-1]
}

// applyDeps are the dependencies the apply walks by: the members' own and
// the rollouts' order.
func (e *Engine) applyDeps(path string) []string {
	deps := e.depsOf(path)
	if extra := e.rolloutDeps(path); len(extra) > 0 {
		deps = append(slices.Clone(deps), extra...)
	}
	return deps
}

// tolerates reports whether node may start although dep failed: dep is in
// the batch before node's in their rollout (and node does not use it
// otherwise), and the batches before node's have no more failures, all
// together, than the rollout's budget allows.
func (e *Engine) tolerates(node, dep string, failed map[string]bool) bool {
	pos, ok := e.rolloutIndex[node]
	if !ok || pos.batch == 0 || slices.Contains(e.depsOf(node), dep) {
		return false
	}
	all := batches(pos.rollout)
	if !slices.Contains(all[pos.batch-1], dep) {
		return false
	}
	n := 0
	for _, batch := range all[:pos.batch] {
		for _, m := range batch {
			if failed[m] {
				n++
			}
		}
	}
	return n <= pos.rollout.MaxFailures
}

// notReachedBecause describes why a rollout member was not started when
// dep (a member of an earlier batch of its rollout) failed, or "" when the
// failure is not the rollout's.
func (e *Engine) notReachedBecause(node, dep string) string {
	pos, ok := e.rolloutIndex[node]
	if !ok {
		return ""
	}
	failedAt, ok := e.rolloutIndex[dep]
	if !ok || failedAt.rollout != pos.rollout || failedAt.batch >= pos.batch {
		return ""
	}
	return fmt.Sprintf("not reached: rollout %s stopped after batch %d (%s failed; at most %d may fail in the rollout); left as it was",
		pos.rollout.Name, failedAt.batch+1, dep, pos.rollout.MaxFailures)
}

// prepareRollouts asks the providers of the rollouts' members that will
// change to prepare, all at once (copying closures, say), before the first
// batch starts. A failure here is only reported: the member's own apply
// does the work again and fails properly if it must.
func (r *applyRun) prepareRollouts(ctx context.Context) {
	e := r.e
	var todo []string
	for _, ro := range e.rollouts {
		for _, m := range ro.Members {
			c := r.changes[m]
			if c == nil || c.Deferred || len(c.Unknown) > 0 {
				continue
			}
			switch c.Action {
			case resource.ActionCreate, resource.ActionUpdate, resource.ActionReplace:
				todo = append(todo, m)
			}
		}
	}
	if len(todo) == 0 {
		return
	}
	sort.Strings(todo)
	e.emit(Event{Kind: EventInfo, Message: fmt.Sprintf("rollouts: preparing %d members at once before the first batch: %s", len(todo), strings.Join(todo, ", "))})
	sem := make(chan struct{}, e.opts.Parallelism)
	var wg sync.WaitGroup
	for _, path := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := r.prepare(ctx, path); err != nil && ctx.Err() == nil {
				e.emit(Event{Kind: EventInfo, Member: path, Message: e.redact.Redact("could not prepare ahead (the apply tries again): " + err.Error())})
			}
		}()
	}
	wg.Wait()
}

func (r *applyRun) prepare(ctx context.Context, path string) error {
	e := r.e
	c := r.changes[path]
	e.mu.Lock()
	m := e.members[path]
	e.mu.Unlock()
	if m == nil {
		return nil
	}
	_, prov, err := e.providerFor(c.Type)
	if err != nil {
		return err
	}
	p, ok := prov.(resource.Preparer)
	if !ok {
		return nil
	}
	if err := e.evaluator.Realise(ctx, m.context); err != nil {
		return err
	}
	req := resource.PrepareRequest{Type: c.Type, Name: path, Inputs: resource.Values{JSON: c.Inputs, Sensitive: c.Sensitive}}
	if c.Prior != nil && c.Action != resource.ActionReplace {
		req.Prior = recordToState(c.Prior)
	}
	diags, err := p.Prepare(ctx, req)
	if err != nil {
		return err
	}
	return diagError(diags)
}

// rolloutOutcomes sums up each rollout after an apply.
func (e *Engine) rolloutOutcomes(changes map[string]*Change, s *Summary) []RolloutOutcome {
	status := map[string]string{}
	for _, m := range append(append(append([]string{}, s.Created...), s.Updated...), s.Replaced...) {
		status[m] = "updated"
	}
	for _, m := range s.Failed {
		status[m] = "failed"
	}
	for _, m := range s.Skipped {
		status[m] = "not reached"
	}
	var out []RolloutOutcome
	for _, rp := range e.rolloutPlans() {
		o := RolloutOutcome{Name: rp.Name}
		for _, b := range rp.Batches {
			for _, m := range b {
				switch st := status[m]; {
				case st == "updated":
					o.Updated = append(o.Updated, m)
				case st == "failed":
					o.Failed = append(o.Failed, m)
				case st == "not reached":
					o.NotReached = append(o.NotReached, m)
				case changes[m] != nil && changes[m].Action == resource.ActionNoop:
					o.Unchanged = append(o.Unchanged, m)
				default:
					o.NotReached = append(o.NotReached, m)
				}
			}
		}
		out = append(out, o)
	}
	return out
}

package engine

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// outcome is how handling a node ended.
type outcome int

const (
	// outcomeDone: the node is finished; its dependents may start.
	outcomeDone outcome = iota
	// outcomeFailed: the node failed; its dependents are skipped.
	outcomeFailed
	// outcomeNeedsEval: the node's inputs must be evaluated again (its
	// deps may change); it is handled again afterwards.
	outcomeNeedsEval
)

// walker runs nodes in dependency order with bounded parallelism. A node
// starts when every dependency is done; a failed dependency skips it. Nodes
// that need a new evaluation are batched: one evaluation serves all the
// nodes waiting at that moment.
type walker struct {
	parallelism int
	// deps returns a node's dependencies (read again after an evaluation).
	deps func(node string) []string
	// handle processes a node whose dependencies are done.
	handle func(ctx context.Context, node string) outcome
	// evaluate re-evaluates the given nodes.
	evaluate func(ctx context.Context, nodes []string) error
	// skipped is told about nodes skipped because a dependency failed.
	skipped func(node, failedDep string)
	// tolerate, when set, says whether node may still start although its
	// dependency dep failed (failed lists every failure so far); such a
	// failure counts as done for node.
	tolerate func(node, dep string, failed map[string]bool) bool
}

type walkResult struct {
	done    map[string]bool
	failed  map[string]bool
	skipped map[string]bool
}

// cycleError reports a dependency cycle.
type cycleError struct{ cycle []string }

func (e *cycleError) Error() string {
	return fmt.Sprintf("dependency cycle between members: %s", strings.Join(e.cycle, " -> "))
}

// findCycle returns a cycle among nodes, or nil.
func findCycle(nodes []string, deps func(string) []string) []string {
	const (
		white = iota
		grey
		black
	)
	color := make(map[string]int, len(nodes))
	inSet := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		inSet[n] = true
	}
	var stack []string
	var visit func(n string) []string
	visit = func(n string) []string {
		color[n] = grey
		stack = append(stack, n)
		for _, d := range deps(n) {
			if !inSet[d] {
				continue
			}
			switch color[d] {
			case grey:
				for i, s := range stack {
					if s == d {
						return append(append([]string{}, stack[i:]...), d)
					}
				}
			case white:
				if c := visit(d); c != nil {
					return c
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		return nil
	}
	sorted := append([]string{}, nodes...)
	sort.Strings(sorted)
	for _, n := range sorted {
		if color[n] == white {
			if c := visit(n); c != nil {
				return c
			}
		}
	}
	return nil
}

// maxFruitlessEvaluations is how many times in a row a node may ask for an
// evaluation with the same dependencies before it fails: an evaluation
// that leaves its dependencies as they were and still does not settle it
// would be repeated forever.
const maxFruitlessEvaluations = 3

// run walks the nodes. It returns when every node is done, failed or
// skipped, or the context is cancelled (nodes not started are then neither
// done nor failed).
func (w *walker) run(ctx context.Context, nodes []string) (walkResult, error) {
	res := walkResult{done: map[string]bool{}, failed: map[string]bool{}, skipped: map[string]bool{}}
	if len(nodes) == 0 {
		return res, nil
	}
	if c := findCycle(nodes, w.deps); c != nil {
		return res, &cycleError{cycle: c}
	}
	inSet := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		inSet[n] = true
	}
	type finished struct {
		node string
		out  outcome
	}
	results := make(chan finished)
	evalDone := make(chan error, 1)
	var wg sync.WaitGroup
	running := 0
	var waitingEval, evalBatch []string
	// The dependencies each node had when it last asked for an evaluation,
	// and how many times in a row it asked with the same ones.
	evaluatedWith := map[string][]string{}
	fruitless := map[string]int{}
	evaluating := false
	var firstErr error

	// missing counts each node's dependencies not done yet; dependents
	// lists who waits for a node.
	missing := make(map[string]int, len(nodes))
	dependents := make(map[string][]string, len(nodes))
	var ready []string
	var skip func(n, because string)
	skip = func(n, because string) {
		if res.skipped[n] || res.done[n] || res.failed[n] {
			return
		}
		res.skipped[n] = true
		if w.skipped != nil {
			w.skipped(n, because)
		}
		for _, d := range dependents[n] {
			skip(d, because)
		}
	}
	// fail marks a node failed: its dependents are skipped, unless
	// tolerate lets them go on.
	fail := func(n string) {
		res.failed[n] = true
		for _, d := range dependents[n] {
			if w.tolerate != nil && w.tolerate(d, n, res.failed) {
				if missing[d]--; missing[d] == 0 && !res.skipped[d] {
					ready = append(ready, d)
				}
				continue
			}
			skip(d, n)
		}
	}
	// track (re)reads a node's dependencies and queues it if they are done.
	track := func(n string) {
		count := 0
		for _, d := range w.deps(n) {
			if !inSet[d] || res.done[d] {
				continue
			}
			if res.failed[d] && w.tolerate != nil && w.tolerate(n, d, res.failed) {
				continue
			}
			if res.failed[d] || res.skipped[d] {
				skip(n, d)
				return
			}
			count++
			dependents[d] = append(dependents[d], n)
		}
		missing[n] = count
		if count == 0 {
			ready = append(ready, n)
		}
	}
	for _, n := range nodes {
		track(n)
	}
	// At most parallelism nodes run, on as many workers, started as they
	// are needed and kept for the next node (a goroutine's stack grows
	// once, not once per node); the others wait in ready (10,000 ready
	// members are not 10,000 goroutines). The work channel holds as many
	// nodes as may run, so handing one out never blocks.
	limit := max(1, w.parallelism)
	work := make(chan string, limit)
	workers := 0
	worker := func() {
		defer wg.Done()
		for n := range work {
			if ctx.Err() != nil {
				results <- finished{n, outcomeFailed}
				continue
			}
			results <- finished{n, w.handle(ctx, n)}
		}
	}
	start := func() {
		for len(ready) > 0 && ctx.Err() == nil && running < limit {
			n := ready[0]
			ready = ready[1:]
			if res.skipped[n] {
				continue
			}
			running++
			if workers < running {
				workers++
				wg.Add(1)
				go worker()
			}
			work <- n
		}
	}
	startEval := func() {
		if evaluating || len(waitingEval) == 0 {
			return
		}
		evaluating = true
		evalBatch, waitingEval = waitingEval, nil
		go func(batch []string) {
			evalDone <- w.evaluate(ctx, batch)
		}(evalBatch)
	}
	// An evaluation starts when nothing else runs, or after a short wait
	// so that nodes becoming ready together share one evaluation.
	var evalTimer <-chan time.Time
	start()
	for running > 0 || evaluating || len(waitingEval) > 0 {
		if running == 0 && !evaluating {
			startEval()
		}
		select {
		case <-evalTimer:
			evalTimer = nil
			startEval()
		case f := <-results:
			running--
			switch f.out {
			case outcomeDone:
				res.done[f.node] = true
				for _, d := range dependents[f.node] {
					if missing[d]--; missing[d] == 0 && !res.skipped[d] {
						ready = append(ready, d)
					}
				}
			case outcomeFailed:
				fail(f.node)
			case outcomeNeedsEval:
				// A node that asks again, its dependencies unchanged,
				// would ask forever: the evaluation learns nothing new.
				deps := w.deps(f.node)
				if prev, asked := evaluatedWith[f.node]; asked && slices.Equal(deps, prev) {
					fruitless[f.node]++
				} else {
					fruitless[f.node] = 0
				}
				evaluatedWith[f.node] = slices.Clone(deps)
				if fruitless[f.node] >= maxFruitlessEvaluations {
					fail(f.node)
					if firstErr == nil {
						firstErr = fmt.Errorf("%s: its inputs were evaluated again %d times without settling; this is a Landscaper bug (please report it with the deployment)", f.node, fruitless[f.node])
					}
					continue
				}
				waitingEval = append(waitingEval, f.node)
			}
		case err := <-evalDone:
			evaluating = false
			for _, n := range evalBatch {
				if err != nil {
					res.failed[n] = true
					for _, d := range dependents[n] {
						skip(d, n)
					}
					continue
				}
				track(n)
			}
			if err != nil && firstErr == nil {
				firstErr = err
			}
			evalBatch = nil
		}
		if ctx.Err() != nil {
			for _, n := range append(waitingEval, ready...) {
				res.failed[n] = true
			}
			waitingEval, ready = nil, nil
			continue
		}
		start()
		if running > 0 && len(waitingEval) > 0 && evalTimer == nil && !evaluating {
			evalTimer = time.After(20 * time.Millisecond)
		}
	}
	close(work)
	wg.Wait()
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	if firstErr != nil {
		return res, firstErr
	}
	// A cycle discovered after an evaluation leaves nodes unreachable.
	var stuck []string
	for _, n := range nodes {
		if !res.done[n] && !res.failed[n] && !res.skipped[n] {
			stuck = append(stuck, n)
		}
	}
	if len(stuck) > 0 {
		if c := findCycle(stuck, w.deps); c != nil {
			return res, &cycleError{cycle: c}
		}
		return res, fmt.Errorf("members could not be ordered: %s", strings.Join(stuck, ", "))
	}
	return res, nil
}

package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestWalkerOrderFailuresAndParallelism(t *testing.T) {
	tests := []struct {
		name        string
		deps        map[string][]string
		fail        []string
		parallelism int
		wantDone    []string
		wantFailed  []string
		wantSkipped []string
		wantErr     bool
	}{
		{
			name:     "chain in order",
			deps:     map[string][]string{"a": nil, "b": {"a"}, "c": {"b"}},
			wantDone: []string{"a", "b", "c"},
		},
		{
			name:        "failure skips dependents, independent work goes on",
			deps:        map[string][]string{"a": nil, "b": {"a"}, "c": {"b"}, "x": nil, "y": {"x"}},
			fail:        []string{"a"},
			wantDone:    []string{"x", "y"},
			wantFailed:  []string{"a"},
			wantSkipped: []string{"b", "c"},
		},
		{
			name:    "cycle is an error",
			deps:    map[string][]string{"a": {"c"}, "b": {"a"}, "c": {"b"}},
			wantErr: true,
		},
		{
			name:        "parallelism one still finishes",
			deps:        map[string][]string{"a": nil, "b": nil, "c": {"a", "b"}},
			parallelism: 1,
			wantDone:    []string{"a", "b", "c"},
		},
		{
			name:     "dependencies outside the set are ignored",
			deps:     map[string][]string{"a": {"outside"}, "b": {"a"}},
			wantDone: []string{"a", "b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var order []string
			w := &walker{
				parallelism: max(tt.parallelism, 3),
				deps:        func(n string) []string { return tt.deps[n] },
				handle: func(_ context.Context, n string) outcome {
					mu.Lock()
					defer mu.Unlock()
					for _, d := range tt.deps[n] {
						if _, inSet := tt.deps[d]; inSet && !slices.Contains(order, d) {
							t.Errorf("%s ran before its dependency %s", n, d)
						}
					}
					order = append(order, n)
					if slices.Contains(tt.fail, n) {
						return outcomeFailed
					}
					return outcomeDone
				},
				evaluate: func(context.Context, []string) error { return nil },
			}
			var nodes []string
			for n := range tt.deps {
				nodes = append(nodes, n)
			}
			res, err := w.run(context.Background(), nodes)
			if tt.wantErr {
				var ce *cycleError
				if !errors.As(err, &ce) {
					t.Fatalf("want a cycle error, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			check := func(what string, got map[string]bool, want []string) {
				t.Helper()
				var g []string
				for n := range got {
					g = append(g, n)
				}
				sort.Strings(g)
				w := append([]string{}, want...)
				sort.Strings(w)
				if !slices.Equal(g, w) {
					t.Errorf("%s: got %v, want %v", what, g, w)
				}
			}
			check("done", res.done, tt.wantDone)
			check("failed", res.failed, tt.wantFailed)
			check("skipped", res.skipped, tt.wantSkipped)
		})
	}
}

func TestWalkerBoundsParallelism(t *testing.T) {
	deps := map[string][]string{}
	var nodes []string
	for i := range 30 {
		n := string(rune('a' + i))
		deps[n] = nil
		nodes = append(nodes, n)
	}
	var running, peak atomic.Int32
	w := &walker{
		parallelism: 4,
		deps:        func(n string) []string { return deps[n] },
		handle: func(context.Context, string) outcome {
			now := running.Add(1)
			for {
				p := peak.Load()
				if now <= p || peak.CompareAndSwap(p, now) {
					break
				}
			}
			time.Sleep(2 * time.Millisecond)
			running.Add(-1)
			return outcomeDone
		},
		evaluate: func(context.Context, []string) error { return nil },
	}
	if _, err := w.run(context.Background(), nodes); err != nil {
		t.Fatal(err)
	}
	if peak.Load() > 4 {
		t.Errorf("%d ran at once, parallelism is 4", peak.Load())
	}
	if peak.Load() < 2 {
		t.Errorf("never more than %d at once: no parallelism", peak.Load())
	}
}

// A node that needs an evaluation is handled again afterwards, with the
// dependencies the evaluation found.
func TestWalkerEvaluationAddsDependencies(t *testing.T) {
	var mu sync.Mutex
	deps := map[string][]string{"a": nil, "b": nil}
	evaluated := 0
	var order []string
	w := &walker{
		parallelism: 2,
		deps: func(n string) []string {
			mu.Lock()
			defer mu.Unlock()
			return deps[n]
		},
		handle: func(_ context.Context, n string) outcome {
			mu.Lock()
			defer mu.Unlock()
			if n == "b" && evaluated == 0 {
				return outcomeNeedsEval
			}
			order = append(order, n)
			return outcomeDone
		},
		evaluate: func(_ context.Context, nodes []string) error {
			mu.Lock()
			defer mu.Unlock()
			evaluated++
			deps["b"] = []string{"a"}
			return nil
		},
	}
	if _, err := w.run(context.Background(), []string{"a", "b"}); err != nil {
		t.Fatal(err)
	}
	if evaluated != 1 || !slices.Equal(order, []string{"a", "b"}) {
		t.Errorf("evaluations %d, order %v; want 1 and [a b]", evaluated, order)
	}
}

func TestWalkerCancellation(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	deps := map[string][]string{"a": nil, "b": {"a"}}
	w := &walker{
		parallelism: 2,
		deps:        func(n string) []string { return deps[n] },
		handle: func(ctx context.Context, n string) outcome {
			cancel()
			<-ctx.Done()
			return outcomeFailed
		},
		evaluate: func(context.Context, []string) error { return nil },
	}
	res, err := w.run(ctx, []string{"a", "b"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	if res.done["b"] {
		t.Error("b ran after cancellation")
	}
}

// TestWalkerFruitlessEvaluations: a node that keeps asking for an
// evaluation that changes none of its dependencies fails, and what needs
// it is skipped, instead of the walk evaluating forever; one whose
// dependencies grow with each evaluation goes on.
func TestWalkerFruitlessEvaluations(t *testing.T) {
	for _, tc := range []struct {
		name string
		// grows: each evaluation gives b one dependency more, up to five.
		grows    bool
		wantFail bool
	}{
		{name: "nothing learned", wantFail: true},
		{name: "a dependency more each time", grows: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var mu sync.Mutex
			deps := map[string][]string{"c": {"b"}}
			evaluated := 0
			w := &walker{
				parallelism: 2,
				deps: func(n string) []string {
					mu.Lock()
					defer mu.Unlock()
					return deps[n]
				},
				handle: func(_ context.Context, n string) outcome {
					mu.Lock()
					defer mu.Unlock()
					if n == "b" && (!tc.grows || len(deps["b"]) < 5) {
						return outcomeNeedsEval
					}
					return outcomeDone
				},
				evaluate: func(context.Context, []string) error {
					mu.Lock()
					defer mu.Unlock()
					evaluated++
					if tc.grows {
						deps["b"] = append(deps["b"], fmt.Sprintf("a%d", len(deps["b"])))
					}
					return nil
				},
			}
			nodes := []string{"b", "c", "a0", "a1", "a2", "a3", "a4"}
			res, err := w.run(context.Background(), nodes)
			if tc.wantFail {
				if err == nil || !strings.Contains(err.Error(), "without settling") || !res.failed["b"] || !res.skipped["c"] {
					t.Fatalf("err %v, failed %v, skipped %v; want b failed without settling and c skipped", err, res.failed, res.skipped)
				}
				if evaluated != maxFruitlessEvaluations {
					t.Errorf("%d evaluations, want %d", evaluated, maxFruitlessEvaluations)
				}
				return
			}
			if err != nil || !res.done["b"] || !res.done["c"] || evaluated != 5 {
				t.Fatalf("err %v, done %v, %d evaluations; want b and c done after 5", err, res.done, evaluated)
			}
		})
	}
}
